"""ingest.publisher.Publisher against a real, private mosquitto that goes away under it."""

from __future__ import annotations

import os
import pwd
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.errors import IngestError
from ingest.publisher import Publisher, PublishTimeout
from streams import embedded

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _require_mosquitto() -> None:
    """Skip without mosquitto, except under CI=true (as tests/conftest.py does)."""
    if embedded.mosquitto_binary() is None:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail("CI=true and mosquitto is missing", pytrace=False)
        pytest.skip("mosquitto is not installed")


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
    _require_mosquitto()
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
    _require_mosquitto()
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
