"""The MQTT alert channel (paho-mqtt 2.x): each alert's current state, retained, per subscriber scope.

A notification of an enterprise receiver is published to
``<root>/enterprise/<enterprise id>/<fingerprint>``, of a locality receiver (duty, emergency,
escalation kinds) to ``<root>/locality/<locality id>/<fingerprint>`` (``root`` defaults to
``alerts``; docs/notifications.md §11). QoS 1, **retained**: the retained message of a topic is the
alert's current state, so a system that subscribes to ``alerts/enterprise/<its id>/#`` gets its
open alerts at once and every change after. A resolution replaces it with the resolved state;
then, with ``clear_resolved`` (the default), an empty retained message clears the topic (MQTT
3.1.1 §3.3.1.3: a zero-byte retained PUBLISH removes the retained message and is delivered to
current subscribers as an empty message — a consumer ignores empty payloads), so the retained set
is exactly the open alerts.

Payload (JSON): ``id`` (the idempotency key), ``receiver``, ``kind``, ``status``, ``state``,
``reason``, ``fingerprint``, ``rule``, ``severity``, ``level``, ``locality``, ``enterprise``,
``source``, ``at``, ``starts_at``, ``ends_at``, ``texts`` (``zh``, ``en``) and ``url`` (the
alert's console page, "" when ``ENVWATCH_ALERTS_EXTERNAL_URL`` is unset).

The broker's address and credentials come from settings (``ENVWATCH_ALERTS_MQTT__*``) and are
never logged: errors name the exception type only. That one enterprise's subscriber cannot read
another's topics is the broker's ACL (issue 17), not this module's.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from alerts.notification import Notification, NotificationStatus
from alerts.notify.base import NotifyError
from alerts.notify.webhook import config_fingerprint
from alerts.settings import MqttAlertSettings
from alerts.templates import console_url

#: the default topic root of the channel
ROOT = "alerts"


def topic_scope(root: str, scope: str, ident: str) -> str:
    """``<root>/enterprise/<id>`` or ``<root>/locality/<id>``."""
    if scope not in {"enterprise", "locality"}:
        raise ValueError(f"unknown MQTT alert scope {scope!r}")
    return f"{root.rstrip('/')}/{scope}/{ident}"


def payload(notification: Notification, external_url: str = "") -> bytes:
    """The JSON a subscriber receives (module docstring)."""
    n = notification
    return orjson.dumps(
        {
            "id": n.id,
            "receiver": n.receiver,
            "kind": n.kind.value,
            "status": n.status.value,
            "state": n.state,
            "reason": n.reason,
            "fingerprint": n.fingerprint,
            "rule": n.labels.get("rule", ""),
            "severity": n.severity,
            "level": n.level,
            "locality": n.locality,
            "enterprise": n.labels.get("enterprise") or None,
            "source": n.source,
            "at": n.at.isoformat(),
            "starts_at": n.starts_at.isoformat(),
            "ends_at": None if n.ends_at is None else n.ends_at.isoformat(),
            "texts": {"zh": n.texts.zh, "en": n.texts.en},
            "url": console_url(external_url, n.fingerprint),
        }
    )


class MqttPublisher:
    """One paho client (MQTT 3.1.1, clean session) shared by the MQTT channels of a process;
    connects at the first publish and reconnects by itself (paho's loop thread)."""

    def __init__(self, settings: MqttAlertSettings) -> None:
        if settings.url is None:
            raise NotifyError(
                "no MQTT broker configured (ENVWATCH_ALERTS_MQTT__URL)", retryable=False
            )
        url = settings.url.get_secret_value()
        try:
            parts = urlsplit(url)
            host, port = parts.hostname, parts.port
        except ValueError:
            raise NotifyError("the MQTT broker URL is not a URL", retryable=False) from None
        if parts.scheme not in {"mqtt", "mqtts", "tcp", "ssl"} or not host:
            raise NotifyError("the MQTT broker URL is mqtt[s]://host[:port]", retryable=False)
        self._tls = parts.scheme in {"mqtts", "ssl"}
        self._host = host
        self._port = port or (8883 if self._tls else 1883)
        username = unquote(parts.username) if parts.username else settings.username
        password: str | None = unquote(parts.password) if parts.password else None
        if password is None and settings.password is not None:
            password = settings.password.get_secret_value()
        if password is None and settings.password_file is not None:
            try:
                text = Path(settings.password_file).read_text(encoding="utf-8")
            except OSError as exc:
                raise NotifyError(
                    f"MQTT password file unreadable ({exc.strerror})", retryable=False
                ) from None
            password = text.removesuffix("\n").removesuffix("\r")
        if not self._tls and any((settings.ca_file, settings.cert_file, settings.key_file)):
            raise NotifyError(
                "MQTT CA/certificate files are set but the URL is not mqtts://", retryable=False
            )
        self._ca_file, self._cert_file, self._key_file = (
            settings.ca_file,
            settings.cert_file,
            settings.key_file,
        )
        self._username = username
        self._password = password
        self.timeout = settings.timeout_seconds
        #: changes when the broker or its credentials change; reveals neither
        self.fingerprint = config_fingerprint(url, f"{username}\0{password or ''}")
        self._client_id = f"{settings.client_id}-{uuid.uuid4().hex[:8]}"
        self._client: Any = None
        self._connected = threading.Event()
        self._lock = threading.Lock()

    def _on_connect(self, _c: Any, _u: Any, _flags: Any, reason: Any, _p: Any) -> None:
        if not getattr(reason, "is_failure", False):
            self._connected.set()

    def _on_disconnect(self, *_args: Any) -> None:
        self._connected.clear()

    def _ensure(self) -> Any:
        with self._lock:
            if self._client is None:
                client = mqtt.Client(
                    CallbackAPIVersion.VERSION2,
                    client_id=self._client_id,
                    protocol=mqtt.MQTTv311,
                    clean_session=True,
                )
                if self._username is not None:
                    client.username_pw_set(self._username, self._password)
                if self._tls:
                    # CERT_REQUIRED and the host name checked (paho's tls_set defaults); the
                    # given CA only when set, else the system's
                    try:
                        client.tls_set(
                            ca_certs=None if self._ca_file is None else str(self._ca_file),
                            certfile=None if self._cert_file is None else str(self._cert_file),
                            keyfile=None if self._key_file is None else str(self._key_file),
                        )
                    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                        raise NotifyError(
                            f"MQTT TLS files unusable ({type(exc).__name__})", retryable=False
                        ) from None
                client.on_connect = self._on_connect
                client.on_disconnect = self._on_disconnect
                client.reconnect_delay_set(1, 10)
                try:
                    self._connect(client)
                    client.loop_start()
                except NotifyError:
                    raise
                except Exception as exc:
                    raise NotifyError(
                        f"MQTT broker unreachable ({type(exc).__name__})", retryable=True
                    ) from None
                self._client = client
            return self._client

    def _connect(self, client: Any) -> None:
        """Connect now, so that a TLS failure is an error with its reason (paho's own reconnect
        loop would retry it silently); a broker that is away is left to paho's reconnects."""
        try:
            client.connect(self._host, self._port, keepalive=30)
        except ssl.SSLCertVerificationError:
            raise NotifyError(
                "MQTT TLS: the broker's certificate is not trusted by the CA file or does not "
                "name the broker's host",
                retryable=True,
            ) from None
        except ssl.SSLError as exc:
            raise NotifyError(
                f"MQTT TLS handshake failed ({type(exc).__name__})", retryable=True
            ) from None
        except OSError:
            client.connect_async(self._host, self._port, keepalive=30)

    def publish_sync(self, topic: str, body: bytes, *, retain: bool = True) -> None:
        """Publish with QoS 1 and wait for the broker's PUBACK (``timeout`` s)."""
        client = self._ensure()
        if not self._connected.wait(self.timeout):
            raise NotifyError("MQTT broker not connected", retryable=True)
        try:
            info = client.publish(topic, body, qos=1, retain=retain)
            info.wait_for_publish(self.timeout)
        except Exception as exc:  # paho raises RuntimeError / ValueError; never quote it
            raise NotifyError(
                f"MQTT publish failed ({type(exc).__name__})", retryable=True
            ) from None
        if not info.is_published():
            raise NotifyError("MQTT publish not acknowledged in time", retryable=True)

    async def publish(self, topic: str, body: bytes, *, retain: bool = True) -> None:
        await asyncio.to_thread(self.publish_sync, topic, body, retain=retain)

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            client.loop_stop()


class MqttNotifier:
    """The MQTT channel of one receiver: its scope topic (``<root>/enterprise/<id>`` or
    ``<root>/locality/<id>``) on a shared :class:`MqttPublisher`."""

    def __init__(
        self,
        publisher: MqttPublisher,
        scope_topic: str,
        *,
        clear_resolved: bool = True,
        external_url: str = "",
    ) -> None:
        self.publisher = publisher
        self.scope_topic = scope_topic.rstrip("/")
        self.clear_resolved = clear_resolved
        self.external_url = external_url
        self.fingerprint = config_fingerprint(scope_topic, publisher.fingerprint)

    def topic(self, notification: Notification) -> str:
        return f"{self.scope_topic}/{notification.fingerprint}"

    async def send(self, notification: Notification) -> None:
        topic = self.topic(notification)
        try:
            await self.publisher.publish(topic, payload(notification, self.external_url))
            if self.clear_resolved and notification.status is NotificationStatus.RESOLVED:
                await self.publisher.publish(topic, b"")
        except NotifyError as exc:
            raise NotifyError(
                exc.reason, retryable=exc.retryable, receiver=notification.receiver
            ) from None

    async def aclose(self) -> None:
        return None  # the shared publisher is closed by its owner (alerts/notify/routes.py)
