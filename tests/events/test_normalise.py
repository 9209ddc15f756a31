from __future__ import annotations

import pytest

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
