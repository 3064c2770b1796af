"""Notification delivery that survives the loss of a host: the outbox lives in Kafka (issue 13).

Before issue 13 each worker kept its pending notifications in a local SQLite file: a lost host
took them with it, and a worker that took over the ``alert-events`` partitions of a killed one
re-read the transitions past the last committed offset and sent them a second time from its own,
empty outbox (22 duplicates in one kill). Now::

    alert-events ──notify agent──► notifications (key = receiver: one receiver, one partition)
                                        │ deliver agent, per partition owned by this worker
                                        ▼
          MemoryOutbox (rows of the owned partitions) ──Dispatcher──► webhook / chat / mail
                 │ every change of a row, awaited before it counts
                 ▼
          notify-ledger (compacted, key <receiver>/<id>, partition = the notification's)

* A notification is taken from ``notifications`` only after its row is in the ledger
  (``pending``, with the notification); its offset is committed after that (Faust acks when the
  agent moves on), so nothing between the two topics is lost, and a notification read twice
  (a re-read past the committed offset, a transition the locality stage re-emitted after a
  restart, a replayed ``alert-events`` batch) finds its key known and is ignored.
* The Kafka group's assignment of ``notifications`` decides who sends what. A worker that is
  given a partition reads that partition of the ledger to its end (:func:`read_partition`) before
  it takes anything from it: pending rows are sent, held rows kept, sent keys remembered. On a
  revocation (a rebalance) it stops starting sends of the partition, waits up to ``grace`` s for
  those in flight and writes their outcome, then forgets the rows.
* The only window: a send that reached the receiver but whose outcome was not yet in the ledger
  when its worker died (kill -9, power loss) — at most the sends in flight at that instant
  (≤ ``ENVWATCH_ALERTS_CONCURRENCY`` per worker, ≤ ``PER_RECEIVER`` per receiver) — is sent again
  by the next owner with the same ``Idempotency-Key``. Exactly once to an HTTP receiver therefore
  needs the receiver to honour that key (docs/notifications.md §4); envwatch's own side sends
  each key once outside that window (tests/integration/test_fault_notify.py measures both).
* A receiver that refuses a notification (HTTP 4xx, a bad URL, no channel) gets it *held*: kept
  in the ledger with the fingerprint of the receiver's configuration, the operator alerted
  (``receiver:<name>`` / ``delivery``, alerts/pipeline.py) until nothing of that receiver is
  held; re-sent by ``envwatch notify replay`` (a control record on ``notifications``) or, at the
  next take-over of its partition (a start-up, a reload), when the receiver's URL or secret
  changed since.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from alerts.notification import Notification
from alerts.notify.dispatcher import Dispatcher
from alerts.notify.routes import RouteChannels
from alerts.outbox import MemoryOutbox, OutboxError, OutboxItem, RowState, ledger_key
from alerts.settings import AlertsSettings
from streams import kafkasecurity, topics

if TYPE_CHECKING:
    from streams.app import Pipeline
    from streams.health import HealthReporter
    from streams.settings import KafkaSecuritySettings

log = logging.getLogger(__name__)

#: s a revoked partition's sends in flight may take to finish (envwatch's choice [MEM]); never
#: more than a third of the session timeout, well inside Faust's rebalance budget (95 % of it)
GRACE: Final = 5.0
#: s a rebalance waits for the ledger of a newly owned partition before it lets Faust go on (the
#: partition's records wait for it anyway); envwatch's choice [MEM]
LOAD_WAIT: Final = 5.0
#: how long a new row is held back while its ledger record is written (never reached: the
#: record is awaited, then the row is released)
_WRITING: Final = timedelta(hours=1)


def replay_record(receiver: str | None) -> bytes:
    """The control record ``envwatch notify replay`` puts on ``notifications``."""
    return orjson.dumps({"control": "replay", "receiver": receiver})


def _control(value: bytes) -> dict[str, Any] | None:
    if b'"control"' not in value[:40]:
        return None
    try:
        d = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return d if isinstance(d, dict) and "control" in d else None


async def read_partition(
    bootstrap: str,
    topic: str,
    partition: int,
    *,
    limit: float = 60.0,
    security: KafkaSecuritySettings | None = None,
) -> list[tuple[bytes, bytes]]:
    """Every (key, value) of one partition, from its beginning to its end.

    The end is where the position reaches the fetch's high watermark and two more polls bring
    nothing: Tansu's ListOffsets(latest) may lag the true end (tests/integration/
    worker_support.py ``read_all``)."""
    tp = TopicPartition(topic, partition)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
        **kafkasecurity.client_kwargs(security),
    )
    await consumer.start()
    out: list[tuple[bytes, bytes]] = []
    try:
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        await consumer.seek_to_beginning(tp)
        position, quiet = 0, 0
        deadline = time.monotonic() + limit
        while quiet < 2:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}[{partition}] not read to its end in {limit:g} s")
            batch = await consumer.getmany(tp, timeout_ms=200, max_records=5000)
            msgs = batch.get(tp, [])
            for m in msgs:
                if m.value is not None:
                    out.append((m.key or b"", m.value))
                position = m.offset + 1
            high = max(end, consumer.highwater(tp) or 0)
            quiet = 0 if msgs or position < high else quiet + 1
    finally:
        await consumer.stop()
    return out


class Deliveries:
    """This worker's share of notification delivery (the module docstring)."""

    def __init__(self, p: Pipeline, settings: AlertsSettings, *, grace: float = GRACE) -> None:
        self.p = p
        self.grace = min(grace, p.settings.session_timeout / 3)
        prefix = p.settings.topic_prefix
        self.topic = topics.name(topics.NOTIFICATIONS, prefix)
        self.ledger_topic = topics.name(topics.NOTIFY_LEDGER, prefix)
        self.bootstrap = topics.bootstrap_of(p.settings.kafka)
        self.outbox = MemoryOutbox(settings.retry.policy())
        # the catalogue's routes (secrets by reference, file references relative to its
        # directory) with the env overrides; rebuilt at every catalogue reload (refresh_channels)
        directory = p.catalog.directory
        base = (
            None if directory is None else (directory if directory.is_dir() else directory.parent)
        )
        self.routes = RouteChannels(settings, base=base)
        built = self.routes.build(p.catalog.catalog)
        self._reloads = p.catalog.reloads
        self.dispatcher: Dispatcher = Dispatcher(
            self.outbox,
            built.channels,
            problems=built.problems,
            refresh=self.refresh_channels,
            after=self._after,
            concurrency=settings.concurrency,
            per_receiver=settings.per_receiver,
            lease=timedelta(seconds=settings.lease_seconds),
            send_timeout=settings.send_timeout_seconds,
        )
        #: receiver → fingerprint of its configuration (URL and secret; nothing revealing)
        self.fingerprints = self._fingerprints()
        self._loading: dict[int, asyncio.Task[None]] = {}
        self._reporters: dict[str, HealthReporter] = {}
        #: receivers this worker told the operator about (their alert is open)
        self._troubled: set[str] = set()
        self.stats = {"ignored": 0, "taken_over": 0, "replayed": 0, "reconfigured": 0}
        self.channel_reloads = 0

    def _fingerprints(self) -> dict[str, str]:
        return {
            name: str(getattr(ch, "fingerprint", ""))
            for name, ch in self.dispatcher.channels.items()
        }

    # -- the catalogue's routes, hot-reloaded

    async def refresh_channels(self) -> None:
        """After a catalogue reload (``CatalogView.reloads`` moved on): rebuild the channels from
        its routes and the overrides, swap them into the dispatcher, and send again the held
        notifications of every receiver whose configuration changed (a route added, a URL or
        a secret reference changed). Called by the dispatcher before each round."""
        view = self.p.catalog
        if view.reloads == self._reloads:
            return
        self._reloads = view.reloads
        built = self.routes.build(view.catalog)
        self.dispatcher.replace_channels(built.channels, built.problems)
        before = self.fingerprints
        self.fingerprints = self._fingerprints()
        changed = sorted(
            r
            for r in set(before) | set(self.fingerprints)
            if before.get(r) != self.fingerprints.get(r)
        )
        keys = self.outbox.requeue_held(datetime.now(UTC), unless_fingerprint=self.fingerprints)
        for key in keys:
            await self._write(key)
        self.stats["reconfigured"] += len(keys)
        self.channel_reloads += 1
        log.info(
            "notify: channels rebuilt after catalogue reload %d: %d receivers with a channel, "
            "%d without (held), %d changed (%s); %d held notifications sent again",
            view.reloads,
            len(built.channels),
            len(built.problems),
            len(changed),
            ", ".join(changed) or "none",
            len(keys),
        )
        self.dispatcher.wake()

    # -- ownership (Faust's rebalance signals)

    async def assigned(self, partitions: Iterable[int]) -> None:
        """Start reading the ledger of every newly owned partition and wait for it up to
        ``LOAD_WAIT`` s (a rebalance must not outlast the session timeout); a record of a
        partition is never taken before its ledger is read (:meth:`accept` waits)."""
        tasks = [self._start_loading(n) for n in set(partitions)]
        if tasks:
            await asyncio.wait(tasks, timeout=min(LOAD_WAIT, self.grace))

    async def revoked(self, partitions: Iterable[int]) -> None:
        gone = set(partitions) & set(self._loading)
        if not gone:
            return
        self.outbox.suspend(gone)
        for n in gone:
            loading = self._loading.pop(n, None)
            if loading is not None and not loading.done():
                loading.cancel()
        cancelled = await self.dispatcher.settle(self.outbox.keys_in(gone), self.grace)
        dropped = self.outbox.drop(gone)
        log.info(
            "notify: handed over partition(s) %s of %s: %d rows (%d sends cut off after %g s)",
            sorted(gone),
            self.topic,
            dropped,
            cancelled,
            self.grace,
        )

    def _start_loading(self, partition: int) -> asyncio.Task[None]:
        task = self._loading.get(partition)
        if task is None or (task.done() and not task.cancelled() and task.exception() is not None):
            task = asyncio.ensure_future(self._load(partition))
            self._loading[partition] = task
        return task

    async def _read(self, partition: int) -> list[tuple[bytes, bytes]]:
        """The partition of the ledger; retried every 2 s while Kafka does not answer (one
        line when it starts failing, one when it works again)."""
        failing = False
        while True:
            try:
                records = await read_partition(
                    self.bootstrap, self.ledger_topic, partition, security=self.p.settings
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Kafka away: try again, the partition waits meanwhile
                if not failing:
                    log.warning(
                        "notify: cannot read %s[%d] (%s); retrying every 2 s",
                        self.ledger_topic,
                        partition,
                        type(exc).__name__,
                    )
                failing = True
                await asyncio.sleep(2.0)
                continue
            if failing:
                log.info("notify: %s[%d] read again", self.ledger_topic, partition)
            return records

    async def _load(self, partition: int) -> None:
        started = time.monotonic()
        records = await self._read(partition)
        bad = 0
        for _key, value in records:
            try:
                self.outbox.load(value, partition)
            except OutboxError as exc:
                bad += 1
                log.error("notify: ledger %s[%d]: %s", self.ledger_topic, partition, exc.reason)
        now = datetime.now(UTC)
        # the receiver's URL or secret changed since it refused: try again (issue 13)
        changed = self.outbox.requeue_held(
            now, partitions=[partition], unless_fingerprint=self.fingerprints
        )
        for key in changed:
            await self._write(key)
        self.stats["reconfigured"] += len(changed)
        counts = dict.fromkeys(RowState, 0)
        for key in self.outbox.keys_in([partition]):
            state = self.outbox.state(*key)
            if state is not None:
                counts[state] += 1
        self.stats["taken_over"] += counts[RowState.PENDING]
        log.info(
            "notify: partition %d of %s taken over in %.2f s: %d pending, %d held, %d dead, "
            "%d sent; %d re-sent after a configuration change%s",
            partition,
            self.topic,
            time.monotonic() - started,
            counts[RowState.PENDING],
            counts[RowState.HELD],
            counts[RowState.DEAD],
            counts[RowState.SENT],
            len(changed),
            f"; {bad} unreadable ledger records" if bad else "",
        )
        for receiver in sorted(
            {r for _i, r in self.outbox.keys_in([partition])} & set(self._receivers_held())
        ):
            await self._report(receiver)
        self.dispatcher.wake()

    # -- the deliver agent

    async def accept(self, partition: int, value: bytes) -> None:
        """One record of ``notifications``: a notification (kept once per key) or a control."""
        loading = self._start_loading(partition)
        try:
            await asyncio.shield(loading)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if loading.cancelled() and (current is None or not current.cancelling()):
                return  # the partition was handed over while its ledger was being read
            raise
        control = _control(value)
        if control is not None:
            await self._control(partition, control)
            return
        try:
            n = Notification.from_json(value)
        except ValidationError as exc:
            log.error(
                "notify: %s[%d]: not a notification (%d errors)",
                self.topic,
                partition,
                exc.error_count(),
            )
            return
        key = (n.id, n.receiver)
        now = datetime.now(UTC)
        if not self.outbox.enqueue(n, now, partition):
            self.stats["ignored"] += 1  # already pending, sent or held: a second copy
            return
        value_now = self.outbox.ledger_value(*key)
        self.outbox.lease([key], now + _WRITING)  # not sent before its ledger record is written
        await self._send_ledger(key, value_now, partition)
        self.outbox.lease([key], now)
        self.dispatcher.wake()

    async def _control(self, partition: int, control: dict[str, Any]) -> None:
        if control.get("control") != "replay":
            log.error("notify: unknown control record %r", control.get("control"))
            return
        receiver = control.get("receiver")
        keys = self.outbox.requeue_held(
            datetime.now(UTC),
            receiver=receiver if isinstance(receiver, str) else None,
            partitions=[partition],
        )
        for key in keys:
            await self._write(key)
        self.stats["replayed"] += len(keys)
        log.info(
            "notify: replay of %s on partition %d: %d held notifications sent again",
            receiver or "every receiver",
            partition,
            len(keys),
        )
        self.dispatcher.wake()

    # -- the ledger

    async def _write(self, key: tuple[str, str]) -> None:
        partition = self.outbox.partition_of(*key)
        if partition is None:  # handed over meanwhile: the next owner has the ledger
            return
        await self._send_ledger(key, self.outbox.ledger_value(*key), partition)

    async def _send_ledger(self, key: tuple[str, str], value: bytes, partition: int) -> None:
        await self.p.app.producer.send_and_wait(
            self.ledger_topic, ledger_key(*key), value, partition, None, None
        )

    async def _after(self, item: OutboxItem) -> None:
        """A row changed (sent, failed, held): its ledger record first, then the operator."""
        key = (item.id, item.receiver)
        await self._write(key)
        receiver = item.receiver
        if item.state is RowState.HELD or (
            receiver in self._troubled and item.state is RowState.SENT
        ):
            await self._report(receiver)

    # -- the operator alert (alerts/pipeline.py: component receiver:<name>, condition delivery)

    def _receivers_held(self) -> set[str]:
        return {i.receiver for i in self.outbox.dead_letters()}

    async def _report(self, receiver: str) -> None:
        held = self.outbox.held(receiver)
        problem = bool(held)
        if not problem and receiver not in self._troubled:
            return
        reporter = self._reporters.get(receiver)
        if reporter is None:
            from streams.health import HealthReporter

            reporter = self._reporters[receiver] = HealthReporter(self.p, f"receiver:{receiver}")
        reason = next((i.last_error or "" for i in reversed(held) if i.last_error), "")
        try:
            await reporter.update("delivery", problem=problem, reason=reason, count=len(held))
        except Exception:  # the alert is a courtesy: never let it stop a delivery
            log.exception("notify: cannot report the health of receiver %s", receiver)
            return
        if problem:
            self._troubled.add(receiver)
        else:
            self._troubled.discard(receiver)


def partition_keys(partitions: Iterable[Any], topic: str) -> set[int]:
    """The partition numbers of ``topic`` among Faust's TopicPartitions."""
    return {tp.partition for tp in partitions if tp.topic == topic}


# ---------------------------------------------------------------- operations (envwatch notify)


async def read_ledger(bootstrap: str, topic: str) -> dict[tuple[str, str], dict[str, Any]]:
    """The latest ledger record of every (notification id, receiver), all partitions."""
    parts = await partitions_of(bootstrap, topic)
    out: dict[tuple[str, str], dict[str, Any]] = {}
    chunks = await asyncio.gather(*(read_partition(bootstrap, topic, n) for n in sorted(parts)))
    for records in chunks:
        for _key, value in records:
            try:
                d = orjson.loads(value)
                out[(str(d["id"]), str(d["receiver"]))] = d
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue
    return out


async def partitions_of(bootstrap: str, topic: str) -> list[int]:
    """The partition numbers of ``topic`` (from the broker's metadata)."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **kafkasecurity.client_kwargs())
    await producer.start()
    try:
        return sorted(await producer.partitions_for(topic))
    finally:
        await producer.stop()


async def request_replay(bootstrap: str, topic: str, receiver: str | None) -> list[int]:
    """Put a replay control record on ``notifications``: keyed by the receiver (its partition,
    as its notifications), or on every partition for all receivers. Returns the partitions."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **kafkasecurity.client_kwargs())
    await producer.start()
    try:
        value = replay_record(receiver)
        if receiver is not None:
            meta = await producer.send_and_wait(topic, value, key=receiver.encode())
            return [meta.partition]
        parts = sorted(await producer.partitions_for(topic))
        for n in parts:
            await producer.send_and_wait(topic, value, partition=n)
        return parts
    finally:
        await producer.stop()
