"""The fixed analytics views (overview, time series, endpoints, consumers, chart data).

Each is a preset of :class:`MetricQuery` run by :class:`QueryService`, shaped the way
its route documents; none computes a number of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meterline.errors import ValidationError
from meterline.query.events import ERROR_FILTER, EventQuery
from meterline.query.model import Filter, MetricQuery, OrderBy, check_size
from meterline.query.service import QueryService, iso
from meterline.query.timerange import TimeRange
from meterline.query.vocabulary import DIMENSIONS, METRICS

_LEVEL_ALIASES = {
    "minute": "minute",
    "minutely": "minute",
    "hour": "hour",
    "hourly": "hour",
    "day": "day",
    "daily": "day",
}


def equality_filters(params: Mapping[str, str]) -> tuple[Filter, ...]:
    """Filters from query-string parameters named after dimensions (``?route=/a``)."""
    filters = []
    for name, value in params.items():
        if name not in DIMENSIONS:
            continue
        if DIMENSIONS[name].value_type != "String":
            try:
                filters.append(Filter(name, "eq", int(value)))
            except ValueError:
                raise ValidationError(
                    f"'{name}' must be an integer",
                    validation_errors=[{"field": name, "message": "must be an integer"}],
                ) from None
        else:
            filters.append(Filter(name, "eq", value))
    return tuple(filters)


def default_granularity(time_range: TimeRange) -> str:
    """A granularity that gives a readable number of points for the range."""
    if time_range.seconds <= 6 * 3600:
        return "minute"
    if time_range.seconds <= 8 * 86400:
        return "hour"
    return "day"


def overview(
    service: QueryService, org_id: str, time_range: TimeRange, filters: tuple[Filter, ...]
) -> dict[str, Any]:
    """KPIs for a range: totals, rate, latency percentiles, error rate, status mix."""
    kpis = service.run(
        org_id,
        MetricQuery(
            metrics=(
                "requests",
                "requests_per_minute",
                "latency_avg",
                "latency_p50",
                "latency_p95",
                "latency_p99",
                "error_rate",
                "unique_consumers",
                "bandwidth_bytes",
            ),
            time_range=time_range,
            filters=filters,
        ),
    ).data[0]
    by_class = service.run(
        org_id,
        MetricQuery(
            metrics=("requests",),
            dimensions=("status_class",),
            time_range=time_range,
            filters=filters,
        ),
    ).data
    distribution = {"2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0}
    for row in by_class:
        if row["status_class"] in distribution:
            distribution[row["status_class"]] = row["requests"]
    return {
        "total_requests": kpis["requests"],
        "requests_per_minute": kpis["requests_per_minute"],
        "avg_latency_ms": kpis["latency_avg"],
        "p50_latency_ms": kpis["latency_p50"],
        "p95_latency_ms": kpis["latency_p95"],
        "p99_latency_ms": kpis["latency_p99"],
        "error_rate": kpis["error_rate"],
        "unique_consumers": kpis["unique_consumers"],
        "bandwidth_bytes": kpis["bandwidth_bytes"],
        "status_distribution": distribution,
        "start": iso(time_range.start),
        "end": iso(time_range.end),
    }


def _metric(name: str | None, field: str = "metric") -> str:
    if not name:
        raise ValidationError(
            f"'{field}' is required",
            code="PARAMETER_REQUIRED",
            validation_errors=[{"field": field, "message": "required"}],
        )
    if name not in METRICS or METRICS[name].kind == "time":
        allowed = ", ".join(m for m, spec in METRICS.items() if spec.kind != "time")
        raise ValidationError(
            f"unknown metric {name!r}",
            details=f"Allowed metrics: {allowed}.",
            validation_errors=[{"field": field, "message": f"must be one of {allowed}"}],
        )
    return name


def _granularity(value: str | None, time_range: TimeRange, field: str) -> str:
    if value is None:
        return default_granularity(time_range)
    level = _LEVEL_ALIASES.get(value.lower())
    if level is None:
        raise ValidationError(
            f"'{field}' must be minute, hour or day",
            validation_errors=[{"field": field, "message": "minute, hour or day"}],
        )
    return level


def timeseries(
    service: QueryService,
    org_id: str,
    time_range: TimeRange,
    metric: str | None,
    granularity: str | None,
    filters: tuple[Filter, ...],
) -> dict[str, Any]:
    """A gap-filled series of one metric: ``points: [{timestamp, value}]``."""
    name = _metric(metric)
    level = _granularity(granularity, time_range, "granularity")
    query = MetricQuery(metrics=(name,), time_range=time_range, granularity=level, filters=filters)
    check_size(query)
    result = service.run(org_id, query)
    return {
        "metric": name,
        "granularity": level,
        "unit": METRICS[name].unit,
        "points": [{"timestamp": r["timestamp"], "value": r[name]} for r in result.data],
        "start": iso(time_range.start),
        "end": iso(time_range.end),
    }


_ENDPOINT_SORTS = {
    "requests": "requests",
    "error_rate": "error_rate",
    "avg_latency_ms": "latency_avg",
    "p95_latency_ms": "latency_p95",
    "p99_latency_ms": "latency_p99",
    "route": "route",
}


def _direction(order: str) -> str:
    if order not in ("asc", "desc"):
        raise ValidationError(
            "'order' must be asc or desc",
            validation_errors=[{"field": "order", "message": "asc or desc"}],
        )
    return order


def endpoints(
    service: QueryService,
    org_id: str,
    time_range: TimeRange,
    filters: tuple[Filter, ...],
    *,
    sort: str,
    order: str,
    limit: int,
) -> dict[str, Any]:
    """Top endpoints (method + route) with volume, error rate and latency."""
    if sort not in _ENDPOINT_SORTS:
        raise ValidationError(
            f"cannot sort by {sort!r}",
            validation_errors=[
                {"field": "sort", "message": f"one of {', '.join(_ENDPOINT_SORTS)}"}
            ],
        )
    result = service.run(
        org_id,
        MetricQuery(
            metrics=("requests", "error_rate", "latency_avg", "latency_p95", "latency_p99"),
            dimensions=("method", "route"),
            filters=(*filters, Filter("type", "eq", "request")),
            time_range=time_range,
            order_by=(OrderBy(_ENDPOINT_SORTS[sort], _direction(order)),),
            limit=limit,
        ),
    )
    return {
        "data": [
            {
                "method": r["method"],
                "route": r["route"],
                "requests": r["requests"],
                "error_rate": r["error_rate"],
                "avg_latency_ms": r["latency_avg"],
                "p95_latency_ms": r["latency_p95"],
                "p99_latency_ms": r["latency_p99"],
            }
            for r in result.data
        ],
        "start": iso(time_range.start),
        "end": iso(time_range.end),
    }


_CONSUMER_SORTS = (
    "requests",
    "errors",
    "error_rate",
    "bandwidth_bytes",
    "last_seen",
    "first_seen",
    "consumer_id",
)


def consumers(
    service: QueryService,
    org_id: str,
    time_range: TimeRange,
    filters: tuple[Filter, ...],
    *,
    sort: str,
    order: str,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    """Per-consumer usage, paged, with the total number of consumers in the range."""
    if sort not in _CONSUMER_SORTS:
        raise ValidationError(
            f"cannot sort by {sort!r}",
            validation_errors=[
                {"field": "sort", "message": f"one of {', '.join(_CONSUMER_SORTS)}"}
            ],
        )
    query = MetricQuery(
        metrics=("requests", "errors", "error_rate", "bandwidth_bytes", "first_seen", "last_seen"),
        dimensions=("consumer_id",),
        filters=(*filters, Filter("consumer_id", "neq", ""), Filter("type", "eq", "request")),
        time_range=time_range,
        order_by=(OrderBy(sort, _direction(order)),),
        limit=limit,
        offset=offset,
    )
    result = service.run(org_id, query)
    return {
        "data": result.data,
        "pagination": {
            "total": service.count_groups(org_id, query),
            "limit": limit,
            "offset": offset,
        },
        "start": iso(time_range.start),
        "end": iso(time_range.end),
    }


def display_value(metric: str, value: Any) -> str:
    """A human-readable rendering of a metric value (for chart labels)."""
    if value is None:
        return "—"
    kind = METRICS[metric].kind
    if kind == "ratio":
        return f"{value * 100:.2f}%"
    if kind == "latency":
        return f"{value:,.1f} ms"
    if kind == "money":
        return f"${value:,.2f}"
    if kind == "bytes":
        size = float(value)
        for unit in ("B", "KB", "MB", "GB", "TB"):
            if size < 1024 or unit == "TB":
                return f"{size:,.1f} {unit}" if unit != "B" else f"{int(size)} B"
            size /= 1024
    if kind == "rate":
        return f"{value:,.1f}/min"
    return f"{value:,}"


def visualization(
    service: QueryService,
    org_id: str,
    time_range: TimeRange,
    metric: str | None,
    aggregation: str | None,
    filters: tuple[Filter, ...],
) -> dict[str, Any]:
    """Chart-ready points: ``data_points: [{timestamp, value, display_value}]``."""
    series = timeseries(service, org_id, time_range, metric, aggregation, filters)
    name = series["metric"]
    return {
        "metric": name,
        "aggregation": series["granularity"],
        "unit": series["unit"],
        "data_points": [
            {
                "timestamp": p["timestamp"],
                "value": p["value"],
                "display_value": display_value(name, p["value"]),
            }
            for p in series["points"]
        ],
        "start": series["start"],
        "end": series["end"],
    }


def recent_errors(
    service: QueryService,
    org_id: str,
    time_range: TimeRange,
    filters: tuple[Filter, ...],
    limit: int = 50,
) -> dict[str, Any]:
    """The latest 4xx/5xx request events matching ``filters``, newest first."""
    query = EventQuery(time_range=time_range, filters=(*filters, ERROR_FILTER), limit=limit)
    return {
        "data": service.events(org_id, query),
        "start": iso(time_range.start),
        "end": iso(time_range.end),
        "limit": limit,
    }
