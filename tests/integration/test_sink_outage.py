"""The write endpoint down for 60 s while samples keep flowing: afterwards every point is there.

``envwatch worker`` (separate process, shipped catalogue) writes to a VictoriaMetrics process that
is stopped 5 s into the stream and started again 60 s later, on the same port and data directory.
Meanwhile the sink spools whole batches to disk and keeps the stream going; once the endpoint
answers, the background drainer writes the spool oldest first. Checked: every point of every
evaluation emitted is stored (series + timestamp), and the readings hand-counted.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta

import pytest

from streams import embedded, topics
from streams.embedded import KafkaBroker
from tests.integration.worker_support import (
    BEIJING,
    WorkerProcess,
    evaluations_by_id,
    expected_points,
    produce,
    sample,
    settle,
    stored_points,
    wait_until,
    worker_env,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(170)]

START = datetime(2026, 10, 1, tzinfo=BEIJING)
STATIONS = ("aq-wf-01", "aq-wf-02")
OUTAGE_S = 60.0
#: one simulated hour (both stations) every 0.5 s for 75 s: 150 hours before, during, after
HOURS = 150


def hour_samples(h: int) -> list[dict[str, object]]:
    at = START + timedelta(hours=h)
    return [
        sample("air", "weifang", s, at,
               {"pm25": 30.0 + h % 17 + i, "pm10": 70.0, "so2": 8.0, "no2": 25.0, "co": 0.6,
                "o3": 50.0 + h % 9})
        for i, s in enumerate(STATIONS)
    ]  # fmt: skip


def test_endpoint_down_for_60_s_loses_nothing(
    kafka_broker: KafkaBroker, topic_prefix: str, tmp_path
) -> None:
    prefix = topic_prefix
    readings = topics.name(topics.READINGS, prefix)

    async def scenario() -> None:
        with embedded.victoria_metrics() as vm:
            await topics.ensure_topics(kafka_broker.url, 1, prefix)
            env = worker_env(kafka_broker.url, prefix, tmp_path, influx_url=vm.url)
            worker = WorkerProcess(env, tmp_path / "worker.log")
            worker.start()
            try:
                await produce(kafka_broker.bootstrap, readings, hour_samples(1))
                await wait_until(lambda: stored_points(vm, '{__name__="reading_pm25"}'), 60)
                t0 = time.monotonic()
                down_at, up_at = t0 + 5, t0 + 5 + OUTAGE_S
                stopped = restarted = False
                for h in range(2, HOURS + 1):
                    now = time.monotonic()
                    if not stopped and now >= down_at:
                        await asyncio.to_thread(vm.process.stop)
                        stopped = True
                    if stopped and not restarted and now >= up_at:
                        spooled = list((tmp_path / "spool").glob("envwatch-*.lp*"))
                        assert spooled, "nothing was spooled during the outage"
                        await asyncio.to_thread(vm.process.start)
                        restarted = True
                    await produce(kafka_broker.bootstrap, readings, hour_samples(h))
                    await asyncio.sleep(max(0.0, t0 + (h - 1) * 0.5 - time.monotonic()))
                if not restarted:
                    await asyncio.sleep(max(0.0, up_at - time.monotonic()))
                    await asyncio.to_thread(vm.process.start)
                records = await settle(
                    kafka_broker.bootstrap, topics.name(topics.EVALUATIONS, prefix)
                )
                expected = expected_points(evaluations_by_id(records))
                # the drainer probes every 2 s: give it time to write the spool
                await wait_until(lambda: expected <= set(stored_points(vm)), within=60)
                stored = await asyncio.to_thread(stored_points, vm)
                assert worker.alive(), worker.tail()
            finally:
                worker.stop()

        assert not expected - set(stored)
        # hand count: 2 stations × 150 hourly samples, each with a valid pm25 → 150 timestamps each
        for s in STATIONS:
            n = {k[2] for k in stored if k[0] == "reading_pm25" and ("source", s) in k[1]}
            assert len(n) == HOURS, s
        # and the spool is empty again (drained, nothing left behind)
        assert not [p for p in (tmp_path / "spool").glob("*.lp*") if p.stat().st_size]

    asyncio.run(scenario())
