"""``store``: evaluations → line protocol → the sink (batched, synchronous writes off the loop)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import orjson

from streams import topics
from streams.lineprotocol import line
from streams.records import DeadLetter
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
            records: list[dict[str, Any]] = []
            lines: list[str] = []
            dead: list[tuple[str, bytes]] = []
            for v in values:
                try:
                    points = decode_points(v)
                except ValueError as exc:
                    dead.append((f"undecodable evaluations record: {exc}", v))
                    continue
                for d in points:
                    # one point the store cannot write (no field, a bad key) is set aside with
                    # its reason; it never takes the rest of the batch down with it
                    try:
                        lines.append(to_line(d))
                    except (ValueError, KeyError, TypeError) as exc:
                        dead.append((f"{type(exc).__name__}: {exc}", orjson.dumps(d)))
                        continue
                    records.append(d)
            for reason, payload in dead:
                log.warning("store: point set aside: %s", reason)
                dl = DeadLetter.build("store", reason, payload, origin="evaluations")
                await p.app.producer.send(
                    s.topic_prefix + topics.DEAD_LETTER, None, dl.to_bytes(), None, None, None
                )
            # a synchronous write, off the event loop; offsets are acknowledged only after it
            # returned (written, or spooled to disk when the endpoint is down)
            await asyncio.to_thread(p.sink.write, lines)
            if p.observers:
                for r in records:
                    p.observe(r)
