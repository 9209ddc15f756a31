"""Live windows: per-org, per-second partial aggregates fed by the ingest path.

Each second holds one :class:`Cell` per combination of the dimensions a subscription may
filter by (type, route, method, status, region, model, consumer). A cell keeps exactly
the intermediates the store's metric definitions merge — counts, sums, a latency sketch
with the store's quantile mapping, and the consumer itself — so any window and filter
answers the same numbers as ``POST /v2/query`` over the same rows, without a store query.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from meterline.events import ROW_COLUMNS
from meterline.query import Filter
from meterline.realtime.sketch import MIN_POSSIBLE, MULTIPLIER, LatencySketch, bin_key

LIVE_SECONDS = 3600
"""The longest ``time_window`` answered from memory."""
KEPT_SECONDS = 2 * LIVE_SECONDS + 5
"""Seconds kept: the longest window plus the previous one (for ``change``)."""

LIVE_COLUMNS = (
    "org_id",
    "type",
    "route",
    "method",
    "status",
    "region",
    "model",
    "consumer_id",
    "latency_ms",
    "request_size",
    "response_size",
    "input_tokens",
    "output_tokens",
    "cost_usd",
)
"""The event columns a live cell is built from, in the order :meth:`LiveWindows._fold`
unpacks them (followed by the second and the latency's sketch bin)."""
_LIVE_INDEXES = tuple(ROW_COLUMNS.index(name) for name in LIVE_COLUMNS)
_TIMESTAMP = ROW_COLUMNS.index("timestamp")
_LATENCY = ROW_COLUMNS.index("latency_ms")


def _bin(latency: Any) -> int | None:
    """The sketch bin of one latency (``None``: the zero bin), as :class:`LatencySketch`
    files it."""
    if latency is None or not latency > MIN_POSSIBLE:
        return None
    return bin_key(float(latency))


def _bins(latencies: pa.Array) -> list[int | None]:
    """:func:`_bin` of a column at once (the same libm logarithm, so the same bins)."""
    positive = pc.greater(latencies, MIN_POSSIBLE)
    logs = pc.ln(pc.if_else(positive, latencies, 1.0))
    keys = pc.cast(pc.trunc(pc.multiply(logs, MULTIPLIER)), pa.int64())
    return list(pc.if_else(positive, keys, None).to_pylist())


def _plain_requests(batch: pa.RecordBatch) -> bool:
    """Whether a batch holds only request events of one org, no LLM figures and no
    missing value in what a cell is keyed or counted by: what ingest of HTTP traffic
    sends, and what :meth:`LiveWindows._fold_requests` folds."""
    column = batch.column
    if not batch.num_rows or any(column(n).null_count for n in (*LIVE_COLUMNS, "timestamp")):
        return False
    org = pc.min_max(column("org_id"))
    kind = pc.min_max(column("type"))
    return bool(
        org["min"] == org["max"]
        and kind["min"].as_py() == kind["max"].as_py() == "request"
        and pc.max(column("input_tokens")).as_py() == 0
        and pc.max(column("output_tokens")).as_py() == 0
        # Summed, not maximised: a maximum skips NaN, which the general fold counts.
        and pc.sum(pc.abs(column("cost_usd"))).as_py() == 0
    )


CellKey = tuple[str, str, str, int, str, str, str]
"""(type, route, method, status, region, model, consumer_id)."""
CELL_FIELDS = ("type", "route", "method", "status", "region", "model", "consumer_id")


def status_class(status: int) -> str:
    """The store's status class of an HTTP status (``''`` when not a status)."""
    if status >= 500:
        return "5xx"
    if status >= 400:
        return "4xx"
    if status >= 300:
        return "3xx"
    if status >= 200:
        return "2xx"
    if status >= 100:
        return "1xx"
    return ""


@dataclass(slots=True)
class Cell:
    """Partial aggregates of one second for one dimension combination."""

    all_count: int = 0
    req_count: int = 0
    req_client_errors: int = 0
    req_server_errors: int = 0
    req_latency_count: int = 0
    req_latency_sum: float = 0.0
    req_bytes: int = 0
    llm_count: int = 0
    llm_input_tokens: int = 0
    llm_output_tokens: int = 0
    llm_cost: float = 0.0
    sketch: LatencySketch = field(default_factory=LatencySketch)

    def absorb(self, cell: Cell) -> None:
        """Add another cell's intermediates to this one (cells merge exactly)."""
        self.all_count += cell.all_count
        self.req_count += cell.req_count
        self.req_client_errors += cell.req_client_errors
        self.req_server_errors += cell.req_server_errors
        self.req_latency_count += cell.req_latency_count
        self.req_latency_sum += cell.req_latency_sum
        self.req_bytes += cell.req_bytes
        self.llm_count += cell.llm_count
        self.llm_input_tokens += cell.llm_input_tokens
        self.llm_output_tokens += cell.llm_output_tokens
        self.llm_cost += cell.llm_cost
        if cell.sketch.count:
            self.sketch.merge(cell.sketch)


@dataclass(slots=True)
class Totals(Cell):
    """Merged intermediates over a window (a cell's sums plus the distinct consumers):
    what metric expressions are computed from."""

    consumers: set[str] = field(default_factory=set)

    def add(self, key: CellKey, cell: Cell) -> None:
        """Merge one cell into the totals."""
        self.absorb(cell)
        if cell.req_count and key[6]:
            self.consumers.add(key[6])


def _field_value(key: CellKey, name: str) -> Any:
    if name == "status_class":
        return status_class(key[3])
    return key[CELL_FIELDS.index(name)]


def _matches(flt: Filter, value: Any) -> bool:
    op, wanted = flt.op, flt.value
    if op == "eq":
        return bool(value == wanted)
    if op == "neq":
        return bool(value != wanted)
    if op == "in":
        return value in wanted
    if op == "not_in":
        return value not in wanted
    if op == "contains":
        return str(wanted).lower() in str(value).lower()
    if op == "gt":
        return bool(value > wanted)
    if op == "gte":
        return bool(value >= wanted)
    if op == "lt":
        return bool(value < wanted)
    return bool(value <= wanted)


FILTERABLE = (*CELL_FIELDS, "status_class")
"""Dimensions a live subscription may filter by."""


class OrgWindow:
    """The per-second cells of one org."""

    __slots__ = ("_match_cache", "seconds")

    def __init__(self) -> None:
        self.seconds: dict[int, dict[CellKey, Cell]] = {}
        self._match_cache: dict[tuple[tuple[Filter, ...], CellKey], bool] = {}

    def _accepts(self, filters: tuple[Filter, ...], key: CellKey) -> bool:
        if not filters:
            return True
        cache_key = (filters, key)
        hit = self._match_cache.get(cache_key)
        if hit is None:
            hit = all(_matches(f, _field_value(key, f.field)) for f in filters)
            if len(self._match_cache) > 200_000:
                self._match_cache.clear()
            self._match_cache[cache_key] = hit
        return hit

    def totals(self, start: int, end: int, filters: tuple[Filter, ...]) -> Totals:
        """Merged intermediates of the seconds ``[start, end)`` whose cells pass ``filters``."""
        out = Totals()
        seconds = self.seconds
        if end - start > len(seconds):
            stamps: Iterable[int] = (s for s in seconds if start <= s < end)
        else:
            stamps = range(start, end)
        for second in stamps:
            cells = seconds.get(second)
            if not cells:
                continue
            for key, cell in cells.items():
                if self._accepts(filters, key):
                    out.add(key, cell)
        return out


class LiveWindows:
    """Every org's live window; :meth:`add_batch` is the ingest writer's listener.

    Example:
        >>> windows = LiveWindows()
        >>> writer.listeners.append(windows.add_batch)  # doctest: +SKIP
    """

    def __init__(self) -> None:
        self.orgs: dict[str, OrgWindow] = {}
        self.rows_seen = 0

    def org(self, org_id: str) -> OrgWindow:
        """The window of ``org_id`` (empty when it has sent nothing lately)."""
        found = self.orgs.get(org_id)
        if found is None:
            found = self.orgs[org_id] = OrgWindow()
        return found

    def add_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        """Fold durably written rows (in ``ROW_COLUMNS`` order) into the live cells."""
        self._fold(
            (
                *(row[i] for i in _LIVE_INDEXES),
                int(row[_TIMESTAMP]) // 1000,
                _bin(row[_LATENCY]),
            )
            for row in rows
        )
        self.rows_seen += len(rows)

    def add_batch(self, batch: pa.RecordBatch) -> None:
        """Fold a durably written Arrow batch of event rows into the live cells; the
        ingest writer's listener."""
        if _plain_requests(batch):
            self._fold_requests(batch)
            self.rows_seen += batch.num_rows
            return
        columns = [batch.column(name).to_pylist() for name in LIVE_COLUMNS]
        seconds = pc.divide(batch.column("timestamp"), 1000).to_pylist()
        self._fold(zip(*columns, seconds, _bins(batch.column("latency_ms")), strict=True))
        self.rows_seen += batch.num_rows

    def _fold(self, rows: Iterable[Sequence[Any]]) -> None:
        # One pass, no calls per row: this runs on the event loop for every event.
        orgs = self.orgs
        for (
            org_id,
            kind,
            route,
            method,
            status,
            region,
            model,
            consumer,
            latency,
            request_size,
            response_size,
            input_tokens,
            output_tokens,
            cost,
            second,
            latency_bin,
        ) in rows:
            window = orgs.get(org_id)
            if window is None:
                window = orgs[org_id] = OrgWindow()
            cells = window.seconds.get(second)
            if cells is None:
                cells = window.seconds[second] = {}
            key: CellKey = (
                kind,
                route or "",
                method or "",
                int(status or 0),
                region or "",
                model or "",
                consumer or "",
            )
            cell = cells.get(key)
            if cell is None:
                cell = cells[key] = Cell()
            cell.all_count += 1
            if input_tokens:
                cell.llm_input_tokens += int(input_tokens)
            if output_tokens:
                cell.llm_output_tokens += int(output_tokens)
            if cost:
                cell.llm_cost += float(cost)
            if kind == "request":
                cell.req_count += 1
                code = key[3]
                if 400 <= code < 500:
                    cell.req_client_errors += 1
                elif code >= 500:
                    cell.req_server_errors += 1
                # NaN (unknown latency) fails this comparison, as in the store.
                if latency is not None and latency >= 0:
                    cell.req_latency_count += 1
                    cell.req_latency_sum += float(latency)
                    sketch = cell.sketch
                    if latency_bin is None:
                        sketch.zero_count += 1
                    else:
                        sketch.bins[latency_bin] = sketch.bins.get(latency_bin, 0) + 1
                    sketch.count += 1
                cell.req_bytes += int(request_size or 0) + int(response_size or 0)
            elif kind == "llm":
                cell.llm_count += 1

    def _fold_requests(self, batch: pa.RecordBatch) -> None:
        """:meth:`_fold` for a batch :func:`_plain_requests` accepts, with the work its
        guarantees make needless left out: the usual ingest batch, folded on the event
        loop for every event, so every step per event counts."""
        column = batch.column
        org_id = column("org_id")[0].as_py()
        window = self.orgs.get(org_id)
        if window is None:
            window = self.orgs[org_id] = OrgWindow()
        by_second = window.seconds
        keys = zip(*(column(name).to_pylist() for name in CELL_FIELDS), strict=True)
        latencies = column("latency_ms")
        sizes = pc.add(column("request_size"), column("response_size")).to_pylist()
        seconds = pc.divide(column("timestamp"), 1000).to_pylist()
        current: int | None = None
        cells: dict[CellKey, Cell] = {}
        for key, second, latency, latency_bin, size in zip(
            keys, seconds, latencies.to_pylist(), _bins(latencies), sizes, strict=True
        ):
            if second != current:
                current = second
                found = by_second.get(second)
                if found is None:
                    found = by_second[second] = {}
                cells = found
            cell = cells.get(key)
            if cell is None:
                cell = cells[key] = Cell()
            cell.all_count += 1
            cell.req_count += 1
            code = key[3]
            if code >= 400:
                if code < 500:
                    cell.req_client_errors += 1
                else:
                    cell.req_server_errors += 1
            # NaN (unknown latency) fails this comparison, as in the store.
            if latency >= 0:
                cell.req_latency_count += 1
                cell.req_latency_sum += latency
                sketch = cell.sketch
                if latency_bin is None:
                    sketch.zero_count += 1
                else:
                    bins = sketch.bins
                    bins[latency_bin] = bins.get(latency_bin, 0) + 1
                sketch.count += 1
            cell.req_bytes += size

    def merge(self, org_id: str, second: int, key: CellKey, cell: Cell) -> None:
        """Fold another node's partial aggregate of one second into the live cells."""
        cells = self.org(org_id).seconds.setdefault(second, {})
        mine = cells.get(key)
        if mine is None:
            cells[key] = cell
            return
        mine.absorb(cell)

    def prune(self, now: float) -> None:
        """Drop seconds older than any live window (and its previous window) needs."""
        oldest = int(now) - KEPT_SECONDS
        for org_id, window in list(self.orgs.items()):
            for second in [s for s in window.seconds if s < oldest]:
                del window.seconds[second]
            if not window.seconds:
                del self.orgs[org_id]
