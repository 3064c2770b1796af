"""``envwatch report DIR``: (re)build ``DIR/report.html`` from a run's output directory.

Any directory that holds the store's line protocol (``*.lp``, ``*.lp.gz``, ``*.lp.open``) and/or
an ``alerts.jsonl`` — ``envwatch demo --out DIR``, a worker's spool, a backtest's output — gives
one self-contained HTML page (streams/report.py): per locality the city AQI with the
heavy-pollution warning band and the alerts' firing intervals, tables of warnings, alerts and
notifications, and the data quality. Lines that cannot be read are listed in the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from streams.cli._app import app


@app.command()
def report(
    directory: Annotated[
        Path, typer.Argument(help="output directory of a run (*.lp, alerts.jsonl)")
    ],
    config: Annotated[
        Path, typer.Option("--config", help="catalogue directory (display names)")
    ] = Path("deploy/config"),
    title: Annotated[str | None, typer.Option("--title", help="page title")] = None,
) -> None:
    """Write DIR/report.html: AQI, warnings, alerts and data quality of a run, one HTML file."""
    # imported here: streams.report reuses backtest's reader, so it imports this package
    from streams.report import write_report

    if not directory.is_dir():
        typer.echo(f"envwatch report: no such directory: {directory}", err=True)
        raise typer.Exit(2)
    path = write_report(directory, config=config, title=title)
    typer.echo(f"report: {path}")
