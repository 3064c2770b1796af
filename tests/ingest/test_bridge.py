"""The bridge's pure parts: validation into canonical JSON, dead-letter reasons, metrics text;
paho driven from the loop against a fake broker; and the bridge against amqtt, a real broker
without MQTT v5 (the embedded default's fallback)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import datetime, timedelta, timezone

import orjson
import paho.mqtt.client as mqtt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import ValidationError

from ingest.bridge import (
    MAX_PAYLOAD,
    Bridge,
    _canonical_key,
    _PahoOnLoop,
    normalise,
    prometheus_text,
    serve_metrics,
    topic_source,
)
from ingest.publisher import Publisher
from ingest.schemas import Sample
from streams import embedded, topics
from streams.settings import Settings
from tests.integration.bridge_helpers import (
    first_occurrences_in_order,
    locality_of,
    pm25_seq,
    read_topic,
    sample_payload,
    stream,
)

TOPIC = "env/air/weifang/aq-wf-001"


def body(**changes: object) -> bytes:
    d: dict[str, object] = {
        "kind": "air",
        "locality": "weifang",
        "source": "aq-wf-001",
        "time": "2026-11-22T09:00:00+08:00",
        "values": {"pm25": {"value": 35}},
    }
    d.update(changes)
    return orjson.dumps(d)


def test_valid_sample_becomes_canonical_json_keyed_by_source() -> None:
    key, value = normalise(TOPIC, body())
    assert key == b"aq-wf-001"
    # defaults written out: schema 1, interval hour, flag N; the integer 35 as a float
    assert orjson.loads(value) == {
        "schema": 1,
        "kind": "air",
        "locality": "weifang",
        "source": "aq-wf-001",
        "time": "2026-11-22T09:00:00+08:00",
        "interval": "hour",
        "values": {"pm25": {"value": 35.0, "flag": "N"}},
    }


@pytest.mark.parametrize(
    ("topic", "payload", "names"),
    [
        (TOPIC, b"\xff\xfe not json", "invalid sample"),
        (TOPIC, body(time="2026-11-22T09:00:00"), "time"),  # naive time
        (TOPIC, body(values={"pm2.5": {"value": 1}}), "pm2.5"),  # unknown factor
        (TOPIC, body(values={}), "values"),
        (TOPIC, body(extra=1), "extra"),
        ("env/air/weifang/other", body(), "does not match"),
        (TOPIC, b" " * (MAX_PAYLOAD + 1), "exceeds"),
    ],
)
def test_invalid_input_is_refused_with_a_reason_naming_the_problem(
    topic: str, payload: bytes, names: str
) -> None:
    with pytest.raises(ValueError) as info:
        normalise(topic, payload)
    assert names in str(info.value)


def test_topic_source() -> None:
    assert topic_source(TOPIC) == "aq-wf-001"
    assert topic_source("env/air/weifang") is None
    assert topic_source("other/air/weifang/x") is None


def test_prometheus_text_format() -> None:
    text = prometheus_text([("a_total", "counter", "things", 3), ("b", "gauge", "now", 0.5)])
    assert text == (
        b"# HELP a_total things\n# TYPE a_total counter\na_total 3\n"
        b"# HELP b now\n# TYPE b gauge\nb 0.5\n"
    )


def test_metrics_server_answers_get_metrics_and_404_elsewhere() -> None:
    async def main() -> tuple[bytes, bytes]:
        server = await serve_metrics(lambda: b"x 1\n", "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]

        async def get(path: str) -> bytes:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            data = await r.read()
            w.close()
            return data

        try:
            return await get("/metrics"), await get("/nope")
        finally:
            server.close()

    ok, missing = asyncio.run(main())
    assert ok.startswith(b"HTTP/1.0 200 OK")
    assert ok.endswith(b"\r\n\r\nx 1\n")
    assert b"version=0.0.4" in ok
    assert missing.startswith(b"HTTP/1.0 404")


# ------------------------------------------------------------------ fast path vs the model
#
# normalise() forwards a payload that already is canonical JSON without asking pydantic
# (_canonical_key). The model stays the judge: whatever the fast path accepts, the model must
# accept too and write back byte for byte, and normalise() as a whole must say what the model
# says about every payload. The reference below uses the model only.


def model_verdict(topic: str, payload: bytes) -> tuple[bytes, bytes] | None:
    """(key, canonical JSON) as the model alone decides, or None when it refuses."""
    try:
        sample = Sample.model_validate_json(payload)
    except ValidationError:
        return None
    if topic != f"env/{sample.kind.value}/{sample.locality}/{sample.source}":
        return None
    return sample.source.encode(), sample.model_dump_json(by_alias=True).encode()


def canonical(
    kind: str = "air",
    locality: str = "weifang",
    source: str = "aq-wf-001",
    time: str = "2026-11-22T09:00:00+08:00",
    interval: str = "hour",
    values: dict[str, object] | None = None,
) -> tuple[str, bytes]:
    """(topic, payload) of a sample written the canonical way: every field, in model order."""
    payload = orjson.dumps(
        {
            "schema": 1,
            "kind": kind,
            "locality": locality,
            "source": source,
            "time": time,
            "interval": interval,
            "values": values or {"pm25": {"value": 35.0, "flag": "N"}},
        }
    )
    return f"env/{kind}/{locality}/{source}", payload


CANONICAL = [
    canonical(),
    canonical(values={"pm25": {"value": None, "flag": "M"}, "o3": {"value": -0.5, "flag": "D"}}),
    canonical(values={f: {"value": 1e-7, "flag": "N"} for f in ("so2", "no2", "co", "pm10")}),
    canonical(values={"pm25": {"value": 1.7976931348623157e308, "flag": "T"}}),
    canonical(kind="water", source="ws.01:a_b-c", values={"ph": {"value": 7.25, "flag": "B"}}),
    canonical(kind="emission", interval="min", values={"nox": {"value": 120.0, "flag": "C"}}),
    canonical(kind="monitor", interval="rt", values={"dustfall": {"value": 3.0, "flag": "F"}}),
    canonical(kind="forecast", interval="day", values={"aqi": {"value": 88.0, "flag": "S"}}),
    canonical(time="2026-11-22T01:00:00Z"),
    canonical(time="2024-02-29T23:59:59-09:30"),
    canonical(time="2026-01-01T00:00:00+23:59"),
    canonical(time="2026-01-01T00:00:00-00:01"),
    canonical(locality="a" * 64, source="B" * 64),
    canonical(locality="0", source="9"),
]

# Valid for the model, but not written the way the model writes them: the model re-serialises.
NOT_CANONICAL_BUT_VALID = [
    (TOPIC, body()),  # no schema, interval or flag; value an integer
    (TOPIC, canonical()[1].replace(b"35.0", b"35")),
    (TOPIC, canonical()[1].replace(b"35.0", b"3.5e1")),
    (TOPIC, canonical()[1].replace(b'"schema":1,', b"")),
    (TOPIC, canonical()[1].replace(b'"schema":1', b'"schema_version":1')),
    (TOPIC, canonical()[1].replace(b',"flag":"N"', b"")),
    (TOPIC, canonical()[1].replace(b'"schema":1,"kind":"air"', b'"kind":"air","schema":1')),
    (TOPIC, canonical()[1].replace(b",", b", ")),
    (TOPIC, b" " + canonical()[1] + b"\n"),
    (TOPIC, canonical()[1].replace(b'"air"', b'"\\u0061ir"')),
    (TOPIC, canonical()[1].replace(b"+08:00", b"+00:00")),
    (TOPIC, canonical()[1].replace(b"+08:00", b"-00:00")),
    (TOPIC, canonical()[1].replace(b"+08:00", b"+0800")),
    (TOPIC, canonical()[1].replace(b":00+08:00", b":00.5+08:00")),
    (TOPIC, canonical()[1].replace(b"T09:00:00", b"t09:00:00")),
    (TOPIC, canonical()[1].replace(b"T09:00:00", b" 09:00:00")),
    (TOPIC, canonical()[1].replace(b"+08:00", b"z")),
    (TOPIC, canonical()[1].replace(b'"value":35.0,"flag":"N"', b'"flag":"N","value":35.0')),
    (TOPIC, canonical()[1].replace(b'"kind":"air"', b'"kind":"water","kind":"air"')),
    # pydantic's lax mode: true for 1, a number in a string, true for 1.0
    (TOPIC, canonical()[1].replace(b'"schema":1', b'"schema":true')),
    (TOPIC, canonical()[1].replace(b"35.0", b'"35.0"')),
    (TOPIC, canonical()[1].replace(b"35.0", b"true")),
]

INVALID = [
    *(
        (TOPIC, canonical()[1].replace(old, new))
        for old, new in [
            (b'"schema":1', b'"schema":2'),
            (b'"schema":1', b'"schema":"1"'),
            (b'"schema":1', b'"schema":null'),
            (b'"kind":"air"', b'"kind":"Air"'),
            (b'"kind":"air"', b'"kind":"noise"'),
            (b'"kind":"air",', b""),
            (b'"locality":"weifang"', b'"locality":"WeiFang"'),
            (b'"locality":"weifang"', b'"locality":7'),
            (b'"source":"aq-wf-001"', b'"source":"aq-wf-001\\n"'),
            (b'"time":"2026-11-22T09:00:00+08:00"', b'"time":"2026-11-22T09:00:00"'),
            (b'"time":"2026-11-22T09:00:00+08:00"', b'"time":"2026-11-22"'),
            (b'"time":"2026-11-22T09:00:00+08:00"', b'"time":null'),
            (b"2026-11-22T09", b"2026-02-29T09"),
            (b"2026-11-22T09", b"2026-11-31T09"),
            (b"2026-11-22T09", b"2026-13-22T09"),
            (b"T09:00:00", b"T24:00:00"),
            (b"T09:00:00", b"T09:60:00"),
            (b"T09:00:00", b"T09:00:60"),
            (b"+08:00", b"+24:00"),
            (b"+08:00", b"+08:75"),
            (b"+08:00", b"+08"),
            (b'"interval":"hour"', b'"interval":"week"'),
            (b'"interval":"hour"', b'"interval":"HOUR"'),
            (b'"values":{', b'"extra":1,"values":{'),
            (b'"pm25"', b'"pm2.5"'),
            (b'"pm25"', b'"dustfall"'),  # a monitor factor on an air source
            (b"35.0", b"NaN"),
            (b"35.0", b"Infinity"),
            (b"35.0", b"1e400"),
            (b"35.0", b"[35.0]"),
            (b'"flag":"N"', b'"flag":"n"'),
            (b'"flag":"N"', b'"flag":"X"'),
            (b'"flag":"N"', b'"flag":null'),
            (b'"flag":"N"', b'"flag":"N","note":"x"'),
            (b'{"value":35.0,"flag":"N"}', b"35.0"),
            (b'{"pm25":{"value":35.0,"flag":"N"}}', b"{}"),
            (b'{"pm25":{"value":35.0,"flag":"N"}}', b"[]"),
            (b"}}}", b"}}"),
        ]
    ),
    ("env/air/weifang/other", canonical()[1]),
    ("env/water/weifang/aq-wf-001", canonical()[1]),
    (TOPIC + "/x", canonical()[1]),
    canonical(locality="a" * 65),
    canonical(source="B" * 65),
    canonical(source="-starts-with-dash"),
    canonical(locality="under_score-OK-but-UPPER"),
    (TOPIC, b"[]"),
    (TOPIC, b'"text"'),
    (TOPIC, b"null"),
    (TOPIC, b""),
    (TOPIC, b"\xff\xfe not json"),
    (TOPIC, canonical()[1].replace(b"weifang", b"wei\xfffang")),
]


def test_the_corpus_says_what_it_means() -> None:
    """Each group really is what its name says, according to the model alone."""
    assert all(model_verdict(t, p) == (orjson.loads(p)["source"].encode(), p) for t, p in CANONICAL)
    assert all(
        model_verdict(t, p) not in (None, (b"aq-wf-001", p)) for t, p in NOT_CANONICAL_BUT_VALID
    )
    assert [model_verdict(t, p) for t, p in INVALID] == [None] * len(INVALID)


@pytest.mark.parametrize(("topic", "payload"), CANONICAL)
def test_canonical_payloads_take_the_fast_path_and_are_forwarded_as_they_came(
    topic: str, payload: bytes
) -> None:
    source = topic.rsplit("/", 1)[1]
    assert _canonical_key(topic, payload) == source.encode()
    assert normalise(topic, payload) == (source.encode(), payload)


@pytest.mark.parametrize(("topic", "payload"), CANONICAL + NOT_CANONICAL_BUT_VALID + INVALID)
def test_fast_path_and_model_agree(topic: str, payload: bytes) -> None:
    expected = model_verdict(topic, payload)
    fast = _canonical_key(topic, payload)
    if fast is not None:  # the fast path only ever accepts what the model writes back unchanged
        assert expected == (fast, payload)
    if expected is None:
        with pytest.raises(ValueError):
            normalise(topic, payload)
    else:
        assert normalise(topic, payload) == expected


@pytest.mark.parametrize(("topic", "payload"), NOT_CANONICAL_BUT_VALID + INVALID)
def test_everything_else_is_left_to_the_model(topic: str, payload: bytes) -> None:
    assert _canonical_key(topic, payload) is None


_IDS = st.from_regex(r"\A[a-z0-9][a-z0-9_-]{0,70}\Z")
_FLOATS = st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False))
_TIMES = st.datetimes(
    min_value=datetime(1, 1, 2),  # the bounds of an aware strategy are naive
    max_value=datetime(9999, 12, 30),
    timezones=st.builds(
        timezone,
        st.timedeltas(
            min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59)
        ).map(lambda d: timedelta(minutes=d // timedelta(minutes=1))),
    ),
)


@settings(max_examples=400, deadline=None)
@given(
    kind=st.sampled_from(["air", "water", "emission", "monitor", "forecast"]),
    locality=_IDS,
    source=_IDS,
    when=_TIMES,
    interval=st.sampled_from(["rt", "min", "hour", "day", "week"]),
    values=st.dictionaries(
        st.sampled_from(["pm25", "o3", "ph", "nox", "dustfall", "aqi", "bogus"]),
        st.fixed_dictionaries(
            {
                "value": _FLOATS,
                "flag": st.sampled_from(["N", "F", "M", "S", "D", "C", "T", "B", "n"]),
            }
        ),
        max_size=3,
    ),
    cut=st.integers(min_value=0, max_value=400),
    insert=st.sampled_from([b"", b" ", b"0", b"1", b"-", b".", b'"', b"e", b",", b"}"]),
)
def test_fast_path_never_accepts_what_the_model_would_not_write_back(
    kind: str,
    locality: str,
    source: str,
    when: datetime,
    interval: str,
    values: dict[str, object],
    cut: int,
    insert: bytes,
) -> None:
    """Generated samples, valid or not, and the same bytes with one character replaced."""
    topic, payload = canonical(kind, locality, source, when.isoformat(), interval, values)
    mutated = payload[:cut] + insert + payload[cut + 1 :]
    for p in (payload, mutated):
        fast = _canonical_key(topic, p)
        if fast is not None:
            assert model_verdict(topic, p) == (fast, p)


# ------------------------------------------------------------------ paho driven by the loop
#
# A fake broker on loopback that speaks just enough MQTT v5: it answers every CONNECT with a
# CONNACK and records the packet types it receives, so the test sees what the client sent.


class FakeBroker:
    def __init__(self) -> None:
        self.connections: list[list[int]] = []  # packet types received, per connection
        self.drop_first = True  # close the first connection right after its CONNACK

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen: list[int] = []
        self.connections.append(seen)
        try:
            while True:
                header = await reader.readexactly(1)
                length, shift = 0, 0
                while True:
                    byte = (await reader.readexactly(1))[0]
                    length |= (byte & 0x7F) << shift
                    shift += 7
                    if not byte & 0x80:
                        break
                await reader.readexactly(length)
                seen.append(header[0] >> 4)
                if header[0] >> 4 == 1:  # CONNECT → CONNACK: no session, success, no properties
                    writer.write(bytes([0x20, 3, 0, 0, 0]))
                    await writer.drain()
                    if self.drop_first and len(self.connections) == 1:
                        await asyncio.sleep(0.05)
                        break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def test_paho_on_the_loop_reconnects_after_a_drop_and_disconnects_cleanly_on_close() -> None:
    connects: list[bool] = []
    disconnects: list[object] = []

    async def main() -> FakeBroker:
        broker = FakeBroker()
        server = await asyncio.start_server(broker.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="t", protocol=mqtt.MQTTv5, manual_ack=True
        )
        twice = asyncio.Event()

        def on_connect(*_a: object) -> None:
            connects.append(True)
            if len(connects) == 2:
                twice.set()

        client.on_connect = on_connect
        client.on_disconnect = lambda *a: disconnects.append(a[3])
        paho = _PahoOnLoop(
            client,
            asyncio.get_running_loop(),
            progress=lambda: 0,
            after_read=lambda: None,
            min_delay=0.1,
        )
        await paho.start(lambda: client.connect("127.0.0.1", port, clean_start=False))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(twice.wait(), 10)
        await paho.close()
        await asyncio.sleep(0.3)  # nothing reconnects after close
        server.close()
        await server.wait_closed()
        return broker

    broker = asyncio.run(main())
    assert len(connects) == 2  # connected, dropped by the broker, reconnected
    assert len(disconnects) == 2  # the drop, then our close
    assert len(broker.connections) == 2
    assert broker.connections[0] == [1]  # CONNECT only
    assert broker.connections[1] == [1, 14]  # CONNECT, then DISCONNECT (14) on close


# ------------------------------------------------------------------ a broker without MQTT v5


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_on_a_broker_without_v5_the_bridge_speaks_3_1_1_with_a_persistent_session(
    kafka_broker: embedded.KafkaBroker, topic_prefix: str
) -> None:
    """amqtt, the embedded default's fallback, refuses MQTT v5 (and never answers a v5 CONNECT
    that carries the session-expiry property). The bridge asks first and connects with 3.1.1 and
    ``clean_session=False``: 1500 samples published while it runs and 1500 published while it
    is stopped all reach Kafka, each source in publishing order."""
    locality = locality_of(topic_prefix)
    messages = stream(5, 600)  # 3000, round robin over 5 sources
    first, second = messages[:1500], messages[1500:]
    readings = topics.name(topics.READINGS, topic_prefix)

    with embedded.amqtt_broker() as broker:
        settings = Settings(
            kafka=kafka_broker.url,
            topic_prefix=topic_prefix,
            partitions=2,
            mqtt_host=broker.host,
            mqtt_port=broker.port,
            mqtt_client_id=f"{topic_prefix}bridge",
            mqtt_share_group="envwatch-bridge",  # no $share on 3.1.1: a plain subscription
            mqtt_topic=f"env/+/{locality}/+",
            config_dir=None,
            bridge_stats_interval=3600,
        )
        pub = Publisher(broker.host, broker.port, client_id=f"{topic_prefix}pub")

        def publish(batch: list[tuple[str, int]]) -> None:
            for source, seq in batch:
                pub.publish_raw(
                    f"env/air/{locality}/{source}", sample_payload(locality, source, seq)
                )
            pub.flush(60)

        async def bridge_until_acked(n: int, publish_meanwhile: bool) -> Bridge:
            bridge = Bridge(settings)
            ready = asyncio.Event()
            task = asyncio.create_task(bridge.run(ready=ready))
            await asyncio.wait_for(ready.wait(), 10)
            if publish_meanwhile:
                await asyncio.to_thread(publish, first)
            deadline = time.monotonic() + 60
            while bridge.counters.acked < n and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            bridge.stop()
            await asyncio.wait_for(task, 30)
            return bridge

        started = time.monotonic()
        one = asyncio.run(bridge_until_acked(len(first), publish_meanwhile=True))
        # amqtt 0.12 marks the session disconnected only after it has stopped the connection's
        # handler; a message routed in between goes to the dead handler and is dropped after
        # 5 s without PUBACK (docs/mqtt.md §3, "amqtt"). Publish once it has noticed.
        time.sleep(1.0)
        publish(second)  # the bridge is away: the broker keeps them in its session
        two = asyncio.run(bridge_until_acked(len(second), publish_meanwhile=False))
        took = time.monotonic() - started
        pub.close(10)
        broker_log = broker.process.log_tail(20)
        got = asyncio.run(
            read_topic(
                kafka_broker.bootstrap,
                readings,
                until=lambda c: len(c.unique()) >= len(messages),
                within=30,
                seq_of=pm25_seq,
            )
        )

    assert pub.protocol == mqtt.MQTTv311
    assert one.counters.mqtt_protocol == two.counters.mqtt_protocol == mqtt.MQTTv311
    assert (one.counters.acked, two.counters.acked) == (1500, 1500), broker_log
    assert got.unique() == set(messages)
    assert all(first_occurrences_in_order(seqs) for seqs in got.by_source.values())
    assert took < 60
