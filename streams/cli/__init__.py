"""``envwatch`` command line. Each sub-module registers its commands on :data:`app`."""

from __future__ import annotations

# Importing a module registers its commands.
from streams.cli import (  # noqa: F401
    alerts,
    api,
    backtest,
    catalog,
    demo,
    deploy,
    gateway,
    grafana,
    notify,
    report,
    run,
    simulate,
    sink,
)
from streams.cli._app import app


def main() -> None:
    """Entry point of the ``envwatch`` console script."""
    app()


__all__ = ["app", "main"]
