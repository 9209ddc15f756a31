"""Threshold rules evaluated through the query model.

Each round computes the rule's metric over its trailing ``window`` (with its filters).
The condition must hold for ``duration`` before the alert opens — the first breach
starts a pending period, kept in the rule row so a restart does not forget it — and the
alert resolves itself on the first round where the condition no longer holds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from meterline.query import QueryService, iso, parse_query


@dataclass(frozen=True, slots=True)
class Verdict:
    """The value a rule saw and whether its condition held."""

    value: float | None
    breached: bool


def breached(value: Any, condition: str, threshold: float) -> bool:
    """Whether ``value`` is on the wrong side of ``threshold`` (no value never is)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return value > threshold if condition == "above" else value < threshold


def evaluate_rule(queries: QueryService, org_id: str, rule: Any, now: float) -> Verdict:
    """The rule's metric over its trailing window, ending at ``now``."""
    end = datetime.fromtimestamp(now, tz=UTC)
    start = end - timedelta(seconds=rule.window_seconds)
    query = parse_query(
        {
            "metrics": [rule.metric],
            "filters": json.loads(rule.filters),
            "start": iso(start),
            "end": iso(end),
        },
        now=end,
    )
    rows = queries.run(org_id, query).data
    value = rows[0].get(rule.metric) if rows else None
    number = float(value) if isinstance(value, int | float) else None
    return Verdict(number, breached(number, rule.condition, rule.value))


def describe(rule: Any, value: float | None) -> str:
    """One line for people: ``error_rate above 0.05 for 5m on route /x: 0.12``."""
    filters = json.loads(rule.filters)
    scope = ", ".join(f"{f['field']} {f['op']} {f['value']}" for f in filters) or "all traffic"
    held = f" for {int(rule.duration)}s" if rule.duration else ""
    shown = "no data" if value is None else f"{value:g}"
    return (
        f"{rule.name}: {rule.metric} {rule.condition} {rule.value:g}{held} ({scope}); now {shown}"
    )
