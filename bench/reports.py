"""Report rendering speed and memory: PDF (ReportLab) and Excel (XlsxWriter).

Each case runs in a fresh process (so peak memory is its own): one cold render, then the
median of warm renders. The baseline, measured in the same run, is the cheapest possible
PDF of the same table (one ``drawString`` per row on a bare canvas); the ratio says what
layout, charts and paging cost on top. Every PDF is checked with poppler: all rows present
(``pdftotext``) and the page count reported equals ``pdfinfo``'s.

Run: ``.venv/bin/python bench/reports.py``
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WARM_RUNS = 3


def _baseline(rows: int) -> bytes:
    import io

    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.pdfgen.canvas import Canvas

    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=landscape(A4))
    y = 560.0
    for i in range(rows):
        canvas.drawString(40, y, f"/api/route-{i:05d}/items/:id GET {100_000 - i}")
        y -= 12
        if y < 40:
            canvas.showPage()
            y = 560.0
    canvas.save()
    return buffer.getvalue()


def child(case: str, rows: int, charts: int) -> None:
    """Measure one case in this process and print JSON."""
    from tests.reports.samples import sample_document

    from meterline.reports.renderers import render

    document = sample_document(rows=rows, charts=charts)

    def once() -> tuple[float, bytes, int | None]:
        start = time.perf_counter()
        if case == "baseline":
            content, pages = _baseline(rows), None
        else:
            rendered = render(document, case)
            content, pages = rendered.content, rendered.page_count
        return time.perf_counter() - start, content, pages

    cold, content, pages = once()
    warm = statistics.median(once()[0] for _ in range(WARM_RUNS))
    out = Path(tempfile.mkdtemp()) / f"bench.{'xlsx' if case == 'excel' else 'pdf'}"
    out.write_bytes(content)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"cold": cold, "warm": warm, "pages": pages, "peak_mb": peak_mb,
                      "path": str(out), "size": len(content)}))  # fmt: skip


def measure(case: str, rows: int, charts: int) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", case, str(rows), str(charts)],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def check_pdf(path: str, rows: int, pages: int) -> str:
    info = subprocess.run(["pdfinfo", path], capture_output=True, text=True, check=True).stdout
    real = int(next(ln for ln in info.splitlines() if ln.startswith("Pages:")).split()[1])
    text = subprocess.run(["pdftotext", path, "-"], capture_output=True, text=True).stdout
    missing = sum(1 for i in range(rows) if f"/api/route-{i:05d}/items/:id" not in text)
    ok = real == pages and missing == 0
    return f"pages {real} (reported {pages}), rows missing {missing} -> {'OK' if ok else 'FAIL'}"


def check_xlsx(path: str, rows: int, charts: int) -> str:
    import zipfile

    import openpyxl

    with zipfile.ZipFile(path) as archive:
        found = sum(1 for n in archive.namelist() if n.startswith("xl/charts/chart"))
    sheet = openpyxl.load_workbook(path, read_only=True)["Endpoints"]
    data_rows = sum(1 for _ in sheet.iter_rows()) - 1
    ok = found == charts and data_rows == rows
    return f"charts {found}, rows {data_rows} -> {'OK' if ok else 'FAIL'}"


def main() -> None:
    print("case                           cold s   warm s  peak MB  pages  ratio  check")
    cases = [
        ("pdf", 500, 6, 3.5, 300),
        ("pdf", 2000, 6, 6.0, 300),
        ("excel", 500, 3, 0.5, 300),
    ]
    baselines = {rows: measure("baseline", rows, 0) for rows in (500, 2000)}
    for rows, base in baselines.items():
        print(f"baseline bare-canvas {rows:>5} rows {base['cold']:8.3f} {base['warm']:8.3f} "
              f"{base['peak_mb']:8.0f}")  # fmt: skip
    for case, rows, charts, budget_s, budget_mb in cases:
        result = measure(case, rows, charts)
        base = baselines.get(rows, baselines[500])
        if case == "pdf":
            check = check_pdf(str(result["path"]), rows, int(result["pages"]))
        else:
            check = check_xlsx(str(result["path"]), rows, charts)
        within = result["warm"] <= budget_s and result["peak_mb"] <= budget_mb
        pages = "-" if result["pages"] is None else str(int(result["pages"]))
        print(
            f"{case:5} {rows:>5} rows {charts} charts     {result['cold']:8.3f} "
            f"{result['warm']:8.3f} {result['peak_mb']:8.0f} {pages:>6} "
            f"{result['warm'] / base['warm']:6.1f}x  {check}; budget {budget_s} s/"
            f"{budget_mb} MB {'met' if within else 'MISSED'}"
        )
    print(
        f"pdf   500 rows 6 charts in the bounded worker process (spawn + import + render): "
        f"{through_worker(500, 6):.3f} s"
    )


def through_worker(rows: int, charts: int) -> float:
    """Wall time of one render as the server does it: a bounded child process."""
    from tests.reports.samples import sample_document

    from meterline.reports.worker import RenderLimits, render_in_subprocess

    document = sample_document(rows=rows, charts=charts)
    out = Path(tempfile.mkdtemp()) / "worker.pdf"
    start = time.perf_counter()
    render_in_subprocess(document, "pdf", out, RenderLimits(timeout=120, memory_mb=1024))
    return time.perf_counter() - start


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        main()
