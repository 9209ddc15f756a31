"""``/v2/stream`` end to end: a real server process and a real WebSocket client."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from meterline.auth import AuthService
from meterline.metadb import engine_from_url
from tests.helpers import ServerProcess, Tenant, eventually, make_tenant
from tests.realtime.traffic import VOCAB
from tests.realtime.traffic import ingest as _ingest
from tests.realtime.traffic import traffic as _traffic
from tests.realtime.traffic import ws_url as _ws_url
from tests.realtime.wsclient import (
    closed_with,
    connect,
    recv_json,
    recv_until,
    run_async,
    send,
)

pytestmark = [pytest.mark.e2e]


def _reader_token(server: ServerProcess, tenant: Tenant) -> str:
    return server.token(tenant.reader_id, tenant.reader_secret)


def test_snapshot_on_subscribe_and_values_equal_post_query(
    stream_server: ServerProcess, stream_tenants: tuple[Tenant, Tenant]
) -> None:
    tenant = stream_tenants[0]
    token = _reader_token(stream_server, tenant)
    subs = {
        "all": {},
        "narrow": {"endpoints": ["/orders/a", "/orders/b"], "status_class": ["4xx", "5xx"]},
        "eu": {"regions": ["eu"], "methods": ["GET"]},
    }

    async def scenario() -> dict[str, dict[str, Any]]:
        ws = await connect(_ws_url(stream_server, f"?token={token}"))
        connected = await recv_json(ws)
        assert connected["type"] == "connected" and connected["heartbeat_interval"] == 20.0
        for sub_id, extra in subs.items():
            await send(
                ws,
                {
                    "action": "subscribe",
                    "subscription_id": sub_id,
                    "metrics": list(VOCAB),
                    "filters": {"time_window": "5m", "aggregation": "avg", **extra},
                    "delivery_frequency": "real_time",
                },
            )
            subscribed = await recv_json(ws)
            assert subscribed["type"] == "subscribed"
            assert subscribed["subscription_id"] == sub_id
            snapshot = await recv_json(ws)
            # The first snapshot comes at once, before any traffic or delivery tick.
            assert snapshot["type"] == "metric_update" and snapshot["seq"] == 1
            assert snapshot["subscription_id"] == sub_id
            assert [m["name"] for m in snapshot["metrics"]] == list(VOCAB)
        _ingest(stream_server, tenant, _traffic(700))
        latest: dict[str, dict[str, Any]] = {}
        # Wait until every subscription has an update that counts the new traffic (an
        # update sent before the batch landed has an earlier, emptier window).
        while (
            len(latest) < len(subs)
            or latest["all"]["metrics"][0]["value"] < 700
            or any(m["metrics"][0]["value"] == 0 for m in latest.values())
        ):
            message = await recv_until(ws, lambda m: m["type"] == "metric_update")
            latest[message["subscription_id"]] = message
        await ws.close()
        return latest

    latest = run_async(scenario())
    filters_for = {
        "all": [],
        "narrow": [
            {"field": "route", "op": "in", "value": ["/orders/a", "/orders/b"]},
            {"field": "status_class", "op": "in", "value": ["4xx", "5xx"]},
        ],
        "eu": [
            {"field": "region", "op": "in", "value": ["eu"]},
            {"field": "method", "op": "in", "value": ["GET"]},
        ],
    }
    for sub_id, update in latest.items():
        live = {m["name"]: m["value"] for m in update["metrics"]}
        assert {m["name"]: m["unit"] for m in update["metrics"]}["p95_latency"] == "ms"

        def check(sub_id: str = sub_id, live: dict[str, Any] = live) -> None:
            response = httpx.post(
                f"{stream_server.url}/v2/query",
                json={
                    "metrics": sorted(set(VOCAB.values())),
                    "start": latest[sub_id]["window"]["from"],
                    "end": latest[sub_id]["window"]["to"],
                    "filters": filters_for[sub_id],
                },
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
            assert response.status_code == 200, response.text
            row = response.json()["data"][0]
            assert {name: row[vocab] for name, vocab in VOCAB.items()} == live

        eventually(check)
    assert latest["narrow"]["metrics"][0]["value"] < latest["all"]["metrics"][0]["value"]


def test_other_orgs_traffic_never_reaches_a_subscription(
    stream_server: ServerProcess, stream_tenants: tuple[Tenant, Tenant]
) -> None:
    ours, theirs = stream_tenants
    token = _reader_token(stream_server, theirs)

    async def scenario() -> list[dict[str, Any]]:
        ws = await connect(_ws_url(stream_server, f"?token={token}"))
        await recv_json(ws)
        await send(
            ws,
            {
                "action": "subscribe",
                "subscription_id": "x",
                "metrics": ["requests"],
                "filters": {"time_window": "5m", "endpoints": ["/iso/a"]},
            },
        )
        await recv_json(ws)
        first = await recv_json(ws)
        _ingest(stream_server, ours, _traffic(30, "/iso"))
        # A ping after the ingest: whatever is delivered before the pong is all there is.
        await asyncio.sleep(1.0)
        await send(ws, {"action": "ping", "id": "p"})
        seen = [first]
        while True:
            message = await recv_json(ws)
            if message["type"] == "pong":
                break
            seen.append(message)
        await ws.close()
        return seen

    for message in run_async(scenario()):
        if message["type"] == "metric_update":
            assert message["metrics"][0]["value"] == 0


def _origin(server: ServerProcess) -> str:
    return f"http://127.0.0.1:{server.port}"


async def _denied(url: str, **kwargs: Any) -> tuple[int, dict[str, Any], str]:
    """The HTTP answer to an upgrade the server refuses: status, error body, and its
    WWW-Authenticate header."""
    with pytest.raises(websockets.InvalidStatus) as refused:
        await connect(url, **kwargs)
    response = refused.value.response
    return (
        response.status_code,
        json.loads(response.body or b"{}"),
        response.headers.get("WWW-Authenticate", ""),
    )


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("", "AUTH_TOKEN_MISSING"),
        ("?token=not-a-token", "AUTH_TOKEN_INVALID"),
        ("?ticket=t_unknown", "AUTH_TOKEN_INVALID"),
    ],
)
def test_bad_credentials_are_refused_before_the_upgrade_with_401(
    stream_server: ServerProcess, query: str, error: str
) -> None:
    status, body, challenge = run_async(_denied(_ws_url(stream_server, query)))
    assert status == 401
    assert body["error"]["code"] == error
    assert body["error"]["message"] and body["error"]["request_id"].startswith("req_")
    assert challenge.startswith("Bearer")


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("", "AUTH_TOKEN_MISSING"),
        ("?token=not-a-token", "AUTH_TOKEN_INVALID"),
        ("?ticket=t_unknown", "AUTH_TOKEN_INVALID"),
    ],
)
def test_a_browser_with_bad_credentials_gets_an_error_frame_then_4401(
    stream_server: ServerProcess, query: str, error: str
) -> None:
    # A browser (it sends Origin) sees only close code 1006 for a refused upgrade, so
    # it is accepted, told why, and closed in the do-not-reconnect range.
    async def scenario() -> tuple[list[dict[str, Any]], int]:
        ws = await connect(_ws_url(stream_server, query), origin=_origin(stream_server))
        return await closed_with(ws)

    frames, closed = run_async(scenario())
    assert closed == 4401
    assert frames[-1]["type"] == "error" and frames[-1]["error"]["code"] == error


def test_token_without_analytics_scope_is_refused_403_or_closed_4403(
    stream_server: ServerProcess, stream_tenants: tuple[Tenant, Tenant]
) -> None:
    tenant = stream_tenants[0]
    token = stream_server.token(tenant.client_id, tenant.client_secret, scope="reports:read")
    url = _ws_url(stream_server, f"?token={token}")

    async def scenario() -> tuple[tuple[int, dict[str, Any], str], list[dict[str, Any]], int]:
        denied = await _denied(url)
        frames, closed = await closed_with(await connect(url, origin=_origin(stream_server)))
        return denied, frames, closed

    (status, body, _), frames, closed = run_async(scenario())
    assert status == 403 and body["error"]["code"] == "AUTH_SCOPE_INSUFFICIENT"
    assert "analytics:read" in json.dumps(body)
    assert closed == 4403
    assert frames[-1]["error"]["code"] == "AUTH_SCOPE_INSUFFICIENT"


def test_subprotocol_bearer_and_authorization_header(
    stream_server: ServerProcess, stream_tenants: tuple[Tenant, Tenant]
) -> None:
    token = _reader_token(stream_server, stream_tenants[0])
    encoded = base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")

    async def scenario() -> tuple[str | None, str, str]:
        ws = await connect(
            _ws_url(stream_server), subprotocols=["meterline.v2", f"meterline.bearer.{encoded}"]
        )
        first = await recv_json(ws)
        chosen = ws.subprotocol
        await ws.close()
        ws2 = await connect(
            _ws_url(stream_server), additional_headers={"Authorization": f"Bearer {token}"}
        )
        second = await recv_json(ws2)
        await ws2.close()
        return chosen, first["type"], second["type"]

    assert run_async(scenario()) == ("meterline.v2", "connected", "connected")


def test_ticket_opens_one_connection_only(
    stream_server: ServerProcess, stream_tenants: tuple[Tenant, Tenant]
) -> None:
    token = _reader_token(stream_server, stream_tenants[0])
    response = httpx.post(
        f"{stream_server.url}/v2/stream/tickets",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    ticket = response.json()["ticket"]

    async def scenario() -> tuple[str, int, str]:
        ws = await connect(_ws_url(stream_server, f"?ticket={ticket}"))
        first = await recv_json(ws)
        await ws.close()
        status, body, _ = await _denied(_ws_url(stream_server, f"?ticket={ticket}"))
        return first["type"], status, body["error"]["code"]

    assert run_async(scenario()) == ("connected", 401, "AUTH_TOKEN_INVALID")
    log = (stream_server.data_dir / "server.log").read_text()
    assert "WebSocket /v2/stream?ticket=[redacted]" in log
    assert ticket not in log and token not in log


def test_bad_messages_get_error_frames_and_the_connection_stays_open(
    stream_server: ServerProcess, stream_tenants: tuple[Tenant, Tenant]
) -> None:
    token = _reader_token(stream_server, stream_tenants[0])

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], int]:
        ws = await connect(_ws_url(stream_server, f"?token={token}"))
        await recv_json(ws)
        await send(
            ws,
            {
                "action": "subscribe",
                "subscription_id": "bad",
                "metrics": ["nope"],
                "filters": {"time_window": "5 minutes"},
                "delivery_frequency": "sometimes",
            },
        )
        invalid = await recv_json(ws)
        await send(ws, {"action": "dance"})
        unknown = await recv_json(ws)
        await send(ws, {"action": "ping", "id": 7})
        pong = await recv_json(ws)
        await ws.send("x" * (70 * 1024))
        _, code = await closed_with(ws)
        return invalid, unknown, pong, code

    invalid, unknown, pong, code = run_async(scenario())
    assert invalid["type"] == "error" and invalid["subscription_id"] == "bad"
    assert invalid["error"]["code"] == "VALIDATION_ERROR"
    fields = {e["field"] for e in invalid["error"]["validation_errors"]}
    assert fields == {"metrics", "filters.time_window", "delivery_frequency"}
    assert unknown["error"]["code"] == "UNKNOWN_ACTION"
    assert pong == {"type": "pong", "id": 7, "timestamp": pong["timestamp"]}
    assert code == 1009


def _short_token(data_dir: Path, tenant: Tenant, seconds: int) -> str:
    engine = engine_from_url(f"sqlite:///{(data_dir / 'metadata.db').resolve()}")
    try:
        auth = AuthService(engine)
        return auth.signer.issue(
            tenant.reader_id, tenant.org_id, ("analytics:read",), now=time.time() - 3600 + seconds
        )
    finally:
        engine.dispose()


def test_expiring_token_warns_then_closes_4001(
    stream_server: ServerProcess, stream_tenants: tuple[Tenant, Tenant]
) -> None:
    token = _short_token(stream_server.data_dir, stream_tenants[0], 3)

    async def scenario() -> tuple[list[dict[str, Any]], int]:
        return await closed_with(await connect(_ws_url(stream_server, f"?token={token}")))

    frames, code = run_async(scenario())
    kinds = [f["type"] for f in frames]
    assert kinds[0] == "connected" and "token_expiring" in kinds and kinds[-1] == "error"
    assert frames[-1]["error"]["code"] == "AUTH_TOKEN_INVALID"
    assert "Token expired at" in frames[-1]["error"]["details"]
    assert code == 4001


def test_refresh_keeps_the_connection(
    stream_server: ServerProcess, stream_tenants: tuple[Tenant, Tenant]
) -> None:
    tenant = stream_tenants[0]
    short = _short_token(stream_server.data_dir, tenant, 3)
    fresh = _reader_token(stream_server, tenant)
    other = _reader_token(stream_server, stream_tenants[1])

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        ws = await connect(_ws_url(stream_server, f"?token={short}"))
        await recv_until(ws, lambda m: m["type"] == "token_expiring")
        await send(ws, {"action": "refresh", "token": other})
        refused = await recv_json(ws)
        await send(ws, {"action": "refresh", "token": fresh})
        refreshed = await recv_json(ws)
        await asyncio.sleep(5)  # past the old expiry plus grace
        await send(ws, {"action": "ping", "id": "still-here"})
        pong = await recv_until(ws, lambda m: m["type"] == "pong")
        await ws.close()
        return refused, refreshed, pong

    refused, refreshed, pong = run_async(scenario())
    assert refused["error"]["code"] == "AUTH_TOKEN_INVALID"
    assert refreshed["type"] == "token_refreshed"
    assert pong["id"] == "still-here"


def test_threshold_alert_fires_and_resolves_once_and_survives_reconnect(
    stream_server: ServerProcess, stream_tenants: tuple[Tenant, Tenant]
) -> None:
    tenant = stream_tenants[0]
    token = _reader_token(stream_server, tenant)
    route = f"/alerting/{uuid.uuid4().hex[:8]}"
    subscribe = {
        "action": "subscribe",
        "subscription_id": "alerts_monitor",
        "metrics": ["requests"],
        "filters": {"time_window": "5m", "endpoints": [route]},
        "delivery_frequency": "1s",
        "alert_thresholds": {"requests": {"condition": "above", "value": 4, "duration": "0s"}},
    }

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        ws = await connect(_ws_url(stream_server, f"?token={token}"))
        await recv_json(ws)
        await send(ws, subscribe)
        _ingest(stream_server, tenant, [{**e, "route": route} for e in _traffic(6)])
        fired = await recv_until(ws, lambda m: m["type"] == "alert")
        # Further updates above the threshold bring no second firing.
        updates = 0
        while updates < 3:
            message = await recv_json(ws)
            assert message["type"] != "alert"
            updates += message["type"] == "metric_update"
        await ws.close()
        ws2 = await connect(_ws_url(stream_server, f"?token={token}"))
        await recv_json(ws2)
        await send(ws2, subscribe)
        replay = await recv_until(ws2, lambda m: m["type"] == "alert")
        await ws2.close()
        return [fired], [replay]

    first, replay = run_async(scenario())
    assert first[0]["state"] == "firing" and first[0]["metric"] == "requests"
    assert first[0]["value"] == 6 and first[0]["threshold"] == 4
    # The reconnected subscription hears of the same alert, not a new one.
    assert replay[0]["alert_id"] == first[0]["alert_id"] and replay[0]["state"] == "firing"


def test_resume_continues_seq_on_the_same_node_and_resyncs_across_epochs(
    stream_server: ServerProcess, stream_tenants: tuple[Tenant, Tenant]
) -> None:
    token = _reader_token(stream_server, stream_tenants[0])
    base = {"action": "subscribe", "subscription_id": "r", "metrics": ["requests"]}

    async def scenario() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        ws = await connect(_ws_url(stream_server, f"?token={token}"))
        epoch = (await recv_json(ws))["epoch"]
        await send(ws, {**base, "resume": {"seq": 41, "epoch": epoch}})
        await recv_json(ws)
        same_node = await recv_json(ws)
        await send(ws, {**base, "resume": {"seq": 41, "epoch": "another-boot"}})
        frames = [await recv_json(ws) for _ in range(3)]
        await ws.close()
        return same_node, frames

    same_node, frames = run_async(scenario())
    assert same_node["type"] == "metric_update" and same_node["seq"] == 42
    assert [f["type"] for f in frames] == ["subscribed", "resync", "metric_update"]
    assert frames[1]["reason"] == "node_restart"


def test_resume_replays_missed_updates_and_alert_events_once(
    stream_server: ServerProcess, stream_tenants: tuple[Tenant, Tenant]
) -> None:
    tenant = stream_tenants[0]
    token = _reader_token(stream_server, tenant)
    route = f"/resume/{uuid.uuid4().hex[:8]}"
    subscribe = {
        "action": "subscribe",
        "subscription_id": "watch",
        "metrics": ["requests"],
        "filters": {"time_window": "5m", "endpoints": [route]},
        "delivery_frequency": "1s",
        "alert_thresholds": {"requests": {"condition": "above", "value": 2, "duration": "0s"}},
    }

    async def scenario() -> dict[str, Any]:
        out: dict[str, Any] = {}
        ws = await connect(_ws_url(stream_server, f"?token={token}"))
        epoch = (await recv_json(ws))["epoch"]
        await send(ws, subscribe)
        await recv_until(ws, lambda m: m["type"] == "metric_update")
        _ingest(stream_server, tenant, [{**e, "route": route} for e in _traffic(5)])
        alert = await recv_until(ws, lambda m: m["type"] == "alert")
        counted = await recv_until(
            ws, lambda m: m["type"] == "metric_update" and m["metrics"][0]["value"] == 5
        )
        await ws.close()
        # The client last saw the snapshot (seq 1) and nothing after: everything it
        # missed comes back, marked replayed, then a snapshot that says nothing was lost.
        ws = await connect(_ws_url(stream_server, f"?token={token}"))
        await recv_json(ws)
        resume = {"seq": 1, "epoch": epoch, "last_alert_id": "0"}
        await send(ws, {**subscribe, "resume": resume})
        frames = [await recv_json(ws)]
        while not (frames[-1]["type"] == "metric_update" and not frames[-1].get("replayed")):
            frames.append(await recv_json(ws))
        out["after_gap"] = frames
        await ws.close()
        # A client that saw everything gets no alert again (not even the firing one).
        ws = await connect(_ws_url(stream_server, f"?token={token}"))
        await recv_json(ws)
        last = out["after_gap"][-1]["seq"]
        resume = {"seq": last, "epoch": epoch, "last_alert_id": alert["event_id"]}
        await send(ws, {**subscribe, "resume": resume})
        await asyncio.sleep(1.5)
        await send(ws, {"action": "ping", "id": "end"})
        rest = [await recv_json(ws)]
        while rest[-1]["type"] != "pong":
            rest.append(await recv_json(ws))
        out["caught_up"] = rest
        await ws.close()
        out["alert"], out["counted"] = alert, counted
        return out

    out = run_async(scenario())
    alert, frames = out["alert"], out["after_gap"]
    assert alert["state"] == "firing" and alert["event_id"]
    replayed = [f for f in frames if f.get("replayed")]
    updates = [f for f in replayed if f["type"] == "metric_update"]
    assert [u["seq"] for u in updates] == list(range(2, 2 + len(updates)))
    assert updates[-1]["metrics"][0]["value"] == 5
    assert [f["alert_id"] for f in replayed if f["type"] == "alert"] == [alert["alert_id"]]
    snapshot = frames[-1]
    assert snapshot["seq"] == updates[-1]["seq"] + 1 and snapshot["recovered"] is True
    assert all(f["type"] != "alert" for f in out["caught_up"])
    assert all(f["type"] != "resync" for f in out["caught_up"])


def test_aggregation_combines_minutes_as_post_query_buckets_them(
    stream_server: ServerProcess, stream_tenants: tuple[Tenant, Tenant]
) -> None:
    tenant = stream_tenants[0]
    token = _reader_token(stream_server, tenant)
    route = f"/agg/{uuid.uuid4().hex[:8]}"
    _ingest(stream_server, tenant, [{**e, "route": route} for e in _traffic(240)])

    async def scenario() -> dict[str, dict[str, Any]]:
        ws = await connect(_ws_url(stream_server, f"?token={token}"))
        await recv_json(ws)
        out: dict[str, dict[str, Any]] = {}
        for method in ("max", "min", "sum", "raw", "p95"):
            await send(
                ws,
                {
                    "action": "subscribe",
                    "subscription_id": method,
                    "metrics": ["requests", "p95_latency"],
                    "filters": {"time_window": "5m", "aggregation": method, "endpoints": [route]},
                    "delivery_frequency": "1s",
                },
            )
            await recv_until(ws, lambda m: m["type"] == "subscribed")
            out[method] = await recv_until(ws, lambda m: m["type"] == "metric_update")
        # Later deliveries too come from a computation with the subscription's own
        # aggregation (identical subscriptions share one; these differ only by it).
        while len(later) < len(out):
            update = await recv_until(ws, lambda m: m["type"] == "metric_update" and m["seq"] > 1)
            later[update["subscription_id"]] = update
        await ws.close()
        return out

    later: dict[str, dict[str, Any]] = {}

    def check() -> None:
        later.clear()
        out = run_async(scenario())
        assert {k: v["aggregation"]["method"] for k, v in later.items()} == {k: k for k in later}
        window = out["max"]["window"]
        response = httpx.post(
            f"{stream_server.url}/v2/query",
            json={
                "metrics": ["requests", "latency_p95"],
                "start": window["from"],
                "end": window["to"],
                "granularity": "minute",
                "filters": [{"field": "route", "op": "eq", "value": route}],
            },
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        rows = response.json()["data"]
        requests = [r["requests"] for r in rows]
        assert sum(requests) == 240
        for method in ("max", "min", "sum", "p95"):
            assert out[method]["window"] == window, "the windows moved on; try again"
        values = {k: {m["name"]: m["value"] for m in v["metrics"]} for k, v in out.items()}
        assert values["max"]["requests"] == max(requests)
        assert values["min"]["requests"] == min(requests)
        assert values["sum"]["requests"] == 240
        assert values["raw"]["requests"] == 240
        p95s = [r["latency_p95"] for r in rows if r["latency_p95"] is not None]
        assert values["max"]["p95_latency"] == max(p95s)
        points = out["raw"]["metrics"][0]["points"]
        assert [p["value"] for p in points] == requests
        assert out["max"]["aggregation"] == {"method": "max", "bucket": "60s"}

    eventually(check, timeout=30)


def test_session_cookie_needs_this_servers_origin(
    stream_server: ServerProcess, stream_tenants: tuple[Tenant, Tenant]
) -> None:
    tenant = stream_tenants[0]
    login = httpx.post(
        f"{stream_server.url}/login",
        data={"client_id": tenant.reader_id, "client_secret": tenant.reader_secret},
        timeout=30,
    )
    cookie = login.cookies["meterline_session"]

    async def scenario() -> tuple[tuple[list[dict[str, Any]], int], dict[str, Any]]:
        headers = {"Cookie": f"meterline_session={cookie}"}
        foreign = await connect(
            _ws_url(stream_server),
            additional_headers=headers,
            origin="http://evil.example",  # type: ignore[arg-type]
        )
        refused = await closed_with(foreign)
        own = await connect(
            _ws_url(stream_server),
            additional_headers=headers,
            origin=f"http://127.0.0.1:{stream_server.port}",  # type: ignore[arg-type]
        )
        connected = await recv_json(own)
        await own.close()
        return refused, connected

    (frames, code), connected = run_async(scenario())
    assert code == 1008
    assert frames[-1]["error"]["code"] == "ORIGIN_NOT_ALLOWED"
    assert "METERLINE_STREAM_ALLOWED_ORIGINS" in frames[-1]["error"]["details"]
    assert connected["type"] == "connected"
    log = (stream_server.data_dir / "server.log").read_text()
    assert "session cookie from a foreign origin" in log
    assert cookie not in log


def test_plan_limits_on_subscriptions_and_message_size(
    stream_server: ServerProcess, stream_tenants: tuple[Tenant, Tenant]
) -> None:
    basic = stream_tenants[1]
    token = _reader_token(stream_server, basic)

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], int]:
        ws = await connect(_ws_url(stream_server, f"?token={token}"))
        connected = await recv_json(ws)
        for i in range(11):
            await send(
                ws, {"action": "subscribe", "subscription_id": f"s{i}", "metrics": ["requests"]}
            )
        refused = await recv_until(ws, lambda m: m["type"] == "error")
        await ws.send(json.dumps({"action": "ping", "id": "x" * (20 * 1024)}))
        _, code = await closed_with(ws)
        return connected, refused, code

    connected, refused, code = run_async(scenario())
    assert connected["limits"]["max_subscriptions"] == 10
    assert connected["limits"]["max_message_bytes"] == 16 * 1024
    assert refused["subscription_id"] == "s10"
    assert refused["error"]["code"] == "QUOTA_EXCEEDED"
    assert code == 1009


def test_an_org_over_its_plans_streams_is_refused_429_before_the_upgrade_or_closed_4429(
    stream_server: ServerProcess, stream_dir: Path
) -> None:
    # A basic org of its own: 20 streams per node, all held here.
    tenant = make_tenant(stream_dir, "fullhouse", "basic")
    url = _ws_url(stream_server, f"?token={_reader_token(stream_server, tenant)}")

    async def scenario() -> tuple[Any, ...]:
        held = [await connect(url) for _ in range(20)]
        kinds = {(await recv_json(ws))["type"] for ws in held}
        with pytest.raises(websockets.InvalidStatus) as refused:
            await connect(url)
        # A browser cannot read a refused upgrade: accepted, told why, closed 4429.
        frames, code = await closed_with(await connect(url, origin=_origin(stream_server)))
        await held[0].close()
        again = ""
        for _ in range(50):  # the server forgets the closed stream within a moment
            try:
                ws = await connect(url)
            except websockets.InvalidStatus:
                await asyncio.sleep(0.1)
                continue
            again = (await recv_json(ws))["type"]
            await ws.close()
            break
        for ws in held[1:]:
            await ws.close()
        return kinds, refused.value.response, frames, code, again

    kinds, response, frames, code, again = run_async(scenario())
    assert kinds == {"connected"}
    assert response.status_code == 429
    body = json.loads(response.body or b"{}")
    assert body["error"]["code"] == "QUOTA_EXCEEDED"
    assert body["error"]["request_id"].startswith("req_")
    assert "allows 20 per node" in body["error"]["details"]
    assert response.headers["Retry-After"] == "30"
    assert response.headers["X-RateLimit-Limit"] == "20"
    assert code == 4429
    assert frames[-1]["type"] == "error" and frames[-1]["error"]["code"] == "QUOTA_EXCEEDED"
    assert again == "connected"


def test_subscribe_floods_get_rate_limit_errors_and_the_connection_stays_open(
    stream_server: ServerProcess, stream_tenants: tuple[Tenant, Tenant]
) -> None:
    token = _reader_token(stream_server, stream_tenants[0])
    subscribe = {
        "action": "subscribe",
        "subscription_id": "flood",
        "metrics": ["requests"],
        "delivery_frequency": "5s",
    }

    async def scenario() -> tuple[list[dict[str, Any]], int, dict[str, Any]]:
        ws = await connect(_ws_url(stream_server, f"?token={token}"))
        await recv_json(ws)
        # Re-subscribing the same id replaces it, so only the rate can refuse these.
        for _ in range(60):
            await send(ws, subscribe)
        await send(ws, {"action": "ping", "id": "after"})
        frames: list[dict[str, Any]] = []
        while not frames or frames[-1]["type"] != "pong":
            frames.append(await recv_json(ws))
        subscribed = sum(1 for f in frames if f["type"] == "subscribed")
        # After a short wait the bucket has refilled: subscribing works again.
        await asyncio.sleep(1.0)
        await send(ws, subscribe)
        again = await recv_until(ws, lambda m: m["type"] in ("subscribed", "error"))
        await ws.close()
        return [f for f in frames if f["type"] == "error"], subscribed, again

    errors, subscribed, again = run_async(scenario())
    assert 20 <= subscribed < 60
    assert len(errors) == 60 - subscribed
    first = errors[0]
    assert first["subscription_id"] == "flood"
    assert first["error"]["code"] == "RATE_LIMIT_EXCEEDED"
    assert first["error"]["details"].startswith("Retry in ")
    assert "a connection may send 5 per second" in first["error"]["details"]
    assert again["type"] == "subscribed"


def test_subscribe_rate_is_also_limited_per_org_across_connections(
    stream_server: ServerProcess, stream_tenants: tuple[Tenant, Tenant]
) -> None:
    # Basic plan: 20 streams x 10 subscriptions = a burst of 200 per org, then 20/s.
    basic = stream_tenants[1]
    token = _reader_token(stream_server, basic)

    async def scenario() -> list[dict[str, Any]]:
        sockets = [await connect(_ws_url(stream_server, f"?token={token}")) for _ in range(18)]
        for ws in sockets:
            await recv_json(ws)
        for ws in sockets:
            for n in range(20):
                await send(
                    ws,
                    {
                        "action": "subscribe",
                        "subscription_id": f"o{n % 5}",
                        "metrics": ["requests"],
                        "delivery_frequency": "5s",
                    },
                )
        errors: list[dict[str, Any]] = []
        for ws in sockets:
            await send(ws, {"action": "ping", "id": "end"})
            while (message := await recv_json(ws))["type"] != "pong":
                if message["type"] == "error":
                    errors.append(message)
            await ws.close()
        return errors

    errors = run_async(scenario())
    # 360 subscribe messages, none over any one connection's burst of 20: only the org's
    # bucket (200, refilled at 20/s while they arrive) refuses some.
    assert errors
    assert {e["error"]["code"] for e in errors} == {"RATE_LIMIT_EXCEEDED"}
    assert all("your org may send 20 per second" in e["error"]["details"] for e in errors)


def test_frames_are_written_directly_under_the_default_server(
    stream_server: ServerProcess, stream_tenants: tuple[Tenant, Tenant]
) -> None:
    token = _reader_token(stream_server, stream_tenants[0])

    def paths() -> dict[str, float]:
        text = httpx.get(f"{stream_server.url}/metrics", timeout=30).text
        prefix = "meterline_stream_connections_by_write_path{path="
        found = {
            line[len(prefix) + 1 : line.index('"}')]: float(line.split()[-1])
            for line in text.splitlines()
            if line.startswith(prefix)
        }
        assert found.get("direct", 0) >= 1
        return found

    async def scenario() -> tuple[dict[str, Any], dict[str, float]]:
        # A client that offers per-message deflate (the default) gets plain frames: the
        # server does not negotiate it, so the bytes built once can go to every socket.
        ws = await connect(_ws_url(stream_server, f"?token={token}"))
        connected = await recv_json(ws)
        extensions = list(ws.protocol.extensions)
        found = await asyncio.to_thread(eventually, paths)
        await ws.close()
        return connected | {"extensions": extensions}, found

    connected, found = run_async(scenario())
    assert connected["type"] == "connected" and connected["extensions"] == []
    assert found["asgi"] == 0
