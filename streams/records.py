"""Kafka records between envwatch's processes.

* ``readings`` (partition by source id, so one source stays ordered): the validated MQTT
  sample, :class:`ingest.schemas.Sample`, re-serialised canonically as JSON by the bridge —
  alone (key = source id) or with the other samples of its partition from the same MQTT burst
  in an *envelope*, a JSON array (:func:`envelope_bytes` below); the worker decodes them with
  :func:`streams.wire.sample_of` (orjson, no model on the hot path).
* ``evaluations`` / ``aggregates``: JSON arrays of points, :mod:`streams.wire`.
* ``alert-events``: :meth:`alerts.model.Transition.to_dict` as JSON.
* ``dead-letter``: :class:`DeadLetter` below — the original bytes (base64), where it failed, why.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Final

import faust
import orjson

#: An envelope (several samples in one ``readings`` record) holds at most this many bytes of
#: samples: well below Kafka's default ``max.message.bytes`` (1 MiB) and the bridge producer's
#: batch size (256 KiB), so a record always fits a batch. envwatch's choice [MEM]; a sample larger
#: than this travels alone.
ENVELOPE_MAX_BYTES: Final = 128 * 1024


def is_envelope(value: bytes) -> bool:
    """Whether a ``readings`` value is an envelope — a JSON array of samples — rather than one
    sample (a JSON object). Both forms are accepted on ``readings`` (docs/streams.md)."""
    return value[:1] == b"["


def envelope_bytes(samples: Sequence[bytes]) -> bytes:
    """One ``readings`` value carrying ``samples`` (each one sample's canonical JSON, in order)."""
    return b"[" + b",".join(samples) + b"]"


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
