"""``envwatch worker`` and ``envwatch bridge``: the production processes."""

from __future__ import annotations

import asyncio
import logging
import signal

import typer

from streams.cli._app import app


def _logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@app.command()
def worker(log_level: str = typer.Option("info", help="debug, info, warning, error")) -> None:
    """Run a Faust stream worker (settings from ENVWATCH_* environment variables)."""
    _logging(log_level)
    import faust

    from streams import gctune, topics
    from streams.app import build
    from streams.settings import Settings

    settings = Settings()
    asyncio.run(
        topics.ensure_topics(
            settings.kafka, settings.partitions, settings.topic_prefix, security=settings
        )
    )
    pipeline = build(settings)
    gctune.tune(settings.gc_threshold)  # start-up objects frozen (streams/gctune.py)
    faust.Worker(pipeline.app, loglevel=log_level.upper()).execute_from_commandline()


@app.command()
def bridge(log_level: str = typer.Option("info", help="debug, info, warning, error")) -> None:
    """Run the MQTT→Kafka bridge (settings from ENVWATCH_* environment variables)."""
    _logging(log_level)
    from ingest.bridge import Bridge
    from streams.settings import Settings

    try:  # a missing CA, certificate, key or password file: one line, exit 2 (docs/mqtt.md §4)
        b = Bridge(Settings())
    except ValueError as exc:
        typer.echo(f"envwatch bridge: {exc}", err=True)
        raise typer.Exit(2) from None

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, b.stop)
        await b.run()

    asyncio.run(main())
