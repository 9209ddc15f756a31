"""``meterline demo`` (traffic generator) and ``meterline quickstart`` (what ``make run`` does)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from meterline.demo.generator import TrafficModel, live, send_traffic

console = Console(stderr=True)


def demo(
    url: Annotated[str, typer.Option(help="Meterline server URL.")] = "http://127.0.0.1:8000",
    key: Annotated[str, typer.Option(help="An ingest key (or a token with events:write).")] = "",
    rate: Annotated[float, typer.Option(help="Mean events per second.")] = 50.0,
    duration: Annotated[
        float, typer.Option(help="Seconds to run; 0 runs until interrupted.")
    ] = 0.0,
    backfill_hours: Annotated[
        float, typer.Option(help="First send this many hours of history.")
    ] = 0.0,
    backfill_rate: Annotated[
        float, typer.Option(help="Mean events per second in the history.")
    ] = 5.0,
    consumers: Annotated[int, typer.Option(help="Distinct consumers.")] = 3000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
) -> None:
    """Send realistic API traffic (Zipf endpoints and consumers, diurnal cycle, lognormal
    latency, error bursts, slow endpoints) to a running server."""
    if not key:
        console.print(
            "[red]--key is required[/red]: create one with 'meterline admin create-ingest-key'."
        )
        raise typer.Exit(2)
    model = TrafficModel(consumers=consumers, seed=seed)
    if backfill_hours > 0:
        _backfill(url, key, model, backfill_hours, backfill_rate)
    sent = 0
    console.print(f"sending live traffic at ~{rate:g} events/s to {url} (Ctrl-C to stop)")
    try:
        for batch in live(model, rate, duration or None):
            sent += send_traffic(url, key, iter(batch))
    except KeyboardInterrupt:
        pass
    console.print(f"sent {sent} live events")


def _backfill(url: str, key: str, model: TrafficModel, hours: float, rate: float) -> int:
    end = time.time()
    start = end - hours * 3600
    expected = int(hours * 3600 * rate)
    with Progress(
        TextColumn("backfilling {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(f"{hours:g} h of history", total=expected)
        return send_traffic(
            url,
            key,
            model.history(start, end, rate),
            batch_size=5000,
            on_batch=lambda n: progress.advance(task, n),
        )


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the server exited during start-up; see the log above")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError("the server did not become ready in time")


def _demo_credentials(data_dir: Path) -> dict[str, Any]:
    from meterline.auth import AuthService
    from meterline.config import Settings
    from meterline.metadb import engine_from_url, migrate

    saved = data_dir / "demo-credentials.json"
    if saved.exists():
        return dict(json.loads(saved.read_text()))
    engine = engine_from_url(Settings.from_env(data_dir=data_dir).resolved_metadata_url)
    migrate(engine)
    auth = AuthService(engine)
    org = auth.create_org("demo", "professional", operator=True)
    client = auth.create_client(
        org["org_id"],
        "analytics:read reports:read reports:write admin:manage events:write",
        name="demo",
    )
    key = auth.create_ingest_key(org["org_id"])
    creds = {
        "org_id": org["org_id"],
        "client_id": client["client_id"],
        "client_secret": client["client_secret"],
        "ingest_key": key["key"],
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(creds, indent=2))
    os.chmod(saved, 0o600)
    engine.dispose()
    return creds


def quickstart(
    data_dir: Annotated[Path, typer.Option(help="Data directory for the embedded store.")] = Path(
        ".meterline"
    ),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    rate: Annotated[float, typer.Option(help="Live demo events per second.")] = 40.0,
    backfill_hours: Annotated[
        float, typer.Option(help="Hours of demo history on first start.")
    ] = 24.0,
) -> None:
    """Start the server on the embedded store, feed it demo traffic, print how to sign in."""
    creds = _demo_credentials(data_dir)
    url = f"http://{host}:{port}"
    # Stop the server child on SIGTERM too, not only on Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "meterline",
            "serve",
            "--host",
            host,
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--log-level",
            "warning",
        ],
    )
    try:
        _wait_healthy(url, server)
        marker = data_dir / ".demo-backfilled"
        if backfill_hours > 0 and not marker.exists():
            _backfill(
                url, creds["ingest_key"], TrafficModel(seed=int(time.time())), backfill_hours, 5.0
            )
            marker.touch()
        console.rule("[bold]Meterline is running")
        console.print(f"Dashboard:      [bold]{url}/login?client_id={creds['client_id']}[/bold]")
        console.print(f"Client id:      {creds['client_id']}")
        console.print(f"Client secret:  {creds['client_secret']}")
        console.print(f"Ingest key:     {creds['ingest_key']}")
        console.print(f"API docs:       {url}/docs")
        console.print(f"(saved in {data_dir / 'demo-credentials.json'}; Ctrl-C stops everything)")
        model = TrafficModel(seed=int(time.time()) + 1)
        for batch in live(model, rate, None):
            send_traffic(url, creds["ingest_key"], iter(batch))
    except KeyboardInterrupt:
        pass
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
