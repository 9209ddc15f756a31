"""Report templates: declarative documents of sections, each a metric query shown as a KPI
row, a table or a chart.

A template never holds a time range: the report's period applies to every section.
Built-in templates are written in the same form as user-defined ones and pass the same
validation (:func:`validate_template`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from meterline.errors import MeterlineError, ValidationError
from meterline.query import parse_query

DISPLAYS = ("kpi", "table", "chart")
CHART_TYPES = ("bar", "line", "pie")
MAX_SECTIONS = 20


@dataclass(frozen=True, slots=True)
class Section:
    """One block of a report: a title, a query (JSON form, no range) and how to show it.

    ``granularity`` ``"auto"`` picks minute/hour/day from the report's period.
    """

    title: str
    display: str
    query: dict[str, Any]
    chart_type: str | None = None


@dataclass(frozen=True, slots=True)
class Template:
    """A validated template: id, name, description and its sections."""

    template_id: str
    name: str
    description: str
    sections: tuple[Section, ...]
    builtin: bool = False

    def as_json(self) -> dict[str, Any]:
        """The template as its API returns it."""
        return {
            "template_id": self.template_id,
            "name": self.name,
            "description": self.description,
            "builtin": self.builtin,
            "sections": [
                {
                    "title": s.title,
                    "display": s.display,
                    **({"chart_type": s.chart_type} if s.chart_type else {}),
                    "query": s.query,
                }
                for s in self.sections
            ],
        }


def _fail(errors: list[dict[str, Any]], where: str, message: str) -> None:
    errors.append({"field": where, "message": message})


def _check_section(raw: Any, i: int, errors: list[dict[str, Any]]) -> Section | None:
    where = f"sections[{i}]"
    if not isinstance(raw, dict):
        _fail(errors, where, "must be an object {title, display, query}")
        return None
    title, display, query = raw.get("title"), raw.get("display"), raw.get("query")
    chart_type = raw.get("chart_type")
    if not isinstance(title, str) or not 1 <= len(title) <= 100:
        _fail(errors, f"{where}.title", "must be a string of 1 to 100 characters")
    if display not in DISPLAYS:
        _fail(errors, f"{where}.display", f"must be one of {', '.join(DISPLAYS)}")
        return None
    if not isinstance(query, dict):
        _fail(errors, f"{where}.query", "must be a metric query object")
        return None
    for key in ("range", "start", "end"):
        if key in query:
            _fail(errors, f"{where}.query.{key}", "the report's period applies; omit it")
    granularity = query.get("granularity")
    probe = {k: v for k, v in query.items() if k not in ("range", "start", "end")}
    if granularity == "auto":
        probe["granularity"] = "day"
    try:
        now = datetime(2026, 1, 1, tzinfo=UTC)
        parse_query({**probe, "start": (now - timedelta(days=1)).isoformat(),
                     "end": now.isoformat()}, now=now)  # fmt: skip
    except MeterlineError as exc:
        for problem in exc.validation_errors or [{"field": "", "message": exc.message}]:
            _fail(errors, f"{where}.query.{problem['field']}".rstrip("."), problem["message"])
        return None
    dims = query.get("dimensions") or []
    if display == "kpi" and (dims or granularity):
        _fail(errors, where, "a kpi section takes metrics only (no dimensions or granularity)")
    if display == "chart":
        if chart_type not in CHART_TYPES:
            _fail(errors, f"{where}.chart_type", f"must be one of {', '.join(CHART_TYPES)}")
        elif chart_type == "line" and not granularity:
            _fail(errors, where, "a line chart needs a granularity (a time series)")
        elif chart_type == "pie" and (len(dims) != 1 or granularity):
            _fail(errors, where, "a pie chart takes one dimension and no granularity")
        elif chart_type == "bar" and not (
            (len(dims) == 1 and not granularity) or (granularity and not dims)
        ):
            _fail(errors, where, "a bar chart takes one dimension, or a granularity alone")
        if chart_type == "line" and len(dims) > 1:
            _fail(errors, where, "a line chart takes at most one dimension")
        if chart_type == "pie" and len(query.get("metrics") or []) != 1:
            _fail(errors, where, "a pie chart shows exactly one metric")
    if errors:
        return None
    return Section(str(title), display, query, chart_type if display == "chart" else None)


def validate_template(body: Any, *, template_id: str, builtin: bool = False) -> Template:
    """Check a template document and return it; one ``VALIDATION_ERROR`` lists every problem."""
    if not isinstance(body, dict):
        raise ValidationError("the template must be a JSON object {name, sections}")
    errors: list[dict[str, Any]] = []
    name, description = body.get("name"), body.get("description") or ""
    if not isinstance(name, str) or not 5 <= len(name) <= 100:
        _fail(errors, "name", "must be a string of 5 to 100 characters")
    if not isinstance(description, str) or len(description) > 1000:
        _fail(errors, "description", "must be a string of at most 1000 characters")
    raw_sections = body.get("sections")
    if not isinstance(raw_sections, list) or not 1 <= len(raw_sections) <= MAX_SECTIONS:
        _fail(errors, "sections", f"give 1 to {MAX_SECTIONS} sections")
        raw_sections = []
    sections = [_check_section(raw, i, errors) for i, raw in enumerate(raw_sections)]
    if errors:
        raise ValidationError("the template is not valid", validation_errors=errors)
    return Template(
        template_id,
        str(name),
        str(description),
        tuple(s for s in sections if s is not None),
        builtin,
    )


def _kpi(title: str, *metrics: str) -> dict[str, Any]:
    return {"title": title, "display": "kpi", "query": {"metrics": list(metrics)}}


def _series(title: str, metrics: list[str], chart: str = "line") -> dict[str, Any]:
    return {
        "title": title,
        "display": "chart",
        "chart_type": chart,
        "query": {"metrics": metrics, "granularity": "auto"},
    }


def _by(
    title: str, display: str, dim: list[str], metrics: list[str], limit: int, chart: str = ""
) -> dict[str, Any]:
    section: dict[str, Any] = {
        "title": title,
        "display": display,
        "query": {
            "metrics": metrics,
            "dimensions": dim,
            "order_by": [{"field": metrics[0], "direction": "desc"}],
            "limit": limit,
        },
    }
    if chart:
        section["chart_type"] = chart
    return section


_BUILTIN_DOCUMENTS: dict[str, dict[str, Any]] = {
    "api_overview": {
        "name": "API overview",
        "description": "Traffic, latency, errors and consumers at a glance.",
        "sections": [
            _kpi(
                "Summary",
                "requests",
                "error_rate",
                "latency_p50",
                "latency_p95",
                "unique_consumers",
                "bandwidth_bytes",
            ),  # fmt: skip
            _series("Requests over time", ["requests"]),
            _series("Latency p95 over time", ["latency_p95"]),
            _by("Responses by status class", "chart", ["status_class"], ["requests"], 10, "pie"),
            _by("Busiest endpoints", "chart", ["route"], ["requests"], 10, "bar"),
            _by(
                "Top endpoints",
                "table",
                ["route", "method"],
                ["requests", "error_rate", "latency_p95"],
                50,
            ),  # fmt: skip
        ],
    },
    "endpoint_performance": {
        "name": "Endpoint performance",
        "description": "Latency percentiles and error rates per endpoint.",
        "sections": [
            _kpi("Latency", "latency_avg", "latency_p50", "latency_p95", "latency_p99"),
            _series("Latency p95 over time", ["latency_p95", "latency_p50"]),
            _by("Slowest endpoints (p95)", "chart", ["route"], ["latency_p95"], 10, "bar"),
            _by(
                "Endpoints",
                "table",
                ["route", "method"],
                ["requests", "latency_p50", "latency_p95", "latency_p99", "error_rate"],
                1000,
            ),  # fmt: skip
        ],
    },
    "consumer_usage": {
        "name": "Consumer usage",
        "description": "Requests and bandwidth per consumer, for billing conversations.",
        "sections": [
            _kpi("Usage", "requests", "unique_consumers", "bandwidth_bytes"),
            _by("Requests by consumer", "chart", ["consumer_id"], ["requests"], 10, "bar"),
            _by("Share of requests", "chart", ["consumer_id"], ["requests"], 8, "pie"),
            _by(
                "Consumers",
                "table",
                ["consumer_id"],
                ["requests", "errors", "bandwidth_bytes", "first_seen", "last_seen"],
                5000,
            ),  # fmt: skip
        ],
    },
    "errors_slos": {
        "name": "Errors and SLOs",
        "description": "Error budget view: error rates, server errors and tail latency.",
        "sections": [
            _kpi("Service levels", "requests", "error_rate", "server_error_rate", "latency_p99"),
            _series("Errors over time", ["client_errors", "server_errors"], "bar"),
            _by("Errors by status class", "chart", ["status_class"], ["errors"], 10, "pie"),
            _by(
                "Endpoints with most server errors",
                "table",
                ["route", "method"],
                ["server_errors", "server_error_rate", "errors", "requests"],
                100,
            ),  # fmt: skip
            _by("Errors by status code", "table", ["status"], ["requests"], 50),
        ],
    },
    "llm_cost": {
        "name": "LLM cost",
        "description": "LLM calls, tokens and spend by model and user.",
        "sections": [
            _kpi("Spend", "cost_usd", "llm_requests", "tokens", "input_tokens", "output_tokens"),
            _series("Cost over time", ["cost_usd"]),
            _by("Cost by model", "chart", ["model"], ["cost_usd"], 10, "pie"),
            _by(
                "Cost by model",
                "table",
                ["model"],
                ["cost_usd", "llm_requests", "input_tokens", "output_tokens"],
                100,
            ),  # fmt: skip
            _by(
                "Top users by cost",
                "table",
                ["user_id"],
                ["cost_usd", "llm_requests", "tokens"],
                100,
            ),  # fmt: skip
        ],
    },
}

BUILTIN_TEMPLATES: dict[str, Template] = {
    key: validate_template(doc, template_id=key, builtin=True)
    for key, doc in _BUILTIN_DOCUMENTS.items()
}
"""The templates every org has; ids are stable and documented."""
