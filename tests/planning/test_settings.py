"""Planning settings in a real metadata database (SQLite), migrated like the server's."""

from __future__ import annotations

from pathlib import Path

import pytest

from meterline.clock import FrozenClock
from meterline.errors import ValidationError
from meterline.metadb import engine_from_url, migrate
from meterline.planning.settings import SettingsStore, parse_settings


def test_settings_are_stored_per_org_updated_and_unset(tmp_path: Path) -> None:
    engine = engine_from_url(f"sqlite:///{tmp_path / 'meta.db'}")
    assert ("planning", 1) in migrate(engine)
    clock = FrozenClock(1000.0)
    store = SettingsStore(engine, clock)
    assert store.get("org_a").capacity_rpm is None
    store.update("org_a", parse_settings({"capacity_rpm": 1200}))
    clock.advance(5)
    after = store.update("org_a", parse_settings({"cost_per_million_requests": 2.5}))
    assert (after.capacity_rpm, after.cost_per_million_requests, after.updated_at) == (
        1200,
        2.5,
        1005.0,
    )
    assert store.get("org_b").capacity_rpm is None  # another org sees nothing
    assert store.update("org_a", parse_settings({"capacity_rpm": None})).capacity_rpm is None
    assert migrate(engine) == []  # applied once
    engine.dispose()


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"capacity_rpm": 0}, ["capacity_rpm"]),
        ({"capacity_rpm": float("inf")}, ["capacity_rpm"]),
        ({"capacity_rpm": "1000"}, ["capacity_rpm"]),
        ({"cost_per_million_requests": -1}, ["cost_per_million_requests"]),
        ({"capacity": 10}, ["capacity"]),
        ({}, ["body"]),
    ],
)
def test_bad_settings_name_the_field(body: dict[str, object], fields: list[str]) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_settings(body)
    assert [e["field"] for e in caught.value.validation_errors or []] == fields


def test_a_body_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(ValidationError, match="JSON object"):
        parse_settings([1200])
