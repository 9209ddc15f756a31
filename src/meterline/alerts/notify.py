"""Notifications of alert events, one row per recipient, retried with backoff.

Each (alert event, channel, recipient) is one row, so a failing webhook never delays
the e-mails. Temporary failures are retried after ``retry_backoff × 4^(n-1)`` seconds
(at most an hour) up to ``max_attempts``; permanent ones are recorded and dropped. Rows
are claimed with a lease, so several server processes never send one twice.
"""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any

from sqlalchemy import Engine, or_, select, update

from meterline.alerts.channels import build_alert_email, send_alert_email, send_alert_webhook
from meterline.alerts.config import AlertsConfig
from meterline.alerts.tables import alert_notifications
from meterline.clock import Clock
from meterline.reports.delivery import PermanentDeliveryError, TemporaryDeliveryError

log = logging.getLogger(__name__)


class NotificationQueue:
    """Plans and sends alert notifications."""

    def __init__(self, engine: Engine, clock: Clock, config: AlertsConfig) -> None:
        self.engine = engine
        self.clock = clock
        self.config = config

    def plan(
        self, org_id: str, alert: dict[str, Any], event: str, notify: list[dict[str, Any]]
    ) -> int:
        """Queue ``event`` (``alert.opened`` …) of ``alert`` to every target of every
        ``notify`` object (a recipient named twice is sent once); returns rows queued."""
        now = self.clock()
        targets: dict[tuple[str, str], str | None] = {}
        for n in notify:
            hook = n.get("webhook")
            if hook:
                targets.setdefault(("webhook", hook["url"]), hook.get("secret"))
            for address in n.get("email", []):
                targets.setdefault(("email", address), None)
        payload = json.dumps({"event": event, "org_id": org_id, "alert": alert})
        with self.engine.begin() as conn:
            for (channel, recipient), secret in targets.items():
                conn.execute(
                    alert_notifications.insert().values(
                        notification_id="ntf_" + secrets.token_hex(8),
                        alert_id=alert["alert_id"],
                        org_id=org_id,
                        event=event,
                        channel=channel,
                        recipient=recipient,
                        secret=secret,
                        payload=payload,
                        status="pending",
                        attempts=0,
                        next_attempt_at=now,
                        created_at=now,
                    )
                )
        return len(targets)

    def process(self) -> int:
        """Attempt every due notification once; returns how many were attempted."""
        now = self.clock()
        claimable = (
            alert_notifications.c.status.in_(("pending", "retrying")),
            alert_notifications.c.next_attempt_at <= now,
            or_(
                alert_notifications.c.lease_until.is_(None),
                alert_notifications.c.lease_until < now,
            ),
        )
        with self.engine.connect() as conn:
            due = conn.execute(select(alert_notifications).where(*claimable)).all()
        attempted = 0
        for row in due:
            with self.engine.begin() as conn:
                taken = conn.execute(
                    update(alert_notifications)
                    .where(alert_notifications.c.notification_id == row.notification_id, *claimable)
                    .values(lease_until=now + 120)
                )
            if taken.rowcount != 1:
                continue
            attempted += 1
            self._attempt(row)
        return attempted

    def _attempt(self, row: Any) -> None:
        attempts = row.attempts + 1
        values: dict[str, Any] = {"attempts": attempts, "lease_until": None}
        try:
            if row.channel == "webhook":
                send_alert_webhook(
                    row.recipient,
                    row.payload.encode(),
                    event=row.event,
                    delivery_id=row.notification_id,
                    secret=row.secret,
                    now=self.clock(),
                )
            else:
                alert = json.loads(row.payload)["alert"]
                message = build_alert_email(alert, row.event, row.recipient, self.config.mail_from)
                send_alert_email(message, self.config.smtp)
            values.update(status="sent", sent_at=self.clock(), last_error=None)
        except PermanentDeliveryError as exc:
            values.update(status="failed", last_error=str(exc)[:1000])
        except TemporaryDeliveryError as exc:
            if attempts >= self.config.max_attempts:
                values.update(status="failed", last_error=f"gave up: {exc}"[:1000])
            else:
                delay = min(self.config.retry_backoff * 4 ** (attempts - 1), 3600.0)
                values.update(
                    status="retrying",
                    last_error=str(exc)[:1000],
                    next_attempt_at=self.clock() + delay,
                )
        log.info(
            "alert notification %s to %s: %s", row.notification_id, row.recipient, values["status"]
        )
        with self.engine.begin() as conn:
            conn.execute(
                update(alert_notifications)
                .where(alert_notifications.c.notification_id == row.notification_id)
                .values(**values)
            )

    def for_alert(self, org_id: str, alert_id: str) -> list[dict[str, Any]]:
        """The notifications of one alert, oldest first (no secrets)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(alert_notifications)
                .where(
                    alert_notifications.c.org_id == org_id,
                    alert_notifications.c.alert_id == alert_id,
                )
                .order_by(alert_notifications.c.created_at, alert_notifications.c.notification_id)
            ).all()
        return [
            {
                "notification_id": r.notification_id,
                "event": r.event,
                "channel": r.channel,
                "recipient": r.recipient,
                "status": r.status,
                "attempts": r.attempts,
                "last_error": r.last_error,
            }
            for r in rows
        ]
