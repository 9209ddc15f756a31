"""What an import into a data directory opens: the org, the store and an ingest path.

A server start (:meth:`meterline.api.services.Services.open`) also starts ingest worker
processes, report and alert runners and live windows, and migrates every component of
the metadata database, which imports the forecasting libraries: seconds of CPU before
the first line is read, and nothing an import uses. This opens only what it uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from meterline.auth import AuthService
from meterline.auth import tables as auth_tables
from meterline.config import Settings
from meterline.events import PriceTable, RouteNormaliser
from meterline.ingest import IngestService, IngestWriter
from meterline.logs.bulk import finish_interrupted
from meterline.metadb import engine_from_url, migrate, schema_versions
from meterline.plans import plan_limits
from meterline.store import Store, store_from_url


def _auth_current(engine: Engine) -> bool:
    """Whether the metadata database holds every migration of the auth tables."""
    try:
        with engine.connect() as conn:
            done = set(
                conn.execute(
                    select(schema_versions.c.version).where(
                        schema_versions.c.component == auth_tables.COMPONENT
                    )
                ).scalars()
            )
    except SQLAlchemyError:
        return False
    return all(version in done for version, _, _ in auth_tables.MIGRATIONS)


@dataclass
class ImportTarget:
    """One org's events in a data directory: the store the engine writes into, and an
    ingest service (without worker processes) for lines parsed in Python.

    Example:
        >>> target = ImportTarget.open(Settings.from_env(data_dir=Path("data")), "acme")
        >>> target.org_id, target.retention_days  # doctest: +SKIP
        ('org_…', 30)
        >>> target.close()  # doctest: +SKIP
    """

    store: Store
    writer: IngestWriter
    ingest: IngestService
    metadata: Engine
    org_id: str
    retention_days: int

    @classmethod
    def open(cls, settings: Settings, org: str) -> ImportTarget:
        """Find ``org`` (id or name; raises ``NOT_FOUND``), open and migrate the store,
        complete a bulk load an interrupted import left (before anything looks for what
        is stored), replay the ingest log as a server start does. The metadata database
        is migrated only when its auth tables are behind, the only ones an import reads."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        metadata = engine_from_url(settings.resolved_metadata_url)
        try:
            if not _auth_current(metadata):
                migrate(metadata)
            found: dict[str, Any] = AuthService(metadata).find_org(org)
        except BaseException:
            metadata.dispose()
            raise
        store = store_from_url(settings.resolved_store_url)
        try:
            store.migrate()
            finish_interrupted(store)
            writer = IngestWriter.from_settings(store, settings)
            writer.start()
        except BaseException:
            store.close()
            metadata.dispose()
            raise
        normaliser = RouteNormaliser.from_file(
            settings.data_dir / "route-rules.json", extra=settings.route_rules
        )
        ingest = IngestService(
            writer,
            normaliser=normaliser,
            prices=PriceTable.from_file(settings.data_dir / "prices.json"),
            max_bytes=settings.max_body_bytes,
            max_events=settings.max_batch_events,
        )
        return cls(
            store=store,
            writer=writer,
            ingest=ingest,
            metadata=metadata,
            org_id=str(found["org_id"]),
            retention_days=plan_limits(str(found["plan"])).retention_days,
        )

    def close(self) -> None:
        """Flush what the ingest path accepted into the store and close everything."""
        try:
            self.writer.stop()
        finally:
            self.store.close()
            self.metadata.dispose()


__all__ = ["ImportTarget"]
