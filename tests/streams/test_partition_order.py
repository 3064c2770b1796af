"""Partition order (issue 13), without services: the fault matrix's day backlog
(tests/integration/test_fault_matrix.py) through the worker's two pure steps
(:class:`streams.steps.EvaluateStep` per ``readings`` partition, :class:`streams.steps.
LocalityStep` per locality), its ``aggregates`` records given to the locality stage in several
orders a live worker can produce — partitions interleaved record by record, one partition after
the other (a partition lagging a whole day behind, as after a kill -9 and a take-over), in reverse,
and with the locality states checkpointed and restored every few records (a rebalance) — must
always give exactly the scripted transitions (written in that module from the script and the
standards), the same ids in every order. The same for the issue's probe (two hourly outlets, one
silent for 4 hours alone on its partition)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson
from aiokafka.partitioner import DefaultPartitioner

from alerts.locality import LocalityState
from alerts.rules import default_rules
from streams import topics
from streams.catalog import CatalogView
from streams.steps import EvaluateStep, LocalityStep
from tests.integration.story_support import CATALOGUE
from tests.integration.test_fault_matrix import (
    LOCALITIES,
    PARTITIONS,
    PROBE_TRANSITIONS,
    backlog,
    expected_transitions,
    probe_key,
    probe_samples,
    told_of,
)

Record = tuple[bytes, bytes]  # aggregates (key, value)


def evaluate_by_partition(samples: Sequence[dict[str, Any]]) -> list[list[Record]]:
    """The backlog keyed by source over PARTITIONS partitions (as the bridge keys it), each
    partition's samples through its own EvaluateStep state; its aggregates records in order."""
    view = CatalogView(CATALOGUE)
    step = EvaluateStep(view, max_future=timedelta(days=36500), max_past=timedelta(days=36500))
    parts = list(range(PARTITIONS))
    partitioner = DefaultPartitioner()
    states: list[dict[str, Any]] = [{} for _ in parts]
    out: list[list[Record]] = [[] for _ in parts]
    for offset, s in enumerate(samples):
        key = s["source"].encode()
        p = int(partitioner(key, parts, parts))
        # received 5 min after its label (the Kafka timestamp the bridge would set)
        ts_ms = int(datetime.fromisoformat(s["time"]).timestamp() * 1000) + 300_000
        for topic, k, v in step(states[p], key, orjson.dumps(s), offset, ts_ms):
            assert topic != topics.DEAD_LETTER, v
            if topic == topics.AGGREGATES:
                out[p].append((k, v))
    return out


def interleaved(parts: Sequence[Sequence[Record]]) -> Iterator[Record]:
    for i in range(max(len(p) for p in parts)):
        for p in parts:
            if i < len(p):
                yield p[i]


def sequential(parts: Sequence[Sequence[Record]]) -> Iterator[Record]:
    for p in parts:
        yield from p


def locality_transitions(
    records: Iterator[Record], *, checkpoint_every: int = 0
) -> list[dict[str, Any]]:
    view = CatalogView(CATALOGUE)
    rules = default_rules()
    step = LocalityStep(view, rules)
    states: dict[bytes, LocalityState | None] = {}
    got: list[dict[str, Any]] = []
    for n, (key, value) in enumerate(records):
        st, outputs = step(states.get(key), key, value, n, 0)
        if checkpoint_every and n % checkpoint_every == 0 and st is not None:
            # a rebalance: the state as the changelog restores it
            st = LocalityState.from_dict(orjson.loads(orjson.dumps(st.to_dict())), rules)
        states[key] = st
        for topic, _k, v in outputs:
            assert topic != topics.DEAD_LETTER, v
            if topic == topics.ALERT_EVENTS:
                t = orjson.loads(v)
                if t["locality"] in LOCALITIES:
                    got.append(t)
    return got


def in_every_order(parts: Sequence[Sequence[Record]]) -> dict[str, list[dict[str, Any]]]:
    return {
        "interleaved": locality_transitions(interleaved(parts)),
        "one after the other": locality_transitions(sequential(parts)),
        "reversed": locality_transitions(sequential(parts[::-1])),
        "reversed, checkpointed": locality_transitions(sequential(parts[::-1]), checkpoint_every=7),
    }


def test_every_order_of_the_partitions_gives_the_scripted_transitions() -> None:
    parts = evaluate_by_partition(backlog())
    assert sum(1 for p in parts if p) >= 3  # the sources really are spread over partitions
    orders = in_every_order(parts)
    want = expected_transitions()
    for name, ts in orders.items():
        assert sorted(told_of(t) for t in ts) == want, name
    first = {t["id"] for t in orders["interleaved"]}
    assert all({t["id"] for t in ts} == first for ts in orders.values())


def test_the_issue_probe_on_4_partitions_in_every_order() -> None:
    """Two hourly outlets of Weifang, one silent for 4 hours and alone on its partition: its
    offline alert (16:00) and the resumption (18:00) are there in every order — before the fix
    nothing moved that partition's clock while it was silent (22 of 24 transitions)."""
    parts = evaluate_by_partition(probe_samples())
    assert sum(1 for p in parts if p) == 2  # e-wf-01-g1 and e-wf-02-g1 on partitions of their own
    for name, ts in in_every_order(parts).items():
        got = sorted(probe_key(told_of(t)) for t in ts)
        assert got == sorted(PROBE_TRANSITIONS), name
