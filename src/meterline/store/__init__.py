"""The analytics store: raw events and rollups in the ClickHouse engine.

Public surface: :class:`Store` (the interface), :func:`store_from_url` (the only
constructor the app uses), and the schema names the query planner needs.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from meterline.errors import ConfigurationError
from meterline.store.base import Store
from meterline.store.schema import (
    AGGREGATE_COLUMNS,
    GRANULARITIES,
    GRANULARITY_SECONDS,
    LATENCY_BIN_SQL,
    LATENCY_QUANTILES,
    ROLLUP_LEVELS,
    ROLLUP_WIDTHS,
    STATUS_CLASS_SQL,
    RollupWidth,
    bins_quantile,
    define_once,
    latency_sketch,
    map_quantile,
    rollup_table,
)


def store_from_url(url: str) -> Store:
    """Open the store a URL names: ``chdb:///path/to/dir`` or ``clickhouse://…/db``.

    Raises :class:`ConfigurationError` for a scheme no backend serves.
    """
    scheme = urlsplit(url).scheme
    if scheme == "chdb":
        from meterline.store.chdb import ChdbStore

        return ChdbStore(url.removeprefix("chdb://") or ".meterline/store")
    from meterline.store.clickhouse import ClickHouseStore

    if scheme in ClickHouseStore.SCHEMES:
        return ClickHouseStore(url)
    raise ConfigurationError(
        f"unknown store URL scheme {scheme!r}",
        details="Use chdb:///path/to/dir or clickhouse://user:pass@host:8123/db.",
    )


__all__ = [
    "AGGREGATE_COLUMNS",
    "GRANULARITIES",
    "GRANULARITY_SECONDS",
    "LATENCY_BIN_SQL",
    "LATENCY_QUANTILES",
    "ROLLUP_LEVELS",
    "ROLLUP_WIDTHS",
    "STATUS_CLASS_SQL",
    "RollupWidth",
    "Store",
    "bins_quantile",
    "define_once",
    "latency_sketch",
    "map_quantile",
    "rollup_table",
    "store_from_url",
]
