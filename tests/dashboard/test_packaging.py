"""The wheel carries the dashboard: its own modules and the npm-installed uPlot files."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from meterline.dashboard.assets import NODE_MODULES, STATIC_DIR, VENDOR, missing_vendor_files

ROOT = Path(__file__).resolve().parents[2]


def test_vendor_files_are_installed_from_the_lockfile() -> None:
    assert missing_vendor_files() == [], "run `make frontend` (npm ci)"
    lock = (NODE_MODULES.parent / "package-lock.json").read_text()
    assert '"node_modules/uplot"' in lock and '"integrity"' in lock
    tracked = subprocess.run(
        ["git", "ls-files", str(NODE_MODULES)], cwd=ROOT, capture_output=True, text=True
    )
    assert tracked.returncode == 0 and tracked.stdout == ""


@pytest.mark.slow
def test_wheel_ships_the_charting_library(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("meterline-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    package = "meterline/dashboard/"
    for rel, _ in VENDOR.values():
        assert f"{package}frontend/node_modules/{rel}" in names
    for own in STATIC_DIR.iterdir():
        assert f"{package}static/{own.name}" in names
    # Only uPlot's browser files: not its sources, typings or other builds.
    shipped = [n for n in names if "/node_modules/" in n]
    assert len(shipped) == len(VENDOR)
