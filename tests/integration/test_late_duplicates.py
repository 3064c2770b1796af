"""The simulators' late-and-duplicates scenario gives the same final results as the clean stream.

Two runs of the real pipeline (``envwatch worker`` processes, shipped catalogue, each with its own
VictoriaMetrics): the clean 12-hour stream of the Weifang network, and the same stream with the
``late-and-duplicates`` scenario (docs/simulators.md: every Weifang source holds back (start+2 h,
start+5 h] and delivers it at start+5 h 10 min, first in reverse order, then all again). Each
sample gets the Kafka timestamp of its simulated delivery, as the bridge would give it.

Checked: the same points are stored with the same values, and the last content of every
evaluation id (what InfluxDB keeps: last write wins, the sink writes in order) is the same.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import orjson
import pytest

from ingest.bridge import normalise
from ingest.schemas import topic_for
from ingest.simulators import simulate
from ingest.simulators.network import default_specs
from streams import embedded, topics
from streams.embedded import KafkaBroker
from tests.integration.worker_support import (
    BEIJING,
    WorkerProcess,
    evaluations_by_id,
    expected_points,
    point_keys,
    produce,
    settle,
    stored_points,
    wait_until,
    worker_env,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(170)]

START = datetime(2026, 9, 14, tzinfo=BEIJING)
HOURS = 12


def stream(scenario: str | None) -> tuple[list[dict[str, object]], list[datetime]]:
    specs = [s for s in default_specs() if s.locality == "weifang"]
    samples, received = [], []
    for d in simulate(specs, start=START, hours=HOURS, seed=7, scenario=scenario, target="weifang"):
        _key, value = normalise(
            topic_for(d.sample), d.sample.model_dump_json(by_alias=True).encode()
        )
        samples.append(orjson.loads(value))
        received.append(d.at)
    return samples, received


def test_late_and_duplicates_equal_clean(
    kafka_broker: KafkaBroker, topic_prefix: str, tmp_path
) -> None:
    clean, clean_at = stream(None)
    late, late_at = stream("late-and-duplicates")
    # the scenario really is different on the wire: more messages, not in label order
    assert len(late) > len(clean)
    assert [s["time"] for s in late] != sorted(s["time"] for s in late)

    async def run(name: str, samples, received, vm: embedded.Victoria):
        prefix = f"{topic_prefix}{name}-"
        await topics.ensure_topics(kafka_broker.url, 1, prefix)
        await produce(
            kafka_broker.bootstrap, topics.name(topics.READINGS, prefix), samples, received
        )
        env = worker_env(kafka_broker.url, prefix, tmp_path / name, influx_url=vm.url)
        worker = WorkerProcess(env, tmp_path / f"{name}.log")
        worker.start()
        try:
            records = await settle(kafka_broker.bootstrap, topics.name(topics.EVALUATIONS, prefix))
            groups = evaluations_by_id(records)
            want = expected_points(groups)
            await wait_until(lambda: want <= set(stored_points(vm)), within=30)
            return groups, await asyncio.to_thread(stored_points, vm)
        finally:
            worker.stop()

    async def scenario():
        with embedded.victoria_metrics() as vm_a, embedded.victoria_metrics() as vm_b:
            return await asyncio.gather(
                run("clean", clean, clean_at, vm_a), run("late", late, late_at, vm_b)
            )

    (clean_groups, clean_store), (late_groups, late_store) = asyncio.run(scenario())

    # Alerts are not results of the samples but of their delivery: in the late run the Weifang
    # sources really were silent for 3 h 10 min of delivery time, so "offline" firing then
    # resolving is right there and absent from the clean run. Dead letters (here: the
    # simulator's sources that the shipped catalogue does not list) are stamped with the time
    # they were received, which differs between the runs by construction. Everything else must
    # be equal. The pipeline's own health (pipeline_health, stamped with the wall clock of the
    # worker that reports it) is about the run, not the samples.
    not_of_samples = ("alert", "pipeline_health")

    def of_samples(key: str) -> bool:
        return not key.startswith(("alert_", "dead_letter_", "pipeline_health_"))

    clean_groups = {
        i: g for i, g in clean_groups.items() if g[-1]["measurement"] not in not_of_samples
    }
    late_groups = {
        i: g for i, g in late_groups.items() if g[-1]["measurement"] not in not_of_samples
    }
    clean_store = {k: v for k, v in clean_store.items() if of_samples(k[0])}
    late_store = {k: v for k, v in late_store.items() if of_samples(k[0])}
    assert set(late_groups) == set(clean_groups)
    differing = [
        i for i in clean_groups
        if strip(clean_groups[i][-1]) != strip(late_groups[i][-1])
    ]  # fmt: skip
    assert not differing, [(clean_groups[i][-1], late_groups[i][-1]) for i in differing[:3]]
    assert set(late_store) == set(clean_store)
    # values too, for points written with one content in both runs (VictoriaMetrics keeps every
    # write of a corrected point where InfluxDB keeps the last; those are compared above by id)
    once = single_content(clean_groups) & single_content(late_groups)
    assert once
    assert {k: late_store[k] for k in once} == {k: clean_store[k] for k in once}


def strip(e: dict[str, object]) -> dict[str, object]:
    return {k: e[k] for k in ("measurement", "tags", "fields", "ns")}


def single_content(groups: dict[str, list[dict[str, object]]]) -> set[object]:
    out: set[object] = set()
    for g in groups.values():
        if all(strip(e) == strip(g[0]) for e in g):
            out |= point_keys(g[-1])
    return out
