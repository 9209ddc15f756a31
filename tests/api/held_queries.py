"""Run as ``python -m tests.api.held_queries DATA_DIR PATH BODY`` (in a process of its own:
chDB opens one store per process): the server app in-process, whose store queries for
one org are held until the test lets them go. Prints, as JSON, whether ``/healthz``
answered while the query at ``PATH`` was held, and the query's status once released."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import threading
from pathlib import Path
from typing import Any

import httpx

from meterline.api.app import create_app
from meterline.config import Settings
from tests.helpers import make_tenant

HOLD = 20.0
"""Seconds a held query waits at most: a server that blocks its event loop on a query
answers nothing meanwhile, and the test then sees the query finish first."""


async def main(data_dir: Path, path: str, body: Any) -> dict[str, Any]:
    tenant = make_tenant(data_dir, "held", "enterprise")
    settings = dataclasses.replace(
        Settings.from_env(), data_dir=data_dir, ingest_workers=0, ratelimit_url="off"
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        queries = app.state.services.queries
        started, release = threading.Event(), threading.Event()
        released: list[bool] = []

        def hold(method: Any) -> Any:
            def held(org_id: str, *args: Any) -> Any:
                if org_id == tenant.org_id:
                    started.set()
                    # False when the wait ran out: nobody could let it go meanwhile.
                    released.append(release.wait(HOLD))
                return method(org_id, *args)

            return held

        queries.run = hold(queries.run)
        queries.events = hold(queries.events)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://meterline") as http:
            grant = {
                "grant_type": "client_credentials",
                "client_id": tenant.reader_id,
                "client_secret": tenant.reader_secret,
            }
            token = (await http.post("/oauth/token", json=grant)).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            query = asyncio.ensure_future(http.post(path, json=body, headers=headers))
            held = await asyncio.to_thread(started.wait, HOLD)
            health = await http.get("/healthz")
            release.set()
            response = await query
    return {
        "held": held,
        "answered_while_held": health.status_code == 200 and bool(released) and all(released),
        "released": released,
        "status": response.status_code,
        "body": response.json(),
    }


if __name__ == "__main__":
    found = asyncio.run(main(Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])))
    print(json.dumps(found))
