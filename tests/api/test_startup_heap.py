"""The server's start-up heap is kept out of later garbage collections: a full collection
stops the event loop (ingest acknowledgements, live streams) for as long as it walks."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import run_python

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
    heap = run_python(["-c", SCRIPT, str(tmp_path)])
    assert heap["frozen"] > 10 * heap["tracked"], heap
