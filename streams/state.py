"""Per-partition rule state kept in memory, checkpointed to Kafka, restored by deterministic replay.

Why not a Faust table: Faust refuses table writes inside a ``stream.take()`` batch, and writing
one changelog record per event halves throughput (architecture.md §8). Batching and durable
state are reconciled here instead:

* State is a plain dict per key (source id, alert fingerprint …), held in memory per partition
  of the input topic, and changed only by a pure step function.
* Every ``interval`` seconds, at the end of a batch, a partition's state is **snapshotted** to a
  compacted state topic together with the input offset it corresponds to. Records are keyed
  ``<partition>/<generation parity>/<key>`` and a marker ``<partition>/marker`` is written last,
  so a crash in the middle of a snapshot leaves the previous complete generation readable.
* When a partition is (re)assigned, its state is **restored** lazily on the first event seen from
  it: the last complete snapshot is loaded, then the input records between the snapshot's offset
  and that event are **replayed** through the same pure step. Because steps are deterministic
  and every output has a deterministic id, the replay re-emits exactly what was emitted before the
  crash (same ids, same content), which downstream consumers overwrite or deduplicate.
* Events below a partition's ``next_offset`` (already in the state, redelivered because the
  consumer's commit lagged the snapshot) are skipped.
* A restore never settles for less than it needs: input records missing between the snapshot's
  offset and the event (retention deleted them), or an input log that no longer holds the last
  record the snapshot includes (the topic was recreated) raise :class:`InputGap`, and a log that delivers nothing for :data:`QUIET_DEADLINE` s raises
  :class:`LogQuiet` — instead of a state that silently lacks records, or a restore that waits
  forever. A gap cannot heal: :meth:`CheckpointedState.process` logs it at ERROR (topic,
  partition, offsets) and continues from the snapshot at the record at hand (``accept_gaps``).
  A quiet log may: the evaluate and locality agents log it at ERROR and process the batch
  again (:func:`streams.agents.evaluate.register_checkpointed`).
* The logs are read through a :data:`LogOpener` (Kafka by default, :func:`kafka_log`; the unit
  tests give an in-memory log).

The step function's contract: ``step(state | None, key, value, offset, timestamp_ms) ->
(state | None, outputs)``; a ``None`` state deletes the key. A ``partition_step(states, key,
value, offset, timestamp_ms) -> outputs`` instead sees the whole partition's states and changes
them in place (the evaluate stage keeps its partition clock so). It must not raise (turn bad input into
a dead-letter output) and must not read the clock (use the record's timestamp).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Generic, Protocol, TypeVar

import orjson

log = logging.getLogger(__name__)

O = TypeVar("O")  # noqa: E741 - an output of a step
#: step(state, key, value, offset, timestamp_ms) -> (new state or None to delete, outputs)
Step = Callable[[Any, bytes, bytes, int, int], tuple[Any, Sequence[O]]]
#: partition_step(states, key, value, offset, timestamp_ms, partition) -> outputs: the step sees
#: (and changes in place) the whole partition's states, for what spans keys (e.g. a partition
#: clock); the partition number names where a record came from (dead letters' origins)
PartitionStep = Callable[[dict[str, Any], bytes, bytes, int, int, int], Sequence[O]]

#: s a restore waits for a log that delivers nothing (no record, no progress of its position)
#: before it raises :class:`LogQuiet` (envwatch's choice [MEM]: a healthy broker answers a
#: fetch within its 1 s poll; three times the default session timeout, so a broker that is
#: restarting can come back, and a stuck restore is named within a minute). Each record read
#: starts the wait again: a long replay is not cut short.
QUIET_DEADLINE: Final = 30.0
#: ms one fetch of a restore waits for records
FETCH_TIMEOUT_MS: Final = 1000
#: records one fetch of a restore returns at most
FETCH_MAX_RECORDS: Final = 5000


class StateLogError(RuntimeError):
    """A restore could not read what it needs from the state or input log."""

    def __init__(self, message: str, *, topic: str, partition: int) -> None:
        super().__init__(message)
        self.topic = topic
        self.partition = partition


class InputGap(StateLogError):
    """Input records a restore must replay are not in the log (retention deleted them, or the
    topic was recreated and numbers its records anew): replaying what is there would build a
    state that silently lacks them. ``found``: the offset of the record the log gave instead
    of ``expected``; None when the log ends before ``expected`` (``log_end``)."""

    def __init__(self, *, topic: str, partition: int, start: int, end: int, expected: int,
                 found: int | None, log_end: int | None = None) -> None:  # fmt: skip
        if found is None:
            what = f"the log ends at offset {log_end} (topic recreated?)"
        elif found > expected:
            what = f"found {found}: records {expected}..{found - 1} are gone (retention?)"
        else:
            what = f"found {found}: the log numbers its records anew (topic recreated?)"
        super().__init__(
            f"input {topic}[{partition}]: the restore needs offsets {start}..{end - 1}, expected "
            f"offset {expected}, {what}",
            topic=topic,
            partition=partition,
        )
        self.start, self.end, self.expected = start, end, expected
        self.found, self.log_end = found, log_end


class LogQuiet(StateLogError):
    """The log delivered nothing for :data:`QUIET_DEADLINE` s before the restore had read to
    the end it needs (the broker does not answer, or the log ends before it)."""

    def __init__(self, *, topic: str, partition: int, position: int, end: int,
                 waited: float) -> None:  # fmt: skip
        super().__init__(
            f"{topic}[{partition}]: nothing read for {waited:.1f} s at offset {position}, "
            f"the restore needs the log up to offset {end} (broker unreachable, or the log "
            "ends before that)",
            topic=topic,
            partition=partition,
        )
        self.position, self.end = position, end


@dataclass(frozen=True, slots=True)
class LogRecord:
    offset: int
    key: bytes | None
    value: bytes
    timestamp: int  # ms


class PartitionLog(Protocol):
    """One partition of a log, read from a position (what a restore needs of Kafka)."""

    async def end_offset(self) -> int:
        """The offset after the last record."""
        ...

    async def seek(self, offset: int | None) -> None:
        """Read from ``offset`` next (None: from the log's beginning). An offset outside the log
        makes the next fetch start at the log's beginning (Kafka's ``earliest`` reset)."""
        ...

    async def fetch(self, timeout_ms: int, max_records: int) -> Sequence[LogRecord]:
        """The next records in offset order; empty if none came within ``timeout_ms``."""
        ...

    async def position(self) -> int:
        """The offset of the next record a fetch would return."""
        ...


#: open(topic, partition): an async context that gives the partition's log to read
LogOpener = Callable[[str, int], contextlib.AbstractAsyncContextManager[PartitionLog]]


class _KafkaPartition:
    def __init__(self, consumer: Any, tp: Any) -> None:
        self.consumer, self.tp = consumer, tp

    async def end_offset(self) -> int:
        return int((await self.consumer.end_offsets([self.tp]))[self.tp])

    async def seek(self, offset: int | None) -> None:
        if offset is None:
            await self.consumer.seek_to_beginning(self.tp)
        else:
            self.consumer.seek(self.tp, offset)

    async def fetch(self, timeout_ms: int, max_records: int) -> Sequence[LogRecord]:
        batch = await self.consumer.getmany(self.tp, timeout_ms=timeout_ms, max_records=max_records)
        return [LogRecord(m.offset, m.key, m.value, m.timestamp) for m in batch.get(self.tp, [])]

    async def position(self) -> int:
        return int(await self.consumer.position(self.tp))


def kafka_log(bootstrap: str) -> LogOpener:
    """Read partitions of Kafka at ``bootstrap`` with a consumer of their own (no group). An
    offset outside the log resets to its beginning (``earliest``): the restore then sees where
    the log really starts and raises :class:`InputGap`, where ``latest`` would skip silently."""

    @contextlib.asynccontextmanager
    async def open_log(topic: str, partition: int) -> AsyncIterator[PartitionLog]:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        from streams import kafkasecurity

        tp = TopicPartition(topic, partition)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **kafkasecurity.client_kwargs(),
        )
        await consumer.start()
        try:
            consumer.assign([tp])
            yield _KafkaPartition(consumer, tp)
        finally:
            await consumer.stop()

    return open_log


@dataclass
class Partition:
    number: int
    next_offset: int = 0
    generation: int = 0
    states: dict[str, Any] = field(default_factory=dict)
    dirty: bool = False
    last_snapshot: float = field(default_factory=time.monotonic)


class CheckpointedState(Generic[O]):
    """In-memory state per partition of ``input_topic``, snapshotted to ``state_topic``."""

    def __init__(
        self,
        *,
        bootstrap: str,
        input_topic: str,
        state_topic: str,
        step: Step[O] | None = None,
        partition_step: PartitionStep[O] | None = None,
        interval: float = 10.0,
        dump: Callable[[Any], dict[str, Any]] | None = None,
        load: Callable[[dict[str, Any]], Any] | None = None,
        log_opener: LogOpener | None = None,
        quiet_deadline: float = QUIET_DEADLINE,
        accept_gaps: bool = True,
    ) -> None:
        self.bootstrap = bootstrap
        self.input_topic = input_topic
        self.state_topic = state_topic
        if (step is None) == (partition_step is None):
            raise ValueError("give exactly one of step and partition_step")
        self.step = step
        self.partition_step = partition_step
        self.interval = interval
        #: live state objects ↔ plain dicts (default: the state *is* a plain dict)
        self.dump = dump or (lambda st: st)
        self.load = load or (lambda d: d)
        #: how the state and input logs are read (default: Kafka at ``bootstrap``)
        self.open_log = log_opener or kafka_log(bootstrap)
        self.quiet_deadline = quiet_deadline
        #: on an :class:`InputGap`, log an ERROR naming it and continue from the snapshot at
        #: the record at hand (True), or let :meth:`process` raise it (False)
        self.accept_gaps = accept_gaps
        self.partitions: dict[int, Partition] = {}
        self.replayed = 0
        self.skipped = 0
        self.gaps = 0  # restores that continued past missing input (an InputGap accepted)

    # ------------------------------------------------------------------ processing
    async def process(self, records: Iterable[tuple[int, int, bytes, bytes, int]]) -> list[O]:
        """Run the step over ``(partition, offset, key, value, timestamp_ms)`` records in order.

        Partitions not in memory are restored first, before any record is applied: if a
        restore raises (:class:`LogQuiet`, or :class:`InputGap` without ``accept_gaps``) no
        state has changed and the same records can be processed again."""
        records = list(records)
        first: dict[int, int] = {}
        for partition, offset, *_ in records:
            first.setdefault(partition, offset)
        for partition, offset in first.items():
            if partition not in self.partitions:
                await self._restore(partition, offset)
        outputs: list[O] = []
        for partition, offset, key, value, ts in records:
            part = self.partitions.get(partition)
            if part is None:  # revoked while another partition was restored
                part = await self._restore(partition, offset)
            if offset < part.next_offset:
                self.skipped += 1
                continue
            self._apply(part, key, value, offset, ts, outputs)
        return outputs

    async def _restore(self, partition: int, up_to: int) -> Partition:
        try:
            return await self.restore(partition, up_to=up_to)
        except InputGap as gap:
            if not self.accept_gaps:
                raise
            log.error(
                "state %s[%d]: %s; continuing from the last snapshot at the record at offset "
                "%d: what the missing records changed in the state is lost",
                self.input_topic,
                partition,
                gap,
                up_to,
            )
            return await self.restore(partition, up_to=up_to, accept_gap=True)

    def _apply(
        self, part: Partition, key: bytes, value: bytes, offset: int, ts: int, outputs: list[O]
    ) -> None:
        if self.partition_step is not None:
            out: Sequence[O] = self.partition_step(part.states, key, value, offset, ts, part.number)
        else:
            assert self.step is not None
            k = key.decode("utf-8", "replace") if key else ""
            new, out = self.step(part.states.get(k), key, value, offset, ts)
            if new is None:
                part.states.pop(k, None)
            else:
                part.states[k] = new
        part.next_offset = offset + 1
        part.dirty = True
        outputs.extend(out)

    def revoke(self, partitions: Iterable[int]) -> None:
        """Forget partitions this worker no longer owns (another worker restores them)."""
        for p in partitions:
            self.partitions.pop(p, None)

    # ------------------------------------------------------------------ snapshots
    def due_snapshots(self, *, force: bool = False) -> list[tuple[bytes, bytes, int]]:
        """Records ``(key, value, partition)`` of every partition whose snapshot is due: every
        ``interval`` s, and at once for a partition that has none yet — until its first snapshot
        a new owner (after a kill or a rebalance) has nothing to replay from, and what this
        worker read and committed meanwhile (e.g. a notification group still waiting) would
        be rebuilt silently or not at all."""
        now = time.monotonic()
        records: list[tuple[bytes, bytes, int]] = []
        for part in self.partitions.values():
            if not part.dirty or (
                not force and part.generation > 0 and now - part.last_snapshot < self.interval
            ):
                continue
            part.generation += 1
            parity = part.generation % 2
            for k, st in part.states.items():
                records.append(
                    (
                        f"{part.number}/{parity}/{k}".encode(),
                        orjson.dumps(self.dump(st)),
                        part.number,
                    )
                )
            marker = {
                "generation": part.generation,
                "next_offset": part.next_offset,
                "keys": sorted(part.states),
            }
            records.append((f"{part.number}/marker".encode(), orjson.dumps(marker), part.number))
            part.dirty = False
            part.last_snapshot = now
        return records

    # ------------------------------------------------------------------ restore
    async def restore(self, partition: int, *, up_to: int, accept_gap: bool = False) -> Partition:
        """Load the last complete snapshot of ``partition`` and replay the input up to ``up_to``.

        Raises :class:`InputGap` when input records between the snapshot and ``up_to`` are not
        in the log, :class:`LogQuiet` when a log delivers nothing for ``quiet_deadline`` s.
        ``accept_gap``: after an :class:`InputGap` was reported, take the snapshot's states and
        continue at ``up_to`` without replaying (what the missing records did is lost)."""
        started = time.monotonic()
        part = Partition(partition)
        snapshot = await self._read_snapshot(partition)
        if snapshot is not None:
            marker, entries = snapshot
            parity = marker["generation"] % 2
            part.generation = marker["generation"]
            part.next_offset = marker["next_offset"]
            for k in marker["keys"]:
                st = entries.get(f"{partition}/{parity}/{k}")
                if st is not None:
                    part.states[k] = self.load(st)
        replayed = 0
        if accept_gap:
            part.next_offset = up_to
            self.gaps += 1
        elif part.next_offset > up_to and part.next_offset > 0:
            # the event is below the snapshot: legitimate when the consumer's commit lagged the
            # snapshot (the records up to it are skipped), but a recreated topic numbers its
            # records anew and would have them all skipped: the last offset the snapshot
            # includes must still be in the log
            reader = self._read_input(partition, part.next_offset - 1, part.next_offset)
            async with contextlib.aclosing(reader):
                async for _ in reader:
                    pass
        elif part.next_offset < up_to:
            sink: list[O] = []
            reader = self._read_input(partition, part.next_offset, up_to)
            async with contextlib.aclosing(reader):
                async for rec in reader:
                    self._apply(part, rec.key or b"", rec.value, rec.offset, rec.timestamp, sink)
                    replayed += 1
        self.replayed += replayed
        self.partitions[partition] = part
        log.info(
            "state %s[%d]: restored %d keys at offset %d, replayed %d records in %.2fs",
            self.input_topic,
            partition,
            len(part.states),
            part.next_offset,
            replayed,
            time.monotonic() - started,
        )
        return part

    async def _fetch(
        self, log_: PartitionLog, topic: str, partition: int, position: int, end: int,
        since: float,
    ) -> Sequence[LogRecord]:  # fmt: skip
        """One fetch, raising :class:`LogQuiet` once nothing came for ``quiet_deadline`` s
        since ``since`` (the last progress)."""
        left = self.quiet_deadline - (time.monotonic() - since)
        if left > 0:
            timeout_ms = max(1, min(FETCH_TIMEOUT_MS, int(left * 1000)))
            with contextlib.suppress(TimeoutError):
                # a fetch the client itself keeps waiting on (metadata, reconnects) is bounded too
                return await asyncio.wait_for(
                    log_.fetch(timeout_ms, FETCH_MAX_RECORDS), max(left, timeout_ms / 1000)
                )
            return []
        raise LogQuiet(
            topic=topic,
            partition=partition,
            position=position,
            end=end,
            waited=time.monotonic() - since,
        )

    @staticmethod
    async def _end_if_answered(log_: PartitionLog) -> int | None:
        """The log's end offset, or None when it is not known within 5 s."""
        try:
            return await asyncio.wait_for(log_.end_offset(), 5.0)
        except Exception:
            return None

    async def _read_snapshot(
        self, partition: int
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]] | None:
        """The last complete generation's marker and every snapshot entry of ``partition``
        (a compacted topic: offsets may skip, the last record may be compacted away)."""
        topic = self.state_topic
        async with self.open_log(topic, partition) as log_:
            end = await log_.end_offset()
            if end == 0:
                return None
            await log_.seek(None)
            marker: dict[str, Any] | None = None
            entries: dict[str, dict[str, Any]] = {}
            position = 0
            since = time.monotonic()
            while position < end:
                batch = await self._fetch(log_, topic, partition, position, end, since)
                for msg in batch:
                    position = msg.offset + 1
                    key = (msg.key or b"").decode()
                    if key == f"{partition}/marker":
                        marker = orjson.loads(msg.value)
                    else:
                        entries[key] = orjson.loads(msg.value)
                if not batch:
                    now_at = await log_.position()  # past a compacted tail: at the end
                    if now_at == position:
                        continue
                    position = now_at
                since = time.monotonic()
            return (marker, entries) if marker is not None else None

    async def _read_input(
        self, partition: int, start: int, end: int
    ) -> AsyncGenerator[LogRecord, None]:
        """The input records at offsets ``start`` … ``end - 1``, every one of them: the input
        topics are neither compacted nor transactional, so their offsets have no holes, and a
        record that is not the one expected raises :class:`InputGap`."""
        topic = self.input_topic
        async with self.open_log(topic, partition) as log_:
            await log_.seek(start)
            expected = start
            since = time.monotonic()
            while expected < end:
                try:
                    batch = await self._fetch(log_, topic, partition, expected, end, since)
                except LogQuiet:
                    # nothing for the whole deadline: a log that answers but ends before the
                    # offset wanted was recreated (or emptied); otherwise the broker is quiet
                    log_end = await self._end_if_answered(log_)
                    if log_end is not None and log_end <= expected:
                        raise InputGap(
                            topic=topic,
                            partition=partition,
                            start=start,
                            end=end,
                            expected=expected,
                            found=None,
                            log_end=log_end,
                        ) from None
                    raise
                for msg in batch:
                    if msg.offset != expected:
                        raise InputGap(
                            topic=topic,
                            partition=partition,
                            start=start,
                            end=end,
                            expected=expected,
                            found=msg.offset,
                        )
                    yield msg
                    expected += 1
                    if expected >= end:
                        return
                if batch:
                    since = time.monotonic()
