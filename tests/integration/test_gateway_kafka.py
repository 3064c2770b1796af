"""50 concurrent HJ 212 loggers → gateway → mosquitto → bridge → Kafka, with real services.

The gateway runs as ``envwatch gateway`` does (:class:`streams.cli.gateway.GatewayService`: MNs
from the shipped catalogue deploy/config, QoS1 publisher, dead letters to Kafka), next to the
bridge, in this process. Fifty loggers connect at once; logger ``i`` speaks for the outlet with
the catalogue's ``i mod 11``-th MN and uploads four hourly packets (CN 2061) for the hours
``4i … 4i+3`` after 2026-01-15 00:00 Beijing time, asking for an acknowledgement (Flag bit A).

Expected values, written down from the packets the test builds:

* time label: HJ 212 labels an hourly value by the *start* of its hour, envwatch by the *end*
  (architecture.md §5), so DataTime 2026-01-15 05:00 (hour 4·1+1 of logger 1) becomes
  ``2026-01-15T06:00:00+08:00``;
* gas outlets: SO2 (a21026) = i + k/10 mg/m³ (logger 7, 3rd hour → 7.2), NOx (a21002) = 100 + i,
  flue-gas flow (a00000) 2.5 m³/s → 2.5 × 3600 = 9000 m³/h;
* wastewater outlets: COD (w01018) = 20 + i + k/10 mg/L, NH3-N (w21003) = 1.5 mg/L;
* source = the outlet id, locality = the enterprise's locality, kind = emission.

Three more connections send a packet with a wrong CRC, a packet from an MN the catalogue lacks,
and plain garbage: each ends in the Kafka ``dead-letter`` topic with stage ``gateway``, its reason,
the peer address and the raw bytes.
"""

from __future__ import annotations

import asyncio
import base64
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ingest import hj212
from ingest.bridge import Bridge
from rules.catalog import Enterprise, Outlet, OutletType, load_catalog
from streams.cli.gateway import GatewayService
from streams.embedded import REPO, KafkaBroker, MqttBroker
from streams.settings import Settings
from tests.integration.bridge_helpers import read_topic

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

BEIJING = ZoneInfo("Asia/Shanghai")
DAY = datetime(2026, 1, 15, tzinfo=BEIJING)
LOGGERS = 50
HOURS_EACH = 4
CATALOG = load_catalog(REPO / "deploy" / "config")
OUTLETS = sorted(
    ((ent, out) for ent in CATALOG.enterprises for out in ent.outlets), key=lambda eo: eo[1].mn
)


def outlet_of(i: int) -> tuple[Enterprise, Outlet]:
    return OUTLETS[i % len(OUTLETS)]


def start_of(i: int, k: int) -> datetime:
    return DAY + timedelta(hours=HOURS_EACH * i + k)


def packet(i: int, k: int, *, mn: str | None = None) -> bytes:
    _, out = outlet_of(i)
    if out.type is OutletType.GAS:
        cp = {"a21026-Avg": f"{i + k / 10}", "a21002-Avg": f"{100 + i}", "a00000-Avg": "2.5"}
    else:
        cp = {"w01018-Avg": f"{20 + i + k / 10}", "w21003-Avg": "1.5"}
    cp = {**cp, **{code.replace("-Avg", "-Flag"): "N" for code in cp}}
    return hj212.build(
        st="31" if out.type is OutletType.GAS else "32",
        cn="2061",
        mn=mn or out.mn,
        qn=f"{start_of(i, k):%Y%m%d%H}0000{i:03d}",
        flag=hj212.make_flag(ack=True),
        cp={"DataTime": f"{start_of(i, k):%Y%m%d%H%M%S}", **cp},
    )


def expected(i: int, k: int) -> dict[str, object]:
    ent, out = outlet_of(i)
    if out.type is OutletType.GAS:
        values = {"so2": i + k / 10, "nox": 100.0 + i, "flow": 2.5 * 3600}
    else:
        values = {"cod": 20 + i + k / 10, "nh3n": 1.5}
    return {
        "kind": "emission",
        "locality": ent.locality,
        "source": out.id,
        "time": (start_of(i, k) + timedelta(hours=1)).isoformat(),
        "interval": "hour",
        "values": {f: {"value": v, "flag": "N"} for f, v in values.items()},
    }


async def logger(port: int, i: int) -> list[hj212.Packet]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    replies = []
    for k in range(HOURS_EACH):
        writer.write(packet(i, k))
        await writer.drain()
        replies.append(hj212.parse(await asyncio.wait_for(reader.readuntil(b"\r\n"), 30)))
    writer.close()
    await writer.wait_closed()
    return replies


async def send_only(port: int, data: bytes) -> None:
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    await asyncio.sleep(0.5)  # let the gateway read it before the connection closes
    writer.close()
    await writer.wait_closed()


def test_50_concurrent_loggers_reach_kafka_and_bad_packets_the_dead_letter_topic(
    mqtt_broker: MqttBroker, kafka_broker: KafkaBroker, topic_prefix: str
) -> None:
    assert len(OUTLETS) >= 2, "the shipped catalogue lost its outlets with MNs"
    settings = Settings(
        kafka=kafka_broker.url,
        topic_prefix=topic_prefix,
        partitions=4,
        mqtt_host=mqtt_broker.host,
        mqtt_port=mqtt_broker.port,
        mqtt_client_id=f"{topic_prefix}bridge",
        mqtt_share_group=None,
        mqtt_topic="env/emission/#",
        mqtt_session_expiry=60,
        gateway_host="127.0.0.1",
        gateway_port=0,
        gateway_mqtt_client_id=f"{topic_prefix}gateway",
        gateway_metrics_port=0,
        config_dir=REPO / "deploy" / "config",
    )
    good = packet(0, 0)
    bad_crc = good[:-6] + (b"0000" if good[-6:-2] != b"0000" else b"FFFF") + b"\r\n"
    unknown_mn = packet(1, 0, mn="UNKNOWNMN00000000000001")
    garbage = b"this is not an HJ 212 packet\r\n"

    async def scenario() -> tuple[list[list[hj212.Packet]], object, object, bytes]:
        bridge = Bridge(settings)
        bridge_ready = asyncio.Event()
        bridge_task = asyncio.create_task(bridge.run(ready=bridge_ready))
        await asyncio.wait_for(bridge_ready.wait(), 30)
        service = GatewayService(settings)
        gw_ready = asyncio.Event()
        gw_task = asyncio.create_task(service.run(ready=gw_ready))
        await asyncio.wait_for(gw_ready.wait(), 30)
        port = service.address[1]
        try:
            replies, *_ = await asyncio.gather(
                asyncio.gather(*(logger(port, i) for i in range(LOGGERS))),
                send_only(port, bad_crc),
                send_only(port, unknown_mn),
                send_only(port, garbage),
            )
            readings = await read_topic(
                kafka_broker.bootstrap,
                f"{topic_prefix}readings",
                until=lambda c: len(c.records) >= LOGGERS * HOURS_EACH,
                within=30,
            )
            dead = await read_topic(
                kafka_broker.bootstrap,
                f"{topic_prefix}dead-letter",
                until=lambda c: len(c.records) >= 3,
                within=15,
            )
            assert service.metrics_address is not None
            host, mport = service.metrics_address
            r, w = await asyncio.open_connection(host, mport)
            w.write(b"GET /metrics HTTP/1.0\r\n\r\n")
            metrics = await r.read()
            w.close()
        finally:
            service.stop()
            await asyncio.wait_for(gw_task, 30)
            bridge.stop()
            await asyncio.wait_for(bridge_task, 30)
        return replies, readings, dead, metrics

    replies, readings, dead, metrics = asyncio.run(scenario())

    # every logger got its four data acknowledgements (CN 9014), each for its own packet's QN
    for i, got in enumerate(replies):
        assert [p.cn for p in got] == ["9014"] * HOURS_EACH, i
        assert [p.qn for p in got] == [hj212.parse(packet(i, k)).qn for k in range(HOURS_EACH)]

    records = readings.records  # type: ignore[attr-defined]
    assert len(records) == LOGGERS * HOURS_EACH  # no sample lost, none duplicated
    by_key = {(r["source"], r["time"]): r for r in records}
    for i in range(LOGGERS):
        for k in range(HOURS_EACH):
            want = expected(i, k)
            got = by_key.get((want["source"], want["time"]))
            assert got is not None, f"logger {i} hour {k} missing"
            assert {key: got[key] for key in want} == want

    dead_records = dead.records  # type: ignore[attr-defined]
    assert len(dead_records) == 3
    by_reason = {str(d["reason"]).split(":")[0]: d for d in dead_records}
    assert set(by_reason) == {"crc", "unknown_mn", "framing"}
    for reason, raw in (("crc", bad_crc), ("unknown_mn", unknown_mn), ("framing", garbage)):
        d = by_reason[reason]
        assert d["stage"] == "gateway"
        assert str(d["origin"]).startswith("tcp://127.0.0.1:")
        assert base64.b64decode(str(d["payload_b64"])) == raw  # the bytes as received, CRLF too
    assert "UNKNOWNMN00000000000001" in str(by_reason["unknown_mn"]["reason"])

    assert b"envwatch_gateway_published_total 200" in metrics
    assert b"envwatch_gateway_dead_letter_crc_total 1" in metrics
