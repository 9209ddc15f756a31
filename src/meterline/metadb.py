"""The metadata database shared by every capability (orgs, clients, keys, reports, …).

SQLite in the data directory by default, PostgreSQL by URL, through SQLAlchemy Core.
Each capability owns its tables and a versioned migration list (its *component*); the
migrations of every component named in :data:`COMPONENT_MODULES` are applied at start-up
in version order. Several processes (the server and the admin CLI) may share the database.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Engine,
    Integer,
    MetaData,
    Row,
    String,
    Table,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.engine import Connection

metadata = MetaData()
"""The one SQLAlchemy ``MetaData`` every component's tables belong to."""

Migration = tuple[int, str, Callable[[Connection], None]]
"""``(version, description, apply)``; a released migration is never edited."""

COMPONENT_MODULES: tuple[str, ...] = (
    "meterline.auth.tables",
    "meterline.ratelimit.tables",
    "meterline.reports.tables",
    "meterline.planning.tables",
    "meterline.insight.anomalies.tables",
    "meterline.alerts.tables",
)
"""Modules that each define ``COMPONENT: str`` and ``MIGRATIONS: tuple[Migration, ...]``."""

schema_versions = Table(
    "schema_versions",
    metadata,
    Column("component", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("description", String(200), nullable=False),
)


def engine_from_url(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL mode and a busy timeout so the server and
    the CLI can share the file."""
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


def migrate(engine: Engine) -> list[tuple[str, int]]:
    """Apply every component's pending migrations; returns ``(component, version)`` applied."""
    applied = []
    with engine.begin() as conn:
        schema_versions.create(conn, checkfirst=True)
        done = {
            (c, v)
            for c, v in conn.execute(select(schema_versions.c.component, schema_versions.c.version))
        }
        for module_name in COMPONENT_MODULES:
            module = importlib.import_module(module_name)
            component: str = module.COMPONENT
            migrations: tuple[Migration, ...] = module.MIGRATIONS
            for version, description, apply in migrations:
                if (component, version) in done:
                    continue
                apply(conn)
                conn.execute(
                    schema_versions.insert().values(
                        component=component, version=version, description=description
                    )
                )
                applied.append((component, version))
    return applied


def paging_problems(page: int, limit: int) -> list[dict[str, str]]:
    """Validation errors for a ``page`` (1–10,000) and ``limit`` (1–500) of a listing."""
    problems = []
    if not 1 <= page <= 10_000:
        problems.append({"field": "page", "message": "must be 1 to 10000"})
    if not 1 <= limit <= 500:
        problems.append({"field": "limit", "message": "must be 1 to 500"})
    return problems


def fetch_page(
    engine: Engine,
    table: Table,
    condition: ColumnElement[bool],
    order_by: Sequence[ColumnElement[Any]],
    page: int,
    limit: int,
) -> tuple[list[Row[Any]], dict[str, int]]:
    """One page of ``table``'s rows matching ``condition``, and the seeds' pagination object."""
    with engine.connect() as conn:
        total = int(
            conn.execute(select(func.count()).select_from(table).where(condition)).scalar_one()
        )
        rows = conn.execute(
            select(table)
            .where(condition)
            .order_by(*order_by)
            .limit(limit)
            .offset((page - 1) * limit)
        ).all()
    pagination = {
        "page": page,
        "limit": limit,
        "total_pages": math.ceil(total / limit),
        "total_count": total,
    }
    return list(rows), pagination
