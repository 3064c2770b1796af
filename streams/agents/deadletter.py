"""``deadletter``: every dead letter becomes a ``dead_letter`` point, so bad input is counted and
shows on the data-quality dashboard (architecture.md §6). The record itself stays on the topic
with its original bytes for inspection and replay."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import orjson

from streams.lineprotocol import line

if TYPE_CHECKING:
    from streams.app import Pipeline

log = logging.getLogger(__name__)


def dead_letter_point(
    value: bytes, timestamp_ms: int, offset: int
) -> tuple[dict[str, str], dict[str, str], int]:
    """Tags, fields and nanosecond timestamp of one ``dead_letter`` point (the record's Kafka
    timestamp; the offset is folded into the sub-millisecond digits so two dead letters of the
    same stage and millisecond stay two points, while a replayed record overwrites itself)."""
    try:
        d = orjson.loads(value)
        stage = str(d.get("stage", "unknown"))
        reason, origin = str(d.get("reason", "")), str(d.get("origin", ""))
    except (orjson.JSONDecodeError, AttributeError):
        stage, reason, origin = "unknown", "undecodable dead letter", ""
    ns = timestamp_ms * 1_000_000 + offset % 1_000_000
    return {"stage": stage}, {"reason": reason[:500], "origin": origin}, ns


def dead_letter_line(value: bytes, timestamp_ms: int, offset: int) -> str:
    tags, fields, ns = dead_letter_point(value, timestamp_ms, offset)
    return line("dead_letter", tags, fields, ns)


def register(p: Pipeline) -> None:
    s = p.settings

    @p.app.agent(p.topic("dead-letter"), name="deadletter")
    async def deadletter(stream: Any) -> None:
        async for events in stream.take_events(s.sink_batch_size, within=s.sink_flush_interval):
            lines = [
                dead_letter_line(
                    e.message.value, round(e.message.timestamp * 1000), e.message.offset
                )
                for e in events
            ]
            await asyncio.to_thread(p.sink.write, lines)
            p.counters["dead_letters"] += len(lines)
