"""Run the streaming detector over a NAB-format corpus and score it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from meterline.insight import corpus, nab
from meterline.insight.detector import DetectorConfig, score_series


@dataclass(frozen=True, slots=True)
class BenchmarkRun:
    """Scored corpus: one profile result each and the per-file outputs written."""

    results: list[nab.ProfileResult]
    files: list[str]


def detect_corpus(
    data_dir: Path,
    out_dir: Path,
    config: DetectorConfig | None = None,
) -> Iterator[tuple[corpus.Series, list[float]]]:
    """Score every CSV under ``data_dir`` and write its scores under ``out_dir``.

    Yields each series with its scores as it completes, so callers can show progress.
    """
    for path in corpus.discover(data_dir):
        series = corpus.read_series(data_dir, path)
        scores = score_series(series.values, config, series.epochs)
        corpus.write_scores(out_dir / series.relative, series, scores)
        yield series, scores


def score_corpus(
    scored: Sequence[tuple[corpus.Series, Sequence[float]]],
    windows: Mapping[str, Sequence[tuple[str, str]]],
    select: Callable[[str], bool] = lambda _name: True,
) -> list[nab.ProfileResult]:
    """NAB scores (all three profiles) of the selected scored series.

    A series without an entry in ``windows`` has no anomalies.
    """
    chosen = [(s, sc) for s, sc in scored if select(s.relative)]
    sweeps = [
        nab.sweep_file(s.relative, s.timestamps, sc, windows.get(s.relative, []))
        for s, sc in chosen
    ]
    window_count = sum(len(windows.get(s.relative, [])) for s, _ in chosen)
    return nab.evaluate(sweeps, window_count)
