"""Reading and writing NAB-format series: ``timestamp,value`` CSVs and window labels."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Series:
    """One input file: its path relative to the corpus root, timestamps and values."""

    relative: str
    timestamps: tuple[str, ...]
    epochs: tuple[float, ...]
    values: tuple[float, ...]


def canonical_timestamp(text: str) -> str:
    """The ``YYYY-MM-DD HH:MM:SS`` form of a NAB timestamp (labels carry microseconds)."""
    return datetime.fromisoformat(text.strip()).strftime("%Y-%m-%d %H:%M:%S")


def read_series(root: Path, path: Path) -> Series:
    """Read one ``timestamp,value`` CSV; raises ``ValueError`` on a malformed row."""
    stamps: list[str] = []
    epochs: list[float] = []
    values: list[float] = []
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:2]] != ["timestamp", "value"]:
            raise ValueError(f"{path}: expected a 'timestamp,value' header")
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            try:
                moment = datetime.fromisoformat(row[0].strip())
                value = float(row[1])
            except (ValueError, IndexError) as exc:
                raise ValueError(f"{path}:{line}: {exc}") from exc
            stamps.append(moment.strftime("%Y-%m-%d %H:%M:%S"))
            # NAB timestamps carry no zone: read them as UTC, whatever the host's zone
            epochs.append(moment.replace(tzinfo=moment.tzinfo or UTC).timestamp())
            values.append(value)
    return Series(path.relative_to(root).as_posix(), tuple(stamps), tuple(epochs), tuple(values))


def discover(root: Path) -> list[Path]:
    """Every ``*.csv`` under ``root``, in a stable order."""
    return sorted(p for p in root.rglob("*.csv") if p.is_file())


def read_windows(path: Path) -> dict[str, list[tuple[str, str]]]:
    """NAB ``combined_windows.json``: relative path -> list of inclusive (start, end)."""
    raw = json.loads(path.read_text())
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected an object of file -> windows")
    out: dict[str, list[tuple[str, str]]] = {}
    for key, windows in raw.items():
        out[str(key)] = [(canonical_timestamp(a), canonical_timestamp(b)) for a, b in windows]
    return out


def write_scores(path: Path, series: Series, scores: Sequence[float]) -> None:
    """Write ``timestamp,value,anomaly_score`` rows for one series."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["timestamp", "value", "anomaly_score"])
        for ts, value, score in zip(series.timestamps, series.values, scores, strict=True):
            writer.writerow(
                [ts, repr(value) if not value.is_integer() else int(value), f"{score:.6f}"]
            )
