"""A small paho-mqtt 2.x QoS1 publisher for samples (demo, tests, simulators)."""

from __future__ import annotations

import threading

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ingest.schemas import Sample, topic_for


class Publisher:
    """Publish samples with QoS1 and a bounded in-flight window; ``close`` waits for every PUBACK."""

    def __init__(self, host: str, port: int, *, client_id: str = "", inflight: int = 1000) -> None:
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self._client.max_inflight_messages_set(inflight)
        self._client.max_queued_messages_set(0)
        self._connected = threading.Event()
        self._client.on_connect = lambda *_a: self._connected.set()
        self._client.connect(host, port, keepalive=30)
        self._client.loop_start()
        if not self._connected.wait(15):
            self._client.loop_stop()
            raise ConnectionError(f"MQTT broker {host}:{port} did not accept the connection")
        self._last: mqtt.MQTTMessageInfo | None = None
        self.published = 0

    def publish(self, sample: Sample) -> None:
        body = orjson.dumps(sample.model_dump(mode="json", by_alias=True))
        self.publish_raw(topic_for(sample), body)

    def publish_raw(self, topic: str, payload: bytes) -> None:
        info = self._client.publish(topic, payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise ConnectionError(f"publish to {topic} failed: {mqtt.error_string(info.rc)}")
        self._last = info
        self.published += 1

    def flush(self, timeout: float = 60.0) -> None:
        """Wait until the broker acknowledged everything published so far."""
        if self._last is not None:
            self._last.wait_for_publish(timeout)

    def close(self, timeout: float = 60.0) -> None:
        try:
            self.flush(timeout)
        finally:
            self._client.disconnect()
            self._client.loop_stop()
