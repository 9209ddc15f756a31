"""``meterline eval nab`` over a small NAB-format corpus written by the test."""

from __future__ import annotations

import csv
import json
import math
import random
from datetime import datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from meterline.cli import app


def write_corpus(root: Path) -> Path:
    rng = random.Random(3)
    start = datetime(2014, 4, 1)
    stamps = [(start + timedelta(minutes=5 * i)).strftime("%Y-%m-%d %H:%M:%S") for i in range(2500)]
    for name, spike in (("withSpike/a.csv", 2000), ("quiet/b.csv", None)):
        path = root / "data" / name
        path.parent.mkdir(parents=True)
        with path.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["timestamp", "value"])
            for i, ts in enumerate(stamps):
                v = 20 + 4 * math.sin(2 * math.pi * i / 288) + rng.gauss(0, 0.2)
                w.writerow([ts, round(v + (60 if i == spike else 0), 3)])
    windows = {
        "withSpike/a.csv": [[stamps[1990] + ".000000", stamps[2100] + ".000000"]],
        "quiet/b.csv": [],
    }
    labels = root / "windows.json"
    labels.write_text(json.dumps(windows))
    return labels


def test_eval_nab_writes_scores_and_prints_profiles(tmp_path: Path) -> None:
    labels = write_corpus(tmp_path)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["eval", "nab", str(tmp_path / "data"), str(labels), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    for rel in ("withSpike/a.csv", "quiet/b.csv"):
        with (out / rel).open() as fh:
            rows = list(csv.reader(fh))
        assert rows[0] == ["timestamp", "value", "anomaly_score"]
        assert len(rows) == 2501
        assert all(0.0 <= float(r[2]) <= 1.0 for r in rows[1:])
    lines = dict(
        line.split(": ")
        for line in result.output.splitlines()
        if line.startswith("reward") or line.startswith("standard")
    )
    assert set(lines) == {"standard", "reward_low_FP_rate", "reward_low_FN_rate"}
    # the spike is caught early in its window and the quiet file stays quiet
    assert float(lines["standard"]) > 80.0


def test_eval_nab_rejects_bad_windows_file(tmp_path: Path) -> None:
    write_corpus(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    result = CliRunner().invoke(
        app, ["eval", "nab", str(tmp_path / "data"), str(bad), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code != 0
    assert "expected an object" in result.output


def test_eval_nab_split_scores_every_other_file(tmp_path: Path) -> None:
    labels = write_corpus(tmp_path)
    out = tmp_path / "out"
    args = ["eval", "nab", str(tmp_path / "data"), str(labels), "--out", str(out)]
    # sorted: quiet/b.csv (even), withSpike/a.csv (odd)
    even = CliRunner().invoke(app, [*args, "--split", "even"])
    odd = CliRunner().invoke(app, [*args, "--split", "odd"])
    assert even.exit_code == 0 and odd.exit_code == 0, even.output + odd.output
    assert "standard: 0.00" in even.output  # no windows: null and detector both score 0
    assert "(1 files" in even.output and "(1 files" in odd.output
    tuning = CliRunner().invoke(app, [*args, "--split", "tuning"])
    holdout = CliRunner().invoke(app, [*args, "--split", "holdout"])
    assert tuning.output.splitlines()[-3:] == even.output.splitlines()[-3:]
    assert holdout.output.splitlines()[-3:] == odd.output.splitlines()[-3:]
    bad = CliRunner().invoke(app, [*args, "--split", "third"])
    assert bad.exit_code != 0
