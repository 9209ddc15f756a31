"""The reports capability as the API uses it: templates, generation, listing, downloads
and schedules. Rendering itself happens in :mod:`meterline.reports.runner`."""

from __future__ import annotations

import hashlib
import json
import math
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from meterline.clock import Clock
from meterline.errors import ConflictError, NotFoundError, ValidationError
from meterline.query import parse_instant
from meterline.ratelimit import RateLimiter
from meterline.reports.artifacts import ArtifactStore
from meterline.reports.config import ReportsConfig
from meterline.reports.cron import CronSchedule, cron_for
from meterline.reports.links import LinkSigner, link_key
from meterline.reports.quota import LimiterReportQuota, QuotaExceededError, ReportQuota
from meterline.reports.renderers import MEDIA_TYPES
from meterline.reports.scheduler import new_report_id, report_row
from meterline.reports.spec import parse_spec
from meterline.reports.tables import deliveries, report_templates, reports, schedules
from meterline.reports.templates import BUILTIN_TEMPLATES, Template, validate_template
from meterline.reports.views import at, detail, schedule_view, status_of, summary

STATUSES = ("processing", "completed", "failed", "expired")
MAX_BATCH = 100


def report_not_found(report_id: str) -> NotFoundError:
    """The one answer for a report that does not exist or belongs to another org."""
    return NotFoundError(
        f"report {report_id!r} was not found",
        code="REPORT_NOT_FOUND",
        details="It does not exist or is not accessible with this token.",
    )


@dataclass(frozen=True, slots=True)
class Download:
    """A report file ready to send."""

    path: Path
    filename: str
    media_type: str


class ReportService:
    """Reports for orgs; every method is scoped by ``org_id``.

    Example:
        >>> created, replayed = service.generate("org_1", "basic", body, None)  # doctest: +SKIP
    """

    def __init__(
        self,
        engine: Engine,
        artifacts: ArtifactStore,
        clock: Clock,
        *,
        base_url: str,
        config: ReportsConfig,
        quota: ReportQuota | None = None,
    ) -> None:
        self.engine = engine
        self.artifacts = artifacts
        self.clock = clock
        self.base_url = base_url.rstrip("/")
        self.config = config
        # without a shared one, the rate limiter's quota counted in this process
        self.quota: ReportQuota = quota or LimiterReportQuota(RateLimiter(clock=clock))
        self.signer = LinkSigner(link_key(engine))

    def now(self) -> datetime:
        """The service clock as an aware UTC datetime."""
        return datetime.fromtimestamp(self.clock(), tz=UTC)

    # templates -------------------------------------------------------------------------

    def template(self, org_id: str, template_id: str) -> Template | None:
        """A built-in or the org's own template, or ``None``."""
        if template_id in BUILTIN_TEMPLATES:
            return BUILTIN_TEMPLATES[template_id]
        with self.engine.connect() as conn:
            row = conn.execute(
                select(report_templates).where(
                    report_templates.c.template_id == template_id,
                    report_templates.c.org_id == org_id,
                )
            ).one_or_none()
        if row is None:
            return None
        return validate_template(json.loads(row.document), template_id=template_id)

    def list_templates(self, org_id: str) -> list[dict[str, Any]]:
        """Built-in templates, then the org's own."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(report_templates)
                .where(report_templates.c.org_id == org_id)
                .order_by(report_templates.c.created_at)
            ).all()
        own = [
            validate_template(json.loads(r.document), template_id=r.template_id).as_json()
            for r in rows
        ]
        return [t.as_json() for t in BUILTIN_TEMPLATES.values()] + own

    def save_template(self, org_id: str, body: Any) -> dict[str, Any]:
        """Validate and store a user-defined template; returns it with its new id."""
        template_id = "tpl_" + secrets.token_hex(6)
        template = validate_template(body, template_id=template_id)
        document = {k: v for k, v in template.as_json().items() if k not in ("template_id",)}
        now = self.clock()
        with self.engine.begin() as conn:
            conn.execute(
                report_templates.insert().values(
                    template_id=template_id,
                    org_id=org_id,
                    name=template.name,
                    document=json.dumps(document),
                    created_at=now,
                    updated_at=now,
                )
            )
        return template.as_json()

    def delete_template(self, org_id: str, template_id: str) -> None:
        """Delete one of the org's templates (built-ins cannot be deleted)."""
        with self.engine.begin() as conn:
            gone = conn.execute(
                delete(report_templates).where(
                    report_templates.c.template_id == template_id,
                    report_templates.c.org_id == org_id,
                )
            )
        if gone.rowcount != 1:
            raise NotFoundError(
                f"template {template_id!r} was not found", code="TEMPLATE_NOT_FOUND"
            )

    # reports ---------------------------------------------------------------------------

    def _accepted(self, row: Any) -> dict[str, Any]:
        with self.engine.connect() as conn:
            ahead = conn.execute(
                select(func.count())
                .select_from(reports)
                .where(reports.c.status == "processing", reports.c.created_at < row.created_at)
            ).scalar_one()
        return {
            "report_id": row.report_id,
            "name": row.name,
            "status": "processing",
            "estimated_completion": at(row.created_at + 5 * (int(ahead) + 1)),
            "progress_url": f"{self.base_url}/v2/reports/{row.report_id}",
            "created_at": at(row.created_at),
        }

    def _by_key(self, org_id: str, key: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(
                select(reports).where(reports.c.org_id == org_id, reports.c.idempotency_key == key)
            ).one_or_none()

    def generate(
        self, org_id: str, plan: str, body: Any, idempotency_key: str | None
    ) -> tuple[dict[str, Any], bool]:
        """Accept a report request; returns the seed's creation body and whether it is an
        idempotent replay (which does not count against the plan's daily reports)."""
        request_hash = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        if idempotency_key is not None:
            if not 1 <= len(idempotency_key) <= 200:
                raise ValidationError(
                    "the Idempotency-Key header must be 1 to 200 characters",
                    validation_errors=[{"field": "Idempotency-Key", "message": "1-200 chars"}],
                )
            found = self._by_key(org_id, idempotency_key)
            if found is not None:
                return self._replay(found, request_hash), True
        if not isinstance(body, dict):
            raise ValidationError("the body must be a JSON object")
        template_id = body.get("template_id")
        known = isinstance(template_id, str) and self.template(org_id, template_id) is not None
        spec = parse_spec(body, now=self.now(), known_template=known)
        now = self.clock()
        row = report_row(
            report_id=new_report_id(),
            org_id=org_id,
            spec=spec,
            source="api",
            now=now,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
        )
        try:
            with self.engine.begin() as conn:
                # Insert first, count second, in one transaction: a request that loses a
                # race for its Idempotency-Key fails on the insert and is answered as a
                # replay without being counted; a refused one leaves no row behind.
                conn.execute(reports.insert().values(row))
                decision = self.quota.acquire(org_id, plan)
                if not decision.allowed:
                    raise QuotaExceededError(
                        f"the {plan} plan allows {decision.limit} reports per day",
                        decision=decision,
                        details=f"The allowance resets at {at(decision.reset_at)}.",
                    )
        except IntegrityError:
            # the same key won a race in another request; answer with its report
            found = self._by_key(org_id, idempotency_key or "")
            if found is None:
                raise
            return self._replay(found, request_hash), True
        return self._accepted(self._row(org_id, row["report_id"])), False

    def _replay(self, row: Any, request_hash: str) -> dict[str, Any]:
        if row.request_hash != request_hash:
            raise ConflictError(
                "this Idempotency-Key was used with a different request",
                code="IDEMPOTENCY_KEY_REUSED",
                details="Use a new key for a new report.",
            )
        return self._accepted(row)

    def _row(self, org_id: str, report_id: str) -> Any:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(reports).where(reports.c.report_id == report_id, reports.c.org_id == org_id)
            ).one_or_none()
        if row is None:
            raise report_not_found(report_id)
        return row

    def _deliveries(self, report_ids: list[str]) -> dict[str, list[Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(deliveries)
                .where(deliveries.c.report_id.in_(report_ids))
                .order_by(deliveries.c.created_at, deliveries.c.recipient)
            ).all()
        found: dict[str, list[Any]] = {}
        for row in rows:
            found.setdefault(row.report_id, []).append(row)
        return found

    def get(self, org_id: str, report_id: str) -> dict[str, Any]:
        """One report with status, progress, file info, deliveries and its signed link."""
        row = self._row(org_id, report_id)
        sent = self._deliveries([report_id]).get(report_id, [])
        return detail(row, sent, self.base_url, self.signer, self.clock())

    def batch(self, org_id: str, report_ids: Any) -> dict[str, Any]:
        """Several reports at once; ids that are unknown (or another org's) are listed."""
        if (
            not isinstance(report_ids, list)
            or not 1 <= len(report_ids) <= MAX_BATCH
            or not all(isinstance(i, str) for i in report_ids)
        ):
            raise ValidationError(
                f"'report_ids' must be a list of 1 to {MAX_BATCH} report ids",
                validation_errors=[{"field": "report_ids", "message": "1-100 strings"}],
            )
        with self.engine.connect() as conn:
            rows = {
                r.report_id: r
                for r in conn.execute(
                    select(reports).where(
                        reports.c.org_id == org_id, reports.c.report_id.in_(report_ids)
                    )
                )
            }
        sent = self._deliveries(list(rows))
        now = self.clock()
        return {
            "reports": [
                detail(rows[i], sent.get(i, []), self.base_url, self.signer, now)
                for i in dict.fromkeys(report_ids)
                if i in rows
            ],
            "not_found": [i for i in dict.fromkeys(report_ids) if i not in rows],
        }

    def list(
        self,
        org_id: str,
        *,
        page: int = 1,
        limit: int = 25,
        status: str | None = None,
        template_id: str | None = None,
        created_after: str | None = None,
    ) -> dict[str, Any]:
        """A page of the org's reports, newest first, with the seed's pagination object."""
        problems = []
        if not 1 <= page <= 1000:
            problems.append({"field": "page", "message": "must be 1 to 1000"})
        if not 1 <= limit <= 100:
            problems.append({"field": "limit", "message": "must be 1 to 100"})
        if status is not None and status not in STATUSES:
            problems.append({"field": "status", "message": f"one of {', '.join(STATUSES)}"})
        if problems:
            raise ValidationError("invalid list parameters", validation_errors=problems)
        now = self.clock()
        where = [reports.c.org_id == org_id]
        if status == "expired":
            where += [reports.c.status == "completed", reports.c.expires_at <= now]
        elif status == "completed":
            where += [reports.c.status == "completed", reports.c.expires_at > now]
        elif status is not None:
            where.append(reports.c.status == status)
        if template_id is not None:
            where.append(reports.c.template_id == template_id)
        if created_after is not None:
            moment = parse_instant(created_after, "created_after")
            where.append(reports.c.created_at > moment.timestamp())
        condition = and_(*where)
        with self.engine.connect() as conn:
            total = conn.execute(
                select(func.count()).select_from(reports).where(condition)
            ).scalar_one()
            rows = conn.execute(
                select(reports)
                .where(condition)
                .order_by(reports.c.created_at.desc(), reports.c.report_id)
                .limit(limit)
                .offset((page - 1) * limit)
            ).all()
        return {
            "reports": [summary(r, self.base_url, self.signer, now) for r in rows],
            "pagination": {
                "page": page,
                "limit": limit,
                "total_pages": math.ceil(int(total) / limit),
                "total_count": int(total),
            },
        }

    def _download(self, row: Any) -> Download:
        status = status_of(row, self.clock())
        if status == "expired":
            raise ConflictError(
                f"report {row.report_id!r} has expired",
                code="REPORT_EXPIRED",
                status=410,
                details="Generate it again to get a fresh file.",
            )
        if status != "completed" or row.content_hash is None:
            raise ConflictError(
                f"report {row.report_id!r} is {status}, not ready to download",
                code="REPORT_NOT_READY",
                details="Poll GET /v2/reports/{id} until status is completed.",
            )
        path = self.artifacts.path(row.content_hash)
        if not path.exists():
            raise ConflictError(
                f"report {row.report_id!r} has expired", code="REPORT_EXPIRED", status=410
            )
        media_type, ext = MEDIA_TYPES[row.format]
        safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in row.name).strip("-")
        return Download(path, f"{safe or row.report_id}.{ext}", media_type)

    def download(self, org_id: str, report_id: str) -> Download:
        """The file of a completed report of the caller's org (410 once expired)."""
        return self._download(self._row(org_id, report_id))

    def download_signed(self, report_id: str, expires: int, signature: str) -> Download:
        """The file behind a signed link; an expired or forged link is 410/404."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(reports).where(reports.c.report_id == report_id)
            ).one_or_none()
        if row is None or not secrets.compare_digest(
            self.signer.sign(report_id, expires), signature
        ):
            raise report_not_found(report_id)
        if self.clock() >= expires:
            raise ConflictError("this download link has expired", code="REPORT_EXPIRED", status=410)
        return self._download(row)

    # schedules -------------------------------------------------------------------------

    def create_schedule(self, org_id: str, body: Any) -> dict[str, Any]:
        """A schedule from ``{name, cron | frequency+time(+day_of_week|day_of_month),
        timezone, report: {generate body}}``."""
        if not isinstance(body, dict):
            raise ValidationError("the body must be a JSON object")
        cron_text = body.get("cron")
        if cron_text is None:
            cron_text = cron_for(
                str(body.get("frequency", "")),
                str(body.get("time", "09:00")),
                body.get("day_of_week"),
                body.get("day_of_month"),
            )
        if not isinstance(cron_text, str):
            raise ValidationError("'cron' must be a string", validation_errors=[
                {"field": "cron", "message": "must be a string"}])  # fmt: skip
        timezone = body.get("timezone", "UTC")
        cron = CronSchedule.parse(cron_text, str(timezone))
        report = body.get("report")
        if not isinstance(report, dict):
            raise ValidationError(
                "'report' must be the report to make: {name, template_id, format, ...}",
                validation_errors=[{"field": "report", "message": "must be an object"}],
            )
        report = {**report, "name": report.get("name") or body.get("name")}
        if isinstance(report.get("filters"), dict) and "date_range" in report["filters"]:
            raise ValidationError(
                "a scheduled report covers a period relative to each run; use filters.range",
                validation_errors=[{"field": "report.filters.date_range", "message": "use range"}],
            )
        template_id = report.get("template_id")
        known = isinstance(template_id, str) and self.template(org_id, template_id) is not None
        parse_spec(report, now=self.now(), known_template=known)
        name = str(report["name"])
        now = self.clock()
        following = cron.next_after(self.now())
        schedule_id = "sch_" + secrets.token_hex(8)
        with self.engine.begin() as conn:
            conn.execute(
                schedules.insert().values(
                    schedule_id=schedule_id,
                    org_id=org_id,
                    name=name,
                    cron=cron_text,
                    timezone=str(timezone),
                    report=json.dumps(report),
                    status="active",
                    next_run_at=following.timestamp() if following else None,
                    created_at=now,
                )
            )
        return self.get_schedule(org_id, schedule_id)

    def _schedule(self, org_id: str, schedule_id: str) -> Any:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(schedules).where(
                    schedules.c.schedule_id == schedule_id, schedules.c.org_id == org_id
                )
            ).one_or_none()
        if row is None:
            raise NotFoundError(
                f"schedule {schedule_id!r} was not found", code="SCHEDULE_NOT_FOUND"
            )
        return row

    def get_schedule(self, org_id: str, schedule_id: str) -> dict[str, Any]:
        """One schedule."""
        return schedule_view(self._schedule(org_id, schedule_id))

    def list_schedules(self, org_id: str) -> dict[str, Any]:
        """The org's schedules, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(schedules)
                .where(schedules.c.org_id == org_id)
                .order_by(schedules.c.created_at)
            ).all()
        return {"schedules": [schedule_view(r) for r in rows]}

    def set_schedule_active(self, org_id: str, schedule_id: str, active: bool) -> dict[str, Any]:
        """Pause or resume; resuming fires next at the next due time, not for missed ones."""
        row = self._schedule(org_id, schedule_id)
        values: dict[str, Any] = {"status": "active" if active else "paused"}
        if active:
            following = CronSchedule.parse(row.cron, row.timezone).next_after(self.now())
            values["next_run_at"] = following.timestamp() if following else None
        with self.engine.begin() as conn:
            conn.execute(
                update(schedules).where(schedules.c.schedule_id == schedule_id).values(**values)
            )
        return self.get_schedule(org_id, schedule_id)

    def delete_schedule(self, org_id: str, schedule_id: str) -> None:
        """Delete a schedule; reports it already made stay."""
        self._schedule(org_id, schedule_id)
        with self.engine.begin() as conn:
            conn.execute(delete(schedules).where(schedules.c.schedule_id == schedule_id))

    def run_schedule_now(self, org_id: str, plan: str, schedule_id: str) -> dict[str, Any]:
        """Make the schedule's report now (counts as an on-demand report)."""
        row = self._schedule(org_id, schedule_id)
        created, _ = self.generate(org_id, plan, json.loads(row.report), None)
        with self.engine.begin() as conn:
            conn.execute(
                update(reports)
                .where(reports.c.report_id == created["report_id"])
                .values(schedule_id=schedule_id)
            )
        return created

    # housekeeping ----------------------------------------------------------------------

    def expiry_for(self, completed_at: float) -> float:
        """When a file finished at ``completed_at`` expires."""
        return completed_at + timedelta(days=self.config.artifact_ttl_days).total_seconds()

    def sweep(self) -> int:
        """Delete files no unexpired report needs; returns how many were removed."""
        now = self.clock()
        with self.engine.connect() as conn:
            live = {
                h
                for (h,) in conn.execute(
                    select(reports.c.content_hash).where(
                        reports.c.content_hash.is_not(None),
                        reports.c.expires_at > now,
                    )
                )
            }
        removed = 0
        for content_hash in self.artifacts.hashes() - live:
            # a file adopted moments ago may belong to a job that is completing right now
            if self.artifacts.path(content_hash).stat().st_mtime > now - 3600:
                continue
            self.artifacts.remove(content_hash)
            removed += 1
        return removed
