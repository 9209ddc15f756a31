"""How report and schedule rows are shown by the API (seed §4 shapes)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from meterline.query import iso
from meterline.reports.document import size_text
from meterline.reports.links import LinkSigner
from meterline.reports.spec import spec_from_json


def at(seconds: float | None) -> str | None:
    """Unix seconds as ISO 8601 UTC (``None`` stays ``None``)."""
    return None if seconds is None else iso(datetime.fromtimestamp(seconds, tz=UTC))


def status_of(row: Any, now: float) -> str:
    """The public status: a completed report past its expiry is ``expired``."""
    if row.status == "completed" and row.expires_at is not None and row.expires_at <= now:
        return "expired"
    return str(row.status)


def download_url(row: Any, base_url: str, signer: LinkSigner, now: float) -> str | None:
    """A signed link that works without a token until the report expires."""
    if status_of(row, now) != "completed" or row.expires_at is None:
        return None
    expires = int(row.expires_at)
    signature = signer.sign(row.report_id, expires)
    return f"{base_url}/v2/reports/{row.report_id}/download?expires={expires}&signature={signature}"


def summary(row: Any, base_url: str, signer: LinkSigner, now: float) -> dict[str, Any]:
    """A report as ``GET /v2/reports`` lists it."""
    return {
        "report_id": row.report_id,
        "name": row.name,
        "template_id": row.template_id,
        "status": status_of(row, now),
        "format": row.format,
        "created_at": at(row.created_at),
        "updated_at": at(row.updated_at),
        "file_size": size_text(row.size_bytes) if row.size_bytes is not None else None,
        "download_url": download_url(row, base_url, signer, now),
    }


def detail(
    row: Any, deliveries: list[Any], base_url: str, signer: LinkSigner, now: float
) -> dict[str, Any]:
    """A report as ``GET /v2/reports/{id}`` shows it, with per-recipient delivery state."""
    spec = spec_from_json(json.loads(row.request))
    status = status_of(row, now)
    body: dict[str, Any] = {
        "report_id": row.report_id,
        "name": row.name,
        "template_id": row.template_id,
        "description": row.description or None,
        "status": status,
        "progress": row.progress,
        "created_at": at(row.created_at),
        "updated_at": at(row.updated_at),
        "completed_at": at(row.completed_at),
        "file_info": None,
        "filters_applied": spec.filters_applied(),
        "layout": {
            "orientation": spec.layout.orientation,
            "include_charts": spec.layout.include_charts,
            "chart_types": list(spec.layout.chart_types),
        },
        "delivery": spec.delivery.public(),
        "deliveries": [
            {
                "channel": d.channel,
                "recipient": d.recipient,
                "status": d.status,
                "attempts": d.attempts,
                "last_error": d.last_error,
                "sent_at": at(d.sent_at),
                "next_attempt_at": at(d.next_attempt_at) if d.status == "retrying" else None,
            }
            for d in deliveries
        ],
        "download_url": download_url(row, base_url, signer, now),
        "expires_at": at(row.expires_at),
        "schedule_id": row.schedule_id,
    }
    if row.size_bytes is not None:
        body["file_info"] = {
            "format": row.format,
            "size_bytes": row.size_bytes,
            "size_formatted": size_text(row.size_bytes),
            "page_count": row.page_count,
        }
    if status == "failed":
        body["error_message"] = row.error_message
    return body


def schedule_view(row: Any) -> dict[str, Any]:
    """A schedule as the API shows it (webhook secrets left out)."""
    report = json.loads(row.report)
    if isinstance(report.get("delivery"), dict):
        report["delivery"].pop("secret", None)
    return {
        "schedule_id": row.schedule_id,
        "name": row.name,
        "cron": row.cron,
        "timezone": row.timezone,
        "status": row.status,
        "report": report,
        "next_run_at": at(row.next_run_at) if row.status == "active" else None,
        "last_run_at": at(row.last_run_at),
        "created_at": at(row.created_at),
    }
