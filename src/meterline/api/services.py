"""The composition root: opens the store and metadata database and wires the services."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from meterline.alerts import AlertRunner, AlertsConfig, AlertService
from meterline.auth import AuthService
from meterline.clock import Clock, system_clock
from meterline.config import Settings
from meterline.events import PriceTable, RouteNormaliser
from meterline.ingest import IngestService, IngestWriter, PreparePool
from meterline.logs.bulk import finish_interrupted
from meterline.metadb import engine_from_url, migrate
from meterline.planning import PlanningService
from meterline.query import QueryService
from meterline.ratelimit.service import RateLimitService
from meterline.realtime import LiveWindows, StreamHub, TicketBook, seed_windows
from meterline.realtime.relay import Relay
from meterline.reports import (
    ArtifactStore,
    LimiterReportQuota,
    ReportRunner,
    ReportsConfig,
    ReportService,
)
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
    ratelimits: RateLimitService
    hub: StreamHub
    tickets: TicketBook
    reports: ReportService
    report_runner: ReportRunner
    planning: PlanningService
    alerts: AlertService
    alert_runner: AlertRunner

    @classmethod
    def open(cls, settings: Settings, clock: Clock = system_clock) -> Services:
        """Open and migrate both databases, replay the ingest log, start the writer;
        returns once the ingest workers are ready too."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        normaliser = RouteNormaliser.from_file(
            settings.data_dir / "route-rules.json", extra=settings.route_rules
        )
        prices = PriceTable.from_file(settings.data_dir / "prices.json")
        # Started first, so the workers start and warm up while the databases open.
        pool = (
            PreparePool(settings.ingest_workers, normaliser, prices)
            if settings.ingest_workers > 0
            else None
        )
        try:
            return cls._open(settings, clock, normaliser, prices, pool)
        except BaseException:
            if pool is not None:
                pool.close()
            raise

    @classmethod
    def _open(
        cls,
        settings: Settings,
        clock: Clock,
        normaliser: RouteNormaliser,
        prices: PriceTable,
        pool: PreparePool | None,
    ) -> Services:
        telemetry = Telemetry()
        engine = engine_from_url(settings.resolved_metadata_url)
        migrate(engine)
        store = store_from_url(settings.resolved_store_url)
        store.migrate()
        # A log import killed while moving its bulk load in left it half visible.
        finish_interrupted(store)
        writer = IngestWriter.from_settings(store, settings, telemetry)
        writer.start()
        windows = LiveWindows()
        # Seeded before ingest opens, then fed by every durable batch.
        seed_windows(windows, store, clock())
        writer.listeners.append(windows.add_batch)
        ingest = IngestService(
            writer,
            normaliser=normaliser,
            prices=prices,
            pool=pool,
            clock=clock,
            max_bytes=settings.max_body_bytes,
            max_events=settings.max_batch_events,
            telemetry=telemetry,
        )
        queries = QueryService(store, clock, observe=telemetry.query_seconds.observe)
        auth = AuthService(engine, clock)
        _ = auth.signer  # create the signing key at start-up, not on the first request
        ratelimits = RateLimitService(
            engine,
            settings.ratelimit_url,
            config=settings.ratelimit_config,
            clock=clock,
            adaptive_latency_ms=settings.ratelimit_adaptive_latency_ms,
            registry=telemetry.registry,
        )
        epoch = secrets.token_hex(6)
        relay = None
        if settings.stream_redis_url:
            relay = Relay(
                settings.stream_redis_url,
                windows,
                epoch,
                clock,
                registry=telemetry.registry,
                # An embedded store seeded only this node's past; a shared one, everyone's.
                history=settings.resolved_store_url.startswith("chdb://"),
            )
            writer.listeners.append(relay.add_batch)
        hub = StreamHub(
            windows,
            queries,
            clock,
            registry=telemetry.registry,
            epoch=epoch,
            relay=relay,
            revoked=auth.client_revoked,
            max_connections=settings.stream_max_connections,
        )
        reports = ReportService(
            engine,
            ArtifactStore(settings.data_dir / "reports"),
            clock,
            base_url=settings.public_url or f"http://{settings.host}:{settings.port}",
            config=ReportsConfig.from_env(),
            quota=LimiterReportQuota(ratelimits.quotas),
        )
        report_runner = ReportRunner(reports, queries)
        report_runner.start()
        alerts_config = AlertsConfig.from_env()
        alerts = AlertService(engine, clock, alerts_config)
        alert_runner = AlertRunner(alerts, queries)
        hub.alert_listeners.append(alert_runner.stream_alert)
        if alerts_config.enabled:
            alert_runner.start()
        if pool is not None and not pool.wait_ready():
            log.warning("ingest workers are still starting; the first requests may be slow")
        return cls(
            settings,
            store,
            auth,
            writer,
            ingest,
            queries,
            telemetry,
            ratelimits,
            hub,
            TicketBook(clock),
            reports=reports,
            report_runner=report_runner,
            planning=PlanningService(engine, queries, clock),
            alerts=alerts,
            alert_runner=alert_runner,
        )

    def close(self) -> None:
        """Flush acknowledged events into the store and close everything."""
        self.report_runner.stop()
        self.alert_runner.stop()
        if self.ingest.pool is not None:
            self.ingest.pool.close()
        self.writer.stop()
        self.store.close()
        self.auth.engine.dispose()
