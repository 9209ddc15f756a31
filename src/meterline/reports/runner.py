"""The report worker loop: fire schedules, render claimed jobs, deliver, sweep.

Every server process runs one :class:`ReportRunner` thread; they coordinate only
through the metadata database (leases and unique claims), so any number may run.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from typing import Any

from sqlalchemy import select

from meterline.errors import MeterlineError, StoreError
from meterline.query import QueryService
from meterline.reports.delivery import DeliveryQueue, Parcel, plan_deliveries
from meterline.reports.document import build_document
from meterline.reports.jobs import JobQueue
from meterline.reports.renderers import MEDIA_TYPES
from meterline.reports.scheduler import Scheduler
from meterline.reports.service import ReportService
from meterline.reports.spec import spec_from_json
from meterline.reports.tables import reports
from meterline.reports.views import at, download_url, status_of
from meterline.reports.worker import RenderError, RenderLimits, render_in_subprocess

log = logging.getLogger(__name__)


class ReportRunner:
    """Processes report work for one server process.

    ``run_once`` does one round and is what tests drive; ``start`` runs rounds on a
    daemon thread until ``stop``.
    """

    def __init__(self, service: ReportService, queries: QueryService) -> None:
        self.service = service
        self.queries = queries
        self.owner = "w_" + secrets.token_hex(6)
        config = service.config
        self.jobs = JobQueue(
            service.engine,
            service.clock,
            lease_seconds=config.lease_seconds,
            max_attempts=config.max_attempts,
        )
        self.scheduler = Scheduler(service.engine, service.clock, self.owner)
        self.deliveries = DeliveryQueue(service.engine, service.clock, config)
        self.limits = RenderLimits(config.render_timeout, config.render_memory_mb)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_sweep = 0.0

    def start(self) -> None:
        """Run rounds on a background thread."""
        self._thread = threading.Thread(target=self._loop, name="meterline-reports", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current round."""
        self._stop.set()
        if self._thread is not None:
            # a render in progress is abandoned; its lease lets another process redo it
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.run_once()
            except Exception:
                log.exception("report round failed")
                busy = False
            if not busy:
                self._stop.wait(self.service.config.poll_interval)

    def run_once(self) -> bool:
        """Fire due schedules, render one job, attempt due deliveries; True if it did work."""
        fired = self.scheduler.tick()
        rendered = self.render_next()
        delivered = self.deliveries.process(self.parcel)
        if self.service.clock() - self._last_sweep > 600:
            self._last_sweep = self.service.clock()
            self.service.sweep()
        return bool(fired or rendered or delivered)

    def render_next(self) -> bool:
        """Claim and render one job; False when there was none."""
        claim = self.jobs.claim(self.owner)
        if claim is None:
            return False
        row = claim.row
        report_id = claim.report_id
        try:
            spec = spec_from_json(json.loads(row["request"]))
            template = self.service.template(claim.org_id, spec.template_id)
            if template is None:
                self.jobs.fail(report_id, self.owner, "the template was deleted")
                return True
            document = build_document(
                self.queries,
                claim.org_id,
                template,
                spec,
                generated_at=self.service.now(),
                progress=lambda p: self.jobs.progress(report_id, self.owner, p),
            )
            ext = MEDIA_TYPES[spec.format][1]
            scratch = self.service.artifacts.scratch(f"{report_id}-{self.owner}.{ext}")
            pages = render_in_subprocess(document, spec.format, scratch, self.limits)
            self.jobs.progress(report_id, self.owner, 90)
            size = scratch.stat().st_size
            content_hash = self.service.artifacts.adopt(scratch)
            now = self.service.clock()
            done = self.jobs.complete(
                report_id,
                self.owner,
                content_hash=content_hash,
                size=size,
                pages=pages,
                expires_at=self.service.expiry_for(now),
            )
            if done:
                plan_deliveries(self.service.engine, row, spec.delivery, now)
        except StoreError as exc:
            log.warning("report %s: store unavailable, retrying: %s", report_id, exc.message)
            self.jobs.release(report_id, self.owner, retry_in=30)
        except RenderError as exc:
            self.jobs.fail(report_id, self.owner, exc.message)
        except MeterlineError as exc:
            self.jobs.fail(report_id, self.owner, exc.message)
        except Exception:
            log.exception("report %s failed", report_id)
            self.jobs.fail(report_id, self.owner, "an internal error stopped this report")
        return True

    def parcel(self, report_id: str) -> Parcel | None:
        """What a delivery of ``report_id`` sends, or None if the file is gone."""
        with self.service.engine.connect() as conn:
            row: Any = conn.execute(
                select(reports).where(reports.c.report_id == report_id)
            ).one_or_none()
        now = self.service.clock()
        if row is None or status_of(row, now) != "completed" or row.content_hash is None:
            return None
        path = self.service.artifacts.path(row.content_hash)
        if not path.exists():
            return None
        spec = spec_from_json(json.loads(row.request))
        link = download_url(row, self.service.base_url, self.service.signer, now) or ""
        media_type, ext = MEDIA_TYPES[row.format]
        period = f"{spec.filters_applied()['date_range']['start'][:10]} to " + (
            f"{spec.filters_applied()['date_range']['end'][:10]}"
        )
        return Parcel(
            report={
                "report_id": row.report_id,
                "name": row.name,
                "template_id": row.template_id,
                "format": row.format,
                "period": period,
                "size_bytes": row.size_bytes,
                "page_count": row.page_count,
            },
            file=path,
            filename=f"{row.report_id}.{ext}",
            media_type=media_type,
            download_url=link,
            expires_at=at(row.expires_at) or "",
            webhook_secret=spec.delivery.secret,
        )
