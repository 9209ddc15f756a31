"""Versioned migrations of the analytics store's schema.

Versions 1 and 2 kept one rollup table per width and level; their builders stay here
unchanged, because a released migration is never edited. Version 3 moves every level of
a width into one table (see :mod:`meterline.store.schema`) and carries the rows over.
Version 4 stores latency sketches as bin maps and rebuilds the rollups from raw events.
Version 5 adds the endpoints width, filled from the routes rollups, and compresses latency
bins with T64.

A migration that builds the newest schema uses the schema module's definitions; once
they change, its own copy of the old ones is kept here (:data:`_V3_AGGREGATES`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from meterline.store.schema import (
    AGGREGATE_COLUMNS,
    COLUMN_CODECS,
    DIMENSION_TYPES,
    EVENTS_DDL,
    LEVEL_TYPE,
    ROLLUP_INDEX_GRANULARITY,
    ROLLUP_LEVELS,
    ROLLUP_WIDTHS,
    STATUS_CLASS_SQL,
    RollupWidth,
    rollup_columns,
    rollup_merges,
    rollup_rows_sql,
    rollup_schema,
    rollup_table,
    rollup_table_ddl,
)

log = logging.getLogger(__name__)


class SchemaTarget(Protocol):
    """What a migration step may use of a store."""

    database: str

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run a statement; ``{db}`` is the database."""

    def select(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run a query; ``{db}`` is the database."""


_V3_AGGREGATES: dict[str, tuple[str, str]] = {
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
        "AggregateFunction(quantilesDD(0.01, 0.5, 0.95, 0.99), Float64)",
        "quantilesDDStateIf(0.01, 0.5, 0.95, 0.99)(latency_ms, latency_ms >= 0)",
    ),
    "consumers": (
        "AggregateFunction(uniqExact, String)",
        "uniqExactStateIf(consumer_id, consumer_id != '')",
    ),
}
"""The rollups' aggregate columns in schema versions 1 to 3 (latency as sketch states)."""

_V3_MERGES = rollup_merges(_V3_AGGREGATES)

Step = str | Callable[[SchemaTarget], None]
"""A migration step: a statement, or a function of the store for steps that must look
before they act (to be resumable)."""


def _v2_table(width: str, level: str) -> str:
    """Name of the rollup table of ``width`` at ``level`` in schema versions 1 and 2."""
    return f"rollup_{width}_{level}"


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
    target = _v2_table(width.name, granularity)
    table = table or target
    dims = ",\n    ".join(f"{d} {DIMENSION_TYPES[d]}" for d in width.dimensions)
    aggs = ",\n    ".join(f"{name} {ctype}" for name, (ctype, _) in _V3_AGGREGATES.items())
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
        exprs = {name: expr for name, (_, expr) in _V3_AGGREGATES.items()}
        time_col, origin = "timestamp", "events"
    else:
        exprs, time_col, origin = _V3_MERGES, "bucket", source
    select_aggs = ",\n    ".join(f"{expr} AS {name}" for name, expr in exprs.items())
    view = (
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.{target}_mv TO {{db}}.{target} AS\n"
        f"SELECT org_id, toDateTime({ROLLUP_LEVELS[granularity][0]}({time_col}), 'UTC') AS bucket, "
        f"{select_dims},\n    {select_aggs}\nFROM {{db}}.{origin}\n"
        f"GROUP BY org_id, bucket, {select_dims}"
    )
    return [create, view]


_V2_WIDTHS: tuple[RollupWidth, ...] = (
    RollupWidth("totals", ("type",), parent="routes"),
    RollupWidth("routes", ("type", "route", "method", "status_class")),
    RollupWidth("consumers", ("type", "consumer_id"), ("hour", "day")),
    RollupWidth(
        "full",
        ("type", "route", "method", "status", "status_class", "region", "model"),
        ("hour", "day"),
    ),
)
"""The widths as schema version 2 created them, one table per width and level."""

_V1_WIDTHS: tuple[RollupWidth, ...] = tuple(
    RollupWidth(
        w.name, w.dimensions, tuple(g for g in w.granularities if g != "tenminute"), w.parent
    )
    for w in _V2_WIDTHS
)
"""The widths as schema version 1 created them (before ten-minute rollups)."""

_V3_WIDTHS = _V2_WIDTHS
"""The widths of schema versions 3 and 4: unchanged since version 2 (version 5 adds one)."""


def _rollup_tables(
    widths: tuple[RollupWidth, ...] = _V2_WIDTHS,
) -> list[tuple[RollupWidth, str, str | None]]:
    """Every rollup table as ``(width, granularity, source)``, sources before readers."""

    # A view can only read a table that exists: parents before their children.
    def depth(width: RollupWidth) -> int:
        parent = next((w for w in widths if w.name == width.parent), None)
        return 0 if parent is None else 1 + depth(parent)

    tables: list[tuple[RollupWidth, str, str | None]] = []
    for width in sorted(widths, key=depth):
        source = _v2_table(width.parent, width.granularities[0]) if width.parent else None
        for granularity in width.granularities:
            tables.append((width, granularity, source))
            source = _v2_table(width.name, granularity)
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
    existing = {_v2_table(w.name, g) for w, g, _ in _rollup_tables(_V1_WIDTHS)}
    tables = _rollup_tables()
    statements = [
        f"DROP VIEW IF EXISTS {{db}}.{_v2_table(w.name, g)}_mv"
        for w, g, _ in _rollup_tables(_V1_WIDTHS)
    ]
    views = []
    for width, granularity, source in tables:
        table = _v2_table(width.name, granularity)
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


def _carry_rollups_forward(store: SchemaTarget) -> None:
    """Move the rows of every version-2 rollup table into its width's new table.

    Resumable at any point: a width's new table is built aside from all of its old
    tables and swapped in atomically, and only then are the old tables dropped. So when
    every old table of a width is still there, the copy is (re)done from scratch; when
    only some are, the swap has happened and only the dropping is left to finish.
    """
    present = {
        r["name"]
        for r in store.select(
            "SELECT name FROM system.tables WHERE database = {d:String}", {"d": store.database}
        )
    }
    for width in _V2_WIDTHS:
        old = {level: _v2_table(width.name, level) for level in width.granularities}
        table, aside = rollup_table(width.name), f"{rollup_table(width.name)}__next"
        current = next(w for w in _V3_WIDTHS if w.name == width.name)
        if all(name in present for name in old.values()):
            columns = ", ".join([*width.dimensions, *_V3_AGGREGATES])
            store.command(f"DROP TABLE IF EXISTS {{db}}.{aside}")
            store.command(rollup_table_ddl(current, table=aside, aggregates=_V3_AGGREGATES))
            for level, name in old.items():
                store.command(
                    f"INSERT INTO {{db}}.{aside} (org_id, level, bucket, {columns}) "
                    f"SELECT org_id, CAST('{level}' AS {LEVEL_TYPE}), bucket, {columns} "
                    f"FROM {{db}}.{name}"
                )
            store.command(rollup_table_ddl(current, aggregates=_V3_AGGREGATES))
            store.command(f"EXCHANGE TABLES {{db}}.{table} AND {{db}}.{aside}")
            store.command(f"DROP TABLE {{db}}.{aside}")
        for name in old.values():
            store.command(f"DROP TABLE IF EXISTS {{db}}.{name}")


def _one_table_per_width() -> list[Step]:
    """Every level of a width in one table, fed through staging tables.

    The version-2 views are dropped first so nothing cascades while rows move; the new
    tables, staging tables and views are created last, raw-event views at the very end.
    """
    drops: list[Step] = [
        f"DROP VIEW IF EXISTS {{db}}.{_v2_table(w.name, g)}_mv" for w, g, _ in _rollup_tables()
    ]
    return [*drops, _carry_rollups_forward, *rollup_schema(_V3_WIDTHS, _V3_AGGREGATES)]


def _rebuild_rollups_from_events(store: SchemaTarget) -> None:
    """Build every rollup table again from the raw events, with latency bin maps.

    A sketch state cannot be turned into bins, but the raw events hold every event the
    rollups count (both expire by the same retention), so each table is rebuilt from
    them aside and swapped in atomically. One day of events at a time: every level's
    bucket lies within a day, and a day bounds the memory of the grouping. Resumable: a
    table that already has bins was swapped; one that has not is rebuilt from scratch.
    """
    converted = {
        r["table"]
        for r in store.select(
            "SELECT table FROM system.columns "
            "WHERE database = {d:String} AND name = 'latency_bins'",
            {"d": store.database},
        )
    }
    days = [
        str(r["day"])
        for r in store.select(
            "SELECT DISTINCT toString(toDate(timestamp)) AS day FROM {db}.events ORDER BY day"
        )
    ]
    for width in _V3_WIDTHS:
        table, aside = rollup_table(width.name), f"{rollup_table(width.name)}__next"
        store.command(f"DROP TABLE IF EXISTS {{db}}.{aside}")
        if table in converted:
            continue
        store.command(rollup_table_ddl(width, table=aside, codecs={}))
        for n, day in enumerate(days, 1):
            rows = rollup_rows_sql(width, "events", where="toDate(timestamp) = {day:Date}")
            store.command(
                f"INSERT INTO {{db}}.{aside} ({rollup_columns(width)})\n{rows}", {"day": day}
            )
            if n % 30 == 0 or n == len(days):
                log.info(
                    "store migration 4: %s rollups rebuilt for %d/%d days", width.name, n, len(days)
                )
        store.command(f"EXCHANGE TABLES {{db}}.{table} AND {{db}}.{aside}")
        store.command(f"DROP TABLE {{db}}.{aside}")


def _latency_bins() -> list[Step]:
    """Latency sketches kept as bin maps: new staging tables and views, rollups rebuilt.

    Every view goes first (nothing cascades while tables are rebuilt), then the staging
    tables, whose columns change; the newest schema's views are created last.
    """
    drops: list[Step] = []
    for width in _V3_WIDTHS:
        table = rollup_table(width.name)
        drops += [
            f"DROP VIEW IF EXISTS {{db}}.{table}_stage_mv",
            f"DROP VIEW IF EXISTS {{db}}.{table}_levels_mv",
        ]
    drops += [f"DROP TABLE IF EXISTS {{db}}.{rollup_table(w.name)}_stage" for w in _V3_WIDTHS]
    return [*drops, _rebuild_rollups_from_events, *rollup_schema(_V3_WIDTHS, codecs={})]


def _fill_endpoints_from_routes(store: SchemaTarget) -> None:
    """Create the endpoints rollup table holding what the routes table holds, summed over
    the status class: the same rows the views would have written for the same events.

    Filled aside one month at a time (bounded memory) and renamed into place, so a
    migration interrupted half-way starts this step again from nothing.
    """
    endpoints = next(w for w in ROLLUP_WIDTHS if w.name == "endpoints")
    table, source = rollup_table(endpoints.name), rollup_table("routes")
    aside = f"{table}__next"
    exists = store.select(
        "SELECT count() AS n FROM system.tables WHERE database = {d:String} AND name = {t:String}",
        {"d": store.database, "t": table},
    )
    if exists[0]["n"]:
        return
    store.command(f"DROP TABLE IF EXISTS {{db}}.{aside}")
    store.command(rollup_table_ddl(endpoints, table=aside))
    dims = ", ".join(endpoints.dimensions)
    merges = ", ".join(
        f"{expr} AS {name}" for name, expr in rollup_merges(AGGREGATE_COLUMNS).items()
    )
    months = store.select(
        f"SELECT DISTINCT toYYYYMM(bucket) AS month FROM {{db}}.{source} ORDER BY month"
    )
    for row in months:
        store.command(
            f"INSERT INTO {{db}}.{aside} ({rollup_columns(endpoints)})\n"
            f"SELECT org_id, level, bucket, {dims}, {merges} FROM {{db}}.{source}\n"
            f"WHERE toYYYYMM(bucket) = {{month:UInt32}}\nGROUP BY org_id, level, bucket, {dims}",
            {"month": row["month"]},
        )
    store.command(f"RENAME TABLE {{db}}.{aside} TO {{db}}.{table}")


def _endpoints_and_compact_bins() -> list[Step]:
    """An endpoints width (routes without the status class), and latency bins stored
    with the T64 codec (:data:`COLUMN_CODECS`; parts written before are recompressed as
    they merge). The endpoints table is filled before its views exist."""
    ctype = AGGREGATE_COLUMNS["latency_bins"][0]
    codecs: list[Step] = [
        f"ALTER TABLE {{db}}.{rollup_table(w.name)} "
        f"MODIFY COLUMN latency_bins {ctype} {COLUMN_CODECS['latency_bins']}"
        for w in _V3_WIDTHS
    ]
    return [*codecs, _fill_endpoints_from_routes, *rollup_schema()]


MIGRATIONS: tuple[tuple[int, str, list[Step]], ...] = (
    (1, "raw events, rollups and their views", [*_initial_schema()]),
    (2, "ten-minute rollups; small index granules", [*_ten_minute_levels_small_granules()]),
    (3, "one rollup table per width holding every level", _one_table_per_width()),
    (4, "latency sketches in rollups as bin maps", _latency_bins()),
    (5, "endpoint rollups; latency bins compressed with T64", _endpoints_and_compact_bins()),
)
"""Versioned schema migrations: ``(version, description, steps)``, applied in order.

Statements use ``{db}`` for the database name. A released migration is never edited;
changes go in a new version.
"""

NEWEST_SCHEMA: tuple[int, list[str]] = (
    MIGRATIONS[-1][0],
    [EVENTS_DDL.replace("{status_class}", STATUS_CLASS_SQL), *rollup_schema()],
)
"""The schema every migration up to the newest leads to, created at once: what an empty
store gets instead of replaying them all (which builds, copies and drops tables that
the newest schema no longer has). A new migration updates it; a test checks that an
empty store and a replayed one end with the same tables and views."""
