"""Report documents with known content, for renderer tests and the bench."""

from __future__ import annotations

from typing import Any


def sample_document(
    rows: int = 500, charts: int = 6, orientation: str = "landscape"
) -> dict[str, Any]:
    """A document shaped like a real endpoint report: KPIs, ``charts`` charts (line, bar and
    pie in turn) and a ``rows``-row table whose routes are numbered so each can be found."""
    hours = [f"2026-11-{16 + h // 24:02d}T{h % 24:02d}:00:00Z" for h in range(7 * 24)]
    kinds = ["line", "bar", "pie"]
    sections: list[dict[str, Any]] = [
        {
            "kind": "kpi",
            "title": "Summary",
            "items": [
                {
                    "metric": "requests",
                    "label": "Requests",
                    "unit": "requests",
                    "kind": "count",
                    "value": 1_234_567,
                },
                {
                    "metric": "error_rate",
                    "label": "Error rate",
                    "unit": "ratio",
                    "kind": "ratio",
                    "value": 0.0123,
                },
                {
                    "metric": "latency_p95",
                    "label": "Latency p95",
                    "unit": "ms",
                    "kind": "latency",
                    "value": 182.5,
                },
                {
                    "metric": "cost_usd",
                    "label": "Cost USD",
                    "unit": "USD",
                    "kind": "money",
                    "value": 42.5,
                },
            ],
        }
    ]
    for c in range(charts):
        kind = kinds[c % 3]
        if kind == "line":
            chart = {
                "categories": hours,
                "series": [
                    {
                        "name": "Requests",
                        "values": [float(1000 + (h * 37) % 500) for h in range(len(hours))],
                    },
                    {"name": "Errors", "values": [float((h * 13) % 80) for h in range(len(hours))]},
                ],
                "time_axis": True,
            }
        else:
            chart = {
                "categories": [f"/v1/resource-{i}/:id" for i in range(8)],
                "series": [
                    {"name": "Requests", "values": [float(900 - i * 100) for i in range(8)]}
                ],
                "time_axis": False,
            }
        sections.append(
            {
                "kind": "chart",
                "title": f"Chart {c + 1} ({kind})",
                "chart_type": kind,
                "unit": "requests",
                "value_kind": "count",
                **chart,
            }
        )
    sections.append(
        {
            "kind": "table",
            "title": "Endpoints",
            "columns": [
                {"key": "route", "label": "Route", "kind": "dimension"},
                {"key": "method", "label": "Method", "kind": "dimension"},
                {"key": "requests", "label": "Requests", "kind": "count"},
                {"key": "error_rate", "label": "Error rate", "kind": "ratio"},
                {"key": "latency_p95", "label": "Latency p95", "kind": "latency"},
                {"key": "bandwidth_bytes", "label": "Bandwidth bytes", "kind": "bytes"},
            ],
            "rows": [
                [
                    f"/api/route-{i:05d}/items/:id",
                    "GET",
                    100_000 - i,
                    (i % 100) / 1000,
                    10.0 + i % 300,
                    1_000_000 + i,
                ]
                for i in range(rows)
            ],
        }
    )
    return {
        "title": "Weekly API report",
        "description": "Traffic, latency and errors for the week.",
        "template": {"template_id": "api_overview", "name": "API overview"},
        "period": {"start": "2026-11-16T00:00:00Z", "end": "2026-11-23T00:00:00Z"},
        "filters": {},
        "generated_at": "2026-11-23T09:00:00Z",
        "orientation": orientation,
        "sections": sections,
    }
