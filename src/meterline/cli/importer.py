"""``meterline import``: access logs (CLF, Combined, JSON lines; files, .gz, stdin) to events."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from meterline.config import Settings
from meterline.errors import MeterlineError
from meterline.logs.importer import HttpSink, LocalSink, LogImporter, Sink
from meterline.logs.parse import FORMATS, detect_format, parser_for
from meterline.logs.source import LogSource, expand

console = Console(stderr=True)


def _sample(path: str) -> list[str]:
    if path == "-":
        return []
    source = LogSource(path)
    lines: list[str] = []
    for item in source.lines():
        if item is not None:
            lines.append(item[1])
        if len(lines) >= 20:
            break
    return lines


def _local_sink(data_dir: Path, org: str | None) -> Sink:
    from meterline.logs.local import ImportTarget

    if not org:
        raise typer.BadParameter("--org is required when importing into a data directory")
    return LocalSink(ImportTarget.open(Settings.from_env(data_dir=data_dir), org))


def import_logs(
    files: Annotated[
        list[str] | None, typer.Argument(help="Log files (plain or .gz); '-' or none: stdin.")
    ] = None,
    format: Annotated[
        str, typer.Option("--format", "-f", help="auto, common, combined or json.")
    ] = "auto",
    org: Annotated[
        str | None, typer.Option(help="Org id or name (importing into --data-dir).")
    ] = None,
    data_dir: Annotated[Path, typer.Option(help="The server's data directory.")] = Path(
        ".meterline"
    ),
    url: Annotated[
        str | None, typer.Option(help="Send to a running server instead of --data-dir.")
    ] = None,
    key: Annotated[str | None, typer.Option(help="Ingest key for --url.")] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-F", help="Keep reading as the file grows (tail -F).")
    ] = False,
    field: Annotated[
        list[str] | None,
        typer.Option(
            "--field", help="JSON lines: EVENT_FIELD=KEY (dots descend), e.g. path=req.uri."
        ),
    ] = None,
    engine: Annotated[
        bool,
        typer.Option(
            help="Let the embedded store parse Common/Combined files itself (much faster); "
            "--no-engine parses every line in Python."
        ),
    ] = True,
    batch_size: Annotated[int, typer.Option(help="Events per write.")] = 20_000,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Import access logs as request events; bad lines are counted and shown, never fatal.

    Common and Combined Log Format (also with a leading virtual host and a trailing
    response time), or JSON lines. Re-importing a file counts nothing twice. Imported
    history of any age shows up in queries over its dates.
    """
    if format not in FORMATS:
        raise typer.BadParameter(f"--format must be one of {', '.join(FORMATS)}")
    paths = expand(files or [])
    if follow and (len(paths) != 1 or paths[0] == "-"):
        raise typer.BadParameter("--follow takes exactly one file")
    if url and not key:
        raise typer.BadParameter("--key (an ingest key) is required with --url")
    mapping = dict(item.split("=", 1) for item in (field or []) if "=" in item)
    try:
        sink = HttpSink(url, key or "") if url else _local_sink(data_dir, org)
    except MeterlineError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from None
    stopping = [False]

    def stop(*_: Any) -> None:
        stopping[0] = True

    if follow:
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
    importer: LogImporter | None = None
    try:
        for path in paths:
            fmt = format if format != "auto" else detect_format(_sample(path))
            parser = parser_for(fmt, mapping)
            if importer is None:
                importer = LogImporter(sink, parser, batch_size=batch_size)
            importer.parser = parser
            source = LogSource(path, follow=follow, stop=lambda: stopping[0])
            if (
                engine
                and isinstance(sink, LocalSink)
                and fmt in ("common", "combined")
                and not follow
                and path != "-"
                and _run_in_engine(sink, importer, source, fmt, progress)
            ):
                continue
            _run(importer, source, fmt, progress)
    finally:
        sink.close()
    assert importer is not None
    _summary(importer, as_json)


def _columns(source: LogSource, fmt: str) -> list[Any]:
    columns: list[Any] = [TextColumn(f"{source.name} ({fmt})")]
    if source.path != "-" and not source.follow:
        columns += [BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn()]
    columns.append(TextColumn("{task.fields[lines]}"))
    return columns


def _run_in_engine(
    sink: LocalSink, importer: LogImporter, source: LogSource, fmt: str, show: bool
) -> bool:
    """Import a file through the storage engine; False when it does not suit (nothing
    was written, the Python importer takes the file)."""
    size = os.path.getsize(source.path)
    stats = importer.stats
    if not show:
        result = sink.engine_import(source.path)
        if result is None:
            return False
        importer.count_engine(result)
        importer.run(source.name, iter(result.others))
        return True
    base = stats.lines
    with Progress(*_columns(source, fmt), console=console, transient=False) as bar:
        task = bar.add_task("import", total=size or None, lines="")

        inserted = [base]

        def update(phase: int, read_bytes: int, read_rows: int) -> None:
            if phase == 2:  # a bulk load building its rollups: (tables begun, tables)
                bar.update(
                    task,
                    completed=size,
                    lines=f"{inserted[0]:,} lines · building rollups {read_bytes}/{read_rows}",
                )
                return
            # Two reads of the file: collecting distinct values, then inserting.
            done = (phase * size + min(read_bytes, size)) // 2
            lines = base + read_rows if phase else base
            inserted[0] = lines
            rate = lines / stats.elapsed if stats.elapsed > 0 else 0.0
            bar.update(
                task,
                completed=done,
                lines=f"{lines:,} lines · {rate:,.0f} lines/s · {stats.bad:,} bad",
            )

        result = sink.engine_import(source.path, update)
        if result is None:
            bar.update(task, visible=False)
            return False
        importer.count_engine(result)
        importer.run(source.name, iter(result.others))
        rate = stats.lines / stats.elapsed if stats.elapsed > 0 else 0.0
        bar.update(
            task,
            completed=size,
            lines=f"{stats.lines:,} lines · {rate:,.0f} lines/s · {stats.bad:,} bad",
        )
    return True


def _run(importer: LogImporter, source: LogSource, fmt: str, show: bool) -> None:
    if not show:
        importer.run(source.name, source.lines())
        return
    stats = importer.stats
    with Progress(*_columns(source, fmt), console=console, transient=False) as bar:
        task = bar.add_task("import", total=None, lines="")

        def update() -> None:
            rate = stats.lines / stats.elapsed if stats.elapsed > 0 else 0.0
            bar.update(
                task,
                completed=source.position,
                total=source.size or None,
                lines=f"{stats.lines:,} lines · {rate:,.0f} lines/s · {stats.bad:,} bad",
            )

        importer.run(source.name, source.lines(), progress=update)
        update()


def _summary(importer: LogImporter, as_json: bool) -> None:
    stats = importer.stats
    summary = {
        "lines": stats.lines,
        "imported": stats.imported,
        "duplicates": stats.duplicates,
        "bad": stats.bad,
        "seconds": round(stats.elapsed, 3),
        "lines_per_second": round(stats.lines / stats.elapsed) if stats.elapsed else 0,
        "bad_samples": [
            {"source": s, "line": n, "reason": r, "text": t} for s, n, r, t in stats.bad_samples
        ],
    }
    if as_json:
        typer.echo(json.dumps(summary))
        return
    typer.echo(
        f"{stats.lines:,} lines in {stats.elapsed:.1f}s ({summary['lines_per_second']:,} lines/s): "
        f"{stats.imported:,} imported, {stats.duplicates:,} already there, {stats.bad:,} bad"
    )
    for source, number, reason, text in stats.bad_samples:
        typer.echo(f"  {source}:{number}: {reason}: {text}")
    if stats.bad > len(stats.bad_samples):
        typer.echo(f"  … and {stats.bad - len(stats.bad_samples):,} more bad lines")
