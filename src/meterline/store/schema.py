"""The analytics schema: raw events, rollups and the materialised views that feed them.

One DDL for both backends (chDB embedded and a ClickHouse server). Rollups are kept in
four widths (sets of dimensions), one table each, holding every level (minute, ten
minutes, hour, day) side by side under a ``level`` key column; each row holds counts,
sums and mergeable states (a DDSketch for latency percentiles, an exact distinct set for
consumers), so any range and any granularity can be answered from them without
rescanning raw rows — and any range of a query is one read of one table, whose fixed
cost (several milliseconds of planning) dwarfs reading a few hundred rollup rows.

Retention is a TTL on every table: each row carries the retention of its org's plan at
ingest and expires ``retention_days`` after it was received.
"""

from __future__ import annotations

from dataclasses import dataclass

GRANULARITIES: dict[str, str] = {
    "minute": "toStartOfMinute",
    "hour": "toStartOfHour",
    "day": "toStartOfDay",
}
"""Rollup granularity → the ClickHouse function that truncates a timestamp to it."""

GRANULARITY_SECONDS: dict[str, int] = {"minute": 60, "hour": 3600, "day": 86400}
"""Seconds in one bucket of each query granularity."""

ROLLUP_LEVELS: dict[str, tuple[str, int]] = {
    "minute": ("toStartOfMinute", 60),
    "tenminute": ("toStartOfTenMinutes", 600),
    "hour": ("toStartOfHour", 3600),
    "day": ("toStartOfDay", 86400),
}
"""Rollup level → (truncating function, seconds), finest first.

Ten-minute rollups are not a query granularity: they let the planner answer the sub-hour
edges of a range from at most a dozen rows per group instead of up to 118 minute rows,
each carrying a latency sketch to merge.
"""

LATENCY_QUANTILES: tuple[float, ...] = (0.5, 0.95, 0.99)
"""Quantile levels the latency sketches answer."""


def latency_sketch(combinator: str = "") -> str:
    """The latency sketch aggregate with a combinator suffix, e.g. ``MergeStateIf``.

    A DDSketch with 1 % relative accuracy: its error bound is guaranteed (a t-digest's is
    not), and the live windows use the same sketch, so live and stored percentiles are
    identical. Measured here, a t-digest builds rollups about 25 % faster; consistency
    and the guarantee were worth more.
    """
    levels = ", ".join(str(q) for q in LATENCY_QUANTILES)
    return f"quantilesDD{combinator}(0.01, {levels})"


STATUS_CLASS_SQL = (
    "multiIf(status >= 500, '5xx', status >= 400, '4xx', status >= 300, '3xx', "
    "status >= 200, '2xx', status >= 100, '1xx', '')"
)


@dataclass(frozen=True, slots=True)
class RollupWidth:
    """A rollup table keyed by a set of dimensions, holding several levels.

    ``granularities`` lists the levels kept, finest first. An insert is aggregated once
    to the finest level into the width's staging table (a ``Null`` table: rows pass
    through, nothing is stored), from raw events or, with a ``parent``, from the parent's
    staging rows (a wider width at the same level); one view then writes the staging
    rows, coarsened to every level, into the width's table.
    """

    name: str
    dimensions: tuple[str, ...]
    granularities: tuple[str, ...] = ("minute", "tenminute", "hour", "day")
    parent: str | None = None


ROLLUP_WIDTHS: tuple[RollupWidth, ...] = (
    RollupWidth("totals", ("type",), parent="routes"),
    RollupWidth("routes", ("type", "route", "method", "status_class")),
    # Per-consumer and all-dimension rows barely shrink at minute level (nearly one per
    # event) yet cost most to build, so these widths start at hours; the planner reads
    # the sub-hour edges of a range from raw events instead.
    RollupWidth("consumers", ("type", "consumer_id"), ("hour", "day")),
    RollupWidth(
        "full",
        ("type", "route", "method", "status", "status_class", "region", "model"),
        ("hour", "day"),
    ),
)
"""Narrowest first: the planner picks the first width that covers a query."""


def _v2_table(width: str, level: str) -> str:
    """Name of the rollup table of ``width`` at ``level`` in schema versions 1 and 2."""
    return f"rollup_{width}_{level}"


DIMENSION_TYPES = {
    "type": "LowCardinality(String)",
    "route": "LowCardinality(String)",
    "method": "LowCardinality(String)",
    "status": "UInt16",
    "status_class": "LowCardinality(String)",
    "region": "LowCardinality(String)",
    "model": "LowCardinality(String)",
    "consumer_id": "String",
}

AGGREGATE_COLUMNS: dict[str, tuple[str, str]] = {
    # name: (column type, expression over raw events); see ROLLUP_MERGES for coarser levels
    "requests": ("SimpleAggregateFunction(sum, UInt64)", "count()"),
    "client_errors": (
        "SimpleAggregateFunction(sum, UInt64)",
        "countIf(status >= 400 AND status < 500)",
    ),
    "server_errors": ("SimpleAggregateFunction(sum, UInt64)", "countIf(status >= 500)"),
    "latency_count": ("SimpleAggregateFunction(sum, UInt64)", "countIf(latency_ms >= 0)"),
    "latency_sum": ("SimpleAggregateFunction(sum, Float64)", "sumIf(latency_ms, latency_ms >= 0)"),
    "request_bytes": ("SimpleAggregateFunction(sum, UInt64)", "sum(request_size)"),
    "response_bytes": ("SimpleAggregateFunction(sum, UInt64)", "sum(response_size)"),
    "input_tokens": ("SimpleAggregateFunction(sum, UInt64)", "sum(input_tokens)"),
    "output_tokens": ("SimpleAggregateFunction(sum, UInt64)", "sum(output_tokens)"),
    "cost_usd": ("SimpleAggregateFunction(sum, Float64)", "sum(cost_usd)"),
    "first_seen": ("SimpleAggregateFunction(min, DateTime64(3, 'UTC'))", "min(timestamp)"),
    "last_seen": ("SimpleAggregateFunction(max, DateTime64(3, 'UTC'))", "max(timestamp)"),
    "received_at": ("SimpleAggregateFunction(max, DateTime('UTC'))", "max(received_at)"),
    "retention_days": ("SimpleAggregateFunction(max, UInt16)", "max(retention_days)"),
    "latency_q": (
        f"AggregateFunction({latency_sketch()}, Float64)",
        f"{latency_sketch('StateIf')}(latency_ms, latency_ms >= 0)",
    ),
    "consumers": (
        "AggregateFunction(uniqExact, String)",
        "uniqExactStateIf(consumer_id, consumer_id != '')",
    ),
}
"""Aggregate columns shared by every rollup table: column type and raw-event expression."""

ROLLUP_MERGES: dict[str, str] = {
    name: (
        f"{ctype.split('(')[1].split(',')[0]}({name})"
        if ctype.startswith("SimpleAggregateFunction")
        else latency_sketch("MergeState") + f"({name})"
        if name == "latency_q"
        else f"uniqExactMergeState({name})"
    )
    for name, (ctype, _) in AGGREGATE_COLUMNS.items()
}
"""How each aggregate column of a finer rollup rolls up into a coarser one."""

EVENTS_DDL = """
CREATE TABLE IF NOT EXISTS {db}.events (
    org_id LowCardinality(String),
    event_id String,
    type LowCardinality(String),
    timestamp_ms Int64 EPHEMERAL,
    timestamp DateTime64(3, 'UTC') DEFAULT fromUnixTimestamp64Milli(timestamp_ms, 'UTC'),
    received_at DateTime('UTC'),
    retention_days UInt16,
    method LowCardinality(String),
    path String,
    route LowCardinality(String),
    status UInt16,
    latency_ms Float64,
    consumer_id String,
    user_id String,
    api_token_id String,
    region LowCardinality(String),
    request_size UInt64,
    response_size UInt64,
    user_agent String,
    client_ip String,
    model LowCardinality(String),
    input_tokens UInt64,
    output_tokens UInt64,
    cost_usd Float64,
    success Int8,
    session_id String,
    tier LowCardinality(String),
    error String,
    agent LowCardinality(String),
    chat_id String,
    rating UInt8,
    comment String,
    properties String,
    ingest_batch String,
    status_class LowCardinality(String) MATERIALIZED {status_class}
) ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (org_id, toStartOfHour(timestamp), type, route, timestamp)
TTL received_at + toIntervalDay(retention_days)
SETTINGS index_granularity = 8192
"""


ROLLUP_INDEX_GRANULARITY = 256
"""Rows per index granule of a rollup table.

A rollup row carries sketch states of a few kilobytes, and ClickHouse decodes whole
granules: with the default 8,192 rows, reading the 49 minutes at the edge of a range
decoded thousands of latency sketches. Measured on 10M events, 256 cut such a read
from ~16 ms to ~6 ms; 64 was no faster.
"""


LEVEL_TYPE = "Enum8('minute' = 1, 'tenminute' = 2, 'hour' = 3, 'day' = 4)"
"""Type of the ``level`` key column: one byte, compared and bound as the level's name."""


def rollup_table(width: str) -> str:
    """Name of the rollup table of ``width`` (every level of it)."""
    return f"rollup_{width}"


def _stage_table(width: str) -> str:
    return f"rollup_{width}_stage"


def rollup_table_ddl(width: RollupWidth, *, table: str | None = None) -> str:
    """``CREATE TABLE IF NOT EXISTS`` of the rollup table of ``width`` (or named ``table``).

    ``level`` comes right after the org in the key, so each (level, bucket range) of a
    query is one contiguous slice of the index.
    """
    dims = ",\n    ".join(f"{d} {DIMENSION_TYPES[d]}" for d in width.dimensions)
    aggs = ",\n    ".join(f"{name} {ctype}" for name, (ctype, _) in AGGREGATE_COLUMNS.items())
    key = ", ".join(("org_id", "level", "bucket", *width.dimensions))
    return (
        f"CREATE TABLE IF NOT EXISTS {{db}}.{table or rollup_table(width.name)} (\n"
        f"    org_id LowCardinality(String),\n    level {LEVEL_TYPE},\n"
        f"    bucket DateTime('UTC'),\n    {dims},\n    {aggs}\n"
        ") ENGINE = AggregatingMergeTree\nPARTITION BY toYYYYMM(bucket)\n"
        f"ORDER BY ({key})\nTTL received_at + toIntervalDay(retention_days)\n"
        f"SETTINGS index_granularity = {ROLLUP_INDEX_GRANULARITY}"
    )


def _stage_ddl(width: RollupWidth) -> list[str]:
    """The staging table of ``width`` and the view aggregating its source into it."""
    stage = _stage_table(width.name)
    dims = ",\n    ".join(f"{d} {DIMENSION_TYPES[d]}" for d in width.dimensions)
    aggs = ",\n    ".join(f"{name} {ctype}" for name, (ctype, _) in AGGREGATE_COLUMNS.items())
    create = (
        f"CREATE TABLE IF NOT EXISTS {{db}}.{stage} (\n"
        f"    org_id LowCardinality(String),\n    bucket DateTime('UTC'),\n"
        f"    {dims},\n    {aggs}\n) ENGINE = Null"
    )
    truncate = ROLLUP_LEVELS[width.granularities[0]][0]
    if width.parent is None:
        exprs = {name: expr for name, (_, expr) in AGGREGATE_COLUMNS.items()}
        time_col, origin = "timestamp", "events"
    else:
        exprs, time_col, origin = ROLLUP_MERGES, "bucket", _stage_table(width.parent)
    select_dims = ", ".join(width.dimensions)
    select_aggs = ",\n    ".join(f"{expr} AS {name}" for name, expr in exprs.items())
    view = (
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.{stage}_mv TO {{db}}.{stage} AS\n"
        f"SELECT org_id, toDateTime({truncate}({time_col}), 'UTC') AS bucket, {select_dims},\n"
        f"    {select_aggs}\nFROM {{db}}.{origin}\nGROUP BY org_id, bucket, {select_dims}"
    )
    return [create, view]


def _levels_view(width: RollupWidth) -> str:
    """The view writing ``width``'s staging rows into its table at every level at once.

    Each staging row is repeated once per level (``ARRAY JOIN``), its bucket truncated to
    that level, and the rows aggregated together: an insert writes one part to the
    width's table, not one per level. Measured on 50,000-event inserts (a few seconds of
    traffic), the rollups then cost about a third less than with one view and one part
    per level. The price is on bulk inserts spanning days, whose finest rows (nearly one
    per event) are merged too: a 1M-event insert over 8 days took ~45 % more CPU.
    Passing the finest level through its own view avoids that but writes two parts per
    width, which made live inserts dearer than before; live inserts were chosen.
    """
    stage, table = _stage_table(width.name), rollup_table(width.name)
    levels = width.granularities
    truncate = ", ".join(f"level = '{lv}', {ROLLUP_LEVELS[lv][0]}(bucket)" for lv in levels[:-1])
    truncate = f"multiIf({truncate}, {ROLLUP_LEVELS[levels[-1]][0]}(bucket))"
    names = ", ".join(f"'{lv}'" for lv in levels)
    dims = ", ".join(width.dimensions)
    merges = ",\n    ".join(f"{expr} AS {name}" for name, expr in ROLLUP_MERGES.items())
    return (
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.{table}_levels_mv TO {{db}}.{table} AS\n"
        f"SELECT org_id, level, toDateTime({truncate}, 'UTC') AS bucket, {dims},\n"
        f"    {merges}\nFROM {{db}}.{stage}\n"
        f"ARRAY JOIN CAST([{names}] AS Array({LEVEL_TYPE})) AS level\n"
        f"GROUP BY org_id, level, bucket, {dims}"
    )


def _by_depth(widths: tuple[RollupWidth, ...]) -> list[RollupWidth]:
    """``widths`` with every parent before its children (a view reads an existing table)."""

    def depth(width: RollupWidth) -> int:
        parent = next((w for w in widths if w.name == width.parent), None)
        return 0 if parent is None else 1 + depth(parent)

    return sorted(widths, key=depth)


def rollup_schema(widths: tuple[RollupWidth, ...] = ROLLUP_WIDTHS) -> list[str]:
    """Every rollup table, staging table and view, each ``IF NOT EXISTS``.

    Ordered so that a view's source and target exist before it, and the views reading raw
    events come last: an insert never meets half of the chain.
    """
    ordered = _by_depth(widths)
    tables = [rollup_table_ddl(w) for w in ordered]
    stages = [_stage_ddl(w) for w in ordered]
    levels = [_levels_view(w) for w in ordered]
    return [
        *tables,
        *(create for create, _ in stages),
        *levels,
        *(mv for _, mv in reversed(stages)),
    ]
