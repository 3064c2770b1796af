"""Kafka records: the one wire contract between envwatch's processes.

Topic ``readings`` (key = source id, so one source stays ordered) carries :class:`SampleRecord`,
the validated MQTT sample (ingest/schemas.py) re-serialised canonically as JSON. ``dead-letter``
carries :class:`DeadLetter`: the original bytes (base64), where it failed and why.

Records are ``faust.Record`` classes so Faust agents and tests can use them directly; the bridge
and hot paths use :func:`SampleRecord.from_bytes` / :meth:`SampleRecord.to_bytes` (orjson).
"""

from __future__ import annotations

import base64
from typing import Any

import faust
import orjson


class SampleRecord(faust.Record, serializer="json", include_metadata=False):
    """One source's sample at one time with all its factors (see docs/mqtt.md)."""

    kind: str
    locality: str
    source: str
    time: str  # ISO-8601 with offset: the sample's label (end of period for hourly air data)
    interval: str
    values: dict[str, Any]  # factor -> {"value": float | None, "flag": "N" ...}
    schema: int = 1

    @classmethod
    def from_bytes(cls, data: bytes) -> SampleRecord:
        d = orjson.loads(data)
        return cls(
            kind=d["kind"],
            locality=d["locality"],
            source=d["source"],
            time=d["time"],
            interval=d["interval"],
            values=d["values"],
            schema=d.get("schema", 1),
        )

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "schema": self.schema,
                "kind": self.kind,
                "locality": self.locality,
                "source": self.source,
                "time": self.time,
                "interval": self.interval,
                "values": self.values,
            }
        )


class DeadLetter(faust.Record, serializer="json", include_metadata=False):
    """Input that could not be processed: kept whole, with where and why."""

    stage: str  # "bridge", "gateway", "evaluate" ...
    reason: str
    payload_b64: str
    origin: str = ""  # MQTT topic, peer address, Kafka topic/partition/offset
    at: str = ""  # ISO-8601 processing time

    @classmethod
    def build(
        cls, stage: str, reason: str, payload: bytes, origin: str = "", at: str = ""
    ) -> DeadLetter:
        return cls(
            stage=stage,
            reason=reason,
            payload_b64=base64.b64encode(payload).decode(),
            origin=origin,
            at=at,
        )

    def payload(self) -> bytes:
        return base64.b64decode(self.payload_b64)

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "stage": self.stage,
                "reason": self.reason,
                "payload_b64": self.payload_b64,
                "origin": self.origin,
                "at": self.at,
            }
        )


class EvaluationRecord(faust.Record, serializer="json", include_metadata=False):
    """One evaluated result, ready for the store and for the alert engine.

    ``measurement``/``tags``/``fields``/``time`` map one-to-one onto an InfluxDB point (the schema
    is documented in docs/influx-schema.md); ``id`` is deterministic (measurement, tags, time), so a
    replay re-emits the same id and the store overwrites the same point.
    """

    id: str
    measurement: str
    tags: dict[str, str]
    fields: dict[str, Any]
    time: str  # ISO-8601 with offset, the event time

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "id": self.id,
                "measurement": self.measurement,
                "tags": self.tags,
                "fields": self.fields,
                "time": self.time,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> EvaluationRecord:
        d = orjson.loads(data)
        return cls(
            id=d["id"],
            measurement=d["measurement"],
            tags=d["tags"],
            fields=d["fields"],
            time=d["time"],
        )
