"""The server's start-up heap is kept out of later garbage collections: a full collection
stops the event loop (ingest acknowledgements, live streams) for as long as it walks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# In a process of its own: chDB opens one store per process.
SCRIPT = """
import asyncio, dataclasses, gc, json, sys
from pathlib import Path
from meterline.api.app import create_app
from meterline.config import Settings

async def main():
    settings = dataclasses.replace(
        Settings.from_env(), data_dir=Path(sys.argv[1]), ingest_workers=0
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        print(json.dumps({"frozen": gc.get_freeze_count(), "tracked": len(gc.get_objects())}))

asyncio.run(main())
"""


def test_a_started_server_collects_only_what_it_made_since(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    heap = json.loads(done.stdout.strip().splitlines()[-1])
    assert heap["frozen"] > 10 * heap["tracked"], heap
