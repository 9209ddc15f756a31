"""Excel renderer (XlsxWriter): a summary sheet, one sheet per table, native charts.

Formula, URL and number conversion of strings is off, and string cells are neutralised,
so nothing in the data can become a live formula.
"""

from __future__ import annotations

import io
import re
from typing import Any

import xlsxwriter

from meterline.reports.renderers.cells import neutralise

_FORMATS = {
    "ratio": "0.00%",
    "latency": "#,##0.0",
    "money": "$#,##0.00",
    "bytes": "#,##0",
    "count": "#,##0",
    "rate": "#,##0.0",
}
_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")
_CHART_TYPES = {"bar": ("column", None), "line": ("line", None), "pie": ("pie", None)}


class _Sheets:
    def __init__(self) -> None:
        self.used: set[str] = set()

    def name(self, title: str) -> str:
        base = _BAD_SHEET_CHARS.sub(" ", title).strip()[:28] or "Sheet"
        candidate, n = base, 2
        while candidate.lower() in self.used:
            candidate = f"{base[:25]} {n}"
            n += 1
        self.used.add(candidate.lower())
        return candidate


def render_excel(document: dict[str, Any]) -> bytes:
    """The document as an .xlsx workbook; returns its bytes."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(
        buffer,
        {
            "in_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
        },
    )
    bold = book.add_format({"bold": True})
    title_fmt = book.add_format({"bold": True, "font_size": 16})
    header = book.add_format({"bold": True, "bg_color": "#1F3A5F", "font_color": "#FFFFFF"})
    number_formats = {k: book.add_format({"num_format": v}) for k, v in _FORMATS.items()}
    sheets = _Sheets()
    summary = book.add_worksheet(sheets.name("Summary"))
    summary.write_string(0, 0, neutralise(document["title"]), title_fmt)
    summary.write_string(1, 0, "Period")
    summary.write_string(1, 1, f"{document['period']['start']} – {document['period']['end']}")
    summary.write_string(2, 0, "Generated")
    summary.write_string(2, 1, document["generated_at"])
    summary.write_string(3, 0, neutralise(document.get("description") or ""))
    summary.set_column(0, 0, 28)
    summary.set_column(1, 1, 24)
    row = 5
    for section in document["sections"]:
        if section["kind"] == "kpi":
            summary.write_string(row, 0, neutralise(section["title"]), bold)
            row += 1
            for item in section["items"]:
                summary.write_string(row, 0, item["label"])
                _write(summary, row, 1, item["value"], number_formats.get(item["kind"]))
                summary.write_string(row, 2, item["unit"])
                row += 1
            row += 1
        elif section["kind"] == "table":
            _table_sheet(book, sheets, section, header, number_formats)
        else:
            _chart_sheet(book, sheets, section, header, number_formats)
    book.close()
    return buffer.getvalue()


def _write(sheet: Any, row: int, col: int, value: Any, fmt: Any) -> None:
    if value is None:
        sheet.write_blank(row, col, None)
    elif isinstance(value, bool):
        sheet.write_boolean(row, col, value)
    elif isinstance(value, int | float):
        sheet.write_number(row, col, value, fmt)
    else:
        sheet.write_string(row, col, str(neutralise(value)))


def _table_sheet(
    book: Any, sheets: _Sheets, section: dict[str, Any], header: Any, fmts: dict[str, Any]
) -> None:
    sheet = book.add_worksheet(sheets.name(section["title"]))
    columns = section["columns"]
    for col, column in enumerate(columns):
        sheet.write_string(0, col, column["label"], header)
        sheet.set_column(col, col, 34 if column["kind"] == "dimension" else 16)
    for r, values in enumerate(section["rows"], start=1):
        for col, value in enumerate(values):
            _write(sheet, r, col, value, fmts.get(columns[col]["kind"]))
    sheet.freeze_panes(1, 0)
    if section["rows"]:
        sheet.autofilter(0, 0, len(section["rows"]), len(columns) - 1)


def _chart_sheet(
    book: Any, sheets: _Sheets, section: dict[str, Any], header: Any, fmts: dict[str, Any]
) -> None:
    name = sheets.name(section["title"])
    sheet = book.add_worksheet(name)
    sheet.write_string(0, 0, "Category", header)
    sheet.set_column(0, 0, 28)
    categories = section["categories"]
    for r, category in enumerate(categories, start=1):
        sheet.write_string(r, 0, str(neutralise(category)))
    chart_kind = _CHART_TYPES[section["chart_type"]][0]
    chart = book.add_chart({"type": chart_kind})
    quoted = "'" + name.replace("'", "''") + "'"
    for s, series in enumerate(section["series"], start=1):
        sheet.write_string(0, s, str(neutralise(series["name"])), header)
        for r, value in enumerate(series["values"], start=1):
            _write(sheet, r, s, value, fmts.get(section.get("value_kind", "")))
        if chart_kind == "pie" and s > 1:
            continue
        chart.add_series(
            {
                "name": [name, 0, s],
                "categories": f"={quoted}!$A$2:$A${len(categories) + 1}",
                "values": [name, 1, s, max(1, len(categories)), s],
            }
        )
    chart.set_title({"name": section["title"]})
    if chart_kind != "pie":
        chart.set_legend({"position": "bottom"})
        chart.set_y_axis({"name": section.get("unit", "")})
    chart.set_size({"width": 760, "height": 400})
    sheet.insert_chart(1, len(section["series"]) + 2, chart)
