"""The auth component's tables in the metadata database: orgs, clients, ingest keys."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, ForeignKey, String, Table, Text
from sqlalchemy.engine import Connection

from meterline.metadb import Migration, metadata

COMPONENT = "auth"

orgs = Table(
    "orgs",
    metadata,
    Column("org_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("plan", String(32), nullable=False),
    Column("operator", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

clients = Table(
    "clients",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("org_id", String(64), ForeignKey("orgs.org_id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("secret_hash", String(128), nullable=False),
    Column("scopes", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

ingest_keys = Table(
    "ingest_keys",
    metadata,
    Column("key_id", String(64), primary_key=True),
    Column("org_id", String(64), ForeignKey("orgs.org_id"), nullable=False, index=True),
    Column("key_hash", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

server_secrets = Table(
    "server_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)


def _v1(conn: Connection) -> None:
    for table in (orgs, clients, ingest_keys, server_secrets):
        table.create(conn, checkfirst=True)


MIGRATIONS: tuple[Migration, ...] = ((1, "orgs, clients, ingest keys, server secrets", _v1),)
"""Versioned metadata migrations, applied in order; a released one is never edited."""
