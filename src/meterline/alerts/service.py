"""The alerting capability as the API and the runner see it.

:class:`AlertService` ties rules, alerts, anomaly history and notifications together:
sources *fire* (a threshold held, an anomaly was found, a stream threshold fired) and
*clear*; people acknowledge, resolve and give feedback; every opening, acknowledgement
and resolution is notified to the targets of the rules concerned.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine, delete, select

from meterline.alerts.config import AlertsConfig
from meterline.alerts.lifecycle import AlertBook, Firing, alert_json
from meterline.alerts.notify import NotificationQueue
from meterline.alerts.rules import RuleStore
from meterline.alerts.tables import alert_notifications, alerts
from meterline.clock import Clock
from meterline.insight.anomalies import AnomalyHistory, Episode
from meterline.insight.anomalies.tables import anomalies


def anomaly_firing(episode: Episode) -> Firing:
    """The alert an anomaly episode raises: one per kind, metric, place and direction."""
    row = episode.row
    where = {k: row[k] for k in ("route", "consumer_id", "region") if row.get(k) is not None}
    return Firing(
        source="anomaly",
        fingerprint=f"anomaly|{row['kind']}|{row['metric']}|{row['scope']}|{row['direction']}",
        metric=row["metric"],
        message=row["message"],
        kind=row["kind"],
        anomaly_id=row["anomaly_id"],
        where=where,
        observed=row["observed"],
        expected=row["expected"],
        lower=row["lower"],
        upper=row["upper"],
        score=row["score"],
    )


class AlertService:
    """Rules, alerts, anomaly history and notifications of every org."""

    def __init__(self, engine: Engine, clock: Clock, config: AlertsConfig | None = None) -> None:
        self.engine = engine
        self.clock = clock
        self.config = config or AlertsConfig()
        self.rules = RuleStore(engine, clock)
        self.book = AlertBook(engine, clock, self.config.sensitivity)
        self.history = AnomalyHistory(engine)
        self.notifications = NotificationQueue(engine, clock, self.config)

    # -- sources ---------------------------------------------------------------------------

    def fire(self, org_id: str, firing: Firing) -> tuple[dict[str, Any], bool]:
        """Open or refresh the alert of ``firing``; notifies when it opened."""
        row, opened = self.book.fire(org_id, firing)
        alert = alert_json(row)
        if opened:
            self.notifications.plan(org_id, alert, "alert.opened", self._targets(org_id, row))
        return alert, opened

    def clear(self, org_id: str, fingerprint: str, note: str) -> dict[str, Any] | None:
        """Resolve the active alert of ``fingerprint`` (its condition cleared)."""
        row = self.book.clear(org_id, fingerprint, note)
        if row is None:
            return None
        alert = alert_json(row)
        self.notifications.plan(org_id, alert, "alert.resolved", self._targets(org_id, row))
        return alert

    def clear_source(self, source: str, note: str) -> int:
        """Resolve every active alert of ``source`` (all orgs); returns how many."""
        stale = self.book.stale(source, self.clock() + 1.0)
        for row in stale:
            self.clear(row.org_id, row.fingerprint, note)
        return len(stale)

    def resolve_quiet_anomalies(self) -> int:
        """Resolve anomaly alerts not seen for ``resolve_after`` seconds; returns how many."""
        stale = self.book.stale("anomaly", self.clock() - self.config.resolve_after)
        for row in stale:
            self.clear(row.org_id, row.fingerprint, "not seen again since the last anomaly")
        return len(stale)

    def sweep(self) -> int:
        """Delete anomalies last seen, and resolved alerts (with their notifications)
        resolved, more than ``retention_days`` ago; returns rows deleted."""
        cutoff = self.clock() - self.config.retention_days * 86400
        with self.engine.begin() as conn:
            old = select(alerts.c.alert_id).where(
                alerts.c.status == "resolved", alerts.c.resolved_at < cutoff
            )
            deleted = conn.execute(
                delete(alert_notifications).where(alert_notifications.c.alert_id.in_(old))
            ).rowcount
            deleted += conn.execute(
                delete(alerts).where(alerts.c.status == "resolved", alerts.c.resolved_at < cutoff)
            ).rowcount
            deleted += conn.execute(
                delete(anomalies).where(anomalies.c.last_seen_at < cutoff)
            ).rowcount
        return int(deleted)

    def _targets(self, org_id: str, row: Any) -> list[dict[str, Any]]:
        if row.source == "threshold" and row.rule_id:
            return [
                json.loads(r.notify)
                for r in self.rules.rows(org_id, "threshold")
                if r.rule_id == row.rule_id
            ]
        if row.source != "anomaly":
            return []
        out = []
        for rule in self.rules.rows(org_id, "anomaly"):
            kinds = json.loads(rule.kinds)
            if (not kinds or row.kind in kinds) and (row.score or 0.0) >= rule.min_score:
                out.append(json.loads(rule.notify))
        return out

    # -- people ----------------------------------------------------------------------------

    def acknowledge(self, org_id: str, alert_id: str, by: str) -> dict[str, Any]:
        """Acknowledge an open alert and notify its targets."""
        row = self.book.acknowledge(org_id, alert_id, by)
        alert = alert_json(row)
        self.notifications.plan(org_id, alert, "alert.acknowledged", self._targets(org_id, row))
        return alert

    def resolve(self, org_id: str, alert_id: str, by: str, note: Any) -> dict[str, Any]:
        """Resolve an alert by hand and notify its targets."""
        if note is not None and not isinstance(note, str):
            note = str(note)
        row = self.book.resolve(org_id, alert_id, by, note[:2000] if note else None)
        alert = alert_json(row)
        self.notifications.plan(org_id, alert, "alert.resolved", self._targets(org_id, row))
        return alert

    def get(self, org_id: str, alert_id: str) -> dict[str, Any]:
        """One alert with its notifications."""
        alert = self.book.get(org_id, alert_id)
        alert["notifications"] = self.notifications.for_alert(org_id, alert_id)
        return alert
