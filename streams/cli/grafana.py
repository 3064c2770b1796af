"""``envwatch grafana export`` and ``envwatch grafana provision`` (docs/grafana.md).

The dashboards live in ``deploy/grafana`` (dashboards as code); that folder is importable from a
source checkout (the editable install puts the checkout on ``sys.path``), not from a wheel — the
commands say so instead of failing with a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Annotated

import typer

from rules.errors import ConfigError
from streams.cli._app import app

grafana_app = typer.Typer(
    help="Grafana dashboards as code: export the JSON, provision a running Grafana.",
    no_args_is_help=True,
)
app.add_typer(grafana_app, name="grafana")


def _module(name: str) -> ModuleType:
    import importlib

    try:
        return importlib.import_module(f"deploy.grafana.{name}")
    except ImportError as exc:
        typer.echo(
            f"deploy/grafana is not importable ({exc}); run envwatch from a source checkout",
            err=True,
        )
        raise typer.Exit(2) from None


@grafana_app.command("export")
def export(
    out: Annotated[
        Path | None,
        typer.Option(help="output directory (default: deploy/grafana/dashboards)"),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            help="catalogue directory for coordinates and plan citations (default: deploy/config)"
        ),
    ] = None,
) -> None:
    """Write every dashboard as <uid>.json (the files Grafana's file provisioning loads)."""
    dashboards = _module("dashboards")
    try:
        paths = dashboards.export(
            out if out is not None else dashboards.OUT_DIR,
            config if config is not None else dashboards.CONFIG_DIR,
        )
    except ConfigError as exc:
        typer.echo(f"cannot read the catalogue: {exc}", err=True)
        raise typer.Exit(2) from None
    except OSError as exc:
        typer.echo(f"cannot write the dashboards: {exc}", err=True)
        raise typer.Exit(1) from None
    for p in paths:
        typer.echo(str(p))


@grafana_app.command("provision")
def provision(
    url: Annotated[str, typer.Option(help="Grafana base URL, e.g. http://grafana:3000")],
    token: Annotated[
        str | None,
        typer.Option(help="Grafana service-account token", envvar="GRAFANA_TOKEN"),
    ] = None,
    influx_url: Annotated[
        str | None,
        typer.Option(
            help="InfluxDB URL for the datasource (none: leave datasources alone)",
            envvar="ENVWATCH_INFLUX_URL",
        ),
    ] = None,
    influx_org: Annotated[str, typer.Option(envvar="ENVWATCH_INFLUX_ORG")] = "envwatch",
    influx_bucket: Annotated[str, typer.Option(envvar="ENVWATCH_INFLUX_BUCKET")] = "envwatch",
    influx_token: Annotated[
        str | None, typer.Option(help="InfluxDB read token", envvar="ENVWATCH_INFLUX_TOKEN")
    ] = None,
    timeout: Annotated[float, typer.Option(help="seconds per HTTP request")] = 10.0,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    config: Annotated[
        Path | None,
        typer.Option(
            help="catalogue directory for coordinates and plan citations (default: deploy/config)"
        ),
    ] = None,
    console_url: Annotated[
        str | None,
        typer.Option(
            help="the alerts console's base URL for the alert rows' links",
            envvar="ENVWATCH_ALERTS_EXTERNAL_URL",
        ),
    ] = None,
) -> None:
    """Create or update the envwatch folder, the InfluxDB datasource and every dashboard."""
    dashboards = _module("dashboards")
    prov = _module("provision")
    source = (
        prov.InfluxSource(url=influx_url, org=influx_org, bucket=influx_bucket, token=influx_token)
        if influx_url
        else None
    )
    try:
        boards = dashboards.all_dashboards(config if config is not None else dashboards.CONFIG_DIR)
    except ConfigError as exc:
        typer.echo(f"cannot read the catalogue: {exc}", err=True)
        raise typer.Exit(2) from None
    if console_url:
        boards = {uid: dashboards.with_console_url(d, console_url) for uid, d in boards.items()}
    try:
        api = prov.connect(url, token, timeout=timeout)
        steps = prov.provision(
            api,
            boards,
            folder_uid=dashboards.FOLDER_UID,
            folder_title=dashboards.FOLDER_TITLE,
            source=source,
        )
    except prov.ProvisionError as exc:
        typer.echo(f"grafana provision failed at {exc}", err=True)
        raise typer.Exit(1) from None
    except ValueError as exc:  # a URL grafana-client cannot parse
        typer.echo(f"grafana provision: bad --url {url!r}: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(
            json.dumps([{"kind": s.kind, "uid": s.uid, "action": s.action.value} for s in steps])
        )
        return
    for s in steps:
        typer.echo(f"{s.kind:<10} {s.uid:<24} {s.action.value}")
