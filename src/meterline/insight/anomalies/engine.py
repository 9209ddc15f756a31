"""Incremental anomaly detection over one org's minute rollups, through the query model.

:meth:`AnomalyEngine.detect` reads exactly the minutes the detectors need (the minutes to
judge, their seasonal peers a day and a week earlier, and the trailing hour) for the org
as a whole and for its busiest routes, plus region and consumer×route totals for the
geography and usage-pattern detectors, and returns every finding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from meterline.insight.anomalies.detectors import (
    SEASONS,
    Finding,
    MinuteSettings,
    geography_findings,
    minute_findings,
    sum_by,
    usage_findings,
)
from meterline.query import Filter, MetricQuery, OrderBy, QueryService, TimeRange

KINDS = ("volume", "error_rate", "latency", "geography", "usage_pattern")
"""The anomaly kinds, each with its own sensitivity."""

_MINUTE_METRICS = ("requests", "errors", "latency_p95")


@dataclass(frozen=True, slots=True)
class DetectionSettings:
    """What the engine examines; windows are in minutes."""

    max_routes: int = 10
    geography_window: int = 15
    geography_trailing: int = 180
    usage_window: int = 60
    usage_history: int = 7 * 1440
    usage_refresh: int = 60
    min_requests: int = 20
    minute: MinuteSettings = MinuteSettings()


def _dt(minute: int) -> datetime:
    return datetime.fromtimestamp(minute * 60, tz=UTC)


def _minute_of(stamp: str) -> int:
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()) // 60


class AnomalyEngine:
    """Runs the five detectors for one org over a span of complete minutes."""

    def __init__(self, queries: QueryService, settings: DetectionSettings | None = None) -> None:
        self.queries = queries
        self.settings = settings or DetectionSettings()
        # consumer × route totals over a week come from raw events (no rollup holds both
        # dimensions), so each org's history is read once per ``usage_refresh`` minutes
        self._usage_history: dict[str, tuple[int, dict[str, dict[str, float]]]] = {}

    def _run(self, org_id: str, query: MetricQuery) -> list[dict[str, Any]]:
        return self.queries.run(org_id, query).data

    def has_history_before(self, org_id: str, minute: int) -> bool:
        """Whether the org has any request in the eight days before ``minute``."""
        query = MetricQuery(("requests",), TimeRange(_dt(minute - 8 * 1440), _dt(minute)))
        rows = self._run(org_id, query)
        return bool(rows and rows[0].get("requests"))

    def _minute_rows(
        self, org_id: str, start: int, end: int, routes: Sequence[str]
    ) -> dict[str, dict[int, dict[str, Any]]]:
        """``{scope: {minute: row}}`` for the org ("" scope) and each route, over the
        minutes to judge and their seasonal and trailing peers."""
        ms = self.settings.minute
        out: dict[str, dict[int, dict[str, Any]]] = {"": {}}
        for lag in (0, *SEASONS):
            lo = start - lag - ms.trailing - ms.spread
            hi = end - lag + ms.spread + 1
            span = TimeRange(_dt(lo), _dt(hi))
            total = MetricQuery(_MINUTE_METRICS, span, granularity="minute", fill_gaps=False)
            for row in self._run(org_id, total):
                if row.get("requests"):  # the series is gap-filled: an empty minute has no row
                    out[""][_minute_of(row["timestamp"])] = row
            if not routes:
                continue
            per_route = MetricQuery(
                _MINUTE_METRICS,
                span,
                dimensions=("route",),
                filters=(Filter("route", "in", tuple(routes)),),
                granularity="minute",
                fill_gaps=False,
            )
            for row in self._run(org_id, per_route):
                if row.get("requests"):
                    out.setdefault(str(row["route"]), {})[_minute_of(row["timestamp"])] = row
        return out

    def _top_routes(self, org_id: str, end: int) -> list[str]:
        query = MetricQuery(
            ("requests",),
            TimeRange(_dt(end - self.settings.minute.trailing), _dt(end)),
            dimensions=("route",),
            order_by=(OrderBy("requests", "desc"),),
            limit=self.settings.max_routes,
            fill_gaps=False,
        )
        return [str(r["route"]) for r in self._run(org_id, query) if r.get("route")]

    def _totals(self, org_id: str, dims: tuple[str, ...], lo: int, hi: int) -> list[dict[str, Any]]:
        query = MetricQuery(
            ("requests",), TimeRange(_dt(lo), _dt(hi)), dimensions=dims, fill_gaps=False
        )
        return self._run(org_id, query)

    def detect(
        self,
        org_id: str,
        start: int,
        end: int,
        z: Mapping[str, float],
        *,
        windows: bool = True,
    ) -> list[Finding]:
        """Every finding for minutes ``start`` … ``end - 1`` (minute indexes, Unix // 60);
        ``z`` gives each kind's band width in robust sigmas. ``windows=False`` skips the
        geography and usage-pattern detectors (they judge the window ending at ``end``,
        which only changes when a minute completes)."""
        if end <= start:
            return []
        s = self.settings
        routes = self._top_routes(org_id, end)
        scopes = self._minute_rows(org_id, start, end, routes)
        found: list[Finding] = []
        for minute in range(start, end):
            for scope, rows in scopes.items():
                where = {"route": scope} if scope else {}
                found += minute_findings(rows, minute, z, where, s.minute)
        if windows:
            found += self._geography(org_id, end, z["geography"])
            found += self._usage(org_id, end, z["usage_pattern"])
        return found

    def _geography(self, org_id: str, end: int, z: float) -> list[Finding]:
        w = self.settings.geography_window
        recent = sum_by(self._totals(org_id, ("region",), end - w, end), "region")
        baseline: dict[str, float] = {}
        for lag in SEASONS:
            for region, n in sum_by(
                self._totals(org_id, ("region",), end - lag - w, end - lag), "region"
            ).items():
                baseline[region] = baseline.get(region, 0.0) + n
        if sum(baseline.values()) < self.settings.min_requests:
            trailing = self.settings.geography_trailing
            baseline = sum_by(
                self._totals(org_id, ("region",), end - w - trailing, end - w), "region"
            )
        return geography_findings(recent, baseline, end - 1, z, self.settings.min_requests)

    def _usage(self, org_id: str, end: int, z: float) -> list[Finding]:
        w = self.settings.usage_window
        dims = ("consumer_id", "route")

        def nest(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
            out: dict[str, dict[str, float]] = {}
            for r in rows:
                calls = out.setdefault(str(r.get("consumer_id") or ""), {})
                calls[str(r.get("route") or "")] = float(r.get("requests") or 0.0)
            return out

        recent = nest(self._totals(org_id, dims, end - w, end))
        if not any(recent):
            return []
        cached = self._usage_history.get(org_id)
        if cached is None or not 0 <= end - cached[0] < self.settings.usage_refresh:
            lo = end - self.settings.usage_history
            cached = (end, nest(self._totals(org_id, dims, lo, end - w)))
            self._usage_history[org_id] = cached
        history = cached[1]
        return usage_findings(recent, history, end - 1, z, self.settings.min_requests)
