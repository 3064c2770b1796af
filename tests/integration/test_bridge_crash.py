"""kill -9 the bridge in the middle of a 20 000-message QoS1 stream: nothing is lost.

The bridge runs as a separate process (``envwatch bridge``, configured by ENVWATCH_* variables,
with its Prometheus port on so the test can see how far it got). A first bridge process creates
the persistent session and is stopped with SIGTERM. A publisher then sends 20 000 QoS1 samples
(20 sources × 1000, interleaved) while a second bridge process starts: it finds a backlog and
drains it at full speed, so a whole in-flight window (up to 1000 messages received, produced or
not, unacknowledged) is open when, after a quarter of the stream, it is killed with SIGKILL — no
clean-up, no flush. The publisher holds the second half of the stream back until the kill, so
the kill always lands mid-stream however fast the bridge drains. A third process with the same MQTT client id is started. The broker kept the
session: every message the dead bridge had not acknowledged, plus everything published meanwhile,
is delivered to the new one.

Every one of the 20 000 samples must be in Kafka (duplicates are allowed — a sample produced but
not yet acknowledged when the process died is produced again — and are counted), and per source
the first occurrences keep the publishing order.
"""

from __future__ import annotations

import os
import pwd
import threading
import time
from pathlib import Path

import pytest

from ingest.publisher import Publisher
from streams import embedded
from streams.embedded import KafkaBroker, MqttBroker
from tests.integration.bridge_helpers import (
    BridgeProcess,
    KafkaContents,
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
    killed = threading.Event()

    def publish() -> None:
        # The second half waits for the kill, so the kill always lands mid-stream: a bridge
        # that drains as fast as the publisher publishes would otherwise reach the 5 000th
        # acknowledgement only after the publisher had finished (a flake once seen).
        pub = Publisher(mqtt_broker.host, mqtt_broker.port, client_id=f"{topic_prefix}pub")
        for i, (source, seq) in enumerate(messages):
            if i == len(messages) // 2:
                killed.wait(120)
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
        killed.set()
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
        killed.set()  # never leave the publisher waiting
        second.stop()
        first.stop()

    assert isinstance(contents, KafkaContents)
    missing = set(messages) - contents.unique()
    duplicates = contents.total - len(contents.unique())
    print(
        f"kafka holds {contents.total} records: {len(contents.unique())} unique, {duplicates} duplicates"
    )
    assert not missing, f"{len(missing)} samples lost, e.g. {sorted(missing)[:5]}"
    assert contents.unique() == set(messages)
    for source, seqs in contents.by_source.items():
        assert first_occurrences_in_order(seqs), f"{source}: order broken"


# ------------------------------------------------------------------------------ broker restart

RESTART_SOURCES = 10
RESTART_PER_SOURCE = 600  # 10 × 600 = 6000 messages
RESTART_RATE = 1500.0  # messages/s: the stream (≈ 4 s) is still running when the broker restarts
RESTART_AFTER_ACKED = 1500


def _let_broker_save(broker: MqttBroker) -> None:
    """Make the broker's work directory writable for the user mosquitto runs as.

    Started as root, mosquitto drops to the user ``mosquitto`` (mosquitto.conf(5) ``user``;
    ``nobody`` when that user does not exist) before it writes anything. streams.embedded
    gives it a 0700 root temporary directory, so its save on SIGTERM fails ("Error saving
    in-memory database … Permission denied") and the restarted broker knows no session at all.
    (streams.embedded should do this itself; until it does, every restart test must.)
    """
    if os.geteuid() != 0:
        return
    try:
        user = pwd.getpwnam("mosquitto")
    except KeyError:
        user = pwd.getpwnam("nobody")
    os.chown(broker.process.workdir, user.pw_uid, user.pw_gid)


def _restart_saving(broker: MqttBroker) -> None:
    """SIGTERM (mosquitto saves its sessions), then the same conf, port and persistence file."""
    broker.restart()
    log = broker.process.log_path.read_text(errors="replace")
    assert "Saving in-memory database" in log, broker.process.log_tail()
    assert "Error saving" not in log, f"mosquitto could not save:\n{broker.process.log_tail()}"


class _PacedPublisher:
    """Publishes ``messages`` at RESTART_RATE in a thread with :class:`Publisher`; records how
    many PUBACKs had arrived when asked (``acked_now``) and any exception."""

    def __init__(self, broker: MqttBroker, locality: str, client_id: str) -> None:
        self.messages = stream(RESTART_SOURCES, RESTART_PER_SOURCE)
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.pub: Publisher | None = None
        self._args = (broker, locality, client_id)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        broker, locality, client_id = self._args
        try:
            self.pub = pub = Publisher(broker.host, broker.port, client_id=client_id)
            start = time.monotonic()
            for i, (source, seq) in enumerate(self.messages):
                due = start + i / RESTART_RATE
                if (wait := due - time.monotonic()) > 0:
                    time.sleep(wait)
                pub.publish_raw(
                    f"env/air/{locality}/{source}", sample_payload(locality, source, seq)
                )
            pub.close(timeout=120)  # every PUBACK: all 6000 were accepted by the broker
            self.done.set()
        except BaseException as exc:
            self.error = exc

    def acked_now(self) -> int:
        return 0 if self.pub is None else self.pub.acked


def _run_restart(
    kafka_broker: KafkaBroker, topic_prefix: str, *, share_group: str
) -> tuple[list[tuple[str, int]], int, dict[str, float | None], KafkaContents]:
    """A private mosquitto restarts (SIGTERM) under a running bridge while a paced QoS1 stream
    is being published. Returns (messages, how many of the first messages in publishing order
    the broker had PUBACKed before it was stopped, bridge metrics, Kafka contents)."""
    locality = locality_of(topic_prefix)
    with embedded.mosquitto() as broker:  # a private broker: the session one stays up
        _let_broker_save(broker)
        env = bridge_env(broker, kafka_broker, topic_prefix, ENVWATCH_MQTT_SHARE_GROUP=share_group)
        bridge = BridgeProcess(env, Path(broker.process.workdir), "bridge-restart")
        bridge.start()
        publisher = _PacedPublisher(broker, locality, f"{topic_prefix}pub")
        messages = publisher.messages
        publisher.thread.start()
        try:
            deadline = time.monotonic() + 60
            while (bridge.metric("envwatch_bridge_acked_total") or 0) < RESTART_AFTER_ACKED:
                assert time.monotonic() < deadline, bridge.proc.log_tail()
                assert publisher.error is None, repr(publisher.error)
                time.sleep(0.02)
            # PUBACKs come in publishing order on one connection: the first `accepted`
            # messages were in the broker before it was stopped
            accepted = publisher.acked_now()
            assert not publisher.done.is_set(), "the stream ended before the restart"
            _restart_saving(broker)
            publisher.thread.join(120)
            assert publisher.error is None, f"publisher failed: {publisher.error!r}"
            assert publisher.done.is_set(), "publisher did not finish"
            assert publisher.pub is not None
            assert publisher.pub.connects >= 2, "the publisher never lost its connection"
            # the bridge is done when nothing is open and its acks stand still
            settled, last = 0, -1.0
            deadline = time.monotonic() + 60
            while settled < 3 and time.monotonic() < deadline:
                time.sleep(0.5)
                acked = bridge.metric("envwatch_bridge_acked_total") or 0.0
                idle = (bridge.metric("envwatch_bridge_in_flight") or 0) == 0
                settled = settled + 1 if idle and acked == last else 0
                last = acked
            contents = run(
                read_topic(
                    kafka_broker.bootstrap,
                    f"{topic_prefix}readings",
                    until=lambda c: len(c.unique()) >= len(messages),
                    within=10,
                    seq_of=pm25_seq,
                )
            )
            metrics = {
                name: bridge.metric(f"envwatch_bridge_{name}")
                for name in ("mqtt_connects_total", "mqtt_sessions_lost_total")
            }
        finally:
            bridge.stop()
    assert isinstance(contents, KafkaContents)
    return messages, accepted, metrics, contents


def test_broker_restart_mid_stream_loses_nothing(
    kafka_broker: KafkaBroker, topic_prefix: str
) -> None:
    """mosquitto itself restarts (SIGTERM: it saves its sessions) under a running bridge with a
    plain subscription, while a station-like stream keeps being published.

    The publisher blocks while the broker is away and paho re-sends what was not acknowledged.
    The bridge's paho client reconnects to the same session; messages it held from the lost
    connection are not acknowledged on the new one (their packet ids may be reused) but
    released and redelivered by the broker. Every sample must reach Kafka, per source in order.
    """
    messages, accepted, metrics, contents = _run_restart(kafka_broker, topic_prefix, share_group="")
    duplicates = contents.total - len(contents.unique())
    print(
        f"after a broker restart: {len(contents.unique())} unique, {duplicates} duplicates, "
        f"{accepted} accepted before the stop"
    )
    assert metrics["mqtt_connects_total"] is not None
    assert metrics["mqtt_connects_total"] >= 2
    assert metrics["mqtt_sessions_lost_total"] == 0, "the broker did not keep the session"
    missing = set(messages) - contents.unique()
    assert not missing, f"{len(missing)} samples lost, e.g. {sorted(missing)[:5]}"
    assert contents.unique() == set(messages)
    for source, seqs in contents.by_source.items():
        assert first_occurrences_in_order(seqs), f"{source}: order broken"


def test_broker_restart_with_shared_subscription_keeps_what_was_accepted_before(
    kafka_broker: KafkaBroker, topic_prefix: str
) -> None:
    """The same restart with the bridge on a *shared* subscription (the default deployment).

    mosquitto does not save shared subscriptions (docs/mqtt.md §5): the session and everything
    queued for it survive, but until the reconnected bridge has subscribed again, messages
    published to the restarted broker are dropped by it. What does hold: every sample the
    broker had accepted (PUBACKed) before it was stopped reaches Kafka, per source in order;
    anything missing was accepted by the restarted broker.
    """
    messages, accepted, metrics, contents = _run_restart(
        kafka_broker, topic_prefix, share_group=f"{topic_prefix}group"
    )
    missing = set(messages) - contents.unique()
    print(
        f"shared subscription, broker restart: {accepted} accepted before the stop, "
        f"{len(missing)} of those accepted afterwards never delivered"
    )
    assert accepted >= RESTART_AFTER_ACKED  # the bridge had acked that many: all accepted
    assert metrics["mqtt_sessions_lost_total"] == 0, "the broker did not keep the session"
    before = set(messages[:accepted])
    lost_before = before - contents.unique()
    assert not lost_before, f"{len(lost_before)} lost, e.g. {sorted(lost_before)[:5]}"
    assert missing <= set(messages[accepted:])
    for source, seqs in contents.by_source.items():
        assert first_occurrences_in_order(seqs), f"{source}: order broken"
