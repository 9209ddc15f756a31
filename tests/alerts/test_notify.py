"""Notification delivery against a real HTTP receiver and a real SMTP sink: retries
with backoff, permanent refusals, giving up."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from meterline.alerts import AlertsConfig, NotificationQueue
from meterline.clock import FrozenClock
from meterline.metadb import engine_from_url, migrate
from tests.alerts.conftest import Receiver, Sink, smtp_config
from tests.helpers import free_port

ALERT = {
    "alert_id": "alr_1",
    "status": "open",
    "source": "threshold",
    "kind": None,
    "metric": "requests",
    "where": {"route": "/a"},
    "message": "busy: requests above 200",
    "observed": 480.0,
    "expected": None,
    "band": None,
    "score": None,
    "condition": "above",
    "threshold": 200.0,
    "opened_at": "2026-12-02T10:00:00Z",
    "resolved_at": None,
}


class Refusing(Sink):
    async def handle_RCPT(self, server, session, envelope, address, options):  # noqa: N802
        if address.startswith("bad@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.fixture
def refusing_smtp() -> Iterator[tuple[Refusing, int]]:
    sink = Refusing()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield sink, controller.port
    controller.stop()


def make_queue(tmp_path: Path, port: int, **config: Any) -> NotificationQueue:
    engine = engine_from_url(f"sqlite:///{tmp_path / 'n.db'}")
    migrate(engine)
    settings = AlertsConfig(smtp=smtp_config(port), retry_backoff=30.0, **config)
    return NotificationQueue(engine, FrozenClock(time.time()), settings)


def hook_of(queue: NotificationQueue) -> dict[str, Any]:
    return next(n for n in queue.for_alert("org1", "alr_1") if n["channel"] == "webhook")


def test_webhook_retries_with_backoff_and_mail_goes_out(
    tmp_path: Path, receiver: Receiver, refusing_smtp: tuple[Refusing, int]
) -> None:
    sink, port = refusing_smtp
    queue = make_queue(tmp_path, port)
    clock = queue.clock
    assert isinstance(clock, FrozenClock)
    receiver.failures = 2
    notify = [{"webhook": {"url": receiver.url, "secret": None}, "email": ["ops@x.io", "bad@x.io"]}]
    assert queue.plan("org1", ALERT, "alert.opened", notify) == 3
    assert queue.process() == 3
    state = {n["recipient"]: n for n in queue.for_alert("org1", "alr_1")}
    assert state["ops@x.io"]["status"] == "sent"
    assert state["bad@x.io"]["status"] == "failed" and "550" in state["bad@x.io"]["last_error"]
    assert state[receiver.url]["status"] == "retrying"
    assert queue.process() == 0  # not due yet: 30 s
    clock.advance(31)
    assert queue.process() == 1
    assert hook_of(queue)["status"] == "retrying"  # second 503
    clock.advance(60)
    assert queue.process() == 0  # the delay grew ×4: 120 s
    clock.advance(61)
    assert queue.process() == 1
    hook = hook_of(queue)
    assert hook["status"] == "sent" and hook["attempts"] == 3
    assert len({h["x-meterline-delivery"] for h, _ in receiver.calls}) == 1
    assert len(receiver.calls) == 3
    (mail,) = [m for rcpts, m in sink.messages if "ops@x.io" in rcpts]
    assert mail["Subject"] == "[Meterline] OPENED: busy: requests above 200"
    body = mail.get_content()
    assert "Threshold: above 200.0" in body and "Where: route /a" in body


def test_gives_up_after_max_attempts(tmp_path: Path) -> None:
    queue = make_queue(tmp_path, free_port(), max_attempts=2)
    clock = queue.clock
    assert isinstance(clock, FrozenClock)
    dead = f"http://127.0.0.1:{free_port()}/nobody"  # nothing listens there
    queue.plan("org1", ALERT, "alert.opened", [{"webhook": {"url": dead}}])
    queue.process()
    clock.advance(31)
    queue.process()
    (n,) = queue.for_alert("org1", "alr_1")
    assert n["status"] == "failed" and n["attempts"] == 2
    assert n["last_error"].startswith("gave up: webhook unreachable")
