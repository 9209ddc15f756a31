"""The server-rendered web UI: an overview page with KPIs, charts and top lists."""

from __future__ import annotations

from meterline.dashboard.charts import line_chart

__all__ = ["line_chart"]
