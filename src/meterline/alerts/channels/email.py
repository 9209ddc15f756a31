"""The e-mail channel: a plain-text message over the configured SMTP server."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

from meterline.reports.config import ReportsConfig
from meterline.reports.delivery import send_mail


def build_alert_email(
    alert: dict[str, Any], event: str, recipient: str, sender: str
) -> EmailMessage:
    """The message for one recipient: subject with state and what fired, body with the
    figures an on-call engineer needs first."""
    state = event.removeprefix("alert.").upper()
    where = ", ".join(f"{k} {v}" for k, v in sorted(alert["where"].items())) or "all traffic"
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = f"[Meterline] {state}: {alert['message']}"[:250]
    band = alert.get("band")
    lines = [
        alert["message"],
        "",
        f"Alert: {alert['alert_id']} ({alert['status']})",
        f"Source: {alert['source']}" + (f", kind {alert['kind']}" if alert.get("kind") else ""),
        f"Metric: {alert['metric']}",
        f"Where: {where}",
        f"Observed: {alert['observed']}",
    ]
    if band is not None:
        lines.append(f"Expected: {alert['expected']} (band {band['lower']} to {band['upper']})")
    if alert.get("threshold") is not None:
        lines.append(f"Threshold: {alert['condition']} {alert['threshold']}")
    if alert.get("score") is not None:
        lines.append(f"How unusual: {alert['score']} robust standard deviations")
    lines += [f"Opened: {alert['opened_at']}"]
    if alert.get("resolved_at"):
        lines.append(f"Resolved: {alert['resolved_at']} by {alert['resolved_by']}")
    lines += ["", "— Meterline"]
    message.set_content("\n".join(lines))
    return message


def send_alert_email(message: EmailMessage, config: ReportsConfig) -> None:
    """Send over SMTP; raises the report delivery errors (permanent or temporary)."""
    send_mail(message, config)
