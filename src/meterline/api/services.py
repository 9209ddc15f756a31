"""The composition root: opens the store and metadata database and wires the services."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from meterline.auth import AuthService
from meterline.clock import Clock, system_clock
from meterline.config import Settings
from meterline.events import PriceTable, RouteNormaliser
from meterline.ingest import IngestService, IngestWriter
from meterline.metadb import engine_from_url, migrate
from meterline.query import QueryService
from meterline.reports import ArtifactStore, ReportRunner, ReportsConfig, ReportService
from meterline.store import Store, store_from_url
from meterline.telemetry import Telemetry

log = logging.getLogger(__name__)


@dataclass
class Services:
    """Everything a request handler may call, built once per server."""

    settings: Settings
    store: Store
    auth: AuthService
    writer: IngestWriter
    ingest: IngestService
    queries: QueryService
    telemetry: Telemetry
    reports: ReportService
    report_runner: ReportRunner

    @classmethod
    def open(cls, settings: Settings, clock: Clock = system_clock) -> Services:
        """Open and migrate both databases, replay the ingest log, start the writer."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        telemetry = Telemetry()
        engine = engine_from_url(settings.resolved_metadata_url)
        migrate(engine)
        store = store_from_url(settings.resolved_store_url)
        store.migrate()
        writer = IngestWriter(
            store,
            settings.data_dir / "wal",
            flush_rows=settings.flush_rows,
            flush_interval=settings.flush_interval,
            fsync=settings.fsync,
            dedup_capacity=settings.dedup_capacity,
            telemetry=telemetry,
        )
        writer.start()
        normaliser = RouteNormaliser(settings.route_rules)
        ingest = IngestService(
            writer,
            normaliser=normaliser,
            prices=PriceTable.from_file(settings.data_dir / "prices.json"),
            clock=clock,
            max_bytes=settings.max_body_bytes,
            max_events=settings.max_batch_events,
            telemetry=telemetry,
        )
        queries = QueryService(store, clock, observe=telemetry.query_seconds.observe)
        auth = AuthService(engine, clock)
        _ = auth.signer  # create the signing key at start-up, not on the first request
        reports = ReportService(
            engine,
            ArtifactStore(settings.data_dir / "reports"),
            clock,
            base_url=settings.public_url or f"http://{settings.host}:{settings.port}",
            config=ReportsConfig.from_env(),
        )
        report_runner = ReportRunner(reports, queries)
        report_runner.start()
        return cls(
            settings,
            store,
            auth,
            writer,
            ingest,
            queries,
            telemetry,
            reports=reports,
            report_runner=report_runner,
        )

    def close(self) -> None:
        """Flush acknowledged events into the store and close everything."""
        self.report_runner.stop()
        self.writer.stop()
        self.store.close()
        self.auth.engine.dispose()
