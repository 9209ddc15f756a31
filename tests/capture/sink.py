"""A real HTTP endpoint that answers a scripted sequence of statuses and keeps what it got,
for exporter behaviour a healthy server never shows (5xx, 429, slow answers)."""

from __future__ import annotations

import gzip
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Sink:
    """Serves ``POST /v2/events``; answers ``script`` in order, then 202."""

    def __init__(self, script: list[tuple[int, dict[str, str]]] | None = None) -> None:
        self.script = list(script or [])
        self.posts: list[tuple[float, int, list[dict[str, Any]], dict[str, str]]] = []
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                events = json.loads(gzip.decompress(body))
                with sink.lock:
                    status, headers = sink.script.pop(0) if sink.script else (202, {})
                    sink.posts.append((time.monotonic(), status, events, dict(self.headers)))
                payload = json.dumps({"accepted": len(events), "duplicates": 0}).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def delivered(self) -> list[dict[str, Any]]:
        """Events of the posts that were answered 2xx."""
        with self.lock:
            return [e for _, status, events, _ in self.posts if status < 300 for e in events]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
