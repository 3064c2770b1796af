"""The HJ 212 gateway over real loopback TCP, with in-memory publisher and dead-letter sinks.

Expected values are written from the packets the tests build: an hourly packet with DataTime
hh:00 is the hour hh:00–hh+1:00 (HJ 212 §4.9) and is published with the label hh+1:00 +08:00;
a00000 flue-gas flow 2.5 m³/s is published as 2.5 × 3600 = 9000 m³/h.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson
import pytest

from ingest import hj212
from ingest.gateway import (
    DeadLetter,
    DeadLetterReason,
    Frame,
    Framer,
    Garbage,
    Gateway,
    GatewayConfig,
    MnTarget,
    PahoPublisher,
)
from rules.catalog import load_catalog
from rules.factors import Kind
from streams.cli.gateway import GatewayService
from streams.settings import Settings

LOGGERS = 50
HOURS = (8, 9, 10, 11)


def mn_of(i: int) -> str:
    return f"MN{i:04d}"


TARGETS = {mn_of(i): MnTarget("weifang", f"e-wf-{i:03d}", Kind.EMISSION) for i in range(LOGGERS)}


def so2_of(i: int, hour: int) -> float:
    return i + hour / 10  # logger 7 at 09:00 → 7.9 mg/m³


def hourly(i: int, hour: int, *, mn: str | None = None, code: str = "a21026") -> bytes:
    return hj212.build(
        st="31",
        cn="2061",
        mn=mn or mn_of(i),
        qn=f"20260115{hour:02d}0500{i % 1000:03d}",
        flag=hj212.make_flag(ack=True),
        cp={
            "DataTime": f"20260115{hour:02d}0000",
            f"{code}-Avg": f"{so2_of(i, hour)}",
            f"{code}-Flag": "N",
            "a00000-Avg": "2.5",
            "a00000-Flag": "N",
        },
    )


class Sinks:
    def __init__(self) -> None:
        self.published: list[tuple[str, dict]] = []
        self.dead: list[DeadLetter] = []

    async def publish(self, topic: str, payload: bytes) -> None:
        await asyncio.sleep(0)  # a real publisher yields to the loop
        self.published.append((topic, orjson.loads(payload)))

    def dead_letter(self, item: DeadLetter) -> None:
        self.dead.append(item)

    def reasons(self) -> Counter[str]:
        return Counter(d.reason.value for d in self.dead)


def run(
    body: Callable[[Gateway, Sinks], Awaitable[None]],
    config: GatewayConfig | None = None,
    publish: Callable[[Sinks], Callable[[str, bytes], Awaitable[None]]] | None = None,
) -> Sinks:
    sinks = Sinks()

    async def main() -> None:
        gateway = Gateway(
            TARGETS,
            publish(sinks) if publish else sinks.publish,
            sinks.dead_letter,
            config=config or GatewayConfig(),
        )
        async with gateway:
            await asyncio.wait_for(body(gateway, sinks), 60)

    asyncio.run(main())
    return sinks


async def read_reply(reader: asyncio.StreamReader) -> hj212.Packet:
    return hj212.parse(await asyncio.wait_for(reader.readuntil(b"\r\n"), 10))


async def logger(port: int, i: int) -> list[hj212.Packet]:
    """Logger i uploads its four hours, cutting its bytes three different ways."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    packets = [hourly(i, h) for h in HOURS]
    replies = []
    if i % 3 == 0:  # all four packets in one write
        writer.write(b"".join(packets))
        await writer.drain()
        replies = [await read_reply(reader) for _ in packets]
    elif i % 3 == 1:  # every packet cut into 7-byte pieces, sent apart
        for p in packets:
            for at in range(0, len(p), 7):
                writer.write(p[at : at + 7])
                await writer.drain()
                await asyncio.sleep(0)
            replies.append(await read_reply(reader))
    else:  # one packet per write, waiting for each ack (what a real logger does)
        for p in packets:
            writer.write(p)
            await writer.drain()
            replies.append(await read_reply(reader))
    writer.close()
    await writer.wait_closed()
    return replies


async def send_and_collect(port: int, data: bytes, replies: int) -> list[hj212.Packet]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    got = [await read_reply(reader) for _ in range(replies)]
    writer.close()
    await writer.wait_closed()
    return got


def test_50_concurrent_loggers_and_bad_packets() -> None:
    bad_crc = hourly(1, 12)[:-6] + b"0000\r\n"
    wrong_length = b"##0999" + hourly(2, 12)[6:]
    unknown_mn = hourly(3, 12, mn="MN9999")
    unknown_code = hourly(4, 12, code="zz001")
    after_garbage = hourly(5, 12)
    replies: dict[str, list[hj212.Packet]] = {}

    async def body(gateway: Gateway, sinks: Sinks) -> None:
        port = gateway.address[1]
        results = await asyncio.gather(
            *(logger(port, i) for i in range(LOGGERS)),
            send_and_collect(port, bad_crc, 1),
            send_and_collect(port, wrong_length + hourly(2, 13), 1),
            send_and_collect(port, unknown_mn, 1),
            send_and_collect(port, unknown_code, 1),
            send_and_collect(port, b"hello\r\n##junk" + after_garbage, 1),
        )
        replies["good"] = [r for rs in results[:LOGGERS] for r in rs]
        replies["crc"], replies["length"], replies["mn"], replies["code"], replies["garbage"] = (
            results[LOGGERS:]
        )

    sinks = run(body)

    # every upload of every logger was published once, with its own values and label
    by_key = {(t, p["time"]): p for t, p in sinks.published}
    for i in range(LOGGERS):
        for h in HOURS:
            payload = by_key.pop(
                (f"env/emission/weifang/e-wf-{i:03d}", f"2026-01-15T{h + 1:02d}:00:00+08:00")
            )
            assert payload["interval"] == "hour"
            assert payload["values"]["so2"] == {"value": pytest.approx(so2_of(i, h)), "flag": "N"}
            assert payload["values"]["flow"] == {"value": pytest.approx(9000.0), "flag": "N"}
    # plus the packets that followed the length error and the garbage
    assert sorted(p["source"] for p in by_key.values()) == ["e-wf-002", "e-wf-005"]
    assert len(sinks.published) == LOGGERS * len(HOURS) + 2

    # each logger got a 9014 acknowledgement echoing each packet's QN
    assert all(r.cn == "9014" for r in replies["good"])
    assert len({(r.mn, r.qn) for r in replies["good"]}) == LOGGERS * len(HOURS)

    assert sinks.reasons() == {
        "crc": 1,
        "length": 1,
        "unknown_mn": 1,
        "unknown_code": 1,
        "framing": 2,  # "hello" and the cut-off "##junk"
    }
    dead = {d.reason: d for d in sinks.dead}
    assert dead[DeadLetterReason.CRC].raw == bad_crc
    assert dead[DeadLetterReason.LENGTH].raw == wrong_length
    assert dead[DeadLetterReason.UNKNOWN_MN].mn == "MN9999"
    assert dead[DeadLetterReason.UNKNOWN_CODE].raw == unknown_code
    assert "zz001" in dead[DeadLetterReason.UNKNOWN_CODE].detail
    assert all(d.peer.startswith("127.0.0.1:") for d in sinks.dead)
    # replies: QnRtn=9 for the CRC error and QnRtn=4 (MN错误) for the unknown MN (HJ 212-2017
    # 表7); the length error gets none, so the first reply on that connection is the ack of the
    # next packet; kept packets are acked
    assert (replies["crc"][0].cn, replies["crc"][0].cp["QnRtn"]) == ("9011", "9")
    assert replies["length"][0].qn == hj212.parse(hourly(2, 13)).qn
    assert (replies["mn"][0].cn, replies["mn"][0].cp["QnRtn"]) == ("9011", "4")
    assert replies["code"][0].cn == "9014"
    assert replies["garbage"][0].qn == hj212.parse(after_garbage).qn


def test_slow_and_garbage_senders_do_not_hold_up_the_others() -> None:
    state: dict[str, object] = {}

    async def body(gateway: Gateway, sinks: Sinks) -> None:
        port = gateway.address[1]
        # a logger that sends half a packet and then nothing
        _slow_reader, slow_writer = await asyncio.open_connection("127.0.0.1", port)
        slow_writer.write(hourly(0, 8)[:40])
        await slow_writer.drain()
        # a client that floods random bytes until the others are done
        stop = asyncio.Event()

        async def flood() -> None:
            # the gateway closes this connection at its dead-letter limit (100 by default)
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            rng = random.Random(7)
            with contextlib.suppress(ConnectionError):
                while not stop.is_set():
                    writer.write(bytes(rng.randrange(256) for _ in range(4096)))
                    await writer.drain()
                    await asyncio.sleep(0)
            writer.close()

        flooder = asyncio.create_task(flood())
        await asyncio.sleep(0.05)
        done = await asyncio.gather(*(logger(port, i) for i in range(20)))
        state["acks"] = sum(len(r) for r in done)
        # the slow logger's connection is still open: nobody had to wait for it to go away
        state["slow_open"] = gateway.stats()["connections_open"] >= 2
        stop.set()
        await flooder
        slow_writer.close()

    sinks = run(body)
    assert state["acks"] == 20 * len(HOURS)
    assert state["slow_open"]
    assert len(sinks.published) == 20 * len(HOURS)
    # the noise went to the dead-letter sink, never into a sample
    assert set(sinks.reasons()) <= {
        "framing",
        "oversize",
        "length",
        "crc",
        "field",
        "missing_field",
        "encoding",
        "invalid",
        "dead_letter_limit",
    }
    assert sinks.reasons()["framing"] + sinks.reasons()["oversize"] > 0
    # and the slow logger's half packet was dead-lettered when it hung up
    assert any(d.raw == hourly(0, 8)[:40] for d in sinks.dead)


def test_idle_connection_is_closed_after_the_timeout() -> None:
    state: dict[str, object] = {}

    async def body(gateway: Gateway, sinks: Sinks) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.address[1])
        state["eof"] = await asyncio.wait_for(reader.read(), 10)  # b"" when the server closes
        state["stats"] = gateway.stats()
        writer.close()

    run(body, config=GatewayConfig(idle_timeout=0.2))
    assert state["eof"] == b""
    stats = state["stats"]
    assert isinstance(stats, dict)
    assert stats["idle_closed"] == 1


def test_publish_failure_dead_letters_and_withholds_the_ack() -> None:
    state: dict[str, object] = {}
    calls = {"n": 0}

    def flaky(sinks: Sinks) -> Callable[[str, bytes], Awaitable[None]]:
        async def publish(topic: str, payload: bytes) -> None:
            calls["n"] += 1
            if calls["n"] == 1:
                raise ConnectionError("broker away")
            await sinks.publish(topic, payload)

        return publish

    async def body(gateway: Gateway, sinks: Sinks) -> None:
        # first packet: publish fails → no ack; the logger resends after its timeout (表1) and
        # the second attempt is published and acknowledged
        state["replies"] = await send_and_collect(
            gateway.address[1], hourly(1, 8) + hourly(1, 8), 1
        )

    sinks = run(body, publish=flaky)
    assert sinks.reasons() == {"publish_failed": 1}
    assert len(sinks.published) == 1
    replies = state["replies"]
    assert isinstance(replies, list)
    assert replies[0].cn == "9014"


def test_split_upload_is_published_as_one_sample() -> None:
    cp1 = {"DataTime": "20260115080000", "a21026-Avg": "12", "a21026-Flag": "N"}
    cp2 = {"DataTime": "20260115080000", "a21002-Avg": "40", "a21002-Flag": "M"}
    flag = hj212.make_flag(ack=True, split=True)
    parts = [
        hj212.build(
            st="31", cn="2061", mn=mn_of(3), qn="20260115090000000", flag=flag, pnum=2, pno=n, cp=cp
        )
        for n, cp in ((2, cp2), (1, cp1))
    ]

    async def body(gateway: Gateway, sinks: Sinks) -> None:
        await send_and_collect(gateway.address[1], b"".join(parts), 2)

    sinks = run(body)
    assert len(sinks.published) == 1
    topic, payload = sinks.published[0]
    assert topic == "env/emission/weifang/e-wf-003"
    assert payload["time"] == "2026-01-15T09:00:00+08:00"
    assert payload["values"] == {
        "so2": {"value": 12.0, "flag": "N"},
        "nox": {"value": 40.0, "flag": "M"},
    }


def test_heartbeat_is_acknowledged_but_not_published() -> None:
    beat = hj212.build(st="91", cn="9015", mn=mn_of(0), qn="20260115090000000", flag=9)

    async def body(gateway: Gateway, sinks: Sinks) -> None:
        replies = await send_and_collect(gateway.address[1], beat, 1)
        assert replies[0].cn == "9014"
        assert replies[0].flag == 8  # a 2025 logger gets a 2025 reply
        assert gateway.stats()["cn.9015"] == 1

    sinks = run(body)
    assert sinks.published == []
    assert sinks.dead == []


def test_stop_closes_open_connections() -> None:
    state: dict[str, object] = {}

    async def main() -> None:
        sinks = Sinks()
        gateway = Gateway(TARGETS, sinks.publish, sinks.dead_letter)
        await gateway.start()
        conns = [await asyncio.open_connection("127.0.0.1", gateway.address[1]) for _ in range(5)]
        conns[0][1].write(hourly(0, 8))
        await conns[0][1].drain()
        state["ack"] = await read_reply(conns[0][0])
        await asyncio.wait_for(gateway.stop(grace=5), 10)
        state["eofs"] = [await asyncio.wait_for(r.read(), 5) for r, _ in conns]
        state["open"] = gateway.stats()["connections_open"]
        for _, w in conns:
            w.close()

    asyncio.run(main())
    assert state["eofs"] == [b""] * 5
    assert state["open"] == 0


# ----------------------------------------------------------------- the framer on its own


def test_framer_handles_several_packets_per_read_and_packets_across_reads() -> None:
    a, b = hourly(1, 8), hourly(2, 9)
    framer = Framer(GatewayConfig().max_frame)
    assert framer.feed(a + b[:10]) == [Frame(a)]
    assert framer.feed(b[10:]) == [Frame(b)]
    assert len(framer) == 0
    assert framer.flush() is None


def test_framer_resyncs_on_the_next_header() -> None:
    a = hourly(1, 8)
    framer = Framer(GatewayConfig().max_frame)
    out = framer.feed(b"noise" + a[:30] + a + b"\r\n\r\n#")
    assert out == [
        Garbage(b"noise", DeadLetterReason.FRAMING, "bytes before '##'"),
        Garbage(a[:30], DeadLetterReason.FRAMING, "packet cut off by the next '##'"),
        Frame(a),
    ]
    # a lone trailing '#' is kept: it may be the start of the next '##'
    assert framer.feed(a[1:]) == [Frame(a)]


def test_framer_never_buffers_more_than_a_packet() -> None:
    framer = Framer(100)
    out = framer.feed(b"##" + b"x" * 500)
    assert [g.reason for g in out if isinstance(g, Garbage)] == [DeadLetterReason.OVERSIZE]
    assert len(framer) == 0
    out = framer.feed(b"##" + b"y" * 200 + b"\r\n")
    assert [g.reason for g in out if isinstance(g, Garbage)] == [DeadLetterReason.OVERSIZE]
    # 2 + 4 + 1024 + 4 + 2 = 1036 bytes: the largest packet HJ 212-2017 表2 allows
    assert GatewayConfig().max_frame == 1036


# ----------------------------------------------------------------- through a real broker


@pytest.mark.integration
def test_gateway_publishes_to_mosquitto_with_qos1(mqtt_broker) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    received: list[tuple[str, dict]] = []
    subscribed = threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    sub.on_connect = lambda c, *_: c.subscribe("env/emission/weifang/#", qos=1)
    sub.on_subscribe = lambda *_: subscribed.set()
    sub.on_message = lambda _c, _u, m: received.append((m.topic, orjson.loads(m.payload)))
    sub.connect(mqtt_broker.host, mqtt_broker.port)
    sub.loop_start()
    try:
        assert subscribed.wait(15)

        async def main() -> None:
            publisher = PahoPublisher(mqtt_broker.host, mqtt_broker.port)
            await publisher.connect()
            sinks = Sinks()
            try:
                async with Gateway(TARGETS, publisher.publish, sinks.dead_letter) as gateway:
                    port = gateway.address[1]
                    await asyncio.gather(*(logger(port, i) for i in range(LOGGERS)))
                    assert gateway.stats()["published"] == LOGGERS * len(HOURS)
            finally:
                await publisher.close()

        asyncio.run(main())
        deadline = threading.Event()
        for _ in range(100):
            if len(received) >= LOGGERS * len(HOURS):
                break
            deadline.wait(0.1)
    finally:
        sub.loop_stop()
        sub.disconnect()
    assert len(received) == LOGGERS * len(HOURS)
    got = {(t, p["time"]): p["values"]["so2"]["value"] for t, p in received}
    assert got[("env/emission/weifang/e-wf-007", "2026-01-15T10:00:00+08:00")] == pytest.approx(
        so2_of(7, 9)
    )


@pytest.mark.integration
def test_publisher_speaks_mqtt_311_to_a_broker_without_v5() -> None:
    """amqtt (the embedded default's pure-Python fallback) has no MQTT v5: the publisher asks
    first and connects with 3.1.1, and its first publish gets its PUBACK (it used to connect
    with v5, take amqtt's refusal for a connection and time out on the first publish)."""
    import time

    import paho.mqtt.client as mqtt

    from streams import embedded

    with embedded.amqtt_broker() as broker:

        async def main() -> float:
            publisher = PahoPublisher(broker.host, broker.port, timeout=10)
            await publisher.connect()
            try:
                assert publisher.protocol == mqtt.MQTTv311
                started = time.monotonic()
                await publisher.publish("env/emission/weifang/e-wf-001", b'{"probe": 1}')
                return time.monotonic() - started
            finally:
                await publisher.close()

        assert asyncio.run(main()) < 5


def test_publisher_reports_a_refused_connection_at_once() -> None:
    """A broker that answers CONNECT with "not authorised" (MQTT v5 CONNACK reason 0x87):
    ``connect`` raises ConnectionError naming the refusal, without waiting for its timeout."""
    import time

    async def main() -> None:
        async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(1024)  # the CONNECT
            writer.write(bytes([0x20, 0x03, 0x00, 0x87, 0x00]))  # CONNACK, 0x87, no properties
            await writer.drain()
            await asyncio.sleep(0.5)
            writer.close()

        server = await asyncio.start_server(refuse, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        publisher = PahoPublisher("127.0.0.1", port, timeout=30)
        started = time.monotonic()
        try:
            with pytest.raises(ConnectionError, match="refused: Not authorized"):
                await publisher.connect()
            assert time.monotonic() - started < 5
        finally:
            await publisher.close()
            server.close()
            await server.wait_closed()

    asyncio.run(main())


# ------------------------------------------------------------------ envwatch gateway: MNs


def test_envwatch_gateway_finds_a_loggers_outlet_by_its_mn_in_the_catalogue() -> None:
    # deploy/config/weifang.yaml: enterprise e-wf-01 (locality weifang), outlet e-wf-01-g1 with
    # MN 010000A8900016F000169D01; deploy/config/laixi.yaml: the WWTP outlet e-lx-wwtp-w1 with
    # MN 010000A8900016F000169F01
    catalog = load_catalog(Path(__file__).resolve().parents[2] / "deploy" / "config")
    service = GatewayService(Settings(), catalog)
    lookup = service._lookup  # what the service hands to Gateway
    stack = MnTarget("weifang", "e-wf-01-g1", Kind.EMISSION)
    assert lookup("010000A8900016F000169D01") == stack
    assert lookup("010000a8900016f000169d01") == stack  # an MN is matched case-insensitively
    assert lookup("010000A8900016F000169F01") == MnTarget("laixi", "e-lx-wwtp-w1", Kind.EMISSION)
    assert lookup("UNKNOWNMN00000000000001") is None  # → dead letter unknown_mn
