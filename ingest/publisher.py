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
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ingest.errors import IngestError
from ingest.schemas import Sample, topic_for

log = logging.getLogger(__name__)

__all__ = ["PublishRejected", "PublishTimeout", "Publisher", "PublisherError"]


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
    ) -> None:
        if inflight < 1:
            raise PublisherError(f"{host}:{port}", f"inflight must be >= 1, got {inflight}")
        self.target = f"{host}:{port}"
        self.block_timeout = block_timeout
        self._window = inflight
        self._cond = threading.Condition()
        # held while a message is handed to paho, and by on_disconnect: once on_disconnect has
        # returned, nothing reaches paho until the gate opens again (see module docstring)
        self._handoff = threading.Lock()
        self._ready = False  # connected and every re-send on the wire
        self._open_on_ack = False  # reconnected with messages outstanding: open at first PUBACK
        self._refused: str | None = None
        self._outstanding = 0
        self._first_rejection: str | None = None
        self.published = 0  # handed to paho
        self.acked = 0  # PUBACK with a success reason
        self.rejected = 0  # PUBACK with a failure reason
        self.connects = 0  # CONNACKs accepted (first connection and reconnects)

        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        client.max_inflight_messages_set(inflight)
        client.max_queued_messages_set(0)
        client.reconnect_delay_set(*reconnect_delay)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self._client = client
        try:
            client.connect(host, port, keepalive=30)
        except OSError as exc:
            raise PublisherError(self.target, f"cannot connect: {exc}") from exc
        client.loop_start()
        deadline = time.monotonic() + connect_timeout
        with self._cond:
            while not self._ready and self._refused is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            refused, ready = self._refused, self._ready
        if not ready:
            client.loop_stop()
            raise PublisherError(self.target, refused or "the broker did not accept the connection")

    # ---------------------------------------------------------------- paho thread
    def _on_connect(self, _c: Any, _u: Any, _flags: Any, reason: Any, _p: Any = None) -> None:
        with self._cond:
            if getattr(reason, "is_failure", False):
                self._refused = f"connection refused: {reason}"
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
