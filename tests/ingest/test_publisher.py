"""ingest.publisher.Publisher against a real, private mosquitto that goes away under it, and
against amqtt, the pure-Python broker without MQTT v5 that the embedded default falls back to."""

from __future__ import annotations

import os
import pwd
import socket
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.errors import IngestError
from ingest.publisher import Publisher, PublisherError, PublishTimeout, broker_protocol
from streams import embedded

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _let_broker_save(broker: embedded.MqttBroker) -> None:
    # as root mosquitto drops to 'mosquitto' (or 'nobody'); see test_bridge_crash._let_broker_save
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("mosquitto")
        except KeyError:
            user = pwd.getpwnam("nobody")
        os.chown(broker.process.workdir, user.pw_uid, user.pw_gid)


def _persistent_subscriber(port: int, got: list[int]) -> mqtt.Client:
    """A plain QoS1 subscriber with a persistent session: what the broker accepted, in order."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="audit", protocol=mqtt.MQTTv5)
    subscribed = threading.Event()
    client.on_connect = lambda c, *_a: c.subscribe("pub-test/#", qos=1)
    client.on_subscribe = lambda *_a: subscribed.set()
    client.on_message = lambda _c, _u, m: got.append(int(m.payload))
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 600
    client.connect("127.0.0.1", port, clean_start=False, properties=props)
    client.loop_start()
    assert subscribed.wait(10)
    return client


def test_a_broker_restart_neither_raises_nor_loses_nor_reorders() -> None:
    """3000 messages paced at 1500/s; the broker restarts after 1 s. publish_raw blocks while
    it is away (the paho-level publish answers NO_CONN then), paho re-sends what was not
    acknowledged, and the broker receives every message; first occurrences keep the order."""
    with embedded.mosquitto() as broker:
        _let_broker_save(broker)
        got: list[int] = []
        audit = _persistent_subscriber(broker.port, got)
        pub = Publisher(broker.host, broker.port, client_id="pub-test")
        errors: list[BaseException] = []

        def run() -> None:
            try:
                start = time.monotonic()
                for i in range(3000):
                    if (wait := start + i / 1500 - time.monotonic()) > 0:
                        time.sleep(wait)
                    pub.publish_raw(f"pub-test/{i % 7}", str(i).encode())
                pub.close(timeout=60)
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        time.sleep(1.0)
        broker.restart()
        thread.join(90)
        deadline = time.monotonic() + 20
        while len(set(got)) < 3000 and time.monotonic() < deadline:
            time.sleep(0.1)
        audit.disconnect()
        audit.loop_stop()
    assert errors == []
    assert pub.connects >= 2, "the publisher never saw the restart"
    assert pub.acked == 3000
    assert set(got) == set(range(3000))
    first = list(dict.fromkeys(got))  # first occurrences, duplicates (re-sends) dropped
    assert first == sorted(first)


def test_a_broker_gone_for_longer_than_block_timeout_is_a_typed_error() -> None:
    with embedded.mosquitto() as broker:
        pub = Publisher(broker.host, broker.port, block_timeout=0.5)
        pub.publish_raw("pub-test/a", b"1")
        pub.flush(10)
        broker.process.stop()
        time.sleep(0.3)  # paho notices the closed socket
        started = time.monotonic()
        with pytest.raises(PublishTimeout) as err:
            pub.publish_raw("pub-test/a", b"2")
        waited = time.monotonic() - started
        pub._client.loop_stop()
    assert 0.4 <= waited < 5
    assert err.value.pending == 0
    assert "disconnected" in err.value.reason
    assert isinstance(err.value, IngestError)
    assert isinstance(err.value, ConnectionError)  # what callers caught before
    assert pub.acked == 1


# ------------------------------------------------------------------ a broker without MQTT v5


def _audit_311(port: int, got: list[int]) -> mqtt.Client:
    """A plain MQTT 3.1.1 QoS1 subscriber: what amqtt accepted, in order."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="audit", protocol=mqtt.MQTTv311)
    subscribed = threading.Event()
    client.on_connect = lambda c, *_a: c.subscribe("pub-test/#", qos=1)
    client.on_subscribe = lambda *_a: subscribed.set()
    client.on_message = lambda _c, _u, m: got.append(int(m.payload))
    client.connect("127.0.0.1", port)
    client.loop_start()
    assert subscribed.wait(10)
    return client


def test_on_a_broker_without_v5_the_publisher_speaks_3_1_1_and_every_message_arrives() -> None:
    """amqtt (the embedded default's fallback) refuses MQTT v5; the publisher connects again
    with 3.1.1 by itself, and the broker receives all 2000 messages in publishing order."""
    with embedded.amqtt_broker() as broker:
        assert broker_protocol(broker.host, broker.port) == mqtt.MQTTv311
        got: list[int] = []
        audit = _audit_311(broker.port, got)
        started = time.monotonic()
        pub = Publisher(broker.host, broker.port, client_id="pub-test")
        connected_in = time.monotonic() - started
        for i in range(2000):
            pub.publish_raw(f"pub-test/{i % 7}", str(i).encode())
        pub.close(timeout=60)
        deadline = time.monotonic() + 20
        while len(got) < 2000 and time.monotonic() < deadline:
            time.sleep(0.05)
        audit.disconnect()
        audit.loop_stop()
    assert pub.protocol == mqtt.MQTTv311
    assert connected_in < 5  # the refusal is answered at once: no waiting for a timeout
    assert pub.acked == 2000
    assert got == list(range(2000))


def test_broker_protocol_is_v5_on_mosquitto(mqtt_broker: embedded.MqttBroker) -> None:
    assert broker_protocol(mqtt_broker.host, mqtt_broker.port) == mqtt.MQTTv5
    pub = Publisher(mqtt_broker.host, mqtt_broker.port)
    pub.close(5)
    assert pub.protocol == mqtt.MQTTv5


def test_a_broker_that_never_answers_is_an_error_within_the_timeout_not_a_hang() -> None:
    """A port that accepts the TCP connection but never sends a CONNACK (and one that nothing
    listens on): the probe and the publisher give up with a typed error, in seconds."""
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen()
        port = mute.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(PublisherError, match="no CONNACK"):
            broker_protocol("127.0.0.1", port, timeout=0.5)
        with pytest.raises(PublisherError, match="did not accept"):
            Publisher("127.0.0.1", port, connect_timeout=0.5)
        waited = time.monotonic() - started
    closed = embedded.free_port()
    with pytest.raises(PublisherError, match="cannot connect"):
        broker_protocol("127.0.0.1", closed)
    assert waited < 3
