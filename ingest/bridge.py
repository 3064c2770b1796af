"""MQTT → Kafka bridge that loses nothing.

* paho-mqtt 2.x, MQTT v5, persistent session (clean start off, session expiry), QoS1,
  ``manual_ack=True``: the broker receives the PUBACK for a message only after Kafka acknowledged
  the produce. A crash at any instant therefore loses nothing: unacknowledged messages are
  redelivered to the session when the bridge comes back (duplicates are possible; every consumer
  downstream is idempotent).
* MQTT v5 shared subscription (``$share/<group>/env/#``) so several bridge processes split the load.
* Kafka key = source id, so one source's samples stay ordered in one partition.
* Payloads are validated with :class:`ingest.schemas.Sample`; anything invalid goes to the
  ``dead-letter`` topic with its original bytes, MQTT topic and reason, and is then acknowledged.
* Counters (received, produced, dead-lettered, in flight) are logged periodically.

Threads: paho's network loop runs in its own thread and hands messages to the asyncio loop with
``call_soon_threadsafe``; all Kafka work happens on the loop; ``Client.ack`` is called from the
loop (paho guards its output queue with a lock).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
import paho.mqtt.client as mqtt
from aiokafka import AIOKafkaProducer
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import ValidationError
from streams import topics
from streams.records import DeadLetter
from streams.settings import Settings

from ingest.schemas import Sample

log = logging.getLogger(__name__)


@dataclass
class Counters:
    received: int = 0
    produced: int = 0
    dead_lettered: int = 0
    acked: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def in_flight(self) -> int:
        return self.received - self.acked


def topic_source(topic: str) -> str | None:
    """The source id segment of ``env/{kind}/{locality}/{source}``."""
    parts = topic.split("/")
    return parts[3] if len(parts) == 4 and parts[0] == "env" else None


def normalise(topic: str, payload: bytes) -> tuple[bytes, bytes]:
    """Validate one MQTT message; return (Kafka key, canonical JSON). Raises ValueError."""
    try:
        sample = Sample.model_validate_json(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "payload"
        raise ValueError(
            f"invalid sample: {where}: {first['msg']} ({exc.error_count()} error(s))"
        ) from exc
    expected = f"env/{sample.kind.value}/{sample.locality}/{sample.source}"
    if topic != expected:
        raise ValueError(f"topic {topic!r} does not match the payload (expected {expected!r})")
    body = sample.model_dump(mode="json", by_alias=True)
    return sample.source.encode(), orjson.dumps(body)


class Bridge:
    def __init__(self, settings: Settings, *, stats_interval: float = 10.0) -> None:
        self.s = settings
        self.counters = Counters()
        self._stats_interval = stats_interval
        self._queue: asyncio.Queue[mqtt.MQTTMessage] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._producer: AIOKafkaProducer | None = None
        self._client: mqtt.Client | None = None
        self._connected = asyncio.Event()
        self._stop = asyncio.Event()
        self._pending: set[asyncio.Future[object]] = set()

    # ------------------------------------------------------------------ paho thread side
    def _on_connect(
        self, client: mqtt.Client, _u: object, _f: object, rc: object, _p: object = None
    ) -> None:
        if getattr(rc, "is_failure", False):
            log.error("bridge: MQTT connect refused: %s", rc)
            return
        sub = self.s.mqtt_topic
        if self.s.mqtt_share_group:
            sub = f"$share/{self.s.mqtt_share_group}/{sub}"
        client.subscribe(sub, qos=1)
        log.info(
            "bridge: connected to MQTT %s:%s, subscribed %s",
            self.s.mqtt_host,
            self.s.mqtt_port,
            sub,
        )
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._connected.set)

    def _on_disconnect(
        self, _c: object, _u: object, _f: object, rc: object, _p: object = None
    ) -> None:
        if self._stop.is_set():
            log.info("bridge: MQTT disconnected (%s)", rc)
        else:
            log.warning("bridge: MQTT disconnected (%s); paho reconnects with backoff", rc)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._connected.clear)

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._queue.put_nowait, msg)

    # ------------------------------------------------------------------ loop side
    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.s.mqtt_client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if self.s.mqtt_username:
            pw = self.s.mqtt_password.get_secret_value() if self.s.mqtt_password else None
            client.username_pw_set(self.s.mqtt_username, pw)
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    async def run(self, *, ready: asyncio.Event | None = None) -> None:
        """Run until :meth:`stop` is called. Kafka is connected first, then MQTT."""
        self._loop = asyncio.get_running_loop()
        await topics.ensure_topics(self.s.kafka, self.s.partitions, self.s.topic_prefix)
        self._producer = AIOKafkaProducer(
            bootstrap_servers=topics.bootstrap_of(self.s.kafka),
            acks="all",
            enable_idempotence=False,
            linger_ms=5,
            max_batch_size=256 * 1024,
        )
        await self._retry("Kafka", self._producer.start)
        self._client = self._make_client()
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho: untyped
        props.SessionExpiryInterval = self.s.mqtt_session_expiry
        client = self._client

        def connect() -> None:
            client.connect(
                self.s.mqtt_host,
                self.s.mqtt_port,
                keepalive=30,
                clean_start=False,
                properties=props,
            )

        await self._retry("MQTT", lambda: asyncio.to_thread(connect))
        client.loop_start()
        stats = asyncio.create_task(self._stats())
        try:
            await asyncio.wait_for(self._connected.wait(), timeout=30)
            if ready is not None:
                ready.set()
            await self._pump()
        finally:
            stats.cancel()
            client.loop_stop()
            with contextlib.suppress(Exception):
                client.disconnect()
            if self._pending:
                await asyncio.gather(*self._pending, return_exceptions=True)
            await self._producer.stop()
            self._log_stats()

    async def _retry(self, what: str, fn: object) -> None:
        delay = 0.5
        while True:
            try:
                await fn()  # type: ignore[operator]
                return
            except Exception as exc:
                if self._stop.is_set():
                    raise
                log.warning("bridge: %s not reachable (%s); retrying in %.1fs", what, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)

    def stop(self) -> None:
        self._stop.set()
        self._queue.put_nowait(None)  # type: ignore[arg-type]  # wake the pump

    async def _pump(self) -> None:
        assert self._producer is not None
        readings = topics.name(topics.READINGS, self.s.topic_prefix)
        dead = topics.name(topics.DEAD_LETTER, self.s.topic_prefix)
        while not self._stop.is_set():
            msg = await self._queue.get()
            if msg is None:
                break
            self.counters.received += 1
            try:
                payload = bytes(msg.payload)
                key, value = normalise(msg.topic, payload)
                target, dead_lettered = readings, False
            except ValueError as exc:
                dl = DeadLetter.build("bridge", str(exc), payload, origin=msg.topic, at=_now())
                key, value, target, dead_lettered = (
                    (topic_source(msg.topic) or "").encode(),
                    dl.to_bytes(),
                    dead,
                    True,
                )
                log.info("bridge: dead-letter %s: %s", msg.topic, exc)
            fut = await self._producer.send(target, value=value, key=key)
            self._pending.add(fut)
            fut.add_done_callback(lambda f, m=msg, d=dead_lettered: self._after_produce(f, m, d))

    def _after_produce(
        self, fut: asyncio.Future[object], msg: mqtt.MQTTMessage, dead: bool
    ) -> None:
        self._pending.discard(fut)
        if fut.cancelled() or fut.exception() is not None:
            # Not acknowledged: the broker redelivers it after a reconnect. Reconnect now so the
            # message is not stuck behind a session that still looks healthy.
            log.error(
                "bridge: Kafka produce failed: %s; reconnecting MQTT for redelivery",
                fut.exception(),
            )
            if self._client is not None:
                self._client.reconnect()
            return
        if dead:
            self.counters.dead_lettered += 1
        else:
            self.counters.produced += 1
        assert self._client is not None
        self._client.ack(msg.mid, msg.qos)
        self.counters.acked += 1

    async def _stats(self) -> None:
        while True:
            await asyncio.sleep(self._stats_interval)
            self._log_stats()

    def _log_stats(self) -> None:
        c = self.counters
        log.info(
            "bridge: received=%d produced=%d dead_lettered=%d in_flight=%d",
            c.received,
            c.produced,
            c.dead_lettered,
            c.in_flight,
        )


def _now() -> str:
    return datetime.now(UTC).isoformat()
