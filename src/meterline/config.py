"""Server settings: one frozen object built from defaults, environment and CLI flags."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any


def _env(name: str, default: str) -> str:
    return os.environ.get(f"METERLINE_{name}", default)


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def _float(value: str | None) -> float | None:
    return float(value) if value else None


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the server needs to start.

    ``store_url`` defaults to the embedded chDB store under ``data_dir``; ``metadata_url``
    to SQLite under ``data_dir``. ``flush_interval`` is how long acknowledged events
    wait in the write-ahead log before reaching the store while it keeps up, growing up to
    ``flush_max_delay`` under load (larger inserts), or until ``flush_rows`` wait;
    ``ingest_workers`` processes decode and validate request bodies (0: in the server's
    own process).
    """

    data_dir: Path = Path(".meterline")
    store_url: str | None = None
    metadata_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = None
    flush_rows: int = 200_000
    flush_interval: float = 1.0
    flush_max_delay: float = 5.0
    max_batch_events: int = 10_000
    max_body_bytes: int = 10 * 1024 * 1024
    dedup_capacity: int = 5_000_000
    route_rules: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    fsync: bool = True
    ingest_workers: int = 2
    ratelimit_url: str = "memory://"  # or redis://host:6379/0, or "off"
    ratelimit_config: Path | None = None
    ratelimit_adaptive_latency_ms: float | None = None
    stream_redis_url: str | None = None  # live windows across nodes; None: this node only
    stream_allowed_origins: tuple[str, ...] = field(default_factory=tuple)
    # uvicorn's WebSocket protocol ("websockets", "websockets-sansio", "wsproto") and
    # whether it offers per-message deflate (see bench/stream.py for the measurements)
    stream_ws: str = "websockets-sansio"
    stream_ws_deflate: bool = False
    stream_direct_writes: bool = True  # see meterline.api.stream_socket
    stream_max_connections: int = 10_000  # per node, whatever the plans; then close 1013

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """Build settings from ``METERLINE_*`` environment variables, then ``overrides``.

        ``None`` overrides are ignored so CLI flags that were not given keep the default.
        """
        base = cls(
            data_dir=Path(_env("DATA_DIR", ".meterline")),
            store_url=os.environ.get("METERLINE_STORE_URL"),
            metadata_url=os.environ.get("METERLINE_METADATA_URL"),
            host=_env("HOST", "127.0.0.1"),
            port=int(_env("PORT", "8000")),
            public_url=os.environ.get("METERLINE_PUBLIC_URL"),
            fsync=_env("FSYNC", "1") not in ("0", "false", "no"),
            flush_interval=float(_env("FLUSH_INTERVAL", "1.0")),
            flush_rows=int(_env("FLUSH_ROWS", "200000")),
            flush_max_delay=float(_env("FLUSH_MAX_DELAY", "5.0")),
            ingest_workers=int(_env("INGEST_WORKERS", "2")),
            ratelimit_url=_env("RATELIMIT_URL", "memory://"),
            ratelimit_config=_path(os.environ.get("METERLINE_RATELIMIT_CONFIG")),
            ratelimit_adaptive_latency_ms=_float(
                os.environ.get("METERLINE_RATELIMIT_ADAPTIVE_LATENCY_MS")
            ),
            stream_redis_url=os.environ.get("METERLINE_STREAM_REDIS_URL") or None,
            stream_allowed_origins=tuple(
                o.strip().rstrip("/")
                for o in os.environ.get("METERLINE_STREAM_ALLOWED_ORIGINS", "").split(",")
                if o.strip()
            ),
            stream_ws=_env("STREAM_WS", "websockets-sansio"),
            stream_ws_deflate=_env("STREAM_WS_DEFLATE", "0") in ("1", "true", "yes"),
            stream_direct_writes=_env("STREAM_DIRECT_WRITES", "1") not in ("0", "false", "no"),
            stream_max_connections=int(_env("STREAM_MAX_CONNECTIONS", "10000")),
        )
        given = {k: v for k, v in overrides.items() if v is not None}
        if "data_dir" in given:
            given["data_dir"] = Path(given["data_dir"])
        return replace(base, **given)

    @property
    def resolved_store_url(self) -> str:
        """The store URL, defaulting to chDB under the data directory."""
        return self.store_url or f"chdb://{(self.data_dir / 'store').resolve()}"

    @property
    def resolved_metadata_url(self) -> str:
        """The metadata database URL, defaulting to SQLite under the data directory."""
        return self.metadata_url or f"sqlite:///{(self.data_dir / 'metadata.db').resolve()}"
