"""Envelopes live (issue 16): the bridge turns an MQTT burst into a few ``readings`` records of many
samples each; the worker judges every sample of them; a sample the catalogue refuses is
dead-lettered alone with its origin (topic, partition, offset, index), the rest is stored.

Real services: mosquitto → :class:`ingest.bridge.Bridge` → Tansu (4 partitions) → the worker
(``streams.runtime.Runtime`` without its own bridge, shipped catalogue deploy/config) →
VictoriaMetrics (standing in for InfluxDB's write API).

Script: the bridge creates its persistent session and goes away; meanwhile Weifang's stations
aq-wf-01…03 publish 48 hourly samples each (from 2026-11-20 00:00 Beijing), pm2.5 = 10 + hour
index + station number, and an invented station aq-wf-91 (not in the catalogue; on aq-wf-01's
partition) publishes 2 samples among them. The bridge comes back and takes the 146 samples over
in bursts. Expected, from the script alone:

* Kafka holds fewer records than samples; a record of several samples is a JSON array of at most
  ``ENVELOPE_MAX_BYTES``, all of one partition — the partition Kafka's default partitioner gives
  each sample's source id — and each source's samples are in publishing order;
* the store holds exactly the 144 readings of pm2.5 with the published values;
* exactly two dead letters, stage ``evaluate``, reason ``unknown source 'aq-wf-91' (not in the
  catalogue)``, origin ``readings/<p>@<offset>#<index>`` pointing at the very places of Kafka
  where the two aq-wf-91 samples are (read back from Kafka independently of the worker).
"""

from __future__ import annotations

import asyncio
import base64
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner

from ingest.publisher import Publisher
from streams import topics
from streams.embedded import KafkaBroker, MqttBroker, Victoria
from streams.records import ENVELOPE_MAX_BYTES
from streams.runtime import Runtime
from streams.settings import Settings
from tests.integration.bridge_helpers import first_occurrences_in_order
from tests.integration.test_bridge_burst import run_bridge_until_idle
from tests.integration.worker_support import CATALOGUE, read_all, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

BEIJING = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 20, tzinfo=BEIJING)
HOURS = 48
STATIONS = ("aq-wf-01", "aq-wf-02", "aq-wf-03")
UNKNOWN = "aq-wf-91"  # not in the catalogue; same partition as aq-wf-01 (murmur2)
PARTITIONS = 4


def sample(source: str, h: int, pm25: float) -> bytes:
    values = {"pm25": pm25, "pm10": 40.0 + h % 5, "so2": 6.0 + h % 3, "no2": 20.0 + h % 7,
              "co": 0.5 + 0.1 * (h % 3), "o3": 40.0 + h % 11}  # fmt: skip
    return orjson.dumps(
        {
            "schema": 1,
            "kind": "air",
            "locality": "weifang",
            "source": source,
            "time": (T0 + timedelta(hours=h)).isoformat(),
            "interval": "hour",
            "values": {f: {"value": v, "flag": "N"} for f, v in values.items()},
        }
    )


def script() -> list[tuple[str, int, float]]:
    """(source, hour index, pm2.5) in publishing order."""
    out: list[tuple[str, int, float]] = []
    for h in range(HOURS):
        for n, source in enumerate(STATIONS, start=1):
            out.append((source, h, 10.0 + h + n))
        if h in (10, 30):
            out.append((UNKNOWN, h, 99.0))
    return out


def test_a_burst_travels_in_envelopes_and_every_sample_is_judged(
    mqtt_broker: MqttBroker,
    kafka_broker: KafkaBroker,
    victoria: Victoria,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    settings = Settings(
        kafka=kafka_broker.url, app_id=f"{topic_prefix}app", topic_prefix=topic_prefix,
        partitions=PARTITIONS, session_timeout=6, rebalance_timeout=6, heartbeat_interval=1,
        mqtt_host=mqtt_broker.host, mqtt_port=mqtt_broker.port,
        mqtt_client_id=f"{topic_prefix}bridge", mqtt_share_group=None,
        mqtt_topic="env/+/weifang/+", mqtt_session_expiry=600, data_dir=tmp_path / "faust",
        spool_dir=tmp_path / "spool", sink_flush_interval=0.2, config_dir=CATALOGUE,
        outbox_path=tmp_path / "outbox.db", influx_url=victoria.url,
        agents="evaluate,store,deadletter",
    )  # fmt: skip
    plan = script()
    asyncio.run(run_bridge_until_idle(settings, expect=0))  # the persistent session
    pub = Publisher(mqtt_broker.host, mqtt_broker.port, client_id=f"{topic_prefix}pub")
    for source, h, pm25 in plan:
        pub.publish_raw(f"env/air/weifang/{source}", sample(source, h, pm25))
    pub.close(timeout=60)  # the broker holds them for the bridge's session
    assert asyncio.run(run_bridge_until_idle(settings, expect=len(plan))) == len(plan)

    readings = topics.name(topics.READINGS, topic_prefix)
    # every record of readings (the bridge acknowledged nothing before Kafka had it)
    records = [
        (p, o, v) for p, o, _k, v, _ts in asyncio.run(read_all(kafka_broker.bootstrap, readings))
    ]
    partitioner = DefaultPartitioner()
    parts = list(range(PARTITIONS))
    where: dict[tuple[str, float], str] = {}  # (source, pm2.5) → origin as the worker names it
    order: dict[str, list[int]] = {}
    envelopes = 0
    for partition, offset, value in sorted(records):
        data = orjson.loads(value)
        items = data if isinstance(data, list) else [data]
        if isinstance(data, list):
            envelopes += 1
            assert len(items) > 1
            assert len(value) <= ENVELOPE_MAX_BYTES
        for index, d in enumerate(items):
            assert partitioner(d["source"].encode(), parts, parts) == partition
            h = round((datetime.fromisoformat(d["time"]) - T0) / timedelta(hours=1))
            order.setdefault(d["source"], []).append(h)
            origin = f"readings/{partition}@{offset}"
            where[(d["source"], h)] = f"{origin}#{index}" if isinstance(data, list) else origin
    assert envelopes > 0  # the burst travelled in envelopes
    assert len(records) < len(plan)
    assert sum(len(v) for v in order.values()) == len(plan)  # each sample once
    assert all(first_occurrences_in_order(hs) for hs in order.values())

    async def scenario() -> list[dict[str, Any]]:
        async with Runtime(settings, bridge=False) as rt:
            assert rt.pipeline is not None
            pipeline = rt.pipeline
            await wait_until(lambda: pipeline.counters["samples"] >= len(plan), 90)
            stored = await wait_until(
                lambda: (
                    (s := victoria.export('{__name__="reading_pm25",locality="weifang"}'))
                    and sum(len(x["values"]) for x in s) >= len(STATIONS) * HOURS
                    and s
                ),
                60,
            )
            dead = await wait_until(lambda: dead_letters(kafka_broker, topic_prefix, 2), 30)
        return [*stored, {"dead": dead}]

    *stored, got = asyncio.run(scenario())
    series = {str(s["metric"]["source"]): s for s in stored}
    assert sorted(series) == sorted(STATIONS)
    for n, source in enumerate(STATIONS, start=1):
        s = series[source]
        by_time = dict(zip(s["timestamps"], s["values"], strict=True))
        expected = {
            int((T0 + timedelta(hours=h)).timestamp() * 1000): 10.0 + h + n for h in range(HOURS)
        }
        assert by_time == expected, source
    dead = got["dead"]
    assert sorted(d["origin"] for d in dead) == sorted(where[(UNKNOWN, h)] for h in (10, 30))
    assert all("#" in d["origin"] for d in dead)  # each inside an envelope, named by its index
    for d in dead:
        assert (d["stage"], d["reason"]) == (
            "evaluate",
            f"unknown source {UNKNOWN!r} (not in the catalogue)",
        )
        assert orjson.loads(base64.b64decode(d["payload_b64"]))["source"] == UNKNOWN


def dead_letters(kafka: KafkaBroker, prefix: str, n: int) -> list[dict[str, Any]] | None:
    """The dead letters on Kafka once there are ``n`` of them."""
    records = asyncio.run(read_all(kafka.bootstrap, topics.name(topics.DEAD_LETTER, prefix)))
    got = [orjson.loads(v) for _p, _o, _k, v, _ts in records]
    return got if len(got) >= n else None
