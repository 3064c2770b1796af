"""``envwatch api``: the alerts service (streams/api, docs/api.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from streams.cli._app import app


@app.command("api")
def api_command(
    config: Annotated[
        Path | None, typer.Option("--config", help="catalogue directory (deploy/config)")
    ] = None,
    kafka: Annotated[
        str | None, typer.Option("--kafka", help="Kafka URL (default ENVWATCH_KAFKA)")
    ] = None,
    host: Annotated[str | None, typer.Option("--host", help="listen address")] = None,
    port: Annotated[int | None, typer.Option("--port", help="listen port")] = None,
    principals: Annotated[
        Path | None, typer.Option("--principals", help="principals file (YAML, docs/api.md)")
    ] = None,
) -> None:
    """The alerts service: alerts, silences and maintenance over HTTP, per-role isolation."""
    import uvicorn

    from rules.catalog import load_catalog
    from streams.api.app import create_app
    from streams.api.auth import PrincipalsError, load_principals
    from streams.api.kafka import kafka_context
    from streams.api.settings import ApiSettings
    from streams.settings import Settings

    base = ApiSettings()
    over = {
        k: v
        for k, v in {"config": config, "host": host, "port": port, "principals": principals}.items()
        if v is not None
    }
    settings = base.model_copy(update=over)
    if settings.principals is None:
        typer.echo("envwatch api: give --principals FILE (or ENVWATCH_API_PRINCIPALS)", err=True)
        raise typer.Exit(2)
    try:
        auth = load_principals(settings.principals)
    except PrincipalsError as exc:
        typer.echo(f"envwatch api: {exc}", err=True)
        raise typer.Exit(2) from exc
    s = Settings()
    catalog = load_catalog(settings.config) if settings.config.is_dir() else None
    ctx = kafka_context(settings, auth, kafka or s.kafka, s.topic_prefix, catalog)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(ctx),
            host=settings.host,
            port=settings.port,
            log_level="info",
            access_log=False,  # never log request lines (a token could be in a query string)
        )
    )
    server.run()
