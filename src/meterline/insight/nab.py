"""Numenta Anomaly Benchmark (NAB) scoring.

An independent implementation of the scoring rules published with NAB v1.1
(Lavin & Ahmad 2015; Ahmad et al. 2017):

* the first 15 % of each file (at most 750 rows) is a probationary period that is
  not scored;
* inside a labelled window the earliest detection earns ``tp_weight`` times a
  scaled sigmoid of its relative position, normalised so that a detection on the
  window's first row earns exactly ``tp_weight``; later detections in the same
  window add nothing; a window with no detection costs ``fn_weight``;
* each detection outside every window costs ``fp_weight`` times the scaled sigmoid
  of its distance past the end of the previous window (a full ``fp_weight`` before
  the first window or three widths after one);
* one threshold per profile is chosen over the whole corpus (the sweep), and the
  raw score is normalised so that the null detector (no detections) scores 0 and the
  perfect detector (first row of every window) scores 100.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

PROBATION_PERCENT = 0.15


@dataclass(frozen=True, slots=True)
class CostProfile:
    """Weights of one NAB application profile."""

    name: str
    tp_weight: float
    fp_weight: float
    fn_weight: float


STANDARD = CostProfile("standard", 1.0, 0.11, 1.0)
REWARD_LOW_FP = CostProfile("reward_low_FP_rate", 1.0, 0.22, 1.0)
REWARD_LOW_FN = CostProfile("reward_low_FN_rate", 1.0, 0.11, 2.0)
PROFILES: tuple[CostProfile, ...] = (STANDARD, REWARD_LOW_FP, REWARD_LOW_FN)


def scaled_sigmoid(position: float) -> float:
    """NAB's scaled sigmoid: ~0.987 at -1 (window start), 0 at 0, -1 from 3 on."""
    if position >= 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


def probation_length(rows: int) -> int:
    """Rows at the start of a file that are not scored: min(floor(15 %), 750)."""
    return int(min(math.floor(PROBATION_PERCENT * rows), PROBATION_PERCENT * 5000))


@dataclass(frozen=True, slots=True)
class ScoredPoint:
    """One scorable row: its detector score, its unweighted sweep value and window.

    ``window`` is ``None`` outside every window, else a key unique in the corpus.
    ``relative`` is the scaled sigmoid value (already divided by its maximum inside a
    window); the profile's weight is applied when scoring.
    """

    score: float
    relative: float
    window: str | None


@dataclass(frozen=True, slots=True)
class FileSweep:
    """The scorable rows of one file and the keys of its scorable windows."""

    name: str
    points: tuple[ScoredPoint, ...]
    windows: tuple[str, ...]


def sweep_file(
    name: str,
    timestamps: Sequence[str],
    scores: Sequence[float],
    windows: Sequence[tuple[str, str]],
) -> FileSweep:
    """Assign every post-probation row its window (if any) and sweep value.

    ``windows`` are ``(start, end)`` timestamps that match rows exactly; both ends are
    inclusive. Raises ``ValueError`` when the lengths differ or a window edge is not a row.
    """
    if len(timestamps) != len(scores):
        raise ValueError("timestamps and scores differ in length")
    index: dict[str, int] = {}
    for i, ts in enumerate(timestamps):
        index.setdefault(ts, i)
    spans: list[tuple[int, int, str]] = []
    for start, end in windows:
        if start not in index or end not in index:
            raise ValueError(f"{name}: window {start} .. {end} does not match data rows")
        spans.append((index[start], index[end], f"{name}|{start}"))
    spans.sort()
    max_tp = scaled_sigmoid(-1.0)
    probation = probation_length(len(timestamps))
    points: list[ScoredPoint] = []
    scorable_windows: list[str] = []
    span_i = 0
    current: tuple[int, int, str] | None = None
    prev_right: int | None = None
    prev_width = 0.0
    for i, score in enumerate(scores):
        if current is None and span_i < len(spans) and i == spans[span_i][0]:
            current = spans[span_i]
            span_i += 1
        if current is not None:
            left, right, key = current
            width = float(right - left + 1)
            relative = scaled_sigmoid(-(right - i + 1) / width) / max_tp
            window: str | None = key
        else:
            if prev_right is None:
                position = 3.0
            else:
                # A one-row window has width 1; NAB divides by (width - 1), which would be 0.
                position = abs(prev_right - i) / max(prev_width - 1.0, 1e-12)
            relative = scaled_sigmoid(position)
            window = None
        if i >= probation:
            points.append(ScoredPoint(float(score), relative, window))
            if window is not None and (not scorable_windows or scorable_windows[-1] != window):
                scorable_windows.append(window)
        if current is not None and i == current[1]:
            prev_right = i
            prev_width = float(current[1] - current[0] + 1)
            current = None
    return FileSweep(name, tuple(points), tuple(scorable_windows))


def score_at(sweep: FileSweep, profile: CostProfile, threshold: float) -> float:
    """Raw NAB score of one file when every row scoring >= ``threshold`` is a detection."""
    best: dict[str, float] = dict.fromkeys(sweep.windows, -profile.fn_weight)
    fp = 0.0
    for point in sweep.points:
        if point.score < threshold:
            continue
        if point.window is None:
            fp += point.relative * profile.fp_weight
        else:
            best[point.window] = max(best[point.window], point.relative * profile.tp_weight)
    return fp + sum(best.values())


@dataclass(frozen=True, slots=True)
class ThresholdScore:
    """Corpus-wide raw score when detections are the rows scoring >= ``threshold``."""

    threshold: float
    score: float


def threshold_sweep(sweeps: Sequence[FileSweep], profile: CostProfile) -> list[ThresholdScore]:
    """Raw corpus score at every distinct detector score, from highest threshold down.

    The first entry is the threshold above every score (no detections).
    """
    points = sorted((p for s in sweeps for p in s.points), key=lambda p: p.score, reverse=True)
    best: dict[str, float] = {key: -profile.fn_weight for s in sweeps for key in s.windows}
    total = sum(best.values())
    out = [ThresholdScore(math.inf, total)]
    i = 0
    while i < len(points):
        level = points[i].score
        while i < len(points) and points[i].score == level:
            p = points[i]
            if p.window is None:
                total += p.relative * profile.fp_weight
            else:
                gain = p.relative * profile.tp_weight
                if gain > best[p.window]:
                    total += gain - best[p.window]
                    best[p.window] = gain
            i += 1
        out.append(ThresholdScore(level, total))
    return out


def best_threshold(sweeps: Sequence[FileSweep], profile: CostProfile) -> ThresholdScore:
    """The threshold with the highest corpus score (the highest threshold on ties)."""
    best = ThresholdScore(math.inf, -math.inf)
    for candidate in threshold_sweep(sweeps, profile):
        if candidate.score > best.score:
            best = candidate
    return best


@dataclass(frozen=True, slots=True)
class ProfileResult:
    """Outcome of one profile: normalised score, threshold and the raw figures."""

    profile: CostProfile
    score: float
    threshold: float
    raw: float
    null: float
    perfect: float
    per_file: Mapping[str, float]


def evaluate(
    sweeps: Sequence[FileSweep],
    window_count: int,
    profiles: Sequence[CostProfile] = PROFILES,
) -> list[ProfileResult]:
    """Score a corpus under each profile, normalised between null (0) and perfect (100).

    ``window_count`` is the number of labelled windows in the corpus (NAB counts every
    window for the perfect score, including any that fall in a probationary period).
    The null detector is scored through the same sweep: a constant score whose best
    threshold is to detect nothing.
    """
    results: list[ProfileResult] = []
    null_sweeps = [
        FileSweep(
            s.name, tuple(ScoredPoint(0.5, p.relative, p.window) for p in s.points), s.windows
        )
        for s in sweeps
    ]
    for profile in profiles:
        chosen = best_threshold(sweeps, profile)
        per_file = {s.name: score_at(s, profile, chosen.threshold) for s in sweeps}
        raw = sum(per_file.values())
        null_threshold = best_threshold(null_sweeps, profile).threshold
        null = sum(score_at(s, profile, null_threshold) for s in null_sweeps)
        perfect = window_count * profile.tp_weight
        denominator = perfect - null
        score = 100.0 * (raw - null) / denominator if denominator else 0.0
        results.append(
            ProfileResult(profile, score, chosen.threshold, raw, null, perfect, per_file)
        )
    return results
