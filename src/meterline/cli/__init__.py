"""The ``meterline`` command: serve, admin, demo, quickstart."""

from __future__ import annotations

import typer

from meterline.cli import admin, demo, evaluate, importer, serve

app = typer.Typer(
    name="meterline",
    help="Self-hostable API analytics and rate limiting.",
    no_args_is_help=True,
    add_completion=False,
)
app.command("serve")(serve.serve)
app.add_typer(admin.app, name="admin")
app.command("demo")(demo.demo)
app.command("quickstart")(demo.quickstart)
app.command("import")(importer.import_logs)
app.add_typer(evaluate.app, name="eval")


def main() -> None:
    """Entry point of the ``meterline`` console script."""
    app()


__all__ = ["app", "main"]
