"""Server-side SVG charts, so pages need no front-end build or chart library."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

_COLOURS = ("#2563eb", "#f59e0b", "#dc2626", "#16a34a")


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return float(step * magnitude)
    return float(10 * magnitude)


def _label(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 1_000:
        return f"{value / 1_000:.1f}k"
    return f"{value:g}"


def line_chart(
    timestamps: Sequence[str],
    series: dict[str, Sequence[float | None]],
    *,
    title: str,
    unit: str = "",
    width: int = 640,
    height: int = 220,
) -> str:
    """An SVG line chart of one or more series over shared ISO timestamps.

    Missing values (``None``) break the line rather than dropping to zero.
    """
    left, right, top, bottom = 48, 12, 28, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for vs in series.values() for v in vs if v is not None]
    ymax = _nice_max(max(values) if values else 0.0)
    n = max(len(timestamps), 2)

    def x(i: int) -> float:
        return left + plot_w * i / (n - 1)

    def y(v: float) -> float:
        return top + plot_h * (1 - v / ymax)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(title)}" class="chart">',
        f'<text x="{left}" y="16" class="chart-title">{escape(title)}</text>',
    ]
    for k in range(5):
        value = ymax * k / 4
        yy = y(value)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{yy:.1f}" y2="{yy:.1f}" class="grid"/>'
        )
        parts.append(
            f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end" class="axis">'
            f"{_label(value)}</text>"
        )
    if timestamps:
        last = len(timestamps) - 1
        for i, anchor in ((0, "start"), (last // 2, "middle"), (last, "end")):
            stamp = datetime.fromisoformat(timestamps[i].replace("Z", "+00:00"))
            text = stamp.strftime("%d %b %H:%M")
            parts.append(
                f'<text x="{x(i):.1f}" y="{height - 8}" text-anchor="{anchor}" class="axis">'
                f"{text}</text>"
            )
    for index, (name, points) in enumerate(series.items()):
        colour = _COLOURS[index % len(_COLOURS)]
        path, pen_down = [], False
        for i, v in enumerate(points):
            if v is None:
                pen_down = False
                continue
            path.append(f"{'L' if pen_down else 'M'}{x(i):.1f},{y(v):.1f}")
            pen_down = True
        drawn = sum(1 for v in points if v is not None)
        parts.append(
            f'<path d="{" ".join(path)}" fill="none" stroke="{colour}" stroke-width="1.8" '
            f'data-series="{escape(name)}" data-points="{drawn}"/>'
        )
        parts.append(
            f'<text x="{width - right - 140 + 70 * index}" y="16" fill="{colour}" class="legend">'
            f"■ {escape(name)}{(' (' + escape(unit) + ')') if unit else ''}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
