"""Settings of alerting and continuous anomaly detection, from ``METERLINE_ALERTS_*`` and
``METERLINE_ANOMALY_*`` environment variables (SMTP comes from ``METERLINE_SMTP_*``, as
for reports)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

from meterline.reports.config import ReportsConfig


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, str(default)))


@dataclass(frozen=True, slots=True)
class AlertsConfig:
    """How often things run and how notifications are retried.

    ``interval``: seconds between evaluation rounds (threshold rules, anomaly detection,
    notifications). ``anomaly_lag``: a minute is judged this many seconds after it ends,
    so late events are in. ``learning``: seconds of an org's history needed before its
    anomalies are reported. ``sensitivity``: the default of every kind (0–1, higher
    finds more). ``resolve_after``: an anomaly alert not seen again for this long
    resolves itself. ``retry_backoff``/``max_attempts``: notification retries, the delay
    growing ×4 from ``retry_backoff`` seconds. ``retention_days``: anomalies and resolved
    alerts (with their notifications) older than this are deleted.
    """

    enabled: bool = True
    interval: float = 30.0
    anomaly_lag: float = 60.0
    learning: float = 3600.0
    sensitivity: float = 0.5
    resolve_after: float = 900.0
    recheck_minutes: int = 3
    max_backlog_minutes: int = 60
    retry_backoff: float = 30.0
    max_attempts: int = 6
    retention_days: float = 90.0
    mail_from: str = "alerts@meterline.localhost"
    smtp: ReportsConfig = field(default_factory=ReportsConfig)

    @classmethod
    def from_env(cls, **overrides: Any) -> AlertsConfig:
        """Defaults, then environment variables, then ``overrides``."""
        base = cls(
            enabled=os.environ.get("METERLINE_ALERTS_ENABLED", "1") not in ("0", "false", "no"),
            interval=_float("METERLINE_ALERTS_INTERVAL", 30.0),
            anomaly_lag=_float("METERLINE_ANOMALY_LAG", 60.0),
            learning=_float("METERLINE_ANOMALY_LEARNING", 3600.0),
            sensitivity=min(max(_float("METERLINE_ANOMALY_SENSITIVITY", 0.5), 0.0), 1.0),
            resolve_after=_float("METERLINE_ALERTS_RESOLVE_AFTER", 900.0),
            retry_backoff=_float("METERLINE_ALERTS_RETRY_BACKOFF", 30.0),
            max_attempts=int(_float("METERLINE_ALERTS_MAX_ATTEMPTS", 6)),
            retention_days=_float("METERLINE_ALERTS_RETENTION_DAYS", 90.0),
            mail_from=os.environ.get("METERLINE_ALERTS_MAIL_FROM", "alerts@meterline.localhost"),
            smtp=ReportsConfig.from_env(),
        )
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})
