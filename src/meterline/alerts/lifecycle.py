"""Alerts and their lifecycle: open → acknowledged → resolved, plus feedback.

An alert is identified by its *fingerprint* (what fired, where): while one with the same
fingerprint is open or acknowledged, a new firing refreshes it (last seen, peak) instead
of opening a second. An anomaly episode opens at most one alert: resolving it by hand
while the episode goes on does not reopen it. Feedback on an anomaly alert moves that
kind's sensitivity for the org: a false positive lowers it, a true positive raises it a
little.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, select, update

from meterline.alerts.tables import alert_sensitivity, alerts
from meterline.clock import Clock
from meterline.errors import ConflictError, NotFoundError, ValidationError
from meterline.insight.anomalies import KINDS, iso
from meterline.metadb import fetch_page, paging_problems
from meterline.query import parse_instant

STATUSES = ("open", "acknowledged", "resolved")
SOURCES = ("threshold", "anomaly", "stream")
VERDICTS = ("true_positive", "false_positive")
ACTIVE = ("open", "acknowledged")
FALSE_POSITIVE_STEP = 0.1
TRUE_POSITIVE_STEP = 0.05
SENSITIVITY_RANGE = (0.05, 0.95)


@dataclass(frozen=True, slots=True)
class Firing:
    """What a source reports when its condition holds."""

    source: str
    fingerprint: str
    metric: str
    message: str
    kind: str | None = None
    rule_id: str | None = None
    anomaly_id: str | None = None
    where: dict[str, str] | None = None
    observed: float | None = None
    expected: float | None = None
    lower: float | None = None
    upper: float | None = None
    score: float | None = None
    condition: str | None = None
    threshold: float | None = None


def alert_json(row: Any) -> dict[str, Any]:
    """The public shape of one alert."""
    band = None
    if row.lower is not None or row.upper is not None:
        band = {"lower": row.lower, "upper": row.upper}
    return {
        "alert_id": row.alert_id,
        "status": row.status,
        "source": row.source,
        "rule_id": row.rule_id,
        "anomaly_id": row.anomaly_id,
        "kind": row.kind,
        "metric": row.metric,
        "where": json.loads(row.place),
        "message": row.message,
        "observed": row.observed,
        "expected": row.expected,
        "band": band,
        "score": row.score,
        "condition": row.condition,
        "threshold": row.threshold,
        "opened_at": iso(row.opened_at),
        "last_seen_at": iso(row.last_seen_at),
        "acknowledged_at": iso(row.acknowledged_at),
        "acknowledged_by": row.acknowledged_by,
        "resolved_at": iso(row.resolved_at),
        "resolved_by": row.resolved_by,
        "resolution": row.resolution,
        "feedback": None
        if row.feedback is None
        else {
            "verdict": row.feedback,
            "comment": row.feedback_comment,
            "at": iso(row.feedback_at),
            "by": row.feedback_by,
        },
    }


class AlertBook:
    """The org's alerts and per-kind sensitivities in the metadata database."""

    def __init__(self, engine: Engine, clock: Clock, default_sensitivity: float = 0.5) -> None:
        self.engine = engine
        self.clock = clock
        self.default_sensitivity = default_sensitivity

    # -- firing and resolving (evaluators) -----------------------------------------------

    def fire(self, org_id: str, firing: Firing) -> tuple[Any, bool]:
        """Open an alert for ``firing``, or refresh the active one with its fingerprint;
        returns ``(row, opened)``."""
        now = self.clock()
        with self.engine.begin() as conn:
            row = self._active(conn, org_id, firing.fingerprint)
            if row is not None:
                changes: dict[str, Any] = {"last_seen_at": now, "updated_at": now}
                newer = firing.score is None or row.score is None or firing.score > row.score
                if newer:
                    changes.update(
                        observed=firing.observed,
                        expected=firing.expected,
                        lower=firing.lower,
                        upper=firing.upper,
                        score=firing.score,
                        message=firing.message,
                    )
                if firing.anomaly_id and firing.anomaly_id != row.anomaly_id and newer:
                    changes["anomaly_id"] = firing.anomaly_id
                conn.execute(
                    update(alerts).where(alerts.c.alert_id == row.alert_id).values(**changes)
                )
                return self._get(conn, row.alert_id), False
            if firing.anomaly_id:
                # an episode someone already resolved stays resolved while it goes on
                earlier = conn.execute(
                    select(alerts)
                    .where(alerts.c.org_id == org_id, alerts.c.anomaly_id == firing.anomaly_id)
                    .limit(1)
                ).one_or_none()
                if earlier is not None:
                    return earlier, False
            alert_id = "alr_" + secrets.token_hex(8)
            conn.execute(
                alerts.insert().values(
                    alert_id=alert_id,
                    org_id=org_id,
                    source=firing.source,
                    fingerprint=firing.fingerprint,
                    rule_id=firing.rule_id,
                    anomaly_id=firing.anomaly_id,
                    status="open",
                    kind=firing.kind,
                    metric=firing.metric,
                    place=json.dumps(firing.where or {}),
                    message=firing.message,
                    observed=firing.observed,
                    expected=firing.expected,
                    lower=firing.lower,
                    upper=firing.upper,
                    score=firing.score,
                    condition=firing.condition,
                    threshold=firing.threshold,
                    opened_at=now,
                    last_seen_at=now,
                    updated_at=now,
                )
            )
            return self._get(conn, alert_id), True

    def clear(self, org_id: str, fingerprint: str, note: str) -> Any | None:
        """Resolve the active alert with ``fingerprint`` because its condition cleared;
        returns the resolved row, or None when there was none."""
        with self.engine.begin() as conn:
            row = self._active(conn, org_id, fingerprint)
            if row is None:
                return None
            return self._resolve(conn, row.alert_id, "system", note)

    def stale(self, source: str, quiet_since: float) -> list[Any]:
        """Active alerts of ``source`` not seen since ``quiet_since`` (all orgs)."""
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(alerts).where(
                        alerts.c.source == source,
                        alerts.c.status.in_(ACTIVE),
                        alerts.c.last_seen_at < quiet_since,
                    )
                ).all()
            )

    def active_fingerprints(self, org_id: str, source: str) -> dict[str, Any]:
        """``{fingerprint: row}`` of the org's active alerts from ``source``."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(alerts).where(
                    alerts.c.org_id == org_id,
                    alerts.c.source == source,
                    alerts.c.status.in_(ACTIVE),
                )
            ).all()
        return {r.fingerprint: r for r in rows}

    def _active(self, conn: Any, org_id: str, fingerprint: str) -> Any:
        return conn.execute(
            select(alerts)
            .where(
                alerts.c.org_id == org_id,
                alerts.c.fingerprint == fingerprint,
                alerts.c.status.in_(ACTIVE),
            )
            .order_by(alerts.c.opened_at.desc())
            .limit(1)
        ).one_or_none()

    def _get(self, conn: Any, alert_id: str) -> Any:
        return conn.execute(select(alerts).where(alerts.c.alert_id == alert_id)).one()

    def _resolve(self, conn: Any, alert_id: str, by: str, note: str | None) -> Any:
        now = self.clock()
        conn.execute(
            update(alerts)
            .where(alerts.c.alert_id == alert_id)
            .values(
                status="resolved", resolved_at=now, resolved_by=by, resolution=note, updated_at=now
            )
        )
        return self._get(conn, alert_id)

    # -- people ----------------------------------------------------------------------------

    def _owned(self, conn: Any, org_id: str, alert_id: str) -> Any:
        row = conn.execute(
            select(alerts).where(alerts.c.org_id == org_id, alerts.c.alert_id == alert_id)
        ).one_or_none()
        if row is None:
            raise NotFoundError(
                f"alert {alert_id!r} was not found",
                code="ALERT_NOT_FOUND",
                details="List the org's alerts with GET /v2/alerts.",
            )
        return row

    def get(self, org_id: str, alert_id: str) -> dict[str, Any]:
        """One alert; ``ALERT_NOT_FOUND`` when the org has none with that id."""
        with self.engine.connect() as conn:
            return alert_json(self._owned(conn, org_id, alert_id))

    def acknowledge(self, org_id: str, alert_id: str, by: str) -> Any:
        """Mark an open alert as being handled; 409 when it is not open."""
        now = self.clock()
        with self.engine.begin() as conn:
            row = self._owned(conn, org_id, alert_id)
            if row.status != "open":
                raise ConflictError(
                    f"alert {alert_id!r} is {row.status}, not open",
                    code="ALERT_STATE_CONFLICT",
                    details="Only an open alert can be acknowledged.",
                )
            conn.execute(
                update(alerts)
                .where(alerts.c.alert_id == alert_id, alerts.c.status == "open")
                .values(
                    status="acknowledged", acknowledged_at=now, acknowledged_by=by, updated_at=now
                )
            )
            return self._get(conn, alert_id)

    def resolve(self, org_id: str, alert_id: str, by: str, note: str | None) -> Any:
        """Close an open or acknowledged alert; 409 when it is already resolved."""
        with self.engine.begin() as conn:
            row = self._owned(conn, org_id, alert_id)
            if row.status == "resolved":
                raise ConflictError(
                    f"alert {alert_id!r} is already resolved",
                    code="ALERT_STATE_CONFLICT",
                    details="A resolved alert stays resolved; a new firing opens a new alert.",
                )
            return self._resolve(conn, alert_id, by, note)

    def feedback(
        self, org_id: str, alert_id: str, verdict: Any, comment: Any, by: str
    ) -> dict[str, Any]:
        """Record whether the alert was real; for an anomaly alert, move its kind's
        sensitivity. Returns the alert and the sensitivity now in force (None for other
        sources). One verdict per alert: a second, different one is a conflict."""
        if verdict not in VERDICTS:
            raise ValidationError(
                "feedback needs a verdict",
                validation_errors=[
                    {"field": "verdict", "message": "true_positive or false_positive"}
                ],
            )
        if comment is not None and (not isinstance(comment, str) or len(comment) > 2000):
            raise ValidationError(
                "the comment must be text of at most 2000 characters",
                validation_errors=[{"field": "comment", "message": "at most 2000 characters"}],
            )
        now = self.clock()
        with self.engine.begin() as conn:
            row = self._owned(conn, org_id, alert_id)
            if row.feedback is not None and row.feedback != verdict:
                raise ConflictError(
                    f"alert {alert_id!r} was already judged {row.feedback}",
                    code="ALERT_STATE_CONFLICT",
                    details="Each alert takes one verdict.",
                )
            repeated = row.feedback == verdict
            conn.execute(
                update(alerts)
                .where(alerts.c.alert_id == alert_id)
                .values(
                    feedback=verdict,
                    feedback_comment=comment,
                    feedback_at=now,
                    feedback_by=by,
                    updated_at=now,
                )
            )
            sensitivity = None
            if row.source == "anomaly" and row.kind in KINDS:
                sensitivity = self._adjust(conn, org_id, row.kind, verdict, repeated, now)
            return {"alert": alert_json(self._get(conn, alert_id)), "sensitivity": sensitivity}

    # -- sensitivity -----------------------------------------------------------------------

    def _adjust(
        self, conn: Any, org_id: str, kind: str, verdict: str, repeated: bool, now: float
    ) -> dict[str, Any]:
        row = conn.execute(
            select(alert_sensitivity).where(
                alert_sensitivity.c.org_id == org_id, alert_sensitivity.c.kind == kind
            )
        ).one_or_none()
        value = row.sensitivity if row is not None else self.default_sensitivity
        tp = row.true_positives if row is not None else 0
        fp = row.false_positives if row is not None else 0
        if not repeated:
            lo, hi = SENSITIVITY_RANGE
            if verdict == "false_positive":
                value, fp = max(lo, value - FALSE_POSITIVE_STEP), fp + 1
            else:
                value, tp = min(hi, value + TRUE_POSITIVE_STEP), tp + 1
            values = {
                "sensitivity": round(value, 4),
                "true_positives": tp,
                "false_positives": fp,
                "updated_at": now,
            }
            if row is None:
                conn.execute(alert_sensitivity.insert().values(org_id=org_id, kind=kind, **values))
            else:
                conn.execute(
                    update(alert_sensitivity)
                    .where(alert_sensitivity.c.org_id == org_id, alert_sensitivity.c.kind == kind)
                    .values(**values)
                )
        return {
            "kind": kind,
            "sensitivity": round(value, 4),
            "true_positives": tp,
            "false_positives": fp,
        }

    def sensitivities(self, org_id: str) -> dict[str, float]:
        """Each kind's sensitivity for the org (the default where no feedback moved it)."""
        out = dict.fromkeys(KINDS, self.default_sensitivity)
        with self.engine.connect() as conn:
            for row in conn.execute(
                select(alert_sensitivity).where(alert_sensitivity.c.org_id == org_id)
            ):
                out[row.kind] = row.sensitivity
        return out

    def sensitivity_report(self, org_id: str) -> list[dict[str, Any]]:
        """Per kind: sensitivity in force and the feedback counts that moved it."""
        with self.engine.connect() as conn:
            rows = {
                r.kind: r
                for r in conn.execute(
                    select(alert_sensitivity).where(alert_sensitivity.c.org_id == org_id)
                )
            }
        out = []
        for kind in KINDS:
            r = rows.get(kind)
            out.append(
                {
                    "kind": kind,
                    "sensitivity": r.sensitivity if r else self.default_sensitivity,
                    "true_positives": r.true_positives if r else 0,
                    "false_positives": r.false_positives if r else 0,
                }
            )
        return out

    # -- listing ---------------------------------------------------------------------------

    def list(
        self,
        org_id: str,
        *,
        status: str | None = None,
        source: str | None = None,
        kind: str | None = None,
        metric: str | None = None,
        rule_id: str | None = None,
        since: str | None = None,
        until: str | None = None,
        page: int = 1,
        limit: int = 50,
    ) -> dict[str, Any]:
        """The org's alerts newest first, filtered, one page."""
        problems = []
        if status is not None and status not in STATUSES:
            problems.append({"field": "status", "message": f"one of {', '.join(STATUSES)}"})
        if source is not None and source not in SOURCES:
            problems.append({"field": "source", "message": f"one of {', '.join(SOURCES)}"})
        if kind is not None and kind not in KINDS:
            problems.append({"field": "kind", "message": f"one of {', '.join(KINDS)}"})
        problems += paging_problems(page, limit)
        if problems:
            raise ValidationError("invalid alert filters", validation_errors=problems)
        where = [alerts.c.org_id == org_id]
        for column, value in (
            (alerts.c.status, status),
            (alerts.c.source, source),
            (alerts.c.kind, kind),
            (alerts.c.metric, metric),
            (alerts.c.rule_id, rule_id),
        ):
            if value is not None:
                where.append(column == value)
        if since is not None:
            where.append(alerts.c.last_seen_at >= parse_instant(since, "since").timestamp())
        if until is not None:
            where.append(alerts.c.opened_at < parse_instant(until, "until").timestamp())
        rows, pagination = fetch_page(
            self.engine,
            alerts,
            and_(*where),
            (alerts.c.opened_at.desc(), alerts.c.alert_id),
            page,
            limit,
        )
        return {"data": [alert_json(r) for r in rows], "pagination": pagination}
