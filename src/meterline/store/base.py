"""The ``Store`` interface: what the rest of Meterline may ask of the analytics store.

A backend implements four primitives (run a statement, select rows, insert a JSON
payload, close); everything else — migrations, crash-recovery look-ups, erasure — is
built on them here, so both backends behave identically.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import msgspec
import pyarrow as pa

from meterline.events import ROW_COLUMNS, EventRow
from meterline.events.arrow import rows_to_batch
from meterline.store.migrations import MIGRATIONS, NEWEST_SCHEMA
from meterline.store.schema import rollup_table

log = logging.getLogger(__name__)

# The raw table takes the timestamp as epoch milliseconds into an ephemeral column.
_INSERT_NAMES = ["timestamp_ms" if c == "timestamp" else c for c in ROW_COLUMNS]
_encode_row = msgspec.json.Encoder().encode


class Store(ABC):
    """An analytics store speaking ClickHouse SQL.

    Contract:
        * ``migrate()`` brings the schema to the newest version and is idempotent.
        * ``insert_rows(rows)`` / ``insert_batches(batches)`` store validated rows (as
          lists or Arrow record batches); once they returned, ``inserted_batches``
          reports the ``ingest_batch`` values of those rows.
        * ``select(sql, params)`` runs a read with ``{name:Type}`` bound parameters and
          returns rows as dicts; values are never spliced into SQL.
        * Driver errors surface as :class:`meterline.errors.StoreError`.

    Example:
        >>> store = store_from_url("chdb:///tmp/meterline-store")  # doctest: +SKIP
        >>> store.migrate()  # doctest: +SKIP
        >>> store.select("SELECT count() AS n FROM {db}.events", {})  # doctest: +SKIP
        [{'n': 0}]
    """

    SCHEMES: ClassVar[tuple[str, ...]] = ()
    database: str

    @abstractmethod
    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run a statement that returns nothing. ``{db}`` is replaced by the database."""

    @abstractmethod
    def select(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run a query and return its rows as dicts. ``{db}`` is replaced by the database."""

    @abstractmethod
    def _insert_json(self, table: str, columns: str, payload: bytes) -> None:
        """Insert ``JSONCompactEachRow`` lines into ``table``."""

    @abstractmethod
    def _insert_arrow(self, table: str, data: pa.Table) -> None:
        """Insert an Arrow table into ``table``, its columns matched by name."""

    @abstractmethod
    def close(self) -> None:
        """Release the backend's resources; the store is unusable afterwards."""

    # -- built on the primitives ---------------------------------------------------------

    def migrate(self) -> list[int]:
        """Apply pending schema migrations in order; returns the versions applied.

        An empty store gets the newest schema at once, and every version is recorded.
        """
        self.command("CREATE DATABASE IF NOT EXISTS {db}")
        self.command(
            "CREATE TABLE IF NOT EXISTS {db}.schema_migrations "
            "(version UInt32, description String, applied_at DateTime('UTC') DEFAULT now()) "
            "ENGINE = MergeTree ORDER BY version"
        )
        done = {
            int(r["version"]) for r in self.select("SELECT version FROM {db}.schema_migrations")
        }
        tables = self.select(
            "SELECT count() AS n FROM system.tables WHERE database = {d:String} "
            "AND name != 'schema_migrations'",
            {"d": self.database},
        )
        newest, schema = NEWEST_SCHEMA
        empty = not done and not int(tables[0]["n"]) and MIGRATIONS[-1][0] == newest
        if empty:
            for statement in schema:
                self.command(statement)
        applied = []
        for version, description, steps in MIGRATIONS:
            if version in done:
                continue
            for step in steps if not empty else ():
                if isinstance(step, str):
                    self.command(step)
                else:
                    step(self)
            self.command(
                "INSERT INTO {db}.schema_migrations (version, description) "
                "VALUES ({v:UInt32}, {d:String})",
                {"v": version, "d": description},
            )
            log.info("store migration %d applied: %s", version, description)
            applied.append(version)
        return applied

    def insert_rows(self, rows: Sequence[EventRow]) -> None:
        """Insert validated event rows (their ``ingest_batch`` names their log record)."""
        if rows:
            self.insert_batches([rows_to_batch(rows)])

    def insert_batches(self, batches: Sequence[pa.RecordBatch]) -> None:
        """Insert event rows as Arrow record batches of ``EVENT_SCHEMA``, in one insert."""
        batches = [b for b in batches if b.num_rows]
        if batches:
            table = pa.Table.from_batches(batches).rename_columns(_INSERT_NAMES)
            self._insert_arrow("events", table)

    def insert_table(self, table: str, columns: str, rows: Sequence[Sequence[Any]]) -> None:
        """Insert plain rows (values in ``columns`` order) into a table of the database."""
        if rows:
            self._insert_json(table, columns, b"\n".join(map(_encode_row, rows)))

    def inserted_batches(self, batch_ids: Iterable[str]) -> set[str]:
        """Which of ``batch_ids`` already reached the store (used when replaying the log)."""
        ids = list(batch_ids)
        found: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            names = {f"b{i}": v for i, v in enumerate(chunk)}
            placeholders = ", ".join(f"{{{k}:String}}" for k in names)
            rows = self.select(
                f"SELECT DISTINCT ingest_batch FROM {{db}}.events "
                f"WHERE ingest_batch IN ({placeholders})",
                names,
            )
            found.update(r["ingest_batch"] for r in rows)
        return found

    def recent_event_keys(self, since_ms: int, limit: int) -> list[tuple[str, str]]:
        """``(org_id, event_id)`` of the newest stored events received since ``since_ms``."""
        rows = self.select(
            "SELECT org_id, event_id FROM {db}.events "
            "WHERE received_at >= toDateTime({since:UInt32}) "
            "ORDER BY received_at DESC LIMIT {limit:UInt64}",
            {"since": since_ms // 1000, "limit": limit},
        )
        return [(r["org_id"], r["event_id"]) for r in rows]

    def erase_consumer(self, org_id: str, consumer_id: str) -> None:
        """Delete every stored trace of one consumer of one org (GDPR erasure).

        Raw events and the per-consumer rollup (every level) lose the consumer's rows; the other
        rollups keep only anonymous counts and one-way hashes of the id.
        """
        params = {"org": org_id, "consumer": consumer_id}
        where = "WHERE org_id = {org:String} AND consumer_id = {consumer:String}"
        self.command(
            f"ALTER TABLE {{db}}.events DELETE {where} SETTINGS mutations_sync = 2", params
        )
        self.command(
            f"ALTER TABLE {{db}}.{rollup_table('consumers')} DELETE {where} "
            "SETTINGS mutations_sync = 2",
            params,
        )

    def ping(self) -> bool:
        """True when the store answers a trivial query."""
        try:
            return bool(self.select("SELECT 1 AS ok")[0]["ok"] == 1)
        except Exception:
            return False

    def timed_select(
        self, sql: str, params: Mapping[str, Any] | None = None
    ) -> tuple[list[dict[str, Any]], float]:
        """``select`` plus its wall time in seconds (for metrics)."""
        started = time.perf_counter()
        rows = self.select(sql, params)
        return rows, time.perf_counter() - started
