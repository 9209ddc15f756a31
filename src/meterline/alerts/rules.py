"""Alert rules: validation of their JSON form, and their storage.

Two types:

* ``threshold`` — the shape of one entry of the seed's ``alert_thresholds``: ``metric``
  (any metric of the query vocabulary, in its own unit: ``error_rate`` is 0–1),
  ``condition`` (``above``/``below``), ``value``, ``duration`` (how long the condition
  must hold, ``"0s"``…``"1d"``), plus ``window`` (the span the metric is computed over,
  ``"1m"`` by default) and ``filters`` (query-model filters, or ``{dimension: value}``).
* ``anomaly`` — routes anomalies to notifications: ``kinds`` (empty means all) and
  ``min_score`` (how unusual, in robust standard deviations).

Both may carry ``notify``: ``{"webhook": {"url", "secret"}, "email": [addresses]}``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from sqlalchemy import Engine, delete, func, select, update

from meterline.alerts.tables import alert_rules
from meterline.clock import Clock
from meterline.errors import ConflictError, NotFoundError, ValidationError
from meterline.insight.anomalies import KINDS
from meterline.query import METRICS, parse_query
from meterline.realtime.protocol import parse_duration

RULE_TYPES = ("threshold", "anomaly")
MAX_RULES = 200
"""Rules per org: each threshold rule is a query every round."""
_FIELDS = {
    "name",
    "type",
    "metric",
    "condition",
    "value",
    "duration",
    "window",
    "filters",
    "kinds",
    "min_score",
    "notify",
    "enabled",
}


def _problem(problems: list[dict[str, Any]], field: str, message: str) -> None:
    problems.append({"field": field, "message": message})


def _seconds(
    raw: Any, field: str, default: float, top: float, problems: list[dict[str, Any]]
) -> float:
    if raw is None:
        return default
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        seconds: float | None = float(raw)
    else:
        seconds = parse_duration(raw)
    if seconds is None or not 0 <= seconds <= top:
        _problem(problems, field, f"a duration such as 30s, 5m or 1h (at most {int(top)}s)")
        return default
    return seconds


def _filters(raw: Any, metric: str, problems: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if isinstance(raw, dict):
        raw = [
            {"field": k, "op": "in" if isinstance(v, list) else "eq", "value": v}
            for k, v in raw.items()
        ]
    try:
        parse_query(
            {"metrics": [metric if metric in METRICS else "requests"], "filters": raw},
            now=datetime.now(UTC),
        )
    except ValidationError as exc:
        for p in exc.validation_errors or [{"field": "filters", "message": exc.message}]:
            _problem(problems, str(p.get("field", "filters")), str(p.get("message")))
        return []
    return list(raw)


def _notify(raw: Any, problems: list[dict[str, Any]]) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or set(raw) - {"webhook", "email"}:
        _problem(problems, "notify", 'must be {"webhook": {"url", "secret"}, "email": [...]}')
        return {}
    out: dict[str, Any] = {}
    hook = raw.get("webhook")
    if hook is not None:
        url = hook.get("url") if isinstance(hook, dict) else None
        parsed = urlparse(url) if isinstance(url, str) else None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc:
            _problem(problems, "notify.webhook.url", "must be an http(s) URL")
        else:
            secret = hook.get("secret")
            if secret is not None and (not isinstance(secret, str) or len(secret) < 16):
                _problem(problems, "notify.webhook.secret", "must be a string of 16+ characters")
            out["webhook"] = {"url": url, "secret": secret}
    mails = raw.get("email")
    if mails is not None:
        if isinstance(mails, str):
            mails = [mails]
        good = isinstance(mails, list) and 0 < len(mails) <= 20
        if good:
            good = all(isinstance(m, str) and "@" in m and " " not in m for m in mails)
        if not good:
            _problem(problems, "notify.email", "must be a list of up to 20 e-mail addresses")
        else:
            out["email"] = list(dict.fromkeys(mails))
    return out


def parse_rule(body: Any) -> dict[str, Any]:
    """Validate a rule's JSON form into row values; raises ``ValidationError`` listing
    every problem."""
    if not isinstance(body, dict):
        raise ValidationError("the rule must be a JSON object")
    problems: list[dict[str, Any]] = []
    for key in sorted(set(body) - _FIELDS):
        _problem(problems, key, f"unknown field; allowed: {', '.join(sorted(_FIELDS))}")
    name = body.get("name")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 200:
        _problem(problems, "name", "give a name of 1 to 200 characters")
    kind = body.get("type", "threshold")
    if kind not in RULE_TYPES:
        _problem(problems, "type", "must be threshold or anomaly")
    values: dict[str, Any] = {
        "name": name.strip() if isinstance(name, str) else "",
        "type": kind,
        "metric": None,
        "condition": None,
        "value": None,
        "duration": 0.0,
        "window_seconds": 60.0,
        "filters": "[]",
        "kinds": "[]",
        "min_score": 0.0,
        "notify": json.dumps(_notify(body.get("notify"), problems)),
    }
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        _problem(problems, "enabled", "must be true or false")
    values["enabled"] = bool(enabled)
    if kind == "threshold":
        metric = body.get("metric")
        if metric not in METRICS:
            _problem(problems, "metric", f"one of {', '.join(METRICS)}")
        condition = body.get("condition")
        if condition not in ("above", "below"):
            _problem(problems, "condition", "must be above or below")
        value = body.get("value")
        if isinstance(value, bool) or not isinstance(value, int | float):
            _problem(problems, "value", "must be a number")
        elif metric in METRICS and METRICS[metric].kind == "ratio" and not 0 <= value <= 1:
            _problem(problems, "value", f"{metric} is a fraction from 0 to 1 (5 % is 0.05)")
        values.update(
            metric=metric,
            condition=condition,
            value=float(value) if isinstance(value, int | float) else None,
            duration=_seconds(body.get("duration"), "duration", 0.0, 86400, problems),
            window_seconds=_seconds(body.get("window"), "window", 60.0, 86400, problems),
            filters=json.dumps(_filters(body.get("filters"), str(metric), problems)),
        )
        if values["window_seconds"] < 10:
            _problem(problems, "window", "must be at least 10s")
    elif kind == "anomaly":
        kinds = body.get("kinds", [])
        if not isinstance(kinds, list) or any(k not in KINDS for k in kinds):
            _problem(problems, "kinds", f"a list of {', '.join(KINDS)} (empty for all)")
            kinds = []
        score = body.get("min_score", 0.0)
        if isinstance(score, bool) or not isinstance(score, int | float) or score < 0:
            _problem(problems, "min_score", "must be a number ≥ 0 (robust standard deviations)")
            score = 0.0
        values.update(kinds=json.dumps(list(dict.fromkeys(kinds))), min_score=float(score))
    if problems:
        raise ValidationError("the alert rule is not valid", validation_errors=problems)
    return values


def _duration_text(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def rule_json(row: Any) -> dict[str, Any]:
    """The public shape of a rule; a webhook secret is never shown, only whether it is set."""
    notify = json.loads(row.notify)
    if "webhook" in notify:
        hook = notify["webhook"]
        notify["webhook"] = {"url": hook["url"], "secret_set": bool(hook.get("secret"))}
    out: dict[str, Any] = {
        "rule_id": row.rule_id,
        "name": row.name,
        "type": row.type,
        "enabled": bool(row.enabled),
        "notify": notify,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
    }
    if row.type == "threshold":
        out.update(
            metric=row.metric,
            condition=row.condition,
            value=row.value,
            duration=_duration_text(row.duration),
            window=_duration_text(row.window_seconds),
            filters=json.loads(row.filters),
        )
    else:
        out.update(kinds=json.loads(row.kinds), min_score=row.min_score)
    return out


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _public(body: dict[str, Any], row: Any) -> dict[str, Any]:
    """The stored rule as an input body, keeping its webhook secret, for a partial update."""
    current = rule_json(row)
    for key in ("rule_id", "created_at", "updated_at"):
        current.pop(key)
    notify = json.loads(row.notify)
    current["notify"] = notify
    if "notify" in body and isinstance(body["notify"], dict):
        hook = body["notify"].get("webhook")
        old = notify.get("webhook")
        # an update that repeats the URL without the secret keeps the secret
        if (
            isinstance(hook, dict)
            and old
            and hook.get("url") == old["url"]
            and "secret" not in hook
        ):
            body = {
                **body,
                "notify": {**body["notify"], "webhook": {**hook, "secret": old.get("secret")}},
            }
    return {**current, **body}


class RuleStore:
    """The org's alert rules in the metadata database."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    def create(self, org_id: str, body: Any) -> dict[str, Any]:
        """Validate and save a new rule; returns it."""
        values = parse_rule(body)
        with self.engine.connect() as conn:
            count = conn.execute(
                select(func.count()).select_from(alert_rules).where(alert_rules.c.org_id == org_id)
            ).scalar_one()
        if count >= MAX_RULES:
            raise ConflictError(
                f"the org already has {MAX_RULES} alert rules",
                code="RULE_LIMIT_REACHED",
                details="Delete or combine rules (filters take lists) before adding one.",
            )
        now = self.clock()
        values.update(
            rule_id="rul_" + secrets.token_hex(8), org_id=org_id, created_at=now, updated_at=now
        )
        with self.engine.begin() as conn:
            conn.execute(alert_rules.insert().values(**values))
        return self.get(org_id, values["rule_id"])

    def _row(self, org_id: str, rule_id: str) -> Any:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(alert_rules).where(
                    alert_rules.c.org_id == org_id, alert_rules.c.rule_id == rule_id
                )
            ).one_or_none()
        if row is None:
            raise NotFoundError(
                f"alert rule {rule_id!r} was not found",
                code="RULE_NOT_FOUND",
                details="List the org's rules with GET /v2/alerts/rules.",
            )
        return row

    def get(self, org_id: str, rule_id: str) -> dict[str, Any]:
        """One rule; ``RULE_NOT_FOUND`` when the org has none with that id."""
        return rule_json(self._row(org_id, rule_id))

    def list(self, org_id: str) -> list[dict[str, Any]]:
        """The org's rules, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(alert_rules)
                .where(alert_rules.c.org_id == org_id)
                .order_by(alert_rules.c.created_at, alert_rules.c.rule_id)
            ).all()
        return [rule_json(r) for r in rows]

    def update(self, org_id: str, rule_id: str, body: Any) -> dict[str, Any]:
        """Change some fields of a rule (the others keep their values); its type is fixed."""
        row = self._row(org_id, rule_id)
        if not isinstance(body, dict):
            raise ValidationError("the update must be a JSON object")
        if "type" in body and body["type"] != row.type:
            raise ValidationError(
                "a rule's type cannot change",
                details="Delete the rule and create one of the other type.",
                validation_errors=[{"field": "type", "message": f"stays {row.type}"}],
            )
        values = parse_rule(_public(body, row))
        values.update(updated_at=self.clock(), pending_since=None)
        with self.engine.begin() as conn:
            conn.execute(
                update(alert_rules).where(alert_rules.c.rule_id == rule_id).values(**values)
            )
        return self.get(org_id, rule_id)

    def delete(self, org_id: str, rule_id: str) -> None:
        """Delete a rule; its alerts stay in the history."""
        self._row(org_id, rule_id)
        with self.engine.begin() as conn:
            conn.execute(delete(alert_rules).where(alert_rules.c.rule_id == rule_id))

    def rows(self, org_id: str | None = None, kind: str | None = None) -> Sequence[Any]:
        """Enabled rule rows (of one org and type when given), for the evaluators."""
        query = select(alert_rules).where(alert_rules.c.enabled.is_(True))
        if org_id is not None:
            query = query.where(alert_rules.c.org_id == org_id)
        if kind is not None:
            query = query.where(alert_rules.c.type == kind)
        with self.engine.connect() as conn:
            return list(conn.execute(query).all())

    def set_pending(self, rule_id: str, since: float | None) -> None:
        """Record since when a threshold rule's condition has held (None: it does not)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(alert_rules)
                .where(alert_rules.c.rule_id == rule_id)
                .values(pending_since=since)
            )
