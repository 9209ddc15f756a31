"""PDF renderer (ReportLab platypus): drawn from data, with vector charts and tables that
break across pages with their header repeated, and "page x of y" on every page.

ReportLab was chosen by measurement: an 11-page report with 6 charts and a 500-row table
renders in about 0.3 s, where HTML-to-PDF engines took 1.4–11 s (see ``bench/reports.py``).
"""

from __future__ import annotations

import io
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    CondPageBreak,
    KeepTogether,
    LongTable,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from meterline.reports.document import format_value
from meterline.reports.renderers.charts import draw_chart

_NAVY = colors.HexColor("#1F3A5F")
_ZEBRA = colors.HexColor("#F3F6FA")
_MARGIN = 15 * mm

_styles = getSampleStyleSheet()
_TITLE = ParagraphStyle("ReportTitle", parent=_styles["Title"], alignment=0, fontSize=20,
                        textColor=_NAVY, spaceAfter=4)  # fmt: skip
_META = ParagraphStyle("Meta", parent=_styles["Normal"], fontSize=9, textColor=colors.grey)
_H2 = ParagraphStyle("H2", parent=_styles["Heading2"], textColor=_NAVY, spaceBefore=10)
_CELL = ParagraphStyle("Cell", parent=_styles["Normal"], fontSize=7.5, leading=9)
_CELL_RIGHT = ParagraphStyle("CellRight", parent=_CELL, alignment=TA_RIGHT)
_KPI_LABEL = ParagraphStyle("KpiLabel", parent=_styles["Normal"], fontSize=8,
                            textColor=colors.grey)  # fmt: skip
_KPI_VALUE = ParagraphStyle("KpiValue", parent=_styles["Normal"], fontSize=15, leading=18,
                            textColor=_NAVY)  # fmt: skip


class _NumberedCanvas(Canvas):  # type: ignore[misc]
    """Defers page output so every footer can say "page x of y"."""

    pages_written = 0

    def __init__(self, *args: Any, footer: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._saved: list[dict[str, Any]] = []
        self._footer = footer

    def showPage(self) -> None:  # noqa: N802 - ReportLab's name
        self._saved.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._saved)
        for state in self._saved:
            self.__dict__.update(state)
            width, _ = self._pagesize
            self.setFont("Helvetica", 7.5)
            self.setFillColor(colors.grey)
            self.drawString(_MARGIN, 8 * mm, self._footer)
            self.drawRightString(width - _MARGIN, 8 * mm, f"Page {self._pageNumber} of {total}")
            super().showPage()
        _NumberedCanvas.pages_written = total
        super().save()


def render_pdf(document: dict[str, Any]) -> tuple[bytes, int]:
    """The document as PDF bytes and its page count."""
    pagesize = landscape(A4) if document.get("orientation") == "landscape" else A4
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=pagesize,
        leftMargin=_MARGIN,
        rightMargin=_MARGIN,
        topMargin=_MARGIN,
        bottomMargin=_MARGIN + 4 * mm,
        title=document["title"],
        author="Meterline",
        subject=document.get("description") or "",
    )
    width = pagesize[0] - 2 * _MARGIN
    story: list[Any] = [
        Paragraph(escape(document["title"]), _TITLE),
        Paragraph(
            escape(
                f"{document['template']['name']} · {_period(document['period'])}"
                f" · generated {document['generated_at'].replace('T', ' ').rstrip('Z')} UTC"
            ),
            _META,
        ),
    ]
    if document.get("filters"):
        filters = "; ".join(
            f"{k}: {', '.join(map(str, v))}" for k, v in document["filters"].items()
        )
        story.append(Paragraph(escape(f"Filters — {filters}"), _META))
    if document.get("description"):
        story += [Spacer(1, 4), Paragraph(escape(document["description"]), _styles["Normal"])]
    for section in document["sections"]:
        story += _section(section, width, pagesize[1])
    footer = f"{document['title']} · Meterline"
    doc.build(story, canvasmaker=lambda *a, **k: _NumberedCanvas(*a, footer=footer, **k))
    return buffer.getvalue(), _NumberedCanvas.pages_written


def _period(period: dict[str, str]) -> str:
    start, end = period["start"], period["end"]
    return f"{start.replace('T', ' ').rstrip('Z')} – {end.replace('T', ' ').rstrip('Z')} UTC"


def _section(section: dict[str, Any], width: float, page_height: float) -> list[Any]:
    heading = Paragraph(escape(section["title"]), _H2)
    if section["kind"] == "kpi":
        return [KeepTogether([heading, _kpis(section["items"], width)])]
    if section["kind"] == "chart":
        height = min(230.0, page_height * 0.33)
        return [KeepTogether([heading, draw_chart(section, width, height)])]
    return [CondPageBreak(80), heading, _table(section, width)]


def _kpis(items: list[dict[str, Any]], width: float) -> Table:
    per_row = min(len(items), 4) or 1
    cells: list[Any] = [
        [
            Paragraph(escape(i["label"]), _KPI_LABEL),
            Paragraph(escape(format_value(i["value"], i["kind"])), _KPI_VALUE),
        ]
        for i in items
    ]
    rows = [cells[i : i + per_row] for i in range(0, len(cells), per_row)]
    rows[-1] += [""] * (per_row - len(rows[-1]))
    table = Table(rows, colWidths=[width / per_row] * per_row)
    table.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, -1), _ZEBRA),
                ("BOX", (0, 0), (-1, -1), 0.5, colors.white),
                ("INNERGRID", (0, 0), (-1, -1), 3, colors.white),
                ("TOPPADDING", (0, 0), (-1, -1), 6),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 8),
            ]
        )
    )
    return table


def _table(section: dict[str, Any], width: float) -> Any:
    columns = section["columns"]
    dims = sum(1 for c in columns if c["kind"] == "dimension")
    metric_cols = len(columns) - dims
    metric_width = min(80.0, width / max(1, len(columns)))
    dim_width = (width - metric_width * metric_cols) / max(1, dims)
    widths = [dim_width if c["kind"] == "dimension" else metric_width for c in columns]
    # Text wider than its column wraps (a Paragraph); short text stays a plain string,
    # which keeps thousand-row tables fast.
    fits = [max(4, int(w / 4.2)) for w in widths]
    header = [
        Paragraph(
            f"<font color='white'><b>{escape(c['label'])}</b></font>",
            _CELL if c["kind"] == "dimension" else _CELL_RIGHT,
        )
        for c in columns
    ]
    body: list[list[Any]] = []
    for row in section["rows"]:
        cells: list[Any] = []
        for value, column, fit in zip(row, columns, fits, strict=True):
            text = format_value(value, column["kind"]) if column["kind"] != "dimension" else (
                "–" if value is None or value == "" else str(value))  # fmt: skip
            cells.append(Paragraph(escape(text), _CELL) if len(text) > fit else text)
        body.append(cells)
    if not body:
        body = [["No data in this period", *[""] * (len(columns) - 1)]]
    table = LongTable([header, *body], colWidths=widths, repeatRows=1)
    numeric_from = dims
    table.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, 0), _NAVY),
                ("TEXTCOLOR", (0, 0), (-1, 0), colors.white),
                ("FONTSIZE", (0, 1), (-1, -1), 7.5),
                ("LEADING", (0, 1), (-1, -1), 8.5),
                ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, _ZEBRA]),
                ("ALIGN", (numeric_from, 1), (-1, -1), "RIGHT"),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("TOPPADDING", (0, 0), (-1, -1), 1.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
                ("LINEBELOW", (0, 0), (-1, 0), 0.8, _NAVY),
            ]
        )
    )
    return table
