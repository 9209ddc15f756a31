"""The planning capability for one server: forecasts, capacity, scenarios and costs."""

from __future__ import annotations

import hashlib
import threading
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
CACHE_SECONDS = 300.0
"""How long a forecast is reused for the same org, series and history."""


class PlanningService:
    """Answers the planning routes for an org from its history in the query model and
    its settings in the metadata database."""

    def __init__(self, engine: Engine, queries: QueryService, clock: Clock = system_clock) -> None:
        self.queries = queries
        self.clock = clock
        self.settings = SettingsStore(engine, clock)
        self._cache: dict[tuple[Any, ...], tuple[float, series.Forecast]] = {}
        self._lock = threading.Lock()

    def _predict(
        self,
        org_id: str,
        metric: str,
        granularity: str,
        horizon: int,
        filters: Sequence[Filter] = (),
    ) -> series.Forecast:
        """A forecast of ``metric``, reused for :data:`CACHE_SECONDS` by any request
        that reaches no further and sees exactly the same history (fitting is the slow
        part, and a planner asks again and again while trying scenarios); any change to
        the history — a new bucket, a back-dated event — makes a new forecast."""
        series.check_granularity(granularity, horizon)
        now = self.queries.now()
        history = series.metric_history(self.queries, org_id, metric, granularity, filters, now)
        fingerprint = hashlib.blake2b(history.values.tobytes(), digest_size=16).digest()
        key = (org_id, metric, granularity, tuple(filters), history.end, fingerprint)
        moment = self.clock()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and moment - hit[0] <= CACHE_SECONDS and hit[1].horizon >= horizon:
            return hit[1].head(horizon)
        # a daily fit costs the same for any horizon; an hourly one grows with it
        reach = series.MAX_HORIZON["day"] if granularity == "day" else max(horizon, 24)
        full = series.predict(history, reach)
        with self._lock:
            self._cache = {k: v for k, v in self._cache.items() if moment - v[0] <= CACHE_SECONDS}
            self._cache[key] = (moment, full)
        return full.head(horizon)

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
        return self._predict(org_id, metric, granularity, horizon, filters)

    def capacity(self, org_id: str, horizon: int, granularity: str) -> dict[str, Any]:
        """Current headroom and when the forecast peak requests per minute crosses the
        configured capacity (see :mod:`meterline.planning.capacity`)."""
        fc = self._predict(org_id, series.PEAK_RPM, granularity, horizon)
        now = self.queries.now()
        peak, at = series.current_peak(self.queries, org_id, CURRENT_WINDOW, now)
        return capacity.report(self.settings.get(org_id), fc, peak, at, CURRENT_WINDOW)

    def scenario(self, org_id: str, body: Any) -> dict[str, Any]:
        """Run a what-if scenario over the daily forecasts (see
        :mod:`meterline.planning.scenarios`)."""
        now = self.queries.now()
        today = series.floor_bucket(now, "day").date()
        request = scenarios.parse_scenario(body, today, series.MAX_HORIZON["day"])
        stored = self.settings.get(org_id)
        h = request.horizon
        requests = self._predict(org_id, "requests", "day", h)
        peaks = self._predict(org_id, series.PEAK_RPM, "day", h)
        try:
            llm: series.Forecast | None = self._predict(org_id, "cost_usd", "day", h)
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
        horizon = max(costs.PERIODS.values())
        cost = self._predict(org_id, "cost_usd", "day", horizon, filters)
        try:
            tokens: series.Forecast | None = self._predict(org_id, "tokens", "day", 30, filters)
        except ValidationError:
            tokens = None
        return costs.projections(cost, tokens)
