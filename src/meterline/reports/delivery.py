"""Delivery of finished reports, tracked per recipient.

Each recipient is one row and one message, so a bad address never causes a resend to
the others. Temporary failures (connection errors, 4xx SMTP replies, 5xx/429 HTTP) are
retried with exponential backoff over hours; permanent ones are recorded on the report.
A file over the attachment limit is sent as its download link.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx
from sqlalchemy import Engine, or_, select, update
from sqlalchemy.exc import IntegrityError

from meterline.clock import Clock
from meterline.reports.config import ReportsConfig
from meterline.reports.tables import deliveries

log = logging.getLogger(__name__)


class PermanentDeliveryError(Exception):
    """The recipient will never accept this message; do not retry."""


class TemporaryDeliveryError(Exception):
    """The attempt failed for now; retry later."""


@dataclass(frozen=True, slots=True)
class Parcel:
    """What is delivered: the report's metadata, its file and its signed link."""

    report: dict[str, Any]
    file: Path
    filename: str
    media_type: str
    download_url: str
    expires_at: str
    webhook_secret: str | None = None


def plan_deliveries(engine: Engine, report: dict[str, Any], delivery: Any, now: float) -> int:
    """Create one pending row per recipient (idempotent); returns rows created."""
    targets: list[tuple[str, str]] = []
    if delivery.method == "email":
        targets = [("email", r) for r in delivery.recipients]
    elif delivery.method == "webhook" and delivery.url:
        targets = [("webhook", delivery.url)]
    created = 0
    for channel, recipient in targets:
        try:
            with engine.begin() as conn:
                conn.execute(
                    deliveries.insert().values(
                        delivery_id="dlv_" + secrets.token_hex(8),
                        report_id=report["report_id"],
                        org_id=report["org_id"],
                        channel=channel,
                        recipient=recipient,
                        status="pending",
                        attempts=0,
                        next_attempt_at=now,
                        created_at=now,
                    )
                )
            created += 1
        except IntegrityError:
            continue
    return created


def build_email(parcel: Parcel, recipient: str, config: ReportsConfig) -> EmailMessage:
    """The e-mail for one recipient: a short summary, the link, and the file when small."""
    report = parcel.report
    message = EmailMessage()
    message["From"] = config.mail_from
    message["To"] = recipient
    message["Subject"] = f"{report['name']} — {report['period']}"
    attach = parcel.file.stat().st_size <= config.max_attachment_bytes
    lines = [
        f"{report['name']}",
        f"Period: {report['period']}",
        f"Template: {report['template_id']}",
        "",
        "The report is attached." if attach else "The report is too large to attach.",
        f"Download it here until {parcel.expires_at}:",
        parcel.download_url,
        "",
        "— Meterline",
    ]
    message.set_content("\n".join(lines))
    if attach:
        maintype, _, subtype = parcel.media_type.split(";")[0].partition("/")
        message.add_attachment(
            parcel.file.read_bytes(), maintype=maintype, subtype=subtype, filename=parcel.filename
        )
    return message


async def _send_email(message: EmailMessage, config: ReportsConfig) -> None:
    try:
        await aiosmtplib.send(
            message,
            hostname=config.smtp_host,
            port=config.smtp_port,
            username=config.smtp_username,
            password=config.smtp_password,
            start_tls=config.smtp_starttls,
            timeout=30,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = [r.code for r in exc.recipients]
        if all(code >= 500 for code in codes):
            raise PermanentDeliveryError(str(exc.recipients[0])) from None
        raise TemporaryDeliveryError(str(exc.recipients[0])) from None
    except aiosmtplib.SMTPResponseException as exc:
        if exc.code >= 500:
            raise PermanentDeliveryError(f"{exc.code} {exc.message}") from None
        raise TemporaryDeliveryError(f"{exc.code} {exc.message}") from None
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise TemporaryDeliveryError(f"SMTP server unavailable: {exc}") from None


def send_mail(message: EmailMessage, config: ReportsConfig) -> None:
    """Send one prepared message over the configured SMTP server, from any thread.

    Raises :class:`PermanentDeliveryError` for a 5xx refusal and
    :class:`TemporaryDeliveryError` for anything worth retrying.
    """
    # A thread of its own, so this works whether or not the caller's thread runs a loop.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, _send_email(message, config)).result()


def send_email(parcel: Parcel, recipient: str, config: ReportsConfig) -> None:
    """Send the report to one address over SMTP."""
    send_mail(build_email(parcel, recipient, config), config)


def webhook_signature(secret: str, timestamp: int, body: bytes) -> str:
    """``X-Meterline-Signature`` value: ``t=<unix>,v1=<hex HMAC-SHA256 of "t.body">``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def send_webhook(parcel: Parcel, url: str, config: ReportsConfig) -> None:
    """POST a ``report.completed`` event, signed when the delivery has a secret."""
    body = json.dumps(
        {
            "event": "report.completed",
            "report": parcel.report,
            "download_url": parcel.download_url,
            "expires_at": parcel.expires_at,
        }
    ).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "Meterline-Reports"}
    if parcel.webhook_secret:
        headers["X-Meterline-Signature"] = webhook_signature(
            parcel.webhook_secret, int(time.time()), body
        )
    post_webhook(url, body, headers, timeout=30)


def post_webhook(url: str, body: bytes, headers: dict[str, str], *, timeout: float) -> None:
    """POST ``body`` to a webhook and classify the outcome.

    Returns on 2xx; raises :class:`PermanentDeliveryError` for a 4xx other than 408/429
    (retrying cannot help) and :class:`TemporaryDeliveryError` otherwise.
    """
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise TemporaryDeliveryError(f"webhook unreachable: {exc}") from None
    if response.status_code < 300:
        return
    if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
        raise PermanentDeliveryError(f"webhook answered {response.status_code}")
    raise TemporaryDeliveryError(f"webhook answered {response.status_code}")


class DeliveryQueue:
    """Claims due deliveries (with a lease, like jobs) and records each outcome."""

    def __init__(self, engine: Engine, clock: Clock, config: ReportsConfig) -> None:
        self.engine = engine
        self.clock = clock
        self.config = config

    def process(self, parcel_for: Callable[[str], Parcel | None]) -> int:
        """Attempt every due delivery once; returns how many were attempted."""
        attempted = 0
        now = self.clock()
        with self.engine.connect() as conn:
            due = conn.execute(
                select(deliveries).where(
                    deliveries.c.status.in_(("pending", "retrying")),
                    deliveries.c.next_attempt_at <= now,
                    or_(deliveries.c.lease_until.is_(None), deliveries.c.lease_until < now),
                )
            ).all()
        for row in due:
            with self.engine.begin() as conn:
                taken = conn.execute(
                    update(deliveries)
                    .where(
                        deliveries.c.delivery_id == row.delivery_id,
                        deliveries.c.status.in_(("pending", "retrying")),
                        or_(deliveries.c.lease_until.is_(None), deliveries.c.lease_until < now),
                    )
                    .values(lease_until=now + 300)
                )
            if taken.rowcount != 1:
                continue
            attempted += 1
            self._attempt(row, parcel_for)
        return attempted

    def _attempt(self, row: Any, parcel_for: Callable[[str], Parcel | None]) -> None:
        attempts = row.attempts + 1
        values: dict[str, Any] = {"attempts": attempts, "lease_until": None}
        parcel = parcel_for(row.report_id)
        try:
            if parcel is None:
                raise PermanentDeliveryError("the report file is no longer available")
            if row.channel == "email":
                send_email(parcel, row.recipient, self.config)
            else:
                send_webhook(parcel, row.recipient, self.config)
            values.update(status="sent", sent_at=self.clock(), last_error=None)
        except PermanentDeliveryError as exc:
            values.update(status="failed", last_error=str(exc)[:1000])
        except TemporaryDeliveryError as exc:
            if attempts >= self.config.delivery_max_attempts:
                values.update(status="failed", last_error=f"gave up: {exc}"[:1000])
            else:
                delay = self.config.delivery_backoff_seconds * 4 ** (attempts - 1)
                values.update(
                    status="retrying",
                    last_error=str(exc)[:1000],
                    next_attempt_at=self.clock() + min(delay, 6 * 3600),
                )
        log.info("delivery %s to %s: %s", row.delivery_id, row.recipient, values["status"])
        with self.engine.begin() as conn:
            conn.execute(
                update(deliveries)
                .where(deliveries.c.delivery_id == row.delivery_id)
                .values(**values)
            )
