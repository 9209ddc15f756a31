"""Anomaly detectors over an org's minute rollups, read through the query model.

Each detector compares a recent evaluation window with a baseline taken from the same
org's history. The baseline is seasonality-aware: for each recent minute the expected
value is the median of the same minute one day and one week earlier (the peers that
exist), falling back to the trailing hours when there is less history than a day.
Spread is a robust one (scaled median absolute deviation, with a Poisson floor for
counts), and ``sensitivity`` in (0, 1] sets how many spreads away a point must be.
A detector reports nothing until its learning period of history exists.

Every anomaly says what (metric/kind), where (route, consumer, region or the whole
org), how unusual (a score in standard deviations), the expected band and the observed
value.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from meterline.query import MetricQuery, QueryService, TimeRange

MINUTE = timedelta(minutes=1)
SEASONS = (timedelta(days=1), timedelta(days=7))


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One departure from the baseline, as an operator would want it described."""

    kind: str
    metric: str
    timestamp: str
    observed: float
    expected: float
    lower: float
    upper: float
    score: float
    direction: str
    where: dict[str, str] = field(default_factory=dict)
    message: str = ""

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class InsightSettings:
    """Sensitivity (0 < s <= 1; higher finds more) and history needed before reporting."""

    sensitivity: float = 0.5
    window: timedelta = timedelta(minutes=60)
    trailing: timedelta = timedelta(hours=3)
    learning: timedelta = timedelta(hours=1)
    min_requests: int = 20

    @property
    def z(self) -> float:
        """Band half-width in robust standard deviations: 6 at 0.0 … 2 at 1.0."""
        return 6.0 - 4.0 * min(max(self.sensitivity, 0.0), 1.0)


def wilson(successes: float, trials: float, z: float) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (0..1 bounds, (0, 1) for no trials)."""
    if trials <= 0:
        return 0.0, 1.0
    p = successes / trials
    denom = 1.0 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def robust_band(
    baseline: Sequence[float], z: float, counts: bool = False
) -> tuple[float, float, float, float]:
    """(expected, lower, upper, sigma) from a baseline: median ± z robust sigmas."""
    expected = statistics.median(baseline)
    mad = statistics.median(abs(v - expected) for v in baseline) * 1.4826
    sigma = max(mad, math.sqrt(max(expected, 1.0)) if counts else 1e-9, 1e-9)
    return expected, max(0.0, expected - z * sigma), expected + z * sigma, sigma


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


class InsightService:
    """Runs the rollup detectors for one org over the query model."""

    def __init__(self, queries: QueryService) -> None:
        self.queries = queries

    def _series(
        self, org_id: str, metrics: tuple[str, ...], start: datetime, end: datetime
    ) -> dict[datetime, dict[str, Any]]:
        query = MetricQuery(metrics, TimeRange(start, end), granularity="minute")
        return {_parse(r["timestamp"]): r for r in self.queries.run(org_id, query).data}

    def _totals(
        self,
        org_id: str,
        metrics: tuple[str, ...],
        dims: tuple[str, ...],
        start: datetime,
        end: datetime,
    ) -> list[dict[str, Any]]:
        query = MetricQuery(metrics, TimeRange(start, end), dimensions=dims, fill_gaps=False)
        return self.queries.run(org_id, query).data

    def anomalies(
        self, org_id: str, settings: InsightSettings | None = None, now: datetime | None = None
    ) -> list[Anomaly]:
        """All anomalies in the evaluation window ending at ``now``, most unusual first."""
        s = settings or InsightSettings()
        end = (now or self.queries.now()).replace(second=0, microsecond=0)
        eval_start = end - s.window
        history_start = min(end - SEASONS[-1] - s.window, eval_start - s.trailing)
        found: list[Anomaly] = []
        series = self._series(org_id, ("requests", "errors", "latency_p95"), history_start, end)
        found += self._volume_and_errors(series, eval_start, end, s)
        found += self._geography(org_id, eval_start, end, s)
        found += self._new_endpoints(org_id, eval_start, end, s)
        return sorted(found, key=lambda a: -a.score)

    def _peers(
        self, series: dict[datetime, dict[str, Any]], moment: datetime, s: InsightSettings
    ) -> list[dict[str, Any]]:
        seasonal = [series[moment - p] for p in SEASONS if (moment - p) in series]
        busy = [r for r in seasonal if r["requests"] > 0]
        if busy:
            return busy
        start = moment - s.window - s.trailing
        return [
            r for t, r in series.items() if start <= t < moment - s.window and r["requests"] > 0
        ]

    def _volume_and_errors(
        self,
        series: dict[datetime, dict[str, Any]],
        eval_start: datetime,
        end: datetime,
        s: InsightSettings,
    ) -> list[Anomaly]:
        active = sorted(t for t, r in series.items() if r["requests"] > 0)
        if not active or active[0] > eval_start - s.learning:
            return []  # still learning
        out: list[Anomaly] = []
        z = s.z
        moment = eval_start
        while moment < end:
            row = series.get(moment)
            peers = self._peers(series, moment, s)
            if row is None or len(peers) < 1:
                moment += MINUTE
                continue
            stamp = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
            observed = float(row["requests"])
            base = [float(p["requests"]) for p in peers]
            exp, lo, hi, sigma = robust_band(base, z, counts=True)
            if observed > hi or observed < lo:
                direction = "spike" if observed > hi else "drop"
                out.append(
                    Anomaly(
                        "volume",
                        "requests",
                        stamp,
                        observed,
                        exp,
                        lo,
                        hi,
                        round(abs(observed - exp) / sigma, 2),
                        direction,
                        message=f"request volume {direction}: {observed:g} vs {exp:g} expected",
                    )
                )
            # error rate: the observed minute's Wilson interval against the baseline's
            errors = float(row["errors"])
            base_err = sum(float(p["errors"]) for p in peers)
            base_req = sum(float(p["requests"]) for p in peers)
            if observed >= 1 and base_req >= s.min_requests:
                b_lo, b_hi = wilson(base_err, base_req, z)
                o_lo, o_hi = wilson(errors, observed, z)
                if o_lo > b_hi:
                    rate = errors / observed
                    p0 = base_err / base_req
                    sd = math.sqrt(max(p0 * (1 - p0), 1e-6) / observed)
                    out.append(
                        Anomaly(
                            "error_rate",
                            "error_rate",
                            stamp,
                            round(rate, 4),
                            round(p0, 4),
                            round(b_lo, 4),
                            round(b_hi, 4),
                            round((rate - p0) / sd, 2),
                            "spike",
                            message=f"error rate {rate:.1%} over {observed:g} requests "
                            f"vs {p0:.1%} expected",
                        )
                    )
            # p95 latency, only over minutes with enough requests to make a p95
            if observed >= s.min_requests:
                lat = [float(p["latency_p95"]) for p in peers if p["requests"] >= s.min_requests]
                value = float(row["latency_p95"])
                if len(lat) >= 3 or (lat and len(peers) <= len(SEASONS)):
                    l_exp, l_lo, l_hi, l_sigma = robust_band(lat, z)
                    l_sigma = max(l_sigma, 0.05 * l_exp)
                    l_hi = max(l_hi, l_exp + z * l_sigma)
                    if value > l_hi:
                        out.append(
                            Anomaly(
                                "latency",
                                "latency_p95",
                                stamp,
                                value,
                                l_exp,
                                l_lo,
                                l_hi,
                                round((value - l_exp) / l_sigma, 2),
                                "spike",
                                message=f"p95 latency {value:g} ms vs {l_exp:g} ms expected",
                            )
                        )
            moment += MINUTE
        return out

    def _geography(
        self, org_id: str, eval_start: datetime, end: datetime, s: InsightSettings
    ) -> list[Anomaly]:
        recent = self._totals(org_id, ("requests",), ("region",), eval_start, end)
        base = self._totals(org_id, ("requests",), ("region",), eval_start - s.trailing, eval_start)
        n_recent = sum(r["requests"] for r in recent)
        n_base = sum(r["requests"] for r in base)
        if n_recent < s.min_requests or n_base < s.min_requests:
            return []
        base_share = {r["region"]: r["requests"] / n_base for r in base}
        out: list[Anomaly] = []
        for row in recent:
            region = str(row["region"])
            k = float(row["requests"])
            p0 = base_share.get(region, 0.0)
            lo, hi = wilson(k, n_recent, s.z)
            if lo > min(1.0, p0 * 1.5 + 0.02):
                share = k / n_recent
                sd = math.sqrt(max(p0 * (1 - p0), 1.0 / n_base) / n_recent)
                out.append(
                    Anomaly(
                        "geography",
                        "requests",
                        eval_start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        round(share, 4),
                        round(p0, 4),
                        0.0,
                        round(min(1.0, p0 * 1.5 + 0.02), 4),
                        round((share - p0) / sd, 2),
                        "shift",
                        {"region": region},
                        f"region {region or '(unknown)'} is {share:.0%} of requests "
                        f"vs {p0:.0%} in the baseline",
                    )
                )
        return out

    def _new_endpoints(
        self, org_id: str, eval_start: datetime, end: datetime, s: InsightSettings
    ) -> list[Anomaly]:
        history_start = eval_start - SEASONS[-1]
        base = self._totals(
            org_id, ("requests",), ("consumer_id", "route"), history_start, eval_start
        )
        known: dict[str, set[str]] = {}
        for r in base:
            known.setdefault(str(r["consumer_id"]), set()).add(str(r["route"]))
        recent = self._totals(org_id, ("requests",), ("consumer_id", "route"), eval_start, end)
        out: list[Anomaly] = []
        for r in recent:
            consumer, route = str(r["consumer_id"]), str(r["route"])
            routes = known.get(consumer)
            if not consumer or routes is None or route in routes:
                continue  # a consumer with no history has no pattern to depart from
            out.append(
                Anomaly(
                    "usage_pattern",
                    "requests",
                    eval_start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    float(r["requests"]),
                    0.0,
                    0.0,
                    0.0,
                    float(len(routes)),
                    "new",
                    {"consumer_id": consumer, "route": route},
                    f"consumer {consumer} called {route}, never seen in its history "
                    f"of {len(routes)} endpoints",
                )
            )
        return out
