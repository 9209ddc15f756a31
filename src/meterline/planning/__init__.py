"""Planning: forecasts of any metric, capacity, what-if scenarios and cost projections.

Built on the insight engine's forecasters (:mod:`meterline.insight.forecast` hourly,
:mod:`meterline.insight.daily` daily) and the query model; per-org capacity and cost
settings live in the metadata database (component ``planning``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from meterline.lazy import lazy_exports

if TYPE_CHECKING:
    from meterline.planning.series import PEAK_RPM, Forecast, Series, forecast_metric
    from meterline.planning.service import PlanningService
    from meterline.planning.settings import PlanningSettings

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "PEAK_RPM": "series",
        "Forecast": "series",
        "Series": "series",
        "forecast_metric": "series",
        "PlanningService": "service",
        "PlanningSettings": "settings",
    },
)

__all__ = [
    "PEAK_RPM",
    "Forecast",
    "PlanningService",
    "PlanningSettings",
    "Series",
    "forecast_metric",
]
