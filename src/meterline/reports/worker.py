"""Rendering in a separate process with a hard time limit and a memory bound.

A report document (JSON on stdin) is rendered by ``python -m meterline.reports.worker``;
the process caps its own address space first, and the parent kills it at the deadline, so
a runaway render can neither hang nor exhaust the server.
"""

from __future__ import annotations

import json
import logging
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meterline.errors import MeterlineError

log = logging.getLogger(__name__)


class RenderError(MeterlineError):
    """A render that failed, ran out of time or memory; the message is safe to show."""

    code = "REPORT_GENERATION_FAILED"
    status = 500


@dataclass(frozen=True, slots=True)
class RenderLimits:
    """Wall-clock seconds and megabytes of address space one render may use."""

    timeout: float = 120.0
    memory_mb: int = 1024


def render_in_subprocess(
    document: dict[str, Any], fmt: str, out: Path, limits: RenderLimits
) -> int | None:
    """Render ``document`` as ``fmt`` into ``out`` in a child process; returns the page
    count. Raises :class:`RenderError` on timeout, memory exhaustion or any failure.

    JSON and CSV are plain serialisations of data the query limits already bound, so
    they skip the child process (whose start-up costs more than they do).
    """
    if fmt in ("json", "csv"):
        from meterline.reports.renderers import render

        out.write_bytes(render(document, fmt).content)
        return None
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "meterline.reports.worker",
                fmt,
                str(out),
                str(limits.memory_mb),
            ],  # fmt: skip
            input=json.dumps(document).encode(),
            capture_output=True,
            timeout=limits.timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise RenderError(f"rendering took longer than {limits.timeout:g} s") from None
    if done.returncode != 0:
        stderr = done.stderr.decode(errors="replace")
        if "MemoryError" in stderr:
            raise RenderError(f"rendering needed more than {limits.memory_mb} MB")
        log.error("render process exited with %s: %s", done.returncode, stderr[-2000:])
        raise RenderError("rendering failed; the server log has the cause")
    result = json.loads(done.stdout or b"{}")
    pages = result.get("page_count")
    return int(pages) if pages is not None else None


def main(argv: list[str]) -> int:
    """Child entry point: ``worker FORMAT OUT_PATH MEMORY_MB`` with the document on stdin."""
    fmt, out, memory_mb = argv[0], Path(argv[1]), int(argv[2])
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from meterline.reports.renderers import render

    rendered = render(json.loads(sys.stdin.buffer.read()), fmt)
    tmp = out.with_suffix(out.suffix + ".part")
    tmp.write_bytes(rendered.content)
    tmp.replace(out)
    sys.stdout.write(json.dumps({"page_count": rendered.page_count}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
