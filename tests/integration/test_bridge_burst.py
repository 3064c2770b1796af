"""A burst larger than mosquitto's default queue, published while the bridge is stopped.

mosquitto's default ``max_queued_messages`` is 1000: messages beyond that, queued for a
disconnected (or slow) persistent subscriber, are silently dropped (mosquitto.conf(5):
"max_queued_messages … Defaults to 1000"; the count is above the messages in flight, whose
default window is 20). The shipped deploy/mosquitto/mosquitto.conf raises the limit; these tests
show that the shipped configuration delivers a 5000-message burst whole, and — so the first test
is known to be able to fail — that the same burst against a mosquitto rendered from the shipped
file *without* the queue override loses everything past the default limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.bridge import Bridge
from ingest.publisher import Publisher
from streams import embedded
from streams.embedded import KafkaBroker, MqttBroker
from streams.settings import Settings
from tests.integration.bridge_helpers import (
    locality_of,
    pm25_seq,
    read_topic,
    sample_payload,
    stream,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

BURST = 5000  # 5 × mosquitto's default max_queued_messages (1000)
DEFAULT_QUEUE = 1000  # mosquitto.conf(5) max_queued_messages default
DEFAULT_INFLIGHT = 20  # mosquitto.conf(5) max_inflight_messages default


def settings_for(mqtt: MqttBroker, kafka: KafkaBroker, prefix: str) -> Settings:
    return Settings(
        kafka=kafka.url,
        topic_prefix=prefix,
        partitions=4,
        mqtt_host=mqtt.host,
        mqtt_port=mqtt.port,
        mqtt_client_id=f"{prefix}bridge",
        mqtt_share_group=None,
        mqtt_topic=f"env/+/{locality_of(prefix)}/+",
        mqtt_session_expiry=600,
        config_dir=None,
    )


async def run_bridge_until_idle(settings: Settings, *, expect: int, within: float = 60) -> int:
    """Run the bridge until it acked ``expect`` messages or nothing new came for 3 s."""
    bridge = Bridge(settings)
    ready = asyncio.Event()
    task = asyncio.create_task(bridge.run(ready=ready))
    await asyncio.wait_for(ready.wait(), 30)
    deadline = time.monotonic() + within
    last, still_since = -1, time.monotonic()
    while bridge.counters.acked < expect and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        if bridge.counters.acked != last:
            last, still_since = bridge.counters.acked, time.monotonic()
        elif time.monotonic() - still_since > 3:
            break
    bridge.stop()
    await asyncio.wait_for(task, 30)
    return bridge.counters.acked


def burst_through(mqtt: MqttBroker, kafka: KafkaBroker, prefix: str) -> set[tuple[str, int]]:
    """Session first (bridge runs once, stops), then the burst, then the bridge again."""
    settings = settings_for(mqtt, kafka, prefix)
    locality = locality_of(prefix)
    asyncio.run(run_bridge_until_idle(settings, expect=0))  # creates the persistent session
    messages = stream(10, BURST // 10)
    pub = Publisher(mqtt.host, mqtt.port, client_id=f"{prefix}pub")
    for source, seq in messages:
        pub.publish_raw(f"env/air/{locality}/{source}", sample_payload(locality, source, seq))
    pub.close(timeout=60)  # the broker took (PUBACKed) all of them while the bridge was away
    asyncio.run(run_bridge_until_idle(settings, expect=len(messages)))
    contents = asyncio.run(
        read_topic(
            kafka.bootstrap,
            f"{prefix}readings",
            until=lambda c: len(c.unique()) >= len(messages),
            within=5,
            seq_of=pm25_seq,
        )
    )
    return contents.unique()


def test_burst_beyond_the_default_queue_is_delivered_whole_with_the_shipped_conf(
    mqtt_broker: MqttBroker, kafka_broker: KafkaBroker, topic_prefix: str
) -> None:
    assert mqtt_broker.implementation == "mosquitto"
    got = burst_through(mqtt_broker, kafka_broker, topic_prefix)
    assert len(got) == BURST  # nothing dropped by the broker


@contextlib.contextmanager
def mosquitto_with_default_queue(workdir: Path) -> Iterator[MqttBroker]:
    """The shipped conf minus its queue override: what a stock mosquitto would do."""
    binary = embedded.mosquitto_binary()
    if binary is None:
        pytest.skip("mosquitto is not installed")
    shipped = embedded.MOSQUITTO_CONF.read_text().splitlines()
    stock = [ln for ln in shipped if not ln.startswith(("max_queued_messages", "max_queued_bytes"))]
    assert len(stock) == len(shipped) - 2, "the shipped conf no longer sets the queue limits"
    source = workdir / "stock.conf"
    source.write_text("\n".join(stock) + "\n")
    port = embedded.free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(embedded.render_mosquitto_conf(port, workdir, source=source))
    proc = embedded.Process("mosquitto-stock", [binary, "-c", str(conf)], workdir, port)
    proc.start()
    try:
        yield MqttBroker("127.0.0.1", port, "mosquitto", proc)
    finally:
        proc.stop()


def test_same_burst_loses_messages_with_the_default_queue_limit(
    kafka_broker: KafkaBroker, topic_prefix: str, tmp_path: Path
) -> None:
    with mosquitto_with_default_queue(tmp_path) as stock:
        got = burst_through(stock, kafka_broker, topic_prefix)
    print(f"stock mosquitto delivered {len(got)} of {BURST}")
    assert len(got) < BURST
    # what survives is at most the default queue plus the default in-flight window
    assert len(got) <= DEFAULT_QUEUE + DEFAULT_INFLIGHT
