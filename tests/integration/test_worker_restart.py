"""A worker killed with SIGKILL mid-stream and restarted: nothing lost, nothing contradicted.

Real services: Tansu (Kafka protocol), VictoriaMetrics (InfluxDB v2 write API), and ``envwatch
worker`` as a separate process configured only through ENVWATCH_* variables, with the shipped
catalogue (deploy/config). Three Weifang stations report two Beijing days of hourly samples
(hours labelled D 01:00 … D+2 00:00, 3 × 48 = 144 samples) and one more hour that closes day 2.

Timeline: produce day 1 and the first 6 h of day 2 → wait until the worker stored day 1 → produce
the next 10 h and SIGKILL the worker while it works on them → produce the rest while it is down →
restart → wait until quiet. Then:

* every point of every evaluation emitted is in the store (series + timestamp);
* no evaluation id was emitted with content an uninterrupted worker would not have produced, and
  the last content of every id is the uninterrupted one (a replay re-emits identical records);
* day 2 — open at the crash — is completed: its daily aggregate counts 24 hours and its daily AQI
  is the one computed by hand below.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import orjson
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
    value_of,
    wait_until,
    worker_env,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

DAY1 = datetime(2026, 11, 10, tzinfo=BEIJING)  # natural day 2026-11-10: hours 01:00 … 11-11 00:00
STATIONS = ("aq-wf-01", "aq-wf-02", "aq-wf-03")  # deploy/config/weifang.yaml, area grade II


def hourly(station: int, hour: int) -> dict[str, object]:
    """Sample of station i at the hour labelled DAY1 + hour (hour 1 … 49)."""
    at = DAY1 + timedelta(hours=hour)
    # constant over each day, different per station and day: the daily means are the values
    day = 0 if hour <= 24 else 1
    pm25 = (40.0, 50.0, 80.0)[station] + 10.0 * day
    return sample(
        "air", "weifang", STATIONS[station], at,
        {"pm25": pm25, "pm10": 100.0, "so2": 10.0, "no2": 30.0, "co": 0.8, "o3": 60.0},
    )  # fmt: skip


def samples_for(hours: range) -> list[dict[str, object]]:
    return [hourly(i, h) for h in hours for i in range(len(STATIONS))]


def test_kill_9_mid_stream_then_restart(
    kafka_broker: KafkaBroker, topic_prefix: str, tmp_path
) -> None:
    prefix = topic_prefix
    readings = topics.name(topics.READINGS, prefix)
    evaluations = topics.name(topics.EVALUATIONS, prefix)

    async def scenario() -> None:
        with embedded.victoria_metrics() as vm:
            await topics.ensure_topics(kafka_broker.url, 2, prefix)
            env = worker_env(kafka_broker.url, prefix, tmp_path, influx_url=vm.url, partitions=2)
            worker = WorkerProcess(env, tmp_path / "worker.log")
            worker.start()
            try:
                await produce(kafka_broker.bootstrap, readings, samples_for(range(1, 31)))
                day1 = DAY1
                # day 1 of every station stored (its daily AQI point exists)
                await wait_until(
                    lambda: all(
                        value_of(stored_points(vm, '{__name__="aqi_aqi"}'), "aqi_aqi", day1,
                                 source=s, period="day") is not None
                        for s in STATIONS
                    ),
                    within=60,
                )  # fmt: skip
                await produce(kafka_broker.bootstrap, readings, samples_for(range(31, 41)))
                await asyncio.sleep(0.3)  # the worker is in the middle of these
                assert worker.alive(), worker.tail()
                worker.kill()
                await produce(kafka_broker.bootstrap, readings, samples_for(range(41, 50)))
                worker.start()
                day2 = DAY1 + timedelta(days=1)
                await wait_until(
                    lambda: all(
                        value_of(stored_points(vm, '{__name__="aqi_aqi"}'), "aqi_aqi", day2,
                                 source=s, period="day") is not None
                        for s in STATIONS
                    ),
                    within=90,
                )  # fmt: skip
                await asyncio.sleep(2.0)  # let the last batches land
                records = await settle(kafka_broker.bootstrap, evaluations)
                stored = await asyncio.to_thread(stored_points, vm)
            finally:
                worker.stop()

        # the same input through a worker that is never interrupted (no store: spool only)
        clean = f"{prefix}clean-"
        await topics.ensure_topics(kafka_broker.url, 2, clean)
        await produce(kafka_broker.bootstrap, topics.name(topics.READINGS, clean),
                      samples_for(range(1, 50)))  # fmt: skip
        reference_worker = WorkerProcess(
            worker_env(kafka_broker.url, clean, tmp_path / "clean", influx_url=None, partitions=2),
            tmp_path / "clean.log",
        )
        reference_worker.start()
        try:
            reference = evaluations_by_id(
                await settle(kafka_broker.bootstrap, topics.name(topics.EVALUATIONS, clean))
            )
        finally:
            reference_worker.stop()

        groups = evaluations_by_id(records)

        # the pipeline's own health (pipeline_health, stamped with the wall clock of the worker
        # that reports it, and the operator alerts of the pseudo-locality 'pipeline' it raises,
        # e.g. a receiver without a channel here) is about each run, not its input
        def of_input(g: list[dict[str, Any]]) -> bool:
            e = g[-1]
            return e["measurement"] != "pipeline_health" and e["tags"].get("locality") != "pipeline"

        groups = {i: g for i, g in groups.items() if of_input(g)}
        reference = {i: g for i, g in reference.items() if of_input(g)}
        # the restarted worker restored the readings state from Kafka (snapshot + replay)
        restores = [
            ln for ln in worker.tail(10_000).splitlines() if "readings[" in ln and "restored" in ln
        ]
        assert len(restores) >= 2, worker.tail()
        # ---- no point missing in the store
        missing = expected_points(groups) - set(stored)
        assert not missing, f"{len(missing)} points missing, e.g. {sorted(missing)[:3]}"
        # readings: 3 stations × 49 hours, each hour's pm25 stored once per station
        for s in STATIONS:
            hours = {k[2] for k in stored if k[0] == "reading_pm25" and ("source", s) in k[1]}
            assert len(hours) == 49, s

        # ---- nothing emitted that an uninterrupted worker would not emit
        for id_, emitted in groups.items():
            ref = reference.get(id_)
            assert ref is not None, f"{id_} emitted but not by an uninterrupted worker"
            for e in emitted:
                near = [
                    r["fields"]
                    for r in ref
                    if r["fields"].get("last_seen") == e["fields"].get("last_seen")
                ]
                assert content(e) in [content(r) for r in ref], (
                    f"{id_}: unexpected content {e['fields']} vs {near}"
                )
            assert content(emitted[-1]) == content(ref[-1]), f"{id_}: last content differs"
        assert set(reference) == set(groups)

        # ---- the day open at the crash is complete and right
        # day 2 (2026-11-11), station aq-wf-01: pm25 = 40 + 10 = 50 every hour, pm10 100, so2 10,
        # no2 30, co 0.8, o3 60 (HJ 633-2026 表3, ceil):
        #   IAQI pm25 = (100-50)/(60-35)*(50-35)+50 = 2*15+50 = 80
        #   IAQI pm10 = (100-50)/(120-50)*(100-50)+50 = 35.71+50 = 85.71 → 86
        #   IAQI so2 24h = 50/50*10 = 10; no2 24h = 50/40*30 = 37.5 → 38; co 24h = 50/2*0.8 = 20;
        #   o3 8h max = 60 → 50/100*60 = 30
        #   daily AQI = 86 (primary pm10)
        # aq-wf-03: pm25 = 80 + 10 = 90 → (150-100)/(115-60)*(90-60)+100 = 50/55*30+100
        #   = 127.27 → 128
        day2 = DAY1 + timedelta(days=1)
        assert value_of(stored, "aggregate_hours", day2, source="aq-wf-01", period="day") == 24
        assert value_of(stored, "aggregate_pm25", day2, source="aq-wf-01", period="day") == 50.0
        assert value_of(stored, "aqi_aqi", day2, source="aq-wf-01", period="day") == 86
        assert value_of(stored, "aqi_aqi", day2, source="aq-wf-03", period="day") == 128

    asyncio.run(scenario())


def content(e: dict[str, object]) -> bytes:
    return orjson.dumps(
        {k: e[k] for k in ("measurement", "tags", "fields", "ns")}, option=orjson.OPT_SORT_KEYS
    )
