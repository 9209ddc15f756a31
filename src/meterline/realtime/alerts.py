"""Threshold alerts on stream values: inactive → pending → firing → resolved.

State is kept per (org, subject, subscription id, metric) by the hub, not per socket,
so a client that reconnects and replays its subscription finds the same alert (same
``alert_id``) instead of a second firing. Only transitions produce messages.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from meterline.realtime.protocol import Threshold, iso_now


class AlertState(StrEnum):
    """Where one threshold stands."""

    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"


@dataclass(slots=True)
class ThresholdAlert:
    """The lifecycle of one threshold; :meth:`observe` returns a message on a transition."""

    rule: Threshold
    scope: str
    state: AlertState = AlertState.INACTIVE
    since: float = 0.0
    alert_id: str = ""
    clear_since: float | None = None
    hold_until: float = 0.0
    """Before this time a firing alert does not resolve (see :meth:`hold`)."""

    def _breached(self, value: Any) -> bool:
        if not isinstance(value, int | float):
            return False
        if self.rule.condition == "above":
            return value > self.rule.value
        return value < self.rule.value

    def observe(self, value: Any, now: float, subscription_id: str) -> dict[str, Any] | None:
        """Feed the latest value; an ``alert`` message when it fires or resolves, else None."""
        if self._breached(value):
            self.clear_since = None
            if self.state is AlertState.INACTIVE:
                self.state, self.since = AlertState.PENDING, now
                self.alert_id = hashlib.sha256(f"{self.scope}|{now}".encode()).hexdigest()[:20]
            if self.state is AlertState.PENDING and now - self.since >= self.rule.duration:
                self.state = AlertState.FIRING
                return self.message("firing", value, now, subscription_id)
            return None
        if self.state is AlertState.FIRING:
            if now < self.hold_until:
                return None
            # keep_firing_for: a flapping value does not resolve and re-fire every tick.
            if self.clear_since is None:
                self.clear_since = now
            if now - self.clear_since < self.rule.keep_firing_for:
                return None
            self.state, self.clear_since = AlertState.INACTIVE, None
            return self.message("resolved", value, now, subscription_id)
        self.state = AlertState.INACTIVE
        return None

    def hold(self, until: float) -> None:
        """Keep a firing alert firing until ``until`` whatever the values say: a node
        that takes over an alert from a peer may not yet hold the peer's latest traffic,
        and would otherwise resolve it on a window that is still catching up."""
        self.hold_until = until

    def message(self, state: str, value: Any, now: float, subscription_id: str) -> dict[str, Any]:
        """The ``alert`` frame for this threshold in ``state``."""
        return {
            "type": "alert",
            "alert_id": self.alert_id,
            "subscription_id": subscription_id,
            "metric": self.rule.metric,
            "event_type": None if self.rule.source == "threshold" else self.rule.source,
            "state": state,
            "condition": self.rule.condition,
            "threshold": self.rule.value,
            "value": value,
            "since": iso_now(self.since),
            "duration": f"{int(self.rule.duration)}s",
            "timestamp": iso_now(now),
        }
