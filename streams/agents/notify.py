"""``notify``: alert-events → routing and grouping → ``notifications`` → delivery.

Rule evaluation never waits on a notification (architecture.md §2): transitions arrive here on
``alert-events`` (keyed by locality); they are routed (from the catalogue: duty officers of the
locality, the enterprise for its own outlets only, emergency responders for warning triggers)
and **grouped** per receiver on event time (``alerts/grouping.py``, docs/routing.md): a storm is
one message per group; warnings and operator alerts go at once; an ``escalated`` transition goes
to the rule's escalation chain, not to the original receivers. The group state is checkpointed
per partition of ``alert-events`` to ``alerts-state`` (``streams.state.CheckpointedState``:
snapshot + deterministic replay), a timer flushes the groups no further transition will flush
(:func:`flush_quiet`), and the notifications are produced to ``notifications`` keyed by
receiver before the batch's offsets are acknowledged. The ``notify-deliver`` agent takes them per partition into the outbox this
worker owns, kept in the Kafka delivery ledger so that another worker takes them over when this
one is lost (streams/deliveries.py, issue 13); its dispatcher task delivers with backoff. The
optional alerts log (``alerts_log``) records every transition once, as JSON lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import orjson

from alerts.grouping import Grouper
from alerts.model import Transition, TransitionKind
from alerts.notification import Texts
from alerts.routing import RouteTree, tree_from_receivers
from alerts.templates import render
from streams import kafkasecurity, topics
from streams.catalog import receivers_from_catalog
from streams.state import CheckpointedState

if TYPE_CHECKING:
    from streams.app import Pipeline
    from streams.settings import KafkaSecuritySettings

log = logging.getLogger(__name__)

#: s between two runs of the timer that flushes quiet groups (envwatch's choice [MEM])
FLUSH_EVERY: Final = 1.0
#: s a locality must have sent no transition before the timer flushes its due groups: a burst
#: that spans several batches is grouped as one (envwatch's choice [MEM])
QUIET: Final = 2.0
#: a reminder (repeat_interval) the wall clock may send only while it is this fresh; an older
#: one (history replayed, a backlog) waits for the locality's event clock (envwatch's choice [MEM])
STALE_REPEAT: Final = timedelta(minutes=10)

Output = tuple[str, bytes, bytes]


def alerts_log_line(t: Transition) -> bytes:
    """The alerts.jsonl record of one transition (kind, state, level, locality, source, at …)."""
    d = t.to_dict()
    record: dict[str, Any] = {
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
    lead = t.annotations.get("lead_hours")
    if lead:
        record["lead_hours"] = float(lead)  # a warning issued or raised on the data
    if t.kind is TransitionKind.DUTY:
        record["enterprise"] = t.labels.get("enterprise", "")
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
            tree_cache["tree"] = tree_from_receivers(
                receivers_from_catalog(p.catalog.catalog), _timing(p)
            )
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

    grouping: NotifyGrouping | None = None
    if deliveries is not None:
        grouping = NotifyGrouping(p, tree)
        p.states["notify"] = grouping.state
        p.states["notify_grouping"] = grouping

        @p.app.on_partitions_revoked.connect  # type: ignore[arg-type]  # mode's Signal typing
        async def _revoked_events(_app: Any, revoked: Any = (), **_: Any) -> None:
            assert grouping is not None
            grouping.revoked(
                {tp.partition for tp in revoked if tp.topic == grouping.state.input_topic}
            )

        @p.app.on_partitions_assigned.connect  # type: ignore[arg-type]  # mode's Signal typing
        async def _assigned_events(_app: Any, assigned: Any = (), **_: Any) -> None:
            assert grouping is not None
            grouping.assigned(
                {tp.partition for tp in assigned if tp.topic == grouping.state.input_topic}
            )

        @p.app.timer(FLUSH_EVERY)  # type: ignore[untyped-decorator]  # faust is untyped
        async def _flush_quiet() -> None:
            assert grouping is not None
            await grouping.flush_quiet(datetime.now(UTC))

    @p.app.agent(p.topic(topics.ALERT_EVENTS), name="notify")
    async def notify(stream: Any) -> None:
        async for events in stream.take_events(s.batch_size, within=s.downstream_within):
            transitions = []
            for e in events:
                try:
                    transitions.append(Transition.from_dict(orjson.loads(e.value)))
                except Exception as exc:  # a bad record is logged and skipped, never fatal
                    log.error("notify: undecodable transition: %s", type(exc).__name__)
            for t in transitions:
                p.observe_transition(t)
            if alerts_log is not None:
                await asyncio.to_thread(alerts_log.write, transitions)
            if grouping is not None:
                records = [
                    (m.partition, m.offset, m.key or b"", m.value, round((m.timestamp or 0) * 1000))
                    for m in (e.message for e in events)
                ]
                await grouping.process(records)


class NotifyGrouping:
    """The notify stage's grouping (``alerts.grouping.Grouper``) over ``alert-events``, its state
    checkpointed to ``alerts-state`` per input partition (the module docstring).

    Restart safety: every output is deterministic (event time only), a batch's notifications are
    sent and acknowledged before its offsets are, and a snapshot holds the groups with the input
    offset they correspond to. After a crash the partition is restored from its last snapshot and
    the input after it is replayed through the same step, so the groups are rebuilt exactly and
    whatever is flushed again carries the ids already in the delivery ledger, which ignores them.
    A timer flush (:meth:`flush_quiet`) is sent, then snapshotted at once; cut off between the
    two, the restored group is flushed again at the same due time with the same content."""

    def __init__(self, p: Pipeline, tree: Callable[[], RouteTree]) -> None:
        self.p = p
        s = p.settings
        external_url = _settings(p).external_url  # each alert's text links its console page

        def texts(t: Transition) -> Texts:
            return render(t, external_url=external_url)

        self.grouper = Grouper(tree, texts, _chain_of(p))
        #: locality → time.monotonic() of its last transition (not state: only when to flush)
        self.last_seen: dict[str, float] = {}
        self.lock = asyncio.Lock()
        self.state: CheckpointedState[Output] = CheckpointedState(
            bootstrap=topics.bootstrap_of(s.kafka),
            input_topic=topics.name(topics.ALERT_EVENTS, s.topic_prefix),
            state_topic=topics.name(topics.ALERTS_STATE, s.topic_prefix),
            partition_step=self.step,
            interval=s.checkpoint_interval,
        )
        self.stats = {"flushed_by_timer": 0, "resent_on_load": 0}
        self.owned: set[int] = set()
        self._loads: dict[int, asyncio.Task[None]] = {}

    # -- ownership: a partition's groups are loaded when it is assigned, not at its next record,
    #    so a group that was waiting when its worker died is flushed by the next owner's timer

    def assigned(self, partitions: set[int]) -> None:
        self.owned |= partitions
        for n in partitions:
            task = self._loads.get(n)
            if task is None or task.done():
                self._loads[n] = asyncio.ensure_future(self._load(n))

    def revoked(self, partitions: set[int]) -> None:
        self.owned -= partitions
        for n in partitions:
            task = self._loads.pop(n, None)
            if task is not None and not task.done():
                task.cancel()
        self.state.revoke(partitions)

    async def _load(self, partition: int) -> None:
        """Restore the partition's last snapshot and replay ``alert-events`` after it to the
        partition's end, *sending* what the replay flushes: a record the previous owner read but
        whose notifications it never sent is not lost; those it did send come again with the
        same ids and the delivery ledger ignores them. Records the agent then receives below the
        replayed offset are skipped (``CheckpointedState.process``). Without any snapshot (a
        first start, the upgrade that introduced grouping) nothing is replayed here: the history
        is not told again."""
        from streams.agents.evaluate import send_outputs

        try:
            async with self.lock:
                if partition in self.state.partitions or partition not in self.owned:
                    return
                part = await self.state.restore(partition, up_to=0)  # the snapshot only
                if part.generation == 0:
                    # no snapshot yet (a first start, an upgrade): replaying the whole history
                    # would send its groups again; the lazy restore at the partition's first
                    # record rebuilds the groups silently instead
                    self.state.partitions.pop(partition, None)
                    return
                outputs: list[Output] = []
                async for offset, key, value, ts in _read_from(
                    self.state.bootstrap,
                    self.state.input_topic,
                    partition,
                    part.next_offset,
                    security=self.p.settings,
                ):
                    self.state._apply(part, key, value, offset, ts, outputs)
                await send_outputs(self.p, outputs)
                self.stats["resent_on_load"] += len(outputs)
                if outputs:
                    log.info(
                        "notify: %s[%d] replayed to its end on take-over: %d notifications "
                        "(the ledger ignores those already known)",
                        self.state.input_topic,
                        partition,
                        len(outputs),
                    )
        except asyncio.CancelledError:
            raise
        except Exception:  # the lazy restore at the partition's next record still applies
            log.exception("notify: cannot load %s[%d]", self.state.input_topic, partition)
            self.state.partitions.pop(partition, None)

    def step(
        self,
        states: dict[str, Any],
        _key: bytes,
        value: bytes,
        _offset: int,
        _ts: int,
        _partition: int = 0,
    ) -> Sequence[Output]:
        try:
            t = Transition.from_dict(orjson.loads(value))
        except Exception:  # logged by the agent (it decodes every record too)
            return []
        self.last_seen[t.locality] = time.monotonic()
        return _outputs(self.grouper.on_transition(states, t))

    async def process(self, records: list[tuple[int, int, bytes, bytes, int]]) -> None:
        from streams.agents.evaluate import checkpoint, send_outputs

        async with self.lock:
            outputs = await self.state.process(records)
            await send_outputs(self.p, outputs)  # before Faust acks the alert-events
            await checkpoint(self.p, self.state)

    def waiting(self) -> int:
        """Groups of the owned partitions with news not yet told (a test waits for 0)."""
        return sum(
            news
            for part in self.state.partitions.values()
            for _key, _due, news in self.grouper.pending(part.states)
        )

    async def flush_quiet(self, now: datetime) -> int:
        """Flush, at their own due times, the groups whose locality has been quiet for
        ``QUIET`` s and whose due time the wall clock has passed (a reminder only while fresh,
        ``STALE_REPEAT``); returns how many notifications were sent."""
        from streams.agents.evaluate import checkpoint, send_outputs

        async with self.lock:
            outputs: list[Output] = []
            mono = time.monotonic()
            for part in list(self.state.partitions.values()):
                wanted = [
                    key
                    for key, due, news in self.grouper.pending(part.states)
                    if due <= now
                    and (news or now - due <= STALE_REPEAT)
                    and mono - self.last_seen.get(_locality_of(part.states, key), 0.0) >= QUIET
                ]
                if not wanted:
                    continue
                n = []
                for key in wanted:
                    due_at = next(d for k, d, _ in self.grouper.pending(part.states) if k == key)
                    n += self.grouper.flush(part.states, None, due_at, keys=[key])
                part.dirty = True
                outputs += _outputs(n)
            if not outputs:
                return 0
            await send_outputs(self.p, outputs)
            await checkpoint(self.p, self.state, force=True)  # the flush is state: keep it now
            self.stats["flushed_by_timer"] += len(outputs)
            return len(outputs)


async def _read_from(
    bootstrap: str,
    topic: str,
    partition: int,
    start: int,
    *,
    limit: float = 60.0,
    security: KafkaSecuritySettings | None = None,
) -> Any:
    """``(offset, key, value, timestamp ms)`` of one partition from ``start`` to its end (the
    fetch's high watermark, then two empty polls: Tansu's ListOffsets may lag the true end)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    tp = TopicPartition(topic, partition)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
        **kafkasecurity.client_kwargs(security),
    )
    await consumer.start()
    try:
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        if end <= start:
            return
        consumer.seek(tp, start)
        position, quiet = start, 0
        deadline = time.monotonic() + limit
        while quiet < 2 and time.monotonic() < deadline:
            batch = await consumer.getmany(tp, timeout_ms=200, max_records=5000)
            msgs = batch.get(tp, [])
            for m in msgs:
                if m.offset >= position:
                    position = m.offset + 1
                    yield m.offset, m.key or b"", m.value, m.timestamp
            high = max(end, consumer.highwater(tp) or 0)
            quiet = 0 if msgs or position < high else quiet + 1
    finally:
        await consumer.stop()


def _locality_of(states: dict[str, Any], key: str) -> str:
    from alerts.grouping import group_locality

    return group_locality(states, key) or ""


def _outputs(notifications: Sequence[Any]) -> list[Output]:
    # keyed by receiver: one receiver's notifications stay in one partition
    return [
        (topics.NOTIFICATIONS, n.receiver.encode(), n.to_json().encode()) for n in notifications
    ]


def _chain_of(p: Pipeline) -> Callable[[str], tuple[str, ...]]:
    """rule id → the rule's escalation chain (receiver kinds, ``AlertRule.escalation``) in the
    worker's current alert rules (``p.alert_rules``, hot-reloaded); empty when the rule names
    none or is unknown (then the duty officer, alerts/grouping.py)."""

    def chain_of(rule_id: str) -> tuple[str, ...]:
        rule = p.alert_rules().by_id.get(rule_id)
        return () if rule is None else rule.escalation

    return chain_of


def _settings(p: Pipeline) -> Any:
    from alerts.settings import AlertsSettings

    return p.alerts_settings or AlertsSettings()


def _timing(p: Pipeline) -> Any:
    """The grouping timers of ``ENVWATCH_ALERTS_GROUPING__*`` (alerts.settings.GroupingSettings;
    defaults Alertmanager's, peers.md §1.1)."""
    return _settings(p).grouping.timing()


def _empty_route() -> Any:
    from alerts.routing import Route

    return Route(routes=())
