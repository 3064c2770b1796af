"""Kafka records between envwatch's processes.

* ``readings`` (key = source id, so one source stays ordered): the validated MQTT sample,
  :class:`ingest.schemas.Sample`, re-serialised canonically as JSON by the bridge; the worker
  decodes it with :func:`streams.wire.decode_sample` (orjson, no model on the hot path).
* ``evaluations`` / ``aggregates``: JSON arrays of points, :mod:`streams.wire`.
* ``alert-events``: :meth:`alerts.model.Transition.to_dict` as JSON.
* ``dead-letter``: :class:`DeadLetter` below — the original bytes (base64), where it failed, why.
"""

from __future__ import annotations

import base64

import faust
import orjson


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
