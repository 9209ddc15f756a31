"""Access-log lines to events: Common and Combined Log Format and JSON lines.

CLF variants understood: a leading virtual host (``%v`` / ``$host``) and a trailing
response time, in seconds when it has a decimal point (nginx ``$request_time``) or in
microseconds when it is an integer (Apache ``%D``). A line that cannot be read raises
:class:`BadLine` with the reason; the importer counts it and goes on.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec

from meterline.events import RawEvent, checked_event

FORMATS = ("auto", "common", "combined", "json")

_QUOTED = r'(?:[^"\\]*+(?:\\.[^"\\]*+)*+)'
_CLF_TAIL = (
    r"(?P<ip>\S+) \S+ (?P<user>\S+) \[(?P<time>[^\]]+)\] "
    rf'"(?P<request>{_QUOTED})" (?P<status>\d{{3}}) (?P<size>\d+|-)'
    rf'(?: "(?P<referer>{_QUOTED})" "(?P<agent>{_QUOTED})")?'
    r"(?: (?P<rt>\d+(?:\.\d+)?))?\s*$"
)
_CLF_PLAIN = re.compile(_CLF_TAIL)
_CLF_VHOST = re.compile(r"(?P<vhost>\S+) " + _CLF_TAIL)


class _Either:
    """The plain pattern first (the common case), the leading-virtual-host one second."""

    def match(self, line: str) -> re.Match[str] | None:
        return _CLF_PLAIN.match(line) or _CLF_VHOST.match(line)


_CLF = _Either()
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_METHODS = frozenset(
    {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT"}
)


class BadLine(ValueError):
    """A line that is not in the expected format; the message says why."""


def _event(**fields: Any) -> RawEvent:
    try:
        return checked_event(**fields)
    except msgspec.ValidationError as exc:
        raise BadLine(str(exc)) from None


LineParser = Callable[[str, int], RawEvent]
"""Parses one line (without its newline) and its 1-based line number into an event."""


def event_id(line: str, number: int) -> str:
    """A stable id for a line at a position: re-importing a file counts nothing twice.

    The storage engine computes the same id for the lines it parses itself (MD5 of the
    line number, a NUL and the line, first 24 hex digits), so both paths agree.
    """
    digest = hashlib.md5(f"{number}\x00{line}".encode(), usedforsecurity=False).hexdigest()
    return f"log-{digest[:24]}"


_day_cache: dict[str, int] = {}


def clf_time(text: str) -> int:
    """``10/Oct/2000:13:55:36 -0700`` to epoch milliseconds."""
    try:
        day = text[:11]
        base = _day_cache.get(day)
        if base is None:
            base = calendar.timegm(
                (int(text[7:11]), _MONTHS[text[3:6]], int(text[0:2]), 0, 0, 0, 0, 0, 0)
            )
            _day_cache[day] = base
        seconds = base + int(text[12:14]) * 3600 + int(text[15:17]) * 60 + int(text[18:20])
        zone = text[21:26]
        if zone:
            sign = -1 if zone[0] == "-" else 1
            seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[3:5]) * 60)
        return seconds * 1000
    except (KeyError, ValueError, IndexError):
        raise BadLine(f"unreadable time {text!r}") from None


def _request(request: str) -> tuple[str, str]:
    parts = request.split(" ")
    if len(parts) < 2 or parts[0] not in _METHODS or not parts[1]:
        raise BadLine(f"unreadable request {request[:80]!r}")
    path = parts[1].split("?", 1)[0]
    if "://" in path:  # proxy-style absolute URI
        path = "/" + path.split("://", 1)[1].partition("/")[2]
    return parts[0], path


def parse_clf(line: str, number: int) -> RawEvent:
    """One Common or Combined Log Format line (with the variants above)."""
    match = _CLF.match(line)
    if match is None:
        raise BadLine("not Common/Combined Log Format")
    method, path = _request(match["request"])
    size = match["size"]
    rt = match["rt"]
    latency = None
    if rt is not None:
        latency = float(rt) * 1000.0 if "." in rt else int(rt) / 1000.0
    agent = match["agent"]
    user = match["user"]
    vhost = match.groupdict().get("vhost")
    return _event(
        event_id=event_id(line, number),
        timestamp=clf_time(match["time"]),
        method=method,
        path=path,
        status=int(match["status"]),
        response_size=0 if size == "-" else int(size),
        client_ip=match["ip"],
        user_agent=agent if agent and agent != "-" else None,
        user_id=user if user != "-" else None,
        latency_ms=latency,
        properties={"vhost": vhost} if vhost else None,
    )


# JSON lines: the first key present wins, unless the user maps a field explicitly.
JSON_FIELDS: dict[str, tuple[str, ...]] = {
    "timestamp": ("timestamp", "@timestamp", "time", "time_iso8601", "time_local", "ts"),
    "method": ("method", "request_method", "verb", "http_method"),
    "path": ("path", "uri", "request_uri", "url", "request_path"),
    "request": ("request",),
    "status": ("status", "status_code", "response_code", "http_status"),
    "latency_ms": ("latency_ms", "duration_ms", "response_time_ms"),
    "latency_s": ("request_time", "duration", "response_time", "elapsed"),
    "response_size": ("response_size", "bytes", "body_bytes_sent", "bytes_sent", "size"),
    "request_size": ("request_size", "request_length", "bytes_received"),
    "client_ip": ("client_ip", "remote_addr", "remote_ip", "ip", "clientip"),
    "user_agent": ("user_agent", "http_user_agent", "agent", "useragent"),
    "consumer_id": ("consumer_id", "consumer", "api_key_id", "customer"),
    "user_id": ("user_id", "remote_user", "user"),
}


def _json_time(value: Any) -> int:
    if isinstance(value, bool):
        raise BadLine("unreadable time")
    if isinstance(value, int | float):
        # Seconds, milliseconds or microseconds since the epoch, told apart by magnitude.
        if value > 1e14:
            return int(value / 1000)
        if value > 1e11:
            return int(value)
        return int(value * 1000)
    if isinstance(value, str):
        if len(value) >= 26 and value[2] == "/" and value[6] == "/":
            return clf_time(value)
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise BadLine(f"unreadable time {value[:40]!r}") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return int(parsed.timestamp() * 1000)
    raise BadLine("no time field")


def _number(value: Any) -> float | None:
    if value is None or value == "-" or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BadLine(f"not a number: {str(value)[:40]!r}") from None
    if not math.isfinite(number):
        raise BadLine(f"not a finite number: {str(value)[:40]!r}")
    return number


def json_parser(mapping: dict[str, str] | None = None) -> LineParser:
    """A JSON-lines parser; ``mapping`` names the key of an event field
    (``{"path": "req.uri"}``, dots descend into objects), else :data:`JSON_FIELDS` apply."""
    explicit = {k: tuple(v.split(".")) for k, v in (mapping or {}).items()}
    unknown = set(explicit) - set(JSON_FIELDS)
    if unknown:
        raise ValueError(f"unknown field(s) in the mapping: {', '.join(sorted(unknown))}")

    def get(doc: dict[str, Any], name: str) -> Any:
        keys = explicit.get(name)
        if keys is not None:
            node: Any = doc
            for key in keys:
                node = node.get(key) if isinstance(node, dict) else None
            return node
        for key in JSON_FIELDS[name]:
            if key in doc:
                return doc[key]
        return None

    def parse(line: str, number: int) -> RawEvent:
        try:
            doc = json.loads(line)
        except ValueError:
            raise BadLine("not JSON") from None
        if not isinstance(doc, dict):
            raise BadLine("not a JSON object")
        method = get(doc, "method")
        path = get(doc, "path")
        request = get(doc, "request")
        if (method is None or path is None) and isinstance(request, str):
            method, path = _request(request)
        if not isinstance(path, str) or not path:
            raise BadLine("no path")
        status = _number(get(doc, "status"))
        if status is None:
            raise BadLine("no status")
        latency = _number(get(doc, "latency_ms"))
        if latency is None:
            seconds = _number(get(doc, "latency_s"))
            latency = None if seconds is None else seconds * 1000.0
        size = _number(get(doc, "response_size"))
        request_size = _number(get(doc, "request_size"))
        return _event(
            event_id=event_id(line, number),
            timestamp=_json_time(get(doc, "timestamp")),
            method=str(method or "GET").upper(),
            path=path.split("?", 1)[0],
            status=int(status),
            latency_ms=latency,
            response_size=int(size) if size is not None else 0,
            request_size=int(request_size) if request_size is not None else 0,
            client_ip=get(doc, "client_ip"),
            user_agent=get(doc, "user_agent"),
            consumer_id=get(doc, "consumer_id"),
            user_id=get(doc, "user_id"),
        )

    return parse


def detect_format(sample: list[str]) -> str:
    """``json``, ``combined`` or ``common`` from the first lines of a log."""
    lines = [line for line in sample if line.strip()][:20]
    if not lines:
        return "combined"
    if sum(line.lstrip().startswith("{") for line in lines) * 2 > len(lines):
        return "json"
    matches = [_CLF.match(line) for line in lines]
    combined = sum(1 for m in matches if m is not None and m["agent"] is not None)
    return "combined" if combined * 2 >= len(lines) else "common"


def parser_for(fmt: str, mapping: dict[str, str] | None = None) -> LineParser:
    """The parser of a format (``common`` and ``combined`` share the CLF parser)."""
    if fmt == "json":
        return json_parser(mapping)
    if fmt in ("common", "combined"):
        return parse_clf
    raise ValueError(f"unknown log format {fmt!r}; use one of {', '.join(FORMATS)}")


__all__ = [
    "FORMATS",
    "JSON_FIELDS",
    "BadLine",
    "LineParser",
    "clf_time",
    "detect_format",
    "event_id",
    "json_parser",
    "parse_clf",
    "parser_for",
]
