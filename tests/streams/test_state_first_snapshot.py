"""A partition's first snapshot is written at once (streams/state.py ``due_snapshots``).

Found by the fault matrix (``test_backlog_two_workers_kill_9``): a worker that read a partition of
``alert-events`` for less than the snapshot interval and was then killed (or lost the partition
in a rebalance) left no snapshot; the new owner had nothing to replay from, and the notification
groups still waiting in the dead worker's memory — their records already committed — were never
sent (the duty officer of Laixi never heard that an SO2 exceedance had ended). With a snapshot
after the first batch the new owner replays from it and sends what the replay flushes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from streams.state import CheckpointedState, Partition


def counting(
    states: dict[str, Any], key: bytes, value: bytes, offset: int, ts: int, partition: int
) -> list[str]:
    states["n"] = states.get("n", 0) + 1
    return []


def state_with(partition: Partition) -> CheckpointedState[str]:
    st: CheckpointedState[str] = CheckpointedState(
        bootstrap="127.0.0.1:1",  # never contacted: the partition is already restored
        input_topic="in",
        state_topic="state",
        partition_step=counting,
        interval=3600.0,
    )
    st.partitions[partition.number] = partition
    return st


def markers(records: list[tuple[bytes, bytes, int]]) -> list[bytes]:
    return [k for k, _v, _p in records if k.endswith(b"/marker")]


def test_the_first_batch_of_a_partition_is_snapshotted_at_once_later_ones_by_interval() -> None:
    st = state_with(Partition(number=1))
    asyncio.run(st.process([(1, 0, b"k", b"v", 0)]))
    assert markers(st.due_snapshots()) == [b"1/marker"]  # none yet: due at once
    asyncio.run(st.process([(1, 1, b"k", b"v", 0)]))
    assert st.due_snapshots() == []  # the next only after the interval (an hour here)
    assert markers(st.due_snapshots(force=True)) == [b"1/marker"]
    assert st.partitions[1].generation == 2


def test_a_partition_restored_from_a_snapshot_keeps_the_interval() -> None:
    st = state_with(Partition(number=2, next_offset=10, generation=3))
    asyncio.run(st.process([(2, 10, b"k", b"v", 0)]))
    assert st.due_snapshots() == []
