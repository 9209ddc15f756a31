"""Renderers: a report document to bytes in one of the four formats."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meterline.reports.renderers.cells import neutralise

MEDIA_TYPES = {
    "json": ("application/json", "json"),
    "csv": ("text/csv; charset=utf-8", "csv"),
    "pdf": ("application/pdf", "pdf"),
    "excel": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
}


@dataclass(frozen=True, slots=True)
class Rendered:
    """A rendered report file and its page count (``None`` where pages do not apply)."""

    content: bytes
    page_count: int | None


def render(document: dict[str, Any], fmt: str) -> Rendered:
    """Render ``document`` as ``fmt`` (json, csv, pdf or excel)."""
    if fmt == "pdf":
        from meterline.reports.renderers.pdf import render_pdf

        content, pages = render_pdf(document)
        return Rendered(content, pages)
    if fmt == "excel":
        from meterline.reports.renderers.excel import render_excel

        return Rendered(render_excel(document), None)
    from meterline.reports.renderers.tabular import render_csv, render_json

    if fmt == "csv":
        return Rendered(render_csv(document), None)
    return Rendered(render_json(document), None)


__all__ = ["MEDIA_TYPES", "Rendered", "neutralise", "render"]
