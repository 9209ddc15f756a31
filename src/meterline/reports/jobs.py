"""Report jobs claimed from the metadata database with a lease; no broker.

A worker claims a ``processing`` report whose lease is free or has lapsed, and only the
current lease holder can finish it, so a job whose worker died is taken over after the
lease and still completes exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, or_, select, update

from meterline.clock import Clock
from meterline.reports.tables import reports


@dataclass(frozen=True, slots=True)
class Claim:
    """A job this worker holds: the report row at the moment it was claimed."""

    report_id: str
    org_id: str
    row: dict[str, Any]


class JobQueue:
    """Claim, advance, finish or fail report jobs.

    Example:
        >>> claim = queue.claim("worker-1")  # doctest: +SKIP
        >>> queue.complete(claim.report_id, "worker-1", content_hash=..., size=..., pages=3)
    """

    def __init__(
        self, engine: Engine, clock: Clock, *, lease_seconds: float, max_attempts: int
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts

    def _claimable(self, now: float) -> Any:
        return (reports.c.status == "processing") & or_(
            reports.c.lease_until.is_(None), reports.c.lease_until < now
        )

    def claim(self, owner: str) -> Claim | None:
        """Take the oldest free job; ``None`` when there is none. A job that has used up
        its attempts (its workers kept dying) is failed instead of claimed again."""
        now = self.clock()
        with self.engine.begin() as conn:
            candidates = conn.execute(
                select(reports.c.report_id, reports.c.attempts)
                .where(self._claimable(now))
                .order_by(reports.c.created_at)
                .limit(8)
            ).all()
        for report_id, attempts in candidates:
            with self.engine.begin() as conn:
                if attempts >= self.max_attempts:
                    conn.execute(
                        update(reports)
                        .where(reports.c.report_id == report_id, self._claimable(now))
                        .values(
                            status="failed",
                            error_message="rendering was interrupted too many times",
                            updated_at=now,
                        )
                    )
                    continue
                taken = conn.execute(
                    update(reports)
                    .where(reports.c.report_id == report_id, self._claimable(now))
                    .values(
                        lease_owner=owner,
                        lease_until=now + self.lease_seconds,
                        attempts=reports.c.attempts + 1,
                        progress=10,
                        updated_at=now,
                    )
                )
                if taken.rowcount == 1:
                    row = conn.execute(
                        select(reports).where(reports.c.report_id == report_id)
                    ).one()
                    return Claim(report_id, row.org_id, dict(row._mapping))
        return None

    def _held(self, report_id: str, owner: str) -> Any:
        return (
            (reports.c.report_id == report_id)
            & (reports.c.lease_owner == owner)
            & (reports.c.status == "processing")
        )

    def progress(self, report_id: str, owner: str, percent: int) -> None:
        """Record progress (0–100) while the lease is held."""
        with self.engine.begin() as conn:
            conn.execute(
                update(reports)
                .where(self._held(report_id, owner))
                .values(progress=percent, updated_at=self.clock())
            )

    def complete(
        self,
        report_id: str,
        owner: str,
        *,
        content_hash: str,
        size: int,
        pages: int | None,
        expires_at: float,
    ) -> bool:
        """Mark the job done; ``False`` if this worker no longer holds it (it lost its
        lease and another worker took over), in which case nothing changes."""
        now = self.clock()
        with self.engine.begin() as conn:
            done = conn.execute(
                update(reports)
                .where(self._held(report_id, owner))
                .values(
                    status="completed",
                    progress=100,
                    content_hash=content_hash,
                    size_bytes=size,
                    page_count=pages,
                    completed_at=now,
                    updated_at=now,
                    expires_at=expires_at,
                    lease_until=None,
                )
            )
        return done.rowcount == 1

    def fail(self, report_id: str, owner: str, message: str) -> bool:
        """Mark the job failed with a message the API shows."""
        now = self.clock()
        with self.engine.begin() as conn:
            done = conn.execute(
                update(reports)
                .where(self._held(report_id, owner))
                .values(status="failed", error_message=message[:1000], updated_at=now)
            )
        return done.rowcount == 1

    def release(self, report_id: str, owner: str, retry_in: float) -> None:
        """Give the job back to be retried after ``retry_in`` seconds (a transient fault)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(reports)
                .where(self._held(report_id, owner))
                .values(lease_until=self.clock() + retry_in, lease_owner=None)
            )
