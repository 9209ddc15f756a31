"""The five anomaly detectors, as pure functions over minute rows already read.

Minute rows are keyed by the minute's index (Unix seconds // 60); a minute without a row
had no events. Each detector compares what happened with a baseline from the same
scope's own history:

* seasonal peers: the same minute (± ``spread`` minutes) one day and one week earlier,
  each scaled by how the hour before compares with that hour then, so a day that is
  busier all along does not look like a spike in every minute (level shift);
* a season whose neighbourhood holds no row at all is treated as missing data (the
  server was down, or the org is new), not as zero traffic;
* with no seasonal history yet, the trailing hour is the baseline.

``z`` is the band half-width in robust standard deviations (from the sensitivity).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from meterline.insight.rollups import robust_band, wilson

Row = Mapping[str, Any]
DAY_MINUTES = 1440
SEASONS = (DAY_MINUTES, 7 * DAY_MINUTES)


def z_for(sensitivity: float) -> float:
    """Band half-width in robust sigmas: 6 at sensitivity 0 … 2 at sensitivity 1."""
    return 6.0 - 4.0 * min(max(sensitivity, 0.0), 1.0)


@dataclass(frozen=True, slots=True)
class Finding:
    """One unusual observation: what, where, when, how unusual, expected band, observed."""

    kind: str
    metric: str
    minute: int
    observed: float
    expected: float
    lower: float
    upper: float
    score: float
    direction: str
    where: dict[str, str] = field(default_factory=dict)
    message: str = ""

    @property
    def at(self) -> datetime:
        """The minute as an aware UTC datetime."""
        return datetime.fromtimestamp(self.minute * 60, tz=UTC)


@dataclass(frozen=True, slots=True)
class MinuteSettings:
    """Baseline shape shared by the per-minute detectors."""

    spread: int = 5
    trailing: int = 60
    min_requests: int = 20
    min_peers: int = 10


def _value(rows: Mapping[int, Row], minute: int, name: str) -> float:
    row = rows.get(minute)
    return float(row.get(name) or 0.0) if row is not None else 0.0


def _present(rows: Mapping[int, Row], start: int, end: int) -> bool:
    return any(t in rows for t in range(start, end))


def peer_minutes(
    rows: Mapping[int, Row], minute: int, s: MinuteSettings
) -> list[tuple[int, float]]:
    """Baseline minutes for ``minute`` with a level factor each: seasonal when any
    season has data, else the trailing minutes since the first one with data."""
    peers: list[tuple[int, float]] = []
    trail_now = sum(_value(rows, t, "requests") for t in range(minute - s.trailing, minute))
    for lag in SEASONS:
        centre = minute - lag
        if not _present(rows, centre - s.spread, centre + s.spread + 1):
            continue
        ratio = 1.0
        if _present(rows, centre - s.trailing, centre) and trail_now > 0:
            then = sum(_value(rows, t, "requests") for t in range(centre - s.trailing, centre))
            ratio = min(max((trail_now + 1.0) / (then + 1.0), 0.25), 4.0)
        peers += [(t, ratio) for t in range(centre - s.spread, centre + s.spread + 1)]
    if peers:
        return peers
    known = [t for t in range(minute - s.trailing, minute) if t in rows]
    if not known:
        return []
    return [(t, 1.0) for t in range(known[0], minute)]


def _stamp(minute: int) -> str:
    return datetime.fromtimestamp(minute * 60, tz=UTC).strftime("%H:%M")


def minute_findings(
    rows: Mapping[int, Row],
    minute: int,
    z: Mapping[str, float],
    where: dict[str, str],
    s: MinuteSettings | None = None,
) -> list[Finding]:
    """Volume (spike or drop), error-rate and p95-latency findings for one minute of one
    scope. ``z`` maps kind (``volume``, ``error_rate``, ``latency``) to its band width."""
    s = s or MinuteSettings()
    peers = peer_minutes(rows, minute, s)
    if len(peers) < s.min_peers:
        return []
    label = where.get("route", "all traffic")
    out: list[Finding] = []
    observed = _value(rows, minute, "requests")
    volumes = [_value(rows, t, "requests") * f for t, f in peers]
    exp, lo, hi, sigma = robust_band(volumes, z["volume"], counts=True)
    if observed > hi or observed < lo:
        direction = "spike" if observed > hi else "drop"
        out.append(
            Finding(
                "volume",
                "requests",
                minute,
                observed,
                round(exp, 3),
                round(lo, 3),
                round(hi, 3),
                round(abs(observed - exp) / sigma, 2),
                direction,
                dict(where),
                f"request volume {direction} on {label} at {_stamp(minute)}Z: "
                f"{observed:g} requests/min, expected {lo:.0f}–{hi:.0f}",
            )
        )
    # Error rate: the minute's Wilson interval must clear the baseline's, so a handful of
    # requests (a wide interval) cannot raise an alarm on its own.
    errors = _value(rows, minute, "errors")
    base_req = sum(_value(rows, t, "requests") for t, _ in peers)
    base_err = sum(_value(rows, t, "errors") for t, _ in peers)
    ze = z["error_rate"]
    if observed >= 1 and base_req >= s.min_requests:
        b_lo, b_hi = wilson(base_err, base_req, ze)
        o_lo, _ = wilson(errors, observed, ze)
        if o_lo > b_hi:
            rate, p0 = errors / observed, base_err / base_req
            sd = math.sqrt(max(p0 * (1 - p0), 1e-4) / observed)
            out.append(
                Finding(
                    "error_rate",
                    "error_rate",
                    minute,
                    round(rate, 4),
                    round(p0, 4),
                    round(b_lo, 4),
                    round(b_hi, 4),
                    round((rate - p0) / sd, 2),
                    "spike",
                    dict(where),
                    f"error rate on {label} at {_stamp(minute)}Z: {rate:.1%} of "
                    f"{observed:g} requests, expected at most {b_hi:.1%}",
                )
            )
    if observed >= s.min_requests:
        lat = [
            _value(rows, t, "latency_p95")
            for t, _ in peers
            if _value(rows, t, "requests") >= s.min_requests
        ]
        if len(lat) >= 3:
            zl = z["latency"]
            l_exp, l_lo, l_hi, l_sigma = robust_band(lat, zl)
            l_sigma = max(l_sigma, 0.05 * l_exp, 1e-6)
            l_hi = max(l_hi, l_exp + zl * l_sigma)
            value = _value(rows, minute, "latency_p95")
            if value > l_hi:
                out.append(
                    Finding(
                        "latency",
                        "latency_p95",
                        minute,
                        round(value, 3),
                        round(l_exp, 3),
                        round(l_lo, 3),
                        round(l_hi, 3),
                        round((value - l_exp) / l_sigma, 2),
                        "spike",
                        dict(where),
                        f"p95 latency on {label} at {_stamp(minute)}Z: {value:g} ms, "
                        f"expected at most {l_hi:.0f} ms",
                    )
                )
    return out


def geography_findings(
    recent: Mapping[str, float],
    baseline: Mapping[str, float],
    minute: int,
    z: float,
    min_requests: int = 20,
) -> list[Finding]:
    """Regions whose share of requests in the recent window rose clearly above their
    share in the baseline (a new region counts as share 0 before)."""
    n_recent, n_base = sum(recent.values()), sum(baseline.values())
    if n_recent < min_requests or n_base < min_requests:
        return []
    out: list[Finding] = []
    for region, count in sorted(recent.items()):
        p0 = baseline.get(region, 0.0) / n_base
        share = count / n_recent
        # the baseline share is itself uncertain: compare with the top of its interval
        _, b_hi = wilson(baseline.get(region, 0.0), n_base, z)
        limit = min(1.0, max(b_hi, p0 + 0.05))
        o_lo, _ = wilson(count, n_recent, z)
        if o_lo <= limit:
            continue
        sd = math.sqrt(max(p0 * (1 - p0), 1.0 / n_base) / n_recent)
        name = region or "(unknown)"
        out.append(
            Finding(
                "geography",
                "region_share",
                minute,
                round(share, 4),
                round(p0, 4),
                0.0,
                round(limit, 4),
                round((share - p0) / sd, 2),
                "shift",
                {"region": region},
                f"region {name} sent {share:.0%} of requests in the last window, "
                f"{p0:.0%} in the baseline",
            )
        )
    return out


def _wilson_hilferty(chi2: float, df: int) -> float:
    """A chi-square statistic as an approximate standard normal score."""
    if df <= 0:
        return 0.0
    k = 2.0 / (9.0 * df)
    return float(((chi2 / df) ** (1.0 / 3.0) - (1.0 - k)) / math.sqrt(k))


def usage_findings(
    recent: Mapping[str, Mapping[str, float]],
    history: Mapping[str, Mapping[str, float]],
    minute: int,
    z: float,
    min_requests: int = 20,
) -> list[Finding]:
    """Per consumer: endpoints it never called before, and an endpoint mix that departs
    from its own history (a chi-square test on smoothed shares, at least a 25 % move).

    ``recent`` and ``history`` map consumer → route → calls. A consumer without history
    has no pattern to depart from and is skipped.
    """
    out: list[Finding] = []
    for consumer, routes in sorted(recent.items()):
        past = history.get(consumer)
        if not consumer or not past:
            continue
        n_past, n_now = sum(past.values()), sum(routes.values())
        keys = sorted(set(past) | set(routes))
        # Laplace smoothing: a never-seen route has a small, not a zero, expected share
        expected = {r: (past.get(r, 0.0) + 0.5) / (n_past + 0.5 * len(keys)) for r in keys}
        for route in keys:
            if route in past or routes.get(route, 0.0) <= 0:
                continue
            k = routes[route]
            p0 = expected[route]
            score = (k / n_now - p0) / math.sqrt(p0 * (1 - p0) / n_now)
            if score < z:
                continue
            out.append(
                Finding(
                    "usage_pattern",
                    "endpoint_calls",
                    minute,
                    float(k),
                    0.0,
                    0.0,
                    0.0,
                    round(score, 2),
                    "new",
                    {"consumer_id": consumer, "route": route},
                    f"consumer {consumer} called {route} {k:g} times; it had never called "
                    f"it in {n_past:g} earlier requests to {len(past)} endpoints",
                )
            )
        if n_now < min_requests or len(keys) < 2:
            continue
        chi2 = sum(
            (routes.get(r, 0.0) - n_now * expected[r]) ** 2 / (n_now * expected[r]) for r in keys
        )
        distance = 0.5 * sum(abs(routes.get(r, 0.0) / n_now - expected[r]) for r in keys)
        score = _wilson_hilferty(chi2, len(keys) - 1)
        if score < z or distance < 0.25:
            continue
        top = max(keys, key=lambda r: routes.get(r, 0.0) / n_now - expected[r])
        out.append(
            Finding(
                "usage_pattern",
                "endpoint_mix",
                minute,
                round(distance, 4),
                0.0,
                0.0,
                0.25,
                round(score, 2),
                "shift",
                {"consumer_id": consumer},
                f"consumer {consumer}'s endpoint mix moved {distance:.0%} from its history: "
                f"{top} is {routes.get(top, 0.0) / n_now:.0%} of its calls "
                f"(was {expected[top]:.0%})",
            )
        )
    return out


def sum_by(rows: Sequence[Row], key: str, value: str = "requests") -> dict[str, float]:
    """``{row[key]: total of row[value]}`` over query rows."""
    out: dict[str, float] = {}
    for row in rows:
        name = str(row.get(key) or "")
        out[name] = out.get(name, 0.0) + float(row.get(value) or 0.0)
    return out
