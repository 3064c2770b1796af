"""Walking skeleton, end to end with real services only.

MQTT (mosquitto, QoS1) → ingest bridge → Kafka (Tansu) → Faust worker (in-process) → rules →
line protocol via influxdb-client → VictoriaMetrics, read back through its export API.
VictoriaMetrics stands in for InfluxDB (which cannot be installed here): it serves the same
``/api/v2/write`` endpoint influxdb-client posts to, so the client, the HTTP request and the line
protocol are real; a line VictoriaMetrics accepts maps ``reading`` + field ``pm25`` onto the
series ``reading_pm25`` with the point's tags as labels.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from ingest.publisher import Publisher
from streams.embedded import KafkaBroker, MqttBroker, Victoria
from streams.runtime import Runtime
from streams.settings import Settings

pytestmark = pytest.mark.integration

BEIJING = ZoneInfo("Asia/Shanghai")


def settings_for(
    mqtt: MqttBroker, kafka: KafkaBroker, prefix: str, tmp_path, **kw: object
) -> Settings:
    return Settings(
        kafka=kafka.url,
        app_id=f"{prefix}app",
        topic_prefix=prefix,
        partitions=1,
        session_timeout=6,
        rebalance_timeout=6,
        heartbeat_interval=1,
        mqtt_host=mqtt.host,
        mqtt_port=mqtt.port,
        mqtt_client_id=f"{prefix}bridge",
        mqtt_share_group=None,
        mqtt_topic="env/#",
        data_dir=tmp_path / "faust",
        spool_dir=tmp_path / "spool",
        sink_flush_interval=0.2,
        config_dir=None,  # no catalogue: every source is evaluated with default context
        outbox_path=tmp_path / "outbox.db",
        **kw,
    )


async def wait_for(predicate, within: float = 30.0, interval: float = 0.3):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        result = await asyncio.to_thread(predicate)
        if result:
            return result
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {within}s")


def test_sample_flows_from_mqtt_to_the_time_series_store(
    mqtt_broker: MqttBroker,
    kafka_broker: KafkaBroker,
    victoria: Victoria,
    topic_prefix: str,
    tmp_path,
) -> None:
    source = f"aq-{topic_prefix.strip('-')}"[:60]
    at = datetime(2026, 11, 22, 9, 0, tzinfo=BEIJING)  # hour (08:00, 09:00] Beijing time
    sample = {
        "schema": 1,
        "kind": "air",
        "locality": "weifang",
        "source": source,
        "time": at.isoformat(),
        "interval": "hour",
        "values": {
            "pm25": {"value": 35.0, "flag": "N"},
            "pm10": {"value": 61.0, "flag": "N"},
            "so2": {"value": 9.0, "flag": "M"},  # maintenance: invalid data, not stored as a value
        },
    }
    settings = settings_for(
        mqtt_broker, kafka_broker, topic_prefix, tmp_path, influx_url=victoria.url
    )

    async def scenario() -> None:
        async with Runtime(settings):
            pub = Publisher(mqtt_broker.host, mqtt_broker.port)
            pub.publish_raw(f"env/air/weifang/{source}", orjson.dumps(sample))
            pub.close()
            series = await wait_for(
                lambda: victoria.export(f'{{__name__=~"reading_.*",source="{source}"}}')
            )
            # give a possible late duplicate a chance to show up as a second point
            await asyncio.sleep(0.5)
            series = victoria.export(f'{{__name__=~"reading_.*",source="{source}"}}')
            by_name = {s["metric"]["__name__"]: s for s in series}
            assert {"reading_pm25", "reading_pm10"} <= set(by_name)
            pm25 = by_name["reading_pm25"]
            assert pm25["values"] == [35.0]
            # the point carries the sample's own time: 09:00 Beijing = 01:00 UTC
            assert pm25["timestamps"] == [int(at.timestamp() * 1000)]
            labels = pm25["metric"]
            assert labels["locality"] == "weifang"
            assert labels["kind"] == "air"
            assert labels["source"] == source
            assert "reading_so2" not in by_name  # flagged M: not a valid value

    asyncio.run(scenario())


def test_malformed_payload_goes_to_dead_letter_with_its_reason(
    mqtt_broker: MqttBroker, kafka_broker: KafkaBroker, topic_prefix: str, tmp_path
) -> None:
    settings = settings_for(mqtt_broker, kafka_broker, topic_prefix, tmp_path)
    bad = b'{"schema": 1, "kind": "air", "locality": "weifang", "source": "x", "values": {}}'

    async def scenario() -> None:
        async with Runtime(settings) as rt:
            pub = Publisher(mqtt_broker.host, mqtt_broker.port)
            pub.publish_raw("env/air/weifang/x", bad)
            pub.publish_raw("env/air/weifang/y", b"\xff\xfe not json")
            pub.close()
            consumer = AIOKafkaConsumer(
                f"{topic_prefix}dead-letter",
                bootstrap_servers=kafka_broker.bootstrap,
                auto_offset_reset="earliest",
                group_id=None,
            )
            await consumer.start()
            try:
                got = []
                deadline = time.monotonic() + 30
                while len(got) < 2 and time.monotonic() < deadline:
                    batch = await consumer.getmany(timeout_ms=500)
                    for msgs in batch.values():
                        got += [orjson.loads(m.value) for m in msgs]
            finally:
                await consumer.stop()
            assert len(got) == 2
            first, second = sorted(got, key=lambda d: d["origin"])
            assert first["origin"] == "env/air/weifang/x"
            assert first["stage"] == "bridge"
            assert "time" in first["reason"]  # the missing field is named
            assert second["origin"] == "env/air/weifang/y"
            assert "invalid" in second["reason"].lower() or "json" in second["reason"].lower()
            assert rt.bridge is not None
            assert rt.bridge.counters.dead_lettered == 2

    asyncio.run(scenario())
