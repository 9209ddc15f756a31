"""The admin CLI prints one JSON object per command and works while the server runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.helpers import ServerProcess

pytestmark = pytest.mark.e2e


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meterline", *args], capture_output=True, text=True, timeout=60
    )


def test_admin_commands_while_the_server_runs(server: ServerProcess, server_dir: Path) -> None:
    data = ["--data-dir", str(server_dir)]
    org = json.loads(cli("admin", "create-org", "cli-made", *data).stdout)
    assert set(org) == {"org_id", "name", "plan"} and org["plan"] == "basic"
    client = json.loads(
        cli(
            "admin",
            "create-client",
            "--org",
            "cli-made",
            "--scopes",
            "analytics:read events:write",
            "--plan",
            "enterprise",
            *data,
        ).stdout
    )
    assert client["client_id"].startswith("mlc_") and client["client_secret"].startswith("mls_")
    assert client["plan"] == "enterprise"
    key = json.loads(cli("admin", "create-ingest-key", "--org", org["org_id"], *data).stdout)["key"]

    token = server.token(client["client_id"], client["client_secret"])
    response = httpx.post(
        f"{server.url}/v2/events",
        json=[{"event_id": "cli-1", "path": "/x", "status": 200}],
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 202 and response.json()["accepted"] == 1
    response = httpx.get(
        f"{server.url}/v2/analytics/overview?range=1h", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200

    revoked = json.loads(cli("admin", "revoke-client", client["client_id"], *data).stdout)
    assert revoked["revoked"] is True


def test_admin_errors_are_json_and_exit_nonzero(server_dir: Path) -> None:
    result = cli(
        "admin",
        "create-client",
        "--org",
        "no-such-org",
        "--scopes",
        "analytics:read",
        "--data-dir",
        str(server_dir),
    )
    assert result.returncode == 1
    assert json.loads(result.stderr)["error"]["code"] == "NOT_FOUND"
    result = cli(
        "admin",
        "create-client",
        "--org",
        "no-such-org",
        "--scopes",
        "bogus:scope",
        "--data-dir",
        str(server_dir),
    )
    assert result.returncode == 1
    assert json.loads(result.stderr)["error"]["code"] == "VALIDATION_ERROR"
    result = cli("admin", "create-org", "x", "--plan", "gold", "--data-dir", str(server_dir))
    assert json.loads(result.stderr)["error"]["code"] == "VALIDATION_ERROR"
