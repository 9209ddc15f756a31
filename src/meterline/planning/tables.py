"""The planning component's table in the metadata database: per-org planning settings.

Times are Unix seconds (floats) so SQLite and PostgreSQL compare them the same way.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, String, Table
from sqlalchemy.engine import Connection

from meterline.metadb import Migration, metadata

COMPONENT = "planning"

planning_settings = Table(
    "planning_settings",
    metadata,
    Column("org_id", String(64), primary_key=True),
    # the peak requests per minute the org's API is provisioned for
    Column("capacity_rpm", Float, nullable=True),
    # what serving a million requests costs (infrastructure), in US dollars
    Column("cost_per_million_requests", Float, nullable=True),
    Column("updated_at", Float, nullable=False),
)


def _v1(conn: Connection) -> None:
    planning_settings.create(conn, checkfirst=True)


MIGRATIONS: tuple[Migration, ...] = (
    (1, "planning settings per org: capacity and cost per million requests", _v1),
)
"""Versioned migrations, applied in order; a released one is never edited."""
