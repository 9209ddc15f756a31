"""The dashboard's static files: its own ES modules and the npm-installed uPlot.

uPlot is not in the repository: ``npm ci`` installs it from the committed lockfile into
``frontend/node_modules`` (``make venv`` does this), and the wheel ships its ``dist``
files from there. The page loads only these same-origin files, so it works offline.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, JSONResponse, Response

log = logging.getLogger("meterline.dashboard")

STATIC_DIR = Path(__file__).parent / "static"
"""The dashboard's own modules and stylesheet (served at ``/static/``)."""

NODE_MODULES = Path(__file__).parent / "frontend" / "node_modules"
"""Where ``npm ci`` puts the third-party browser modules."""

VENDOR: dict[str, tuple[str, str]] = {
    "uplot.js": ("uplot/dist/uPlot.esm.js", "text/javascript"),
    "uplot.css": ("uplot/dist/uPlot.min.css", "text/css"),
    "uplot.LICENSE": ("uplot/LICENSE", "text/plain"),
}
"""Public name under ``/static/vendor/`` → file inside ``node_modules`` and its type."""

router = APIRouter(include_in_schema=False)


def missing_vendor_files() -> list[str]:
    """Vendor files that are not installed (empty when ``npm ci`` has run)."""
    return [name for name, (rel, _) in VENDOR.items() if not (NODE_MODULES / rel).is_file()]


def warn_if_incomplete() -> None:
    """Log once at start-up when the charting library is missing, with the fix."""
    missing = missing_vendor_files()
    if missing:
        log.warning(
            "dashboard charts are unavailable: %s not installed; run `make frontend` "
            "(npm ci in %s)",
            ", ".join(missing),
            NODE_MODULES.parent,
        )


@router.get("/static/vendor/{name}")
def vendor_file(name: str) -> Response:
    """One of the :data:`VENDOR` files; 503 with the fix when it is not installed."""
    entry = VENDOR.get(name)
    if entry is None:
        return JSONResponse({"detail": f"no vendor file {name!r}"}, status_code=404)
    path = NODE_MODULES / entry[0]
    if not path.is_file():
        return JSONResponse(
            {"detail": "the charting library is not installed; run `make frontend`"},
            status_code=503,
        )
    return FileResponse(
        path, media_type=entry[1], headers={"Cache-Control": "public, max-age=3600"}
    )
