"""Fault matrix, gateway row (issue 13): a hostile corpus through ``envwatch gateway`` while a
well-behaved logger uploads, on real services — mosquitto for the samples, Tansu for the
``dead-letter`` topic.

The gateway runs as ``envwatch gateway`` does (:class:`streams.cli.gateway.GatewayService`) on a
copy of the shipped catalogue in which the outlet e-wf-01-g1 (MN 010000A8900016F000169D01) has
a password by reference (``{env: ENVWATCH_FAULT_HJ212_PW}``), with small limits so the test is
quick: 20 dead letters per connection, 50 per peer address (then a 600 s ban), 40 connections,
30 per address, 1 s for a started packet, 4 s idle. Distinct loopback addresses (127.0.0.x) stand for
distinct peers.

The corpus, each item with its expected dead letters (written from the limits above):

* 80 idle connections first (60 from one address, 20 from another): at most 30 per address and
  40 in all stay open — 30 + 10 = 40 evicted, 0 dead letters;
* the logger L (e-wf-01-g1, right PW) uploads 24 hours one packet at a time, interleaved with:
* one write of a packet with DataTime 9999-12-31 23:00 followed by two valid packets of the
  Laixi WWTP outlet e-lx-wwtp-w1 (no password): 1 ``field``, 2 published;
* 4 packets of L's MN with the wrong PW ``123456``: 4 ``wrong_password``, answered QnRtn=3;
* 3 packets of an MN the catalogue lacks: 3 ``unknown_mn``, answered QnRtn=4;
* a flood of 80 KB of ``##\\r\\n`` per connection from one address, reconnecting: 20 ``framing``
  + 1 ``dead_letter_limit`` on each of the first two connections, 10 ``framing`` + 1
  ``peer_banned`` on the third (50 for the address), the fourth refused;
* a slowloris sending a packet one byte per 0.1 s: 1 ``slow`` (the bytes it sent); another
  trickling only line ends: closed at the idle timeout, no dead letter.

Expected: L's 24 samples and the 2 valid WWTP samples on MQTT exactly once each, L's 24
packets each acknowledged (CN 9014 with its QN), and the dead-letter topic holding exactly
1 + 4 + 3 + 50 + 2 + 1 + 1 = 62 records with those reasons.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import threading
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

from ingest import hj212
from streams.cli.gateway import GatewayService
from streams.embedded import REPO, KafkaBroker, MqttBroker
from streams.settings import Settings
from tests.integration.bridge_helpers import read_topic

pytestmark = [pytest.mark.integration, pytest.mark.fault_matrix, pytest.mark.timeout(120)]

BEIJING = ZoneInfo("Asia/Shanghai")
PW = "L-pw-2026-12"
MN_L = "010000A8900016F000169D01"  # weifang.yaml: e-wf-01-g1 (gas)
MN_WWTP = "010000A8900016F000169F01"  # laixi.yaml: e-lx-wwtp-w1 (wastewater), no password
MN_UNKNOWN = "UNKNOWNMN000000000000001"
HOURS = 24


def gas(hour: int, *, pw: str = PW, mn: str = MN_L, qn_tail: str = "001") -> bytes:
    return hj212.build(
        st="31",
        cn="2061",
        mn=mn,
        pw=pw,
        qn=f"20261201{hour:02d}0500{qn_tail}",
        flag=hj212.make_flag(ack=True),
        cp={
            "DataTime": f"20261201{hour:02d}0000",
            "a21026-Avg": f"{20 + hour}",
            "a21026-Flag": "N",
        },
    )


def water(data_time: str, qn: str) -> bytes:
    return hj212.build(
        st="32",
        cn="2061",
        mn=MN_WWTP,
        qn=qn,
        flag=hj212.make_flag(ack=True),
        cp={"DataTime": data_time, "w01018-Avg": "25.5", "w01018-Flag": "N"},
    )


def catalogue(tmp: Path) -> Path:
    config = tmp / "config"
    config.mkdir()
    for f in (REPO / "deploy" / "config").glob("*.yaml"):
        text = f.read_text(encoding="utf-8")
        if f.name == "weifang.yaml":
            anchor = f'        mn: "{MN_L}"\n'
            assert anchor in text
            text = text.replace(
                anchor, anchor + "        password: {env: ENVWATCH_FAULT_HJ212_PW}\n"
            )
        (config / f.name).write_text(text, encoding="utf-8")
    return config


async def connect(port: int, ip: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(ip, 0))


async def answers(reader: asyncio.StreamReader, n: int) -> list[hj212.Packet]:
    return [hj212.parse(await asyncio.wait_for(reader.readuntil(b"\r\n"), 20)) for _ in range(n)]


async def until_closed(reader: asyncio.StreamReader) -> None:
    with contextlib.suppress(ConnectionError):
        while await asyncio.wait_for(reader.read(65536), 30):
            pass


def test_hostile_corpus_through_the_gateway_leaves_a_logger_whole_and_every_bad_item_kept(
    mqtt_broker: MqttBroker,
    kafka_broker: KafkaBroker,
    topic_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    monkeypatch.setenv("ENVWATCH_FAULT_HJ212_PW", PW)
    settings = Settings(
        kafka=kafka_broker.url,
        topic_prefix=topic_prefix,
        partitions=4,
        mqtt_host=mqtt_broker.host,
        mqtt_port=mqtt_broker.port,
        gateway_host="127.0.0.1",
        gateway_port=0,
        gateway_mqtt_client_id=f"{topic_prefix}gateway",
        gateway_metrics_port=0,
        gateway_packet_timeout=1.0,
        gateway_idle_timeout=4.0,
        gateway_max_dead_letters_per_connection=20,
        gateway_max_dead_letters_per_peer=50,
        gateway_ban_seconds=600,
        gateway_max_connections=40,
        gateway_max_connections_per_peer=30,
        config_dir=catalogue(tmp_path),
    )

    received: list[tuple[str, dict[str, object]]] = []
    subscribed = threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    sub.on_connect = lambda c, *_: c.subscribe("env/emission/#", qos=1)
    sub.on_subscribe = lambda *_: subscribed.set()
    sub.on_message = lambda _c, _u, m: received.append((m.topic, orjson.loads(m.payload)))
    sub.connect(mqtt_broker.host, mqtt_broker.port)
    sub.loop_start()
    got: dict[str, object] = {}
    bad_time = water("99991231230000", "20261201230500001")
    valid_water = [water("20261201080000", "20261201090500002"), water("20261201090000", "20261201100500003")]  # fmt: skip
    wrong_pw = [gas(h, pw="123456", qn_tail="009") for h in range(4)]
    unknown = [gas(h, mn=MN_UNKNOWN, pw="123456", qn_tail="010") for h in range(3)]

    async def scenario() -> None:
        service = GatewayService(settings)
        ready = asyncio.Event()
        task = asyncio.create_task(service.run(ready=ready))
        await asyncio.wait_for(ready.wait(), 30)
        port = service.address[1]
        gateway = service.gateway
        assert gateway is not None
        idle = []
        try:
            # many idle connections: the caps hold, by eviction
            for i in range(80):
                idle.append(await connect(port, "127.0.0.6" if i < 60 else "127.0.0.7"))
            await asyncio.sleep(0.2)
            got["after_idle"] = gateway.stats()

            async def logger() -> list[hj212.Packet]:
                reader, writer = await connect(port, "127.0.0.2")
                out = []
                for h in range(HOURS):
                    writer.write(gas(h))
                    await writer.drain()
                    out += await answers(reader, 1)
                    await asyncio.sleep(0.02)
                writer.close()
                return out

            async def one_write(ip: str, data: bytes, n: int) -> list[hj212.Packet]:
                reader, writer = await connect(port, ip)
                writer.write(data)
                await writer.drain()
                out = await answers(reader, n)
                writer.close()
                return out

            async def flood() -> None:
                for _ in range(3):
                    reader, writer = await connect(port, "127.0.0.3")
                    writer.write(b"##\r\n" * 20_000)
                    with contextlib.suppress(ConnectionError):
                        await writer.drain()
                    await until_closed(reader)
                    writer.close()
                reader, writer = await connect(port, "127.0.0.3")  # banned
                await until_closed(reader)
                writer.close()

            async def trickle(ip: str, data: bytes) -> None:
                reader, writer = await connect(port, ip)
                closed = asyncio.create_task(until_closed(reader))
                with contextlib.suppress(ConnectionError):
                    for byte in data:
                        if closed.done():
                            break
                        writer.write(bytes([byte]))
                        await writer.drain()
                        await asyncio.sleep(0.1)
                await closed
                writer.close()

            results = await asyncio.gather(
                logger(),
                one_write("127.0.0.8", bad_time + b"".join(valid_water), 3),
                one_write("127.0.0.9", b"".join(wrong_pw), 4),
                one_write("127.0.0.10", b"".join(unknown), 3),
                flood(),
                trickle("127.0.0.4", gas(5, mn=MN_WWTP)),
                trickle("127.0.0.5", b"\r\n" * 100),
            )
            got["logger"], got["water"], got["wrong_pw"], got["unknown"] = results[:4]
            got["dead"] = await read_topic(
                kafka_broker.bootstrap,
                f"{topic_prefix}dead-letter",
                until=lambda c: len(c.records) >= 62,
                within=30,
            )
            for _ in range(100):
                if len(received) >= HOURS + 2:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)  # anything more (a duplicate) would arrive by now
            got["stats"] = gateway.stats()
            assert service.metrics_address is not None
            r, w = await asyncio.open_connection(*service.metrics_address)
            w.write(b"GET /metrics HTTP/1.0\r\n\r\n")
            got["metrics"] = await asyncio.wait_for(r.read(), 10)
            w.close()
        finally:
            for _, w in idle:
                w.close()
            service.stop()
            await asyncio.wait_for(task, 30)

    try:
        assert subscribed.wait(15)
        asyncio.run(scenario())
    finally:
        sub.loop_stop()
        sub.disconnect()

    # the idle flood: per-address and global caps held by eviction, nothing refused
    after_idle = got["after_idle"]
    assert isinstance(after_idle, dict)
    assert (after_idle["connections_open"], after_idle["connections_evicted"]) == (40, 40)
    assert after_idle["connections_refused"] == 0

    # the logger: every packet acknowledged (9014, its own QN), every sample published once
    logger_replies = got["logger"]
    assert isinstance(logger_replies, list)
    assert [(r.cn, r.qn) for r in logger_replies] == [
        ("9014", hj212.parse(gas(h)).qn) for h in range(HOURS)
    ]
    published = Counter((topic, str(p["time"])) for topic, p in received)
    hour_end = [datetime(2026, 12, 1, h, tzinfo=BEIJING) + timedelta(hours=1) for h in range(HOURS)]
    expected = {("env/emission/weifang/e-wf-01-g1", t.isoformat()) for t in hour_end}
    expected |= {
        ("env/emission/laixi/e-lx-wwtp-w1", "2026-12-01T09:00:00+08:00"),
        ("env/emission/laixi/e-lx-wwtp-w1", "2026-12-01T10:00:00+08:00"),
    }
    assert published == Counter(expected)  # exactly once each, nothing else
    values = {str(p["time"]): p["values"] for t, p in received if t.endswith("e-wf-01-g1")}
    assert values["2026-12-01T08:00:00+08:00"] == {"so2": {"value": 27.0, "flag": "N"}}

    # the answers of the bad items (HJ 212-2017 表7 QnRtn where the standard has one)
    water_replies = got["water"]
    assert isinstance(water_replies, list)
    assert [(r.cn, r.qn) for r in water_replies] == [
        ("9014", "20261201230500001"),  # kept in the dead letters
        ("9014", "20261201090500002"),
        ("9014", "20261201100500003"),
    ]
    for key, code, n in (("wrong_pw", "3", 4), ("unknown", "4", 3)):
        rs = got[key]
        assert isinstance(rs, list)
        assert [(r.cn, r.cp["QnRtn"]) for r in rs] == [("9011", code)] * n

    # every bad item kept with its reason
    dead = got["dead"].records  # type: ignore[attr-defined]
    reasons = Counter(str(d["reason"]).split(":")[0] for d in dead)
    assert reasons == {
        "field": 1,
        "wrong_password": 4,
        "unknown_mn": 3,
        "framing": 50,
        "dead_letter_limit": 2,
        "peer_banned": 1,
        "slow": 1,
    }
    assert all(d["stage"] == "gateway" for d in dead)
    by_reason = {str(d["reason"]).split(":")[0]: d for d in dead}
    assert base64.b64decode(str(by_reason["field"]["payload_b64"])) == bad_time
    assert "99991231230000" in str(by_reason["field"]["reason"])
    for d in dead:  # no password, right or wrong, of a passworded MN in any dead letter
        raw = base64.b64decode(str(d["payload_b64"]))
        assert PW.encode() not in raw
        assert PW not in str(d["reason"])
        if str(d["reason"]).startswith("wrong_password"):
            assert b"PW=***" in raw
            assert b"123456" not in raw
    assert "peer 127.0.0.3 caused 50 dead letters" in str(by_reason["peer_banned"]["reason"])
    assert str(by_reason["slow"]["origin"]).startswith("tcp://127.0.0.4:")
    assert gas(5, mn=MN_WWTP).startswith(base64.b64decode(str(by_reason["slow"]["payload_b64"])))

    stats = got["stats"]
    assert isinstance(stats, dict)
    # 80 idle + L + 3 one-write connections + 3 flood connections + 2 trickles were admitted
    # (the fourth flood connection was refused by the ban); an admission at the cap of 40
    # evicted the quietest idle connection (how many found the cap full depends on how soon
    # the short connections ended), so never more than 40 were open and none was refused
    assert stats["connections_total"] == 89
    assert stats["connections_banned"] == 1
    assert 40 <= stats["connections_evicted"] <= 40 + 9
    assert stats["connections_peak"] == 40
    assert stats["connections_refused"] == stats["connections_refused_peer"] == 0
    assert (stats["slow_closed"], stats["dead_letter_limit_closed"], stats["peers_banned"]) == (
        1,
        2,
        1,
    )
    assert stats["idle_closed"] >= 1  # the line-end trickle (and idle connections) at 4 s
    assert stats["published"] == HOURS + 2
    metrics = got["metrics"]
    assert isinstance(metrics, bytes)
    assert (
        f"envwatch_gateway_connections_evicted_total {stats['connections_evicted']}\n".encode()
        in metrics
    )
    assert b"envwatch_gateway_dead_letter_wrong_password_total 4" in metrics
    assert b"envwatch_gateway_connections_max 40" in metrics
    assert b"envwatch_gateway_outlets_without_password " in metrics
