"""The alerts component's tables: rules, alerts, notifications and sensitivities.

Times are Unix seconds (floats) so SQLite and PostgreSQL compare them the same way.
JSON-shaped fields (filters, kinds, notify, where) are stored as text.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, Index, Integer, String, Table, Text
from sqlalchemy.engine import Connection

from meterline.metadb import Migration, metadata

COMPONENT = "alerts"

alert_rules = Table(
    "alert_rules",
    metadata,
    Column("rule_id", String(64), primary_key=True),
    Column("org_id", String(64), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("type", String(16), nullable=False),
    Column("metric", String(64), nullable=True),
    Column("condition", String(8), nullable=True),
    Column("value", Float, nullable=True),
    Column("duration", Float, nullable=False, default=0.0),
    Column("window_seconds", Float, nullable=False, default=60.0),
    Column("filters", Text, nullable=False, default="[]"),
    Column("kinds", Text, nullable=False, default="[]"),
    Column("min_score", Float, nullable=False, default=0.0),
    Column("notify", Text, nullable=False, default="{}"),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("pending_since", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

alerts = Table(
    "alerts",
    metadata,
    Column("alert_id", String(64), primary_key=True),
    Column("org_id", String(64), nullable=False),
    Column("source", String(16), nullable=False),
    Column("fingerprint", String(600), nullable=False),
    Column("rule_id", String(64), nullable=True),
    Column("anomaly_id", String(64), nullable=True),
    Column("status", String(16), nullable=False),
    Column("kind", String(32), nullable=True),
    Column("metric", String(64), nullable=False),
    Column("place", Text, nullable=False, default="{}"),
    Column("message", Text, nullable=False),
    Column("observed", Float, nullable=True),
    Column("expected", Float, nullable=True),
    Column("lower", Float, nullable=True),
    Column("upper", Float, nullable=True),
    Column("score", Float, nullable=True),
    Column("condition", String(8), nullable=True),
    Column("threshold", Float, nullable=True),
    Column("opened_at", Float, nullable=False),
    Column("last_seen_at", Float, nullable=False),
    Column("acknowledged_at", Float, nullable=True),
    Column("acknowledged_by", String(200), nullable=True),
    Column("resolved_at", Float, nullable=True),
    Column("resolved_by", String(200), nullable=True),
    Column("resolution", Text, nullable=True),
    Column("feedback", String(16), nullable=True),
    Column("feedback_comment", Text, nullable=True),
    Column("feedback_at", Float, nullable=True),
    Column("feedback_by", String(200), nullable=True),
    Column("updated_at", Float, nullable=False),
    Index("ix_alerts_org_status", "org_id", "status"),
    Index("ix_alerts_org_fingerprint", "org_id", "fingerprint"),
    Index("ix_alerts_org_opened", "org_id", "opened_at"),
)

alert_notifications = Table(
    "alert_notifications",
    metadata,
    Column("notification_id", String(64), primary_key=True),
    Column("alert_id", String(64), nullable=False, index=True),
    Column("org_id", String(64), nullable=False),
    Column("event", String(32), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("recipient", String(500), nullable=False),
    Column("secret", String(200), nullable=True),
    Column("payload", Text, nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float, nullable=False),
    Column("lease_until", Float, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("sent_at", Float, nullable=True),
    Column("created_at", Float, nullable=False),
)

alert_sensitivity = Table(
    "alert_sensitivity",
    metadata,
    Column("org_id", String(64), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("sensitivity", Float, nullable=False),
    Column("true_positives", Integer, nullable=False, default=0),
    Column("false_positives", Integer, nullable=False, default=0),
    Column("updated_at", Float, nullable=False),
)


def _v1(conn: Connection) -> None:
    for table in (alert_rules, alerts, alert_notifications, alert_sensitivity):
        table.create(conn, checkfirst=True)


MIGRATIONS: tuple[Migration, ...] = (
    (1, "alert rules, alerts, notifications, per-kind sensitivity", _v1),
)
"""Versioned metadata migrations, applied in order; a released one is never edited."""
