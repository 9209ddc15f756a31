"""Capacity planning: when the forecast peak requests per minute crosses the capacity.

A crossing is read off the forecast's intervals, as a capacity planner would:
``expected`` when the point forecast reaches capacity, ``likely`` when the upper 80 %
bound does (a one-in-ten chance or more that the peak is at least that high), and
``possible`` when the upper 95 % bound does (one in forty).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from meterline.planning.series import Forecast
from meterline.planning.settings import PlanningSettings
from meterline.query import iso

CROSSINGS = (("expected", "yhat"), ("likely", "hi80"), ("possible", "hi95"))


def crossings(rows: Sequence[dict[str, Any]], capacity: float | None) -> dict[str, str | None]:
    """The first timestamp at which each bound (point, hi80, hi95) reaches ``capacity``."""
    out: dict[str, str | None] = {}
    for name, key in CROSSINGS:
        hit = None if capacity is None else next((r for r in rows if r[key] >= capacity), None)
        out[name] = hit["timestamp"] if hit else None
    return out


def headroom(capacity: float | None, peak: float) -> dict[str, float | None]:
    """Headroom of ``peak`` under ``capacity`` in requests per minute and in percent."""
    if capacity is None:
        return {"headroom_rpm": None, "headroom_pct": None, "utilisation": None}
    return {
        "headroom_rpm": round(capacity - peak, 3),
        "headroom_pct": round(100.0 * (capacity - peak) / capacity, 2),
        "utilisation": round(peak / capacity, 4),
    }


def status(capacity: float | None, current: float, found: dict[str, str | None]) -> str:
    """``unconfigured``, ``over`` (already above), ``at_risk`` (a likely crossing in the
    horizon), ``watch`` (only a possible one) or ``ok``."""
    if capacity is None:
        return "unconfigured"
    if current >= capacity:
        return "over"
    if found["expected"] or found["likely"]:
        return "at_risk"
    return "watch" if found["possible"] else "ok"


def report(
    settings: PlanningSettings,
    peak_forecast: Forecast,
    current_peak: float,
    current_at: datetime | None,
    window: timedelta,
) -> dict[str, Any]:
    """The ``GET /v2/capacity`` body: configured capacity, current headroom over
    ``window``, the forecast peak and the first expected/likely/possible crossing."""
    capacity = settings.capacity_rpm
    rows = peak_forecast.rows
    top = max(rows, key=lambda r: r["yhat"]) if rows else None
    top_hi80 = max(rows, key=lambda r: r["hi80"]) if rows else None
    found = crossings(rows, capacity)
    body: dict[str, Any] = {
        "capacity_rpm": capacity,
        "status": status(capacity, current_peak, found),
        "granularity": peak_forecast.series.granularity,
        "horizon": peak_forecast.horizon,
        "model": peak_forecast.model,
        "current": {
            "window_hours": window.total_seconds() / 3600,
            "peak_rpm": current_peak,
            "peak_at": iso(current_at) if current_at else None,
            **headroom(capacity, current_peak),
        },
        "forecast_peak": {
            "timestamp": top["timestamp"] if top else None,
            "yhat": top["yhat"] if top else None,
            "hi80": top_hi80["hi80"] if top_hi80 else None,
            "hi95": max(r["hi95"] for r in rows) if rows else None,
            **headroom(capacity, top["yhat"] if top else 0.0),
        },
        "crossing": found,
        "data": rows,
    }
    if capacity is None:
        body["message"] = "no capacity configured: set capacity_rpm with PUT /v2/capacity"
    return body
