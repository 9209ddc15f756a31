"""Access-log parsing: CLF and its variants, JSON lines with a mapping, format detection."""

from __future__ import annotations

import pytest

from meterline.logs.parse import BadLine, clf_time, detect_format, event_id, json_parser, parse_clf

COMBINED = (
    '83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /presentations/x.png?size=2 HTTP/1.1" '
    '200 203023 "http://semicomplete.com/" "Mozilla/5.0"'
)


def test_combined_line() -> None:
    event = parse_clf(COMBINED, 1)
    assert event.method == "GET"
    assert event.path == "/presentations/x.png"  # no query string
    assert event.status == 200
    assert event.response_size == 203023
    assert event.client_ip == "83.149.9.216"
    assert event.user_agent == "Mozilla/5.0"
    assert event.timestamp == 1431857103000
    assert event.latency_ms is None


def test_common_line_with_user_and_dash_size() -> None:
    event = parse_clf('10.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "POST /a HTTP/1.0" 304 -', 7)
    assert (event.method, event.status, event.response_size, event.user_id) == (
        "POST",
        304,
        0,
        "frank",
    )
    assert event.timestamp == clf_time("10/Oct/2000:20:55:36 +0000")
    assert event.user_agent == ""


@pytest.mark.parametrize(("tail", "latency"), [(" 0.250", 250.0), (" 1500", 1.5)])
def test_trailing_response_time_in_seconds_or_microseconds(tail: str, latency: float) -> None:
    assert parse_clf(COMBINED + tail, 1).latency_ms == pytest.approx(latency)


def test_leading_virtual_host() -> None:
    event = parse_clf("api.example.com:443 " + COMBINED, 1)
    assert event.properties == {"vhost": "api.example.com:443"}
    assert event.client_ip == "83.149.9.216"


@pytest.mark.parametrize(
    "line",
    [
        "garbage",
        COMBINED.replace("17/May/2015", "17/Foo/2015"),
        COMBINED.replace('"GET /presentations', '"\\x16\\x03 /presentations'),
        COMBINED[:-5],  # cut mid-quote, as a truncated write leaves it
    ],
)
def test_bad_lines_raise_badline(line: str) -> None:
    with pytest.raises(BadLine):
        parse_clf(line, 1)


def test_event_ids_are_stable_per_content_and_position() -> None:
    assert event_id(COMBINED, 1) == event_id(COMBINED, 1)
    assert event_id(COMBINED, 1) != event_id(COMBINED, 2)


def test_json_lines_default_names_and_mapping() -> None:
    parse = json_parser()
    event = parse(
        '{"time": "2026-11-23T10:00:00Z", "request": "DELETE /v1/items/9 HTTP/2", '
        '"status": 204, "request_time": 0.012, "remote_addr": "1.2.3.4", "bytes": 0}',
        1,
    )
    assert (event.method, event.path, event.status) == ("DELETE", "/v1/items/9", 204)
    assert event.latency_ms == pytest.approx(12.0)
    assert event.timestamp == 1795428000000
    mapped = json_parser({"path": "req.uri", "status": "res.code", "consumer_id": "tenant"})
    event = mapped(
        '{"ts": 1795428000, "req": {"uri": "/x?q=1"}, "res": {"code": 500}, "tenant": "t1"}', 2
    )
    assert (event.path, event.status, event.consumer_id, event.timestamp) == (
        "/x",
        500,
        "t1",
        1795428000000,
    )
    with pytest.raises(BadLine):
        parse('{"path": "/x"}', 3)  # no status
    with pytest.raises(BadLine):
        parse("[1, 2]", 4)
    # A latency the store could not bin (e.g. a literal "Infinity") is a bad line.
    for value in ('"inf"', '"NaN"', "Infinity"):
        with pytest.raises(BadLine, match="finite"):
            parse(f'{{"path": "/x", "status": 200, "request_time": {value}}}', 5)
    with pytest.raises(ValueError):
        json_parser({"colour": "c"})


def test_detect_format() -> None:
    assert detect_format([COMBINED] * 3) == "combined"
    assert detect_format(
        ['1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 5'] * 3
    ) == ("common")
    assert detect_format(['{"path": "/"}'] * 3) == "json"
