"""Sending simulated deliveries: JSON lines, MQTT (paho-mqtt 2.x, QoS1), HJ 212 over TCP.

* :class:`JsonLinesSink` — one line per message: the MQTT payload (``schema``, ``kind`` …), or
  with ``envelope=True`` ``{"at": …, "topic": …, "note": …, "payload": {…}}``.
* :class:`MqttSink` — QoS1 on :func:`ingest.schemas.topic_for`; at most ``window`` messages
  un-acknowledged at a time: :meth:`MqttSink.send` blocks until the broker's PUBACK frees a slot,
  so a slow broker slows the simulator instead of filling memory. :meth:`close` waits for every
  PUBACK. paho keeps un-acknowledged messages across a reconnect and re-sends them.
* :class:`Hj212Sink` — outlets with an MN speak HJ 212-2017 like a data logger: one TCP
  connection per MN, hourly data as CN=2061 with DataTime = the START of the hour (HJ 212-2017
  §6.6 / standards.md §4.9; our samples are labelled with the end), Flag asking for a data
  acknowledgement, which the sink waits for (``ack_timeout``).
* :func:`play` — hands deliveries to a sink when the :class:`SimClock` says they are due.

Errors of paho and sockets are translated once, here, into :class:`PublishError`.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, TextIO

import orjson
from rules.factors import Kind

from ingest import hj212
from ingest.publisher import NO_AUTH, MqttAuth, Publisher, PublisherError
from ingest.schemas import Interval, Sample, topic_for
from ingest.simulators.errors import PublishError
from ingest.simulators.model import Delivery, SimClock


class Sink(Protocol):
    def send(self, delivery: Delivery) -> None: ...

    def close(self) -> None: ...


def payload_of(sample: Sample) -> bytes:
    """The MQTT payload of a sample (UTF-8 JSON, ``schema`` alias)."""
    return orjson.dumps(sample.model_dump(mode="json", by_alias=True))


class JsonLinesSink:
    """Writes one JSON line per delivery to ``stream`` (stdout for ``--dry-run``, or a file)."""

    def __init__(self, stream: TextIO, *, envelope: bool = False) -> None:
        self.stream = stream
        self.envelope = envelope
        self.sent = 0

    def send(self, delivery: Delivery) -> None:
        if self.envelope:
            line = orjson.dumps(
                {
                    "at": delivery.at.isoformat(),
                    "topic": topic_for(delivery.sample),
                    "note": delivery.note,
                    "payload": delivery.sample.model_dump(mode="json", by_alias=True),
                }
            )
        else:
            line = payload_of(delivery.sample)
        self.stream.write(line.decode() + "\n")
        self.sent += 1

    def close(self) -> None:
        self.stream.flush()


class MqttSink:
    """QoS1 publisher with a bounded in-flight window: the project's one MQTT publisher
    (:class:`ingest.publisher.Publisher`: blocks while the window is full or the broker is away,
    keeps publishing order across reconnects) behind the simulator's ``Sink`` interface."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        client_id: str = "",
        window: int = 100,
        connect_timeout: float = 15.0,
        ack_timeout: float = 60.0,
        auth: MqttAuth = NO_AUTH,
    ) -> None:
        if window < 1:
            raise PublishError(f"{host}:{port}", f"window must be >= 1, got {window}")
        self.target = f"mqtt://{host}:{port}"
        self.ack_timeout = ack_timeout
        try:
            self._pub = Publisher(
                host,
                port,
                client_id=client_id,
                inflight=window,
                connect_timeout=connect_timeout,
                block_timeout=ack_timeout,
                auth=auth,
            )
        except (PublisherError, OSError) as exc:
            raise PublishError(self.target, f"cannot connect: {exc}") from exc
        self.sent = 0

    @property
    def acked(self) -> int:
        return self._pub.acked

    def send(self, delivery: Delivery) -> None:
        try:
            self._pub.publish(delivery.sample)
        except PublisherError as exc:
            raise PublishError(self.target, str(exc)) from exc
        self.sent += 1

    def close(self) -> None:
        """Wait until every message is acknowledged, then disconnect."""
        try:
            self._pub.close(self.ack_timeout)
        except PublisherError as exc:
            raise PublishError(self.target, str(exc)) from exc


#: HJ 212-2017 表5 system codes (ST) used by the simulated loggers: 31 大气环境污染源 (flue gas),
#: 32 地表水体环境污染源 (wastewater; the standard's own example packet, standards.md §4).
ST_GAS = "31"
ST_WATER = "32"


def hj212_packet(sample: Sample, *, mn: str, wastewater: bool, sent_at: datetime) -> bytes:
    """The CN=2061 (hourly) packet a logger sends for an hourly outlet sample; DataTime is the
    START of the hour (sample label − 1 h)."""
    if sample.kind is not Kind.EMISSION or sample.interval is not Interval.HOUR:
        raise PublishError("hj212", f"only hourly emission samples, got {sample.kind.value}")
    values = {f: (v.value, v.flag.value) for f, v in sample.values.items() if v.value is not None}
    try:
        cp = hj212.encode_values(
            sample.kind, sample.interval, values, data_time=sample.time - timedelta(hours=1)
        )
    except KeyError as exc:
        raise PublishError("hj212", f"{sample.source}: {exc}") from exc
    return hj212.build(
        st=ST_WATER if wastewater else ST_GAS,
        cn="2061",
        mn=mn,
        qn=hj212.qn_for(sent_at),
        flag=hj212.make_flag(ack=True),
        cp=cp,
    )


@dataclass
class Hj212Sink:
    """One TCP connection per MN to the HJ 212 gateway; waits for each data acknowledgement.

    ``outlets`` maps source id → (MN, is_wastewater). Deliveries of other sources go to
    ``fallback`` (e.g. the MQTT sink) or are counted in ``skipped``.
    """

    host: str
    port: int
    outlets: dict[str, tuple[str, bool]]
    fallback: Sink | None = None
    ack_timeout: float = 10.0
    sent: int = 0
    acked: int = 0
    skipped: int = 0
    _conns: dict[str, socket.socket] = field(default_factory=dict)

    @property
    def target(self) -> str:
        return f"hj212://{self.host}:{self.port}"

    def _conn(self, mn: str) -> socket.socket:
        sock = self._conns.get(mn)
        if sock is None:
            try:
                sock = socket.create_connection((self.host, self.port), timeout=self.ack_timeout)
            except OSError as exc:
                raise PublishError(self.target, f"cannot connect: {exc}") from exc
            self._conns[mn] = sock
        return sock

    def send(self, delivery: Delivery) -> None:
        sample = delivery.sample
        outlet = self.outlets.get(sample.source)
        if outlet is None or sample.interval is not Interval.HOUR:
            if self.fallback is not None:
                self.fallback.send(delivery)
            else:
                self.skipped += 1
            return
        mn, wastewater = outlet
        packet = hj212_packet(sample, mn=mn, wastewater=wastewater, sent_at=delivery.at)
        sock = self._conn(mn)
        try:
            sock.sendall(packet)
            self.sent += 1
            reply = b""
            while not reply.endswith(b"\r\n"):
                chunk = sock.recv(1024)
                if not chunk:
                    raise PublishError(self.target, f"{mn}: connection closed before the ack")
                reply += chunk
        except OSError as exc:
            self._conns.pop(mn, None)
            sock.close()
            raise PublishError(self.target, f"{mn}: {exc}") from exc
        self.acked += 1

    def close(self) -> None:
        for sock in self._conns.values():
            sock.close()
        self._conns.clear()
        if self.fallback is not None:
            self.fallback.close()


@dataclass(frozen=True, slots=True)
class PlayStats:
    sent: int
    first: datetime | None
    last: datetime | None
    wall_seconds: float


def play(
    deliveries: Iterable[Delivery],
    sink: Sink,
    *,
    start: datetime,
    speed: float,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> PlayStats:
    """Send each delivery when it is due: simulated time runs ``speed`` times faster than the
    wall clock from ``start`` (``speed <= 0``: no waiting). The clock functions are passed in."""
    wall0 = monotonic()
    clock = SimClock(start=start, speed=speed, wall_start=wall0)
    sent = 0
    first: datetime | None = None
    last: datetime | None = None
    for d in deliveries:
        wait = clock.wall_at(d.at) - monotonic()
        if wait > 0:
            sleep(wait)
        sink.send(d)
        sent += 1
        first = first or d.at
        last = d.at
    return PlayStats(sent=sent, first=first, last=last, wall_seconds=monotonic() - wall0)
