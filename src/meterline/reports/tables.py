"""The reports component's tables in the metadata database.

Times are Unix seconds (floats) so SQLite and PostgreSQL compare them the same way.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Float,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Connection

from meterline.metadb import Migration, metadata

COMPONENT = "reports"

report_templates = Table(
    "report_templates",
    metadata,
    Column("template_id", String(64), primary_key=True),
    Column("org_id", String(64), nullable=False, index=True),
    Column("name", String(100), nullable=False),
    Column("document", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

reports = Table(
    "reports",
    metadata,
    Column("report_id", String(64), primary_key=True),
    Column("org_id", String(64), nullable=False, index=True),
    Column("name", String(100), nullable=False),
    Column("template_id", String(64), nullable=False),
    Column("description", Text, nullable=True),
    Column("format", String(16), nullable=False),
    Column("request", Text, nullable=False),
    Column("source", String(16), nullable=False),
    Column("schedule_id", String(64), nullable=True),
    Column("status", String(16), nullable=False, index=True),
    Column("progress", Integer, nullable=False, default=0),
    Column("attempts", Integer, nullable=False, default=0),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", Float, nullable=True),
    Column("content_hash", String(64), nullable=True),
    Column("size_bytes", Integer, nullable=True),
    Column("page_count", Integer, nullable=True),
    Column("error_message", Text, nullable=True),
    Column("idempotency_key", String(200), nullable=True),
    Column("request_hash", String(64), nullable=True),
    Column("created_at", Float, nullable=False, index=True),
    Column("updated_at", Float, nullable=False),
    Column("completed_at", Float, nullable=True),
    Column("expires_at", Float, nullable=True),
    UniqueConstraint("org_id", "idempotency_key", name="uq_reports_idempotency"),
)

schedules = Table(
    "report_schedules",
    metadata,
    Column("schedule_id", String(64), primary_key=True),
    Column("org_id", String(64), nullable=False, index=True),
    Column("name", String(100), nullable=False),
    Column("cron", String(100), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("report", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("next_run_at", Float, nullable=True, index=True),
    Column("last_run_at", Float, nullable=True),
    Column("created_at", Float, nullable=False),
)

schedule_runs = Table(
    "report_schedule_runs",
    metadata,
    Column("schedule_id", String(64), primary_key=True),
    Column("due_at", Float, primary_key=True),
    Column("report_id", String(64), nullable=False),
    Column("claimed_by", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
)

deliveries = Table(
    "report_deliveries",
    metadata,
    Column("delivery_id", String(64), primary_key=True),
    Column("report_id", String(64), nullable=False, index=True),
    Column("org_id", String(64), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("recipient", String(500), nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float, nullable=True),
    Column("lease_until", Float, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("sent_at", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("report_id", "channel", "recipient", name="uq_delivery_recipient"),
)


# Reports per day were counted here until the rate limiter's quotas took over (v2 drops
# it); kept because the released v1 migration creates it.
quota_usage = Table(
    "report_quota_usage",
    metadata,
    Column("org_id", String(64), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("used", Integer, nullable=False),
)


def _v1(conn: Connection) -> None:
    for table in (report_templates, reports, schedules, schedule_runs, deliveries, quota_usage):
        table.create(conn, checkfirst=True)


def _v2(conn: Connection) -> None:
    quota_usage.drop(conn, checkfirst=True)


MIGRATIONS: tuple[Migration, ...] = (
    (1, "report templates, reports, schedules, runs, deliveries, quota usage", _v1),
    (2, "reports per day are counted by the rate limiter's quotas", _v2),
)
"""Versioned metadata migrations, applied in order; a released one is never edited."""
