"""``store``: evaluations → line protocol → the sink (batched, synchronous writes off the loop).

With an endpoint configured, every ``sink_health_interval`` seconds the stage states the sink's
health for the operator's ``store`` alert (alerts/pipeline.py, docs/sink.md): component
``store@<instance>``, conditions ``write`` (the sink cannot write: batches are spooled) and
``rejected`` (lines the endpoint refused wait in ``<spool>/rejected/`` for ``envwatch sink
replay``)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
from typing import TYPE_CHECKING, Any

import orjson

from alerts.pipeline import component_id
from streams import topics
from streams.health import HealthReporter
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
    if p.sink.writer is not None:
        register_health(p)

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


def default_instance(p: Pipeline) -> str:
    """``<host>.<4 hex digits of the spool directory>``: stable across restarts (an alert opened
    before a restart is cleared after it), distinct for two workers on one host (each has its own
    spool, so its own health)."""
    spool = str(p.sink.spool.directory.resolve())
    return f"{socket.gethostname()}.{hashlib.sha1(spool.encode()).hexdigest()[:4]}"


def register_health(p: Pipeline) -> HealthReporter:
    """The timer that reports the sink's health (``write`` and ``rejected``)."""
    s = p.settings
    reporter = HealthReporter(p, component_id("store", s.sink_instance or default_instance(p)))

    @p.app.timer(s.sink_health_interval)  # type: ignore[untyped-decorator]  # faust is untyped
    async def _store_health() -> None:
        h = await asyncio.to_thread(p.sink.health)
        await reporter.update("write", problem=not h.writing, reason=h.error, count=h.spooled_lines)
        await reporter.update(
            "rejected",
            problem=h.rejected_lines > 0,
            reason=h.rejected_reason,
            count=h.rejected_lines,
        )

    return reporter
