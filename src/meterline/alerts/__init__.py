"""Alerting: threshold rules and anomalies open alerts with a lifecycle (open →
acknowledged → resolved), feedback tunes anomaly sensitivity, and notifications go out
by signed webhook and e-mail.

The API calls :class:`AlertService`; each server process runs an :class:`AlertRunner`
that detects anomalies, evaluates rules, records live-stream alerts and notifies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from meterline.lazy import lazy_exports

if TYPE_CHECKING:
    from meterline.alerts.config import AlertsConfig
    from meterline.alerts.lifecycle import AlertBook, Firing, alert_json
    from meterline.alerts.notify import NotificationQueue
    from meterline.alerts.rules import RuleStore, parse_rule
    from meterline.alerts.runner import AlertRunner
    from meterline.alerts.service import AlertService

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "AlertsConfig": "config",
        "AlertBook": "lifecycle",
        "Firing": "lifecycle",
        "alert_json": "lifecycle",
        "NotificationQueue": "notify",
        "RuleStore": "rules",
        "parse_rule": "rules",
        "AlertRunner": "runner",
        "AlertService": "service",
    },
)

__all__ = [
    "AlertBook",
    "AlertRunner",
    "AlertService",
    "AlertsConfig",
    "Firing",
    "NotificationQueue",
    "RuleStore",
    "alert_json",
    "parse_rule",
]
