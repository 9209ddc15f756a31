"""Schedules fire once and deliver once per recipient, against a real SMTP sink (aiosmtpd)
and a real HTTP receiver."""

from __future__ import annotations

import email
import email.policy
import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from meterline.reports.delivery import webhook_signature
from tests.helpers import free_port


class Sink:
    """Accepts mail; refuses bad@ for good (550) and flaky@ once for now (451)."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []
        self.flaky_refusals = 1

    async def handle_RCPT(self, server, session, envelope, address, options):  # noqa: N802
        if address.startswith("bad@"):
            return "550 5.1.1 no such user"
        if address.startswith("flaky@") and self.flaky_refusals:
            self.flaky_refusals -= 1
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.messages.append(
            (
                list(envelope.rcpt_tos),
                email.message_from_bytes(envelope.content, policy=email.policy.default),
            )
        )
        return "250 Message accepted"

    def to(self, address: str) -> list[email.message.EmailMessage]:
        return [m for rcpts, m in self.messages if address in rcpts]


@pytest.fixture
def smtp():
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield sink, controller.port
    controller.stop()


def monday_after(env) -> None:
    # 2026-11-23 is a Monday; 09:00 in Berlin is 08:00Z
    env.clock.now = datetime(2026, 11, 23, 8, 0, 30, tzinfo=UTC).timestamp()


def test_weekly_schedule_emails_each_recipient_once(make_reports, smtp):
    sink, port = smtp
    env = make_reports(smtp_port=port, delivery_backoff_seconds=60)
    env.clock.now = datetime(2026, 11, 20, tzinfo=UTC).timestamp()
    schedule = env.service.create_schedule(
        env.org_id,
        {"name": "Weekly API report", "frequency": "weekly", "day_of_week": 1,
         "time": "09:00", "timezone": "Europe/Berlin",
         "report": {"template_id": "api_overview", "format": "pdf",
                    "filters": {"range": "7d"},
                    "delivery": {"method": "email", "recipients": [
                        "cto@example.com", "bad@example.com", "flaky@example.com"]}}},
    )  # fmt: skip
    assert schedule["next_run_at"] == "2026-11-23T08:00:00Z"
    env.settle()
    assert sink.messages == []  # not due yet
    monday_after(env)
    env.settle()
    # a second server process ticking the same due time makes nothing more
    from meterline.reports.scheduler import Scheduler

    assert Scheduler(env.service.engine, env.clock, "w_other").tick() == 0
    listed = env.service.list(env.org_id)["reports"]
    assert len(listed) == 1
    report = env.service.get(env.org_id, listed[0]["report_id"])
    assert report["status"] == "completed"
    assert report["filters_applied"]["date_range"]["end"] == "2026-11-23T08:00:00Z"
    states = {d["recipient"]: d for d in report["deliveries"]}
    assert states["cto@example.com"]["status"] == "sent"
    assert states["bad@example.com"]["status"] == "failed"
    assert "550" in states["bad@example.com"]["last_error"]
    assert states["flaky@example.com"]["status"] == "retrying"
    env.clock.advance(61)
    env.settle()
    env.clock.advance(3600)
    env.settle()
    report = env.service.get(env.org_id, listed[0]["report_id"])
    states = {d["recipient"]: d for d in report["deliveries"]}
    assert states["flaky@example.com"]["status"] == "sent"
    assert states["flaky@example.com"]["attempts"] == 2
    assert len(sink.to("cto@example.com")) == 1
    assert len(sink.to("flaky@example.com")) == 1
    assert sink.to("bad@example.com") == []
    message = sink.to("cto@example.com")[0]
    assert message["Subject"].startswith("Weekly API report")
    attachments = [p for p in message.walk() if p.get_filename()]
    assert attachments[0].get_content_type() == "application/pdf"
    assert attachments[0].get_payload(decode=True).startswith(b"%PDF")
    assert "/download?expires=" in message.get_body(("plain",)).get_content()
    assert env.service.get_schedule(env.org_id, schedule["schedule_id"])["next_run_at"] == (
        "2026-11-30T08:00:00Z"
    )


def test_large_file_is_sent_as_a_link(make_reports, smtp):
    sink, port = smtp
    env = make_reports(smtp_port=port, max_attachment_bytes=100)
    created, _ = env.service.generate(
        env.org_id, "basic",
        {"name": "Big overview", "template_id": "api_overview", "format": "excel",
         "delivery": {"method": "email", "recipients": ["ops@example.com"]}},
        None,
    )  # fmt: skip
    env.settle()
    (message,) = sink.to("ops@example.com")
    assert not [p for p in message.walk() if p.get_filename()]
    body = message.get_body(("plain",)).get_content()
    assert "too large to attach" in body
    assert f"/v2/reports/{created['report_id']}/download?expires=" in body


def test_unreachable_smtp_is_retried_not_lost(make_reports):
    env = make_reports(smtp_port=free_port(), delivery_backoff_seconds=60)
    created, _ = env.service.generate(
        env.org_id, "basic",
        {"name": "Overview", "template_id": "api_overview", "format": "csv",
         "delivery": {"method": "email", "recipients": ["ops@example.com"]}},
        None,
    )  # fmt: skip
    env.settle()
    (state,) = env.service.get(env.org_id, created["report_id"])["deliveries"]
    assert state["status"] == "retrying" and state["next_attempt_at"] is not None


class Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_signed_webhook(make_reports):
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = make_reports()
        secret = "s3cret-s3cret-s3cret"
        created, _ = env.service.generate(
            env.org_id, "basic",
            {"name": "Overview", "template_id": "api_overview", "format": "json",
             "delivery": {"method": "webhook", "secret": secret,
                          "url": f"http://127.0.0.1:{server.server_port}/hook"}},
            None,
        )  # fmt: skip
        env.settle()
        (headers, body) = Receiver.received[-1]
        event = json.loads(body)
        assert event["event"] == "report.completed"
        assert event["report"]["report_id"] == created["report_id"]
        stamp = int(headers["X-Meterline-Signature"].split(",")[0].removeprefix("t="))
        assert headers["X-Meterline-Signature"] == webhook_signature(secret, stamp, body)
        (state,) = env.service.get(env.org_id, created["report_id"])["deliveries"]
        assert state["status"] == "sent"
        assert "secret" not in env.service.get(env.org_id, created["report_id"])["delivery"]
    finally:
        server.shutdown()
        server.server_close()
