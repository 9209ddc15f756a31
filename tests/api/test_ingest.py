"""``POST /v2/events`` on a real server: formats, limits, per-item rejection, idempotency."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.api.conftest import bearer
from tests.helpers import ServerProcess, Tenant, eventually

pytestmark = pytest.mark.e2e


def ev(i: int, **extra: Any) -> dict[str, Any]:
    return {"event_id": f"e{i}", "path": f"/items/{i}", "status": 200, "latency_ms": 5, **extra}


def count(server: ServerProcess, tenant: Tenant) -> int:
    token = server.token(tenant.reader_id, tenant.reader_secret)
    response = httpx.get(f"{server.url}/v2/analytics/overview?range=1h", headers=bearer(token))
    return int(response.json()["total_requests"])


def test_bad_items_are_rejected_one_by_one(
    server: ServerProcess, new_tenant: Callable[..., Tenant]
) -> None:
    tenant = new_tenant()
    batch = [ev(1), {"path": "/x", "status": 200}, ev(2, status=999), "not an object", ev(3)]
    response = httpx.post(f"{server.url}/v2/events", json=batch, headers=bearer(tenant.ingest_key))
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 2
    assert [r["index"] for r in body["rejected"]] == [1, 2, 3]
    assert all(r["code"] == "VALIDATION_ERROR" and r["message"] for r in body["rejected"])
    assert "event_id" in body["rejected"][0]["message"]
    assert "status" in body["rejected"][1]["message"]
    eventually(lambda: _assert_equal(count(server, tenant), 2))


def _assert_equal(got: object, want: object) -> None:
    assert got == want


def test_resent_batch_counts_once(server: ServerProcess, new_tenant: Callable[..., Tenant]) -> None:
    tenant = new_tenant()
    batch = [ev(i) for i in range(50)]
    first = httpx.post(
        f"{server.url}/v2/events", json=batch, headers=bearer(tenant.ingest_key)
    ).json()
    again = httpx.post(
        f"{server.url}/v2/events", json=batch + [ev(50)], headers=bearer(tenant.ingest_key)
    ).json()
    assert first["accepted"] == 50 and first["duplicates"] == 0
    assert again == {"accepted": 1, "duplicates": 50, "rejected": []}
    within = httpx.post(
        f"{server.url}/v2/events", json=[ev(99), ev(99)], headers=bearer(tenant.ingest_key)
    ).json()
    assert within["accepted"] == 1 and within["duplicates"] == 1
    eventually(lambda: _assert_equal(count(server, tenant), 52))


def test_same_event_id_in_two_orgs_is_two_events(
    server: ServerProcess, new_tenant: Callable[..., Tenant]
) -> None:
    one, two = new_tenant(), new_tenant()
    for tenant in (one, two):
        body = httpx.post(
            f"{server.url}/v2/events", json=[ev(1)], headers=bearer(tenant.ingest_key)
        ).json()
        assert body["accepted"] == 1


def test_all_body_formats(server: ServerProcess, new_tenant: Callable[..., Tenant]) -> None:
    tenant = new_tenant()
    auth = bearer(tenant.ingest_key)
    ndjson = "\n".join(json.dumps(ev(i)) for i in range(10, 13)).encode()
    cases = [
        (json.dumps({"events": [ev(1), ev(2)]}).encode(), {"Content-Type": "application/json"}, 2),
        (ndjson, {"Content-Type": "application/x-ndjson"}, 3),
        (
            gzip.compress(json.dumps([ev(20), ev(21)]).encode()),
            {"Content-Type": "application/json", "Content-Encoding": "gzip"},
            2,
        ),
        (
            gzip.compress(ndjson.replace(b'"e1', b'"g1')),
            {"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"},
            3,
        ),
    ]
    for body, headers, accepted in cases:
        response = httpx.post(f"{server.url}/v2/events", content=body, headers={**auth, **headers})
        assert response.status_code == 202, response.text
        assert response.json()["accepted"] == accepted
    good = b'{"event_id": "n%d", "path": "/a", "status": 200}'
    bad_line = b"\n".join([good % 1, b"{broken", good % 2])
    response = httpx.post(
        f"{server.url}/v2/events",
        content=bad_line,
        headers={**auth, "Content-Type": "application/x-ndjson"},
    )
    assert response.json()["accepted"] == 2
    assert response.json()["rejected"][0]["index"] == 1


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (b"{not json", {"Content-Type": "application/json"}, 400, "VALIDATION_ERROR"),
        (b"hello", {"Content-Type": "text/plain"}, 415, "UNSUPPORTED_MEDIA_TYPE"),
        (
            b"[]",
            {"Content-Type": "application/json", "Content-Encoding": "br"},
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            b"\x1f\x8bnot really gzip",
            {"Content-Type": "application/json", "Content-Encoding": "gzip"},
            400,
            "VALIDATION_ERROR",
        ),
        (b'{"events": 5}', {"Content-Type": "application/json"}, 400, "VALIDATION_ERROR"),
    ],
)
def test_unreadable_bodies(
    server: ServerProcess,
    tenants: tuple[Tenant, Tenant],
    body: bytes,
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    response = httpx.post(
        f"{server.url}/v2/events",
        content=body,
        headers={**bearer(tenants[0].ingest_key), **headers},
    )
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code
    assert error["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text


def test_limits_are_413(server: ServerProcess, tenants: tuple[Tenant, Tenant]) -> None:
    auth = bearer(tenants[0].ingest_key)
    too_many = [{"event_id": f"x{i}"} for i in range(10_001)]
    response = httpx.post(f"{server.url}/v2/events", json=too_many, headers=auth)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    huge = b"[" + b" " * (10 * 1024 * 1024 + 10) + b"]"
    response = httpx.post(
        f"{server.url}/v2/events",
        content=huge,
        headers={**auth, "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    bomb = gzip.compress(b"[" + b" " * (40 * 1024 * 1024) + b"]")
    response = httpx.post(
        f"{server.url}/v2/events",
        content=bomb,
        headers={**auth, "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 413


def test_events_need_write_permission(
    server: ServerProcess, tenants: tuple[Tenant, Tenant]
) -> None:
    reader = server.token(tenants[0].reader_id, tenants[0].reader_secret)
    response = httpx.post(f"{server.url}/v2/events", json=[ev(1)], headers=bearer(reader))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "AUTH_SCOPE_INSUFFICIENT"
    writer = server.token(tenants[0].client_id, tenants[0].client_secret, scope="events:write")
    response = httpx.post(f"{server.url}/v2/events", json=[ev(7777)], headers=bearer(writer))
    assert response.status_code == 202
