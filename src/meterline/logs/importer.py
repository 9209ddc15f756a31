"""The import loop: lines → events in batches → a sink, counting everything.

Sinks write batches where the events go: :class:`LocalSink` into a data directory's
store (history of any age, and already-imported lines skipped by asking the store), and
:class:`HttpSink` to a running server's ``POST /v2/events``.
"""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import httpx
import msgspec

from meterline.events import RawEvent
from meterline.logs.engine import EngineImport, EngineResult, Progress
from meterline.logs.parse import BadLine, LineParser
from meterline.logs.source import Line

if TYPE_CHECKING:
    from meterline.logs.local import ImportTarget


@dataclass
class SinkResult:
    """What a sink did with one batch; ``rejected`` holds ``(index, message)``."""

    accepted: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


class Sink(Protocol):
    """Somewhere to write events.

    Example:
        >>> result = sink.send([RawEvent(event_id="e1", path="/", status=200)])
    """

    def send(self, events: list[RawEvent]) -> SinkResult:
        """Write a batch; returns what became of each event."""
        ...

    def close(self) -> None:
        """Make everything sent durable and release resources."""
        ...


@dataclass
class ImportStats:
    """Counts of one import; ``bad_samples`` keeps the first few bad lines."""

    lines: int = 0
    imported: int = 0
    duplicates: int = 0
    bad: int = 0
    bad_samples: list[tuple[str, int, str, str]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def note_bad(self, source: str, number: int, reason: str, line: str, keep: int) -> None:
        self.bad += 1
        if len(self.bad_samples) < keep:
            self.bad_samples.append((source, number, reason, line[:200]))

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


class LogImporter:
    """Parses lines and sends them to a sink in batches; bad lines are counted, never fatal.

    Example:
        >>> importer = LogImporter(sink, parse_clf)
        >>> importer.run("access.log", source.lines())
        >>> importer.stats.imported  # doctest: +SKIP
        9999
    """

    def __init__(
        self,
        sink: Sink,
        parser: LineParser,
        *,
        batch_size: int = 20_000,
        keep_bad: int = 5,
        flush_after: float = 1.0,
    ) -> None:
        self.sink = sink
        self.parser = parser
        self.batch_size = batch_size
        self.keep_bad = keep_bad
        self.flush_after = flush_after
        self.stats = ImportStats()

    def run(
        self,
        source: str,
        lines: Iterable[Line | None],
        progress: Callable[[], None] | None = None,
    ) -> None:
        """Import every line; ``None`` items (an idle follower) flush a partial batch."""
        events: list[RawEvent] = []
        origins: list[tuple[int, str]] = []
        parse = self.parser
        stats = self.stats
        last_flush = time.monotonic()
        for item in lines:
            if item is None:
                if events and time.monotonic() - last_flush >= self.flush_after:
                    self._send(source, events, origins)
                    events, origins = [], []
                    last_flush = time.monotonic()
                if progress is not None:
                    progress()
                continue
            number, line = item
            stats.lines += 1
            if not line.strip():
                continue
            try:
                events.append(parse(line, number))
            except BadLine as exc:
                stats.note_bad(source, number, str(exc), line, self.keep_bad)
                continue
            origins.append((number, line))
            if len(events) >= self.batch_size:
                self._send(source, events, origins)
                events, origins = [], []
                last_flush = time.monotonic()
                if progress is not None:
                    progress()
        if events:
            self._send(source, events, origins)
        if progress is not None:
            progress()

    def count_engine(self, result: EngineResult) -> None:
        """Count what the storage engine imported itself; the lines it left
        (``result.others``) still go through :meth:`run`, which counts them."""
        self.stats.lines += result.lines - len(result.others)
        self.stats.imported += result.imported
        self.stats.duplicates += result.duplicates

    def _send(self, source: str, events: list[RawEvent], origins: list[tuple[int, str]]) -> None:
        result = self.sink.send(events)
        self.stats.imported += result.accepted
        self.stats.duplicates += result.duplicates
        for index, message in result.rejected:
            number, line = origins[index]
            self.stats.note_bad(source, number, message, line, self.keep_bad)


class LocalSink:
    """Writes into a data directory's store through the ingest service, as history.

    Lines imported before (same content at the same line number) are found in the store
    and skipped, however long ago the first import ran.
    """

    def __init__(self, target: ImportTarget) -> None:
        self.target = target
        self.org_id = target.org_id
        self.retention_days = target.retention_days
        self.loop = asyncio.new_event_loop()

    def _stored(self, events: list[RawEvent]) -> set[str]:
        stamps = [e.timestamp for e in events if isinstance(e.timestamp, int)]
        if not stamps:
            return set()
        rows = self.target.store.select(
            "SELECT event_id FROM {db}.events WHERE org_id = {org:String} "
            "AND timestamp BETWEEN fromUnixTimestamp64Milli({lo:Int64}) "
            "AND fromUnixTimestamp64Milli({hi:Int64}) AND startsWith(event_id, 'log-')",
            {"org": self.org_id, "lo": min(stamps), "hi": max(stamps)},
        )
        if not rows:
            return set()
        wanted = {e.event_id for e in events}
        return {r["event_id"] for r in rows if r["event_id"] in wanted}

    def send(self, events: list[RawEvent]) -> SinkResult:
        stored = self._stored(events)
        fresh = [e for e in events if e.event_id not in stored] if stored else events
        index = [i for i, e in enumerate(events) if e.event_id not in stored]
        result = self.loop.run_until_complete(
            self.target.ingest.ingest_events(self.org_id, self.retention_days, fresh, history=True)
        )
        return SinkResult(
            result.accepted,
            result.duplicates + len(stored),
            [(index[r["index"]], r["message"]) for r in result.rejected],
        )

    def engine_import(self, path: str, progress: Progress | None = None) -> EngineResult | None:
        """Let the embedded store parse and insert a CLF/Combined file itself (see
        :mod:`meterline.logs.engine`); None when the store or the file does not suit it,
        and nothing was written."""
        from meterline.store.chdb import ChdbStore

        store = self.target.store
        if not isinstance(store, ChdbStore):
            return None
        engine = EngineImport(
            store, self.org_id, self.retention_days, self.target.ingest.normaliser
        )
        return engine.run(path, progress)

    def close(self) -> None:
        self.loop.close()
        self.target.close()


class HttpSink:
    """Sends batches to a running server's ``POST /v2/events`` (gzip NDJSON), retrying
    network errors, 5xx and 429."""

    def __init__(self, url: str, key: str, *, attempts: int = 6) -> None:
        self.client = httpx.Client(
            base_url=url.rstrip("/"),
            timeout=120,
            headers={
                "Authorization": f"Bearer {key}",
                "Content-Type": "application/x-ndjson",
                "Content-Encoding": "gzip",
            },
        )
        self.attempts = attempts
        self.encoder = msgspec.json.Encoder()

    def send(self, events: list[RawEvent]) -> SinkResult:
        lines = []
        for event in events:
            fields = {k: v for k, v in msgspec.structs.asdict(event).items() if v is not None}
            lines.append(self.encoder.encode(fields))
        body = gzip.compress(b"\n".join(lines), 5)
        for attempt in range(self.attempts):
            try:
                response = self.client.post("/v2/events", content=body)
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code < 500 and response.status_code != 429:
                break
            time.sleep(min(30.0, 0.5 * 2**attempt))
        if response is None:
            raise ConnectionError("the Meterline server cannot be reached")
        if response.status_code != 202:
            raise RuntimeError(
                f"the server refused a batch: {response.status_code} {response.text}"
            )
        answer = response.json()
        return SinkResult(
            answer["accepted"],
            answer["duplicates"],
            [(r["index"], r["message"]) for r in answer["rejected"]],
        )

    def close(self) -> None:
        self.client.close()


__all__ = ["HttpSink", "ImportStats", "LocalSink", "LogImporter", "Sink", "SinkResult"]
