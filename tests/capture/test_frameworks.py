"""Each framework's example app, driven through the framework's own request stack, and
the events that reach a real Meterline server: routes as templates, statuses, sizes,
consumers from ``identify``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from meterline.capture import CaptureClient
from tests.capture.conftest import Org, load_example, serving
from tests.helpers import eventually

pytestmark = pytest.mark.e2e

BODY = b"x" * 300
ACME = {"X-Customer": "acme", "User-Agent": "capture-test/1"}

Get = Callable[[str, dict[str, str]], Any]
Post = Callable[[str, bytes, dict[str, str]], Any]


def drive(get: Get, post: Post) -> None:
    """The same traffic for every framework."""
    for order in (1, 2, 3):
        get(f"/orders/{order}", ACME)
    get("/orders/77", {"X-Customer": "globex"})
    for _ in range(2):
        post("/orders", BODY, ACME)
    get("/boom", ACME)
    get("/nowhere/12345", ACME)
    # An exception in the app: the client still gets the framework's 500, the next
    # request is served as usual, and both are captured.
    # (uvicorn drops the connection of a request whose app raised, hence a new one after)
    crashed = get("/crash", {**ACME, "Connection": "close"})
    assert crashed.status_code == 500
    assert get("/orders/4", {"X-Customer": "globex"}).status_code == 200


def check(org: Org, capture: CaptureClient, *, boom: int = 503) -> None:
    """What :func:`drive` sent is what the server reports."""
    assert capture.flush(timeout=20)
    assert capture.exporter is not None
    assert capture.exporter.stats.dropped == 0
    want = {
        ("GET", "/orders/:order_id", 200, "acme"): 3,
        ("GET", "/orders/:order_id", 200, "globex"): 2,
        ("GET", "/crash", 500, "acme"): 1,
        ("POST", "/orders", 201, "acme"): 2,
        ("GET", "/boom", boom, "acme"): 1,
    }
    # No framework route matched: the path is normalised instead.
    want[("GET", "/nowhere/:id", 404, "acme")] = 1

    def seen() -> dict[tuple[str, str, int, str], dict[str, Any]]:
        got = org.by_request()
        assert {k: int(v["requests"]) for k, v in got.items()} == want
        return got

    got = eventually(seen)
    created = got[("POST", "/orders", 201, "acme")]
    # Two 300-byte request bodies and two {"bytes":300} answers, give or take spacing.
    assert 2 * 300 + 2 * 13 <= created["bandwidth_bytes"] <= 2 * 300 + 2 * 20
    assert all(row["latency_avg"] > 0 for row in got.values())


def capture_client(org: Org, identify: Any) -> CaptureClient:
    return CaptureClient(org.server.url, org.key, identify=identify, interval=0.1)


def run(app: Any, kind: str) -> None:
    with serving(app, kind) as http:
        drive(
            lambda p, h: http.get(p, headers=h),
            lambda p, b, h: http.post(p, content=b, headers=h),
        )


def test_fastapi(org: Org) -> None:
    example = load_example("fastapi_app")
    capture = capture_client(org, example.customer)
    run(example.build(capture), "asgi")
    check(org, capture)
    capture.close()


def test_starlette(org: Org) -> None:
    example = load_example("starlette_app")
    capture = capture_client(org, example.customer)
    run(example.build(capture), "asgi")
    check(org, capture)
    capture.close()


def test_litestar(org: Org) -> None:
    example = load_example("litestar_app")
    capture = capture_client(org, example.customer)
    run(example.build(capture), "asgi")
    check(org, capture)
    capture.close()


def test_flask(org: Org) -> None:
    example = load_example("flask_app")
    capture = capture_client(org, example.customer)
    run(example.build(capture), "wsgi")
    check(org, capture)
    capture.close()


def test_django(org: Org) -> None:
    import django
    from django.core.handlers.wsgi import WSGIHandler

    from meterline.capture.django import settings_client

    example = load_example("django_app")
    example.configure(url=org.server.url, key=org.key, interval=0.1)
    django.setup()
    run(WSGIHandler(), "wsgi")
    capture = settings_client()
    check(org, capture)
    capture.close()


def test_litestar_unmatched_and_raised_paths() -> None:
    """Paths Litestar's router refuses (404, 405) and handlers that raise are captured
    with the status the client got; matched routes keep their template."""
    from tests.capture.sink import Sink

    sink = Sink()
    capture = CaptureClient(sink.url, "k_test.secret", interval=0.1)
    example = load_example("litestar_app")
    try:
        with serving(example.build(capture), "asgi") as http:
            answers = [
                http.get("/nowhere/77").status_code,
                http.delete("/orders/5").status_code,
                http.get("/crash").status_code,
                http.get("/boom").status_code,
                http.get("/orders/5").status_code,
            ]
        assert answers == [404, 405, 500, 503, 200]
        assert capture.flush(timeout=20)
        got = [(e["method"], e["route"], e["status"]) for e in sink.delivered()]
        assert got == [
            ("GET", "/nowhere/:id", 404),
            ("DELETE", "/orders/:id", 405),
            ("GET", "/crash", 500),
            ("GET", "/boom", 503),
            ("GET", "/orders/:order_id", 200),
        ]
    finally:
        capture.close()
        sink.close()
