"""The alert lifecycle and feedback, on the metadata database."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from meterline.alerts import AlertBook, Firing
from meterline.clock import FrozenClock
from meterline.errors import ConflictError, NotFoundError, ValidationError
from meterline.metadb import engine_from_url, migrate


@pytest.fixture
def book(tmp_path: Path) -> AlertBook:
    engine = engine_from_url(f"sqlite:///{tmp_path / 'l.db'}")
    migrate(engine)
    return AlertBook(engine, FrozenClock(time.time()))


def volume(score: float = 6.0, anomaly_id: str = "anm_1") -> Firing:
    return Firing(
        source="anomaly",
        fingerprint="anomaly|volume|requests||spike",
        metric="requests",
        message="spike",
        kind="volume",
        anomaly_id=anomaly_id,
        observed=400.0,
        expected=40.0,
        lower=10.0,
        upper=70.0,
        score=score,
    )


def test_one_alert_per_fingerprint_keeps_the_peak(book: AlertBook) -> None:
    first, opened = book.fire("o", volume(6.0))
    assert opened and first.status == "open"
    again, opened = book.fire("o", volume(9.0))
    assert not opened and again.alert_id == first.alert_id and again.score == 9.0
    lower, _ = book.fire("o", volume(5.0))
    assert lower.score == 9.0
    assert book.list("o")["pagination"]["total_count"] == 1


def test_open_acknowledged_resolved_and_no_way_back(book: AlertBook) -> None:
    row, _ = book.fire("o", volume())
    assert book.acknowledge("o", row.alert_id, "ann").status == "acknowledged"
    with pytest.raises(ConflictError):
        book.acknowledge("o", row.alert_id, "ann")
    done = book.resolve("o", row.alert_id, "bob", "scaled out")
    assert (done.status, done.resolved_by, done.resolution) == ("resolved", "bob", "scaled out")
    with pytest.raises(ConflictError) as exc:
        book.resolve("o", row.alert_id, "bob", None)
    assert exc.value.code == "ALERT_STATE_CONFLICT"
    with pytest.raises(NotFoundError):
        book.acknowledge("another-org", row.alert_id, "eve")


def test_feedback_moves_the_kinds_sensitivity_once_per_alert(book: AlertBook) -> None:
    for i in range(6):
        row, _ = book.fire("o", volume(anomaly_id=f"anm_{i}"))
        result = book.feedback("o", row.alert_id, "false_positive", None, "ann")
        book.resolve("o", row.alert_id, "ann", None)
    assert book.sensitivities("o")["volume"] == 0.05  # floor after five steps of 0.1
    assert result["sensitivity"]["false_positives"] == 6
    again = book.feedback("o", row.alert_id, "false_positive", "still wrong", "ann")
    assert again["sensitivity"]["false_positives"] == 6  # the same verdict counts once
    with pytest.raises(ConflictError):
        book.feedback("o", row.alert_id, "true_positive", None, "ann")
    with pytest.raises(ValidationError):
        book.feedback("o", row.alert_id, "maybe", None, "ann")
    assert book.sensitivities("other")["volume"] == 0.5


def test_feedback_on_a_threshold_alert_changes_no_sensitivity(book: AlertBook) -> None:
    row, _ = book.fire(
        "o",
        Firing(source="threshold", fingerprint="threshold|r", metric="requests", message="m"),
    )
    result = book.feedback("o", row.alert_id, "true_positive", None, "ann")
    assert result["sensitivity"] is None and result["alert"]["feedback"]["verdict"] == (
        "true_positive"
    )
    assert book.sensitivities("o") == dict.fromkeys(book.sensitivities("o"), 0.5)


def test_list_filters_are_checked(book: AlertBook) -> None:
    with pytest.raises(ValidationError) as exc:
        book.list("o", status="closed", source="email", kind="weather", page=0, limit=1000)
    fields = {p["field"] for p in exc.value.validation_errors or []}
    assert fields == {"status", "source", "kind", "page", "limit"}
