"""The webhook channel: a JSON POST signed with HMAC-SHA256.

Headers: ``X-Meterline-Event`` (``alert.opened`` …), ``X-Meterline-Delivery`` (the same
on every retry of one notification, so a receiver can drop repeats) and, when the rule
has a secret, ``X-Meterline-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`` — the
same scheme as report webhooks.
"""

from __future__ import annotations

from meterline.reports.delivery import post_webhook, webhook_signature


def send_alert_webhook(
    url: str, body: bytes, *, event: str, delivery_id: str, secret: str | None, now: float
) -> None:
    """POST ``body``; raises ``PermanentDeliveryError`` for a 4xx answer (other than 408
    and 429) and ``TemporaryDeliveryError`` for anything worth retrying."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Meterline-Alerts",
        "X-Meterline-Event": event,
        "X-Meterline-Delivery": delivery_id,
    }
    if secret:
        headers["X-Meterline-Signature"] = webhook_signature(secret, int(now), body)
    post_webhook(url, body, headers, timeout=15)
