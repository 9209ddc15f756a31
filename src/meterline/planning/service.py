"""The planning capability for one server: forecasts, capacity, scenarios and costs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine

from meterline.clock import Clock, system_clock
from meterline.errors import ValidationError
from meterline.planning import capacity, costs, scenarios, series
from meterline.planning.settings import PlanningSettings, SettingsStore, parse_settings
from meterline.query import Filter, QueryService

CURRENT_WINDOW = timedelta(hours=24)


class PlanningService:
    """Answers the planning routes for an org from its history in the query model and
    its settings in the metadata database."""

    def __init__(self, engine: Engine, queries: QueryService, clock: Clock = system_clock) -> None:
        self.queries = queries
        self.settings = SettingsStore(engine, clock)

    def get_settings(self, org_id: str) -> PlanningSettings:
        """The org's capacity and cost settings."""
        return self.settings.get(org_id)

    def update_settings(self, org_id: str, body: Any) -> PlanningSettings:
        """Validate and store a settings update (see :func:`parse_settings`)."""
        return self.settings.update(org_id, parse_settings(body))

    def forecast(
        self,
        org_id: str,
        metric: str,
        horizon: int,
        granularity: str,
        filters: Sequence[Filter] = (),
    ) -> series.Forecast:
        """A forecast of one metric of the vocabulary (or peak requests per minute)."""
        return series.forecast_metric(
            self.queries, org_id, metric, horizon, granularity, filters, self.queries.now()
        )

    def capacity(self, org_id: str, horizon: int, granularity: str) -> dict[str, Any]:
        """Current headroom and when the forecast peak requests per minute crosses the
        configured capacity (see :mod:`meterline.planning.capacity`)."""
        series.check_granularity(granularity, horizon)
        now = self.queries.now()
        peak, at = series.current_peak(self.queries, org_id, CURRENT_WINDOW, now)
        fc = series.predict(
            series.peak_history(self.queries, org_id, granularity, (), now), horizon
        )
        return capacity.report(self.settings.get(org_id), fc, peak, at, CURRENT_WINDOW)

    def scenario(self, org_id: str, body: Any) -> dict[str, Any]:
        """Run a what-if scenario over the daily forecasts (see
        :mod:`meterline.planning.scenarios`)."""
        now = self.queries.now()
        today = series.floor_bucket(now, "day").date()
        request = scenarios.parse_scenario(body, today, series.MAX_HORIZON["day"])
        stored = self.settings.get(org_id)
        h = request.horizon
        requests = series.predict(
            series.metric_history(self.queries, org_id, "requests", "day", (), now), h
        )
        peaks = series.predict(series.peak_history(self.queries, org_id, "day", (), now), h)
        try:
            llm = series.predict(
                series.metric_history(self.queries, org_id, "cost_usd", "day", (), now), h
            )
        except ValidationError:
            llm = None  # no LLM spend to project: the scenario costs requests only
        return scenarios.run(
            request,
            requests,
            peaks,
            llm,
            request.capacity_rpm if request.capacity_rpm is not None else stored.capacity_rpm,
            request.cost_per_million_requests
            if request.cost_per_million_requests is not None
            else stored.cost_per_million_requests,
        )

    def cost_projections(self, org_id: str, filters: Sequence[Filter] = ()) -> dict[str, Any]:
        """Next month, quarter and year of LLM cost and tokens from daily forecasts."""
        now = self.queries.now()
        horizon = max(costs.PERIODS.values())
        cost = series.predict(
            series.metric_history(self.queries, org_id, "cost_usd", "day", filters, now), horizon
        )
        try:
            tokens = series.predict(
                series.metric_history(self.queries, org_id, "tokens", "day", filters, now), 30
            )
        except ValidationError:
            tokens = None
        return costs.projections(cost, tokens)
