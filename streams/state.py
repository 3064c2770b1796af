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

The step function's contract: ``step(state | None, key, value, offset, timestamp_ms) ->
(state | None, outputs)``; a ``None`` state deletes the key. A ``partition_step(states, key,
value, offset, timestamp_ms) -> outputs`` instead sees the whole partition's states and changes
them in place (the evaluate stage keeps its partition clock so). It must not raise (turn bad input into
a dead-letter output) and must not read the clock (use the record's timestamp).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

log = logging.getLogger(__name__)

O = TypeVar("O")  # noqa: E741 - an output of a step
#: step(state, key, value, offset, timestamp_ms) -> (new state or None to delete, outputs)
Step = Callable[[Any, bytes, bytes, int, int], tuple[Any, Sequence[O]]]
#: partition_step(states, key, value, offset, timestamp_ms, partition) -> outputs: the step sees
#: (and changes in place) the whole partition's states, for what spans keys (e.g. a partition
#: clock); the partition number names where a record came from (dead letters' origins)
PartitionStep = Callable[[dict[str, Any], bytes, bytes, int, int, int], Sequence[O]]


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
        self.partitions: dict[int, Partition] = {}
        self.replayed = 0
        self.skipped = 0

    # ------------------------------------------------------------------ processing
    async def process(self, records: Iterable[tuple[int, int, bytes, bytes, int]]) -> list[O]:
        """Run the step over ``(partition, offset, key, value, timestamp_ms)`` records in order."""
        outputs: list[O] = []
        for partition, offset, key, value, ts in records:
            part = self.partitions.get(partition)
            if part is None:
                part = await self.restore(partition, up_to=offset)
            if offset < part.next_offset:
                self.skipped += 1
                continue
            self._apply(part, key, value, offset, ts, outputs)
        return outputs

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
    async def restore(self, partition: int, *, up_to: int) -> Partition:
        """Load the last complete snapshot of ``partition`` and replay the input up to ``up_to``."""
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
        if part.next_offset < up_to:
            sink: list[O] = []
            async for offset, key, value, ts in self._read_input(
                partition, part.next_offset, up_to
            ):
                self._apply(part, key, value, offset, ts, sink)
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

    async def _read_snapshot(
        self, partition: int
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]] | None:
        tp = TopicPartition(self.state_topic, partition)
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign([tp])
            end = (await consumer.end_offsets([tp]))[tp]
            if end == 0:
                return None
            await consumer.seek_to_beginning(tp)
            marker: dict[str, Any] | None = None
            entries: dict[str, dict[str, Any]] = {}
            position = 0
            while position < end:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                for msg in batch.get(tp, []):
                    position = msg.offset + 1
                    key = msg.key.decode()
                    if key == f"{partition}/marker":
                        marker = orjson.loads(msg.value)
                    else:
                        entries[key] = orjson.loads(msg.value)
                if not batch:
                    position = await consumer.position(tp)
            return (marker, entries) if marker is not None else None
        finally:
            await consumer.stop()

    async def _read_input(self, partition: int, start: int, end: int) -> Any:
        tp = TopicPartition(self.input_topic, partition)
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign([tp])
            consumer.seek(tp, start)
            position = start
            while position < end:
                batch = await consumer.getmany(tp, timeout_ms=1000, max_records=5000)
                for msg in batch.get(tp, []):
                    if msg.offset >= end:
                        return
                    position = msg.offset + 1
                    yield msg.offset, msg.key or b"", msg.value, msg.timestamp
        finally:
            await consumer.stop()
