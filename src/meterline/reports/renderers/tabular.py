"""JSON and CSV renderers: the document as data."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from meterline.reports.renderers.cells import neutralise


def render_json(document: dict[str, Any]) -> bytes:
    """The document itself, UTF-8 JSON with raw (unformatted) values."""
    return json.dumps(document, indent=2, ensure_ascii=False).encode()


def render_csv(document: dict[str, Any]) -> bytes:
    """One CSV file: a header block, then each section as a titled block of rows separated
    by a blank line; strings are neutralised, numbers written as numbers."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([neutralise(document["title"])])
    writer.writerow(["Period", document["period"]["start"], document["period"]["end"]])
    writer.writerow(["Generated", document["generated_at"]])
    for section in document["sections"]:
        writer.writerow([])
        writer.writerow([neutralise(section["title"])])
        if section["kind"] == "kpi":
            writer.writerow(["metric", "value", "unit"])
            for item in section["items"]:
                writer.writerow([item["metric"], item["value"], item["unit"]])
        elif section["kind"] == "table":
            writer.writerow([c["key"] for c in section["columns"]])
            for row in section["rows"]:
                writer.writerow([neutralise(v) for v in row])
        else:
            writer.writerow(["category", *(neutralise(s["name"]) for s in section["series"])])
            for i, category in enumerate(section["categories"]):
                writer.writerow(
                    [neutralise(category), *(s["values"][i] for s in section["series"])]
                )
    # A BOM lets Excel open UTF-8 CSV with the right encoding.
    return ("\ufeff" + out.getvalue()).encode()
