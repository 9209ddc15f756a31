"""Firing due schedules exactly once, however many server processes run.

Each firing is claimed by inserting ``(schedule_id, due_at)`` into a table where that pair
is the primary key, in the same transaction that records the report and advances the
schedule; a second process inserting the same pair fails and moves on, and a process that
dies mid-way rolls back and leaves the firing to the others.
"""

from __future__ import annotations

import json
import logging
import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from meterline.clock import Clock
from meterline.errors import MeterlineError
from meterline.query import iso
from meterline.reports.cron import CronSchedule
from meterline.reports.spec import ReportSpec, parse_spec
from meterline.reports.tables import reports, schedule_runs, schedules

log = logging.getLogger(__name__)


def new_report_id() -> str:
    """A fresh, unguessable report id in the seed's ``rpt_…`` form."""
    return "rpt_" + secrets.token_hex(8)


def report_row(
    *,
    report_id: str,
    org_id: str,
    spec: ReportSpec,
    source: str,
    now: float,
    schedule_id: str | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
) -> dict[str, Any]:
    """The ``reports`` row of a newly accepted report (status ``processing``)."""
    return {
        "report_id": report_id,
        "org_id": org_id,
        "name": spec.name,
        "template_id": spec.template_id,
        "description": spec.description,
        "format": spec.format,
        "request": json.dumps(spec.as_json()),
        "source": source,
        "schedule_id": schedule_id,
        "status": "processing",
        "progress": 0,
        "attempts": 0,
        "idempotency_key": idempotency_key,
        "request_hash": request_hash,
        "created_at": now,
        "updated_at": now,
    }


class Scheduler:
    """Turns due schedules into report jobs.

    When a server was down across several due times, one catch-up report is made for the
    latest of them (not one per missed period), and the schedule moves to its next time.
    """

    def __init__(self, engine: Engine, clock: Clock, owner: str) -> None:
        self.engine = engine
        self.clock = clock
        self.owner = owner

    def tick(self) -> int:
        """Fire every schedule that is due now; returns how many this process fired."""
        now = self.clock()
        with self.engine.connect() as conn:
            due = conn.execute(
                select(schedules.c.schedule_id).where(
                    schedules.c.status == "active", schedules.c.next_run_at <= now
                )
            ).all()
        fired = 0
        for (schedule_id,) in due:
            try:
                fired += self._fire(schedule_id, now)
            except (IntegrityError, OperationalError):
                # another process fired this due time first (or holds the write lock)
                continue
            except MeterlineError as exc:
                # a schedule that can no longer make its report must not block the others
                log.error("schedule %s skipped: %s", schedule_id, exc.message)
                self._skip(schedule_id, now)
        return fired

    def _skip(self, schedule_id: str, now: float) -> None:
        with self.engine.begin() as conn:
            row = conn.execute(
                select(schedules).where(schedules.c.schedule_id == schedule_id)
            ).one()
            following = CronSchedule.parse(row.cron, row.timezone).next_after(
                datetime.fromtimestamp(now, tz=UTC)
            )
            conn.execute(
                update(schedules)
                .where(schedules.c.schedule_id == schedule_id)
                .values(next_run_at=following.timestamp() if following else None)
            )

    def _fire(self, schedule_id: str, now: float) -> int:
        with self.engine.begin() as conn:
            row = conn.execute(
                select(schedules).where(schedules.c.schedule_id == schedule_id)
            ).one()
            if row.status != "active" or row.next_run_at is None or row.next_run_at > now:
                return 0
            cron = CronSchedule.parse(row.cron, row.timezone)
            due = datetime.fromtimestamp(row.next_run_at, tz=UTC)
            now_dt = datetime.fromtimestamp(now, tz=UTC)
            latest = cron.due_times(due, now_dt)
            if latest:
                due = latest[-1]
            following = cron.next_after(due)
            report_id = new_report_id()
            conn.execute(
                schedule_runs.insert().values(
                    schedule_id=schedule_id,
                    due_at=due.timestamp(),
                    report_id=report_id,
                    claimed_by=self.owner,
                    created_at=now,
                )
            )
            template = json.loads(row.report)
            spec = parse_spec(
                {**template, "name": template.get("name") or row.name},
                now=due,
                known_template=True,
            )
            conn.execute(
                reports.insert().values(
                    report_row(
                        report_id=report_id,
                        org_id=row.org_id,
                        spec=spec,
                        source="schedule",
                        now=now,
                        schedule_id=schedule_id,
                    )
                )
            )
            conn.execute(
                update(schedules)
                .where(schedules.c.schedule_id == schedule_id)
                .values(
                    next_run_at=following.timestamp() if following else None,
                    last_run_at=due.timestamp(),
                )
            )
        log.info("schedule %s fired for %s as %s", schedule_id, iso(due), report_id)
        return 1
