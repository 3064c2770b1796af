"""``envwatch sink …``: the store's refused lines.

``envwatch sink replay [--spool DIR]`` re-sends the lines the endpoint refused (kept in
``<spool>/rejected/`` with their reasons, docs/sink.md) once the operator fixed the cause: per
file it prints how many were written and which are still refused, and why. The endpoint is the
worker's (``ENVWATCH_INFLUX_URL``, ``ENVWATCH_INFLUX_TOKEN`` or ``…_TOKEN_FILE``, ``…_CA_FILE`` …,
through :func:`streams.sink.make_writer`). Idempotent: a written line leaves
the file, so a rerun sends only what is still refused; a line kept twice is sent once.

Exit status: 0 everything written (or nothing to do), 1 lines still refused, 2 the endpoint is
not configured or did not answer (what was not tried stays in place).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from streams.cli._app import app

sink_app = typer.Typer(help="The InfluxDB sink: lines the endpoint refused.", no_args_is_help=True)
app.add_typer(sink_app, name="sink")


@sink_app.command("replay")
def replay_command(
    spool: Annotated[
        Path | None,
        typer.Option("--spool", help="spool directory (default: ENVWATCH_SPOOL_DIR, var/spool)"),
    ] = None,
) -> None:
    """Re-send the refused lines in SPOOL/rejected/ and report, per file, written / still refused."""
    from pydantic import ValidationError

    from streams.settings import Settings
    from streams.sink import SinkError, make_writer, replay

    try:
        settings = Settings()
    except ValidationError as exc:  # e.g. an unreadable …_FILE: named, never its content
        for e in exc.errors():
            typer.echo(f"envwatch sink replay: {e['msg']}", err=True)
        raise typer.Exit(2) from None
    directory = (spool or settings.spool_dir) / "rejected"
    try:
        writer = make_writer(settings)  # the worker's endpoint, as streams.app.make_sink builds it
    except SinkError as exc:
        typer.echo(f"envwatch sink replay: {exc}", err=True)
        raise typer.Exit(2) from None
    if writer is None:
        typer.echo("envwatch sink replay: no endpoint: set ENVWATCH_INFLUX_URL", err=True)
        raise typer.Exit(2)
    try:
        reports = replay(writer, directory)
    finally:
        writer.close()
    if not reports:
        typer.echo(f"nothing to replay in {directory}")
        return
    written = refused = untried = 0
    error = ""
    for r in reports:
        parts = [f"{r.written} written", f"{len(r.refused)} still refused"]
        if r.duplicates:
            parts.append(f"{r.duplicates} duplicate(s) dropped")
        if r.untried:
            parts.append(f"{r.untried} not tried")
        typer.echo(f"{r.path.name}: {', '.join(parts)}")
        for x in r.refused:
            status = x.status if x.status is not None else "no status"
            typer.echo(f"  {status}: {x.reason[:300]}\n    {x.line[:300]}")
        written += r.written
        refused += len(r.refused)
        untried += r.untried
        error = error or r.error
    typer.echo(f"total: {written} written, {refused} still refused, {untried} not tried")
    if untried:
        typer.echo(f"envwatch sink replay: the endpoint stopped answering: {error}", err=True)
        raise typer.Exit(2)
    if refused:
        raise typer.Exit(1)
