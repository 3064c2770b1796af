"""``envwatch`` command line. Each sub-module registers its commands on :data:`app`."""

from __future__ import annotations

import sys

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
    """Entry point of the ``envwatch`` console script. A secret setting given as an unreadable or
    ambiguous ``…_FILE`` stops any command with exit status 2 and the variable and path named
    (never a traceback, never the content)."""
    from alerts.secretfiles import SecretFileError

    try:
        app()
    except SecretFileError as exc:
        print(f"envwatch: {exc}", file=sys.stderr)
        sys.exit(2)


__all__ = ["app", "main"]
