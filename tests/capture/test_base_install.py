"""A plain ``pip install meterline`` (no extras) gives a working capture SDK: it imports
with the standard library alone and delivers events to a real server."""

from __future__ import annotations

import subprocess
import venv
from pathlib import Path

import pytest

from tests.capture.conftest import Org
from tests.helpers import eventually

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import sys
import meterline.capture as capture

heavy = {"chdb", "fastapi", "starlette", "sqlalchemy", "msgspec", "numpy", "pydantic", "httpx"}
loaded = sorted(heavy & {name.split(".")[0] for name in sys.modules})
assert not loaded, f"the SDK imported server dependencies: {loaded}"
client = capture.CaptureClient(sys.argv[1], sys.argv[2])
client.record_llm("gpt-4o-mini", input_tokens=1000, output_tokens=500, user_id="base-install")
assert client.flush(timeout=30), client.exporter.stats
assert client.exporter.stats.sent == 1, client.exporter.stats
print("ok")
"""


def test_base_install_imports_the_sdk_and_exports(tmp_path: Path, org: Org) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", str(ROOT)],
        capture_output=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr.decode()[-3000:]
    listed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=freeze"], capture_output=True, check=True
    ).stdout.decode()
    assert {line.split("==")[0].lower() for line in listed.split()} <= {
        "meterline",
        "pip",
        "setuptools",
    }
    probe = subprocess.run(
        [str(python), "-c", PROBE, org.server.url, org.key],
        capture_output=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert probe.returncode == 0, probe.stderr.decode()[-3000:]

    def arrived() -> None:
        rows = org.query({"metrics": ["llm_requests", "tokens"], "dimensions": ["model"]})
        assert rows == [{"model": "gpt-4o-mini", "llm_requests": 1, "tokens": 1500}]

    eventually(arrived)
