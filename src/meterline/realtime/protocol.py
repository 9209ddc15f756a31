"""The ``/v2/stream`` messages: validating a ``subscribe`` into a :class:`SubscriptionSpec`.

Every problem in a subscribe message is collected into one ``VALIDATION_ERROR`` that
names the allowed values, as the REST API does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from meterline.errors import ValidationError
from meterline.query import Filter
from meterline.realtime.catalogue import ALL_METRICS, STREAMABLE
from meterline.realtime.window import LIVE_SECONDS

_DURATION = re.compile(r"^(\d{1,5})(s|m|h|d)$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_WINDOW_SECONDS = 31 * 86400
REAL_TIME_SECONDS = 0.25
STORE_MIN_FREQUENCY = 10.0
AGGREGATIONS = ("avg", "sum", "min", "max", "p95", "raw")
MAX_ID_LENGTH = 128

NAMED_FILTERS: dict[str, str] = {
    "regions": "region",
    "endpoints": "route",
    "routes": "route",
    "consumers": "consumer_id",
    "status_class": "status_class",
    "methods": "method",
    "models": "model",
    "types": "type",
    "statuses": "status",
}
"""Filter keys of a subscription and the dimension each one narrows."""

EVENT_TYPES: dict[str, tuple[str, str, float, float]] = {
    "error_rate_high": ("error_rate", "above", 0.05, 300.0),
    "latency_high": ("p95_latency", "above", 1000.0, 300.0),
    "traffic_drop": ("requests_per_minute", "below", 1.0, 300.0),
}
"""Named event types and the built-in threshold each stands for (metric, condition,
value, duration in seconds)."""


def parse_duration(text: Any) -> float | None:
    """Seconds in ``"30s"``, ``"5m"``, ``"1h"``, ``"1d"``; ``None`` when malformed."""
    if not isinstance(text, str):
        return None
    match = _DURATION.match(text.strip())
    if not match:
        return None
    return float(int(match.group(1)) * _UNIT[match.group(2)])


def iso_now(now: float) -> str:
    """ISO 8601 UTC timestamp with milliseconds."""
    moment = datetime.fromtimestamp(now, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class Threshold:
    """An alert rule on one metric of a subscription."""

    metric: str
    condition: str
    value: float
    duration: float
    source: str = "threshold"
    keep_firing_for: float = 0.0


@dataclass(frozen=True, slots=True)
class SubscriptionSpec:
    """A validated subscription. ``key`` identifies what is computed, so identical
    subscriptions from any connection of the same org share one computation."""

    subscription_id: str
    metrics: tuple[str, ...]
    filters: tuple[Filter, ...]
    window_seconds: int
    frequency_seconds: float
    aggregation: str
    thresholds: tuple[Threshold, ...]
    raw_filters: dict[str, Any]
    frequency_label: str
    window_label: str

    @property
    def key(self) -> tuple[Any, ...]:
        """What decides the values: metrics, filters, window, aggregation and cadence."""
        return (
            self.metrics,
            self.filters,
            self.window_seconds,
            self.aggregation,
            self.frequency_seconds,
        )

    @property
    def live(self) -> bool:
        """True when the window is answered from memory rather than the store."""
        return self.window_seconds <= LIVE_SECONDS

    def effective(self) -> dict[str, Any]:
        """The normalised subscription echoed in ``subscribed``."""
        return {
            "metrics": list(self.metrics),
            "filters": {
                **self.raw_filters,
                "time_window": self.window_label,
                "aggregation": self.aggregation,
            },
            "delivery_frequency": self.frequency_label,
            "source": "live" if self.live else "store",
            "alert_thresholds": {
                t.metric: {
                    "condition": t.condition,
                    "value": t.value,
                    "duration": f"{int(t.duration)}s",
                    "keep_firing_for": f"{int(t.keep_firing_for)}s",
                }
                for t in self.thresholds
            },
        }


def _problem(errors: list[dict[str, Any]], field: str, message: str) -> None:
    errors.append({"field": field, "message": message})


def _metrics(raw: Any, errors: list[dict[str, Any]]) -> tuple[str, ...]:
    if raw == "all" or raw == ["all"]:
        return ALL_METRICS
    if not isinstance(raw, list) or not raw or len(raw) > 50:
        _problem(errors, "metrics", 'give a list of 1 to 50 metric names, or "all"')
        return ()
    out: list[str] = []
    for name in raw:
        if not isinstance(name, str) or name not in STREAMABLE:
            _problem(
                errors,
                "metrics",
                f"unknown metric {name!r}; allowed: {', '.join(sorted(STREAMABLE))}",
            )
        elif name not in out:
            out.append(name)
    return tuple(out)


def _filters(
    raw: dict[str, Any], errors: list[dict[str, Any]]
) -> tuple[tuple[Filter, ...], dict[str, Any]]:
    out: list[Filter] = []
    echo: dict[str, Any] = {}
    for name in sorted(raw):
        if name in ("time_window", "aggregation"):
            continue
        if name not in NAMED_FILTERS:
            _problem(
                errors,
                f"filters.{name}",
                f"unknown filter; allowed: time_window, aggregation, {', '.join(NAMED_FILTERS)}",
            )
            continue
        value = raw[name]
        values = value if isinstance(value, list) else [value]
        numeric = NAMED_FILTERS[name] == "status"
        if (
            not values
            or len(values) > 1000
            or not all(
                (isinstance(v, int) and not isinstance(v, bool))
                if numeric
                else (isinstance(v, str) and 0 < len(v) <= 1024)
                for v in values
            )
        ):
            kind = "integers" if numeric else "non-empty strings"
            _problem(errors, f"filters.{name}", f"must be a list of 1 to 1000 {kind}")
            continue
        clean = sorted(set(values))
        echo[name] = clean
        out.append(Filter(NAMED_FILTERS[name], "in", tuple(clean)))
    return tuple(sorted(out, key=lambda f: f.field)), echo


def _thresholds(
    raw: Any, event_types: Any, metrics: tuple[str, ...], errors: list[dict[str, Any]]
) -> tuple[Threshold, ...]:
    out: list[Threshold] = []
    if raw is not None and not isinstance(raw, dict):
        _problem(errors, "alert_thresholds", "must be an object {metric: {condition, value}}")
        raw = {}
    for metric, rule in (raw or {}).items():
        where = f"alert_thresholds.{metric}"
        if metric not in STREAMABLE:
            _problem(errors, where, "unknown metric")
            continue
        if not isinstance(rule, dict):
            _problem(errors, where, "must be an object {condition, value, duration}")
            continue
        condition, value = rule.get("condition"), rule.get("value")
        duration = parse_duration(rule.get("duration", "0s"))
        keep = parse_duration(rule.get("keep_firing_for", "0s"))
        if condition not in ("above", "below"):
            _problem(errors, f"{where}.condition", "must be above or below")
        elif isinstance(value, bool) or not isinstance(value, int | float):
            _problem(errors, f"{where}.value", "must be a number")
        elif duration is None or duration > 86400:
            _problem(errors, f"{where}.duration", "must look like 0s, 30s, 5m or 1h (≤ 1d)")
        elif keep is None or keep > 86400:
            _problem(errors, f"{where}.keep_firing_for", "must look like 0s, 30s or 5m (≤ 1d)")
        else:
            out.append(Threshold(metric, condition, float(value), duration, keep_firing_for=keep))
    if event_types is not None:
        if not isinstance(event_types, list):
            _problem(errors, "event_types", "must be a list of event type names")
            event_types = []
        for name in event_types:
            if name not in EVENT_TYPES:
                _problem(
                    errors,
                    "event_types",
                    f"unknown event type {name!r}; allowed: {', '.join(EVENT_TYPES)}",
                )
                continue
            metric, condition, value, duration = EVENT_TYPES[name]
            if not any(t.metric == metric for t in out):
                out.append(Threshold(metric, condition, value, duration, source=name))
    return tuple(out)


def parse_subscribe(message: dict[str, Any]) -> SubscriptionSpec:
    """Validate a ``subscribe`` message; raises :class:`ValidationError` with every problem."""
    errors: list[dict[str, Any]] = []
    sub_id = message.get("subscription_id")
    if not isinstance(sub_id, str) or not 0 < len(sub_id) <= MAX_ID_LENGTH:
        _problem(errors, "subscription_id", f"give a string of 1 to {MAX_ID_LENGTH} characters")
        sub_id = ""
    metrics = _metrics(message.get("metrics"), errors)
    raw_filters = message.get("filters") or {}
    if not isinstance(raw_filters, dict):
        _problem(errors, "filters", "must be an object")
        raw_filters = {}
    window_label = raw_filters.get("time_window", "5m")
    window = parse_duration(window_label)
    if window is None or not 1 <= window <= MAX_WINDOW_SECONDS:
        _problem(errors, "filters.time_window", "must look like 30s, 5m, 1h or 24h (≤ 31d)")
        window = 300.0
    aggregation = raw_filters.get("aggregation", "avg")
    if aggregation not in AGGREGATIONS:
        _problem(errors, "filters.aggregation", f"must be one of {', '.join(AGGREGATIONS)}")
    filters, echo = _filters(raw_filters, errors)
    frequency_label = message.get("delivery_frequency", "real_time")
    if frequency_label == "real_time":
        frequency: float | None = REAL_TIME_SECONDS
    else:
        frequency = parse_duration(frequency_label)
        if frequency is None or not 1 <= frequency <= 300:
            _problem(errors, "delivery_frequency", "must be real_time or 1s to 5m")
            frequency = 1.0
    thresholds = _thresholds(
        message.get("alert_thresholds"), message.get("event_types"), metrics, errors
    )
    if errors:
        raise ValidationError(
            "the subscription is not valid",
            details="See validation_errors.",
            validation_errors=errors,
        )
    assert frequency is not None
    if window > LIVE_SECONDS and frequency < STORE_MIN_FREQUENCY:
        # Windows longer than memory holds are store queries; bound how often they run.
        frequency, frequency_label = STORE_MIN_FREQUENCY, f"{int(STORE_MIN_FREQUENCY)}s"
    return SubscriptionSpec(
        subscription_id=sub_id,
        metrics=metrics,
        filters=filters,
        window_seconds=int(window),
        frequency_seconds=frequency,
        aggregation=str(aggregation),
        thresholds=thresholds,
        raw_filters=echo,
        frequency_label=str(frequency_label),
        window_label=str(window_label),
    )
