"""The bridge over TLS, live: a TLS-only mosquitto written by ``envwatch deploy mqtt``, a CA made
by ``trustme``, the bridge process (``envwatch bridge``) configured only through
``ENVWATCH_MQTT_TLS_CA_FILE``, ``ENVWATCH_MQTT_USERNAME`` and ``ENVWATCH_MQTT_PASSWORD_FILE``, and
Tansu as Kafka (real services: skipped with the reason outside CI when one is missing, a failure
under ``CI=true``; tests/conftest.py)."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.publisher import MqttAuth, Publisher, tls_context
from streams import embedded, topics
from tests.deploy.test_mqtt_tls import HOST, Broker, make_pki, start_broker
from tests.integration.bridge_helpers import (
    BridgeProcess,
    locality_of,
    pm25_seq,
    read_topic,
    run,
    sample_payload,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tls_broker() -> Iterator[Broker]:
    with tempfile.TemporaryDirectory(prefix="envwatch-bridge-tls-") as tmp:
        yield from start_broker(make_pki(Path(tmp)), "--tls-only")


def bridge_env(
    broker: Broker, kafka: embedded.KafkaBroker, prefix: str, ca: Path, password_file: Path
) -> dict[str, str]:
    user, _ = broker.account("bridge")
    return {
        "ENVWATCH_KAFKA": kafka.url,
        "ENVWATCH_MQTT_HOST": HOST,
        "ENVWATCH_MQTT_PORT": str(broker.tls_port),
        "ENVWATCH_MQTT_TLS_CA_FILE": str(ca),
        "ENVWATCH_MQTT_USERNAME": user,
        "ENVWATCH_MQTT_PASSWORD_FILE": str(password_file),
        "ENVWATCH_MQTT_CLIENT_ID": user,  # use_username_as_clientid: the same
        "ENVWATCH_MQTT_TOPIC": f"env/+/{locality_of(prefix)}/+",
        "ENVWATCH_TOPIC_PREFIX": prefix,
        "ENVWATCH_PARTITIONS": "4",
        "ENVWATCH_BRIDGE_STATS_INTERVAL": "1",
    }


def test_bridge_moves_samples_over_tls_into_kafka(
    tls_broker: Broker, kafka_broker: embedded.KafkaBroker, topic_prefix: str, tmp_path: Path
) -> None:
    """20 samples published over TLS with the publisher account reach ``readings`` through the
    bridge connected over TLS; neither password appears in the bridge's log."""
    _, bridge_password = tls_broker.account("bridge")
    secret = tmp_path / "bridge-password"
    secret.write_text(bridge_password + "\n")
    env = bridge_env(tls_broker, kafka_broker, topic_prefix, tls_broker.pki.ca_file, secret)
    bridge = BridgeProcess(env, tmp_path)
    bridge.start()
    user, password = tls_broker.account("publisher")
    locality = locality_of(topic_prefix)
    try:
        pub = Publisher(
            HOST,
            tls_broker.tls_port,
            auth=MqttAuth(user, password, tls_context(tls_broker.pki.ca_file)),
        )
        for seq in range(20):
            pub.publish_raw(f"env/air/{locality}/tls-01", sample_payload(locality, "tls-01", seq))
        pub.close(30)
        got = run(
            read_topic(
                kafka_broker.bootstrap,
                topics.name(topics.READINGS, topic_prefix),
                until=lambda c: len(c.unique()) >= 20,
                within=60,
                seq_of=pm25_seq,
            )
        )
        assert sorted(set(got.by_source["tls-01"])) == list(range(20))  # type: ignore[attr-defined]
    finally:
        bridge.stop()
    log = bridge.proc.log_path.read_text(errors="replace")
    assert "connected to MQTT" in log
    assert bridge_password not in log
    assert password not in log


def test_bridge_with_a_foreign_ca_says_why(
    tls_broker: Broker, kafka_broker: embedded.KafkaBroker, topic_prefix: str, tmp_path: Path
) -> None:
    """A CA that did not sign the broker's certificate: the bridge does not connect, and its log
    names the broker and the reason (not a silent retry loop)."""
    _, bridge_password = tls_broker.account("bridge")
    secret = tmp_path / "bridge-password"
    secret.write_text(bridge_password)
    env = bridge_env(tls_broker, kafka_broker, topic_prefix, tls_broker.pki.other_ca_file, secret)
    bridge = BridgeProcess(env, tmp_path)
    bridge.proc.start(timeout=60)  # the metrics port answers; MQTT never connects
    try:
        want = f"MQTT broker {HOST}:{tls_broker.tls_port}: TLS: the broker's certificate is not trusted"
        deadline = time.monotonic() + 30
        while want not in bridge.proc.log_path.read_text(errors="replace"):
            assert time.monotonic() < deadline, bridge.proc.log_tail()
            time.sleep(0.2)
        assert bridge.metric("envwatch_bridge_mqtt_connected") == 0
    finally:
        bridge.stop()
    assert bridge_password not in bridge.proc.log_path.read_text(errors="replace")
