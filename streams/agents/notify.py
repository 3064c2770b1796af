"""``notify``: alert-events → routing → ``notifications`` → delivery (own agents, own topics).

Rule evaluation never waits on a notification (architecture.md §2): transitions arrive here on
``alert-events``; each becomes one notification per receiver (routing from the catalogue:
duty officers of the locality, the enterprise for its own outlets only, emergency responders for
warning triggers), produced to ``notifications`` keyed by receiver before the batch's offsets
are acknowledged. The ``notify-deliver`` agent takes them per partition into the outbox this
worker owns, kept in the Kafka delivery ledger so that another worker takes them over when this
one is lost (streams/deliveries.py, issue 13); its dispatcher task delivers with backoff. The
optional alerts log (``alerts_log``) records every transition once, as JSON lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from alerts.model import Transition
from alerts.notification import notifications_for
from alerts.routing import RouteTree, tree_from_receivers
from alerts.templates import render
from streams import topics
from streams.catalog import receivers_from_catalog

if TYPE_CHECKING:
    from streams.app import Pipeline

log = logging.getLogger(__name__)


def alerts_log_line(t: Transition) -> bytes:
    """The alerts.jsonl record of one transition (kind, state, level, locality, source, at …)."""
    d = t.to_dict()
    record = {
        "id": t.id,
        "kind": t.kind.value,
        "state": t.state.value,
        "previous_state": None if t.previous_state is None else t.previous_state.value,
        "level": t.level,
        "locality": t.locality,
        "source": t.source,
        "rule": t.labels.get("rule", ""),
        "reason": t.reason.value,
        "severity": t.severity.value,
        "at": t.at.isoformat(),
        "summary": t.annotations.get("summary", ""),
        "notify": t.notify,
        "transition": d,
    }
    return orjson.dumps(record) + b"\n"


class AlertsLog:
    """Append-only JSON lines, each transition id once (replays after a restart are skipped)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.seen: set[str] = set()
        if path.exists():
            for line in path.read_bytes().splitlines():
                with contextlib.suppress(orjson.JSONDecodeError, KeyError, TypeError):
                    self.seen.add(orjson.loads(line)["id"])

    def write(self, transitions: list[Transition]) -> None:
        new: list[Transition] = []
        for t in transitions:  # a redelivery may repeat an id within one batch as well
            if t.id not in self.seen:
                self.seen.add(t.id)
                new.append(t)
        if not new:
            return
        with self.path.open("ab") as f:
            for t in new:
                f.write(alerts_log_line(t))


def register(p: Pipeline) -> None:
    s = p.settings
    alerts_log = AlertsLog(s.alerts_log) if s.alerts_log is not None else None
    tree_cache: dict[str, Any] = {"reloads": -1, "tree": RouteTree(_empty_route())}

    def tree() -> RouteTree:
        if tree_cache["reloads"] != p.catalog.reloads:
            tree_cache["tree"] = tree_from_receivers(receivers_from_catalog(p.catalog.catalog))
            tree_cache["reloads"] = p.catalog.reloads
        return tree_cache["tree"]  # type: ignore[no-any-return]

    deliveries = None
    if s.outbox_path is not None:  # the switch of notifications (the file is no longer used)
        from alerts.settings import AlertsSettings
        from streams.deliveries import Deliveries, partition_keys

        alerts_settings = p.alerts_settings or AlertsSettings(outbox_path=s.outbox_path)
        deliveries = Deliveries(p, alerts_settings)
        p.states["outbox"] = deliveries.outbox
        p.states["deliveries"] = deliveries
        notifications_topic = deliveries.topic

        @p.app.on_partitions_revoked.connect  # type: ignore[arg-type]  # mode's Signal typing
        async def _revoked(_app: Any, revoked: Any = (), **_: Any) -> None:
            assert deliveries is not None
            await deliveries.revoked(partition_keys(revoked, notifications_topic))

        @p.app.on_partitions_assigned.connect  # type: ignore[arg-type]  # mode's Signal typing
        async def _assigned(_app: Any, assigned: Any = (), **_: Any) -> None:
            assert deliveries is not None
            await deliveries.assigned(partition_keys(assigned, notifications_topic))

        @p.app.task  # type: ignore[untyped-decorator]  # faust is untyped
        async def _dispatch() -> None:
            # runs until the app stops (the task is cancelled); what is not delivered stays in
            # the ledger and is sent by whoever owns its partition next
            assert deliveries is not None
            await deliveries.dispatcher.run(asyncio.Event())

        @p.app.agent(p.topic(topics.NOTIFICATIONS), name="notify-deliver")
        async def deliver(stream: Any) -> None:
            assert deliveries is not None
            async for event in stream.events():
                await deliveries.accept(event.message.partition, event.value)

    @p.app.agent(p.topic(topics.ALERT_EVENTS), name="notify")
    async def notify(stream: Any) -> None:
        async for values in stream.take(s.batch_size, within=s.downstream_within):
            transitions = []
            for v in values:
                try:
                    transitions.append(Transition.from_dict(orjson.loads(v)))
                except Exception as exc:  # a bad record is logged and skipped, never fatal
                    log.error("notify: undecodable transition: %s", type(exc).__name__)
            for t in transitions:
                p.observe_transition(t)
            if alerts_log is not None:
                await asyncio.to_thread(alerts_log.write, transitions)
            if deliveries is not None:
                routes = tree()
                batch = []
                for t in transitions:
                    receivers = list(routes.receivers(t.labels, _kind(t)))
                    batch += notifications_for(t, receivers, render)
                if batch:
                    # keyed by receiver: one receiver's notifications stay in one partition
                    topic = deliveries.topic
                    for n in batch:
                        await p.app.producer.send(
                            topic, n.receiver.encode(), n.to_json().encode(), None, None, None
                        )
                    await p.app.producer.flush()  # before Faust acks the alert-events


def _kind(t: Transition) -> Any:
    from alerts.notification import NotificationKind

    return NotificationKind(t.kind.value)


def _empty_route() -> Any:
    from alerts.routing import Route

    return Route(routes=())
