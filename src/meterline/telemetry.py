"""Meterline's own metrics (Prometheus exposition at ``/metrics``).

Each server instance owns a registry, so several apps in one process (tests) never
collide.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Telemetry:
    """The counters, gauges and histograms the server updates as it works."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.ingest_events = Counter(
            "meterline_ingest_events_total", "Events received, by outcome", ["outcome"], registry=r
        )
        self.ingest_requests = Histogram(
            "meterline_ingest_request_seconds",
            "Ingest request time to acknowledgement",
            buckets=_FAST,
            registry=r,
        )
        self.wal_commit = Histogram(
            "meterline_wal_commit_seconds",
            "Write-ahead log group commit time (write + fsync)",
            buckets=_FAST,
            registry=r,
        )
        self.store_insert = Histogram(
            "meterline_store_insert_seconds",
            "Store insert time per flushed batch",
            buckets=_FAST,
            registry=r,
        )
        self.store_insert_rows = Counter(
            "meterline_store_inserted_rows_total", "Rows inserted into the store", registry=r
        )
        self.store_insert_failures = Counter(
            "meterline_store_insert_failures_total", "Failed store inserts (retried)", registry=r
        )
        self.pending_rows = Gauge(
            "meterline_ingest_pending_rows", "Acknowledged rows not yet in the store", registry=r
        )
        self.flush_delay = Gauge(
            "meterline_ingest_flush_delay_seconds",
            "How long acknowledged rows now wait before a store insert (grows with store load)",
            registry=r,
        )
        self.query_seconds = Histogram(
            "meterline_query_seconds", "Store time per analytics query", buckets=_FAST, registry=r
        )
        self.http_requests = Counter(
            "meterline_http_requests_total",
            "HTTP requests by route and status",
            ["route", "status"],
            registry=r,
        )

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.registry)
