"""Per-org planning settings (capacity, cost per million requests), kept in the metadata DB."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Engine, insert, select, update

from meterline.clock import Clock, system_clock
from meterline.errors import ValidationError
from meterline.planning.tables import planning_settings

FIELDS = ("capacity_rpm", "cost_per_million_requests")


@dataclass(frozen=True, slots=True)
class PlanningSettings:
    """What an org configured: ``capacity_rpm`` (peak requests per minute it is
    provisioned for) and ``cost_per_million_requests`` (USD); ``None`` when unset."""

    capacity_rpm: float | None = None
    cost_per_million_requests: float | None = None
    updated_at: float | None = None

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def parse_settings(body: Any) -> dict[str, float | None]:
    """Validate a settings update: an object with any of :data:`FIELDS`, each a positive
    number (capacity) or a number >= 0 (cost), or ``null`` to unset it.

    Raises :class:`ValidationError` listing every problem."""
    if not isinstance(body, dict):
        raise ValidationError(
            "the body must be a JSON object",
            details=f'Send e.g. {{"capacity_rpm": 1200}}; fields: {", ".join(FIELDS)}.',
        )
    problems: list[dict[str, Any]] = []
    out: dict[str, float | None] = {}
    for name, value in body.items():
        if name not in FIELDS:
            problems.append({"field": name, "message": f"unknown field; use {', '.join(FIELDS)}"})
            continue
        if value is None:
            out[name] = None
            continue
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not math.isfinite(value):
            problems.append({"field": name, "message": "must be a number or null"})
            continue
        if name == "capacity_rpm" and value <= 0:
            problems.append({"field": name, "message": "must be greater than 0"})
        elif value < 0:
            problems.append({"field": name, "message": "must be 0 or more"})
        else:
            out[name] = float(value)
    if not out and not problems:
        problems.append({"field": "body", "message": f"give at least one of {', '.join(FIELDS)}"})
    if problems:
        raise ValidationError(
            "invalid planning settings",
            details="capacity_rpm is peak requests per minute (> 0); "
            "cost_per_million_requests is in USD (>= 0); null unsets either.",
            validation_errors=problems,
        )
    return out


class SettingsStore:
    """Reads and writes :class:`PlanningSettings` per org."""

    def __init__(self, engine: Engine, clock: Clock = system_clock) -> None:
        self.engine = engine
        self.clock = clock

    def get(self, org_id: str) -> PlanningSettings:
        """The org's settings (all ``None`` when it never set any)."""
        t = planning_settings
        with self.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.org_id == org_id)).mappings().first()
        if row is None:
            return PlanningSettings()
        return PlanningSettings(
            row["capacity_rpm"], row["cost_per_million_requests"], row["updated_at"]
        )

    def update(self, org_id: str, changes: dict[str, float | None]) -> PlanningSettings:
        """Apply ``changes`` (from :func:`parse_settings`) and return the new settings."""
        t = planning_settings
        now = self.clock()
        with self.engine.begin() as conn:
            exists = conn.execute(select(t.c.org_id).where(t.c.org_id == org_id)).first()
            if exists is None:
                conn.execute(insert(t).values(org_id=org_id, updated_at=now, **changes))
            else:
                conn.execute(
                    update(t).where(t.c.org_id == org_id).values(updated_at=now, **changes)
                )
        return self.get(org_id)
