"""The stream's metric names and how each is computed from live totals.

Stream names follow the seed (``requests_per_minute``, ``p95_latency``,
``api_response_time``, ``active_users``, ``bandwidth``, …); each maps onto one metric of
the query vocabulary, so its value, unit and rounding are the ones ``POST /v2/query``
answers. Vocabulary names are accepted as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from meterline.query import METRICS, metric_value
from meterline.realtime.window import Totals
from meterline.store import LATENCY_QUANTILES

ALIASES: dict[str, str] = {
    "requests_per_minute": "requests_per_minute",
    "error_rate": "error_rate",
    "p50_latency": "latency_p50",
    "p95_latency": "latency_p95",
    "p99_latency": "latency_p99",
    "api_response_time": "latency_avg",
    "active_users": "unique_consumers",
    "active_consumers": "unique_consumers",
    "bandwidth": "bandwidth_bytes",
    "page_views": "requests",
}
"""Seed-style stream metric names and the vocabulary metric each one is."""

ALL_METRICS: tuple[str, ...] = (
    "requests",
    "requests_per_minute",
    "errors",
    "error_rate",
    "api_response_time",
    "p50_latency",
    "p95_latency",
    "p99_latency",
    "active_consumers",
    "bandwidth",
    "llm_requests",
    "tokens",
    "cost_usd",
)
"""What ``"all"`` subscribes to."""


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else 0


def _quantile(index: int) -> Callable[[Totals, float], Any]:
    def compute(t: Totals, _minutes: float) -> Any:
        return t.sketch.quantiles(LATENCY_QUANTILES)[index]

    return compute


_COMPUTE: dict[str, Callable[[Totals, float], Any]] = {
    "requests": lambda t, _m: t.req_count,
    "requests_per_minute": lambda t, m: t.req_count / m,
    "client_errors": lambda t, _m: t.req_client_errors,
    "server_errors": lambda t, _m: t.req_server_errors,
    "errors": lambda t, _m: t.req_client_errors + t.req_server_errors,
    "error_rate": lambda t, _m: _ratio(t.req_client_errors + t.req_server_errors, t.req_count),
    "server_error_rate": lambda t, _m: _ratio(t.req_server_errors, t.req_count),
    "latency_avg": lambda t, _m: (
        t.req_latency_sum / t.req_latency_count if t.req_latency_count else None
    ),
    "latency_p50": _quantile(0),
    "latency_p95": _quantile(1),
    "latency_p99": _quantile(2),
    "bandwidth_bytes": lambda t, _m: t.req_bytes,
    "unique_consumers": lambda t, _m: len(t.consumers),
    "llm_requests": lambda t, _m: t.llm_count,
    "tokens": lambda t, _m: t.llm_input_tokens + t.llm_output_tokens,
    "input_tokens": lambda t, _m: t.llm_input_tokens,
    "output_tokens": lambda t, _m: t.llm_output_tokens,
    "cost_usd": lambda t, _m: t.llm_cost,
    "events": lambda t, _m: t.all_count,
}

STREAMABLE: frozenset[str] = frozenset(ALIASES) | frozenset(_COMPUTE)
"""Every metric name a subscription may ask for."""


def vocabulary_name(name: str) -> str:
    """The query-vocabulary metric a stream metric name stands for."""
    return ALIASES.get(name, name)


def unit(name: str) -> str:
    """The unit of a stream metric."""
    return METRICS[vocabulary_name(name)].unit


def compute(name: str, totals: Totals, minutes: float) -> Any:
    """The value of stream metric ``name`` over ``totals`` of a ``minutes``-long window."""
    vocab = vocabulary_name(name)
    return metric_value(vocab, _COMPUTE[vocab](totals, minutes))


def change(current: Any, previous: Any) -> float | None:
    """Percent change against the previous window; ``None`` when it was 0 or empty."""
    if not isinstance(current, int | float) or not isinstance(previous, int | float):
        return None
    if previous == 0:
        return None
    return round((current - previous) / abs(previous) * 100, 2)
