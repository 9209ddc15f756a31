"""``meterline admin``: orgs, API clients and ingest keys, safe to run beside the server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from meterline.config import Settings
from meterline.errors import MeterlineError

app = typer.Typer(help="Manage orgs, API clients and ingest keys.", no_args_is_help=True)

DataDir = Annotated[Path, typer.Option(help="The server's data directory.")]
MetadataUrl = Annotated[str | None, typer.Option("--metadata", help="Metadata database URL.")]


def _auth(data_dir: Path, metadata: str | None) -> Any:
    from meterline.auth import AuthService
    from meterline.metadb import engine_from_url, migrate

    settings = Settings.from_env(data_dir=data_dir, metadata_url=metadata)
    engine = engine_from_url(settings.resolved_metadata_url)
    migrate(engine)
    return AuthService(engine)


def _emit(run: Any) -> None:
    try:
        typer.echo(json.dumps(run()))
    except MeterlineError as exc:
        typer.echo(
            json.dumps(
                {"error": {"code": exc.code, "message": exc.message, "details": exc.details}}
            ),
            err=True,
        )
        raise typer.Exit(1) from None


@app.command("create-org")
def create_org(
    name: str,
    plan: Annotated[str, typer.Option(help="basic, professional or enterprise.")] = "basic",
    operator: Annotated[
        bool, typer.Option(help="May create and manage other orgs over the API.")
    ] = False,
    data_dir: DataDir = Path(".meterline"),
    metadata: MetadataUrl = None,
) -> None:
    """Create an org and print {"org_id", "name", "plan"}."""
    _emit(lambda: _auth(data_dir, metadata).create_org(name, plan, operator=operator))


@app.command("create-client")
def create_client(
    org: Annotated[str, typer.Option(help="Org id or name.")],
    scopes: Annotated[
        str, typer.Option(help='Space-separated, e.g. "analytics:read reports:read".')
    ],
    plan: Annotated[str | None, typer.Option(help="Also move the org to this plan.")] = None,
    name: Annotated[str, typer.Option(help="A label for the client.")] = "api client",
    data_dir: DataDir = Path(".meterline"),
    metadata: MetadataUrl = None,
) -> None:
    """Create an OAuth2 client and print {"client_id", "client_secret", …} (shown once)."""
    _emit(lambda: _auth(data_dir, metadata).create_client(org, scopes, name=name, plan=plan))


@app.command("create-ingest-key")
def create_ingest_key(
    org: Annotated[str, typer.Option(help="Org id or name.")],
    data_dir: DataDir = Path(".meterline"),
    metadata: MetadataUrl = None,
) -> None:
    """Create a write-only ingest key and print {"key", "key_id", "org_id"} (shown once)."""
    _emit(lambda: _auth(data_dir, metadata).create_ingest_key(org))


@app.command("set-plan")
def set_plan(
    org: Annotated[str, typer.Option(help="Org id or name.")],
    plan: Annotated[str, typer.Option(help="basic, professional or enterprise.")],
    data_dir: DataDir = Path(".meterline"),
    metadata: MetadataUrl = None,
) -> None:
    """Move an org to another plan; events received from now on get its retention."""
    _emit(lambda: _auth(data_dir, metadata).set_plan(org, plan))


@app.command("revoke-client")
def revoke_client(
    client_id: str,
    data_dir: DataDir = Path(".meterline"),
    metadata: MetadataUrl = None,
) -> None:
    """Revoke a client: its secret and tokens stop working within seconds."""

    def run() -> dict[str, Any]:
        _auth(data_dir, metadata).revoke_client(client_id)
        return {"client_id": client_id, "revoked": True}

    _emit(run)
