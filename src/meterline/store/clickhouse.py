"""The scale-out store: a ClickHouse server or cluster through clickhouse-connect."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

from meterline.errors import StoreError
from meterline.store.base import Store

CLIENT_SETTINGS = {"output_format_json_quote_64bit_integers": 0}
"""Session settings of the store's client: 64-bit integers come back as numbers."""


class ClickHouseStore(Store):
    """A :class:`Store` on a ClickHouse server, from ``clickhouse://user:pass@host:8123/db``.

    ``clickhouse+https://`` connects over TLS. The same DDL and SQL as the embedded store
    run unchanged; parameters are bound server-side.
    """

    SCHEMES: ClassVar[tuple[str, ...]] = ("clickhouse", "clickhouse+http", "clickhouse+https")

    def __init__(self, url: str) -> None:
        import clickhouse_connect

        parts = urlsplit(url)
        self.database = parts.path.strip("/") or "meterline"
        secure = parts.scheme.endswith("https")
        try:
            self._client = clickhouse_connect.get_client(
                host=parts.hostname or "localhost",
                port=parts.port or (8443 if secure else 8123),
                username=unquote(parts.username or "default"),
                password=unquote(parts.password or ""),
                secure=secure,
                database="default",
                settings=dict(CLIENT_SETTINGS),
            )
        except Exception as exc:
            raise StoreError(
                f"cannot connect to ClickHouse at {parts.hostname}:{parts.port}",
                details="Check the --store URL and that the server is reachable.",
            ) from exc

    @classmethod
    def with_client(cls, client: Any, database: str) -> ClickHouseStore:
        """A store in ``database`` over a connected clickhouse-connect client, whatever its
        transport: the URL constructor's client speaks HTTP; the client library's
        in-process engine backend runs the same requests, decoding and SQL without a
        server (the contract tests use it where no server is at hand)."""
        store = cls.__new__(cls)
        store._client = client
        store.database = database
        return store

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        try:
            self._client.command(sql.replace("{db}", self.database), parameters=dict(params or {}))
        except Exception as exc:
            raise StoreError("the analytics store failed to run a statement") from exc

    def select(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        try:
            result = self._client.query(
                sql.replace("{db}", self.database), parameters=dict(params or {})
            )
        except Exception as exc:
            raise StoreError("the analytics store failed to run a query") from exc
        return list(result.named_results())

    def _insert_json(self, table: str, columns: str, payload: bytes) -> None:
        try:
            self._client.raw_insert(
                f"{self.database}.{table}",
                column_names=[c.strip() for c in columns.split(",")],
                insert_block=payload,
                fmt="JSONCompactEachRow",
            )
        except Exception as exc:
            raise StoreError("the analytics store failed to insert events") from exc

    def _insert_arrow(self, table: str, data: Any) -> None:
        try:
            self._client.insert_arrow(f"{self.database}.{table}", data)
        except Exception as exc:
            raise StoreError("the analytics store failed to insert events") from exc

    def close(self) -> None:
        self._client.close()
