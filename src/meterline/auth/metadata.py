"""The metadata database: orgs, API clients, ingest keys (and later reports, alert rules).

SQLite in the data directory by default, PostgreSQL by URL, through SQLAlchemy Core.
Schema changes are versioned migrations applied at start-up; several processes (the
server and the admin CLI) may use the same database at once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    select,
)
from sqlalchemy.engine import Connection

metadata = MetaData()

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

schema_versions = Table(
    "schema_versions",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("description", String(200), nullable=False),
)


def _v1(conn: Connection) -> None:
    for table in (orgs, clients, ingest_keys, server_secrets):
        table.create(conn, checkfirst=True)


MIGRATIONS: tuple[tuple[int, str, Callable[[Connection], None]], ...] = (
    (1, "orgs, clients, ingest keys, server secrets", _v1),
)
"""Versioned metadata migrations, applied in order; a released one is never edited."""


def engine_from_url(url: str) -> Engine:
    """Create an engine for ``url``; SQLite gets WAL mode and a busy timeout so the
    server and the CLI can share the file."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True)


def migrate(engine: Engine) -> list[int]:
    """Apply pending metadata migrations; returns the versions applied."""
    applied = []
    with engine.begin() as conn:
        schema_versions.create(conn, checkfirst=True)
        done = set(conn.execute(select(schema_versions.c.version)).scalars())
        for version, description, apply in MIGRATIONS:
            if version in done:
                continue
            apply(conn)
            conn.execute(schema_versions.insert().values(version=version, description=description))
            applied.append(version)
    return applied
