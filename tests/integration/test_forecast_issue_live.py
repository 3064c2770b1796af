"""An AQI forecast issue on the real services: published over MQTT (mosquitto) → the bridge
validates it → Kafka (Tansu) → the worker's evaluate stage (no clock moved) → the locality stage
issues the heavy-pollution warning from the forecast alone, at the issue time → the store
(VictoriaMetrics, standing in for InfluxDB's write API) keeps the issue; a bad issue is
dead-lettered with its field and reason.

Script (Beijing time; rule set envwatch-default = 环办大气函〔2018〕875号, standards.md §6.1 [2+]:
yellow when AQI > 200 is expected for 48 h): Weifang's station aq-wf-01 reports clean air for
20 Nov 05:00 and 06:00; at 06:00 its forecast office issues 21 Nov AQI 150–190 (primary PM2.5),
22 Nov 240 and 23 Nov 210–260 → AQI > 200 from 22 Nov 00:00 for 48 h → yellow issued at 06:00,
42 h ahead of the episode. An issue claiming AQI 650 is refused by the bridge.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from ingest.publisher import Publisher
from streams.embedded import KafkaBroker, MqttBroker, Victoria
from streams.runtime import Runtime
from streams.settings import Settings
from tests.integration.worker_support import CATALOGUE, wait_until

pytestmark = pytest.mark.integration

BEIJING = ZoneInfo("Asia/Shanghai")
ISSUED = datetime(2026, 11, 20, 6, tzinfo=BEIJING)


def air(at: datetime) -> dict[str, Any]:
    values = {"pm25": 30.0, "pm10": 50.0, "so2": 8.0, "no2": 25.0, "co": 0.5, "o3": 40.0}
    return {
        "schema": 1,
        "kind": "air",
        "locality": "weifang",
        "source": "aq-wf-01",
        "time": at.isoformat(),
        "interval": "hour",
        "values": {f: {"value": v, "flag": "N"} for f, v in values.items()},
    }


def issue(*days: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema": 1,
        "kind": "forecast",
        "locality": "weifang",
        "source": "fc-weifang",
        "time": ISSUED.isoformat(),
        "issuer": "潍坊市环境监测中心",
        "days": list(days),
    }


def test_a_forecast_issue_warns_ahead_at_its_issue_time(
    mqtt_broker: MqttBroker,
    kafka_broker: KafkaBroker,
    victoria: Victoria,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    log = tmp_path / "alerts.jsonl"
    settings = Settings(
        kafka=kafka_broker.url,
        app_id=f"{topic_prefix}app",
        topic_prefix=topic_prefix,
        partitions=1,
        session_timeout=6,
        rebalance_timeout=6,
        heartbeat_interval=1,
        mqtt_host=mqtt_broker.host,
        mqtt_port=mqtt_broker.port,
        mqtt_client_id=f"{topic_prefix}bridge",
        mqtt_share_group=None,
        mqtt_topic="env/#",
        data_dir=tmp_path / "faust",
        spool_dir=tmp_path / "spool",
        sink_flush_interval=0.2,
        config_dir=CATALOGUE,
        outbox_path=tmp_path / "outbox.db",
        alerts_log=log,
        influx_url=victoria.url,
    )
    good = issue(
        {"date": "2026-11-21", "aqi_min": 150, "aqi_max": 190, "primary": "pm25"},
        {"date": "2026-11-22", "aqi": 240, "primary": "pm25"},
        {"date": "2026-11-23", "aqi_min": 210, "aqi_max": 260, "primary": "pm25"},
    )
    bad = issue({"date": "2026-11-21", "aqi": 650})

    def warnings() -> list[dict[str, Any]]:
        if not log.exists():
            return []
        rows = [orjson.loads(x) for x in log.read_bytes().splitlines()]
        return [r for r in rows if r["kind"] == "warning"]

    async def scenario() -> None:
        async with Runtime(settings) as rt:
            assert rt.pipeline is not None
            pub = Publisher(mqtt_broker.host, mqtt_broker.port)
            for h in (5, 6):
                pub.publish_raw(
                    "env/air/weifang/aq-wf-01", orjson.dumps(air(ISSUED.replace(hour=h)))
                )
            pub.publish_raw("env/forecast/weifang/fc-weifang", orjson.dumps(bad))
            pub.publish_raw("env/forecast/weifang/fc-weifang", orjson.dumps(good))
            pub.close()
            [w] = await wait_until(warnings, 60)
            assert (w["reason"], w["level"]) == ("warning_issued", "yellow")
            assert datetime.fromisoformat(w["at"]) == ISSUED  # decided when it was issued
            assert w["lead_hours"] == 42.0  # 20 Nov 06:00 → 22 Nov 00:00
            stored = await wait_until(
                lambda: victoria.export('{__name__="forecast_max_aqi",source="fc-weifang"}'), 60
            )
            assert stored[0]["values"] == [260.0]  # the range counts with its upper bound
            assert stored[0]["timestamps"] == [int(ISSUED.timestamp() * 1000)]
            consumer = AIOKafkaConsumer(
                f"{topic_prefix}dead-letter",
                bootstrap_servers=kafka_broker.bootstrap,
                auto_offset_reset="earliest",
                group_id=None,
            )
            await consumer.start()
            try:
                got: list[dict[str, Any]] = []
                deadline = time.monotonic() + 30
                while not got and time.monotonic() < deadline:
                    batch = await consumer.getmany(timeout_ms=500)
                    got += [orjson.loads(m.value) for msgs in batch.values() for m in msgs]
            finally:
                await consumer.stop()
            [dl] = got
            assert (dl["stage"], dl["origin"]) == ("bridge", "env/forecast/weifang/fc-weifang")
            assert "days.0.aqi" in dl["reason"]  # the field and why
            assert rt.bridge is not None
            assert rt.bridge.counters.dead_lettered == 1

    asyncio.run(scenario())
