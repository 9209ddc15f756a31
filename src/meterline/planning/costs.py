"""Cost projections (seed ``/analytics/costs/projections``) from daily forecasts.

LLM spend (``cost_usd``) and tokens are each forecast day by day for a year (weekly
season, damped trend) and summed over the next 30, 90 and 365 days — the seed's flat
"last 30 days times N" becomes a forecast that follows the week and the trend. The
interval of a sum adds the daily bounds: day-to-day forecast errors of a level or
trend move together, so they are not assumed to cancel.
"""

from __future__ import annotations

from typing import Any

from meterline.planning.series import Forecast

PERIODS = {"nextMonth": 30, "next3Months": 90, "nextYear": 365}


def _sum(forecast: Forecast, days: int, key: str) -> float:
    return float(sum(r[key] for r in forecast.rows[:days]))


def projections(cost: Forecast, tokens: Forecast | None) -> dict[str, Any]:
    """The seed's fields (``nextMonth``, ``next3Months``, ``nextYear``,
    ``tokensNextMonth``, ``dailyCost``, ``dailyTokens``, ``baselineDays``) plus their
    80 % and 95 % intervals, the models chosen and the next 30 days' daily forecast."""
    body: dict[str, Any] = {
        name: round(_sum(cost, days, "yhat"), 4) for name, days in PERIODS.items()
    }
    tokens_month = round(_sum(tokens, 30, "yhat")) if tokens else 0
    body.update(
        {
            "tokensNextMonth": tokens_month,
            "dailyCost": round(body["nextMonth"] / 30, 4),
            "dailyTokens": round(tokens_month / 30),
            "baselineDays": len(cost.series.values),
            "currency": "USD",
            "method": "daily forecast (weekly season, damped trend), not a flat multiple",
            "models": {"cost_usd": cost.model, "tokens": tokens.model if tokens else None},
            "intervals": {
                name: {
                    key: round(_sum(cost, days, key), 4) for key in ("lo80", "hi80", "lo95", "hi95")
                }
                for name, days in PERIODS.items()
            },
            "daily": [
                {
                    "date": r["timestamp"][:10],
                    "cost": r["yhat"],
                    "lo80": r["lo80"],
                    "hi80": r["hi80"],
                    "tokens": round(tokens.rows[i]["yhat"]) if tokens else 0,
                }
                for i, r in enumerate(cost.rows[:30])
            ],
        }
    )
    return body
