"""Access-log import inside the storage engine: the embedded store parses a log file itself.

The ClickHouse engine reads the file (plain or gzip), splits and checks each line with
multithreaded string functions and writes the events with one ``INSERT … SELECT``: into
the events table, whose materialised views feed the rollups as for any other insert, or,
from :data:`BULK_FROM` lines on, as a bulk load (:mod:`meterline.logs.bulk`: the rollups
built with one aggregation per level over the whole file, then everything moved in).
Python only sees what the engine cannot decide exactly as :func:`parse_clf` would:

* the distinct paths and client IPs, which Python turns into routes and anonymised IPs
  (the same :class:`RouteNormaliser` and :func:`anonymise_ip` as live ingest), handed
  back to the engine as lookup tables;
* every line outside the strict shape below (escaped quotes, non-ASCII in the head,
  an unusual time format, garbage…), given to the Python parser, which imports what it
  can read and reports the rest as bad lines with their numbers.

A line the engine accepts becomes the very event :func:`parse_clf` and validation would
make, with the same event id (line number and content), so a re-import counts nothing
twice whichever path a line took. The file is read twice: the first read checks every
line and collects the distinct values; the second inserts the lines the first accepted
(known by their numbers), without checking them again. Nothing is written when the
first read finds the format unsuited, or when the file was replaced or rewritten in
between (a log that grows keeps its first lines), and the caller falls back to the
Python importer.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from meterline.events import RouteNormaliser, anonymise_ip
from meterline.logs import bulk
from meterline.logs.source import Line
from meterline.store.chdb import ChdbStore

Progress = Callable[[int, int, int], None]
"""Called with (pass, bytes read, lines read) while the engine reads; pass 0 collects the
distinct values, pass 1 inserts. A bulk load then builds its rollups: pass 2, called with
(rollup tables begun, rollup tables) instead."""

# A head (before the request's opening quote) the engine takes: optional virtual host,
# client, ident, user, and the CLF time with its offset. Tokens are printable ASCII
# without brackets, so the split into tokens is the one Python's ``\S+`` makes.
_TOKEN = r"[\x21-\x5a\x5e-\x7e]+"
_HEAD = (
    rf"^(?:{_TOKEN} )?{_TOKEN} {_TOKEN} {_TOKEN} "
    r"\[[0-9]{2}/[A-Z][a-z]{2}/[0-9]{4}:[0-9]{2}:[0-9]{2}:[0-9]{2} [+-][0-9]{4}\] $"
)
_COMBINED_STATUS = r"^ [0-9]{3} (?:[0-9]{1,15}|-) $"
_COMBINED_TAIL = r"^(?: [0-9]{1,15}(?:\.[0-9]{1,15})?)? *$"
_COMMON_TAIL = r"^ [0-9]{3} (?:[0-9]{1,15}|-)(?: [0-9]{1,15}(?:\.[0-9]{1,15})?)? *$"
_MONTHS = "['Jan','Feb','Mar','Apr','May','Jun','Jul','Aug','Sep','Oct','Nov','Dec']"
_METHODS = "['GET','POST','PUT','PATCH','DELETE','HEAD','OPTIONS','TRACE','CONNECT']"

# Every condition of ``ok`` is cheap and shares the split columns: evaluated lazily
# (short-circuit), each AND branch recomputed those splits for its own rows, which made
# the check cost six times the parse itself.
_QUERY_SETTINGS = "max_query_size = 1048576, short_circuit_function_evaluation = 'disable'"

# One insert block for the file (fewer, larger parts in the events table and in every
# rollup), views fed in parallel (when the insert goes through them), and no merging of
# equal keys at insert time: the GROUP BYs already made them unique.
_INSERT_SETTINGS = f"{bulk.BLOCK_SETTINGS}, parallel_view_processing = 1"

BULK_FROM = 20_000
"""Lines from which an import is a bulk load (:mod:`meterline.logs.bulk`) rather than an
insert through the rollup views. Below it the views cost little and a bulk load's few
dozen extra statements would cost more."""


def _literal(text: str) -> str:
    """A ClickHouse string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _parsed(source: str, now_ms: int) -> str:
    """The file's lines as columns; ``ok`` marks lines the engine imports itself."""
    return f"""
SELECT
    _row_number + 1 AS n,
    line,
    splitByChar('"', line) AS p,
    length(p) AS np,
    splitByChar(' ', p[1]) AS h,
    length(h) - 6 AS k,
    splitByChar(' ', p[2]) AS r,
    r[1] AS method,
    splitByChar('?', r[2])[1] AS path,
    h[1 + k] AS ip,
    if(k = 1, h[1], '') AS vhost,
    h[3 + k] AS user,
    substring(h[4 + k], 2) AS t,
    toInt32OrZero(substring(t, 8, 4)) AS year,
    indexOf({_MONTHS}, substring(t, 4, 3)) AS month,
    if(np = 7, p[6], '') AS agent,
    splitByChar(' ', p[3]) AS tail,
    tail[2] AS status_text,
    tail[3] AS size_text,
    if(np = 7, trimBoth(p[7]), if(length(tail) >= 4, tail[4], '')) AS rt,
    (
        toInt64(makeDate32(least(greatest(year, 1900), 2299), greatest(month, 1), 1)) * 86400
        + (toInt64OrZero(substring(t, 1, 2)) - 1) * 86400
        + toInt64OrZero(substring(t, 13, 2)) * 3600
        + toInt64OrZero(substring(t, 16, 2)) * 60
        + toInt64OrZero(substring(t, 19, 2))
        - if(substring(h[5 + k], 1, 1) = '-', -1, 1) * (
            toInt64OrZero(substring(h[5 + k], 2, 2)) * 3600
            + toInt64OrZero(substring(h[5 + k], 4, 2)) * 60
        )
    ) * 1000 AS ts,
    position(line, '\\\\') = 0
        AND isValidUTF8(line)
        AND (
            (np = 7 AND match(p[3], {_literal(_COMBINED_STATUS)}) AND p[5] = ' '
                AND match(p[7], {_literal(_COMBINED_TAIL)}))
            OR (np = 3 AND match(p[3], {_literal(_COMMON_TAIL)}))
        )
        AND match(p[1], {_literal(_HEAD)})
        AND year BETWEEN 1900 AND 2299 AND month > 0
        AND has({_METHODS}, method)
        AND path != '' AND position(path, '://') = 0 AND lengthUTF8(path) <= 2048
        AND toUInt16OrZero(status_text) BETWEEN 100 AND 599
        AND ts <= {now_ms + 86_400_000}
        AS ok
FROM {source}
"""


def _rewritten(before: os.stat_result, after: os.stat_result) -> bool:
    """Whether a file changed between two reads other than by growing: another file under
    its name, truncated, or rewritten in place (same size, newer modification time)."""
    return (
        (before.st_dev, before.st_ino) != (after.st_dev, after.st_ino)
        or after.st_size < before.st_size
        or (after.st_size == before.st_size and after.st_mtime_ns != before.st_mtime_ns)
    )


@dataclass(frozen=True)
class _Lookups:
    """Names of one import's lookup tables; ``skip`` is empty when no line was refused.
    Every scratch table of the import is named after ``token``."""

    token: str
    routes: str
    ips: str
    skip: str


@dataclass(frozen=True)
class _Accepted:
    """The lines the first read accepted: every non-empty line up to ``lines`` whose
    number is not in the ``skip`` table (the lines left to Python)."""

    lines: int
    skip: str

    def condition(self, db: str) -> str:
        """The SQL condition selecting these lines in the second read."""
        refused = f" AND n NOT IN {db}.{self.skip}" if self.skip else ""
        return f"n <= {int(self.lines)} AND line != ''{refused}"


@dataclass
class EngineResult:
    """What the engine did with one file; ``others`` are the lines left to Python."""

    lines: int = 0
    imported: int = 0
    duplicates: int = 0
    others: list[Line] = field(default_factory=list)


class EngineImport:
    """Imports one Common/Combined log file through the embedded store's engine.

    Args:
        store: the embedded store (the engine reads files on its own machine).
        org_id, retention_days: whose events these are, and their retention.
        normaliser: turns paths into routes, as live ingest does.
        max_others: lines outside the engine's shape that Python may take over; beyond
            it the file is not in a format the engine suits (nothing was written).
        bulk_from: accepted lines from which the import is a bulk load (None: never).

    Example:
        >>> result = EngineImport(store, "org_1", 30, normaliser).run("access.log")
        >>> result.imported  # doctest: +SKIP
        10000
    """

    def __init__(
        self,
        store: ChdbStore,
        org_id: str,
        retention_days: int,
        normaliser: RouteNormaliser,
        *,
        max_others: int = 100_000,
        bulk_from: int | None = BULK_FROM,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.org_id = org_id
        self.retention_days = retention_days
        self.normaliser = normaliser
        self.max_others = max_others
        self.bulk_from = bulk_from
        self.clock = clock

    @staticmethod
    def _source(path: str) -> str:
        with open(path, "rb") as handle:
            gzipped = handle.read(2) == b"\x1f\x8b"
        compression = "'gzip'" if gzipped else "'none'"
        return (
            f"file({_literal(os.path.abspath(path))}, 'LineAsString', 'line String', {compression})"
        )

    def run(self, path: str, progress: Progress | None = None) -> EngineResult | None:
        """Import ``path``; None when its lines are mostly not CLF, or its name has
        characters the engine would read as a glob (nothing written either way)."""
        if any(char in path for char in "*?{}"):
            return None
        # An import interrupted after its bulk load was complete is finished first, so
        # what it stored counts as stored (and is not imported again).
        bulk.finish_interrupted(self.store)
        now_ms = int(self.clock() * 1000)
        parsed = _parsed(self._source(path), now_ms)
        seen = os.stat(path)
        with self._watch(progress, 0):
            summary = self.store.select(
                f"""
SELECT count() AS lines, countIf(ok) AS good,
    countIf(NOT ok AND line != '') AS others,
    minIf(ts, ok) AS lo, maxIf(ts, ok) AS hi,
    groupUniqArrayIf(path, ok) AS paths, groupUniqArrayIf(ip, ok) AS ips,
    groupArrayIf({self.max_others})((n, line), NOT ok AND line != '') AS rest
FROM ({parsed})
SETTINGS {_QUERY_SETTINGS}
"""
            )[0]
        others = int(summary["others"])
        if others > self.max_others or others > int(summary["good"]):
            return None
        result = EngineResult(lines=int(summary["lines"]))
        result.others = sorted((int(n), str(line)) for n, line in summary["rest"])
        good = int(summary["good"])
        if not good:
            return result
        if _rewritten(seen, os.stat(path)):
            return None
        routes = {p: self.normaliser.normalise(p) for p in summary["paths"]}
        if not all(routes.values()):
            return None
        ips = {ip: anonymise_ip(ip) for ip in summary["ips"]}
        lo, hi = int(summary["lo"]), int(summary["hi"])
        skip = [n for n, _ in result.others]
        with self._lookups(routes, ips, skip) as tables:
            before = self._stored(lo, hi)
            accepted = _Accepted(result.lines, tables.skip)
            if self.bulk_from is not None and good >= self.bulk_from:
                self._bulk_insert(parsed, tables, accepted, now_ms, lo, hi, before > 0, progress)
            else:
                self._insert(parsed, tables, accepted, now_ms, lo, hi, before > 0, progress)
            after = self._stored(lo, hi) if before else before + good
        result.imported = after - before
        result.duplicates = good - result.imported
        return result

    def _stored(self, lo: int, hi: int) -> int:
        rows = self.store.select(
            "SELECT count() AS n FROM {db}.events WHERE org_id = {org:String} "
            "AND timestamp BETWEEN fromUnixTimestamp64Milli({lo:Int64}) "
            "AND fromUnixTimestamp64Milli({hi:Int64}) AND startsWith(event_id, 'log-')",
            {"org": self.org_id, "lo": lo, "hi": hi},
        )
        return int(rows[0]["n"])

    def _insert(
        self,
        parsed: str,
        tables: _Lookups,
        accepted: _Accepted,
        now_ms: int,
        lo: int,
        hi: int,
        dedup: bool,
        progress: Progress | None,
        table: str = "events",
    ) -> None:
        """Insert the accepted lines' events into ``table`` (the events table: through
        the rollup views), skipping those already stored when ``dedup``."""
        db = self.store.database
        org = _literal(self.org_id)
        event_id = (
            "concat('log-', substring(lower(hex(MD5(concat(toString(n), '\\0', line)))), 1, 24))"
        )
        skip = (
            f"AND event_id NOT IN (SELECT event_id FROM {db}.events WHERE org_id = {org} "
            f"AND timestamp BETWEEN fromUnixTimestamp64Milli({lo}) "
            f"AND fromUnixTimestamp64Milli({hi}) AND startsWith(event_id, 'log-'))"
            if dedup
            else ""
        )
        sql = f"""
INSERT INTO {db}.{table} (org_id, event_id, type, timestamp_ms, received_at, retention_days,
    method, path, route, status, latency_ms, user_id, response_size, user_agent, client_ip,
    success, properties, ingest_batch)
SELECT {org}, {event_id} AS event_id, 'request', ts, toDateTime({now_ms // 1000}, 'UTC'),
    {int(self.retention_days)}, method, path,
    joinGet('{db}.{tables.routes}', 'value', path),
    toUInt16OrZero(status_text),
    multiIf(rt = '', -1.0, position(rt, '.') > 0, toFloat64OrZero(rt) * 1000.0,
        toFloat64(toUInt64OrZero(rt)) / 1000.0),
    if(user = '-', '', user),
    toUInt64OrZero(size_text),
    if(agent = '-', '', substringUTF8(agent, 1, 512)),
    joinGet('{db}.{tables.ips}', 'value', ip),
    -1,
    if(vhost = '', '', concat('{{"vhost":"', vhost, '"}}')),
    'log-import'
FROM ({parsed})
WHERE {accepted.condition(db)} {skip}
SETTINGS {_QUERY_SETTINGS}, {_INSERT_SETTINGS}
"""
        with self._watch(progress, 1):
            self.store.command(sql)

    def _bulk_insert(
        self,
        parsed: str,
        tables: _Lookups,
        accepted: _Accepted,
        now_ms: int,
        lo: int,
        hi: int,
        dedup: bool,
        progress: Progress | None,
    ) -> None:
        """The same insert as a bulk load: events and rollups built in scratch tables,
        then moved in (see :mod:`meterline.logs.bulk`)."""
        load = bulk.BulkLoad(tables.token)
        try:
            bulk.create(self.store, load)
            self._insert(parsed, tables, accepted, now_ms, lo, hi, dedup, progress, load.events)
            bulk.build(self.store, load, None if progress is None else partial(progress, 2))
        except BaseException:
            bulk.discard(self.store, load.token)  # nothing of it is visible yet
            raise
        bulk.commit(self.store, load)

    @contextlib.contextmanager
    def _lookups(
        self, routes: dict[str, str], ips: dict[str, str], skip: list[int]
    ) -> Iterator[_Lookups]:
        """Lookup tables (path → route, ip → anonymised ip, and the numbers of the lines
        left to Python when there are any), dropped afterwards."""
        token = secrets.token_hex(4)
        prefix = f"{bulk.SCRATCH_PREFIX}{token}"
        tables = _Lookups(
            token, f"{prefix}_routes", f"{prefix}_ips", f"{prefix}_skip" if skip else ""
        )
        created: list[str] = []
        try:
            for name, mapping in ((tables.routes, routes), (tables.ips, ips)):
                self.store.command(
                    f"CREATE TABLE {{db}}.{name} (key String, value String) "
                    "ENGINE = Join(ANY, LEFT, key)"
                )
                created.append(name)
                self.store.insert_table(name, "key, value", list(mapping.items()))
            if skip:
                self.store.command(f"CREATE TABLE {{db}}.{tables.skip} (n UInt64) ENGINE = Set")
                created.append(tables.skip)
                self.store.insert_table(tables.skip, "n", [(n,) for n in skip])
            yield tables
        finally:
            for name in created:
                self.store.command(f"DROP TABLE IF EXISTS {{db}}.{name}")

    @contextlib.contextmanager
    def _watch(self, progress: Progress | None, phase: int) -> Iterator[None]:
        if progress is None:
            yield
            return

        def report(payload: dict[str, Any]) -> None:
            progress(phase, int(payload.get("read_bytes", 0)), int(payload.get("read_rows", 0)))

        with self.store.progress(report):
            yield


__all__ = ["EngineImport", "EngineResult", "Progress"]
