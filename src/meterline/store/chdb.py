"""The embedded store: the ClickHouse engine in-process through chDB, in a data directory."""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import msgspec

from meterline.errors import StoreError
from meterline.store.base import Store

_decoder = msgspec.json.Decoder()


def _escape(value: Any) -> Any:
    # chDB parses query parameters in ClickHouse's escaped text format, so backslashes
    # and control characters must be escaped or the value is misread.
    if isinstance(value, str):
        return (
            value.replace("\\", "\\\\")
            .replace("\n", "\\n")
            .replace("\t", "\\t")
            .replace("\r", "\\r")
            .replace("\0", "\\0")
        )
    return value


class ChdbStore(Store):
    """A :class:`Store` on chDB, persisted under ``path``.

    chDB allows one session per process, so this class is the only thing that opens the
    data directory; other processes (the admin CLI) must not. Calls are serialised by a
    lock because the engine is not re-entrant from several threads.
    """

    SCHEMES: ClassVar[tuple[str, ...]] = ("chdb",)

    def __init__(self, path: str | Path, database: str = "meterline") -> None:
        session: Any = importlib.import_module("chdb.session")

        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.database = database
        self._lock = threading.Lock()
        try:
            self._session: Any = session.Session(str(self.path))
        except Exception as exc:
            raise StoreError(
                f"cannot open the embedded store at {self.path}",
                details="Is another Meterline server using this data directory?",
            ) from exc

    def _run(self, sql: str, fmt: str, params: Mapping[str, Any] | None) -> Any:
        sql = sql.replace("{db}", self.database)
        bound = {k: _escape(v) for k, v in params.items()} if params else None
        try:
            with self._lock:
                return (
                    self._session.query(sql, fmt, params=bound)
                    if bound
                    else self._session.query(sql, fmt)
                )
        except Exception as exc:
            raise StoreError("the analytics store failed to run a query") from exc

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self._run(sql, "CSV", params)

    def select(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        result = self._run(sql, "JSONEachRow", params)
        data = bytes(result.bytes())
        if not data:
            return []
        return [_decoder.decode(line) for line in data.splitlines() if line]

    def _insert_json(self, table: str, columns: str, payload: bytes) -> None:
        self._insert(
            f"INSERT INTO {self.database}.{table} ({columns}) "
            f"FORMAT JSONCompactEachRow\n{payload.decode()}"
        )

    def _insert_arrow(self, table: str, data: Any) -> None:
        # chDB's Python() table function finds the table by this local variable's name
        # (it searches the calling frames).
        arrow_rows = data  # noqa: F841
        columns = ", ".join(data.column_names)
        self._insert(
            f"INSERT INTO {self.database}.{table} ({columns}) "
            f"SELECT {columns} FROM Python(arrow_rows)"
        )

    def _insert(self, sql: str) -> None:
        try:
            with self._lock:
                self._session.query(sql, "CSV")
        except Exception as exc:
            raise StoreError("the analytics store failed to insert events") from exc

    @contextlib.contextmanager
    def progress(self, callback: Callable[[dict[str, Any]], None]) -> Iterator[None]:
        """Call ``callback`` with the engine's progress (``read_bytes``, ``read_rows``,
        ``total_bytes_to_read``…) while the queries of the ``with`` block run."""
        connection = getattr(self._session, "_conn", None)
        setter = getattr(connection, "set_progress_callback", None)
        if setter is None:  # an engine build without progress reports
            yield
            return
        with self._lock:
            setter(callback)
        try:
            yield
        finally:
            with self._lock:
                setter(None)

    def close(self) -> None:
        with self._lock:
            self._session.close()
