"""``GET /v2/stream/sse``: the read-only fallback, same auth and messages, resumable."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.helpers import ServerProcess, Tenant
from tests.realtime.traffic import ingest, traffic

pytestmark = [pytest.mark.e2e]


def _events(response: httpx.Response) -> Iterator[tuple[str | None, str, dict[str, Any]]]:
    """(id, event, data) of each Server-Sent Event."""
    event_id: str | None = None
    kind = "message"
    data: list[str] = []
    for line in response.iter_lines():
        if line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            data.append(line[6:])
        elif line == "" and data:
            yield event_id, kind, json.loads("\n".join(data))
            kind, data = "message", []


def _until(
    events: Iterator[tuple[str | None, str, dict[str, Any]]],
    check: Callable[[str, dict[str, Any]], bool],
) -> tuple[str | None, dict[str, Any], list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []
    for event_id, kind, data in events:
        seen.append(data)
        assert kind == data["type"]
        if check(kind, data):
            return event_id, data, seen
    raise AssertionError(f"stream ended; saw {seen}")


def test_sse_delivers_the_same_messages_and_resumes_with_last_event_id(
    stream_server: ServerProcess, stream_tenants: tuple[Tenant, Tenant]
) -> None:
    tenant = stream_tenants[0]
    token = stream_server.token(tenant.reader_id, tenant.reader_secret)
    url = (
        f"{stream_server.url}/v2/stream/sse?metrics=requests,error_rate&time_window=5m"
        "&endpoints=/sse/a,/sse/b,/sse/c&subscription_id=board&delivery_frequency=1s"
    )
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.stream("GET", url, headers=headers, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _events(response)
        _, connected, _ = _until(events, lambda k, _d: k == "connected")
        _, subscribed, _ = _until(events, lambda k, _d: k == "subscribed")
        assert subscribed["subscription_id"] == "board"
        assert subscribed["filters"]["endpoints"] == ["/sse/a", "/sse/b", "/sse/c"]
        _, snapshot, _ = _until(events, lambda k, _d: k == "metric_update")
        assert snapshot["seq"] == 1 and snapshot["metrics"][0]["name"] == "requests"
        ingest(stream_server, tenant, traffic(12, "/sse"))
        last_id, counted, _ = _until(
            events, lambda k, d: k == "metric_update" and d["metrics"][0]["value"] == 12
        )
    assert connected["connection_id"] and last_id
    # Reconnect as EventSource does, with the last id it saw: the same subscription
    # continues its sequence with a fresh snapshot that says nothing was lost.
    with httpx.stream(
        "GET", url, headers={**headers, "Last-Event-ID": last_id}, timeout=30
    ) as response:
        events = _events(response)
        _, resumed, _ = _until(events, lambda k, d: k == "metric_update" and not d.get("replayed"))
    assert resumed["seq"] > counted["seq"]
    assert resumed["recovered"] is True
    assert resumed["metrics"][0]["value"] == 12


def test_sse_takes_a_json_subscription_and_refuses_bad_credentials(
    stream_server: ServerProcess, stream_tenants: tuple[Tenant, Tenant]
) -> None:
    missing = httpx.get(f"{stream_server.url}/v2/stream/sse", timeout=30)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "AUTH_TOKEN_MISSING"
    tenant = stream_tenants[0]
    token = stream_server.token(tenant.reader_id, tenant.reader_secret)
    bad = httpx.get(
        f"{stream_server.url}/v2/stream/sse",
        params={"token": token, "subscribe": json.dumps({"subscription_id": "x", "metrics": []})},
        timeout=30,
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "VALIDATION_ERROR"
    subscription = {
        "subscription_id": "json",
        "metrics": ["requests"],
        "filters": {"time_window": "1m", "aggregation": "sum"},
    }
    with httpx.stream(
        "GET",
        f"{stream_server.url}/v2/stream/sse",
        params={"token": token, "subscribe": json.dumps([subscription])},
        timeout=30,
    ) as response:
        _, update, seen = _until(_events(response), lambda k, _d: k == "metric_update")
    assert [m["type"] for m in seen] == ["connected", "subscribed", "metric_update"]
    assert update["subscription_id"] == "json"
    assert update["aggregation"] == {"method": "sum", "bucket": "60s"}
