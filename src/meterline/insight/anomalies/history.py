"""The anomaly history: findings merged into episodes, and the filtered, paged list.

A finding extends the open episode of the same kind, metric, direction and place when
that episode was last seen at most ``merge_gap`` seconds before it; re-judging a minute
already in an episode (late events make the engine look again) changes nothing but the
peak. Otherwise it starts a new episode.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, and_, select, update

from meterline.errors import ValidationError
from meterline.insight.anomalies.detectors import Finding
from meterline.insight.anomalies.engine import KINDS
from meterline.insight.anomalies.tables import anomalies
from meterline.metadb import fetch_page, paging_problems
from meterline.query import parse_instant


def scope_of(where: dict[str, str]) -> str:
    """A stable text key of a place: ``consumer_id=c1;route=/x`` (``""`` for the org)."""
    return ";".join(f"{k}={where[k]}" for k in sorted(where))


def iso(moment: float | None) -> str | None:
    """Unix seconds as ISO 8601 UTC (None stays None)."""
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Episode:
    """A recorded anomaly and whether this finding started it."""

    row: dict[str, Any]
    new: bool


def anomaly_json(row: Any) -> dict[str, Any]:
    """The public shape of one anomaly episode."""
    where = {
        key: getattr(row, key)
        for key in ("route", "consumer_id", "region")
        if getattr(row, key) is not None
    }
    return {
        "anomaly_id": row.anomaly_id,
        "kind": row.kind,
        "metric": row.metric,
        "direction": row.direction,
        "where": where,
        "started_at": iso(row.started_at),
        "last_seen_at": iso(row.last_seen_at),
        "minutes": row.points,
        "observed": row.observed,
        "expected": row.expected,
        "band": {"lower": row.lower, "upper": row.upper},
        "score": row.score,
        "sensitivity": row.sensitivity,
        "message": row.message,
    }


class AnomalyHistory:
    """Stores episodes in the metadata database and lists them."""

    def __init__(self, engine: Engine, merge_gap: float = 600.0) -> None:
        self.engine = engine
        self.merge_gap = merge_gap

    def record(
        self,
        org_id: str,
        findings: Iterable[Finding],
        sensitivity: dict[str, float],
        now: float,
    ) -> list[Episode]:
        """Merge ``findings`` into episodes; returns the episode of each finding."""
        out: list[Episode] = []
        with self.engine.begin() as conn:
            for f in sorted(findings, key=lambda f: f.minute):
                at = float(f.minute * 60)
                scope = scope_of(f.where)
                row = conn.execute(
                    select(anomalies)
                    .where(
                        anomalies.c.org_id == org_id,
                        anomalies.c.kind == f.kind,
                        anomalies.c.metric == f.metric,
                        anomalies.c.scope == scope,
                        anomalies.c.direction == f.direction,
                        anomalies.c.last_seen_at >= at - self.merge_gap,
                        anomalies.c.started_at <= at + self.merge_gap,
                    )
                    .order_by(anomalies.c.last_seen_at.desc())
                    .limit(1)
                ).one_or_none()
                peak = {
                    "observed": f.observed,
                    "expected": f.expected,
                    "lower": f.lower,
                    "upper": f.upper,
                    "score": f.score,
                    "message": f.message,
                    "sensitivity": sensitivity.get(f.kind, 0.5),
                }
                if row is None:
                    values = {
                        "anomaly_id": "anm_" + secrets.token_hex(8),
                        "org_id": org_id,
                        "kind": f.kind,
                        "metric": f.metric,
                        "direction": f.direction,
                        "scope": scope,
                        "route": f.where.get("route"),
                        "consumer_id": f.where.get("consumer_id"),
                        "region": f.where.get("region"),
                        "started_at": at,
                        "last_seen_at": at,
                        "points": 1,
                        "created_at": now,
                        **peak,
                    }
                    conn.execute(anomalies.insert().values(**values))
                    out.append(Episode(values, True))
                    continue
                changes: dict[str, Any] = {}
                if at > row.last_seen_at:
                    changes.update(last_seen_at=at, points=row.points + 1)
                elif at < row.started_at:
                    changes.update(started_at=at, points=row.points + 1)
                if f.score > row.score:
                    changes.update(peak)
                if changes:
                    conn.execute(
                        update(anomalies)
                        .where(anomalies.c.anomaly_id == row.anomaly_id)
                        .values(**changes)
                    )
                merged = {**row._asdict(), **changes}
                out.append(Episode(merged, False))
        return out

    def get(self, org_id: str, anomaly_id: str) -> dict[str, Any] | None:
        """One episode in its public shape, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(anomalies).where(
                    anomalies.c.org_id == org_id, anomalies.c.anomaly_id == anomaly_id
                )
            ).one_or_none()
        return None if row is None else anomaly_json(row)

    def list(
        self,
        org_id: str,
        *,
        kind: str | None = None,
        metric: str | None = None,
        since: str | None = None,
        until: str | None = None,
        endpoint: str | None = None,
        consumer: str | None = None,
        region: str | None = None,
        page: int = 1,
        limit: int = 50,
    ) -> dict[str, Any]:
        """Episodes newest first that overlap ``since``…``until``, filtered, one page."""
        problems = []
        if kind is not None and kind not in KINDS:
            problems.append({"field": "kind", "message": f"one of {', '.join(KINDS)}"})
        problems += paging_problems(page, limit)
        if problems:
            raise ValidationError("invalid anomaly filters", validation_errors=problems)
        where = [anomalies.c.org_id == org_id]
        if since is not None:
            where.append(anomalies.c.last_seen_at >= parse_instant(since, "since").timestamp())
        if until is not None:
            where.append(anomalies.c.started_at < parse_instant(until, "until").timestamp())
        for column, value in (
            (anomalies.c.kind, kind),
            (anomalies.c.metric, metric),
            (anomalies.c.route, endpoint),
            (anomalies.c.consumer_id, consumer),
            (anomalies.c.region, region),
        ):
            if value is not None:
                where.append(column == value)
        rows, pagination = fetch_page(
            self.engine,
            anomalies,
            and_(*where),
            (anomalies.c.started_at.desc(), anomalies.c.anomaly_id),
            page,
            limit,
        )
        return {"data": [anomaly_json(r) for r in rows], "pagination": pagination}
