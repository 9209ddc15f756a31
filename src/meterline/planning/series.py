"""Metric history from the query model, and forecasts of it at hourly or daily grain.

Every number comes from :class:`QueryService` (the one query model): a metric of the
vocabulary, bucketed by hour or day, with the same equality filters as the analytics
routes. The peak requests per minute of each bucket is the busiest minute of the
minute series, so capacity can be planned against what the API actually has to serve.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from meterline.errors import ValidationError
from meterline.insight import daily, forecast
from meterline.insight.forecast import Prediction
from meterline.query import METRICS, Filter, MetricQuery, QueryService, TimeRange, iso

STEP = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
HISTORY = {"hour": timedelta(days=35), "day": timedelta(days=365)}
PEAK_HISTORY = {"hour": timedelta(days=35), "day": timedelta(days=70)}
MAX_HORIZON = {"hour": 168, "day": 365}
MIN_HISTORY = {"hour": 2 * forecast.WEEK + 6 + 14 * 24, "day": daily.MIN_DAYS}
FORECAST_KINDS = ("count", "latency", "bytes", "money", "ratio", "rate")
PEAK_RPM = "peak_requests_per_minute"
"""The pseudo-metric of capacity planning: the busiest minute's requests in a bucket."""


@dataclass(frozen=True, slots=True)
class Series:
    """A complete-bucket history: ``stamps[i]`` is the start of bucket ``i``; ``end`` is
    the start of the first bucket not yet complete (where a forecast begins)."""

    metric: str
    granularity: str
    stamps: list[datetime]
    values: np.ndarray
    end: datetime


@dataclass(frozen=True, slots=True)
class Forecast:
    """A forecast of a series: one row per future bucket, and the model chosen."""

    series: Series
    horizon: int
    model: str | None
    rows: list[dict[str, Any]]

    def head(self, horizon: int) -> Forecast:
        """The same forecast cut to its first ``horizon`` buckets (a forecast's first
        buckets do not depend on how far it reaches)."""
        return Forecast(self.series, horizon, self.model, self.rows[:horizon])

    def as_json(self) -> dict[str, Any]:
        """The ``GET /v2/forecast`` response body."""
        body: dict[str, Any] = {
            "metric": self.series.metric,
            "granularity": self.series.granularity,
            "horizon": self.horizon,
            "model": self.model,
            "history_points": len(self.series.values),
            "data": self.rows,
        }
        if self.series.granularity == "hour":
            body["history_hours"] = len(self.series.values)
        return body


def check_granularity(granularity: str, horizon: int) -> None:
    """Raise :class:`ValidationError` unless ``granularity`` is hour or day and
    ``horizon`` is within its limit."""
    if granularity not in STEP:
        raise ValidationError(
            f"granularity {granularity!r} cannot be forecast",
            details="Use hour (up to 168 hours ahead) or day (up to 365 days ahead).",
            validation_errors=[{"field": "granularity", "message": "must be hour or day"}],
        )
    if not 1 <= horizon <= MAX_HORIZON[granularity]:
        raise ValidationError(
            f"horizon must be 1..{MAX_HORIZON[granularity]} for {granularity} granularity",
            validation_errors=[
                {"field": "horizon", "message": f"1..{MAX_HORIZON[granularity]} {granularity}s"}
            ],
        )


def floor_bucket(moment: datetime, granularity: str) -> datetime:
    """The start of the hour or day that holds ``moment``."""
    moment = moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0) if granularity == "day" else moment


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def _trim(stamps: list[datetime], values: list[float]) -> tuple[list[datetime], list[float]]:
    """History starts at the first bucket with data; leading empty buckets are not history."""
    first = next((i for i, v in enumerate(values) if v), len(values))
    return stamps[first:], values[first:]


def metric_history(
    queries: QueryService,
    org_id: str,
    metric: str,
    granularity: str,
    filters: Sequence[Filter] = (),
    now: datetime | None = None,
) -> Series:
    """The complete hourly or daily buckets of ``metric`` up to ``now``.

    Buckets without requests count 0 for counts and money, and repeat the previous
    value for latencies and ratios (no requests is no evidence of a latency).
    """
    if metric == PEAK_RPM:
        return peak_history(queries, org_id, granularity, filters, now)
    if metric not in METRICS or METRICS[metric].kind not in FORECAST_KINDS:
        forecastable = sorted(n for n, m in METRICS.items() if m.kind in FORECAST_KINDS)
        raise ValidationError(
            f"metric {metric!r} cannot be forecast",
            details=f"Use one of: {', '.join([*forecastable, PEAK_RPM])}.",
            validation_errors=[{"field": "metric", "message": "not a forecastable metric"}],
        )
    end = floor_bucket(now or queries.now(), granularity)
    query = MetricQuery(
        (metric,),
        TimeRange(end - HISTORY[granularity], end),
        filters=tuple(filters),
        granularity=granularity,
    )
    rows = [r for r in queries.run(org_id, query).data if _parse(r["timestamp"]) < end]
    carry = METRICS[metric].kind in ("latency", "ratio")
    stamps: list[datetime] = []
    values: list[float] = []
    previous = 0.0
    for r in rows:
        raw = r[metric]
        value = float(raw) if raw is not None else (previous if carry else 0.0)
        previous = value
        stamps.append(_parse(r["timestamp"]))
        values.append(value)
    if carry:
        # a bucket with no requests has a default value, not a measurement
        counts = MetricQuery(
            ("requests",), query.time_range, filters=tuple(filters), granularity=granularity
        )
        busy = [bool(r["requests"]) for r in queries.run(org_id, counts).data][: len(values)]
        values = _carry_forward(values, busy)
    stamps, values = _trim(stamps, values)
    return Series(metric, granularity, stamps, np.asarray(values, dtype=np.float64), end)


def _carry_forward(values: list[float], busy: list[bool]) -> list[float]:
    out: list[float] = []
    previous = 0.0
    for value, has in zip(values, busy + [True] * (len(values) - len(busy)), strict=True):
        previous = value if has else previous
        out.append(previous)
    return out


def peak_history(
    queries: QueryService,
    org_id: str,
    granularity: str,
    filters: Sequence[Filter] = (),
    now: datetime | None = None,
) -> Series:
    """Each complete bucket's busiest minute (requests in that minute) up to ``now``."""
    end = floor_bucket(now or queries.now(), granularity)
    start = end - PEAK_HISTORY[granularity]
    query = MetricQuery(
        ("requests",),
        TimeRange(start, end),
        filters=tuple(filters),
        granularity="minute",
        fill_gaps=False,
    )
    step = STEP[granularity]
    buckets = int((end - start) / step)
    peaks = [0.0] * buckets
    for row in queries.run(org_id, query).data:
        index = int((_parse(row["timestamp"]) - start) / step)
        if 0 <= index < buckets:
            peaks[index] = max(peaks[index], float(row["requests"]))
    stamps, values = _trim([start + i * step for i in range(buckets)], peaks)
    return Series(PEAK_RPM, granularity, stamps, np.asarray(values, dtype=np.float64), end)


def current_peak(
    queries: QueryService, org_id: str, window: timedelta, now: datetime | None = None
) -> tuple[float, datetime | None]:
    """The busiest minute (requests) in the ``window`` up to ``now``, and when it was."""
    moment = now or queries.now()
    query = MetricQuery(
        ("requests",), TimeRange(moment - window, moment), granularity="minute", fill_gaps=False
    )
    best, when = 0.0, None
    for row in queries.run(org_id, query).data:
        if float(row["requests"]) > best:
            best, when = float(row["requests"]), _parse(row["timestamp"])
    return best, when


def _clamp(metric: str, value: float) -> float:
    value = max(value, 0.0)
    if metric in METRICS and METRICS[metric].kind == "ratio":
        value = min(value, 1.0)
    return round(value, 6 if metric == "cost_usd" or value < 10 else 3)


def predict(series: Series, horizon: int) -> Forecast:
    """Forecast ``horizon`` buckets after ``series``; raises :class:`ValidationError`
    (``not enough history``) when the series is too short to choose a model and
    calibrate its intervals."""
    g = series.granularity
    try:
        if g == "hour":
            predictions: list[Prediction] = forecast.forecast_ahead(series.values, horizon)
        else:
            predictions = daily.forecast_ahead(series.values, horizon)
    except ValueError:
        unit = "hours" if g == "hour" else "days"
        raise ValidationError(
            "not enough history to forecast",
            details=f"{series.metric} at {g} granularity needs {MIN_HISTORY[g]} {unit} of "
            f"history with data; it has {len(series.values)} (up to now).",
        ) from None
    rows = []
    for p in predictions:
        moment = series.end + STEP[g] * (p.horizon - 1)
        yhat, lo80, hi80, lo95, hi95 = (
            _clamp(series.metric, v) for v in (p.yhat, p.lo80, p.hi80, p.lo95, p.hi95)
        )
        # intervals always contain the point, also once clamped into the metric's range
        rows.append(
            {
                "timestamp": iso(moment),
                "yhat": yhat,
                "lo80": min(lo80, yhat),
                "hi80": max(hi80, yhat),
                "lo95": min(lo95, lo80, yhat),
                "hi95": max(hi95, hi80, yhat),
            }
        )
    model = predictions[0].model if predictions else None
    return Forecast(series, horizon, model, rows)


def forecast_metric(
    queries: QueryService,
    org_id: str,
    metric: str,
    horizon: int,
    granularity: str = "hour",
    filters: Sequence[Filter] = (),
    now: datetime | None = None,
) -> Forecast:
    """Forecast ``metric`` (a vocabulary metric, or :data:`PEAK_RPM`) ``horizon`` hours
    or days ahead from the org's history, with point, 80 % and 95 % intervals."""
    check_granularity(granularity, horizon)
    return predict(metric_history(queries, org_id, metric, granularity, filters, now), horizon)
