"""``meterline serve``: run the API server."""

from __future__ import annotations

import gc
import logging
from pathlib import Path
from typing import Annotated

import typer

from meterline.config import Settings


class _RedactSecrets(logging.Filter):
    """Keeps tokens and tickets in query strings out of access logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args and isinstance(record.args, tuple):
            record.args = tuple(_redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def _redact(text: str) -> str:
    import re

    return re.sub(r"((?:token|ticket|key|secret)=)[^&\s\"]+", r"\1[redacted]", text)


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    data_dir: Annotated[
        Path, typer.Option(help="Where the embedded store, log and metadata live.")
    ] = Path(".meterline"),
    store: Annotated[
        str | None,
        typer.Option(
            help="Store URL: chdb:///dir (default, under --data-dir) or clickhouse://user:pass@host:8123/db."
        ),
    ] = None,
    metadata: Annotated[
        str | None, typer.Option(help="Metadata database URL (default SQLite under --data-dir).")
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Run the Meterline server (one process: the embedded store allows one owner)."""
    import uvicorn

    from meterline.api.app import create_app

    settings = Settings.from_env(
        host=host, port=port, data_dir=data_dir, store_url=store, metadata_url=metadata
    )
    # Ingest allocates many short-lived containers; the default thresholds make the
    # cyclic collector walk every buffered row far too often under load.
    gc.set_threshold(200_000, 50, 1000)
    gc.freeze()
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # uvicorn logs WebSocket handshakes ("WebSocket /v2/stream?ticket=…" [accepted]) on
    # uvicorn.error, not uvicorn.access, so both need the filter.
    for name in ("uvicorn.access", "uvicorn.error"):
        logging.getLogger(name).addFilter(_RedactSecrets())
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        ws=settings.stream_ws,
        ws_max_size=64 * 1024,
        # Stream frames are ~1 KB and go to many sockets: compressing each copy per
        # socket costs more CPU than the bytes it saves on any network.
        ws_per_message_deflate=settings.stream_ws_deflate,
        proxy_headers=True,
        timeout_graceful_shutdown=30,
    )
