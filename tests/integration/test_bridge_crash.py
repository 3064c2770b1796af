"""kill -9 the bridge in the middle of a 20 000-message QoS1 stream: nothing is lost.

The bridge runs as a separate process (``envwatch bridge``, configured by ENVWATCH_* variables,
with its Prometheus port on so the test can see how far it got). A first bridge process creates
the persistent session and is stopped with SIGTERM. A publisher then sends 20 000 QoS1 samples
(20 sources × 1000, interleaved) while a second bridge process starts: it finds a backlog and
drains it at full speed, so a whole in-flight window (up to 1000 messages received, produced or
not, unacknowledged) is open when, after a quarter of the stream, it is killed with SIGKILL — no
clean-up, no flush. A third process with the same MQTT client id is started. The broker kept the
session: every message the dead bridge had not acknowledged, plus everything published meanwhile,
is delivered to the new one.

Every one of the 20 000 samples must be in Kafka (duplicates are allowed — a sample produced but
not yet acknowledged when the process died is produced again — and are counted), and per source
the first occurrences keep the publishing order.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from ingest.publisher import Publisher
from streams.embedded import KafkaBroker, MqttBroker
from tests.integration.bridge_helpers import (
    BridgeProcess,
    bridge_env,
    first_occurrences_in_order,
    locality_of,
    pm25_seq,
    read_topic,
    run,
    sample_payload,
    stream,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SOURCES = 20
PER_SOURCE = 1000  # 20 × 1000 = 20 000 messages
KILL_AFTER_ACKED = 5000


def test_kill_9_mid_stream_loses_nothing(
    mqtt_broker: MqttBroker, kafka_broker: KafkaBroker, topic_prefix: str, tmp_path: Path
) -> None:
    locality = locality_of(topic_prefix)
    env = bridge_env(mqtt_broker, kafka_broker, topic_prefix)
    messages = stream(SOURCES, PER_SOURCE)
    assert len(messages) == 20_000

    session = BridgeProcess(env, tmp_path, "bridge-1")
    session.start()  # subscribes: the broker keeps the session from now on
    session.stop()  # SIGTERM: a clean stop
    first = BridgeProcess(env, tmp_path, "bridge-2")
    published = threading.Event()

    def publish() -> None:
        pub = Publisher(mqtt_broker.host, mqtt_broker.port, client_id=f"{topic_prefix}pub")
        for source, seq in messages:
            pub.publish_raw(f"env/air/{locality}/{source}", sample_payload(locality, source, seq))
        pub.close(timeout=120)  # every PUBACK from the broker: all 20 000 are in the session
        published.set()

    publisher = threading.Thread(target=publish, daemon=True)
    publisher.start()
    second = BridgeProcess(env, tmp_path, "bridge-3")
    try:
        first.start()
        deadline = time.monotonic() + 60
        while (first.metric("envwatch_bridge_acked_total") or 0) < KILL_AFTER_ACKED:
            assert time.monotonic() < deadline, first.proc.log_tail()
            time.sleep(0.02)
        acked_before = first.metric("envwatch_bridge_acked_total")
        in_flight = first.metric("envwatch_bridge_in_flight")
        first.kill9()
        print(f"SIGKILL after {acked_before:.0f} acks with {in_flight:.0f} in flight (last sample)")
        assert not published.is_set(), "the stream ended before the kill: test proves nothing"
        time.sleep(0.5)
        second.start()
        publisher.join(120)
        assert published.is_set(), "publisher did not finish"

        contents = run(
            read_topic(
                kafka_broker.bootstrap,
                f"{topic_prefix}readings",
                until=lambda c: len(c.unique()) >= len(messages),
                within=90,
                seq_of=pm25_seq,
            )
        )
    finally:
        second.stop()
        first.stop()

    missing = set(messages) - contents.unique()
    duplicates = contents.total - len(contents.unique())
    print(
        f"kafka holds {contents.total} records: {len(contents.unique())} unique, {duplicates} duplicates"
    )
    assert not missing, f"{len(missing)} samples lost, e.g. {sorted(missing)[:5]}"
    assert contents.unique() == set(messages)
    for source, seqs in contents.by_source.items():
        assert first_occurrences_in_order(seqs), f"{source}: order broken"


def test_broker_restart_mid_stream_loses_nothing(
    kafka_broker: KafkaBroker, topic_prefix: str
) -> None:
    """mosquitto itself restarts under a running bridge (SIGTERM: it saves its sessions).

    The bridge's paho client reconnects to the same session; messages it held from the lost
    connection are not acknowledged on the new one (their packet ids may be reused) but released
    and redelivered by the broker. Every sample must reach Kafka, per source in order.
    """
    from streams import embedded

    locality = locality_of(topic_prefix)
    messages = stream(10, 600)  # 6000
    with embedded.mosquitto() as broker:  # a private broker: the session one stays up
        env = bridge_env(broker, kafka_broker, topic_prefix)
        bridge = BridgeProcess(env, Path(broker.process.workdir), "bridge-restart")
        bridge.start()
        done = threading.Event()

        def publish() -> None:
            pub = Publisher(broker.host, broker.port, client_id=f"{topic_prefix}pub")
            for source, seq in messages:
                pub.publish_raw(
                    f"env/air/{locality}/{source}", sample_payload(locality, source, seq)
                )
            pub.close(timeout=120)
            done.set()

        publisher = threading.Thread(target=publish, daemon=True)
        publisher.start()
        try:
            deadline = time.monotonic() + 60
            while (bridge.metric("envwatch_bridge_acked_total") or 0) < 1500:
                assert time.monotonic() < deadline, bridge.proc.log_tail()
                time.sleep(0.02)
            broker.restart()  # SIGTERM, then the same conf, port and persistence file
            publisher.join(120)
            assert done.is_set(), "publisher did not finish"
            contents = run(
                read_topic(
                    kafka_broker.bootstrap,
                    f"{topic_prefix}readings",
                    until=lambda c: len(c.unique()) >= len(messages),
                    within=60,
                    seq_of=pm25_seq,
                )
            )
            connects = bridge.metric("envwatch_bridge_mqtt_connects_total")
        finally:
            bridge.stop()
    duplicates = contents.total - len(contents.unique())
    print(f"after a broker restart: {len(contents.unique())} unique, {duplicates} duplicates")
    assert connects is not None
    assert connects >= 2
    assert contents.unique() == set(messages)
    for source, seqs in contents.by_source.items():
        assert first_occurrences_in_order(seqs), f"{source}: order broken"
