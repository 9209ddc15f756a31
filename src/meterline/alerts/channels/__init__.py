"""Notification channels: a signed webhook and e-mail over SMTP."""

from __future__ import annotations

from meterline.alerts.channels.email import build_alert_email, send_alert_email
from meterline.alerts.channels.webhook import send_alert_webhook

__all__ = ["build_alert_email", "send_alert_email", "send_alert_webhook"]
