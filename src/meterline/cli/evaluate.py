"""``meterline eval``: measure the insight engine on benchmark data."""

from __future__ import annotations

import csv
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

SPLIT_ALIASES = {"tuning": "even", "holdout": "odd"}

app = typer.Typer(help="Evaluate anomaly detection and forecasting on held-out data.")


@app.command("nab")
def nab_command(
    data_dir: Path = typer.Argument(..., exists=True, file_okay=False, help="NAB data root."),
    windows_file: Path = typer.Argument(..., exists=True, dir_okay=False, help="Windows JSON."),
    out: Path = typer.Option(..., "--out", help="Directory for the per-file score CSVs."),
    split: str = typer.Option(
        "all",
        "--split",
        help="all, tuning (or even) or holdout (or odd): score every file, or every "
        "other file in sorted order, starting with the first (tuning) or the second "
        "(hold-out).",
    ),
) -> None:
    """Run the detector over NAB-format CSVs and print the three NAB scores."""
    # Imported here: the statistics stack takes seconds to load, and every other
    # command (``meterline import`` above all) should not wait for it.
    from meterline.insight import benchmark, corpus

    split = SPLIT_ALIASES.get(split, split)
    if split not in ("all", "even", "odd"):
        raise typer.BadParameter("use all, tuning or holdout", param_hint="--split")
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
    names = sorted(series.relative for series, _ in scored)
    chosen = set(names if split == "all" else names[0 if split == "even" else 1 :: 2])
    try:
        results = benchmark.score_corpus(scored, windows, chosen.__contains__)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="WINDOWS_FILE") from exc
    table = Table(title=f"NAB scores ({len(chosen)} files, scores written to {out})")
    table.add_column("profile")
    table.add_column("score", justify="right")
    table.add_column("threshold", justify="right")
    for r in results:
        table.add_row(r.profile.name, f"{r.score:.1f}", f"{r.threshold:.4f}")
    console.print(table)
    for r in results:
        typer.echo(f"{r.profile.name}: {r.score:.2f}")


@app.command("forecast")
def forecast_command(
    csv_file: Path = typer.Argument(..., exists=True, dir_okay=False, help="timestamp,value CSV."),
    horizon: int | None = typer.Option(
        None, "--horizon", min=1, max=168, help="Steps ahead (default 24 hours or 14 days)."
    ),
    out: Path | None = typer.Option(None, "--out", help="Write every prediction here."),
    granularity: str = typer.Option(
        "hour", "--granularity", help="hour (last 14 days backtested) or day (last 56 days)."
    ),
) -> None:
    """Rolling-origin backtest: MASE, 1 - WAPE, interval coverage.

    ``origin`` in the output is the last hour (or day) the model saw.

    Rows are summed into UTC hours (or days) first, so a finer series (e.g. 30-minute
    counts) is backtested as its hourly (daily) totals. Hourly: one origin every hour
    over the last 14 days. Daily: one origin every day over the last 56 days, weekly
    seasonality and trend.
    """
    from meterline.insight import corpus, daily, forecast

    if granularity not in ("hour", "day"):
        raise typer.BadParameter("use hour or day", param_hint="--granularity")
    steps = horizon or (24 if granularity == "hour" else 14)
    console = Console()
    try:
        series = corpus.read_series(csv_file.parent, csv_file)
        with console.status("backtesting"):
            if granularity == "hour":
                stamps, values = forecast.hourly(series.epochs, series.values)
                result = forecast.backtest(values, horizon=steps)
            else:
                stamps, values = daily.daily(series.epochs, series.values)
                result = daily.backtest(values, horizon=steps)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="CSV") from exc
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(
                ["origin", "timestamp", "actual", "yhat", "lo80", "hi80", "lo95", "hi95"]
            )
            for p in result.predictions:
                writer.writerow(
                    [
                        stamps[p.origin - 1].strftime("%Y-%m-%dT%H:%M:%SZ"),
                        stamps[p.target].strftime("%Y-%m-%dT%H:%M:%SZ"),
                        f"{values[p.target]:g}",
                        *(f"{v:.3f}" for v in (p.yhat, p.lo80, p.hi80, p.lo95, p.hi95)),
                    ]
                )
    chosen = ", ".join(f"{k} x{v}" for k, v in sorted(result.models_chosen.items()))
    typer.echo(f"origins: {result.origins} (horizons 1..{steps}), models chosen: {chosen}")
    typer.echo(f"MASE: {result.mase:.3f}")
    typer.echo(f"accuracy (1 - WAPE): {result.accuracy:.3f}")
    typer.echo(f"coverage 80%: {result.coverage80:.3f}")
    typer.echo(f"coverage 95%: {result.coverage95:.3f}")
