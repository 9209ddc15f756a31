from __future__ import annotations

from pathlib import Path

import pytest

from meterline.errors import ConfigurationError
from meterline.events import RouteNormaliser


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/orders/123", "/orders/:id"),
        ("/orders/9f1c2d3e-1111-4222-8333-0123456789ab", "/orders/:id"),
        ("/orders/9f1c2d3e111142228333/items", "/orders/:id/items"),
        ("/users/jane.doe@example.com/profile", "/users/:email/profile"),
        ("/files/AbCdEfGhIjKlMnOpQrSt1234", "/files/:token"),
        ("/health", "/health"),
        ("/orders/123?expand=items", "/orders/:id"),
        ("/v2/analytics/overview/", "/v2/analytics/overview"),
        ("orders/5", "/orders/:id"),
        ("/", "/"),
        ("/deadbeef", "/deadbeef"),
    ],
)
def test_builtin_rules(path: str, route: str) -> None:
    assert RouteNormaliser().normalise(path) == route


def test_user_rules_win_and_can_use_groups() -> None:
    normaliser = RouteNormaliser([(r"/static/.*", "/static/*"), (r"/t/(\w+)/\d+", r"/t/\1/:n")])
    assert normaliser.normalise("/static/app/main.css") == "/static/*"
    assert normaliser.normalise("/t/shop/42") == "/t/shop/:n"
    assert normaliser.normalise("/orders/7") == "/orders/:id"


def test_rules_file_and_bad_rules(tmp_path: Path) -> None:
    rules = tmp_path / "route-rules.json"
    rules.write_text('[["/legacy/.*", "/legacy/*"]]')
    assert RouteNormaliser.from_file(rules).normalise("/legacy/a/b/c") == "/legacy/*"
    assert RouteNormaliser.from_file(tmp_path / "missing.json").normalise("/a/1") == "/a/:id"
    rules.write_text('{"not": "a list"}')
    with pytest.raises(ConfigurationError):
        RouteNormaliser.from_file(rules)
    with pytest.raises(ConfigurationError):
        RouteNormaliser([("(unclosed", "x")])
