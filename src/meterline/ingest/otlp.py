"""OTLP/HTTP traces to request events.

Server spans (``SPAN_KIND_SERVER``) become ``request`` events using the HTTP semantic
conventions, current (``http.request.method``, ``http.response.status_code``,
``url.path``) and older (``http.method``, ``http.status_code``, ``http.target``) alike;
``http.route`` gives the route template. The service name and resource attributes are
kept as properties. Other span kinds (internal, client, producer...) are not requests and
are skipped without counting as rejected. The event id is ``otlp-<trace>-<span>``, so an
exporter's retry is counted once.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from meterline.errors import UnsupportedMediaTypeError, ValidationError
from meterline.events import EventRejection, RawEvent, checked_event
from meterline.ingest.decode import _gunzip

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

_METHOD = ("http.request.method", "http.method")
_STATUS = ("http.response.status_code", "http.status_code")
_PATH = ("url.path", "http.target")
_CLIENT_IP = ("client.address", "http.client_ip", "net.sock.peer.addr", "net.peer.ip")
_USER_AGENT = ("user_agent.original", "http.user_agent")
_REQUEST_SIZE = ("http.request.body.size", "http.request_content_length")
_RESPONSE_SIZE = ("http.response.body.size", "http.response_content_length")
_CONSUMER = ("meterline.consumer_id", "enduser.id")
_ID_FIELDS = ("traceId", "spanId", "parentSpanId")
_MAX_PROPERTY = 256


@dataclass(frozen=True, slots=True)
class DecodedTraces:
    """Events from one export request: items for the ingest service (events, or why a
    server span could not be read), plus how many spans were not server spans."""

    items: list[RawEvent | EventRejection]
    skipped: int
    encoding: str


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind)


def _attributes(pairs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in pairs}


def _first(attrs: dict[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        value = attrs.get(name)
        if value is not None and value != "":
            return value
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _small(value: Any) -> Any:
    if isinstance(value, str):
        return value[:_MAX_PROPERTY]
    if isinstance(value, bool | int) or (isinstance(value, float) and math.isfinite(value)):
        return value
    return json.dumps(value, default=str)[:_MAX_PROPERTY]


def span_to_event(span: Span, service: str | None, resource: dict[str, Any]) -> RawEvent:
    """The request event of one server span (validated later by the ingest service)."""
    attrs = _attributes(span.attributes)
    path = _first(attrs, _PATH)
    if isinstance(path, str):
        path = path.split("?", 1)[0]
    route = attrs.get("http.route")
    if not route and not path:
        url = _first(attrs, ("url.full", "http.url"))
        if isinstance(url, str) and "://" in url:
            path = "/" + url.split("://", 1)[1].partition("/")[2].split("?", 1)[0]
    properties: dict[str, Any] = {"trace_id": span.trace_id.hex(), "span_id": span.span_id.hex()}
    if service:
        properties["service.name"] = service
    if resource:
        properties["resource"] = {k: _small(v) for k, v in resource.items()}
    latency = None
    if span.end_time_unix_nano >= span.start_time_unix_nano > 0:
        latency = (span.end_time_unix_nano - span.start_time_unix_nano) / 1e6
    return checked_event(
        event_id=f"otlp-{span.trace_id.hex()}-{span.span_id.hex()}",
        type="request",
        timestamp=span.start_time_unix_nano // 1_000_000 if span.start_time_unix_nano else None,
        method=_first(attrs, _METHOD),
        path=path,
        route=route,
        status=_int(_first(attrs, _STATUS)),
        latency_ms=latency,
        client_ip=_first(attrs, _CLIENT_IP),
        user_agent=_first(attrs, _USER_AGENT),
        request_size=_int(_first(attrs, _REQUEST_SIZE)),
        response_size=_int(_first(attrs, _RESPONSE_SIZE)),
        consumer_id=_first(attrs, _CONSUMER),
        user_id=attrs.get("enduser.id"),
        properties=properties,
    )


def _hex_ids_to_base64(node: Any) -> None:
    # OTLP/JSON writes trace and span ids as hex, where protobuf's JSON mapping expects
    # base64 for bytes fields.
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_FIELDS and isinstance(value, str):
                try:
                    node[key] = base64.b64encode(bytes.fromhex(value)).decode()
                except ValueError:
                    pass
            else:
                _hex_ids_to_base64(value)
    elif isinstance(node, list):
        for item in node:
            _hex_ids_to_base64(item)


def parse_request(
    body: bytes, *, content_type: str, content_encoding: str, max_bytes: int
) -> tuple[ExportTraceServiceRequest, str]:
    """Decode an export request body; returns the message and its encoding."""
    encoding = content_encoding.strip().lower()
    if encoding == "gzip":
        body = _gunzip(body, max_bytes)
    elif encoding not in ("", "identity"):
        raise UnsupportedMediaTypeError(
            f"Content-Encoding {content_encoding!r} is not supported", details="Use gzip or none."
        )
    mime = content_type.split(";", 1)[0].strip().lower()
    message = ExportTraceServiceRequest()
    if mime == PROTOBUF:
        try:
            message.ParseFromString(body)
        except DecodeError:
            raise ValidationError("the body is not a valid OTLP protobuf message") from None
        return message, PROTOBUF
    if mime == JSON:
        try:
            document = json.loads(body)
            _hex_ids_to_base64(document)
            json_format.ParseDict(document, message, ignore_unknown_fields=True)
        except (ValueError, json_format.ParseError) as exc:
            raise ValidationError("the body is not valid OTLP JSON", details=str(exc)) from None
        return message, JSON
    raise UnsupportedMediaTypeError(
        f"Content-Type {mime!r} is not supported",
        details="Send application/x-protobuf or application/json (OTLP/HTTP).",
    )


def decode_traces(
    body: bytes, *, content_type: str, content_encoding: str, max_bytes: int
) -> DecodedTraces:
    """Server spans of an OTLP/HTTP export body as ingest items."""
    message, encoding = parse_request(
        body, content_type=content_type, content_encoding=content_encoding, max_bytes=max_bytes
    )
    items: list[RawEvent | EventRejection] = []
    skipped = 0
    for resource_spans in message.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        service = resource.pop("service.name", None)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                if span.kind != Span.SPAN_KIND_SERVER:
                    skipped += 1
                    continue
                try:
                    items.append(span_to_event(span, service, resource))
                except Exception as exc:  # one odd span must not lose the others
                    items.append(EventRejection("VALIDATION_ERROR", f"unreadable span: {exc}"))
    return DecodedTraces(items, skipped, encoding)


def encode_response(rejected: int, message: str, encoding: str) -> bytes:
    """The ``ExportTraceServiceResponse`` in the request's encoding; ``partial_success``
    is set only when spans were rejected, as the OTLP spec asks."""
    response = ExportTraceServiceResponse()
    if rejected:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    if encoding == PROTOBUF:
        encoded: bytes = response.SerializeToString()
        return encoded
    return json.dumps(json_format.MessageToDict(response)).encode()


# The gRPC code that best names each HTTP status Meterline answers (google.rpc.Code).
_RPC_CODES = {
    400: code_pb2.INVALID_ARGUMENT,
    401: code_pb2.UNAUTHENTICATED,
    403: code_pb2.PERMISSION_DENIED,
    404: code_pb2.NOT_FOUND,
    413: code_pb2.RESOURCE_EXHAUSTED,
    415: code_pb2.INVALID_ARGUMENT,
    429: code_pb2.RESOURCE_EXHAUSTED,
    503: code_pb2.UNAVAILABLE,
}


def response_encoding(content_type: str) -> str:
    """The encoding an answer to a body of ``content_type`` uses: JSON for JSON,
    protobuf for protobuf and for anything unreadable (OTLP's default encoding)."""
    mime = content_type.split(";", 1)[0].strip().lower()
    return JSON if mime == JSON else PROTOBUF


def encode_status(http_status: int, message: str, encoding: str) -> bytes:
    """The ``google.rpc.Status`` body an OTLP/HTTP error answer carries, in ``encoding``.

    Example:
        >>> encode_status(400, "the body is not valid OTLP JSON", JSON)
        b'{"code": 3, "message": "the body is not valid OTLP JSON"}'
    """
    status = status_pb2.Status(
        code=_RPC_CODES.get(
            http_status, code_pb2.INVALID_ARGUMENT if http_status < 500 else code_pb2.INTERNAL
        ),
        message=message,
    )
    if encoding == PROTOBUF:
        encoded: bytes = status.SerializeToString()
        return encoded
    return json.dumps(json_format.MessageToDict(status)).encode()


__all__ = [
    "JSON",
    "PROTOBUF",
    "DecodedTraces",
    "decode_traces",
    "encode_response",
    "encode_status",
    "parse_request",
    "response_encoding",
    "span_to_event",
]
