"""A small paho-mqtt 2.x QoS1 publisher for samples (demo, tests, benchmarks).

Guarantees, and why they hold (docs/mqtt.md §3 "Publishers"):

* **A message handed to** :meth:`Publisher.publish_raw` **is sent until the broker PUBACKs it**,
  across connection losses and broker restarts. paho keeps every unacknowledged QoS1 message
  and, on each reconnect, re-sends all of them with the DUP flag
  (``Client._messages_reconnect_reset_out`` + ``_handle_connack`` in paho-mqtt 2.2) whatever the
  session state, so no persistent session is needed for QoS1 *publishing*: the broker keeps no
  state for an incoming QoS1 message once it has acknowledged it. The session stays
  non-persistent (expiry 0): a publisher with a persistent session and a generated client id
  would leave an orphan session behind at every start.
* **Never an error for a short outage.** While the client is disconnected, or while ``inflight``
  messages are unacknowledged, ``publish_raw`` *blocks* (backpressure) for up to
  ``block_timeout`` seconds; only then does it raise :class:`PublishTimeout`. (paho itself
  returns ``MQTT_ERR_NO_CONN`` for a message published while disconnected although it queued it
  and sends it later — the old behaviour of raising there made callers lose or duplicate it.)
* **Publishing order is kept across reconnects.** paho writes a message published between its
  reconnect (socket open, CONNECT sent) and the CONNACK *before* the re-sent older ones, and
  MQTT v5 §4.6 requires re-sends in the original order. So nothing new is handed to paho from the
  disconnect until the re-sends are on the wire: after a reconnect with messages outstanding the
  gate opens at the first PUBACK (paho queues every re-send inside its CONNACK handler, before it
  reads any further packet). Our window equals paho's ``max_inflight_messages``, so paho never
  holds messages in its own "queued" state (whose hand-over order is not guaranteed either).
* ``flush`` / ``close`` wait until every message handed over has been answered by a PUBACK.
  A PUBACK with a failure reason code (MQTT v5, e.g. 0x87 not authorised) counts in
  ``rejected`` and makes ``flush`` raise :class:`PublishRejected`.
* **MQTT v5 where the broker has it, else 3.1.1.** A broker that speaks only MQTT 3.1.1 (amqtt,
  the embedded default's pure-Python fallback) answers a v5 CONNECT with "unacceptable protocol
  version" (MQTT 3.1.1 §3.1.2.2; paho reports it as the v5 reason 0x84). The publisher then
  connects again with 3.1.1 — nothing it relies on is v5-only. :func:`broker_protocol` asks a
  broker the same question for clients that must not send a v5 CONNECT with properties to a
  3.1.1 broker (amqtt 0.12 waits for the rest of a packet it mis-parses, and never answers).
* **TLS and an account** (:class:`MqttAuth`, docs/mqtt.md §4): with a TLS context the broker's
  certificate and host name are verified against the configured CA (:func:`tls_context`); a
  certificate the CA did not sign or a host name the certificate does not name is a
  :class:`PublisherError` naming the broker, raised at once, never a silent retry.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from ingest.errors import IngestError
from ingest.schemas import Sample, topic_for

log = logging.getLogger(__name__)

__all__ = [
    "MqttAuth",
    "PublishRejected",
    "PublishTimeout",
    "Publisher",
    "PublisherError",
    "broker_protocol",
    "protocol_name",
    "tls_context",
]

#: CONNACK reason "Unsupported protocol version" (MQTT v5 0x84); paho also reports a 3.1.1
#: broker's return code 1 ("unacceptable protocol version") to a v5 client as this reason.
UNSUPPORTED_PROTOCOL: Final = 0x84


def protocol_name(protocol: int) -> str:
    """``"MQTT v5"``, ``"MQTT 3.1.1"`` (for logs and metrics)."""
    return "MQTT v5" if protocol == mqtt.MQTTv5 else "MQTT 3.1.1"


def _unsupported_protocol(reason: Any) -> bool:
    return getattr(reason, "value", None) == UNSUPPORTED_PROTOCOL


def tls_context(
    ca_file: str | Path, cert_file: str | Path | None = None, key_file: str | Path | None = None
) -> ssl.SSLContext:
    """A client TLS context: TLS 1.2 at least, the broker's certificate verified against
    ``ca_file`` (only that CA, not the system's) and its host name checked; with ``cert_file``
    (and ``key_file`` unless the key is in the certificate file) a client certificate.

    Raises ``ValueError`` naming the file that cannot be read or is not what it should be.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED and check_hostname
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_verify_locations(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"MQTT TLS CA file {ca_file}: {_why(exc)}") from None
    if key_file is not None and cert_file is None:
        raise ValueError("an MQTT TLS key file without a certificate file")
    if cert_file is not None:
        try:
            ctx.load_cert_chain(str(cert_file), None if key_file is None else str(key_file))
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(
                f"MQTT TLS client certificate {cert_file} / key {key_file}: {_why(exc)}"
            ) from None
    return ctx


def _why(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return exc.verify_message or str(exc)
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def connect_failure(exc: BaseException, tls: bool) -> str:
    """Why a connection attempt failed, for a :class:`PublisherError` (names no secret)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"TLS: the broker's certificate is not trusted ({_why(exc)}); check "
            "ENVWATCH_MQTT_TLS_CA_FILE and that the certificate names this host"
        )
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed ({_why(exc)}); is this port a TLS listener?"
    if tls and isinstance(exc, ConnectionResetError | BrokenPipeError):
        return f"TLS handshake failed ({_why(exc)}); is this port a TLS listener?"
    return f"cannot connect: {exc}"


@dataclass(frozen=True)
class MqttAuth:
    """How an envwatch MQTT client authenticates: an account (``username``/``password``) and,
    when ``tls`` is set, TLS with that context (:func:`tls_context`). The password is never in
    the ``repr``."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: ssl.SSLContext | None = None

    def apply(self, client: mqtt.Client, *, account: bool = True) -> None:
        """Set TLS (always) and the account (unless ``account`` is False) on a paho client."""
        if self.tls is not None:
            client.tls_set_context(self.tls)
        if account and self.username:
            client.username_pw_set(self.username, self.password)


NO_AUTH: Final = MqttAuth()
#: Publisher._refused when the broker closed the connection before any CONNACK
CLOSED_BEFORE_CONNACK: Final = object()


class PublisherError(IngestError, ConnectionError):
    """The publisher could not do what was asked; ``target`` is the broker, ``reason`` why."""

    def __init__(self, target: str, reason: str) -> None:
        self.target = target
        self.reason = reason
        super().__init__(f"MQTT {target}: {reason}")


class PublishTimeout(PublisherError):
    """No room to publish (disconnected or window full) or no PUBACK within the time allowed;
    ``pending`` messages were still unacknowledged."""

    def __init__(self, target: str, reason: str, *, pending: int) -> None:
        self.pending = pending
        super().__init__(target, reason)


class PublishRejected(PublisherError):
    """The broker answered ``count`` PUBACKs with a failure reason (``first`` is the first one)."""

    def __init__(self, target: str, *, count: int, first: str) -> None:
        self.count = count
        self.first = first
        super().__init__(target, f"{count} message(s) refused by the broker, first: {first}")


def broker_protocol(
    host: str,
    port: int,
    *,
    timeout: float = 5.0,
    tls: ssl.SSLContext | None = None,
) -> MQTTProtocolVersion:
    """``mqtt.MQTTv5`` if the broker accepts an MQTT v5 connection, ``mqtt.MQTTv311`` if it
    answers that it does not speak v5.

    One throwaway connection: a v5 CONNECT without properties, clean start, a random client id
    and no account, then DISCONNECT. Never with a client's account: where the broker ties the
    client id to the username (mosquitto ``use_username_as_clientid``), a clean-start CONNECT with
    that account *is* the client's session and would wipe it. Any other answer than
    "unsupported protocol version" — success, or a refusal such as "not authorised", which a v5
    broker sends in v5 — means v5. Raises :class:`PublisherError` when the broker cannot be
    reached or sends no CONNACK within ``timeout`` seconds, and at once (with the reason) when the
    TLS handshake (``tls``) fails: an untrusted certificate or a host name it does not name.
    """
    target = f"{host}:{port}"
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"envwatch-probe-{uuid.uuid4().hex[:12]}",
        protocol=mqtt.MQTTv5,
        reconnect_on_failure=False,
    )
    client.connect_timeout = timeout
    if tls is not None:
        client.tls_set_context(tls)
    answers: list[Any] = []
    client.on_connect = lambda _c, _u, _f, reason, _p=None: answers.append(reason)
    try:
        client.connect(host, port, keepalive=10, clean_start=True)
    except (OSError, ValueError) as exc:  # ssl.CertificateError is a ValueError
        raise PublisherError(target, connect_failure(exc, tls is not None)) from None
    deadline = time.monotonic() + timeout
    try:
        while not answers and time.monotonic() < deadline:
            if client.loop(timeout=0.05) != mqtt.MQTT_ERR_SUCCESS and not answers:
                hint = "" if tls is not None else " (a TLS listener? set ENVWATCH_MQTT_TLS_CA_FILE)"
                raise PublisherError(
                    target, f"the broker closed the connection without a CONNACK{hint}"
                )
        if not answers:
            raise PublisherError(target, f"no CONNACK within {timeout:g} s")
        if _unsupported_protocol(answers[0]):
            return mqtt.MQTTv311
        if not getattr(answers[0], "is_failure", False):
            client.disconnect()
            client.loop(timeout=0.05)
        return mqtt.MQTTv5
    finally:
        sock = client.socket()  # still open when refused or timed out: the client is discarded
        if sock is not None:
            sock.close()


class Publisher:
    """QoS1 publisher: ``publish``/``publish_raw`` (block while disconnected or the window is
    full), ``flush`` (every PUBACK), ``close``. See the module docstring for the guarantees."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        client_id: str = "",
        inflight: int = 1000,
        connect_timeout: float = 15.0,
        block_timeout: float = 60.0,
        reconnect_delay: tuple[int, int] = (1, 30),
        protocol: MQTTProtocolVersion | None = None,
        auth: MqttAuth = NO_AUTH,
    ) -> None:
        if inflight < 1:
            raise PublisherError(f"{host}:{port}", f"inflight must be >= 1, got {inflight}")
        self.target = f"{host}:{port}"
        self.block_timeout = block_timeout
        self._auth = auth
        self._window = inflight
        self._cond = threading.Condition()
        # held while a message is handed to paho, and by on_disconnect: once on_disconnect has
        # returned, nothing reaches paho until the gate opens again (see module docstring)
        self._handoff = threading.Lock()
        self._ready = False  # connected and every re-send on the wire
        self._open_on_ack = False  # reconnected with messages outstanding: open at first PUBACK
        self._refused: Any = None  # the CONNACK's failure reason
        self._outstanding = 0
        self._first_rejection: str | None = None
        self.published = 0  # handed to paho
        self.acked = 0  # PUBACK with a success reason
        self.rejected = 0  # PUBACK with a failure reason
        self.connects = 0  # CONNACKs accepted (first connection and reconnects)
        #: the MQTT version in use: v5 unless given, or the broker refused v5 (then 3.1.1)
        self.protocol: MQTTProtocolVersion = mqtt.MQTTv5 if protocol is None else protocol
        deadline = time.monotonic() + connect_timeout
        while True:
            client = self._make_client(client_id, inflight, reconnect_delay)
            self._client = client
            if self._connect(client, host, port, deadline):
                return
            refused: Any = self._refused
            if protocol is None and self.protocol == mqtt.MQTTv5 and _unsupported_protocol(refused):
                log.info("publisher: %s has no MQTT v5; using MQTT 3.1.1", self.target)
                self.protocol, self._refused = mqtt.MQTTv311, None
                continue
            reason = "the broker did not accept the connection"
            if refused is CLOSED_BEFORE_CONNACK:
                reason = "the broker closed the connection without a CONNACK" + (
                    ""
                    if auth.tls is not None
                    else " (a TLS listener? set ENVWATCH_MQTT_TLS_CA_FILE)"
                )
            elif refused is not None:
                reason = f"connection refused: {refused}"
            raise PublisherError(self.target, reason)

    def _make_client(
        self, client_id: str, inflight: int, reconnect_delay: tuple[int, int]
    ) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=self.protocol
        )
        self._auth.apply(client)
        client.max_inflight_messages_set(inflight)
        client.max_queued_messages_set(0)
        client.reconnect_delay_set(*reconnect_delay)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        return client

    def _connect(self, client: mqtt.Client, host: str, port: int, deadline: float) -> bool:
        """Connect and wait for the CONNACK until ``deadline``; False (client stopped) if refused."""
        try:
            client.connect(host, port, keepalive=30)
        except (OSError, ValueError) as exc:  # ssl.CertificateError is a ValueError
            reason = connect_failure(exc, self._auth.tls is not None)
            raise PublisherError(self.target, reason) from None
        client.loop_start()
        with self._cond:
            while not self._ready and self._refused is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            ready = self._ready
        if not ready:
            client.loop_stop()
            sock = client.socket()
            if sock is not None:
                sock.close()
        return ready

    # ---------------------------------------------------------------- paho thread
    def _on_connect(self, _c: Any, _u: Any, _flags: Any, reason: Any, _p: Any = None) -> None:
        with self._cond:
            if getattr(reason, "is_failure", False):
                self._refused = reason
            else:
                self.connects += 1
                if self._outstanding == 0:
                    self._ready = True
                else:  # paho re-sends them right after this callback returns
                    self._open_on_ack = True
            self._cond.notify_all()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any = None) -> None:
        with self._handoff, self._cond:
            self._ready = False
            self._open_on_ack = False
            if self.connects == 0 and self._refused is None:
                # closed before the first CONNACK: not an outage (that fails in connect) but a
                # broker that will not talk to us, e.g. a plain client on a TLS listener
                self._refused = CLOSED_BEFORE_CONNACK
            self._cond.notify_all()
        log.info("publisher: disconnected from %s (%s)", self.target, reason)

    def _on_publish(self, _c: Any, _u: Any, _mid: int, reason: Any, _p: Any = None) -> None:
        with self._cond:
            self._outstanding -= 1
            if getattr(reason, "is_failure", False):
                self.rejected += 1
                if self._first_rejection is None:
                    self._first_rejection = str(reason)
            else:
                self.acked += 1
            if self._open_on_ack:
                self._open_on_ack = False
                self._ready = True
            self._cond.notify_all()

    # ---------------------------------------------------------------- caller side
    @property
    def pending(self) -> int:
        """Messages handed over and not yet answered by a PUBACK."""
        return self._outstanding

    def publish(self, sample: Sample) -> None:
        body = orjson.dumps(sample.model_dump(mode="json", by_alias=True))
        self.publish_raw(topic_for(sample), body)

    def publish_raw(self, topic: str, payload: bytes) -> None:
        """Hand one QoS1 message over; blocks while disconnected or ``inflight`` are pending."""
        deadline = time.monotonic() + self.block_timeout
        while True:
            with self._cond:
                while not (self._ready and self._outstanding < self._window):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        state = "connected" if self._ready else "disconnected"
                        raise PublishTimeout(
                            self.target,
                            f"no room to publish for {self.block_timeout:g} s ({state}, "
                            f"{self._outstanding} pending)",
                            pending=self._outstanding,
                        )
                    self._cond.wait(left)
            with self._handoff:
                with self._cond:
                    if not (self._ready and self._outstanding < self._window):
                        continue  # lost the connection meanwhile: wait again
                    self._outstanding += 1
                    self.published += 1
                info = self._client.publish(topic, payload, qos=1)
                # NO_CONN: the socket closed under us; paho keeps the message and re-sends it,
                # in order, after the reconnect. Anything else: paho did not take it.
                if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                    with self._cond:
                        self._outstanding -= 1
                        self.published -= 1
                    raise PublisherError(
                        self.target, f"publish to {topic} failed: {mqtt.error_string(info.rc)}"
                    )
            return

    def flush(self, timeout: float = 60.0) -> None:
        """Wait until the broker answered everything published so far.

        Raises :class:`PublishTimeout` when PUBACKs are still missing after ``timeout`` seconds
        and :class:`PublishRejected` when the broker refused messages.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._outstanding > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise PublishTimeout(
                        self.target,
                        f"{self._outstanding} message(s) without PUBACK after {timeout:g} s",
                        pending=self._outstanding,
                    )
                self._cond.wait(left)
            if self.rejected:
                raise PublishRejected(
                    self.target, count=self.rejected, first=self._first_rejection or "?"
                )

    def close(self, timeout: float = 60.0) -> None:
        """``flush(timeout)``, then disconnect (also when the flush raised)."""
        try:
            self.flush(timeout)
        finally:
            self._client.disconnect()
            self._client.loop_stop()
