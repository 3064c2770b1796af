"""HJ 212 TCP gateway: data loggers (数采仪) → envwatch samples on MQTT.

One asyncio task per connection reads the byte stream, cuts it into packets (:class:`Framer`:
several packets per read, packets split across reads, resync on ``##`` after garbage), parses
them with :mod:`ingest.hj212`, maps the logger's MN to a source (locality, source id, kind)
through a lookup passed in, turns data uploads (CN 2011/2051/2061/2031) into
:class:`ingest.schemas.Sample` JSON published on ``ingest.schemas.topic_for(sample)`` through an
injected async publisher, and answers what the logger expects: a data acknowledgement (CN 9014)
when Flag bit A asks for it — only after the sample was published or dead-lettered, so a packet
is never acknowledged and lost — and QnRtn=9 (CRC error, HJ 212-2017 表7) for a packet whose
CRC fails.

Everything that cannot become a sample goes to the injected dead-letter sink as a
:class:`DeadLetter` (raw bytes, peer address, reason, detail) and is counted per reason in
:meth:`Gateway.stats`. Idle or half-open connections are closed after ``idle_timeout`` (TCP
keepalive is on as well); a logger that does not read its replies is dropped after
``write_timeout``. Connections are independent tasks with bounded buffers, so one slow or
garbage-sending logger does not hold up the others.

Usage::

    gateway = Gateway(targets={"MN01": MnTarget("weifang", "e-wf-001-g1", Kind.EMISSION)},
                      publish=publisher.publish, dead_letter=dead_letters.append)
    async with gateway:                    # binds GatewayConfig.host/port
        await gateway.serve_forever()      # until cancelled; exit stops cleanly
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import socket
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any, Final

import orjson
from pydantic import ValidationError
from rules.factors import Kind

from ingest import hj212
from ingest.errors import CrcError, Hj212Error
from ingest.schemas import Sample, Value, topic_for

log = logging.getLogger(__name__)

__all__ = [
    "DeadLetter",
    "DeadLetterReason",
    "Frame",
    "Framer",
    "Garbage",
    "Gateway",
    "GatewayConfig",
    "MnTarget",
    "PahoPublisher",
    "Publish",
    "sample_of",
]


@dataclass(frozen=True, slots=True)
class MnTarget:
    """Where a data logger's packets go: the source it measures, and how to read them.

    ``corrected`` prefers the O2-corrected ``-ZsAvg``/``-ZsRtd`` values (折算, HJ 212-2017 表4);
    ``minute_interval`` is the logger's MinInterval (standards.md §4.8), used to label minute
    data by the end of their period.
    """

    locality: str
    source: str
    kind: Kind
    corrected: bool = False
    minute_interval: timedelta = hj212.DEFAULT_MINUTE_INTERVAL


class DeadLetterReason(StrEnum):
    """Why a packet (or a run of bytes) went to the dead-letter sink; also the counter name."""

    FRAMING = "framing"  # bytes that are not a packet (garbage, cut-off packet)
    OVERSIZE = "oversize"  # no packet end within the maximum packet size
    LENGTH = "length"
    CRC = "crc"
    ENCODING = "encoding"
    FIELD = "field"
    MISSING_FIELD = "missing_field"
    UNKNOWN_MN = "unknown_mn"
    UNKNOWN_CODE = "unknown_code"
    NO_VALUES = "no_values"
    INVALID_SAMPLE = "invalid_sample"
    SPLIT = "split"  # PNUM/PNO parts contradict each other
    SPLIT_EXPIRED = "split_expired"  # some parts never arrived
    PUBLISH_FAILED = "publish_failed"
    INVALID = "invalid"  # any other codec refusal


_REASON_OF_CODE: Final[dict[str, DeadLetterReason]] = {r.value: r for r in DeadLetterReason}


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One dead-lettered input: the raw bytes as received, who sent them, and why."""

    raw: bytes
    peer: str
    reason: DeadLetterReason
    detail: str
    mn: str | None = None


#: ``await publish(topic, payload)`` — must raise when the broker did not take the message.
Publish = Callable[[str, bytes], Awaitable[None]]
#: ``dead_letter(item)`` — sync or async; should raise when it could not keep the item.
DeadLetterSink = Callable[[DeadLetter], Awaitable[None] | None]
Lookup = Mapping[str, MnTarget] | Callable[[str], MnTarget | None]


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """Gateway settings. Timeouts in seconds."""

    host: str = "127.0.0.1"
    port: int = 0
    #: Close a connection that sent nothing for this long (idle or half-open). Operator default:
    #: loggers that only upload hourly data reconnect each hour anyway.
    idle_timeout: float = 1800.0
    #: Give up on a logger that does not read its replies. HJ 212-2017 表1: 10 s reply timeout.
    write_timeout: float = 10.0
    #: Largest data segment accepted (HJ 212-2017 表2: 1024).
    max_data_len: int = hj212.MAX_DATA_LEN
    #: Refuse connections beyond this many at once (operator default).
    max_connections: int = 10_000
    #: Parts of a split upload older than this are dead-lettered (operator default).
    split_timeout: float = 120.0
    #: Answer a packet with a bad CRC with QnRtn=9 (HJ 212-2017 表7) when its header is readable.
    reply_on_crc_error: bool = True
    #: Pollutant codes to drop silently instead of dead-lettering the packet.
    ignore_codes: frozenset[str] = field(default_factory=frozenset)
    #: Bytes asked from the socket per read.
    read_size: int = 65536

    @property
    def max_frame(self) -> int:
        """Whole packet size limit: ``##`` + 4 + data + CRC 4 + CRLF 2 (表2)."""
        return 2 + 4 + self.max_data_len + 4 + 2


# ------------------------------------------------------------------------------------ framing


@dataclass(frozen=True, slots=True)
class Frame:
    """A candidate packet: from ``##`` up to and including CRLF."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Garbage:
    """Bytes that cannot be part of a packet."""

    data: bytes
    reason: DeadLetterReason
    detail: str


_JUNK_WHITESPACE = b"\r\n\t \x00"
#: Replies buffered for a logger before the gateway waits (``write_timeout``) for it to read.
_REPLY_BUFFER: Final = 64 * 1024


class Framer:
    """Cuts a TCP byte stream into HJ 212 frames (pure; one per connection).

    A frame runs from ``##`` to the next CRLF. Bytes before ``##`` are garbage; a ``##``
    before the CRLF means the earlier packet was cut off, so the stream resyncs on the later
    one. Nothing longer than ``max_frame`` is buffered. Whitespace between packets is ignored.
    HJ 212 fields never contain ``##`` or CRLF (ASCII fields, ``&&``-delimited CP).
    """

    def __init__(self, max_frame: int) -> None:
        self.max_frame = max_frame
        self._buf = b""

    def __len__(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame | Garbage]:
        buf = self._buf + data if self._buf else data
        out: list[Frame | Garbage] = []
        pos, size = 0, len(buf)
        while pos < size:
            start = buf.find(b"##", pos)
            if start < 0:
                keep = size - 1 if buf.endswith(b"#") else size  # may be the first '#' of '##'
                self._junk(out, buf[pos:keep], "bytes outside a packet")
                pos = keep
                break
            if start > pos:
                self._junk(out, buf[pos:start], "bytes before '##'")
                pos = start
            end = buf.find(b"\r\n", pos + 2)
            if end < 0:
                if size - pos > self.max_frame:
                    nxt = buf.find(b"##", pos + 2)
                    cut = nxt if nxt > 0 else size
                    out.append(
                        Garbage(
                            buf[pos:cut],
                            DeadLetterReason.OVERSIZE,
                            f"no CRLF within {self.max_frame} bytes",
                        )
                    )
                    pos = cut
                    continue
                break
            inner = buf.rfind(b"##", pos + 2, end)
            if inner >= 0:
                self._junk(out, buf[pos:inner], "packet cut off by the next '##'")
                pos = inner
                continue
            if end + 2 - pos > self.max_frame:
                out.append(
                    Garbage(
                        buf[pos : end + 2],
                        DeadLetterReason.OVERSIZE,
                        f"{end + 2 - pos} bytes exceed {self.max_frame}",
                    )
                )
            else:
                out.append(Frame(buf[pos : end + 2]))
            pos = end + 2
        self._buf = buf[pos:]
        return out

    def flush(self) -> Garbage | None:
        """At end of stream: whatever is left was a cut-off packet (None if only whitespace)."""
        rest, self._buf = self._buf, b""
        if rest.strip(_JUNK_WHITESPACE):
            return Garbage(rest, DeadLetterReason.FRAMING, "connection closed mid-packet")
        return None

    @staticmethod
    def _junk(out: list[Frame | Garbage], data: bytes, detail: str) -> None:
        if data.strip(_JUNK_WHITESPACE):
            out.append(Garbage(data, DeadLetterReason.FRAMING, detail))


# ------------------------------------------------------------------------------------ samples


def sample_of(
    packet: hj212.Packet, target: MnTarget, *, ignore_codes: frozenset[str] = frozenset()
) -> Sample:
    """The envwatch sample of a data packet from ``target`` (raises Hj212Error/ValidationError)."""
    data = hj212.decode_data(
        packet,
        target.kind,
        corrected=target.corrected,
        minute_interval=target.minute_interval,
        ignore_codes=ignore_codes,
    )
    return Sample(
        kind=target.kind,
        locality=target.locality,
        source=target.source,
        time=data.time,
        interval=data.interval,
        values={f: Value(value=v, flag=flag) for f, (v, flag) in data.values.items()},
    )


# ------------------------------------------------------------------------------------ server


class _Drop(Exception):
    """Internal: stop serving this connection."""


class Gateway:
    """The asyncio HJ 212 server. See the module docstring."""

    def __init__(
        self,
        targets: Lookup,
        publish: Publish,
        dead_letter: DeadLetterSink,
        *,
        config: GatewayConfig | None = None,
    ) -> None:
        self.config = config or GatewayConfig()
        self._lookup: Callable[[str], MnTarget | None] = (
            targets.get if isinstance(targets, Mapping) else targets
        )
        self._publish = publish
        self._dead_letter = dead_letter
        self._counters: Counter[str] = Counter()
        self._server: asyncio.Server | None = None
        self._connections: dict[
            asyncio.Task[None], tuple[asyncio.StreamReader, asyncio.StreamWriter]
        ] = {}
        self._splits = hj212.SplitAssembler(timeout=self.config.split_timeout)
        self._sweeper: asyncio.Task[None] | None = None

    # -- lifecycle

    async def start(self) -> None:
        """Bind and start accepting connections."""
        self._server = await asyncio.start_server(
            self._on_connect, self.config.host, self.config.port, reuse_address=True
        )
        self._sweeper = asyncio.create_task(self._sweep_splits(), name="hj212-split-sweeper")
        log.info("HJ 212 gateway listening on %s:%d", *self.address)

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port) — the real port when the config asked for port 0."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("gateway is not started")
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    async def stop(self, grace: float = 5.0) -> None:
        """Stop accepting, let each connection finish the packets it has read, then close.

        Connections still busy after ``grace`` seconds are cancelled.
        """
        if self._server is not None:
            self._server.close()
        for reader, writer in self._connections.values():
            # no more bytes from the socket; the handler's next read returns b"" and it exits
            # normally after the packets it already has
            transport = writer.transport
            if isinstance(transport, asyncio.ReadTransport):
                transport.pause_reading()
            reader.feed_eof()
        tasks = list(self._connections)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=grace)
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> Gateway:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def stats(self) -> dict[str, int]:
        """Counters: connections, packets, published, acks, ``dead_letter.<reason>`` …"""
        out = dict(self._counters)
        out["connections_open"] = len(self._connections)
        return out

    # -- per connection

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        peername = writer.get_extra_info("peername")
        peer = f"{peername[0]}:{peername[1]}" if isinstance(peername, tuple) else str(peername)
        if len(self._connections) >= self.config.max_connections:
            self._counters["connections_refused"] += 1
            writer.close()
            return
        self._connections[task] = (reader, writer)
        self._counters["connections_total"] += 1
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        try:
            await self._serve(reader, writer, peer)
        except _Drop:
            pass
        except (ConnectionError, OSError) as exc:
            self._counters["connection_errors"] += 1
            log.debug("HJ 212 connection %s: %s", peer, exc)
        finally:
            self._connections.pop(task, None)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), self.config.write_timeout)

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str
    ) -> None:
        framer = Framer(self.config.max_frame)
        while True:
            try:
                chunk = await asyncio.wait_for(
                    reader.read(self.config.read_size), self.config.idle_timeout
                )
            except TimeoutError:
                self._counters["idle_closed"] += 1
                return
            if not chunk:
                rest = framer.flush()
                if rest is not None:
                    await self._garbage(rest, peer)
                return
            self._counters["bytes"] += len(chunk)
            for item in framer.feed(chunk):
                if isinstance(item, Frame):
                    await self._packet(item.data, peer, writer)
                else:
                    await self._garbage(item, peer)

    async def _packet(self, raw: bytes, peer: str, writer: asyncio.StreamWriter) -> None:
        self._counters["packets"] += 1
        config = self.config
        try:
            packet = hj212.parse(raw, max_data_len=config.max_data_len)
        except CrcError as exc:
            await self._dead(raw, peer, DeadLetterReason.CRC, str(exc), None)
            if config.reply_on_crc_error:
                with contextlib.suppress(Hj212Error):
                    unchecked = hj212.parse(raw, verify_crc=False, max_data_len=config.max_data_len)
                    await self._reply(writer, hj212.qn_rtn(unchecked, hj212.QnRtn.BAD_CRC))
            return
        except Hj212Error as exc:
            await self._dead(raw, peer, _reason(exc), str(exc), None)
            return

        if packet.cn not in hj212.DATA_COMMANDS:
            # heartbeats, 2081 restart time, replies to host commands …: nothing to publish
            self._counters[f"cn.{packet.cn}"] += 1
            if packet.needs_ack:
                await self._reply(writer, hj212.data_ack(packet))
            return

        target = self._lookup(packet.mn)
        if target is None:
            kept = await self._dead(
                raw, peer, DeadLetterReason.UNKNOWN_MN, f"unknown MN {packet.mn!r}", packet.mn
            )
            await self._ack_if_kept(writer, packet, kept)
            return

        if packet.is_split:
            try:
                whole = self._splits.add(packet, asyncio.get_running_loop().time())
            except Hj212Error as exc:
                kept = await self._dead(raw, peer, _reason(exc), str(exc), packet.mn)
                await self._ack_if_kept(writer, packet, kept)
                return
            if whole is None:  # wait for the other parts; this one is held in memory
                if packet.needs_ack:
                    await self._reply(writer, hj212.data_ack(packet))
                return
            packet = whole

        try:
            sample = sample_of(packet, target, ignore_codes=config.ignore_codes)
        except Hj212Error as exc:
            kept = await self._dead(raw, peer, _reason(exc), str(exc), packet.mn)
            await self._ack_if_kept(writer, packet, kept)
            return
        except ValidationError as exc:
            detail = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            kept = await self._dead(raw, peer, DeadLetterReason.INVALID_SAMPLE, detail, packet.mn)
            await self._ack_if_kept(writer, packet, kept)
            return

        payload = orjson.dumps(sample.model_dump(mode="json", by_alias=True))
        try:
            await self._publish(topic_for(sample), payload)
        except Exception as exc:  # any publisher failure: keep the packet, do not ack
            log.warning("HJ 212 publish failed for %s: %r", packet.mn, exc)
            await self._dead(raw, peer, DeadLetterReason.PUBLISH_FAILED, repr(exc), packet.mn)
            return
        self._counters["published"] += 1
        if packet.needs_ack:
            await self._reply(writer, hj212.data_ack(packet))

    async def _ack_if_kept(
        self, writer: asyncio.StreamWriter, packet: hj212.Packet, kept: bool
    ) -> None:
        # The packet is now in the dead-letter store: the logger need not resend it.
        if kept and packet.needs_ack:
            await self._reply(writer, hj212.data_ack(packet))

    async def _reply(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        self._counters["replies"] += 1
        if writer.transport.get_write_buffer_size() < _REPLY_BUFFER:
            return  # the kernel takes it; no need to pay for a timed drain per reply
        try:
            await asyncio.wait_for(writer.drain(), self.config.write_timeout)
        except TimeoutError:
            self._counters["write_timeout"] += 1
            raise _Drop from None

    async def _garbage(self, item: Garbage, peer: str) -> None:
        await self._dead(item.data, peer, item.reason, item.detail, None)

    async def _dead(
        self, raw: bytes, peer: str, reason: DeadLetterReason, detail: str, mn: str | None
    ) -> bool:
        self._counters[f"dead_letter.{reason.value}"] += 1
        try:
            result: Any = self._dead_letter(DeadLetter(raw, peer, reason, detail, mn))
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            self._counters["dead_letter_failed"] += 1
            log.error("HJ 212 dead-letter sink failed (%s from %s): %r", reason, peer, exc)
            return False
        return True

    async def _sweep_splits(self) -> None:
        period = max(1.0, self.config.split_timeout / 4)
        while True:
            await asyncio.sleep(period)
            for parts in self._splits.expire(asyncio.get_running_loop().time()):
                raw = b"".join(hj212.frame(p.segment) for p in parts)
                pnos = sorted(p.pno or 0 for p in parts)
                await self._dead(
                    raw,
                    "-",
                    DeadLetterReason.SPLIT_EXPIRED,
                    f"parts {pnos} of {parts[0].pnum} arrived",
                    parts[0].mn,
                )


def _reason(exc: Hj212Error) -> DeadLetterReason:
    if exc.code == "unsupported_cn":
        return DeadLetterReason.FIELD
    return _REASON_OF_CODE.get(exc.code, DeadLetterReason.INVALID)


# ------------------------------------------------------------------------------------ MQTT


class PahoPublisher:
    """An async QoS1 publisher over paho-mqtt 2.x: ``await publish(topic, payload)`` returns
    once the broker's PUBACK arrived (so the gateway acknowledges a logger only then).

    :meth:`connect` first asks the broker which MQTT version it speaks
    (:func:`ingest.publisher.broker_protocol`, one throwaway connection) and connects with MQTT v5
    where it can, else MQTT 3.1.1 (amqtt, the embedded default's pure-Python fallback, has no
    v5 and would never answer a v5 CONNECT with properties). QoS1 publishing needs no persistent
    session, so the session is a clean one either way (ingest/publisher.py explains why).

    paho runs its network loop in its own thread; PUBACKs are handed to the event loop with
    ``call_soon_threadsafe``. ``connect`` raises ``ConnectionError`` when the broker cannot be
    reached, refuses the connection (with its reason) or does not answer within ``timeout``.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        client_id: str = "",
        timeout: float = 30.0,
        inflight: int = 1000,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        import paho.mqtt.client as mqtt

        self._mqtt = mqtt
        self.host, self.port, self.timeout = host, port, timeout
        self.client_id, self.inflight = client_id, inflight
        self.username, self.password = username, password
        self.protocol: int | None = None  # the MQTT version in use once connected
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: dict[int, asyncio.Future[None]] = {}
        self._early: set[int] = set()

    def _build(self, protocol: Any) -> Any:
        from paho.mqtt.enums import CallbackAPIVersion

        client = self._mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=protocol
        )
        if self.username:
            client.username_pw_set(self.username, self.password)
        client.max_inflight_messages_set(self.inflight)
        client.on_publish = self._on_publish
        return client

    async def connect(self) -> None:
        from ingest.publisher import PublisherError, broker_protocol

        self._loop = loop = asyncio.get_running_loop()
        try:
            protocol = await asyncio.to_thread(
                broker_protocol,
                self.host,
                self.port,
                timeout=min(self.timeout, 10.0),
                username=self.username,
                password=self.password,
            )
        except PublisherError as exc:
            raise ConnectionError(f"MQTT broker {self.host}:{self.port}: {exc.reason}") from None
        if protocol != self._mqtt.MQTTv5:
            log.info("gateway: the MQTT broker has no MQTT v5; publishing with MQTT 3.1.1")
        self._client = client = self._build(protocol)
        answer: asyncio.Future[Any] = loop.create_future()

        def on_connect(_c: object, _u: object, _f: object, reason: Any, *_p: object) -> None:
            def settle() -> None:
                if not answer.done():
                    answer.set_result(reason)

            loop.call_soon_threadsafe(settle)

        client.on_connect = on_connect
        try:
            client.connect(self.host, self.port, keepalive=30)
        except OSError as exc:
            raise ConnectionError(f"MQTT broker {self.host}:{self.port}: {exc}") from None
        client.loop_start()
        try:
            reason = await asyncio.wait_for(answer, self.timeout)
        except TimeoutError:
            client.loop_stop()
            raise ConnectionError(f"MQTT broker {self.host}:{self.port} did not answer") from None
        if getattr(reason, "is_failure", False):
            client.loop_stop()
            raise ConnectionError(f"MQTT broker {self.host}:{self.port} refused: {reason}")
        self.protocol = int(protocol)

    def _on_publish(self, _client: object, _userdata: object, mid: int, *_rest: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._resolve, mid)

    def _resolve(self, mid: int) -> None:
        future = self._waiting.pop(mid, None)
        if future is None:
            self._early.add(mid)  # PUBACK before publish() registered its future
        elif not future.done():
            future.set_result(None)

    async def publish(self, topic: str, payload: bytes) -> None:
        if self._client is None:
            raise ConnectionError(f"publish to {topic}: not connected (call connect first)")
        info = self._client.publish(topic, payload, qos=1)
        if info.rc != self._mqtt.MQTT_ERR_SUCCESS:
            raise ConnectionError(f"publish to {topic}: {self._mqtt.error_string(info.rc)}")
        if info.mid in self._early:
            self._early.discard(info.mid)
            return
        assert self._loop is not None
        future = self._loop.create_future()
        self._waiting[info.mid] = future
        try:
            await asyncio.wait_for(future, self.timeout)
        except TimeoutError:
            self._waiting.pop(info.mid, None)
            raise ConnectionError(f"no PUBACK for {topic} within {self.timeout}s") from None

    async def close(self) -> None:
        if self._client is None:
            return
        self._client.disconnect()
        self._client.loop_stop()
