"""The rate-limit component's table in the metadata database: persisted overrides."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, String, Table, Text
from sqlalchemy.engine import Connection

from meterline.metadb import Migration, metadata

COMPONENT = "ratelimit"

ORG_WIDE = ""
"""``consumer_id`` of an override that applies to a whole org."""

overrides = Table(
    "ratelimit_overrides",
    metadata,
    Column("org_id", String(64), primary_key=True),
    Column("consumer_id", String(200), primary_key=True),
    Column("fields", Text, nullable=False),  # JSON object of the overridden plan fields
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


def _v1(conn: Connection) -> None:
    overrides.create(conn, checkfirst=True)


MIGRATIONS: tuple[Migration, ...] = ((1, "rate-limit overrides per org and consumer", _v1),)
"""Versioned migrations, applied in order; a released one is never edited."""
