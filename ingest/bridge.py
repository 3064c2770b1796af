"""MQTT → Kafka bridge that loses nothing.

Guarantees (docs/mqtt.md has the full contract):

* paho-mqtt 2.x, MQTT v5, persistent session (clean start off, session expiry), QoS1,
  ``manual_ack=True``: the broker receives the PUBACK for a message only after Kafka acknowledged
  the produce (``acks=all``). A crash at any instant therefore loses nothing: unacknowledged
  messages are redelivered to the session when the bridge comes back (duplicates are possible and
  counted downstream; every consumer is idempotent).
* A broker without MQTT v5 (amqtt, the embedded default's pure-Python fallback): before its first
  connection the bridge asks the broker (:func:`ingest.publisher.broker_protocol`, one throwaway
  connection) and, when v5 is refused, speaks MQTT 3.1.1 with a persistent session
  (``clean_session=False``, no expiry) and the same manual acknowledgement. A v5 CONNECT with
  the session-expiry property is never sent to such a broker: amqtt 0.12 mis-parses it and
  waits forever for bytes that never come.
* MQTT v5 shared subscription (``$share/<group>/env/#``) so several bridge processes split the load
  (on MQTT 3.1.1 the bridge subscribes plainly: shared subscriptions are a v5 feature).
* Partition = Kafka's default murmur2 partitioner of the source id, so one source's samples
  stay ordered in one partition. The samples of one partition from one burst travel as **one
  record**, an *envelope* (a JSON array of samples in arrival order, at most
  ``streams.records.ENVELOPE_MAX_BYTES``, no key, the partition given explicitly); a sample alone in
  its burst travels as before, one record keyed by its source id. Nothing waits to fill an
  envelope: a quiet stream is one sample per record, a loaded one many (``envelope_sizes``).
* Payloads are validated with :class:`ingest.schemas.Sample` and re-serialised canonically (a
  payload that already is canonical JSON is checked cheaply and forwarded as it came);
  anything invalid goes to the ``dead-letter`` topic with its original bytes, MQTT topic and
  reason, and is acknowledged once the dead letter is in Kafka.

Throughput: everything runs on one asyncio loop — paho is driven through its external-loop API
(:class:`_PahoOnLoop`), so there is no network thread, no thread hand-off and no contention for the
GIL. A readable socket is read for a burst of packets; ``on_message`` only appends the message's
plain values (generation, topic, payload, packet id) to a deque — the message object itself dies
at once instead of burdening the garbage collector while in flight. The pump drains the whole
burst, validates it (:func:`normalise`), fills one aiokafka ``BatchBuilder`` per (topic,
partition) and submits each with ``send_batch``: one future and one callback per Kafka batch, and
its PUBACKs go out together when it completes.

Ordering and reconnects:

* MQTT side: the bridge reconnects (backoff 1…30 s) with the same client id and session. Every
  (re)connect and disconnect bumps a *generation*; a message is acknowledged only on the connection
  it arrived on (paho's callbacks and the acks run on the same loop). A message from an older
  connection is never acked on a newer one — the broker resends it with its original packet id
  and the copy is acked instead (acking the stale id could acknowledge a *different* message that
  reuses the id). Messages still waiting from an older connection are dropped, not produced: the
  broker redelivers them, in order, ahead of anything newer.
* Broker restarts: the bridge's session, the messages queued or in flight for it and its *plain*
  subscription survive a mosquitto restart only if mosquitto could write its persistence file on
  SIGTERM (a reconnect that finds no session is logged and counted in ``sessions_lost``).
  mosquitto never saves *shared* subscriptions (2.0.11 installed; its persistence writer still
  walks only plain subscriptions in 2.0.20): after a restart, messages published before the
  bridge has re-subscribed match nothing and are dropped although the publisher got its PUBACK.
  Where a broker restart must lose nothing, run without ``mqtt_share_group`` (docs/mqtt.md §5).
* Session check (MQTT v5): the bridge keeps one marker message unacknowledged in its session
  (``envwatch/session/<username or client id>``) and publishes a fresh one on every connection;
  when the fresh one comes back before the held one, the session was lost whatever the broker's
  "session present" said (taken over, restored from an older save): ``sessions_lost`` + 1, one
  ERROR line, a ``mqtt_session_lost`` dead letter (:meth:`Bridge._on_marker`, docs/mqtt.md §5).
* Kafka broker lost or restarted empty: a watch (one metadata request a second) halts the bridge
  at once and the run loop recreates the topics before the next produce (docs/streams.md,
  "Broker restarts").
* Kafka side: aiokafka reconnects and retries a failed batch at the head of its partition's queue
  (one request in flight per partition), so a short outage neither loses nor reorders. When a
  produce finally fails (batch expired after ``request_timeout_ms``, or a non-retriable error) the
  bridge *halts*: it acknowledges nothing more, disconnects from MQTT, drops what it holds, waits
  for its outstanding produces, recreates the producer, and reconnects — the broker then redelivers
  every unacknowledged message in its original order. With a non-idempotent producer (Tansu
  supports no idempotence) one window remains: a later batch of the same partition that was
  already handed to aiokafka can still succeed after the failed one expired, so that failed batch
  lands after it. ``Settings.bridge_kafka_idempotence`` closes the window on a real Kafka
  (idempotent batches are retried until they succeed, never expired).

Metrics (:class:`Counters`): received, produced, dead-lettered, acked, in flight, lag (age of the
oldest message not yet acknowledged), produce failures, MQTT connects; logged every
``bridge_stats_interval`` seconds and, when ``bridge_metrics_port`` is set, served in Prometheus
text format on ``http://<bridge_metrics_host>:<port>/metrics`` (:func:`serve_metrics`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import re
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import orjson
import paho.mqtt.client as mqtt
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import ValidationError
from rules.factors import BY_KIND
from streams import kafkasecurity, topics
from streams.records import ENVELOPE_MAX_BYTES, DeadLetter, envelope_bytes
from streams.settings import Settings

from ingest.publisher import PublisherError, broker_protocol, connect_failure, protocol_name
from ingest.schemas import Flag, ForecastIssue, Interval, Sample, Value

log = logging.getLogger(__name__)

__all__ = [
    "Bridge",
    "Counters",
    "normalise",
    "prometheus_text",
    "serve_metrics",
    "topic_source",
]

#: s between two looks of the bridge at its Kafka broker (envwatch's choice [MEM]: one cheap
#: metadata request; a produce to a broker that vanished is halted within this time)
KAFKA_WATCH_INTERVAL: Final = 1.0

#: Topic prefix of the bridge's session markers: ``envwatch/session/<username or client id>``
#: (deploy/mosquitto/acl.template lets each account read and write only its own).
MARKER_PREFIX: Final = "envwatch/session"

#: A payload larger than this is dead-lettered (and cut to this size there): Kafka's default
#: ``max.request.size`` is 1 MiB and the dead letter carries the payload base64-encoded (×4/3).
MAX_PAYLOAD: Final = 512 * 1024
_SAMPLE_JSON = Sample.__pydantic_serializer__.to_json


@dataclass
class Counters:
    """The bridge's counters since start (monotonic; read them, do not write them)."""

    received: int = 0
    produced: int = 0
    dead_lettered: int = 0
    acked: int = 0
    released: int = 0  # not acknowledged, left to the broker to redeliver (lost connection, halt)
    produce_failures: int = 0
    mqtt_connects: int = 0
    sessions_lost: int = 0  # reconnects on which the broker no longer had our session
    mqtt_protocol: int = 0  # MQTT version in use: 5, or 4 (3.1.1); 0 before the first connect
    halts: int = 0
    started: float = field(default_factory=time.monotonic)
    oldest_unacked: float | None = None  # monotonic receipt time of the oldest open message

    @property
    def in_flight(self) -> int:
        """Messages received and neither acknowledged nor released for redelivery."""
        return self.received - self.acked - self.released

    def lag(self, now: float) -> float:
        """Seconds the oldest unacknowledged message has been waiting (0 when none)."""
        return 0.0 if self.oldest_unacked is None else max(0.0, now - self.oldest_unacked)


def topic_source(topic: str) -> str | None:
    """The source id segment of ``env/{kind}/{locality}/{source}``."""
    parts = topic.split("/")
    return parts[3] if len(parts) == 4 and parts[0] == "env" else None


def _string_rule(name: str) -> tuple[int, int, re.Pattern[str]]:
    """(min length, max length, pattern) of a constrained ``str`` field of :class:`Sample`."""
    lo = hi = pattern = None
    for m in Sample.model_fields[name].metadata:
        lo = getattr(m, "min_length", lo)
        hi = getattr(m, "max_length", hi)
        pattern = getattr(m, "pattern", pattern)
    if lo is None or hi is None or pattern is None:
        raise RuntimeError(f"Sample.{name}: expected min_length, max_length and pattern")
    return lo, hi, re.compile(pattern)


# What the fast path checks, read from the models (they stay the single source of truth).
_SAMPLE_KEYS: Final = tuple(f.alias or n for n, f in Sample.model_fields.items())
_VALUE_KEYS: Final = tuple(f.alias or n for n, f in Value.model_fields.items())
_SOURCE_RULE: Final = _string_rule("source")
_LOCALITY_RULE: Final = _string_rule("locality")
_FACTORS: Final = {kind.value: frozenset(vocab) for kind, vocab in BY_KIND.items()}
_INTERVALS: Final = frozenset(i.value for i in Interval)
_FLAGS: Final = frozenset(f.value for f in Flag)
#: The one time shape the fast path accepts: what pydantic parses and writes back unchanged (it
#: writes a zero offset as ``Z`` and fractions as six digits, so those go to the model). The day
#: of the month is checked by ``datetime.fromisoformat``.
_TIME: Final = re.compile(
    r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d"
    r"(?:Z|[+-](?:0[1-9]|1\d|2[0-3]):[0-5]\d|[+-]00:(?:0[1-9]|[1-5]\d))"
)


def _canonical_key(topic: str, payload: bytes) -> bytes | None:
    """The Kafka key if ``payload`` already *is* the canonical JSON of a valid sample for ``topic``.

    ``None`` means "not sure": the caller asks the model, which decides and names the reason.
    So this accepts only a subset of what :class:`Sample` accepts — all fields present, in the
    model's order, values as floats (or null) with flags, no whitespace — and for that subset the
    model would write exactly ``payload`` back (tests/ingest/test_bridge.py checks both).
    """
    try:
        d = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if type(d) is not dict or tuple(d) != _SAMPLE_KEYS:
        return None
    schema, kind, locality, source, when, interval, values = d.values()
    if type(schema) is not int or schema != 1:
        return None
    if type(kind) is not str or (vocab := _FACTORS.get(kind)) is None:
        return None
    lo, hi, pattern = _SOURCE_RULE
    if type(source) is not str or not lo <= len(source) <= hi or not pattern.match(source):
        return None
    lo, hi, pattern = _LOCALITY_RULE
    if type(locality) is not str or not lo <= len(locality) <= hi or not pattern.match(locality):
        return None
    if topic != f"env/{kind}/{locality}/{source}":
        return None
    if type(when) is not str or not _TIME.fullmatch(when):
        return None
    try:
        datetime.fromisoformat(when)
    except ValueError:
        return None
    if type(interval) is not str or interval not in _INTERVALS:
        return None
    if type(values) is not dict or not values:
        return None
    for name, v in values.items():
        if name not in vocab or type(v) is not dict or tuple(v) != _VALUE_KEYS:
            return None
        x, flag = v.values()
        if (x is not None and type(x) is not float) or type(flag) is not str:
            return None
        if flag not in _FLAGS:
            return None
    if orjson.dumps(d) != payload:  # whitespace, escapes, duplicate keys, number spelling
        return None
    return source.encode()


def normalise(topic: str, payload: bytes) -> tuple[bytes, bytes]:
    """Validate one MQTT message; return (Kafka key, canonical JSON). Raises ValueError.

    A payload that already is canonical JSON is forwarded as it came (:func:`_canonical_key`);
    anything else is validated and re-serialised by the model, which names what is wrong.
    """
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    key = _canonical_key(topic, payload)
    if key is not None:
        return key, payload
    if topic.startswith("env/forecast/") and b'"days"' in payload:
        return _forecast_issue(topic, payload)
    try:
        sample = Sample.model_validate_json(payload)
    except ValidationError as exc:
        raise _invalid("sample", exc) from exc
    _check_topic(topic, f"env/{sample.kind.value}/{sample.locality}/{sample.source}")
    return sample.source.encode(), _SAMPLE_JSON(sample, by_alias=True)


def _forecast_issue(topic: str, payload: bytes) -> tuple[bytes, bytes]:
    """An AQI forecast issue (ingest.schemas.ForecastIssue): validated and re-serialised."""
    try:
        issue = ForecastIssue.model_validate_json(payload)
    except ValidationError as exc:
        raise _invalid("forecast issue", exc) from exc
    _check_topic(topic, f"env/forecast/{issue.locality}/{issue.source}")
    return issue.source.encode(), issue.model_dump_json(by_alias=True, exclude_none=True).encode()


def _invalid(what: str, exc: ValidationError) -> ValueError:
    """A validation error as the dead letter's reason: the first field, its message, the count."""
    first = exc.errors()[0]
    where = ".".join(str(x) for x in first["loc"]) or "payload"
    return ValueError(f"invalid {what}: {where}: {first['msg']} ({exc.error_count()} error(s))")


def _check_topic(topic: str, expected: str) -> None:
    if topic != expected:
        raise ValueError(f"topic {topic!r} does not match the payload (expected {expected!r})")


# ------------------------------------------------------------------------------ Prometheus


def prometheus_text(metrics: Iterable[tuple[str, str, str, float]]) -> bytes:
    """Prometheus text exposition (format 0.0.4) of ``(name, type, help, value)`` tuples."""
    lines: list[str] = []
    for name, kind, text, value in metrics:
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", f"{name} {value:g}"]
    return ("\n".join(lines) + "\n").encode()


async def serve_metrics(render: Callable[[], bytes], host: str, port: int) -> asyncio.Server:
    """A tiny HTTP/1.0 server answering ``GET /metrics`` with ``render()`` (stdlib only)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            method, path = [*request.split(b" ", 2), b"", b""][:2]
            if method != b"GET":
                status, body, ctype = b"405 Method Not Allowed", b"GET only\n", b"text/plain"
            elif path.split(b"?")[0] in (b"/metrics", b"/"):
                status, body = b"200 OK", render()
                ctype = b"text/plain; version=0.0.4; charset=utf-8"
            else:
                status, body, ctype = b"404 Not Found", b"try /metrics\n", b"text/plain"
            writer.write(
                b"HTTP/1.0 " + status + b"\r\nContent-Type: " + ctype
                + b"\r\nContent-Length: " + str(len(body)).encode()
                + b"\r\nConnection: close\r\n\r\n" + body
            )  # fmt: skip
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port, reuse_address=True)


# ------------------------------------------------------------------------------ the bridge


#: A message as paho delivered it: (connection generation, monotonic receipt time, topic, payload,
#: packet id, QoS).
_Received = tuple[int, float, str, bytes, int, int]


@dataclass(slots=True)
class _Envelope:
    """The samples of one ``readings`` partition gathered from one burst (streams.wire)."""

    key: bytes  # the first sample's key: the record's key when it travels alone
    values: list[bytes] = field(default_factory=list)
    mids: list[tuple[int, int]] = field(default_factory=list)
    size: int = 1


#: envelope sizes are counted up to this many samples; larger ones count here
ENVELOPE_HISTOGRAM_TOP: Final = 1024


@dataclass(slots=True)
class _Out:
    """One Kafka batch being filled: its builder and the messages it acknowledges."""

    builder: Any  # aiokafka BatchBuilder
    mids: list[tuple[int, int]]  # (mid, qos) to ack
    samples: int = 0
    dead: int = 0


class _PahoOnLoop:
    """Drives one paho client from the asyncio loop: no network thread, no hand-off.

    paho's external-loop API: the socket callbacks register the client's socket with the loop
    (``loop_read`` when readable, ``loop_write`` while paho has something to send), a task calls
    ``loop_misc`` every second (keepalive) and, when the connection is lost, reconnects with
    exponential backoff — what ``loop_start`` did in its thread. All paho callbacks
    (``on_connect``, ``on_message``, ``on_disconnect``) therefore run on the loop. Only the
    blocking TCP connect runs in a worker thread; the socket callbacks it triggers are forwarded
    to the loop.
    """

    #: Packets read per readable event before the loop gets a turn (processing, Kafka, acks).
    READ_BURST: Final = 64
    #: Seconds :meth:`close` waits for paho to write DISCONNECT before it closes the socket.
    CLOSE_GRACE: Final = 3.0

    def __init__(
        self,
        client: mqtt.Client,
        loop: asyncio.AbstractEventLoop,
        *,
        progress: Callable[[], int],
        after_read: Callable[[], None],
        min_delay: float = 1.0,
        max_delay: float = 30.0,
    ) -> None:
        self.client = client
        self._loop = loop
        self._thread = threading.get_ident()
        self._progress = progress  # grows with every message paho delivered
        self._after_read = after_read
        self._min_delay = min_delay
        self._max_delay = max_delay
        self.delay = min_delay
        self._sock: Any = None
        self._closed = asyncio.Event()
        self._closed.set()
        self._connecting: asyncio.Future[Any] | None = None
        self._task: asyncio.Task[None] | None = None
        client.on_socket_open = self._from_any_thread(self._opened)
        client.on_socket_close = self._from_any_thread(self._gone)
        client.on_socket_register_write = self._from_any_thread(self._want_write)
        client.on_socket_unregister_write = self._from_any_thread(self._no_write)

    def _from_any_thread(self, fn: Callable[[Any], None]) -> Callable[..., None]:
        def callback(_client: object, _userdata: object, sock: Any) -> None:
            if threading.get_ident() == self._thread:
                fn(sock)
            else:  # the connect in the worker thread
                self._loop.call_soon_threadsafe(fn, sock)

        return callback

    def _opened(self, sock: Any) -> None:
        self._sock = sock
        self._closed.clear()
        self._loop.add_reader(sock, self._readable)

    def _gone(self, sock: Any) -> None:
        self._loop.remove_reader(sock)
        self._loop.remove_writer(sock)
        if self._sock is sock:
            self._sock = None
            self._closed.set()

    def _want_write(self, sock: Any) -> None:
        if sock is self._sock:
            self._loop.add_writer(sock, self.client.loop_write)

    def _no_write(self, sock: Any) -> None:
        self._loop.remove_writer(sock)

    def _readable(self) -> None:
        client, progress = self.client, self._progress
        try:
            for _ in range(self.READ_BURST):
                before = progress()
                if client.loop_read() != mqtt.MQTT_ERR_SUCCESS or progress() == before:
                    break  # lost, no more data yet, or a control packet: the next event goes on
        finally:
            self._after_read()
        # TLS: bytes already decrypted into the SSL object's buffer make the socket no longer
        # readable, so no event would come for them; read them on the next turn of the loop.
        # Defensive: mosquitto 2.0.11 writes one TLS record per MQTT packet, so a 3 000-sample
        # burst over TLS passed without it too (tests/integration/test_bridge_tls.py, 20 samples)
        pending = getattr(self._sock, "pending", None)
        if pending is not None and pending() > 0:
            self._loop.call_soon(self._readable)

    async def _connect(self, connect: Callable[[], object]) -> None:
        """``connect`` (blocking) in a worker thread; finishes even if the caller is cancelled."""
        self._connecting = asyncio.ensure_future(asyncio.to_thread(connect))
        try:
            await asyncio.shield(self._connecting)
        finally:
            if self._connecting.done():
                self._connecting = None

    async def start(self, connect: Callable[[], object]) -> None:
        """First connect (raises if the broker is unreachable), then keep the client connected."""
        await self._connect(connect)
        self._task = asyncio.create_task(self._keep())

    async def _keep(self) -> None:
        client = self.client
        while True:
            while self._sock is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closed.wait(), 1.0)
                if self._sock is not None:
                    client.loop_misc()
            log.info("bridge: reconnecting to MQTT in %.0fs", self.delay)
            await asyncio.sleep(self.delay)
            self.delay = min(self.delay * 2, self._max_delay)
            try:
                await self._connect(client.reconnect)
            except Exception as exc:
                log.warning("bridge: MQTT reconnect failed: %r", exc)

    def connected(self) -> None:
        """CONNACK accepted: the next reconnect starts from the shortest delay again."""
        self.delay = self._min_delay

    async def close(self) -> None:
        """Stop reconnecting, send DISCONNECT, and close the socket (forced after a grace)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._connecting is not None:  # never leave a connection opened behind our back
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._connecting), self.CLOSE_GRACE + 10)
        sock = self._sock
        if sock is None:
            return
        with contextlib.suppress(Exception):
            self.client.disconnect()  # paho closes the socket once DISCONNECT is written
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), self.CLOSE_GRACE)
        if self._sock is sock:
            self._gone(sock)
            sock.close()


class Bridge:
    """``Bridge(settings)``; ``await bridge.run(ready=event)`` until ``bridge.stop()``."""

    def __init__(self, settings: Settings, *, stats_interval: float | None = None) -> None:
        self.s = settings
        #: account and TLS of the MQTT connection; a missing or bad CA, certificate, key or
        #: password file is a ValueError here, at start, not a retry loop (docs/mqtt.md §4)
        self._auth = settings.mqtt_auth()
        self.counters = Counters()
        self._stats_interval = (
            stats_interval if stats_interval is not None else settings.bridge_stats_interval
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._producer: AIOKafkaProducer | None = None
        self._client: mqtt.Client | None = None
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._paho: _PahoOnLoop | None = None
        # messages paho delivered, not yet processed
        self._inbox: collections.deque[_Received] = collections.deque()
        # generation of the MQTT connection; acks only for the current one (see module docs)
        self._gen = 0
        self._connected = False
        self._connected_event = asyncio.Event()
        self._pending: set[asyncio.Future[Any]] = set()
        self._open: dict[int, list[Any]] = {}  # drain id → [received_at, open batches]
        self._drain_id = 0
        self._failure: BaseException | None = None
        self._partitioner = DefaultPartitioner()
        self._partitions: dict[str, list[int]] = {}
        self._key_partition: dict[tuple[str, bytes], int] = {}
        #: MQTT version, asked from the broker before the first connection (v5, else 3.1.1)
        self._protocol: MQTTProtocolVersion | None = None
        # the session check (MQTT v5 brokers only, see _start_mqtt): marker topic, this
        # process's token, the marker held in the session, the check of the current connection
        self._marker_topic: str | None = None
        self._token = uuid.uuid4().hex[:12]
        self._marker_seq = 0
        self._held: tuple[str, int] | None = None
        self._check: _SessionCheck | None = None
        self._tasks: set[asyncio.Future[None]] = set()
        self._readings = topics.name(topics.READINGS, settings.topic_prefix)
        self._dead = topics.name(topics.DEAD_LETTER, settings.topic_prefix)
        #: samples per ``readings`` record handed to the producer → how many such records
        #: (what the bursts really make of envelopes; bench/bench_worker.py uses it)
        self.envelope_sizes: collections.Counter[int] = collections.Counter()
        self.metrics_address: tuple[str, int] | None = None

    # ---------------------------------------------------------------- paho callbacks (on the loop)
    def _on_connect(
        self, client: mqtt.Client, _u: object, flags: object, rc: object, _p: object = None
    ) -> None:
        if getattr(rc, "is_failure", False):
            log.error("bridge: MQTT connect refused: %s", rc)
            return
        self._gen += 1
        self._connected = True
        if self._paho is not None:
            self._paho.connected()
        self.counters.mqtt_connects += 1
        present = bool(getattr(flags, "session_present", False))
        lost = not present and self.counters.mqtt_connects > 1
        if lost:
            # clean_start is off and the expiry long: the broker dropped the session (restarted
            # without persistence, or could not write its persistence file), and with it every
            # message it had queued or in flight for us — they will never arrive.
            self._session_lost(
                "the broker answered session present = 0 (restarted without persistence?)"
            )
        sub = self.s.mqtt_topic
        if self.s.mqtt_share_group and self._protocol == mqtt.MQTTv5:
            sub = f"$share/{self.s.mqtt_share_group}/{sub}"
        client.subscribe(sub, qos=1)
        if self._marker_topic is not None:
            # the session check: subscribe the marker topic, then publish a fresh marker. The
            # broker re-sends the marker held unacknowledged in the session before it (it is
            # older than anything published now); see _on_marker.
            client.subscribe(self._marker_topic, qos=1)
            self._marker_seq += 1
            new = (self._token, self._marker_seq)
            self._check = _SessionCheck(expect=self._held, new=new, counted=lost)
            client.publish(
                self._marker_topic, orjson.dumps({"bridge": new[0], "seq": new[1]}), qos=1
            )
        log.info(
            "bridge: connected to MQTT %s:%s with %s (session present: %s), subscribed %s",
            self.s.mqtt_host,
            self.s.mqtt_port,
            protocol_name(self._protocol or mqtt.MQTTv5),
            present,
            sub,
        )
        self._connected_event.set()

    def _on_disconnect(
        self, _c: object, _u: object, _f: object, rc: object, _p: object = None
    ) -> None:
        self._gen += 1
        self._connected = False
        if self._stop.is_set() or self._failure is not None:
            log.info("bridge: MQTT disconnected (%s)", rc)
        else:
            log.warning("bridge: MQTT disconnected (%s); reconnecting with backoff", rc)
        self._connected_event.clear()

    def _session_lost(self, why: str) -> None:
        """Count a lost session, log one line, and leave a dead letter (the data-quality view)."""
        self.counters.sessions_lost += 1
        log.error(
            "bridge: MQTT session %r lost: %s; messages queued for it while the bridge was "
            "away are gone (sessions_lost=%d)",
            self.s.mqtt_client_id,
            why,
            self.counters.sessions_lost,
        )
        producer = self._producer
        if producer is None:
            return
        letter = DeadLetter.build(
            "bridge",
            f"mqtt_session_lost: {why}",
            b"",
            origin=f"mqtt://{self.s.mqtt_host}:{self.s.mqtt_port}/{self.s.mqtt_client_id}",
            at=_now(),
        )

        async def send() -> None:
            try:
                await producer.send_and_wait(self._dead, letter.to_bytes(), key=b"bridge")
            except Exception as exc:  # the counter and the log line remain
                log.warning("bridge: could not record the lost session in Kafka (%r)", exc)

        task = asyncio.ensure_future(send())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_marker(self, client: mqtt.Client, msg: mqtt.MQTTMessage) -> None:
        """A session marker came back (see module docs, "Session check")."""
        try:
            d = orjson.loads(msg.payload)
            marker = (str(d["bridge"]), int(d["seq"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            client.ack(msg.mid, msg.qos)  # not ours: the ACL lets only our account write there
            return
        check = self._check
        if check is not None and marker == check.new:
            # the fresh marker: the one held before this connection should have come first
            if check.expect is not None and not check.seen and not check.counted:
                self._session_lost(
                    "the broker said the session was present but the marker held in it did "
                    "not come back (taken over by another client, or restored from an older "
                    "save)"
                )
            self._check = None
            self._held = marker  # held unacknowledged: it lives in the session from now on
            return
        if check is not None and marker == check.expect:
            check.seen = True
        elif marker[0] == self._token and self._held is not None and marker[1] < self._held[1]:
            if check is not None and not check.counted:
                check.counted = True
                self._session_lost(
                    f"the broker re-sent marker {marker[1]} older than the one held "
                    f"({self._held[1]}): it restored an older state of the session"
                )
        elif marker[0] != self._token and self.counters.mqtt_connects > 1:
            log.warning(
                "bridge: a session marker of another bridge process (%s) in session %r: "
                "two processes use this identity",
                marker[0],
                self.s.mqtt_client_id,
            )
        client.ack(msg.mid, msg.qos)  # replaced by the fresh marker

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == self._marker_topic and self._client is not None:
            self._on_marker(self._client, msg)
            return
        self.counters.received += 1
        # keep only plain values: the message object (with its properties) dies here, by
        # reference count, instead of piling up for the garbage collector while in flight
        payload = bytes(msg.payload)  # paho gives bytes: no copy
        self._inbox.append((self._gen, time.monotonic(), msg.topic, payload, msg.mid, msg.qos))

    def _after_read(self) -> None:
        if self._inbox:
            self._wake.set()

    # ---------------------------------------------------------------- lifecycle
    def _make_client(self, protocol: MQTTProtocolVersion) -> mqtt.Client:
        # the session persists: 3.1.1 by clean_session=False (no expiry in 3.1.1), v5 by
        # clean_start=False and the session expiry sent with CONNECT (_start_mqtt)
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.s.mqtt_client_id,
            clean_session=None if protocol == mqtt.MQTTv5 else False,
            protocol=protocol,
            manual_ack=True,
        )
        self._auth.apply(client)  # TLS when ENVWATCH_MQTT_TLS_CA_FILE is set, the account
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _make_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=topics.bootstrap_of(self.s.kafka),
            acks="all",
            enable_idempotence=self.s.bridge_kafka_idempotence,
            linger_ms=2,
            max_batch_size=256 * 1024,
            request_timeout_ms=int(self.s.bridge_kafka_timeout * 1000),
            **kafkasecurity.client_kwargs(self.s),
        )

    async def run(self, *, ready: asyncio.Event | None = None) -> None:
        """Run until :meth:`stop` is called. Kafka is connected first, then MQTT.

        ``ready`` is set once both are connected the first time.
        """
        self._loop = asyncio.get_running_loop()
        server: asyncio.Server | None = None
        if self.s.bridge_metrics_port is not None:
            server = await serve_metrics(
                self.render_metrics, self.s.bridge_metrics_host, self.s.bridge_metrics_port
            )
            host, port = server.sockets[0].getsockname()[:2]
            self.metrics_address = (str(host), int(port))
            log.info("bridge: Prometheus metrics on http://%s:%d/metrics", host, port)
        topics.quiet_client_logs()  # aiokafka's per-attempt errors: once each per outage
        topics.explicit_topics_only()  # the bridge creates its topics before producing
        stats = asyncio.create_task(self._stats())
        watch = asyncio.create_task(self._watch_kafka())
        delay = 0.5
        try:
            while not self._stop.is_set():
                # (again) after a halt: a broker restarted without its data has lost the topics
                await self._retry("Kafka topics", self._ensure_topics)
                await self._retry("Kafka", self._start_producer)
                if self._stop.is_set():
                    break
                await self._retry("MQTT", self._start_mqtt)
                await self._wait_connected()
                if ready is not None and self._connected:
                    ready.set()
                await self._pump()  # returns on stop or on a failed produce
                if self._failure is None:
                    await self._shutdown()
                    break
                await self._halt(delay)
                delay = min(delay * 2, 30.0)
        finally:
            stats.cancel()
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stats
            with contextlib.suppress(asyncio.CancelledError):
                await watch
            await self._teardown_client()
            await self._teardown_producer()
            if server is not None:
                server.close()
            self._log_stats()

    def stop(self) -> None:
        """Ask :meth:`run` to finish: outstanding produces are awaited and acknowledged first."""
        self._stop.set()
        self._wake.set()

    async def _ensure_topics(self) -> None:
        await topics.ensure_topics(self.s.kafka, self.s.partitions, self.s.topic_prefix)

    async def _start_producer(self) -> None:
        producer = self._make_producer()
        try:
            await producer.start()
            for t in (self._readings, self._dead):
                self._partitions[t] = sorted(await producer.partitions_for(t))
        except BaseException:
            with contextlib.suppress(Exception):
                await producer.stop()
            raise
        self._producer = producer
        self._key_partition.clear()

    async def _negotiate(self) -> MQTTProtocolVersion:
        """The MQTT version to speak, asked once (the broker answers at once, either way)."""
        if self._protocol is not None:
            return self._protocol
        s = self.s
        try:
            # without the bridge's account: where the broker ties the client id to the username
            # (use_username_as_clientid), the probe's clean-start CONNECT with that account
            # *is* the bridge's session and would wipe it. A refusal for the missing credentials
            # is an answer of a v5 broker all the same (ingest.publisher.broker_protocol).
            protocol = await asyncio.to_thread(
                broker_protocol, s.mqtt_host, s.mqtt_port, timeout=10.0, tls=self._auth.tls
            )
        except PublisherError as exc:
            raise ConnectionError(f"MQTT broker {exc.target}: {exc.reason}") from None
        if protocol != mqtt.MQTTv5:
            log.warning(
                "bridge: the MQTT broker at %s:%s has no MQTT v5; using MQTT 3.1.1 with a "
                "persistent session (clean_session=False)%s",
                s.mqtt_host,
                s.mqtt_port,
                f", plain subscription instead of $share/{s.mqtt_share_group}"
                if s.mqtt_share_group
                else "",
            )
        self._protocol = protocol
        self.counters.mqtt_protocol = int(protocol)
        return protocol

    async def _start_mqtt(self) -> None:
        protocol = await self._negotiate()
        if protocol == mqtt.MQTTv5 and self.s.bridge_session_check:
            # mosquitto keeps an unacknowledged QoS 1 message in the session for good; amqtt
            # (3.1.1) drops it after 5 s, so there the check would always fire
            self._marker_topic = f"{MARKER_PREFIX}/{self.s.mqtt_username or self.s.mqtt_client_id}"
        client = self._make_client(protocol)

        def connect() -> None:
            try:
                if protocol != mqtt.MQTTv5:
                    client.connect(self.s.mqtt_host, self.s.mqtt_port, keepalive=30)
                    return
                props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
                props.SessionExpiryInterval = self.s.mqtt_session_expiry
                client.connect(
                    self.s.mqtt_host,
                    self.s.mqtt_port,
                    keepalive=30,
                    clean_start=False,
                    properties=props,
                )
            except (OSError, ValueError) as exc:  # ssl.CertificateError is a ValueError
                why = connect_failure(exc, self._auth.tls is not None)
                raise ConnectionError(
                    f"MQTT broker {self.s.mqtt_host}:{self.s.mqtt_port}: {why}"
                ) from None

        assert self._loop is not None
        paho = _PahoOnLoop(
            client,
            self._loop,
            progress=lambda: self.counters.received,
            after_read=self._after_read,
        )
        self._client, self._paho = client, paho
        try:
            await paho.start(connect)
        except BaseException:
            self._client = self._paho = None
            await paho.close()
            raise

    async def _wait_connected(self) -> None:
        """Until the first CONNACK (:class:`_PahoOnLoop` keeps reconnecting) or stop."""
        stop = asyncio.ensure_future(self._stop.wait())
        conn = asyncio.ensure_future(self._connected_event.wait())
        try:
            await asyncio.wait({stop, conn}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            conn.cancel()

    async def _retry(self, what: str, fn: Callable[[], Awaitable[None]]) -> None:
        """``fn`` until it succeeds, backoff 0.5…30 s; one log line when it first fails and one
        when it succeeds again (not one per attempt)."""
        delay = 0.5
        failed_at: float | None = None
        attempts = 0
        while not self._stop.is_set():
            try:
                await fn()
            except Exception as exc:
                attempts += 1
                if failed_at is None:
                    failed_at = time.monotonic()
                    log.warning(
                        "bridge: %s not reachable (%r); retrying with backoff up to 30 s",
                        what,
                        exc,
                    )
                else:
                    log.debug("bridge: %s still not reachable (%r)", what, exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
                delay = min(delay * 2, 30.0)
                continue
            if failed_at is not None:
                log.info(
                    "bridge: %s reachable again after %.1f s (%d failed attempts; %d repeated "
                    "client log lines suppressed)",
                    what,
                    time.monotonic() - failed_at,
                    attempts,
                    topics.REPEATS.reset(),
                )
            return

    async def _shutdown(self) -> None:
        """Graceful stop: let outstanding produces finish (they are acked), then disconnect."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=self.s.bridge_kafka_timeout + 5)
        await self._teardown_client()

    async def _halt(self, delay: float) -> None:
        """A produce failed: ack nothing more, let the broker redeliver, rebuild both sides."""
        self.counters.halts += 1
        lost = isinstance(self._failure, _KafkaLost)
        log.error(
            "bridge: %s; reconnecting both sides in %.1fs for an in-order redelivery",
            self._failure if lost else f"Kafka produce failed ({self._failure!r})",
            delay,
        )
        await self._teardown_client()  # bumps the generation: no further acks
        if self._pending:
            # a lost broker answers none of them: whatever they do later is never acknowledged
            # (generation bumped), the broker redelivers those messages
            grace = 1.0 if lost else self.s.bridge_kafka_timeout + 5
            await asyncio.wait(set(self._pending), timeout=grace)
        self._drop_inbox()
        await self._teardown_producer()
        self._failure = None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), delay)

    async def _teardown_client(self) -> None:
        paho, self._paho, self._client = self._paho, None, None
        if paho is None:
            return
        self._gen += 1
        self._connected = False
        await paho.close()
        self._connected_event.clear()
        self._drop_inbox()

    async def _teardown_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), self.s.bridge_kafka_timeout + 5)

    async def _watch_kafka(self) -> None:
        """Every :data:`KAFKA_WATCH_INTERVAL` s while producing: is the broker there, with the
        topics? If not, halt at once (do not let aiokafka retry into a broker that came back
        empty): the run loop recreates the topics *before* the next produce. On Tansu a topic
        auto-created by a client's request while envwatch creates it can come out reset,
        losing what was written to it meanwhile (seen in tests/integration/test_fault_brokers.py);
        producing only after our own creation keeps acknowledged samples out of that window."""
        from aiokafka.admin import AIOKafkaAdminClient

        admin: AIOKafkaAdminClient | None = None
        try:
            while True:
                await asyncio.sleep(KAFKA_WATCH_INTERVAL)
                if self._producer is None or self._failure is not None:
                    continue  # halted or starting: the run loop is in charge
                reason = None
                try:
                    if admin is None:
                        admin = AIOKafkaAdminClient(
                            bootstrap_servers=topics.bootstrap_of(self.s.kafka),
                            request_timeout_ms=5000,
                            **kafkasecurity.client_kwargs(self.s),
                        )
                        await admin.start()
                    names = set(await asyncio.wait_for(admin.list_topics(), 10))
                    gone = sorted({self._readings, self._dead} - names)
                    if gone:
                        reason = (
                            f"Kafka topics {', '.join(gone)} are gone (broker restarted empty?)"
                        )
                except Exception as exc:
                    if admin is not None:
                        with contextlib.suppress(Exception):
                            await admin.close()
                    admin = None
                    reason = f"Kafka broker unreachable ({type(exc).__name__})"
                if reason is not None and self._failure is None and self._producer is not None:
                    self._failure = _KafkaLost(reason)
                    self._wake.set()
        finally:
            if admin is not None:
                with contextlib.suppress(Exception):
                    await admin.close()

    def _drop_inbox(self) -> None:
        while self._inbox:
            self._inbox.popleft()
            self.counters.released += 1
        self._refresh_oldest()

    # ---------------------------------------------------------------- loop side
    async def _pump(self) -> None:
        inbox = self._inbox
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._stop.is_set():
                return
            if self._failure is not None:
                return
            if not inbox:
                continue
            batch = [inbox.popleft() for _ in range(len(inbox))]
            await self._process(batch)

    async def _process(self, batch: list[_Received]) -> None:
        assert self._producer is not None
        producer = self._producer
        gen = self._gen
        outs: dict[tuple[str, int], _Out] = {}
        full: list[tuple[str, int, _Out]] = []
        #: readings partition → the envelope being filled (samples in arrival order)
        envelopes: dict[int, _Envelope] = {}
        received_at = batch[0][1]
        c = self.counters
        readings = self._readings

        def put(
            target: str, part: int, key: bytes | None, value: bytes, mids: list[tuple[int, int]]
        ) -> None:
            out = outs.get((target, part))
            if out is None:
                out = outs[(target, part)] = _Out(producer.create_batch(), [])
            if out.builder.append(key=key, value=value, timestamp=None) is None:
                full.append((target, part, out))
                out = outs[(target, part)] = _Out(producer.create_batch(), [])
                out.builder.append(key=key, value=value, timestamp=None)
            out.mids += mids
            if target == readings:
                out.samples += len(mids)
            else:
                out.dead += len(mids)

        def seal(part: int, env: _Envelope) -> None:
            if len(env.values) == 1:  # alone: the plain form, keyed by its source
                put(readings, part, env.key, env.values[0], env.mids)
            else:
                put(readings, part, None, envelope_bytes(env.values), env.mids)
            self.envelope_sizes[min(len(env.values), ENVELOPE_HISTOGRAM_TOP)] += 1

        for msg_gen, _at, topic, payload, mid, qos in batch:
            if msg_gen != gen:  # from a lost connection: the broker redelivers it
                c.released += 1
                continue
            try:
                key, value = normalise(topic, payload)
            except ValueError as exc:
                key = (topic_source(topic) or "").encode()
                value = DeadLetter.build(
                    "bridge", str(exc), payload[:MAX_PAYLOAD], origin=topic, at=_now()
                ).to_bytes()
                log.info("bridge: dead-letter %s: %s", topic, exc)
                put(self._dead, self._partition_of(self._dead, key), key, value, [(mid, qos)])
                continue
            # the samples of one partition travel together, in arrival order, in envelopes of
            # at most ENVELOPE_MAX_BYTES (streams.wire): one Kafka record for many samples
            part = self._partition_of(readings, key)
            env = envelopes.get(part)
            if env is not None and env.size + len(value) + 1 > ENVELOPE_MAX_BYTES:
                seal(part, env)
                env = None
            if env is None:
                env = envelopes[part] = _Envelope(key)
            env.values.append(value)
            env.size += len(value) + 1
            env.mids.append((mid, qos))
        for part, env in envelopes.items():
            seal(part, env)
        batches = [*full, *((t, p, o) for (t, p), o in outs.items())]
        if not batches:
            self._refresh_oldest()
            return
        self._drain_id += 1
        drain = self._drain_id
        self._open[drain] = [received_at, len(batches)]
        if c.oldest_unacked is None:
            c.oldest_unacked = received_at
        for target, part, out in batches:
            if self._failure is not None:  # halted meanwhile: leave the rest to redelivery
                c.released += len(out.mids)
                self._close_drain(drain)
                continue
            try:
                fut = await producer.send_batch(out.builder, target, partition=part)
            except Exception as exc:  # accumulator full past the timeout, producer closed …
                self._fail(exc)
                c.released += len(out.mids)
                self._close_drain(drain)
                continue
            self._pending.add(fut)
            fut.add_done_callback(lambda f, o=out, g=gen, d=drain: self._after_produce(f, o, g, d))

    def _partition_of(self, topic: str, key: bytes) -> int:
        cached = self._key_partition.get((topic, key))
        if cached is not None:
            return cached
        parts = self._partitions[topic]
        part: int = self._partitioner(key, parts, parts)
        if len(self._key_partition) > 100_000:  # bound memory against arbitrary topics
            self._key_partition.clear()
        self._key_partition[(topic, key)] = part
        return part

    def _after_produce(self, fut: asyncio.Future[Any], out: _Out, gen: int, drain: int) -> None:
        self._pending.discard(fut)
        self._close_drain(drain)
        c = self.counters
        if fut.cancelled() or fut.exception() is not None:
            self._fail(fut.exception() or asyncio.CancelledError())
            c.released += len(out.mids)
            return
        c.produced += out.samples
        c.dead_lettered += out.dead
        if self._failure is not None:
            # halted: acknowledge nothing more; the broker redelivers in order
            c.released += len(out.mids)
            return
        client = self._client
        if gen != self._gen or client is None or not self._connected:
            c.released += len(out.mids)
            return
        for mid, qos in out.mids:
            client.ack(mid, qos)
        c.acked += len(out.mids)

    def _fail(self, exc: BaseException) -> None:
        self.counters.produce_failures += 1
        if self._failure is None:
            self._failure = exc
            self._wake.set()

    def _close_drain(self, drain: int) -> None:
        entry = self._open.get(drain)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] <= 0:
            del self._open[drain]
            self._refresh_oldest()

    def _refresh_oldest(self) -> None:
        first = next(iter(self._open.values()), None)
        if first is not None:
            self.counters.oldest_unacked = first[0]
        elif self._inbox:
            self.counters.oldest_unacked = self._inbox[0][1]
        else:
            self.counters.oldest_unacked = None

    # ---------------------------------------------------------------- metrics
    def metrics(self) -> list[tuple[str, str, str, float]]:
        """``(name, type, help, value)`` for every bridge metric (Prometheus naming)."""
        c = self.counters
        now = time.monotonic()
        waiting = len(self._inbox)
        oldest = c.oldest_unacked
        if waiting and (oldest is None or self._inbox[0][1] < oldest):
            oldest = self._inbox[0][1]
        lag = 0.0 if oldest is None else max(0.0, now - oldest)
        p = "envwatch_bridge_"
        return [
            (p + "received_total", "counter", "MQTT messages received", c.received),
            (p + "produced_total", "counter", "valid samples produced to Kafka", c.produced),
            (p + "dead_lettered_total", "counter", "invalid messages produced to the dead-letter topic", c.dead_lettered),
            (p + "acked_total", "counter", "MQTT messages acknowledged after Kafka acknowledged them", c.acked),
            (p + "released_total", "counter", "messages not acknowledged, left to the broker to redeliver (lost connection, failed produce)", c.released),
            (p + "produce_failures_total", "counter", "Kafka produce batches that failed", c.produce_failures),
            (p + "halts_total", "counter", "reconnects of both sides after a failed produce", c.halts),
            (p + "mqtt_connects_total", "counter", "MQTT connections made (first and reconnects)", c.mqtt_connects),
            (p + "mqtt_sessions_lost_total", "counter", "reconnects on which the broker no longer had the bridge's session", c.sessions_lost),
            (p + "readings_records_total", "counter", "readings records handed to Kafka (one sample, or an envelope of several)", sum(self.envelope_sizes.values())),
            (p + "in_flight", "gauge", "messages received and not yet acknowledged", c.in_flight),
            (p + "waiting", "gauge", "messages handed over by paho and not yet processed", waiting),
            (p + "lag_seconds", "gauge", "age of the oldest message not yet acknowledged", lag),
            (p + "mqtt_connected", "gauge", "1 while connected to the MQTT broker", 1.0 if self._connected else 0.0),
            (p + "mqtt_protocol_level", "gauge", "MQTT protocol level in use: 5 (v5) or 4 (3.1.1); 0 before the first connection", c.mqtt_protocol),
            (p + "uptime_seconds", "gauge", "seconds since the bridge started", now - c.started),
        ]  # fmt: skip

    def render_metrics(self) -> bytes:
        return prometheus_text(self.metrics())

    async def _stats(self) -> None:
        while True:
            await asyncio.sleep(self._stats_interval)
            self._log_stats()

    def _log_stats(self) -> None:
        c = self.counters
        log.info(
            "bridge: received=%d produced=%d dead_lettered=%d acked=%d in_flight=%d "
            "lag=%.2fs produce_failures=%d mqtt_connects=%d sessions_lost=%d",
            c.received,
            c.produced,
            c.dead_lettered,
            c.acked,
            c.in_flight,
            c.lag(time.monotonic()),
            c.produce_failures,
            c.mqtt_connects,
            c.sessions_lost,
        )


@dataclass(slots=True)
class _SessionCheck:
    """The session check of one MQTT connection."""

    expect: tuple[str, int] | None  # the marker held in the session before this connection
    new: tuple[str, int]  # the marker published on this connection
    seen: bool = False  # ``expect`` came back
    counted: bool = False  # this connection's loss is already counted


class _KafkaLost(ConnectionError):
    """The bridge's Kafka watch found the broker unreachable or without envwatch's topics."""


def _now() -> str:
    return datetime.now(UTC).isoformat()
