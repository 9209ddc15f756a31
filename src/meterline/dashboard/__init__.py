"""The web UI: overview, endpoint and consumer drill-downs, and reports.

The pages are clients of ``/v2/stream`` and the REST API; charts are drawn in the
browser with uPlot, installed from npm and served from this package (no CDN).
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from meterline.dashboard import assets, views


def install_dashboard(app: FastAPI) -> None:
    """Add the dashboard's pages and static files to ``app``."""
    app.include_router(views.router)
    app.include_router(assets.router)
    app.mount("/static", StaticFiles(directory=assets.STATIC_DIR), name="static")
    assets.warn_if_incomplete()


__all__ = ["install_dashboard"]
