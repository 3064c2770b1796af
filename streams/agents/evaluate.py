"""``evaluate``: readings → pure evaluation (rules/) → evaluations topic."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rules.readings import invalid_flags, valid_values
from streams.records import DeadLetter, EvaluationRecord, SampleRecord

if TYPE_CHECKING:
    from streams.app import Pipeline

log = logging.getLogger(__name__)


def evaluate_sample(sample: SampleRecord) -> list[EvaluationRecord]:
    """The evaluations of one sample (pure glue: decode done, rules called, records built)."""
    at = datetime.fromisoformat(sample.time)
    tags = {"kind": sample.kind, "locality": sample.locality, "source": sample.source}
    fields: dict[str, Any] = dict(valid_values(sample.values))
    flags = invalid_flags(sample.values)
    if flags:
        fields["invalid"] = ",".join(f"{k}:{v}" for k, v in sorted(flags.items()))
    if not fields:
        return []
    ident = f"reading/{sample.source}/{at.isoformat()}"
    return [
        EvaluationRecord(
            id=ident, measurement="reading", tags=tags, fields=fields, time=sample.time
        )
    ]


def register(p: Pipeline) -> None:
    readings = p.topic("readings")
    evaluations = p.topic("evaluations")
    dead = p.topic("dead-letter")

    @p.app.agent(readings, name="evaluate")
    async def evaluate(stream: Any) -> None:
        async for event in stream.events():
            try:
                sample = SampleRecord.from_bytes(event.value)
                results = evaluate_sample(sample)
            except Exception as exc:  # bad input never stops the worker: dead-letter it
                msg = event.message
                origin = f"{msg.topic}/{msg.partition}@{msg.offset}"
                log.warning("evaluate: %s at %s", exc, origin)
                await dead.send(
                    key=event.key,
                    value=DeadLetter.build(
                        "evaluate", f"{type(exc).__name__}: {exc}", event.value, origin
                    ).to_bytes(),
                )
                continue
            for result in results:
                await evaluations.send(key=event.key, value=result.to_bytes())
