"""OAuth2 client credentials, JWT checks and scope enforcement on a real server."""

from __future__ import annotations

import base64
import json
import sqlite3
import time
from pathlib import Path

import httpx
import jwt
import pytest

from tests.api.conftest import bearer
from tests.helpers import ServerProcess, Tenant

pytestmark = pytest.mark.e2e


def signing_key(server_dir: Path) -> str:
    with sqlite3.connect(server_dir / "metadata.db") as conn:
        return str(conn.execute("SELECT value FROM server_secrets WHERE name='jwt'").fetchone()[0])


def error_of(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


def test_token_by_json_and_by_form(server: ServerProcess, tenants: tuple[Tenant, Tenant]) -> None:
    tenant = tenants[0]
    by_json = httpx.post(
        f"{server.url}/oauth/token",
        json={
            "grant_type": "client_credentials",
            "client_id": tenant.reader_id,
            "client_secret": tenant.reader_secret,
        },
    )
    by_form = httpx.post(
        f"{server.url}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": tenant.reader_id,
            "client_secret": tenant.reader_secret,
        },
    )
    for response in (by_json, by_form):
        assert response.status_code == 200
        body = response.json()
        assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
        assert body["scope"] == "analytics:read"
        claims = jwt.decode(body["access_token"], options={"verify_signature": False})
        assert claims["exp"] - claims["iat"] == 3600


@pytest.mark.parametrize(
    ("client_id", "secret", "status", "code"),
    [
        ("READER", "wrong", 401, "AUTH_TOKEN_INVALID"),
        ("mlc_nosuchclient", "whatever", 401, "AUTH_TOKEN_INVALID"),
        ("READER", "", 400, "PARAMETER_REQUIRED"),
    ],
)
def test_bad_credentials(
    server: ServerProcess,
    tenants: tuple[Tenant, Tenant],
    client_id: str,
    secret: str,
    status: int,
    code: str,
) -> None:
    cid = tenants[0].reader_id if client_id == "READER" else client_id
    response = httpx.post(
        f"{server.url}/oauth/token", json={"client_id": cid, "client_secret": secret}
    )
    assert response.status_code == status
    assert error_of(response) == code


def test_scope_request_beyond_grant_is_refused(
    server: ServerProcess, tenants: tuple[Tenant, Tenant]
) -> None:
    response = httpx.post(
        f"{server.url}/oauth/token",
        json={
            "client_id": tenants[0].reader_id,
            "client_secret": tenants[0].reader_secret,
            "scope": "admin:manage",
        },
    )
    assert response.status_code == 403
    assert error_of(response) == "AUTH_SCOPE_INSUFFICIENT"


def test_missing_malformed_and_unsupported_grant(server: ServerProcess) -> None:
    assert error_of(httpx.get(f"{server.url}/v2/analytics/overview")) == "AUTH_TOKEN_MISSING"
    response = httpx.get(
        f"{server.url}/v2/analytics/overview", headers={"Authorization": "Basic abc"}
    )
    assert response.status_code == 401 and error_of(response) == "AUTH_TOKEN_INVALID"
    response = httpx.post(f"{server.url}/oauth/token", json={"grant_type": "password"})
    assert response.status_code == 400 and error_of(response) == "VALIDATION_ERROR"


def test_expired_tampered_and_alg_confused_tokens(
    server: ServerProcess, server_dir: Path, tenants: tuple[Tenant, Tenant]
) -> None:
    tenant = tenants[0]
    key = signing_key(server_dir)
    now = int(time.time())
    base = {
        "iss": "meterline",
        "sub": tenant.client_id,
        "org": tenant.org_id,
        "scope": "analytics:read",
    }
    expired = jwt.encode({**base, "iat": now - 7200, "exp": now - 3600}, key, algorithm="HS256")
    response = httpx.get(f"{server.url}/v2/analytics/overview", headers=bearer(expired))
    assert response.status_code == 401
    assert error_of(response) == "AUTH_TOKEN_INVALID"
    assert "expired at" in response.json()["error"]["details"]

    good = server.token(tenant.reader_id, tenant.reader_secret)
    header, payload, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["org"] = tenants[1].org_id
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    for token in (
        f"{header}.{forged_payload}.{signature}",
        f"{header}.{payload}.{signature[:-4]}AAAA",
        jwt.encode(
            {**base, "iat": now, "exp": now + 600},
            "another-key-of-sufficient-length-000000",
            algorithm="HS256",
        ),
        jwt.encode({**base, "iat": now, "exp": now + 600}, key, algorithm="HS512"),
        base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
        + f".{payload}.",
        "not-a-jwt",
    ):
        response = httpx.get(f"{server.url}/v2/analytics/overview", headers=bearer(token))
        assert response.status_code == 401, token
        assert error_of(response) == "AUTH_TOKEN_INVALID"


def test_scopes_are_enforced_per_route(
    server: ServerProcess, tenants: tuple[Tenant, Tenant]
) -> None:
    tenant = tenants[0]
    writer = server.token(tenant.client_id, tenant.client_secret, scope="events:write")
    reader = server.token(tenant.reader_id, tenant.reader_secret)
    checks = [
        ("GET", "/v2/analytics/overview", writer, 403),
        ("POST", "/v2/query", writer, 403),
        ("POST", "/v2/admin/ingest-keys", reader, 403),
        ("GET", "/v2/analytics/overview", tenant.ingest_key, 401),
        ("POST", "/v2/admin/clients", tenant.ingest_key, 401),
    ]
    for method, path, token, status in checks:
        response = httpx.request(method, f"{server.url}{path}", json={}, headers=bearer(token))
        assert response.status_code == status, (path, response.text)
        assert error_of(response) in ("AUTH_SCOPE_INSUFFICIENT", "AUTH_TOKEN_INVALID")


def test_admin_api_creates_credentials(
    server: ServerProcess, tenants: tuple[Tenant, Tenant]
) -> None:
    operator, other = tenants
    admin = server.token(operator.client_id, operator.client_secret)
    response = httpx.post(
        f"{server.url}/v2/admin/orgs",
        json={"name": "made-over-api", "plan": "enterprise"},
        headers=bearer(admin),
    )
    assert response.status_code == 201
    org_id = response.json()["org_id"]
    response = httpx.post(
        f"{server.url}/v2/admin/clients",
        json={"org_id": org_id, "scopes": "analytics:read"},
        headers=bearer(admin),
    )
    assert response.status_code == 201
    created = response.json()
    assert server.token(created["client_id"], created["client_secret"])
    response = httpx.post(
        f"{server.url}/v2/admin/ingest-keys", json={"org_id": org_id}, headers=bearer(admin)
    )
    assert response.status_code == 201 and "." in response.json()["key"]
    response = httpx.post(
        f"{server.url}/v2/admin/orgs", json={"name": "made-over-api"}, headers=bearer(admin)
    )
    assert response.status_code == 409

    non_operator = server.token(other.client_id, other.client_secret)
    response = httpx.post(
        f"{server.url}/v2/admin/orgs", json={"name": "nope"}, headers=bearer(non_operator)
    )
    assert response.status_code == 403
    response = httpx.post(
        f"{server.url}/v2/admin/clients",
        json={"org_id": operator.org_id, "scopes": "admin:manage"},
        headers=bearer(non_operator),
    )
    assert response.status_code == 403
