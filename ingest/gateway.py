"""HJ 212 TCP gateway: data loggers (数采仪) → envwatch samples on MQTT.

One asyncio task per connection reads the byte stream, cuts it into packets (:class:`Framer`:
several packets per read, packets split across reads, resync on ``##`` after garbage), parses
them with :mod:`ingest.hj212`, maps the logger's MN to a source (locality, source id, kind)
through a lookup passed in, checks the packet's PW against the password configured for that MN,
turns data uploads (CN 2011/2051/2061/2031) into :class:`ingest.schemas.Sample` JSON published on
``ingest.schemas.topic_for(sample)`` through an injected async publisher, and answers what the
logger expects: a data acknowledgement (CN 9014) when Flag bit A asks for it — only after the
sample was published or dead-lettered, so a packet is never acknowledged and lost — and a 请求应答
(CN 9011) with the HJ 212-2017 表7 QnRtn code where the standard has one for a refusal: 9 for a
CRC error, 3 for a wrong PW, 4 for an unknown MN, 100 (未知错误) for a packet the gateway failed
on itself.

Every packet is handled on its own: whatever goes wrong with one (a codec refusal, an unknown
MN, a wrong password, a bug — any exception) dead-letters that packet with the reason, counts
it, answers it and goes on with the next packet of the same read. Everything that cannot become
a sample goes to the injected dead-letter sink as a :class:`DeadLetter` (raw bytes, peer address,
reason, detail) and is counted per reason in :meth:`Gateway.stats`.

Limits (:class:`GatewayConfig`, each counted in :meth:`Gateway.stats`; docs/hj212.md):

* a connection that completes no packet for ``idle_timeout`` is closed (``idle_closed``); one
  whose started packet is not complete after ``packet_timeout`` is closed (``slow_closed``:
  slowloris, one byte a second); one that does not read its replies for ``write_timeout``
  (``write_timeout``); reads are throttled to ``max_bytes_per_second`` (``throttled``);
* a connection is closed after ``max_dead_letters_per_connection`` dead letters, with one
  summary dead letter saying what was dropped (``dead_letter_limit_closed``,
  ``items_dropped``); a peer address that causes ``max_dead_letters_per_peer`` within
  ``peer_window`` seconds is refused for ``ban_seconds`` (``peers_banned``,
  ``connections_banned``);
* at most ``max_connections`` connections (``envwatch gateway`` keeps it below the descriptor
  limit, :func:`connection_cap`) and ``max_connections_per_peer`` per address: a new
  connection beyond either evicts the connection that has not authenticated (sent a packet of
  a known MN with the right PW) and was quiet longest, else the longest-idle authenticated one
  (idle ≥ ``evict_idle_after``), else is refused (``connections_evicted``,
  ``connections_refused``) — so a flood of idle connections never locks a logger out.

Usage::

    gateway = Gateway(targets={"MN01": MnTarget("weifang", "e-wf-001-g1", Kind.EMISSION)},
                      publish=publisher.publish, dead_letter=dead_letters.append)
    async with gateway:                    # binds GatewayConfig.host/port
        await gateway.serve_forever()      # until cancelled; exit stops cleanly
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import inspect
import logging
import re
import socket
import ssl
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any, Final

import orjson
from pydantic import SecretStr, ValidationError
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
    "connection_cap",
    "raise_nofile_limit",
    "redact_password",
    "sample_of",
]


@dataclass(frozen=True, slots=True)
class MnTarget:
    """Where a data logger's packets go: the source it measures, and how to read them.

    ``corrected`` prefers the O2-corrected ``-ZsAvg``/``-ZsRtd`` values (折算, HJ 212-2017 表4);
    ``minute_interval`` is the logger's MinInterval (standards.md §4.8), used to label minute
    data by the end of their period. ``password`` is the logger's PW (HJ 212-2017 表3): packets
    with another PW are refused; None: PW not checked (counted as ``pw_unchecked``).
    ``password_problem`` says why a configured password could not be read (its reference,
    never a value): every packet of that MN is refused until it is fixed.
    """

    locality: str
    source: str
    kind: Kind
    corrected: bool = False
    minute_interval: timedelta = hj212.DEFAULT_MINUTE_INTERVAL
    password: SecretStr | None = field(default=None, repr=False)
    password_problem: str | None = None


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
    WRONG_PASSWORD = "wrong_password"  # PW is not the MN's password
    NO_PASSWORD = "no_password"  # require_password and the MN has none configured
    PASSWORD_UNAVAILABLE = "password_unavailable"  # its reference could not be read
    INTERNAL = "internal"  # the gateway failed on the packet (a bug): contained, kept
    SLOW = "slow"  # a packet not complete within packet_timeout (slowloris)
    DEAD_LETTER_LIMIT = "dead_letter_limit"  # summary: a connection closed at its limit
    PEER_BANNED = "peer_banned"  # summary: a peer address refused for ban_seconds


_REASON_OF_CODE: Final[dict[str, DeadLetterReason]] = {r.value: r for r in DeadLetterReason}


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One dead-lettered input: the raw bytes as received, who sent them, and why.

    For an MN with a configured password, the PW value in ``raw`` is replaced by ``***``
    (:func:`redact_password`): a dead letter never carries a password or a guess of one.
    """

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
    """Gateway settings. Timeouts in seconds. Numbers without a standard are envwatch's choice
    [MEM] (operator defaults, each a setting of ``envwatch gateway``; docs/hj212.md)."""

    #: Loopback unless configured: loggers reach the gateway through whatever the operator
    #: exposes (``ENVWATCH_GATEWAY_HOST=0.0.0.0`` listens on every interface).
    host: str = "127.0.0.1"
    port: int = 0
    #: Close a connection that completed no packet for this long (idle or half-open; bytes that
    #: are not a packet do not count). Loggers that only upload hourly data reconnect anyway.
    idle_timeout: float = 1800.0
    #: Close a connection whose started packet is not complete this long after its first byte:
    #: slowloris. A whole packet (≤ 1036 bytes) must come at ≥ ~35 B/s; a GPRS logger sends one
    #: in well under a second, and waits only 10 s for the reply (HJ 212-2017 表1).
    packet_timeout: float = 30.0
    #: Bytes read per second per connection at most (token bucket, 1 s burst); 0: no limit.
    #: 1 MiB/s ≈ 4,000 typical packets/s: far beyond a logger, still one connection's share.
    max_bytes_per_second: int = 1 << 20
    #: Give up on a logger that does not read its replies. HJ 212-2017 表1: 10 s reply timeout.
    write_timeout: float = 10.0
    #: Largest data segment accepted (HJ 212-2017 表2: 1024).
    max_data_len: int = hj212.MAX_DATA_LEN
    #: Connections at once; beyond, evict or refuse (see the module docstring). ``envwatch
    #: gateway`` lowers it below the descriptor limit (:func:`connection_cap`).
    max_connections: int = 10_000
    #: Connections at once from one peer address; 0: no limit.
    max_connections_per_peer: int = 256
    #: An authenticated connection idle this long may be evicted for a new one at a cap.
    evict_idle_after: float = 60.0
    #: Dead letters one connection may cause; then one summary dead letter and close. 0: off.
    max_dead_letters_per_connection: int = 100
    #: Dead letters one peer address may cause within ``peer_window``; then a summary dead
    #: letter and its new connections are refused for ``ban_seconds``. 0: off.
    max_dead_letters_per_peer: int = 1000
    peer_window: float = 600.0
    ban_seconds: float = 60.0
    #: Refuse packets of an MN that has no password configured (default: accept, count
    #: ``pw_unchecked``: the reference catalogue configures none).
    require_password: bool = False
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


#: Descriptors kept free below RLIMIT_NOFILE when connections are capped: the listening
#: sockets (gateway, metrics), the MQTT and Kafka clients, logs and stdio (~20), plus a burst of
#: accepts before the gateway can evict (asyncio accepts up to its listen backlog, 100, at once)
#: and a metrics scrape. envwatch's choice [MEM].
FD_HEADROOM: Final = 256


def raise_nofile_limit() -> tuple[int, int]:
    """Raise this process's RLIMIT_NOFILE soft limit to its hard limit (no privilege needed).

    Returns the ``(soft, hard)`` limits in force afterwards; an unlimited hard limit raises the
    soft one to 1,048,576 (Linux's default ``fs.nr_open``).
    """
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft, hard
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft, hard


def connection_cap(configured: int, nofile: int, headroom: int = FD_HEADROOM) -> int:
    """The connections the gateway may hold: ``configured``, but ``headroom`` descriptors
    below the soft descriptor limit ``nofile`` (at least 1)."""
    return max(1, min(configured, nofile - headroom))


_RE_PW: Final = re.compile(rb"PW=[^;&,\r\n]*")
_RE_MN: Final = re.compile(rb"(?:^|[;#0-9])MN=([A-Za-z0-9_.:\-]{1,64})")


def redact_password(raw: bytes) -> bytes:
    """``raw`` with every ``PW=…`` value (and ``NewPW=…``, 表4) replaced by ``***``."""
    return _RE_PW.sub(b"PW=***", raw)


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


@dataclass(eq=False, slots=True)
class _Conn:
    """One logger connection's state (the gateway's bookkeeping for limits and eviction)."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    peer: str  # "ip:port"
    ip: str
    opened: float
    last_read: float  # last bytes received (loop time)
    progress: float  # last complete packet, or the connect time
    authenticated: bool = False  # sent a packet of a known MN with the right PW
    dead: int = 0  # dead letters this connection caused
    gone: bool = False  # forgotten (closed, evicted): counted out of its peer


@dataclass(slots=True)
class _Peer:
    """Per peer address: open connections, dead letters in the current window, ban."""

    open: int = 0
    window_start: float = 0.0
    dead: int = 0
    banned_until: float = 0.0


#: CNs counted under their own name (HJ 212-2017 表9 commands a logger sends); others as
#: ``cn.other`` so a sender cannot mint thousands of counters.
_NAMED_CN: Final = frozenset(
    {c.value for c in hj212.Cn} | {"1011", "1013", "1062", "1064", "2021", "2041", "2081", "3019"}
)
#: Counters :meth:`Gateway.stats` always has (others appear when they first count).
_COUNTERS: Final = (
    "connections_total",
    "connections_evicted",
    "connections_refused",
    "connections_refused_peer",
    "connections_banned",
    "connections_closed_banned",
    "peers_banned",
    "idle_closed",
    "slow_closed",
    "write_timeout",
    "throttled",
    "dead_letter_limit_closed",
    "items_dropped",
    "bytes_dropped",
    "internal_errors",
    "pw_unchecked",
    "packets",
    "published",
)
#: Gauges among :meth:`Gateway.stats` (the rest are counters).
GAUGES: Final = frozenset(
    {
        "connections_open",
        "connections_peak",
        "connections_max",
        "connections_max_per_peer",
        "peers_banned_now",
        "max_dead_letters_per_connection",
        "max_dead_letters_per_peer",
        "max_bytes_per_second",
        "idle_timeout_seconds",
        "packet_timeout_seconds",
    }
)


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
        # every limit's counter is there from the start (a metric at 0, not a missing one)
        self._counters: Counter[str] = Counter(dict.fromkeys(_COUNTERS, 0))
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], _Conn] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # evicted ones too, until they end
        self._peers: dict[str, _Peer] = {}
        self._peak = 0  # most connections open at once
        self._splits = hj212.SplitAssembler(timeout=self.config.split_timeout)
        self._sweeper: asyncio.Task[None] | None = None

    # -- lifecycle

    async def start(self) -> None:
        """Bind and start accepting connections."""
        self._server = await asyncio.start_server(
            self._on_connect, self.config.host, self.config.port, reuse_address=True
        )
        self._sweeper = asyncio.create_task(self._sweep(), name="hj212-gateway-sweeper")
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
        for conn in self._connections.values():
            # no more bytes from the socket; the handler's next read returns b"" and it exits
            # normally after the packets it already has
            transport = conn.writer.transport
            if isinstance(transport, asyncio.ReadTransport):
                transport.pause_reading()
            conn.reader.feed_eof()
        tasks = list(self._tasks)
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
        """Counters (connections, packets, published, acks, ``dead_letter.<reason>`` …) and the
        gauges of :data:`GAUGES` (connections open, the limits in force)."""
        cfg = self.config
        out = dict(self._counters)
        try:
            now = asyncio.get_running_loop().time()
        except RuntimeError:  # called from outside the loop: its clock is time.monotonic()
            now = time.monotonic()
        out["connections_open"] = len(self._connections)
        out["connections_peak"] = self._peak
        out["connections_max"] = cfg.max_connections
        out["connections_max_per_peer"] = cfg.max_connections_per_peer
        out["peers_banned_now"] = sum(1 for p in self._peers.values() if p.banned_until > now)
        out["max_dead_letters_per_connection"] = cfg.max_dead_letters_per_connection
        out["max_dead_letters_per_peer"] = cfg.max_dead_letters_per_peer
        out["max_bytes_per_second"] = cfg.max_bytes_per_second
        out["idle_timeout_seconds"] = round(cfg.idle_timeout)
        out["packet_timeout_seconds"] = round(cfg.packet_timeout)
        return out

    # -- admission

    def _admit(self, ip: str, now: float) -> bool:
        """Room for a new connection from ``ip``: evict to make it, or refuse (False)."""
        cfg = self.config
        peer = self._peers.get(ip)
        if peer is not None and peer.banned_until > now:
            self._counters["connections_banned"] += 1
            return False
        per_peer = cfg.max_connections_per_peer
        if per_peer and peer is not None and peer.open >= per_peer:
            victim = self._victim(now, ip)
            if victim is None:
                self._counters["connections_refused_peer"] += 1
                return False
            self._evict(victim)
        if len(self._connections) >= cfg.max_connections:
            victim = self._victim(now, None)
            if victim is None:
                self._counters["connections_refused"] += 1
                return False
            self._evict(victim)
        return True

    def _victim(self, now: float, ip: str | None) -> _Conn | None:
        """The connection to give up for a new one (of ``ip`` only, when given): the quiet-longest
        unauthenticated one, else the longest-idle authenticated one idle ≥ evict_idle_after."""
        unauth: _Conn | None = None
        idle: _Conn | None = None
        for conn in self._connections.values():
            if ip is not None and conn.ip != ip:
                continue
            if not conn.authenticated:
                if unauth is None or conn.last_read < unauth.last_read:
                    unauth = conn
            elif now - conn.progress >= self.config.evict_idle_after and (
                idle is None or conn.progress < idle.progress
            ):
                idle = conn
        return unauth if unauth is not None else idle

    def _evict(self, conn: _Conn, counter: str = "connections_evicted") -> None:
        self._counters[counter] += 1
        for task, c in list(self._connections.items()):
            if c is conn:
                del self._connections[task]
        self._forget(conn)
        conn.writer.transport.abort()  # its handler reads EOF and ends

    def _forget(self, conn: _Conn) -> None:
        if conn.gone:
            return
        conn.gone = True
        peer = self._peers.get(conn.ip)
        if peer is not None:
            peer.open -= 1

    # -- per connection

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        now = asyncio.get_running_loop().time()
        peername = writer.get_extra_info("peername")
        if isinstance(peername, tuple):
            ip, peer = str(peername[0]), f"{peername[0]}:{peername[1]}"
        else:
            ip = peer = str(peername)
        if not self._admit(ip, now):
            writer.transport.abort()
            return
        conn = _Conn(reader, writer, peer, ip, opened=now, last_read=now, progress=now)
        self._connections[task] = conn
        self._tasks.add(task)
        self._peers.setdefault(ip, _Peer()).open += 1
        self._counters["connections_total"] += 1
        self._peak = max(self._peak, len(self._connections))
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        try:
            await self._serve(conn)
        except _Drop:
            pass
        except (ConnectionError, OSError) as exc:
            self._counters["connection_errors"] += 1
            log.debug("HJ 212 connection %s: %s", peer, exc)
        except Exception as exc:  # a bug outside any packet: close this connection only
            self._counters["connection_errors"] += 1
            log.error("HJ 212 connection %s failed: %s: %s", peer, type(exc).__name__, exc)
        finally:
            self._connections.pop(task, None)
            self._tasks.discard(task)
            self._forget(conn)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), self.config.write_timeout)

    async def _serve(self, conn: _Conn) -> None:
        cfg = self.config
        loop = asyncio.get_running_loop()
        framer = Framer(cfg.max_frame)
        pending_since: float | None = None  # first byte not yet part of a complete packet
        rate = cfg.max_bytes_per_second
        tokens, filled = float(rate), loop.time()
        while True:
            now = loop.time()
            deadline = conn.progress + cfg.idle_timeout
            slow = pending_since is not None and pending_since + cfg.packet_timeout < deadline
            if slow:
                assert pending_since is not None
                deadline = pending_since + cfg.packet_timeout
            try:
                chunk = await asyncio.wait_for(
                    conn.reader.read(cfg.read_size), max(0.0, deadline - now)
                )
            except TimeoutError:
                if slow:
                    self._counters["slow_closed"] += 1
                    rest = framer.flush()
                    if rest is not None:
                        await self._dead(
                            rest.data,
                            conn,
                            DeadLetterReason.SLOW,
                            f"packet not complete {cfg.packet_timeout:g} s after its first "
                            f"byte ({len(rest.data)} bytes): connection closed",
                            None,
                        )
                else:
                    self._counters["idle_closed"] += 1
                return
            now = loop.time()
            if not chunk:
                rest = framer.flush()
                if rest is not None:
                    await self._garbage(rest, conn)
                return
            conn.last_read = now
            self._counters["bytes"] += len(chunk)
            try:
                items = framer.feed(chunk)
            except Exception as exc:  # a framer bug: keep the bytes, start afresh
                framer = Framer(cfg.max_frame)
                await self._internal(chunk, conn, exc, None)
                items = []
            framed = any(isinstance(item, Frame) for item in items)
            if framed:
                conn.progress = now
                pending_since = now if len(framer) else None
            elif pending_since is None and (items or len(framer)):
                # line ends alone between packets start no clock (the idle timeout covers them)
                pending_since = now
            for at, item in enumerate(items):
                await self._check_limits(conn, items[at:], len(framer))
                try:
                    if isinstance(item, Frame):
                        await self._packet(item.data, conn)
                    else:
                        await self._garbage(item, conn)
                except _Drop:
                    raise
                except Exception as exc:  # contained: one item's failure is its own
                    await self._internal(item.data, conn, exc, None)
            await self._check_limits(conn, [], len(framer))
            # the time the gateway spent on the items (a slow broker) is not the sender's
            busy = loop.time() - now
            if framed:
                conn.progress += busy
            if items and pending_since is not None:
                pending_since += busy
            if rate > 0:
                now = loop.time()
                tokens = min(float(rate), tokens + (now - filled) * rate) - len(chunk)
                filled = now
                if tokens < 0:
                    self._counters["throttled"] += 1
                    await asyncio.sleep(-tokens / rate)

    async def _check_limits(self, conn: _Conn, left: list[Frame | Garbage], buffered: int) -> None:
        """Close ``conn`` (raise _Drop) at its dead-letter limit or its peer's ban, with one
        summary dead letter counting what is dropped: ``left`` items and ``buffered`` bytes."""
        cfg = self.config
        now = asyncio.get_running_loop().time()
        peer = self._peers.get(conn.ip)
        banned = peer is not None and peer.banned_until > now
        capped = cfg.max_dead_letters_per_connection and (
            conn.dead >= cfg.max_dead_letters_per_connection
        )
        if not (banned or capped):
            return
        dropped = sum(len(item.data) for item in left) + buffered
        self._counters["items_dropped"] += len(left)
        self._counters["bytes_dropped"] += dropped
        sample = b"".join(item.data for item in left)[:256]
        what = f"{len(left)} more item(s) in {dropped} bytes already received were not processed"
        if banned and peer is not None:
            closed = self._close_unauthenticated(conn.ip, but=conn)
            self._counters["peers_banned"] += 1
            await self._dead(
                sample,
                None,
                DeadLetterReason.PEER_BANNED,
                f"peer {conn.ip} caused {peer.dead} dead letters within {cfg.peer_window:g} s "
                f"(limit {cfg.max_dead_letters_per_peer}): its new connections are refused for "
                f"{cfg.ban_seconds:g} s; this connection ({conn.peer}) closed, {what}; "
                f"{closed} other unauthenticated connection(s) of the peer closed",
                None,
                peer=conn.peer,
            )
        else:
            self._counters["dead_letter_limit_closed"] += 1
            await self._dead(
                sample,
                None,
                DeadLetterReason.DEAD_LETTER_LIMIT,
                f"connection {conn.peer} caused {conn.dead} dead letters (limit "
                f"{cfg.max_dead_letters_per_connection}): closed; {what}",
                None,
                peer=conn.peer,
            )
        raise _Drop

    def _close_unauthenticated(self, ip: str, *, but: _Conn) -> int:
        victims = [
            c for c in self._connections.values() if c.ip == ip and c is not but
            and not c.authenticated
        ]  # fmt: skip
        for conn in victims:
            self._evict(conn, "connections_closed_banned")
        return len(victims)

    async def _packet(self, raw: bytes, conn: _Conn) -> None:
        self._counters["packets"] += 1
        config = self.config
        try:
            packet = hj212.parse(raw, max_data_len=config.max_data_len)
        except CrcError as exc:
            await self._dead(raw, conn, DeadLetterReason.CRC, str(exc), None)
            if config.reply_on_crc_error:
                with contextlib.suppress(Hj212Error):
                    unchecked = hj212.parse(raw, verify_crc=False, max_data_len=config.max_data_len)
                    # HJ 212-2017 表2 note / 表7: on a CRC error the command ends, QnRtn=9
                    await self._reply(conn, hj212.qn_rtn(unchecked, hj212.QnRtn.BAD_CRC))
            return
        except Hj212Error as exc:
            await self._dead(raw, conn, _reason(exc), str(exc), None)
            return
        try:
            await self._handle(packet, raw, conn)
        except _Drop:
            raise
        except Exception as exc:  # contained: dead-lettered, counted, answered 未知错误
            await self._internal(raw, conn, exc, packet)

    async def _internal(
        self, raw: bytes, conn: _Conn, exc: Exception, packet: hj212.Packet | None
    ) -> None:
        """A failure of the gateway itself on one item: keep the item, answer, go on."""
        self._counters["internal_errors"] += 1
        detail = f"{type(exc).__name__}: {exc}"[:500]
        log.error("HJ 212 gateway failed on an item from %s: %s", conn.peer, detail)
        await self._dead(
            raw, conn, DeadLetterReason.INTERNAL, detail, packet.mn if packet else None
        )
        if packet is not None:
            # HJ 212-2017 表7: QnRtn=100 未知错误 — the logger may send it again
            await self._reply(conn, hj212.qn_rtn(packet, hj212.QnRtn.UNKNOWN))

    def _refusal(
        self, packet: hj212.Packet, target: MnTarget
    ) -> tuple[DeadLetterReason, str, hj212.QnRtn] | None:
        """Why a packet of a known MN is refused (reason, detail, QnRtn), or None if it is not."""
        if target.password_problem is not None:
            return (
                DeadLetterReason.PASSWORD_UNAVAILABLE,
                f"the password of MN {packet.mn!r} cannot be read: {target.password_problem}",
                hj212.QnRtn.REJECTED,  # 表7: 2 请求被拒绝
            )
        if target.password is None:
            if self.config.require_password:
                return (
                    DeadLetterReason.NO_PASSWORD,
                    f"no password configured for MN {packet.mn!r} and passwords are required",
                    hj212.QnRtn.REJECTED,
                )
            self._counters["pw_unchecked"] += 1
            return None
        if not hmac.compare_digest(packet.pw.encode(), target.password.get_secret_value().encode()):
            return (
                DeadLetterReason.WRONG_PASSWORD,
                f"wrong password for MN {packet.mn!r}",
                hj212.QnRtn.BAD_PW,  # 表7: 3 PW错误
            )
        return None

    async def _handle(self, packet: hj212.Packet, raw: bytes, conn: _Conn) -> None:
        config = self.config
        target = self._lookup(packet.mn)
        if target is not None:
            refused = self._refusal(packet, target)
            if refused is not None:
                reason, detail, code = refused
                await self._dead(raw, conn, reason, detail, packet.mn)
                await self._reply(conn, hj212.qn_rtn(packet, code))
                return
            conn.authenticated = True

        if packet.cn not in hj212.DATA_COMMANDS:
            # heartbeats, 2081 restart time, replies to host commands …: nothing to publish
            self._counters[f"cn.{packet.cn if packet.cn in _NAMED_CN else 'other'}"] += 1
            if packet.needs_ack:
                await self._reply(conn, hj212.data_ack(packet))
            return

        if target is None:
            await self._dead(
                raw, conn, DeadLetterReason.UNKNOWN_MN, f"unknown MN {packet.mn!r}", packet.mn
            )
            # HJ 212-2017 表7: QnRtn=4 MN错误 (the packet is kept in the dead letters)
            await self._reply(conn, hj212.qn_rtn(packet, hj212.QnRtn.BAD_MN))
            return

        if packet.is_split:
            try:
                whole = self._splits.add(packet, asyncio.get_running_loop().time())
            except Hj212Error as exc:
                kept = await self._dead(raw, conn, _reason(exc), str(exc), packet.mn)
                await self._ack_if_kept(conn, packet, kept)
                return
            if whole is None:  # wait for the other parts; this one is held in memory
                if packet.needs_ack:
                    await self._reply(conn, hj212.data_ack(packet))
                return
            packet = whole

        try:
            sample = sample_of(packet, target, ignore_codes=config.ignore_codes)
        except Hj212Error as exc:
            kept = await self._dead(raw, conn, _reason(exc), str(exc), packet.mn)
            await self._ack_if_kept(conn, packet, kept)
            return
        except ValidationError as exc:
            detail = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            kept = await self._dead(raw, conn, DeadLetterReason.INVALID_SAMPLE, detail, packet.mn)
            await self._ack_if_kept(conn, packet, kept)
            return

        payload = orjson.dumps(sample.model_dump(mode="json", by_alias=True))
        try:
            await self._publish(topic_for(sample), payload)
        except Exception as exc:  # any publisher failure: keep the packet, do not ack
            log.warning("HJ 212 publish failed for %s: %r", packet.mn, exc)
            await self._dead(raw, conn, DeadLetterReason.PUBLISH_FAILED, repr(exc), packet.mn)
            return
        self._counters["published"] += 1
        if packet.needs_ack:
            await self._reply(conn, hj212.data_ack(packet))

    async def _ack_if_kept(self, conn: _Conn, packet: hj212.Packet, kept: bool) -> None:
        # The packet is now in the dead-letter store: the logger need not resend it.
        if kept and packet.needs_ack:
            await self._reply(conn, hj212.data_ack(packet))

    async def _reply(self, conn: _Conn, data: bytes) -> None:
        writer = conn.writer
        if writer.transport.is_closing():
            return  # evicted or closed: nobody to answer
        writer.write(data)
        self._counters["replies"] += 1
        if writer.transport.get_write_buffer_size() < _REPLY_BUFFER:
            return  # the kernel takes it; no need to pay for a timed drain per reply
        try:
            await asyncio.wait_for(writer.drain(), self.config.write_timeout)
        except TimeoutError:
            self._counters["write_timeout"] += 1
            raise _Drop from None
        except (ConnectionError, OSError):
            raise _Drop from None

    async def _garbage(self, item: Garbage, conn: _Conn) -> None:
        await self._dead(item.data, conn, item.reason, item.detail, None)

    def _redacted(self, raw: bytes, mn: str | None) -> bytes:
        """``raw`` without the PW value when the MN has a password configured."""
        if b"PW=" not in raw:
            return raw
        if mn is None:
            found = _RE_MN.search(raw)
            if found is None:
                return raw
            mn = found.group(1).decode("ascii")
        try:
            target = self._lookup(mn)
        except Exception:  # a failing lookup: be safe
            return redact_password(raw)
        if target is not None and (target.password is not None or target.password_problem):
            return redact_password(raw)
        return raw

    async def _dead(
        self,
        raw: bytes,
        conn: _Conn | None,
        reason: DeadLetterReason,
        detail: str,
        mn: str | None,
        *,
        peer: str = "-",
    ) -> bool:
        """Keep one dead letter (counted per reason) and count it against ``conn`` and its
        peer address. Returns whether the sink kept it."""
        self._counters[f"dead_letter.{reason.value}"] += 1
        if conn is not None:
            peer = conn.peer
            conn.dead += 1
            self._count_peer(conn.ip)
        try:
            item = DeadLetter(self._redacted(raw, mn), peer, reason, detail, mn)
            result: Any = self._dead_letter(item)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            self._counters["dead_letter_failed"] += 1
            log.error("HJ 212 dead-letter sink failed (%s from %s): %r", reason, peer, exc)
            return False
        return True

    def _count_peer(self, ip: str) -> None:
        cfg = self.config
        if not cfg.max_dead_letters_per_peer:
            return
        now = asyncio.get_running_loop().time()
        peer = self._peers.setdefault(ip, _Peer())
        if now - peer.window_start > cfg.peer_window:
            peer.window_start, peer.dead = now, 0
        peer.dead += 1
        if peer.dead >= cfg.max_dead_letters_per_peer and peer.banned_until <= now:
            peer.banned_until = now + cfg.ban_seconds
            log.warning(
                "HJ 212 gateway: peer %s caused %d dead letters within %g s: refused for %g s",
                ip,
                peer.dead,
                cfg.peer_window,
                cfg.ban_seconds,
            )

    async def _sweep(self) -> None:
        """Expire split uploads; forget peers with nothing open, no ban and an old window."""
        period = max(1.0, min(self.config.split_timeout, self.config.peer_window) / 4)
        while True:
            await asyncio.sleep(period)
            try:
                await self._sweep_once()
            except Exception as exc:  # never let the sweeper die
                log.error("HJ 212 gateway sweeper: %s: %s", type(exc).__name__, exc)

    async def _sweep_once(self) -> None:
        now = asyncio.get_running_loop().time()
        for parts in self._splits.expire(now):
            raw = b"".join(hj212.frame(p.segment) for p in parts)
            pnos = sorted(p.pno or 0 for p in parts)
            await self._dead(
                raw,
                None,
                DeadLetterReason.SPLIT_EXPIRED,
                f"parts {pnos} of {parts[0].pnum} arrived",
                parts[0].mn,
            )
        stale = [
            ip for ip, p in self._peers.items()
            if p.open <= 0 and p.banned_until <= now
            and now - p.window_start > self.config.peer_window
        ]  # fmt: skip
        for ip in stale:
            del self._peers[ip]


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
        tls: ssl.SSLContext | None = None,
    ) -> None:
        import paho.mqtt.client as mqtt

        self._mqtt = mqtt
        self.host, self.port, self.timeout = host, port, timeout
        self.client_id, self.inflight = client_id, inflight
        self.username, self.password = username, password
        self.tls = tls  # TLS to the broker (ingest.publisher.tls_context), docs/mqtt.md §4
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
        if self.tls is not None:
            client.tls_set_context(self.tls)
        if self.username:
            client.username_pw_set(self.username, self.password)
        client.max_inflight_messages_set(self.inflight)
        client.on_publish = self._on_publish
        return client

    async def connect(self) -> None:
        from ingest.publisher import PublisherError, broker_protocol, connect_failure

        self._loop = loop = asyncio.get_running_loop()
        try:
            protocol = await asyncio.to_thread(
                broker_protocol,
                self.host,
                self.port,
                timeout=min(self.timeout, 10.0),
                tls=self.tls,
            )  # without the gateway's account: see ingest.publisher.broker_protocol
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
        except (OSError, ValueError) as exc:  # ssl.CertificateError is a ValueError
            why = connect_failure(exc, self.tls is not None)
            raise ConnectionError(f"MQTT broker {self.host}:{self.port}: {why}") from None
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
