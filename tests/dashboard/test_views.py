"""The dashboard's HTTP side: sign-in scopes, the page session, escaping, static files."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from meterline.auth import AuthService
from meterline.metadb import engine_from_url, migrate
from tests.helpers import ServerProcess, make_tenant

pytestmark = pytest.mark.e2e


@contextmanager
def _signed_in(server: ServerProcess, client_id: str, secret: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        response = client.post("/login", data={"client_id": client_id, "client_secret": secret})
        assert response.status_code == 303, response.text
        yield client


def test_sign_in_grants_only_what_the_pages_need(server: ServerProcess, server_dir: Path) -> None:
    tenant = make_tenant(server_dir, f"views-{time.time_ns()}", "professional")
    with httpx.Client(base_url=server.url) as anonymous:
        assert anonymous.post("/dashboard/session").status_code == 401
        assert anonymous.get("/reports").headers["location"] == "/login"
    with _signed_in(server, tenant.client_id, tenant.client_secret) as full:
        session = full.post("/dashboard/session")
        assert session.headers["cache-control"] == "no-store"
        body = session.json()
        # The client may also manage the org and send events; the page's token may not.
        assert sorted(body["scopes"]) == ["analytics:read", "reports:read", "reports:write"]
        assert body["org_id"] == tenant.org_id and body["expires_at"] > time.time()
        bearer = {"Authorization": f"Bearer {body['access_token']}"}
        assert full.get("/v2/reports", headers=bearer).status_code == 200
        assert full.post("/v2/admin/orgs", json={}, headers=bearer).status_code == 403
    with _signed_in(server, tenant.reader_id, tenant.reader_secret) as reader:
        assert reader.post("/dashboard/session").json()["scopes"] == ["analytics:read"]

    engine = engine_from_url(f"sqlite:///{(server_dir / 'metadata.db').resolve()}")
    migrate(engine)
    writer = AuthService(engine).create_client(tenant.org_id, "reports:read reports:write")
    engine.dispose()
    refused = httpx.post(
        f"{server.url}/login",
        data={"client_id": writer["client_id"], "client_secret": writer["client_secret"]},
    )
    assert refused.status_code == 403 and "analytics:read" in refused.text
    assert "meterline_session" not in refused.headers.get("set-cookie", "")


def test_page_data_cannot_close_its_script(server: ServerProcess, server_dir: Path) -> None:
    tenant = make_tenant(server_dir, f"views-{time.time_ns()}")
    hostile = "/x</script><script>alert(1)</script>"
    with _signed_in(server, tenant.reader_id, tenant.reader_secret) as client:
        page = client.get("/endpoint", params={"method": "GET", "route": hostile})
        assert page.status_code == 200
        assert "<script>alert(1)" not in page.text
        assert "\\u003c/script\\u003e" in page.text
        assert client.get("/endpoint").headers["location"] == "/"
        assert client.get("/consumer", params={"consumer_id": "c1"}).status_code == 200


def test_charting_library_is_served_from_the_package(server: ServerProcess) -> None:
    script = httpx.get(f"{server.url}/static/vendor/uplot.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "export { uPlot as default }" in script.text
    assert httpx.get(f"{server.url}/static/vendor/uplot.css").status_code == 200
    assert httpx.get(f"{server.url}/static/vendor/react.js").status_code == 404
    own = httpx.get(f"{server.url}/static/overview.js")
    assert own.status_code == 200 and "LiveStream" in own.text
    assert httpx.get(f"{server.url}/static/../views.py").status_code == 404
