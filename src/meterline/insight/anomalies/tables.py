"""The anomaly history's tables in the metadata database.

An anomaly is stored as an *episode*: consecutive unusual minutes of one kind, metric and
place merge into one row (first and last minute, peak score and the values at the peak),
so a spike that lasts ten minutes is one entry, not ten. Times are Unix seconds.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, String, Table, Text
from sqlalchemy.engine import Connection

from meterline.metadb import Migration, metadata

COMPONENT = "anomalies"

anomalies = Table(
    "anomalies",
    metadata,
    Column("anomaly_id", String(64), primary_key=True),
    Column("org_id", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("metric", String(64), nullable=False),
    Column("direction", String(16), nullable=False),
    Column("scope", String(500), nullable=False),
    Column("route", String(500), nullable=True),
    Column("consumer_id", String(200), nullable=True),
    Column("region", String(64), nullable=True),
    Column("started_at", Float, nullable=False),
    Column("last_seen_at", Float, nullable=False),
    Column("points", Integer, nullable=False),
    Column("observed", Float, nullable=False),
    Column("expected", Float, nullable=False),
    Column("lower", Float, nullable=False),
    Column("upper", Float, nullable=False),
    Column("score", Float, nullable=False),
    Column("sensitivity", Float, nullable=False),
    Column("message", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_anomalies_org_started", "org_id", "started_at"),
    Index("ix_anomalies_org_scope", "org_id", "kind", "metric", "scope"),
)

anomaly_watermarks = Table(
    "anomaly_watermarks",
    metadata,
    Column("org_id", String(64), primary_key=True),
    Column("evaluated_until", Float, nullable=True),
    Column("learned", Integer, nullable=False, default=0),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", Float, nullable=True),
)


def _v1(conn: Connection) -> None:
    for table in (anomalies, anomaly_watermarks):
        table.create(conn, checkfirst=True)


MIGRATIONS: tuple[Migration, ...] = ((1, "anomaly episodes and per-org watermarks", _v1),)
"""Versioned metadata migrations, applied in order; a released one is never edited."""
