"""The MQTT alert channel on a real mosquitto (issue 14): each enterprise's alerts under its own
topic, QoS 1, retained as the alert's current state, cleared after its resolution.

Scenario: enterprise A's outlet alert fires, enterprise B's fires, A's resolves. A subscriber to
``alerts/enterprise/A/#`` receives A's firing payload, A's resolved payload and the empty message
that clears the retained state — three messages, nothing of B. A subscriber that connects after
A fired gets A's state from the broker's retained message; one that connects after the
resolution gets nothing of A (the retained set is the open alerts) but B's open alert on B's topic.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import SecretStr

from alerts.notification import Notification, NotificationKind, NotificationStatus, Texts
from alerts.notify.base import NotifyError
from alerts.notify.mqtt import MqttNotifier, MqttPublisher
from alerts.settings import MqttAlertSettings
from streams.embedded import MqttBroker

AT = datetime(2026, 1, 12, 3, 0, tzinfo=UTC)
EXTERNAL = "https://envwatch.example"


def _note(enterprise: str, fingerprint: str, status: NotificationStatus) -> Notification:
    firing = status is NotificationStatus.FIRING
    return Notification(
        id=f"{fingerprint}-{status.value}-0000000000",
        receiver=f"enterprise-{enterprise}",
        kind=NotificationKind.ALERT,
        status=status,
        state="firing" if firing else "resolved",
        reason="threshold" if firing else "cleared",
        fingerprint=fingerprint,
        severity="critical",
        locality="weifang",
        source=f"{enterprise}-g1",
        labels={"rule": "emission_permit", "enterprise": enterprise},
        at=AT,
        starts_at=AT,
        ends_at=None if firing else AT,
        texts=Texts(zh=f"【超标】{enterprise}", en=f"[Exceedance] {enterprise}"),
    )


class Subscriber:
    """A paho subscriber collecting (topic, payload, retain) of one topic filter."""

    def __init__(self, broker: MqttBroker, topic: str) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        self.client.on_message = lambda _c, _u, m: self.messages.append(
            (m.topic, bytes(m.payload), bool(m.retain))
        )
        self.client.on_subscribe = lambda *_a: self._subscribed.set()
        self.client.on_connect = lambda c, *_a: c.subscribe(topic, qos=1)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert self._subscribed.wait(10), "subscription not acknowledged"

    def wait_for(self, n: int, timeout: float = 10.0) -> list[tuple[str, bytes, bool]]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # anything more would arrive now
        return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_subscriber_gets_its_enterprise_alert_and_resolution_and_nothing_else(
    mqtt_broker: MqttBroker,
) -> None:
    settings = MqttAlertSettings(url=SecretStr(f"mqtt://{mqtt_broker.host}:{mqtt_broker.port}"))
    publisher = MqttPublisher(settings)
    a = MqttNotifier(publisher, "alerts/enterprise/e-a", external_url=EXTERNAL)
    b = MqttNotifier(publisher, "alerts/enterprise/e-b", external_url=EXTERNAL)
    live = Subscriber(mqtt_broker, "alerts/enterprise/e-a/#")
    try:
        asyncio.run(a.send(_note("e-a", "fp-a", NotificationStatus.FIRING)))
        asyncio.run(b.send(_note("e-b", "fp-b", NotificationStatus.FIRING)))
        # a late subscriber sees A's current state from the retained message
        late = Subscriber(mqtt_broker, "alerts/enterprise/e-a/#")
        retained = late.wait_for(1)
        late.close()
        assert [(t, r) for t, _p, r in retained] == [("alerts/enterprise/e-a/fp-a", True)]
        assert orjson.loads(retained[0][1])["status"] == "firing"

        asyncio.run(a.send(_note("e-a", "fp-a", NotificationStatus.RESOLVED)))
        got = live.wait_for(3)
        assert [t for t, _p, _r in got] == ["alerts/enterprise/e-a/fp-a"] * 3
        first, second, third = (orjson.loads(p) if p else None for _t, p, _r in got)
        assert first is not None
        assert second is not None
        assert first["status"] == "firing"
        assert first["enterprise"] == "e-a"
        assert first["texts"] == {"zh": "【超标】e-a", "en": "[Exceedance] e-a"}
        assert first["url"] == "https://envwatch.example/console/alerts/fp-a"
        assert second["status"] == "resolved"
        assert third is None  # the empty message that cleared the retained state

        # after the resolution nothing of A is retained; B's open alert is, on B's topic only
        after = Subscriber(mqtt_broker, "alerts/enterprise/#")
        remaining = after.wait_for(1)
        after.close()
        assert [(t, r) for t, _p, r in remaining] == [("alerts/enterprise/e-b/fp-b", True)]
    finally:
        live.close()
        # leave the session-scoped broker without our retained state
        publisher.publish_sync("alerts/enterprise/e-b/fp-b", b"")
        publisher.close()


def test_unreachable_broker_is_a_retryable_failure_without_the_password() -> None:
    settings = MqttAlertSettings(
        url=SecretStr("mqtt://alerts:pa55word-xyz@127.0.0.1:1"), timeout_seconds=0.5
    )
    publisher = MqttPublisher(settings)
    notifier = MqttNotifier(publisher, "alerts/enterprise/e-a")
    try:
        with pytest.raises(NotifyError) as info:
            asyncio.run(notifier.send(_note("e-a", "fp-a", NotificationStatus.FIRING)))
        assert info.value.retryable
        assert "pa55word" not in str(info.value)
        assert "127.0.0.1" not in str(info.value)
    finally:
        publisher.close()
