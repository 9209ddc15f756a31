"""The compiler: a planned query becomes one parameterised ClickHouse statement.

Values never enter the SQL text: every filter value and time bound is a ``{name:Type}``
parameter, and every identifier comes from the vocabulary, never from the request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from meterline.query.model import Filter, MetricQuery
from meterline.query.planner import Segment, plan_segments
from meterline.query.vocabulary import DIMENSIONS, INTERMEDIATES, METRICS
from meterline.store import GRANULARITIES, GRANULARITY_SECONDS, define_once

_OPS = {"eq": "=", "neq": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


@dataclass(frozen=True, slots=True)
class CompiledQuery:
    """SQL text with ``{db}`` and ``{name:Type}`` placeholders, and the parameter values."""

    sql: str
    params: dict[str, Any]
    segments: tuple[Segment, ...]


def store_time(moment: datetime, millis: bool) -> str:
    """A UTC instant as the store's DateTime (or DateTime64(3) when ``millis``) text."""
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    return text + f".{moment.microsecond // 1000:03d}" if millis else text


class Params:
    """Collects bound values; :meth:`bind` returns the ``{pN:Type}`` placeholder."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def bind(self, value: Any, ctype: str) -> str:
        """Bind ``value`` as a parameter of ClickHouse type ``ctype``."""
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"{{{name}:{ctype}}}"


def filter_sql(flt: Filter, params: Params) -> str:
    """One filter as SQL over its vocabulary column, its values bound."""
    ctype = DIMENSIONS[flt.field].value_type
    column = flt.field
    if flt.op in ("in", "not_in"):
        bound = ", ".join(params.bind(v, ctype) for v in flt.value)
        return f"{column} {'NOT IN' if flt.op == 'not_in' else 'IN'} ({bound})"
    if flt.op == "contains":
        return f"positionCaseInsensitiveUTF8({column}, {params.bind(flt.value, 'String')}) > 0"
    return f"{column} {_OPS[flt.op]} {params.bind(flt.value, ctype)}"


def needed_intermediates(metrics: tuple[str, ...]) -> list[str]:
    """The intermediates the metrics need, in vocabulary order (stable SQL)."""
    wanted = {need for name in metrics for need in METRICS[name].needs}
    return [name for name in INTERMEDIATES if name in wanted]


def shared_partials(parts: list[str]) -> dict[str, str]:
    """Each intermediate → the first of ``parts`` with the same partial SQL (itself if none).

    The latency quantiles' partials are all the same bin map: a read across tables
    carries it once, and every quantile is merged from that one column.
    """
    first: dict[tuple[str, str], str] = {}
    return {
        name: first.setdefault((INTERMEDIATES[name].raw, INTERMEDIATES[name].rollup), name)
        for name in parts
    }


def _table_sql(
    segments: list[Segment],
    query: MetricQuery,
    org_param: str,
    params: Params,
    parts: list[str],
    *,
    metrics: tuple[str, ...] = (),
) -> str:
    """One read of the table that answers ``segments`` (all of one table).

    Rollup segments select their level besides their bucket range; the level names come
    from the schema, never from the request. Without ``metrics``, the intermediates come
    out as ``i_<name>``, partial states to merge; with them, only the metrics computed
    from the merged values come out, as ``m_<metric>``.
    """
    segment = segments[0]
    time_col = "timestamp" if segment.is_raw else "bucket"
    time_type = "DateTime64(3, 'UTC')" if segment.is_raw else "DateTime('UTC')"
    select = [f"{d} AS d_{d}" for d in query.dimensions]
    group = [f"d_{d}" for d in query.dimensions]
    if query.granularity:
        fn = GRANULARITIES[query.granularity]
        select.append(f"toDateTime({fn}({time_col}), 'UTC') AS ts")
        group.append("ts")
    if metrics:
        finals = {
            name: INTERMEDIATES[name].final(raw=segment.is_raw, bucketed=bool(query.granularity))
            for name in parts
        }
        select.extend(metric_columns(metrics, finals, "i_"))
    else:
        for name in parts:
            spec = INTERMEDIATES[name]
            select.append(f"{spec.raw if segment.is_raw else spec.rollup} AS i_{name}")
    ranges = [
        ("" if s.level is None else f"level = '{s.level}' AND ")
        + f"{time_col} >= {params.bind(store_time(s.start, s.is_raw), time_type)} "
        f"AND {time_col} < {params.bind(store_time(s.end, s.is_raw), time_type)}"
        for s in segments
    ]
    where = [
        f"org_id = {org_param}",
        ranges[0] if len(ranges) == 1 else "(" + " OR ".join(f"({r})" for r in ranges) + ")",
        *(filter_sql(f, params) for f in query.filters),
    ]
    sql = f"SELECT {', '.join(select)} FROM {{db}}.{segment.table} WHERE {' AND '.join(where)}"
    if group:
        sql += f" GROUP BY {', '.join(group)}"
    return sql


def metric_columns(metrics: tuple[str, ...], values: dict[str, str], prefix: str) -> list[str]:
    """The ``m_<metric>`` select items, each intermediate's SQL (``values``) written once.

    Only metrics leave the query: an intermediate is defined inline, under an alias
    (``<prefix><name>``), where a metric first needs it, and referred to by that alias
    afterwards; a metric that is one intermediate lends its own ``m_`` alias instead.
    Fewer output columns cost the engine less to plan and to format. (The aliases cannot
    be the intermediates' bare names: ``min(first_seen) AS first_seen`` would make the
    alias shadow the rollup column it aggregates.)
    """
    known: dict[str, str] = {}
    names = re.compile(r"\b(" + "|".join(map(re.escape, values)) + r")\b") if values else None
    items = []
    for metric in metrics:
        expression = METRICS[metric].expression
        if expression in values:
            items.append(f"{known.get(expression, values[expression])} AS m_{metric}")
            known.setdefault(expression, f"m_{metric}")
            continue

        def inline(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in known:
                return known[name]
            known[name] = f"{prefix}{name}"
            return f"({values[name]} AS {prefix}{name})"

        if names is not None:
            expression = names.sub(inline, expression)
        items.append(f"{expression} AS m_{metric}")
    return define_once(items)


def metric_minutes(query: MetricQuery) -> float:
    """Minutes in one bucket of the query (or in its whole range when not bucketed)."""
    if query.granularity:
        return GRANULARITY_SECONDS[query.granularity] / 60
    return query.time_range.seconds / 60


def compile_query(
    query: MetricQuery, org_id: str, *, paged: bool = True, use_rollups: bool = True
) -> CompiledQuery:
    """Compile ``query`` for ``org_id`` into one statement over the planned segments.

    The result has columns ``d_<dimension>``, ``ts`` (when bucketed) and
    ``m_<metric>``. ``paged=False`` leaves out ORDER BY/LIMIT (for counting groups).
    """
    params = Params()
    org_param = params.bind(org_id, "String")
    segments = plan_segments(query, use_rollups=use_rollups)
    parts = needed_intermediates(query.metrics)
    # Each table read has a fixed cost (several ms of planning in ClickHouse) that dwarfs
    # reading a few rollup rows, so every level of a width is one read of its table.
    by_table: dict[str, list[Segment]] = {}
    for segment in segments:
        by_table.setdefault(segment.table, []).append(segment)
    keys = [f"d_{d}" for d in query.dimensions] + (["ts"] if query.granularity else [])
    minutes = repr(float(metric_minutes(query)))
    if len(by_table) == 1:
        # One table: aggregate to final values in one step. A second level merging the
        # partial states again costs as much as the read (sketch states are copied).
        (group,) = by_table.values()
        sql = _table_sql(group, query, org_param, params, parts, metrics=query.metrics)
    else:
        shared = shared_partials(parts)
        carried = [p for p in parts if shared[p] == p]
        union = " UNION ALL ".join(
            _table_sql(group, query, org_param, params, carried) for group in by_table.values()
        )
        merged = {p: INTERMEDIATES[p].merge.replace("{}", f"i_{shared[p]}") for p in parts}
        metrics = metric_columns(query.metrics, merged, "v_")
        sql = f"SELECT {', '.join([*keys, *metrics])} FROM ({union})"
        if keys:
            sql += f" GROUP BY {', '.join(keys)}"
    sql = sql.replace("{minutes}", minutes)
    if paged:
        order = []
        for item in query.order_by:
            column = (
                "ts"
                if item.field == "timestamp"
                else f"m_{item.field}"
                if item.field in METRICS
                else f"d_{item.field}"
            )
            order.append(f"{column} {item.direction.upper()}")
        if not query.order_by and query.granularity:
            order.append("ts ASC")
        elif not query.order_by and query.metrics:
            order.append(f"m_{query.metrics[0]} DESC")
        order.extend(f"{k} ASC" for k in keys if not any(o.startswith(k + " ") for o in order))
        if order:
            sql += f" ORDER BY {', '.join(order)}"
        if query.limit is not None and not (query.granularity and query.dimensions):
            sql += f" LIMIT {int(query.limit)} OFFSET {int(query.offset)}"
    return CompiledQuery(sql, params.values, tuple(segments))
