"""The metric query: what to compute, parsed and validated from its JSON form.

A :class:`MetricQuery` is metrics × dimensions × filters × time range × granularity,
with ordering and paging. :func:`parse_query` builds one from a request body and
collects every problem into one ``VALIDATION_ERROR`` that names the allowed values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from meterline.errors import ValidationError
from meterline.query.timerange import TimeRange, resolve_range
from meterline.query.vocabulary import DIMENSIONS, METRICS
from meterline.store import GRANULARITY_SECONDS

FILTER_OPS = ("eq", "neq", "in", "not_in", "gt", "gte", "lt", "lte", "contains")
MAX_LIMIT = 10_000
MAX_POINTS = 20_000


@dataclass(frozen=True, slots=True)
class Filter:
    """One condition on a dimension; ``value`` is a list for ``in``/``not_in``."""

    field: str
    op: str
    value: Any


@dataclass(frozen=True, slots=True)
class OrderBy:
    """A sort key: a metric or dimension name (or ``timestamp``) and a direction."""

    field: str
    direction: str = "desc"


@dataclass(frozen=True, slots=True)
class MetricQuery:
    """A validated query. Build with :func:`parse_query` or directly in code."""

    metrics: tuple[str, ...]
    time_range: TimeRange
    dimensions: tuple[str, ...] = ()
    filters: tuple[Filter, ...] = ()
    granularity: str | None = None
    order_by: tuple[OrderBy, ...] = ()
    limit: int | None = None
    offset: int = 0
    fill_gaps: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def _problem(errors: list[dict[str, Any]], field_name: str, message: str) -> None:
    errors.append({"field": field_name, "message": message})


def _check_filter(raw: Any, index: int, errors: list[dict[str, Any]]) -> Filter | None:
    where = f"filters[{index}]"
    if not isinstance(raw, dict):
        _problem(errors, where, "must be an object {field, op, value}")
        return None
    name, op, value = raw.get("field"), raw.get("op", "eq"), raw.get("value")
    if name not in DIMENSIONS:
        _problem(
            errors, f"{where}.field", f"unknown field {name!r}; allowed: {', '.join(DIMENSIONS)}"
        )
        return None
    if op not in FILTER_OPS:
        _problem(errors, f"{where}.op", f"unknown op {op!r}; allowed: {', '.join(FILTER_OPS)}")
        return None
    numeric = DIMENSIONS[name].value_type != "String"
    values: list[Any] = value if isinstance(value, list) else [value]
    if op in ("in", "not_in") and (not isinstance(value, list) or not value or len(value) > 1000):
        _problem(errors, f"{where}.value", "must be a list of 1 to 1000 values for in/not_in")
        return None
    if op not in ("in", "not_in") and isinstance(value, list):
        _problem(errors, f"{where}.value", f"'{op}' takes a single value, not a list")
        return None
    for item in values:
        if numeric:
            if isinstance(item, bool) or not isinstance(item, int):
                _problem(errors, f"{where}.value", f"{name} values must be integers")
                return None
        elif not isinstance(item, str) or len(item) > 1024:
            _problem(errors, f"{where}.value", f"{name} values must be strings (≤ 1024 chars)")
            return None
    if op == "contains" and numeric:
        _problem(errors, f"{where}.op", f"'contains' works on text fields, not {name}")
        return None
    return Filter(name, op, value)


def parse_query(body: Any, *, now: datetime) -> MetricQuery:
    """Validate the JSON form of a query (see ``POST /v2/query``) into a :class:`MetricQuery`.

    Raises :class:`ValidationError` listing every problem found.
    """
    if not isinstance(body, dict):
        raise ValidationError("the query must be a JSON object")
    errors: list[dict[str, Any]] = []
    metrics = body.get("metrics")
    if not isinstance(metrics, list) or not metrics:
        _problem(errors, "metrics", "give a non-empty list of metric names")
        metrics = []
    for name in metrics or []:
        if name not in METRICS:
            _problem(errors, "metrics", f"unknown metric {name!r}; allowed: {', '.join(METRICS)}")
    dimensions = body.get("dimensions") or []
    if not isinstance(dimensions, list):
        _problem(errors, "dimensions", "must be a list of dimension names")
        dimensions = []
    for name in dimensions:
        if name not in DIMENSIONS:
            _problem(
                errors,
                "dimensions",
                f"unknown dimension {name!r}; allowed: {', '.join(DIMENSIONS)}",
            )
    if len(set(dimensions)) != len(dimensions):
        _problem(errors, "dimensions", "a dimension is listed twice")
    raw_filters = body.get("filters") or []
    filters: list[Filter] = []
    if not isinstance(raw_filters, list):
        _problem(errors, "filters", "must be a list of {field, op, value} objects")
    else:
        for i, raw in enumerate(raw_filters):
            checked = _check_filter(raw, i, errors)
            if checked is not None:
                filters.append(checked)
    granularity = body.get("granularity")
    if granularity is not None and granularity not in GRANULARITY_SECONDS:
        _problem(errors, "granularity", "must be minute, hour, day or null")
        granularity = None
    order_by: list[OrderBy] = []
    orderable = set(metrics) | set(dimensions) | ({"timestamp"} if granularity else set())
    for i, item in enumerate(body.get("order_by") or []):
        if not isinstance(item, dict) or item.get("field") not in orderable:
            _problem(
                errors, f"order_by[{i}]", f"field must be one of {', '.join(sorted(orderable))}"
            )
            continue
        direction = item.get("direction", "desc")
        if direction not in ("asc", "desc"):
            _problem(errors, f"order_by[{i}].direction", "must be asc or desc")
            continue
        order_by.append(OrderBy(item["field"], direction))
    limit = body.get("limit")
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT
    ):
        _problem(errors, "limit", f"must be an integer from 1 to {MAX_LIMIT}")
        limit = None
    offset = body.get("offset", 0)
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        _problem(errors, "offset", "must be a non-negative integer")
        offset = 0
    for key in ("range", "start", "end"):
        if body.get(key) is not None and not isinstance(body.get(key), str):
            _problem(errors, key, "must be a string")
    if errors:
        raise ValidationError("the query is not valid", validation_errors=errors)
    time_range = resolve_range(
        range_=body.get("range"), start=body.get("start"), end=body.get("end"), now=now
    )
    query = MetricQuery(
        metrics=tuple(metrics),
        dimensions=tuple(dimensions),
        filters=tuple(filters),
        time_range=time_range,
        granularity=granularity,
        order_by=tuple(order_by),
        limit=limit,
        offset=offset,
    )
    check_size(query)
    return query


def check_size(query: MetricQuery) -> None:
    """Refuse a series with more points than :data:`MAX_POINTS`, naming a coarser choice."""
    if query.granularity is None:
        return
    points = query.time_range.seconds / GRANULARITY_SECONDS[query.granularity]
    if points > MAX_POINTS:
        raise ValidationError(
            f"{query.granularity} granularity over this range gives {int(points)} points",
            details=f"At most {MAX_POINTS} points per series; use a coarser granularity.",
            validation_errors=[{"field": "granularity", "message": "too fine for the range"}],
        )
