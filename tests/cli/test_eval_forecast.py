"""``meterline eval forecast`` on a CSV written by the test."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from typer.testing import CliRunner

from meterline.cli import app


def test_eval_forecast_prints_metrics_and_writes_predictions(tmp_path: Path) -> None:
    src = tmp_path / "series.csv"
    with src.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["timestamp", "value"])
        for t in range(7 * 168 * 2):  # half-hourly: summed into hours
            hour = t // 2
            w.writerow(
                [
                    _stamp(t * 1800),
                    round(50 + 20 * math.sin(2 * math.pi * hour / 24) + (hour * 7919 % 13) / 4, 3),
                ]
            )
    pred = tmp_path / "out" / "pred.csv"
    result = CliRunner().invoke(
        app, ["eval", "forecast", str(src), "--horizon", "6", "--out", str(pred)]
    )
    assert result.exit_code == 0, result.output
    figures = dict(line.split(": ", 1) for line in result.output.splitlines() if ": " in line)
    assert 0.0 < float(figures["MASE"]) < 1.0
    assert float(figures["accuracy (1 - WAPE)"]) > 0.95
    with pred.open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == [
        "origin",
        "timestamp",
        "actual",
        "yhat",
        "lo80",
        "hi80",
        "lo95",
        "hi95",
    ]
    assert len(rows) == sum(min(6, 336 - i) for i in range(336))
    assert all(r["timestamp"] > r["origin"] for r in rows)


def test_eval_forecast_refuses_a_short_series(tmp_path: Path) -> None:
    src = tmp_path / "short.csv"
    src.write_text("timestamp,value\n" + "".join(f"{_stamp(h * 3600)},1\n" for h in range(100)))
    result = CliRunner().invoke(app, ["eval", "forecast", str(src)])
    assert result.exit_code != 0
    assert "need at least" in result.output


def _stamp(seconds: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(1_420_070_400 + seconds, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def test_eval_forecast_by_day_sums_hours_into_days(tmp_path: Path) -> None:
    src = tmp_path / "hourly.csv"
    with src.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["timestamp", "value"])
        for h in range(120 * 24):  # 120 days of hours, a weekly shape with some noise
            day = h // 24
            w.writerow([_stamp(h * 3600), 10 + 5 * (day % 7 >= 5) + (day * 7919 % 11) / 10])
    pred = tmp_path / "pred.csv"
    result = CliRunner().invoke(
        app, ["eval", "forecast", str(src), "--granularity", "day", "--out", str(pred)]
    )
    assert result.exit_code == 0, result.output
    assert "origins: 56 (horizons 1..14)" in result.output
    figures = dict(line.split(": ", 1) for line in result.output.splitlines() if ": " in line)
    assert float(figures["accuracy (1 - WAPE)"]) > 0.9
    with pred.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == sum(min(14, 56 - i) for i in range(56))
    assert all(r["timestamp"] > r["origin"] for r in rows)
    assert all(r["timestamp"].endswith("T00:00:00Z") for r in rows)
    bad = CliRunner().invoke(app, ["eval", "forecast", str(src), "--granularity", "week"])
    assert bad.exit_code != 0
