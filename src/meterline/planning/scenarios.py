"""Scenario planning: what-if multipliers over date ranges applied to daily forecasts.

An adjustment multiplies the forecast traffic of the days in ``[start, end]`` (UTC dates,
both inclusive; no ``end`` means to the end of the horizon, a step such as a launch).
``shape`` ``ramp`` moves linearly from no change on ``start`` to the full multiplier on
``end`` (a seasonal swing building up). Overlapping adjustments multiply.

Traffic, the busiest minute of each day and LLM spend are assumed to scale together
with the multiplier; the scenario's intervals are the baseline's, scaled the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from meterline.errors import ValidationError
from meterline.planning.capacity import crossings, headroom
from meterline.planning.series import Forecast
from meterline.query import parse_instant

MAX_MULTIPLIER = 1000.0
MAX_ADJUSTMENTS = 50
SHAPES = ("step", "ramp")


@dataclass(frozen=True, slots=True)
class Adjustment:
    """One what-if: ``multiplier`` over ``start``..``end`` (inclusive; ``None``: onwards)."""

    name: str
    start: date
    end: date | None
    multiplier: float
    shape: str = "step"

    def factor(self, day: date) -> float:
        """The multiplier this adjustment applies on ``day`` (1.0 outside its range)."""
        if day < self.start or (self.end is not None and day > self.end):
            return 1.0
        if self.shape == "ramp" and self.end is not None and self.end > self.start:
            done = (day - self.start).days / (self.end - self.start).days
            return 1.0 + (self.multiplier - 1.0) * done
        return self.multiplier


@dataclass(frozen=True, slots=True)
class ScenarioRequest:
    """A validated ``POST /v2/scenarios`` body."""

    name: str
    horizon: int
    adjustments: tuple[Adjustment, ...]
    capacity_rpm: float | None
    cost_per_million_requests: float | None


def _add(problems: list[dict[str, Any]], field: str, message: str) -> None:
    problems.append({"field": field, "message": message})


def _number(
    raw: Any, field: str, problems: list[dict[str, Any]], low: float, high: float
) -> float | None:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        _add(problems, field, "must be a number")
        return None
    if not low < raw <= high:
        _add(problems, field, f"must be greater than {low:g}, at most {high:g}")
        return None
    return float(raw)


def _day(raw: Any, field: str, problems: list[dict[str, Any]]) -> date | None:
    if not isinstance(raw, str):
        _add(problems, field, "must be an ISO 8601 date")
        return None
    try:
        return parse_instant(raw, field).date()
    except ValidationError:
        _add(problems, field, "must be an ISO 8601 date, e.g. 2026-12-24")
        return None


def parse_scenario(body: Any, today: date, max_horizon: int) -> ScenarioRequest:
    """Validate a scenario body; raises :class:`ValidationError` listing every problem.

    ``{"name"?, "horizon"? (days, default 30), "adjustments": [{"name"?, "start",
    "end"?, "multiplier", "shape"? ("step"|"ramp")}], "capacity_rpm"?,
    "cost_per_million_requests"?}``; the forecast starts on ``today``.
    """
    if not isinstance(body, dict):
        raise ValidationError(
            "the body must be a JSON object",
            details='Send e.g. {"adjustments": [{"start": "2026-12-10", "end": "2026-12-11", '
            '"multiplier": 3}]}.',
        )
    problems: list[dict[str, Any]] = []
    known = {"name", "horizon", "adjustments", "capacity_rpm", "cost_per_million_requests"}
    for key in body:
        if key not in known:
            _add(problems, key, f"unknown field; use {', '.join(sorted(known))}")
    name = body.get("name", "scenario")
    if not isinstance(name, str) or not 0 < len(name) <= 100:
        _add(problems, "name", "must be a string of 1 to 100 characters")
        name = "scenario"
    horizon = body.get("horizon", 30)
    if isinstance(horizon, bool) or not isinstance(horizon, int) or not 0 < horizon <= max_horizon:
        _add(problems, "horizon", f"must be an integer of 1..{max_horizon} days")
        horizon = 30
    last = today + timedelta(days=horizon - 1)
    raw_adjustments = body.get("adjustments")
    adjustments: list[Adjustment] = []
    if not isinstance(raw_adjustments, list) or not 0 < len(raw_adjustments) <= MAX_ADJUSTMENTS:
        _add(problems, "adjustments", f"must be a list of 1..{MAX_ADJUSTMENTS} adjustments")
        raw_adjustments = []
    for i, raw in enumerate(raw_adjustments):
        where = f"adjustments[{i}]"
        if not isinstance(raw, dict):
            _add(problems, where, "must be an object")
            continue
        extra = set(raw) - {"name", "start", "end", "multiplier", "shape"}
        if extra:
            _add(problems, where, f"unknown fields: {', '.join(sorted(extra))}")
        start = _day(raw.get("start"), f"{where}.start", problems)
        end = None if raw.get("end") is None else _day(raw["end"], f"{where}.end", problems)
        factor = _number(
            raw.get("multiplier"), f"{where}.multiplier", problems, 0.0, MAX_MULTIPLIER
        )
        shape = raw.get("shape", "step")
        if shape not in SHAPES:
            _add(problems, f"{where}.shape", "must be step or ramp")
        label = raw.get("name", f"adjustment {i + 1}")
        if not isinstance(label, str) or not 0 < len(label) <= 100:
            _add(problems, f"{where}.name", "must be 1 to 100 characters")
        if start is None or factor is None or shape not in SHAPES or not isinstance(label, str):
            continue
        if end is not None and end < start:
            _add(problems, f"{where}.end", "must not be before start")
            continue
        if start > last or (end is not None and end < today):
            problems.append(
                {
                    "field": where,
                    "message": f"lies outside the forecast ({today.isoformat()} .. "
                    f"{last.isoformat()}); move it or change horizon",
                }
            )
            continue
        adjustments.append(Adjustment(label, start, end, factor, shape))
    capacity = body.get("capacity_rpm")
    if capacity is not None:
        capacity = _number(capacity, "capacity_rpm", problems, 0.0, 1e12)
    cpm = body.get("cost_per_million_requests")
    if cpm is not None:
        cpm = _number(cpm, "cost_per_million_requests", problems, -1e-12, 1e9)
    if problems:
        raise ValidationError(
            "invalid scenario",
            details="Each adjustment needs start (a date), multiplier (> 0) and optionally end "
            "(inclusive; omit for a lasting step) and shape (step or ramp).",
            validation_errors=problems,
        )
    return ScenarioRequest(name, horizon, tuple(adjustments), capacity, cpm)


def _by_day(forecast: Forecast | None) -> dict[date, dict[str, Any]]:
    if forecast is None:
        return {}
    return {datetime.fromisoformat(r["timestamp"][:10]).date(): r for r in forecast.rows}


def _scaled(row: dict[str, Any] | None, factor: float) -> dict[str, float]:
    keys = ("yhat", "lo80", "hi80", "lo95", "hi95")
    if row is None:
        return dict.fromkeys(keys, 0.0)
    return {k: round(float(row[k]) * factor, 6) for k in keys}


def run(
    request: ScenarioRequest,
    requests: Forecast,
    peaks: Forecast,
    llm_cost: Forecast | None,
    capacity: float | None,
    cost_per_million: float | None,
) -> dict[str, Any]:
    """Apply the scenario's multipliers to the daily forecasts of requests, peak
    requests per minute and LLM cost; return the per-day projection and its summary."""
    req_days, peak_days, cost_days = _by_day(requests), _by_day(peaks), _by_day(llm_cost)
    days = sorted(req_days)
    rows: list[dict[str, Any]] = []
    totals = {"baseline": 0.0, "scenario": 0.0, "lo80": 0.0, "hi80": 0.0}
    llm = {"baseline": 0.0, "scenario": 0.0}
    for day in days:
        factor = math.prod(a.factor(day) for a in request.adjustments)
        base_req = _scaled(req_days[day], 1.0)
        req = _scaled(req_days[day], factor)
        peak_base = _scaled(peak_days.get(day), 1.0)
        peak = _scaled(peak_days.get(day), factor)
        cost_base = _scaled(cost_days.get(day), 1.0)["yhat"]
        cost = cost_base * factor
        totals["baseline"] += base_req["yhat"]
        totals["scenario"] += req["yhat"]
        totals["lo80"] += req["lo80"]
        totals["hi80"] += req["hi80"]
        llm["baseline"] += cost_base
        llm["scenario"] += cost
        rows.append(
            {
                "date": day.isoformat(),
                "timestamp": f"{day.isoformat()}T00:00:00Z",
                "multiplier": round(factor, 6),
                "requests": {"baseline": base_req["yhat"], **req},
                "peak_rpm": {"baseline": peak_base["yhat"], **peak},
                "llm_cost_usd": {"baseline": round(cost_base, 6), "scenario": round(cost, 6)},
                **headroom(capacity, peak["yhat"]),
            }
        )
    peak_rows: list[dict[str, Any]] = [{"timestamp": r["timestamp"], **r["peak_rpm"]} for r in rows]
    top = max(peak_rows, key=lambda r: r["yhat"]) if peak_rows else None
    base_top = max((r["baseline"] for r in peak_rows), default=0.0)
    serve = None if cost_per_million is None else cost_per_million / 1e6
    request_cost = {
        "baseline": None if serve is None else round(totals["baseline"] * serve, 4),
        "scenario": None if serve is None else round(totals["scenario"] * serve, 4),
    }
    total_cost = {k: round(llm[k] + (request_cost[k] or 0.0), 4) for k in ("baseline", "scenario")}
    return {
        "name": request.name,
        "granularity": "day",
        "horizon": request.horizon,
        "start": days[0].isoformat() if days else None,
        "end": days[-1].isoformat() if days else None,
        "adjustments": [
            {
                "name": a.name,
                "start": a.start.isoformat(),
                "end": a.end.isoformat() if a.end else None,
                "multiplier": a.multiplier,
                "shape": a.shape,
            }
            for a in request.adjustments
        ],
        "models": {
            "requests": requests.model,
            "peak_rpm": peaks.model,
            "llm_cost_usd": llm_cost.model if llm_cost else None,
        },
        "summary": {
            "requests": {k: round(v, 3) for k, v in totals.items()},
            "peak_rpm": {
                "baseline": base_top,
                "scenario": top["yhat"] if top else None,
                "scenario_hi80": max((r["hi80"] for r in peak_rows), default=None),
                "scenario_hi95": max((r["hi95"] for r in peak_rows), default=None),
                "date": top["timestamp"][:10] if top else None,
            },
            "capacity": {
                "capacity_rpm": capacity,
                **headroom(capacity, top["yhat"] if top else 0.0),
                "crossing": {
                    k: (v[:10] if v else None) for k, v in crossings(peak_rows, capacity).items()
                },
                "days_over": None
                if capacity is None
                else sum(1 for r in peak_rows if r["yhat"] >= capacity),
            },
            "cost_usd": {
                "cost_per_million_requests": cost_per_million,
                "requests": request_cost,
                "llm": {k: round(v, 4) for k, v in llm.items()},
                "total": total_cost,
            },
        },
        "data": rows,
    }
