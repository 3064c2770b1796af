"""``store``: evaluations → line protocol → the sink (batched, synchronous writes off the loop)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from streams.lineprotocol import line, ns
from streams.records import EvaluationRecord

if TYPE_CHECKING:
    from streams.app import Pipeline

log = logging.getLogger(__name__)


def to_line(e: EvaluationRecord) -> str:
    return line(e.measurement, e.tags, e.fields, ns(datetime.fromisoformat(e.time)))


def register(p: Pipeline) -> None:
    evaluations = p.topic("evaluations")
    s = p.settings

    @p.app.agent(evaluations, name="store")
    async def store(stream: Any) -> None:
        async for values in stream.take(s.sink_batch_size, within=s.sink_flush_interval):
            records = [EvaluationRecord.from_bytes(v) for v in values]
            lines = [to_line(r) for r in records]
            await asyncio.to_thread(p.sink.write, lines)
            for r in records:
                p.observe(r)
