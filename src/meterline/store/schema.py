"""The analytics schema: raw events, rollups and the materialised views that feed them.

One DDL for both backends (chDB embedded and a ClickHouse server). Rollups are kept at
four levels (minute, ten minutes, hour, day) and four widths; each holds counts, sums
and mergeable states (a DDSketch for latency percentiles, an exact distinct set for
consumers), so any range and any granularity can be answered from them without rescanning raw rows.

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
    """A family of rollup tables keyed by the same dimensions.

    ``granularities`` lists the levels kept, finest first. The finest is fed by a view
    over ``parent``'s finest table (a wider width at the same level) or, without a
    parent, over raw events; each coarser level by a view over the level below it. So
    raw rows are aggregated once per insert, and every other view reads rollup rows.
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


def rollup_table(width: str, granularity: str) -> str:
    """Name of the rollup table of ``width`` at ``granularity``."""
    return f"rollup_{width}_{granularity}"


_DIM_TYPES = {
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


def _rollup_ddl(
    width: RollupWidth,
    granularity: str,
    source: str | None,
    *,
    table: str | None = None,
    index_granularity: int | None = None,
) -> list[str]:
    """DDL of one rollup table and the view feeding it from ``source`` (raw when None).

    ``table`` overrides the table's name (the view still writes to the real name);
    ``index_granularity`` sets the table's granule size (the server default when None).
    """
    target = rollup_table(width.name, granularity)
    table = table or target
    dims = ",\n    ".join(f"{d} {_DIM_TYPES[d]}" for d in width.dimensions)
    aggs = ",\n    ".join(f"{name} {ctype}" for name, (ctype, _) in AGGREGATE_COLUMNS.items())
    key = ", ".join(("org_id", "bucket", *width.dimensions))
    partition = "toYYYYMM(bucket)" if granularity != "day" else "toYear(bucket)"
    create = (
        f"CREATE TABLE IF NOT EXISTS {{db}}.{table} (\n"
        "    org_id LowCardinality(String),\n    bucket DateTime('UTC'),\n"
        f"    {dims},\n    {aggs}\n"
        f") ENGINE = AggregatingMergeTree\nPARTITION BY {partition}\nORDER BY ({key})\n"
        f"TTL received_at + toIntervalDay(retention_days)"
    )
    if index_granularity is not None:
        create += f"\nSETTINGS index_granularity = {index_granularity}"
    select_dims = ", ".join(width.dimensions)
    if source is None:
        exprs = {name: expr for name, (_, expr) in AGGREGATE_COLUMNS.items()}
        time_col, origin = "timestamp", "events"
    else:
        exprs, time_col, origin = ROLLUP_MERGES, "bucket", source
    select_aggs = ",\n    ".join(f"{expr} AS {name}" for name, expr in exprs.items())
    view = (
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.{target}_mv TO {{db}}.{target} AS\n"
        f"SELECT org_id, toDateTime({ROLLUP_LEVELS[granularity][0]}({time_col}), 'UTC') AS bucket, "
        f"{select_dims},\n    {select_aggs}\nFROM {{db}}.{origin}\n"
        f"GROUP BY org_id, bucket, {select_dims}"
    )
    return [create, view]


_V1_WIDTHS: tuple[RollupWidth, ...] = tuple(
    RollupWidth(
        w.name, w.dimensions, tuple(g for g in w.granularities if g != "tenminute"), w.parent
    )
    for w in ROLLUP_WIDTHS
)
"""The widths as schema version 1 created them (before ten-minute rollups)."""


def _rollup_tables(
    widths: tuple[RollupWidth, ...] = ROLLUP_WIDTHS,
) -> list[tuple[RollupWidth, str, str | None]]:
    """Every rollup table as ``(width, granularity, source)``, sources before readers."""

    # A view can only read a table that exists: parents before their children.
    def depth(width: RollupWidth) -> int:
        parent = next((w for w in widths if w.name == width.parent), None)
        return 0 if parent is None else 1 + depth(parent)

    tables: list[tuple[RollupWidth, str, str | None]] = []
    for width in sorted(widths, key=depth):
        source = rollup_table(width.parent, width.granularities[0]) if width.parent else None
        for granularity in width.granularities:
            tables.append((width, granularity, source))
            source = rollup_table(width.name, granularity)
    return tables


def _initial_schema() -> list[str]:
    statements = [EVENTS_DDL.replace("{status_class}", STATUS_CLASS_SQL)]
    for width, granularity, source in _rollup_tables(_V1_WIDTHS):
        statements.extend(_rollup_ddl(width, granularity, source))
    return statements


def _ten_minute_levels_small_granules() -> list[str]:
    """Add ten-minute rollups and rebuild every rollup table with small index granules.

    The views are dropped first so nothing cascades while rows move. A table of version
    1 is copied into a new one with :data:`ROLLUP_INDEX_GRANULARITY` and swapped in
    atomically; a ten-minute table is built from the minute rows through its own view's
    SELECT. Then every view is created again, each reading its new source. Every step can
    be repeated, so a migration interrupted half-way completes on the next start.
    """
    existing = {rollup_table(w.name, g) for w, g, _ in _rollup_tables(_V1_WIDTHS)}
    tables = _rollup_tables()
    statements = [
        f"DROP VIEW IF EXISTS {{db}}.{rollup_table(w.name, g)}_mv"
        for w, g, _ in _rollup_tables(_V1_WIDTHS)
    ]
    views = []
    for width, granularity, source in tables:
        table = rollup_table(width.name, granularity)
        create, view = _rollup_ddl(
            width,
            granularity,
            source,
            table=f"{table}__next",
            index_granularity=ROLLUP_INDEX_GRANULARITY,
        )
        statements += [f"DROP TABLE IF EXISTS {{db}}.{table}__next", create]
        if table in existing:
            statements += [
                f"INSERT INTO {{db}}.{table}__next SELECT * FROM {{db}}.{table}",
                f"EXCHANGE TABLES {{db}}.{table} AND {{db}}.{table}__next",
                f"DROP TABLE {{db}}.{table}__next",
            ]
        else:
            backfill = view.split(" AS\n", 1)[1]
            statements += [
                f"INSERT INTO {{db}}.{table}__next {backfill}",
                f"DROP TABLE IF EXISTS {{db}}.{table}",
                f"RENAME TABLE {{db}}.{table}__next TO {{db}}.{table}",
            ]
        views.append(view)
    return statements + views


MIGRATIONS: tuple[tuple[int, str, list[str]], ...] = (
    (1, "raw events, rollups and their views", _initial_schema()),
    (2, "ten-minute rollups; small index granules", _ten_minute_levels_small_granules()),
)
"""Versioned schema migrations: ``(version, description, statements)``, applied in order.

Statements use ``{db}`` for the database name. A released migration is never edited;
changes go in a new version.
"""
