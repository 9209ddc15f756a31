"""The one metric vocabulary: logical metrics and dimensions, and their SQL.

Every analytics number Meterline shows is one of these metrics, grouped by these
dimensions. Each metric is defined once over *intermediates* — partial aggregates that
can be computed either from raw events or from a rollup table and then merged — so the
planner may answer any part of a time range from whichever table fits.
"""

from __future__ import annotations

from dataclasses import dataclass

from meterline.store import (
    LATENCY_BIN_SQL,
    LATENCY_QUANTILES,
    bins_quantile,
    latency_sketch,
    map_quantile,
)

_REQ = "type = 'request'"
_LLM = "type = 'llm'"


@dataclass(frozen=True, slots=True)
class Intermediate:
    """A partial aggregate: its SQL over raw events, over a rollup, and how to merge it.

    ``merge`` is the SQL merging partials across tables, ``{}`` standing for them.
    ``raw_final`` and ``rollup_final`` compute the merged value in one step, for a query
    that reads a single table and so has nothing to merge; they default to ``raw`` and
    ``rollup`` (right for sums, counts, minima and maxima, whose partials are final).
    ``series_final`` replaces ``rollup_final`` in a query bucketed by time, whose many
    groups each aggregate a few rollup rows (what is fastest differs).
    ``row_cost`` is what reading it from one rollup row costs, in units of merging one
    row's latency bins: the planner weighs rows read against conditions with it.
    """

    raw: str
    rollup: str
    merge: str
    raw_final: str | None = None
    rollup_final: str | None = None
    series_final: str | None = None
    row_cost: float = 0.01

    def final(self, *, raw: bool, bucketed: bool = False) -> str:
        """The one-step aggregate over raw events (``raw``) or over a rollup table, in a
        query bucketed by time or not (``bucketed``)."""
        if raw:
            return self.raw_final or self.raw
        if bucketed and self.series_final:
            return self.series_final
        return self.rollup_final or self.rollup


def _latency_quantile(index: int, level: float) -> Intermediate:
    """The latency quantile at ``level`` (the ``index``-th of :data:`LATENCY_QUANTILES`).

    Partials are latency bin maps: raw events binned as the rollups store them. Over raw
    events alone the engine's own sketch answers the same values, faster; a rollup read
    merges its rows' maps (fast for few groups of many rows), or for a time series (many
    groups of a row or two) joins their bins unmerged, which per group costs less than
    building a map. Each quantile is its own intermediate so a query computes only the
    levels it shows; the quantiles of one query share their bins (the engine computes
    identical subexpressions once).
    """
    raw_bins = f"sumMapIf(map({LATENCY_BIN_SQL}, toUInt64(1)), {_REQ} AND latency_ms >= 0)"
    return Intermediate(
        raw_bins,
        f"sumMapIf(latency_bins, {_REQ})",
        map_quantile("sumMap({})", level),
        "arrayElement("
        + latency_sketch("If")
        + f"(latency_ms, {_REQ} AND latency_ms >= 0), {index})",
        map_quantile(f"sumMapIf(latency_bins, {_REQ})", level),
        bins_quantile(
            f"groupArrayArrayIf(latency_bins.keys, {_REQ})",
            f"groupArrayArrayIf(latency_bins.values, {_REQ})",
            level,
        ),
        row_cost=1.0,
    )


INTERMEDIATES: dict[str, Intermediate] = {
    "all_count": Intermediate("count()", "sum(requests)", "sum({})"),
    "req_count": Intermediate(f"countIf({_REQ})", f"sumIf(requests, {_REQ})", "sum({})"),
    "req_client_errors": Intermediate(
        f"countIf({_REQ} AND status >= 400 AND status < 500)",
        f"sumIf(client_errors, {_REQ})",
        "sum({})",
    ),
    "req_server_errors": Intermediate(
        f"countIf({_REQ} AND status >= 500)", f"sumIf(server_errors, {_REQ})", "sum({})"
    ),
    "req_latency_count": Intermediate(
        f"countIf({_REQ} AND latency_ms >= 0)", f"sumIf(latency_count, {_REQ})", "sum({})"
    ),
    "req_latency_sum": Intermediate(
        f"sumIf(latency_ms, {_REQ} AND latency_ms >= 0)", f"sumIf(latency_sum, {_REQ})", "sum({})"
    ),
    "req_bytes": Intermediate(
        f"sumIf(request_size + response_size, {_REQ})",
        f"sumIf(request_bytes + response_bytes, {_REQ})",
        "sum({})",
    ),
    **{
        f"req_latency_p{round(level * 100)}": _latency_quantile(i, level)
        for i, level in enumerate(LATENCY_QUANTILES, 1)
    },
    "req_consumers": Intermediate(
        f"uniqExactStateIf(consumer_id, {_REQ} AND consumer_id != '')",
        f"uniqExactMergeStateIf(consumers, {_REQ})",
        "uniqExactMerge({})",
        f"uniqExactIf(consumer_id, {_REQ} AND consumer_id != '')",
        f"uniqExactMergeIf(consumers, {_REQ})",
        # Measured on 10M events from 5,000 consumers, an exact set costs about as much
        # to read and merge as a latency sketch state (~8 µs), four rows' latency bins.
        row_cost=4.0,
    ),
    "llm_count": Intermediate(f"countIf({_LLM})", f"sumIf(requests, {_LLM})", "sum({})"),
    "llm_input_tokens": Intermediate("sum(input_tokens)", "sum(input_tokens)", "sum({})"),
    "llm_output_tokens": Intermediate("sum(output_tokens)", "sum(output_tokens)", "sum({})"),
    "llm_cost": Intermediate("sum(cost_usd)", "sum(cost_usd)", "sum({})"),
    "first_seen": Intermediate("min(timestamp)", "min(first_seen)", "min({})"),
    "last_seen": Intermediate("max(timestamp)", "max(last_seen)", "max({})"),
}


@dataclass(frozen=True, slots=True)
class Metric:
    """A logical metric: the SQL over merged intermediates, its unit and what it needs.

    ``expression`` may use ``{minutes}``, the length in minutes of the bucket (or range)
    it is computed over. ``kind`` is ``count``, ``ratio``, ``latency``, ``bytes``,
    ``money``, ``time`` or ``rate``; it decides rounding and the empty value.
    """

    name: str
    expression: str
    needs: tuple[str, ...]
    unit: str
    kind: str
    description: str


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("requests", "req_count", ("req_count",), "requests", "count", "API requests"),
        Metric(
            "requests_per_minute",
            "req_count / {minutes}",
            ("req_count",),
            "requests/min",
            "rate",
            "API requests per minute over the bucket or range",
        ),
        Metric(
            "client_errors",
            "req_client_errors",
            ("req_client_errors",),
            "requests",
            "count",
            "Requests answered 4xx",
        ),
        Metric(
            "server_errors",
            "req_server_errors",
            ("req_server_errors",),
            "requests",
            "count",
            "Requests answered 5xx",
        ),
        Metric(
            "errors",
            "req_client_errors + req_server_errors",
            ("req_client_errors", "req_server_errors"),
            "requests",
            "count",
            "Requests answered 4xx or 5xx",
        ),
        Metric(
            "error_rate",
            "if(req_count > 0, (req_client_errors + req_server_errors) / req_count, 0)",
            ("req_count", "req_client_errors", "req_server_errors"),
            "ratio",
            "ratio",
            "Share of requests answered 4xx or 5xx (0–1)",
        ),
        Metric(
            "server_error_rate",
            "if(req_count > 0, req_server_errors / req_count, 0)",
            ("req_count", "req_server_errors"),
            "ratio",
            "ratio",
            "Share of requests answered 5xx (0–1)",
        ),
        Metric(
            "latency_avg",
            "if(req_latency_count > 0, req_latency_sum / req_latency_count, NULL)",
            ("req_latency_count", "req_latency_sum"),
            "ms",
            "latency",
            "Mean latency",
        ),
        Metric(
            "latency_p50",
            "req_latency_p50",
            ("req_latency_p50",),
            "ms",
            "latency",
            "Median latency",
        ),
        Metric(
            "latency_p95",
            "req_latency_p95",
            ("req_latency_p95",),
            "ms",
            "latency",
            "95th percentile latency",
        ),
        Metric(
            "latency_p99",
            "req_latency_p99",
            ("req_latency_p99",),
            "ms",
            "latency",
            "99th percentile latency",
        ),
        Metric(
            "bandwidth_bytes",
            "req_bytes",
            ("req_bytes",),
            "bytes",
            "bytes",
            "Request plus response body bytes",
        ),
        Metric(
            "unique_consumers",
            "req_consumers",
            ("req_consumers",),
            "consumers",
            "count",
            "Distinct consumers that made requests",
        ),
        Metric("llm_requests", "llm_count", ("llm_count",), "calls", "count", "LLM calls recorded"),
        Metric(
            "tokens",
            "llm_input_tokens + llm_output_tokens",
            ("llm_input_tokens", "llm_output_tokens"),
            "tokens",
            "count",
            "LLM input plus output tokens",
        ),
        Metric(
            "input_tokens",
            "llm_input_tokens",
            ("llm_input_tokens",),
            "tokens",
            "count",
            "LLM input tokens",
        ),
        Metric(
            "output_tokens",
            "llm_output_tokens",
            ("llm_output_tokens",),
            "tokens",
            "count",
            "LLM output tokens",
        ),
        Metric("cost_usd", "llm_cost", ("llm_cost",), "USD", "money", "LLM cost in US dollars"),
        Metric("events", "all_count", ("all_count",), "events", "count", "Events of every type"),
        Metric("first_seen", "first_seen", ("first_seen",), "time", "time", "Earliest event time"),
        Metric("last_seen", "last_seen", ("last_seen",), "time", "time", "Latest event time"),
    )
}
"""Every logical metric, by name."""

# Metrics whose value is replaced by these when computed over no rows at all.
EMPTY_VALUES: dict[str, float | None] = {
    "count": 0,
    "rate": 0,
    "ratio": 0,
    "bytes": 0,
    "money": 0,
    "latency": None,
    "time": None,
}


@dataclass(frozen=True, slots=True)
class Dimension:
    """A logical dimension and the ClickHouse type its filter values bind as."""

    name: str
    value_type: str
    description: str


DIMENSIONS: dict[str, Dimension] = {
    d.name: d
    for d in (
        Dimension("route", "String", "Route template, e.g. /orders/:id"),
        Dimension("method", "String", "HTTP method"),
        Dimension("status", "UInt16", "HTTP status code"),
        Dimension("status_class", "String", "2xx, 3xx, 4xx or 5xx"),
        Dimension("consumer_id", "String", "The API's customer"),
        Dimension("user_id", "String", "End user"),
        Dimension("api_token_id", "String", "API token used"),
        Dimension("region", "String", "Country or region code"),
        Dimension("model", "String", "LLM model"),
        Dimension("type", "String", "Event type"),
    )
}
"""Every dimension queries may group or filter by."""
