"""The report document: every number of a report, computed by the query model, in a plain
JSON form that each renderer draws without computing anything itself.

A document is ``{title, description, template, period, generated_at, orientation,
sections}``; a section is one of ``{kind: "kpi", items}``, ``{kind: "table", columns,
rows}`` or ``{kind: "chart", chart_type, categories, series, unit}``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from meterline.query import METRICS, QueryService, TimeRange, iso, parse_query
from meterline.query.presets import default_granularity
from meterline.reports.spec import ReportSpec
from meterline.reports.templates import Section, Template

_ABBREVIATIONS = {"p50": "p50", "p95": "p95", "p99": "p99", "usd": "USD", "id": "ID", "llm": "LLM"}


def label(name: str) -> str:
    """A column or metric name as people read it: ``latency_p95`` → ``Latency p95``."""
    words = [_ABBREVIATIONS.get(w, w) for w in name.split("_")]
    first = words[0]
    return " ".join([first[:1].upper() + first[1:], *words[1:]])


def metric_kind(name: str) -> str:
    """The value kind of a metric or ``dimension`` for a dimension/timestamp column."""
    return METRICS[name].kind if name in METRICS else "dimension"


def format_value(value: Any, kind: str) -> str:
    """A value as shown in PDF tables and KPI tiles."""
    if value is None:
        return "–"
    if kind == "ratio":
        return f"{float(value) * 100:.2f} %"
    if kind == "latency":
        return f"{float(value):,.1f} ms"
    if kind == "money":
        return f"${float(value):,.2f}"
    if kind == "bytes":
        return size_text(int(value))
    if kind == "rate":
        return f"{float(value):,.1f}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def size_text(size: int) -> str:
    """Bytes in the seed's ``2.4MB`` style."""
    amount = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if amount < 1024 or unit == "GB":
            return f"{int(amount)}B" if unit == "B" else f"{amount:.1f}{unit}"
        amount /= 1024
    return f"{amount:.1f}GB"


def _chart_type(section: Section, spec: ReportSpec, series: bool) -> str | None:
    allowed = spec.layout.chart_types
    wanted = section.chart_type or "bar"
    if wanted in allowed:
        return wanted
    fallbacks = ("line", "bar") if series else ("bar", "pie")
    return next((t for t in fallbacks if t in allowed), None)


def build_document(
    queries: QueryService,
    org_id: str,
    template: Template,
    spec: ReportSpec,
    *,
    generated_at: datetime,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Run every section's query for the report's period and filters; charts the layout
    leaves out are skipped, and a chart type it does not allow falls back to one it does."""
    extra_filters = [
        {"field": name, "op": "in", "value": values}
        for name, values in spec.dimension_filters.items()
    ]
    sections: list[dict[str, Any]] = []
    wanted = [s for s in template.sections if s.display != "chart" or spec.layout.include_charts]
    for index, section in enumerate(wanted):
        body = dict(section.query)
        if body.get("granularity") == "auto":
            body["granularity"] = default_granularity_for(spec)
        body["filters"] = [*(body.get("filters") or []), *extra_filters]
        body["start"], body["end"] = iso(spec.start), iso(spec.end)
        query = parse_query(body, now=spec.end)
        result = queries.run(org_id, query)
        shaped = _shape(section, spec, list(query.dimensions), list(query.metrics), result.data)
        if shaped is not None:
            sections.append(shaped)
        if progress is not None:
            progress(10 + int(40 * (index + 1) / max(1, len(wanted))))
    return {
        "title": spec.name,
        "description": spec.description or template.description,
        "template": {"template_id": template.template_id, "name": template.name},
        "period": {"start": iso(spec.start), "end": iso(spec.end)},
        "filters": spec.dimension_filters,
        "generated_at": iso(generated_at),
        "orientation": spec.layout.orientation,
        "sections": sections,
    }


def default_granularity_for(spec: ReportSpec) -> str:
    """minute/hour/day, whichever gives a readable chart over the report's period."""
    return default_granularity(TimeRange(spec.start, spec.end))


def _shape(
    section: Section,
    spec: ReportSpec,
    dims: list[str],
    metrics: list[str],
    data: list[dict[str, Any]],
) -> dict[str, Any] | None:
    if section.display == "kpi":
        row = data[0] if data else {}
        return {
            "kind": "kpi",
            "title": section.title,
            "items": [
                {
                    "metric": m,
                    "label": label(m),
                    "unit": METRICS[m].unit,
                    "kind": METRICS[m].kind,
                    "value": row.get(m),
                }
                for m in metrics
            ],
        }
    series_data = bool(data) and "timestamp" in data[0]
    keys = [*dims, *(["timestamp"] if series_data or section.query.get("granularity") else [])]
    if section.display == "table":
        columns = [*keys, *metrics]
        return {
            "kind": "table",
            "title": section.title,
            "columns": [{"key": c, "label": label(c), "kind": metric_kind(c)} for c in columns],
            "rows": [[row.get(c) for c in columns] for row in data],
        }
    chart_type = _chart_type(section, spec, bool(section.query.get("granularity")))
    if chart_type is None:
        return None
    return {"kind": "chart", "title": section.title, "chart_type": chart_type,
            **_chart_data(dims, metrics, data, bool(section.query.get("granularity")))}  # fmt: skip


def _chart_data(
    dims: list[str], metrics: list[str], data: list[dict[str, Any]], series: bool
) -> dict[str, Any]:
    unit = METRICS[metrics[0]].unit
    kind = METRICS[metrics[0]].kind
    if series and dims:
        # one line per dimension value, first metric only
        categories = sorted({str(r["timestamp"]) for r in data})
        lines: dict[str, dict[str, Any]] = {}
        for r in data:
            lines.setdefault(str(r[dims[0]]), {})[str(r["timestamp"])] = r.get(metrics[0])
        return {
            "categories": categories,
            "series": [
                {"name": name, "values": [_num(points.get(c)) for c in categories]}
                for name, points in lines.items()
            ],
            "unit": unit,
            "value_kind": kind,
            "time_axis": True,
        }
    key = "timestamp" if series else dims[0]
    return {
        "categories": [str(r.get(key)) for r in data],
        "series": [{"name": label(m), "values": [_num(r.get(m)) for r in data]} for m in metrics],
        "unit": unit,
        "value_kind": kind,
        "time_axis": series,
    }


def _num(value: Any) -> float | None:
    # no data (latency of an empty bucket) stays a gap, not a misleading zero
    return float(value) if isinstance(value, int | float) else None
