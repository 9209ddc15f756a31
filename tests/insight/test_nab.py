"""NAB scoring against cases worked out by hand from the published rules."""

from __future__ import annotations

import math

import pytest

from meterline.insight import nab


def stamps(n: int) -> list[str]:
    return [f"2020-01-01 {i // 60:02d}:{i % 60:02d}:00" for i in range(n)]


TS = stamps(100)
WINDOW = [(TS[50], TS[59])]  # ten rows, 50..59; probation is rows 0..14


def one_hot(*rows: int, n: int = 100) -> list[float]:
    return [1.0 if i in rows else 0.0 for i in range(n)]


def raw(scores: list[float], profile: nab.CostProfile = nab.STANDARD) -> float:
    sweep = nab.sweep_file("f.csv", TS, scores, WINDOW)
    return nab.score_at(sweep, profile, 0.5)


def test_scaled_sigmoid_landmarks() -> None:
    assert nab.scaled_sigmoid(-1.0) == pytest.approx(2 / (1 + math.exp(-5)) - 1)
    assert nab.scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert nab.scaled_sigmoid(0.0) == 0.0
    assert nab.scaled_sigmoid(1.0) == pytest.approx(-0.98661, abs=1e-5)
    assert nab.scaled_sigmoid(3.0) == -1.0
    assert nab.scaled_sigmoid(10.0) == -1.0


def test_probation_is_fifteen_percent_capped_at_750_rows() -> None:
    assert nab.probation_length(100) == 15
    assert nab.probation_length(4032) == 604
    assert nab.probation_length(22695) == 750


def test_detection_on_first_window_row_earns_exactly_tp_weight() -> None:
    assert raw(one_hot(50)) == pytest.approx(1.0)


def test_detection_half_way_earns_less() -> None:
    # position -(59 - 55 + 1) / 10 = -0.5; sigmoid value divided by its maximum
    expected = (2 / (1 + math.exp(-2.5)) - 1) / (2 / (1 + math.exp(-5)) - 1)
    assert raw(one_hot(55)) == pytest.approx(expected)
    assert expected == pytest.approx(0.85979, abs=1e-5)


def test_only_the_best_detection_in_a_window_counts() -> None:
    assert raw(one_hot(50, 51, 55, 59)) == pytest.approx(1.0)


def test_missed_window_costs_fn_weight() -> None:
    assert raw(one_hot()) == pytest.approx(-1.0)
    assert raw(one_hot(), nab.REWARD_LOW_FN) == pytest.approx(-2.0)


def test_false_positive_before_any_window_costs_full_fp_weight() -> None:
    assert raw(one_hot(20, 50)) == pytest.approx(1.0 - 0.11)
    assert raw(one_hot(20, 50), nab.REWARD_LOW_FP) == pytest.approx(1.0 - 0.22)


def test_false_positive_after_window_is_discounted_by_distance() -> None:
    # row 64 is 5 rows past the right edge (59); position 5 / (10 - 1)
    position = 5 / 9
    penalty = 0.11 * (2 / (1 + math.exp(5 * position)) - 1)
    assert penalty == pytest.approx(-0.09712, abs=1e-5)
    assert raw(one_hot(50, 64)) == pytest.approx(1.0 + penalty)
    # three widths or more past the window: the full fp weight
    assert raw(one_hot(50, 90)) == pytest.approx(1.0 - 0.11)


def test_probationary_rows_are_not_scored() -> None:
    assert raw(one_hot(3, 50)) == pytest.approx(1.0)


def test_threshold_sweep_lists_every_distinct_score() -> None:
    scores = [0.0] * 100
    scores[20] = 0.9  # false positive
    scores[52] = 0.7  # true positive, third row of the window
    sweep = nab.sweep_file("f.csv", TS, scores, WINDOW)
    table = nab.threshold_sweep([sweep], nab.STANDARD)
    tp = (2 / (1 + math.exp(-5 * 0.8)) - 1) / (2 / (1 + math.exp(-5)) - 1)
    assert [t.threshold for t in table] == [math.inf, 0.9, 0.7, 0.0]
    assert table[0].score == pytest.approx(-1.0)
    assert table[1].score == pytest.approx(-1.11)
    assert table[2].score == pytest.approx(-0.11 + tp)
    best = nab.best_threshold([sweep], nab.STANDARD)
    assert best.threshold == 0.7


def test_normalisation_perfect_is_100_and_null_is_0() -> None:
    ts2 = stamps(200)
    windows2 = [(ts2[100], ts2[119]), (ts2[160], ts2[179])]
    perfect = [
        nab.sweep_file("a.csv", TS, one_hot(50), WINDOW),
        nab.sweep_file("b.csv", ts2, one_hot(100, 160, n=200), windows2),
    ]
    null = [
        nab.sweep_file("a.csv", TS, one_hot(), WINDOW),
        nab.sweep_file("b.csv", ts2, one_hot(n=200), windows2),
    ]
    for result in nab.evaluate(perfect, 3):
        assert result.score == pytest.approx(100.0)
        assert result.null == pytest.approx(-3.0 * result.profile.fn_weight)
    for result in nab.evaluate(null, 3):
        assert result.score == pytest.approx(0.0)


def test_normalised_score_of_a_mixed_detector() -> None:
    # file a: window hit on its first row; file b: one FP far from any window, window missed
    ts2 = stamps(200)
    sweeps = [
        nab.sweep_file("a.csv", TS, one_hot(50), WINDOW),
        nab.sweep_file("b.csv", ts2, one_hot(40, n=200), [(ts2[100], ts2[119])]),
    ]
    standard, low_fp, low_fn = nab.evaluate(sweeps, 2)
    # threshold 1.0 detects both rows: 1 - 0.11 - 1 = -0.11; null = -2; perfect = 2
    assert standard.raw == pytest.approx(-0.11)
    assert standard.score == pytest.approx(100 * (-0.11 + 2) / 4)
    assert low_fp.raw == pytest.approx(-0.22)
    assert low_fp.score == pytest.approx(100 * (-0.22 + 2) / 4)
    # low FN: null = -4, raw = 1 - 0.11 - 2
    assert low_fn.score == pytest.approx(100 * (1 - 0.11 - 2 + 4) / (2 + 4))


def test_window_inside_probation_counts_only_for_the_perfect_score() -> None:
    sweep = nab.sweep_file("f.csv", TS, one_hot(), [(TS[2], TS[5])])
    assert sweep.windows == ()
    (standard,) = nab.evaluate([sweep], 1, (nab.STANDARD,))
    assert standard.null == 0.0
    assert standard.perfect == 1.0
    assert standard.score == 0.0


def test_window_edges_must_match_rows() -> None:
    with pytest.raises(ValueError, match="does not match"):
        nab.sweep_file("f.csv", TS, one_hot(), [("2021-01-01 00:00:00", TS[5])])
