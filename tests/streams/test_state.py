"""streams.state: snapshots, restore by replay, and what a restore refuses, on an in-memory log.

Only Kafka I/O is replaced: :class:`MemoryLog` gives ``CheckpointedState`` the partitions it
reads (``log_opener``), with Kafka's semantics where the restore relies on them — offsets kept
through compaction, an ``earliest`` reset for an offset outside the log, a compacted tail the
position skips. Snapshots are written to it exactly as the agents send them (``due_snapshots``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson
import pytest

from streams.state import (
    CheckpointedState,
    InputGap,
    LogQuiet,
    LogRecord,
    PartitionLog,
)

IN, STATE = "readings", "evaluate-state"
Record = tuple[int, int, bytes, bytes, int]  # partition, offset, key, value, timestamp_ms


class MemoryLog:
    """Kafka topics in memory: per (topic, partition) records in offset order, holes allowed."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, int], list[LogRecord]] = {}
        self.start: dict[tuple[str, int], int] = {}  # log start offset (retention moves it)
        self.end: dict[tuple[str, int], int] = {}  # the next offset
        self.quiet: set[tuple[str, int]] = set()  # fetches return nothing (a silent broker)
        self.fetch_delay = 0.0  # s each fetch takes
        self.max_records: int | None = None  # records one fetch returns at most
        self.opened = 0

    def append(self, topic: str, partition: int, key: bytes, value: bytes, ts: int = 0) -> int:
        tp = (topic, partition)
        offset = self.end.get(tp, 0)
        self.records.setdefault(tp, []).append(LogRecord(offset, key, value, ts))
        self.end[tp] = offset + 1
        return offset

    def send_snapshot(self, records: Sequence[tuple[bytes, bytes, int]]) -> None:
        for key, value, partition in records:
            self.append(STATE, partition, key, value)

    def compact(self, topic: str, partition: int) -> None:
        """Keep the last record of each key (offsets unchanged): a compacted topic."""
        recs = self.records.get((topic, partition), [])
        last = {r.key: r.offset for r in recs}
        self.records[(topic, partition)] = [r for r in recs if last[r.key] == r.offset]

    def delete_before(self, topic: str, partition: int, offset: int) -> None:
        """Retention: records below ``offset`` are gone."""
        tp = (topic, partition)
        self.records[tp] = [r for r in self.records.get(tp, []) if r.offset >= offset]
        self.start[tp] = offset

    def recreate(self, topic: str, partition: int) -> None:
        """The topic deleted and created again: empty, numbered from 0."""
        tp = (topic, partition)
        self.records[tp], self.start[tp], self.end[tp] = [], 0, 0

    @contextlib.asynccontextmanager
    async def open(self, topic: str, partition: int) -> AsyncIterator[PartitionLog]:
        self.opened += 1
        yield _Reader(self, (topic, partition))


class _Reader:
    def __init__(self, log: MemoryLog, tp: tuple[str, int]) -> None:
        self.log, self.tp = log, tp
        self.pos = log.start.get(tp, 0)

    async def end_offset(self) -> int:
        return self.log.end.get(self.tp, 0)

    async def seek(self, offset: int | None) -> None:
        self.pos = self.log.start.get(self.tp, 0) if offset is None else offset

    async def fetch(self, timeout_ms: int, max_records: int) -> Sequence[LogRecord]:
        if self.tp in self.log.quiet:
            await asyncio.sleep(timeout_ms / 1000)
            return []
        await asyncio.sleep(self.log.fetch_delay)
        start, end = self.log.start.get(self.tp, 0), self.log.end.get(self.tp, 0)
        if not start <= self.pos <= end:
            self.pos = start  # auto_offset_reset="earliest"
        limit = min(max_records, self.log.max_records or max_records)
        out = [r for r in self.log.records.get(self.tp, []) if r.offset >= self.pos][:limit]
        if out:
            self.pos = out[-1].offset + 1
        else:
            self.pos = end  # nothing left below the end: a compacted tail is skipped
            await asyncio.sleep(0)
        return out

    async def position(self) -> int:
        return self.pos


# -- a deterministic keyed step: sums per key, deletes a key on request; outputs carry the offset


def summing(state: Any, key: bytes, value: bytes, offset: int, ts: int) -> tuple[Any, list[str]]:
    v = orjson.loads(value)
    if v == "delete":
        return None, [f"{key.decode()}@{offset}:deleted"]
    st = dict(state or {"sum": 0, "n": 0})
    st["sum"] += v
    st["n"] += 1
    st["ts"] = ts
    return st, [f"{key.decode()}@{offset}:{st['sum']}/{st['n']}"]


def new_state(
    log: MemoryLog, *, accept_gaps: bool = True, quiet_deadline: float = 5.0
) -> CheckpointedState[str]:
    return CheckpointedState(
        bootstrap="127.0.0.1:1",  # never contacted: the in-memory log is read
        input_topic=IN,
        state_topic=STATE,
        step=summing,
        interval=3600.0,
        log_opener=log.open,
        quiet_deadline=quiet_deadline,
        accept_gaps=accept_gaps,
    )


def publish(log: MemoryLog, rng: random.Random, n: int, partitions: int = 2) -> list[Record]:
    """``n`` random input records over a few keys, appended to the input log."""
    out: list[Record] = []
    for i in range(n):
        p = rng.randrange(partitions)
        key = f"p{p}s{rng.randrange(4)}".encode()  # outputs name their partition
        value = b'"delete"' if rng.random() < 0.1 else orjson.dumps(rng.randint(-5, 20))
        ts = 1_700_000_000_000 + i * 1000
        out.append((p, log.append(IN, p, key, value, ts), key, value, ts))
    return out


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def states_of(st: CheckpointedState[str]) -> dict[int, tuple[int, dict[str, Any]]]:
    return {n: (p.next_offset, p.states) for n, p in sorted(st.partitions.items())}


# -- snapshot parity: a restore from snapshot + replay equals the uninterrupted run


@pytest.mark.parametrize("seed", range(40))
def test_a_restored_state_equals_the_uninterrupted_one(seed: int) -> None:
    rng = random.Random(seed)
    log = MemoryLog()
    records = publish(log, rng, rng.randint(5, 120))

    # the uninterrupted run, in random batches, snapshotting at random; some snapshots torn
    # (the worker died before the marker), the state topic compacted now and then
    live = new_state(log)
    outputs: list[str] = []
    crash_at = rng.randint(1, len(records) - 1)  # the worker dies before this record
    at_crash: dict[int, tuple[int, dict[str, Any]]] = {}
    i = 0
    while i < len(records):
        n = rng.randint(1, 10)
        if i < crash_at < i + n:
            n = crash_at - i  # a batch boundary at the crash
        outputs += run(live.process(records[i : i + n]))
        i += n
        if i <= crash_at and rng.random() < 0.4:
            snap = live.due_snapshots(force=True)
            torn = rng.random() < 0.3
            log.send_snapshot(snap[: rng.randrange(len(snap))] if torn else snap)
        if rng.random() < 0.2:
            log.compact(STATE, rng.randrange(2))
        if i == crash_at:
            at_crash = {n: (p.next_offset, dict(p.states)) for n, p in live.partitions.items()}

    # the new owner starts at a committed offset anywhere before the crash (commits lag), per
    # partition, and sees the rest of the input
    restored = new_state(log)
    committed = {p: rng.randint(0, at_crash.get(p, (0, {}))[0]) for p in (0, 1)}
    rest = [r for r in records if r[1] >= committed[r[0]]]
    got: list[str] = []
    j = 0
    while j < len(rest):
        n = rng.randint(1, 10)
        got += run(restored.process(rest[j : j + n]))
        j += n

    assert states_of(restored) == states_of(live)

    # every output of a record after the crash is emitted, as the uninterrupted run did; the
    # restore emits nothing else, and nothing twice
    def partition_offset(output: str) -> tuple[int, int]:
        key, rest = output.split("@")
        return int(key[1 : key.index("s")]), int(rest.split(":")[0])

    after = {
        o
        for o in outputs
        if partition_offset(o)[1] >= at_crash.get(partition_offset(o)[0], (0,))[0]
    }
    assert after <= set(got), f"lost by the restore: {sorted(after - set(got))}"
    assert set(got) <= set(outputs), "the restore emitted what the live run never did"
    assert len(got) == len(set(got)), "an output emitted twice after the restore"


def test_a_snapshot_torn_before_its_marker_leaves_the_previous_generation() -> None:
    log = MemoryLog()
    for v in (1, 2, 3):
        log.append(IN, 0, b"a", orjson.dumps(v))
    live = new_state(log)
    run(live.process([(0, r.offset, b"a", r.value, 0) for r in log.records[(IN, 0)]]))
    log.send_snapshot(live.due_snapshots(force=True))  # generation 1: a = 6 after offset 2
    log.append(IN, 0, b"a", orjson.dumps(100))
    run(live.process([(0, 3, b"a", b"100", 0)]))
    torn = live.due_snapshots(force=True)  # generation 2: a = 106 …
    assert torn[-1][0] == b"0/marker"
    log.send_snapshot(torn[:-1])  # … but the worker died before the marker
    log.append(IN, 0, b"a", orjson.dumps(1000))

    restored = new_state(log)
    out = run(restored.process([(0, 4, b"a", b"1000", 0)]))
    # generation 1's entries (parity 1) were not overwritten by generation 2's (parity 0):
    # restored at offset 3 with a = 6, offset 3 replayed, then the new record
    assert restored.partitions[0].generation == 1
    assert restored.replayed == 1
    assert restored.partitions[0].states == {"a": {"sum": 1106, "n": 5, "ts": 0}}
    assert out == ["a@4:1106/5"]


def test_a_restore_skips_what_the_snapshot_holds_when_the_commit_lagged() -> None:
    log = MemoryLog()
    recs = [(0, log.append(IN, 0, b"a", b"1"), b"a", b"1", 0) for _ in range(5)]
    live = new_state(log)
    run(live.process(recs))
    log.send_snapshot(live.due_snapshots(force=True))  # at offset 5
    restored = new_state(log)
    assert run(restored.process(recs[2:])) == []  # offsets 2..4 are in the snapshot already
    assert restored.skipped == 3
    assert restored.partitions[0].states == live.partitions[0].states


# -- truncated input raises instead of silently resetting


def _snapshot_at(log: MemoryLog, n: int) -> list[Record]:
    """``n`` records of key a (value 1 each) in partition 0, snapshotted after the first 3."""
    recs = [(0, log.append(IN, 0, b"a", b"1"), b"a", b"1", 0) for _ in range(n)]
    live = new_state(log)
    run(live.process(recs[:3]))
    log.send_snapshot(live.due_snapshots(force=True))
    return recs


def test_input_deleted_by_retention_raises_naming_topic_partition_and_offsets() -> None:
    log = MemoryLog()
    recs = _snapshot_at(log, 12)
    log.delete_before(IN, 0, 8)  # offsets 3..7, after the snapshot, are gone
    st = new_state(log, accept_gaps=False)
    with pytest.raises(InputGap) as info:
        run(st.process(recs[10:]))
    gap = info.value
    assert (gap.topic, gap.partition, gap.start, gap.end, gap.expected, gap.found) == (
        IN, 0, 3, 10, 3, 8,
    )  # fmt: skip
    assert "readings[0]" in str(gap)
    assert "3..9" in str(gap)
    assert "found 8" in str(gap)
    assert "records 3..7 are gone" in str(gap)
    assert st.partitions == {}, "a failed restore must leave no state behind"


def test_a_gap_inside_the_replay_raises_too() -> None:
    log = MemoryLog()
    recs = _snapshot_at(log, 12)
    log.records[(IN, 0)] = [r for r in log.records[(IN, 0)] if r.offset != 6]  # a hole
    with pytest.raises(InputGap, match=r"expected offset 6, found 7"):
        run(new_state(log, accept_gaps=False).process(recs[10:]))


def test_a_recreated_input_topic_raises_instead_of_skipping_its_records() -> None:
    # the new log is shorter than the snapshot's offset: a fetch there resets to its beginning
    log = MemoryLog()
    _snapshot_at(log, 3)  # the snapshot says: offsets 0..2 are in the state
    log.recreate(IN, 0)
    new = [(0, log.append(IN, 0, b"a", b"5"), b"a", b"5", 0)]  # offset 0
    st = new_state(log, accept_gaps=False)
    with pytest.raises(InputGap, match="numbers its records anew") as info:
        run(st.process(new))
    assert (info.value.expected, info.value.found) == (2, 0)

    # the new log ends exactly at the snapshot's last offset: a fetch there waits, and after
    # the deadline the log's end names it (not a quiet broker)
    log = MemoryLog()
    _snapshot_at(log, 3)
    log.recreate(IN, 0)
    new = [(0, log.append(IN, 0, b"a", b"5"), b"a", b"5", 0) for _ in range(2)]  # offsets 0, 1
    st = new_state(log, accept_gaps=False, quiet_deadline=0.2)
    with pytest.raises(InputGap, match="the log ends at offset 2") as info:
        run(st.process(new))
    assert (info.value.expected, info.value.found, info.value.log_end) == (2, None, 2)


def test_the_agents_policy_logs_the_gap_and_continues_from_the_snapshot(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = MemoryLog()
    recs = _snapshot_at(log, 12)
    log.delete_before(IN, 0, 8)
    st = new_state(log)  # accept_gaps: the default the agents run with
    with caplog.at_level(logging.ERROR, logger="streams.state"):
        out = run(st.process(recs[10:]))
    assert st.gaps == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "readings[0]" in errors[0]
    assert "found 8" in errors[0]
    # the snapshot's state (3 records) and the two records at hand, nothing of the gap
    assert st.partitions[0].states["a"]["n"] == 5
    assert out == ["a@10:4/4", "a@11:5/5"]

    log2 = MemoryLog()
    _snapshot_at(log2, 3)
    log2.recreate(IN, 0)
    new = [(0, log2.append(IN, 0, b"a", b"5"), b"a", b"5", 0) for _ in range(2)]
    st2 = new_state(log2, quiet_deadline=0.2)
    assert run(st2.process(new)) == ["a@0:8/4", "a@1:13/5"]  # not skipped as "already read"


# -- a quiet partition has a deadline


def test_a_quiet_input_partition_raises_after_the_deadline() -> None:
    log = MemoryLog()
    recs = _snapshot_at(log, 12)
    log.quiet.add((IN, 0))
    st = new_state(log, quiet_deadline=0.3)
    started = time.monotonic()
    with pytest.raises(LogQuiet) as info:
        run(st.process(recs[10:]))
    assert 0.3 <= time.monotonic() - started < 3.0
    assert (info.value.topic, info.value.partition, info.value.position, info.value.end) == (
        IN, 0, 3, 10,
    )  # fmt: skip
    assert "readings[0]" in str(info.value)
    assert "offset 3" in str(info.value)

    # process() changed nothing: once the broker answers, the same batch gives what an
    # uninterrupted run gives (what the agent relies on when it tries the batch again)
    log.quiet.clear()
    out = run(st.process(recs[10:]))
    assert out == ["a@10:11/11", "a@11:12/12"]


def test_a_quiet_state_partition_raises_after_the_deadline() -> None:
    log = MemoryLog()
    recs = _snapshot_at(log, 5)
    log.quiet.add((STATE, 0))
    with pytest.raises(LogQuiet, match=r"evaluate-state\[0\]: nothing read for"):
        run(new_state(log, quiet_deadline=0.2).process(recs[4:]))


def test_the_deadline_counts_from_the_last_record_not_from_the_start() -> None:
    log = MemoryLog()
    recs = _snapshot_at(log, 30)
    log.fetch_delay, log.max_records = 0.02, 1  # 27 fetches: ~0.5 s in all, 0.02 s each
    st = new_state(log, quiet_deadline=0.2)
    started = time.monotonic()
    out = run(st.process(recs[29:]))
    assert time.monotonic() - started > 0.2  # longer than the deadline, but never quiet
    assert st.replayed == 26
    assert out == ["a@29:30/30"]
