"""``envwatch notify …``: notifications a receiver refused, and their re-sending (issue 13).

``envwatch notify status`` lists, per receiver, the notifications in the delivery ledger by state
(pending, sent, held, dead) and why the held ones were refused. ``envwatch notify replay
[--receiver NAME]`` asks the worker that owns the receiver's partition of ``notifications`` to
send its held and dead notifications again (a control record on that topic; docs/notifications.md
§4): fix the receiver first, then replay. A held notification is also sent again without a
replay when the receiver's URL or secret changed (at the next start or take-over).

Kafka from the worker's settings (``ENVWATCH_KAFKA``, ``ENVWATCH_TOPIC_PREFIX``). Exit status:
0 done, 2 Kafka did not answer.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Annotated, Any

import typer

from streams.cli._app import app

notify_app = typer.Typer(
    help="Notification delivery: refused (held) notifications and their re-sending.",
    no_args_is_help=True,
)
app.add_typer(notify_app, name="notify")

STATES = ("pending", "sent", "held", "dead")


def _topics() -> tuple[str, str, str]:
    from streams import topics
    from streams.settings import Settings

    s = Settings()
    return (
        topics.bootstrap_of(s.kafka),
        topics.name(topics.NOTIFICATIONS, s.topic_prefix),
        topics.name(topics.NOTIFY_LEDGER, s.topic_prefix),
    )


def _by_receiver(ledger: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Counter[str]]:
    out: dict[str, Counter[str]] = {}
    for (_id, receiver), d in ledger.items():
        out.setdefault(receiver, Counter())[str(d.get("state"))] += 1
    return out


def _read(bootstrap: str, ledger_topic: str) -> dict[tuple[str, str], dict[str, Any]]:
    from streams.deliveries import read_ledger

    try:
        return asyncio.run(asyncio.wait_for(read_ledger(bootstrap, ledger_topic), 120))
    except (OSError, TimeoutError) as exc:
        typer.echo(f"envwatch notify: Kafka at {bootstrap}: {type(exc).__name__}", err=True)
        raise typer.Exit(2) from None
    except Exception as exc:  # aiokafka's connection errors
        typer.echo(f"envwatch notify: Kafka at {bootstrap}: {type(exc).__name__}", err=True)
        raise typer.Exit(2) from None


@notify_app.command("status")
def status_command(
    receiver: Annotated[
        str | None, typer.Option("--receiver", help="only this receiver (catalogue name)")
    ] = None,
) -> None:
    """Per receiver: notifications pending, sent, held (refused) and dead (budget spent)."""
    from alerts.notify.webhook import scrub

    bootstrap, _topic, ledger_topic = _topics()
    ledger = _read(bootstrap, ledger_topic)
    if receiver is not None:
        ledger = {k: v for k, v in ledger.items() if k[1] == receiver}
    if not ledger:
        typer.echo("no notifications in the delivery ledger")
        return
    typer.echo(f"{'receiver':32} " + " ".join(f"{s:>8}" for s in STATES))
    for name, counts in sorted(_by_receiver(ledger).items()):
        typer.echo(f"{name:32} " + " ".join(f"{counts[s]:8d}" for s in STATES))
    refused = [(k, d) for k, d in sorted(ledger.items()) if d.get("state") in ("held", "dead")]
    for (nid, name), d in refused[:50]:
        typer.echo(f"  {d['state']:5} {name} {nid}: {scrub(str(d.get('last_error') or ''))[:160]}")
    if len(refused) > 50:
        typer.echo(f"  … and {len(refused) - 50} more")


@notify_app.command("replay")
def replay_command(
    receiver: Annotated[
        str | None,
        typer.Option("--receiver", help="only this receiver (catalogue name); default: all"),
    ] = None,
) -> None:
    """Send the held and dead notifications again (of one receiver, or of all)."""
    from streams.deliveries import request_replay

    bootstrap, topic, ledger_topic = _topics()
    ledger = _read(bootstrap, ledger_topic)
    waiting = Counter(
        name
        for (_id, name), d in ledger.items()
        if d.get("state") in ("held", "dead") and (receiver is None or name == receiver)
    )
    try:
        parts = asyncio.run(asyncio.wait_for(request_replay(bootstrap, topic, receiver), 60))
    except Exception as exc:  # aiokafka's connection errors, a timeout
        typer.echo(f"envwatch notify replay: Kafka at {bootstrap}: {type(exc).__name__}", err=True)
        raise typer.Exit(2) from None
    who = receiver or "every receiver"
    typer.echo(
        f"replay of {who} requested on partition(s) {', '.join(map(str, parts))} of {topic}: "
        f"{sum(waiting.values())} held or dead notification(s) to send again"
    )
    for name, n in sorted(waiting.items()):
        typer.echo(f"  {name}: {n}")
    typer.echo("the worker that owns each partition sends them; see `envwatch notify status`")
