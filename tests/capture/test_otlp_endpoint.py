"""``POST /v1/traces`` on a real server: both encodings, gzip, both generations of the
HTTP semantic conventions, partial success, and a resent export counted once."""

from __future__ import annotations

import gzip
import json
import time
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from google.rpc import code_pb2
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.capture.conftest import Org
from tests.helpers import eventually

pytestmark = pytest.mark.e2e


def attrs(**values: Any) -> list[dict[str, Any]]:
    out = []
    for key, value in values.items():
        name = key.replace("__", ".")
        if isinstance(value, int):
            out.append({"key": name, "value": {"intValue": str(value)}})
        else:
            out.append({"key": name, "value": {"stringValue": value}})
    return out


def span(n: int, kind: int, start_ns: int, ms: float, **values: Any) -> dict[str, Any]:
    return {
        "traceId": f"{n:032x}",
        "spanId": f"{n:016x}",
        "name": "span",
        "kind": kind,
        "startTimeUnixNano": str(start_ns),
        "endTimeUnixNano": str(start_ns + int(ms * 1e6)),
        "attributes": attrs(**values),
    }


def export(start_ns: int) -> dict[str, Any]:
    server, internal = 2, 1
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": attrs(service__name="checkout", deployment__environment="prod")
                },
                "scopeSpans": [
                    {
                        "spans": [
                            # current conventions
                            span(
                                1,
                                server,
                                start_ns,
                                12.5,
                                http__request__method="POST",
                                http__route="/carts/{cart_id}",
                                http__response__status_code=201,
                                url__path="/carts/981",
                                client__address="198.51.100.7",
                                user_agent__original="curl/8",
                            ),
                            # older conventions, no route: the path is normalised
                            span(
                                2,
                                server,
                                start_ns,
                                40.0,
                                http__method="GET",
                                http__status_code=503,
                                http__target="/carts/982?debug=1",
                            ),
                            span(3, internal, start_ns, 1.0, http__method="GET"),
                            # a server span without a status cannot be a request event
                            span(4, server, start_ns, 3.0, http__method="GET", url__path="/x"),
                        ]
                    }
                ],
            }
        ]
    }


def post(org: Org, body: bytes, content_type: str, gzipped: bool) -> httpx.Response:
    headers = {"Authorization": f"Bearer {org.key}", "Content-Type": content_type}
    if gzipped:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    return httpx.post(f"{org.server.url}/v1/traces", content=body, headers=headers, timeout=30)


def test_json_and_protobuf_exports(org: Org) -> None:
    document = export(time.time_ns() - 60_000_000_000)
    response = post(org, json.dumps(document).encode(), "application/json", gzipped=True)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    answer = response.json()
    assert answer["partialSuccess"]["rejectedSpans"] == "1"
    assert "status" in answer["partialSuccess"]["errorMessage"]

    # The same spans again as protobuf: same trace/span ids, so nothing is counted twice.
    message = ExportTraceServiceRequest()
    json_format.ParseDict(document, message)
    sent = document["resourceSpans"][0]["scopeSpans"][0]["spans"]
    for item, original in zip(message.resource_spans[0].scope_spans[0].spans, sent, strict=True):
        item.trace_id = bytes.fromhex(original["traceId"])  # protobuf carries raw ids
        item.span_id = bytes.fromhex(original["spanId"])
    response = post(org, message.SerializeToString(), "application/x-protobuf", gzipped=False)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-protobuf"
    parsed = ExportTraceServiceResponse()
    parsed.ParseFromString(response.content)
    assert parsed.partial_success.rejected_spans == 1

    # A later, distinct span: once it is visible, everything sent before it is stored.
    marker = export(time.time_ns() - 30_000_000_000)
    marker["resourceSpans"][0]["scopeSpans"][0]["spans"] = [
        span(99, 2, time.time_ns() - 30_000_000_000, 1.0, http__method="PUT", http__route="/m")
        | {"attributes": attrs(http__method="PUT", http__route="/m", http__status_code=200)}
    ]
    assert post(org, json.dumps(marker).encode(), "application/json", gzipped=False).json() == {}

    def stored() -> dict[tuple[str, str, int, str], dict[str, Any]]:
        got = org.by_request()
        assert {k: int(v["requests"]) for k, v in got.items()} == {
            ("POST", "/carts/{cart_id}", 201, ""): 1,
            ("GET", "/carts/:id", 503, ""): 1,
            ("PUT", "/m", 200, ""): 1,
        }
        return got

    got = eventually(stored)
    assert got[("POST", "/carts/{cart_id}", 201, "")]["latency_avg"] == pytest.approx(12.5)
    assert got[("GET", "/carts/:id", 503, "")]["latency_avg"] == pytest.approx(40.0)


def rpc_status(response: httpx.Response) -> Status:
    """The ``google.rpc.Status`` an OTLP/HTTP error answer carries, in either encoding."""
    status = Status()
    if response.headers["content-type"] == "application/x-protobuf":
        status.ParseFromString(response.content)
    else:
        assert response.headers["content-type"].startswith("application/json")
        json_format.ParseDict(response.json(), status)
    return status


def test_bad_bodies_and_auth(org: Org) -> None:
    # Errors are google.rpc.Status bodies in the request's encoding, as OTLP/HTTP says.
    response = post(org, b"\x0a\xff\xff", "application/x-protobuf", gzipped=False)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/x-protobuf"
    status = rpc_status(response)
    assert status.code == code_pb2.INVALID_ARGUMENT
    assert "protobuf" in status.message
    response = post(org, b'{"resourceSpans": 7}', "application/json", gzipped=True)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")
    assert set(response.json()) == {"code", "message"}
    assert rpc_status(response).code == code_pb2.INVALID_ARGUMENT
    assert "OTLP JSON" in rpc_status(response).message
    response = post(org, b"<spans/>", "text/xml", gzipped=False)
    assert response.status_code == 415
    assert response.headers["content-type"] == "application/x-protobuf"
    assert "text/xml" in rpc_status(response).message
    response = httpx.post(
        f"{org.server.url}/v1/traces",
        content=b"{}",
        headers={
            "Authorization": f"Bearer {org.key}",
            "Content-Type": "application/json",
            "Content-Encoding": "br",
        },
        timeout=30,
    )
    assert response.status_code == 415
    assert "br" in rpc_status(response).message
    response = httpx.post(
        f"{org.server.url}/v1/traces",
        content=b"{}",
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 401
    assert rpc_status(response).code == code_pb2.UNAUTHENTICATED
    response = httpx.post(
        f"{org.server.url}/v1/traces",
        content=b"{}",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {org.token}"},
        timeout=30,
    )
    assert response.status_code == 403  # a read-only token cannot send
    assert rpc_status(response).code == code_pb2.PERMISSION_DENIED
    empty = post(org, b"{}", "application/json", gzipped=False)
    assert empty.status_code == 200
    assert empty.json() == {}
