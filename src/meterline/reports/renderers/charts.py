"""Charts drawn as ReportLab vector graphics (they stay sharp at any zoom and print)."""

from __future__ import annotations

from typing import Any

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.charts.linecharts import HorizontalLineChart
from reportlab.graphics.charts.piecharts import Pie
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors

PALETTE = [
    colors.HexColor(c)
    for c in (
        "#1F77B4",
        "#FF7F0E",
        "#2CA02C",
        "#D62728",
        "#9467BD",
        "#8C564B",
        "#E377C2",
        "#7F7F7F",
        "#BCBD22",
        "#17BECF",
    )  # fmt: skip
]
_MAX_LABELS = 12


def _short(category: str, time_axis: bool) -> str:
    if time_axis and "T" in category:
        day, _, clock = category.partition("T")
        clock = clock[:5]
        return day[5:] if clock == "00:00" else f"{day[5:]} {clock}"
    return category if len(category) <= 18 else category[:17] + "…"


def _axis_value(value: float, kind: str) -> str:
    if kind == "ratio":
        return f"{value * 100:.0f}%"
    if kind == "money":
        return f"${value:,.0f}" if value >= 10 else f"${value:.2f}"
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if abs(value) >= 1_000:
        return f"{value / 1_000:.1f}k"
    return f"{value:.0f}" if value == int(value) else f"{value:.2f}"


def draw_chart(section: dict[str, Any], width: float, height: float) -> Drawing:
    """A bar, line or pie chart of a chart section, sized ``width`` × ``height`` points."""
    drawing = Drawing(width, height)
    series = section["series"] or [{"name": "", "values": []}]
    categories = [_short(str(c), section.get("time_axis", False)) for c in section["categories"]]
    kind = section.get("value_kind", "count")
    if not categories:
        drawing.add(String(width / 2, height / 2, "No data in this period", textAnchor="middle"))
        return drawing
    if section["chart_type"] == "pie":
        pie = Pie()
        pie.x, pie.y = 30, 15
        pie.width = pie.height = min(height - 30, width / 2 - 40)
        values = [v or 0.0 for v in series[0]["values"]]
        pie.data = [max(v, 0.0) for v in values] if any(v > 0 for v in values) else [1.0]
        pie.labels = None
        pie.slices.strokeColor = colors.white
        for i in range(len(pie.data)):
            pie.slices[i].fillColor = PALETTE[i % len(PALETTE)]
        drawing.add(pie)
        total = sum(values) or 1.0
        legend = Legend()
        legend.x, legend.y = pie.x + pie.width + 30, pie.y + pie.height
        legend.fontSize = 8
        legend.alignment = "right"
        legend.columnMaximum = 10
        legend.colorNamePairs = [
            (PALETTE[i % len(PALETTE)], f"{categories[i]}  {100 * values[i] / total:.1f}%")
            for i in range(len(values))
        ]
        drawing.add(legend)
        return drawing
    if section["chart_type"] == "line":
        series = [
            {**s, "values": _drawable_line(s["values"])}
            for s in series
            if sum(v is not None for v in s["values"]) >= 2
        ]
        if not series:
            drawing.add(String(width / 2, height / 2, "Not enough data in this period",
                               textAnchor="middle"))  # fmt: skip
            return drawing
    chart: Any = HorizontalLineChart() if section["chart_type"] == "line" else VerticalBarChart()
    chart.x, chart.y = 50, 40
    chart.width, chart.height = width - 70, height - 70
    chart.data = [tuple(s["values"]) for s in series]
    step = max(1, -(-len(categories) // _MAX_LABELS))
    chart.categoryAxis.categoryNames = [
        c if i % step == 0 else "" for i, c in enumerate(categories)
    ]
    chart.categoryAxis.labels.fontSize = 7
    chart.categoryAxis.visibleTicks = step == 1  # a tick per hour over a week is noise
    chart.categoryAxis.labels.angle = 30 if len(categories) > 6 else 0
    chart.categoryAxis.labels.boxAnchor = "ne" if len(categories) > 6 else "n"
    chart.valueAxis.valueMin = 0
    # the axis's own scan trips over gaps (None), so give it the top explicitly
    top = max((v for s in series for v in s["values"] if v is not None), default=0.0)
    chart.valueAxis.valueMax = top * 1.1 if top > 0 else 1.0
    chart.valueAxis.labels.fontSize = 7
    chart.valueAxis.labelTextFormat = lambda v: _axis_value(float(v), kind)
    chart.valueAxis.visibleGrid = True
    chart.valueAxis.gridStrokeColor = colors.HexColor("#DDDDDD")
    for i in range(len(series)):
        if section["chart_type"] == "line":
            chart.lines[i].strokeColor = PALETTE[i % len(PALETTE)]
            chart.lines[i].strokeWidth = 1.5
        else:
            chart.bars[i].fillColor = PALETTE[i % len(PALETTE)]
            chart.bars[i].strokeColor = None
    drawing.add(chart)
    if len(series) > 1:
        legend = Legend()
        legend.x, legend.y = chart.x, height - 5
        legend.fontSize = 8
        legend.alignment = "right"
        legend.columnMaximum = 1
        legend.dxTextSpace = 4
        legend.deltax = 90
        legend.colorNamePairs = [
            (PALETTE[i % len(PALETTE)], str(s["name"])[:24]) for i, s in enumerate(series[:8])
        ]
        drawing.add(legend)
    return drawing


def _drawable_line(values: list[float | None]) -> list[float | None]:
    """Gaps stay gaps, but a point with gaps on both sides cannot be drawn as a line, so it
    is dropped (ReportLab draws each run of points as one polyline)."""
    out = list(values)
    for i, value in enumerate(values):
        before = values[i - 1] if i > 0 else None
        after = values[i + 1] if i + 1 < len(values) else None
        if value is not None and before is None and after is None:
            out[i] = None
    return out
