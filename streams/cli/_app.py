"""The one Typer application behind the ``envwatch`` command; command modules attach to it."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="envwatch",
    help="envwatch — environmental monitoring and alerts for the Shandong 14th Five-Year plans.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.command()
def version() -> None:
    """Print envwatch's version."""
    from importlib.metadata import version as _v

    typer.echo(f"envwatch {_v('envwatch')}")
