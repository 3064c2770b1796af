"""MQTT→Kafka bridge throughput next to a bare paho-mqtt QoS1 subscriber, same mosquitto, one run.

Both read the same kind of backlog: N QoS1 samples (six air factors each, 50 sources) published
to a persistent session while the reader is away, then drained. The figure is the drain rate,
(N − 1) / (time of the last message − time of the first):

* bare: a paho-mqtt 2.x MQTT v5 client with automatic acknowledgement that only counts messages
  (the ceiling of one Python process reading MQTT);
* bridge: :class:`ingest.bridge.Bridge` — validation, canonical JSON, Kafka produce to Tansu with
  ``acks=all``, and the PUBACK only after Kafka acknowledged (``manual_ack``); the last message
  counts when its PUBACK is handed to paho.

Goal (issue 5): bridge ≥ 90 % of bare. Rounds alternate bare/bridge to spread the noise of this
shared 2-core machine; the best round of each is reported. Gateway packets/s are measured in
bench_gateway.py.
"""

from __future__ import annotations

import asyncio
import threading
import time

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.bridge import Bridge
from ingest.publisher import Publisher
from streams import embedded
from streams.settings import Settings

FACTORS = ("pm25", "pm10", "so2", "no2", "co", "o3")


def _payload(locality: str, source: str, i: int) -> bytes:
    return orjson.dumps(
        {
            "schema": 1,
            "kind": "air",
            "locality": locality,
            "source": source,
            "time": f"2026-01-15T{i // 60 % 24:02d}:{i % 60:02d}:00+08:00",
            "interval": "min",
            "values": {f: {"value": 10.0 + n + i % 7, "flag": "N"} for n, f in enumerate(FACTORS)},
        }
    )


def _prefill(broker: embedded.MqttBroker, locality: str, n: int) -> None:
    pub = Publisher(broker.host, broker.port)
    for i in range(n):
        source = f"aq-{i % 50:02d}"
        pub.publish_raw(f"env/air/{locality}/{source}", _payload(locality, source, i // 50))
    pub.close(timeout=300)


def _session_props(expiry: int = 600) -> Properties:
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = expiry
    return props


def _bare_client(client_id: str) -> mqtt.Client:
    return mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)


def bare_round(broker: embedded.MqttBroker, tag: str, n: int) -> float:
    """Drain rate (msg/s) of a bare auto-acking paho subscriber."""
    locality, cid = f"bare-{tag}", f"bench-bare-{tag}"
    subscribed = threading.Event()
    client = _bare_client(cid)
    client.on_subscribe = lambda *_a: subscribed.set()
    client.on_connect = lambda c, *_a: c.subscribe(f"env/+/{locality}/+", qos=1)
    client.connect(broker.host, broker.port, clean_start=False, properties=_session_props())
    client.loop_start()
    subscribed.wait(10)
    client.disconnect()
    client.loop_stop()
    _prefill(broker, locality, n)

    done = threading.Event()
    stamps: list[float] = []
    count = 0

    def on_message(_c: object, _u: object, _m: mqtt.MQTTMessage) -> None:
        nonlocal count
        count += 1
        if count == 1:
            stamps.append(time.perf_counter())
        if count == n:
            stamps.append(time.perf_counter())
            done.set()

    client = _bare_client(cid)
    client.on_message = on_message
    client.connect(broker.host, broker.port, clean_start=False, properties=_session_props())
    client.loop_start()
    done.wait(300)
    client.disconnect()
    client.loop_stop()
    return (n - 1) / (stamps[1] - stamps[0])


def bridge_round(
    broker: embedded.MqttBroker, kafka: embedded.KafkaBroker, tag: str, n: int
) -> float:
    """Drain rate (msg/s) of the bridge, ack after produce."""
    settings = Settings(
        kafka=kafka.url,
        topic_prefix=f"bench-{tag}-",
        partitions=4,
        mqtt_host=broker.host,
        mqtt_port=broker.port,
        mqtt_client_id=f"bench-bridge-{tag}",
        mqtt_share_group=None,
        mqtt_topic=f"env/+/bridge-{tag}/+",
        mqtt_session_expiry=600,
        config_dir=None,
        bridge_stats_interval=3600,
    )

    async def once(measure: bool) -> float:
        bridge = Bridge(settings)
        ready = asyncio.Event()
        task = asyncio.create_task(bridge.run(ready=ready))
        await asyncio.wait_for(ready.wait(), 60)
        rate = 0.0
        if measure:
            c = bridge.counters
            while c.received == 0:  # noqa: ASYNC110 - polls counters the paho thread writes
                await asyncio.sleep(0.002)
            first = time.perf_counter()
            deadline = first + 300
            while c.acked < n and time.perf_counter() < deadline:  # noqa: ASYNC110 - same
                await asyncio.sleep(0.002)
            rate = (n - 1) / (time.perf_counter() - first)
            if c.produced != n:
                raise RuntimeError(f"bridge produced {c.produced} of {n}")
        bridge.stop()
        await task
        return rate

    asyncio.run(once(measure=False))  # creates the session (and the topics)
    _prefill(broker, f"bridge-{tag}", n)
    return asyncio.run(once(measure=True))


def main(quick: bool) -> None:
    n = 3000 if quick else 30_000
    rounds = 1 if quick else 2
    with embedded.mosquitto() as broker, embedded.tansu() as kafka:
        bare: list[float] = []
        bridged: list[float] = []
        for r in range(rounds):
            bare.append(bare_round(broker, f"r{r}", n))
            bridged.append(bridge_round(broker, kafka, f"r{r}", n))
            print(
                f"  round {r + 1}: bare {bare[-1]:>8,.0f} msg/s   bridge {bridged[-1]:>8,.0f} msg/s",
                flush=True,
            )
    b, g = max(bare), max(bridged)
    print(f"MQTT QoS1 drain of {n:,} samples, mosquitto {broker.port}, Tansu {kafka.port}")
    print(f"  bare paho subscriber (auto-ack):            {b:>9,.0f} msg/s")
    print(f"  bridge (validate, produce acks=all, PUBACK): {g:>9,.0f} msg/s")
    print(f"  ratio bridge / bare: {g / b:.2f}  (goal >= 0.90)")
