"""``store``: evaluations → line protocol → the sink (batched, synchronous writes off the loop)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from streams.lineprotocol import line
from streams.wire import decode_points

if TYPE_CHECKING:
    from streams.app import Pipeline

log = logging.getLogger(__name__)


def to_line(d: dict[str, Any]) -> str:
    """An evaluation (as decoded from the wire) → one line of line protocol at its event time."""
    return line(d["measurement"], d["tags"], d["fields"], d["ns"])


def register(p: Pipeline) -> None:
    evaluations = p.topic("evaluations")
    s = p.settings

    @p.app.agent(evaluations, name="store")
    async def store(stream: Any) -> None:
        async for values in stream.take(s.sink_batch_size, within=s.sink_flush_interval):
            records = [d for v in values for d in decode_points(v)]
            lines = [to_line(r) for r in records]
            # a synchronous write, off the event loop; offsets are acknowledged only after it
            # returned (written, or spooled to disk when the endpoint is down)
            await asyncio.to_thread(p.sink.write, lines)
            if p.observers:
                for r in records:
                    p.observe(r)
