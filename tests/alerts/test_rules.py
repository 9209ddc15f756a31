"""Rule validation and storage: the seed's threshold shape, filters, notify targets,
secrets that are kept but never shown."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from meterline.alerts import RuleStore, parse_rule
from meterline.clock import FrozenClock
from meterline.errors import NotFoundError, ValidationError
from meterline.metadb import engine_from_url, migrate


def fields_of(exc: pytest.ExceptionInfo[ValidationError]) -> set[str]:
    return {p["field"] for p in exc.value.validation_errors or []}


def test_the_seed_threshold_shape_with_filters() -> None:
    values = parse_rule(
        {
            "name": "errors on orders",
            "metric": "error_rate",
            "condition": "above",
            "value": 0.05,
            "duration": "5m",
            "filters": {"route": "/orders/:id", "region": ["US", "DE"]},
        }
    )
    assert values["type"] == "threshold" and values["duration"] == 300.0
    assert values["window_seconds"] == 60.0
    assert json.loads(values["filters"]) == [
        {"field": "route", "op": "eq", "value": "/orders/:id"},
        {"field": "region", "op": "in", "value": ["US", "DE"]},
    ]


def test_every_problem_is_named() -> None:
    with pytest.raises(ValidationError) as exc:
        parse_rule(
            {
                "name": "",
                "metric": "requests",
                "condition": "over",
                "value": True,
                "duration": "forever",
                "filters": [{"field": "colour", "op": "eq", "value": "red"}],
                "notify": {"webhook": {"url": "ftp://x"}, "email": ["not an address"]},
                "severity": "high",
            }
        )
    assert fields_of(exc) >= {
        "name",
        "condition",
        "value",
        "duration",
        "notify.webhook.url",
        "notify.email",
        "severity",
    }
    assert any(f.startswith("filters") for f in fields_of(exc))


def test_a_ratio_threshold_is_a_fraction() -> None:
    with pytest.raises(ValidationError) as exc:
        parse_rule({"name": "x", "metric": "error_rate", "condition": "above", "value": 5})
    assert "0.05" in (exc.value.validation_errors or [{}])[0]["message"]


def test_anomaly_rules_name_known_kinds() -> None:
    values = parse_rule({"name": "all", "type": "anomaly"})
    assert json.loads(values["kinds"]) == [] and values["metric"] is None
    with pytest.raises(ValidationError) as exc:
        parse_rule({"name": "x", "type": "anomaly", "kinds": ["weather"], "min_score": -1})
    assert fields_of(exc) == {"kinds", "min_score"}


def test_store_hides_and_keeps_the_webhook_secret(tmp_path: Path) -> None:
    engine = engine_from_url(f"sqlite:///{tmp_path / 'm.db'}")
    migrate(engine)
    store = RuleStore(engine, FrozenClock(time.time()))
    hook = {"url": "https://hooks.example/a", "secret": "0123456789abcdef"}
    made = store.create(
        "org1",
        {
            "name": "r",
            "metric": "requests",
            "condition": "below",
            "value": 1,
            "notify": {"webhook": hook},
        },
    )
    assert made["notify"]["webhook"] == {"url": hook["url"], "secret_set": True}
    assert "0123456789abcdef" not in json.dumps(store.list("org1"))
    changed = store.update(
        "org1", made["rule_id"], {"value": 2, "notify": {"webhook": {"url": hook["url"]}}}
    )
    assert changed["value"] == 2 and changed["notify"]["webhook"]["secret_set"] is True
    (row,) = store.rows("org1")
    assert json.loads(row.notify)["webhook"]["secret"] == hook["secret"]
    with pytest.raises(NotFoundError):
        store.get("org2", made["rule_id"])  # another org's rule is not found
    store.delete("org1", made["rule_id"])
    assert store.list("org1") == []
    engine.dispose()
