"""``meterline eval``: measure the insight engine on benchmark data."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from meterline.insight import benchmark, corpus

app = typer.Typer(help="Evaluate anomaly detection and forecasting on held-out data.")


@app.command("nab")
def nab_command(
    data_dir: Path = typer.Argument(..., exists=True, file_okay=False, help="NAB data root."),
    windows_file: Path = typer.Argument(..., exists=True, dir_okay=False, help="Windows JSON."),
    out: Path = typer.Option(..., "--out", help="Directory for the per-file score CSVs."),
) -> None:
    """Run the detector over NAB-format CSVs and print the three NAB scores."""
    console = Console()
    try:
        windows = corpus.read_windows(windows_file)
    except (ValueError, OSError) as exc:
        raise typer.BadParameter(str(exc), param_hint="WINDOWS_FILE") from exc
    paths = corpus.discover(data_dir)
    if not paths:
        raise typer.BadParameter(f"no CSV files under {data_dir}", param_hint="DATA_DIR")
    scored: list[tuple[corpus.Series, list[float]]] = []
    with Progress(
        TextColumn("[bold]detecting"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("", total=len(paths))
        for series, scores in benchmark.detect_corpus(data_dir, out):
            scored.append((series, scores))
            progress.update(task, advance=1, description=series.relative)
    try:
        results = benchmark.score_corpus(scored, windows)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="WINDOWS_FILE") from exc
    table = Table(title=f"NAB scores ({len(scored)} files, scores written to {out})")
    table.add_column("profile")
    table.add_column("score", justify="right")
    table.add_column("threshold", justify="right")
    for r in results:
        table.add_row(r.profile.name, f"{r.score:.1f}", f"{r.threshold:.4f}")
    console.print(table)
    for r in results:
        typer.echo(f"{r.profile.name}: {r.score:.2f}")
