"""Reports: templates of metric queries rendered to JSON, CSV, PDF or Excel from data,
generated as leased jobs, scheduled by cron in a time zone and delivered once.

The API routers call :class:`ReportService`; each server process runs a
:class:`ReportRunner` that fires schedules, renders jobs in a bounded child process and
delivers finished reports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from meterline.lazy import lazy_exports

if TYPE_CHECKING:
    from meterline.reports.artifacts import ArtifactStore
    from meterline.reports.config import ReportsConfig
    from meterline.reports.cron import CronSchedule
    from meterline.reports.quota import (
        LimiterReportQuota,
        QuotaDecision,
        QuotaExceededError,
        ReportQuota,
    )
    from meterline.reports.runner import ReportRunner
    from meterline.reports.service import Download, ReportService
    from meterline.reports.templates import BUILTIN_TEMPLATES, Template, validate_template

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "ArtifactStore": "artifacts",
        "ReportsConfig": "config",
        "CronSchedule": "cron",
        "LimiterReportQuota": "quota",
        "QuotaDecision": "quota",
        "QuotaExceededError": "quota",
        "ReportQuota": "quota",
        "ReportRunner": "runner",
        "Download": "service",
        "ReportService": "service",
        "BUILTIN_TEMPLATES": "templates",
        "Template": "templates",
        "validate_template": "templates",
    },
)

__all__ = [
    "BUILTIN_TEMPLATES",
    "ArtifactStore",
    "CronSchedule",
    "Download",
    "LimiterReportQuota",
    "QuotaDecision",
    "QuotaExceededError",
    "ReportQuota",
    "ReportRunner",
    "ReportService",
    "ReportsConfig",
    "Template",
    "validate_template",
]
