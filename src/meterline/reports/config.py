"""Settings of the reports capability, read from ``METERLINE_REPORTS_*`` and
``METERLINE_SMTP_*`` environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


@dataclass(frozen=True, slots=True)
class ReportsConfig:
    """How reports are rendered, kept and delivered.

    ``artifact_ttl_days``: how long files and download links live (30 days).
    ``lease_seconds``: how long a claimed job is a worker's before another may take it.
    ``render_timeout``/``render_memory_mb``: hard limits of one render process.
    ``max_attachment_bytes``: larger files are e-mailed as a download link instead.
    """

    artifact_ttl_days: float = 30.0
    lease_seconds: float = 300.0
    max_attempts: int = 3
    render_timeout: float = 120.0
    render_memory_mb: int = 1024
    poll_interval: float = 0.5
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    mail_from: str = "reports@meterline.localhost"
    max_attachment_bytes: int = 10 * 1024 * 1024
    delivery_max_attempts: int = 8
    delivery_backoff_seconds: float = 60.0

    @classmethod
    def from_env(cls, **overrides: Any) -> ReportsConfig:
        """Defaults, then environment variables, then ``overrides``."""
        base = cls(
            artifact_ttl_days=float(_env("METERLINE_REPORTS_TTL_DAYS", "30")),
            lease_seconds=float(_env("METERLINE_REPORTS_LEASE_SECONDS", "300")),
            render_timeout=float(_env("METERLINE_REPORTS_RENDER_TIMEOUT", "120")),
            render_memory_mb=int(_env("METERLINE_REPORTS_RENDER_MEMORY_MB", "1024")),
            poll_interval=float(_env("METERLINE_REPORTS_POLL_INTERVAL", "0.5")),
            smtp_host=_env("METERLINE_SMTP_HOST", "127.0.0.1"),
            smtp_port=int(_env("METERLINE_SMTP_PORT", "25")),
            smtp_username=os.environ.get("METERLINE_SMTP_USERNAME"),
            smtp_password=os.environ.get("METERLINE_SMTP_PASSWORD"),
            smtp_starttls=_env("METERLINE_SMTP_STARTTLS", "0") in ("1", "true", "yes"),
            mail_from=_env("METERLINE_SMTP_FROM", "reports@meterline.localhost"),
            max_attachment_bytes=int(_env("METERLINE_REPORTS_MAX_ATTACHMENT", str(10 << 20))),
            delivery_backoff_seconds=float(_env("METERLINE_REPORTS_DELIVERY_BACKOFF", "60")),
        )
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})
