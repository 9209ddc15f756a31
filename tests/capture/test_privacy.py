"""What a captured event holds: templates, no query strings, only allow-listed headers,
and the client IP from X-Forwarded-For only when the proxy is trusted."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI

from meterline.capture import CaptureClient, MeterlineMiddleware, normalise, template
from tests.capture.conftest import serving
from tests.capture.sink import Sink


@pytest.fixture
def sink() -> Iterator[Sink]:
    found = Sink()
    yield found
    found.close()


@pytest.mark.parametrize("trusted", [False, True])
def test_event_contents(sink: Sink, trusted: bool) -> None:
    client = CaptureClient(
        sink.url, "k", header_allowlist=("X-Request-Id",), trust_forwarded=trusted, interval=0.1
    )
    app = FastAPI()
    app.add_middleware(MeterlineMiddleware, client=client)

    @app.get("/users/{user_id}/keys/{key_id}")
    def key(user_id: str, key_id: int) -> dict[str, str]:
        return {"ok": "yes"}

    with serving(app, "asgi") as http:
        response = http.get(
            "/users/alice@example.com/keys/7?token=secret",
            headers={
                "Authorization": "Bearer secret",
                "X-Request-Id": "r-1",
                "X-Forwarded-For": "198.51.100.1, 10.0.0.1",
                "User-Agent": "probe/1",
            },
        )
        assert response.status_code == 200
    assert client.flush(timeout=10)
    [event] = sink.delivered()
    assert event["route"] == "/users/:user_id/keys/:key_id"
    assert "path" not in event
    assert "secret" not in str(event)
    assert event["properties"] == {"headers": {"x-request-id": "r-1"}}
    assert event["client_ip"] == ("198.51.100.1" if trusted else "127.0.0.1")
    assert event["user_agent"] == "probe/1"
    assert event["status"] == 200 and event["method"] == "GET"
    assert event["response_size"] == len(b'{"ok":"yes"}')
    client.close()


def test_templates_and_fallback() -> None:
    assert template("/orders/{order_id:int}") == "/orders/:order_id"
    assert template("orders/<int:order_id>/items/<slug>") == "/orders/:order_id/items/:slug"
    assert template("^api/(?P<pk>[0-9]+)/$") == "/api/:pk/"
    assert normalise("/files/550e8400-e29b-41d4-a716-446655440000/v/12?x=1") == ("/files/:id/v/:id")
