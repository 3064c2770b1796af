"""``evaluate``: readings → pure evaluation (rules.engine) → evaluations, aggregates, dead-letter.

The agent takes batches (``stream.take_events``), keeps per-source state in memory per partition
(:class:`streams.state.CheckpointedState`: snapshotted to Kafka, restored by deterministic replay)
and sends the outputs of a batch before the batch's offsets are acknowledged, so a crash at any
instant loses nothing and re-emits only identical records with identical ids.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from rules import engine
from rules.errors import RulesError
from streams import topics
from streams.catalog import DEFAULT_CONTEXT, CatalogView
from streams.records import DeadLetter
from streams.state import CheckpointedState
from streams.wire import decode_sample, for_locality, merge_point_records, points_bytes

if TYPE_CHECKING:
    from streams.app import Pipeline
    from streams.settings import Settings

log = logging.getLogger(__name__)

#: An output of a step: (logical topic, key, value).
Output = tuple[str, bytes, bytes]
#: the outputs whose values are point arrays (streams.wire), merged per batch, topic and key
MERGEABLE = frozenset({topics.EVALUATIONS, topics.AGGREGATES})


def make_step(
    view: CatalogView, settings: Settings
) -> Callable[
    [dict[str, Any] | None, bytes, bytes, int, int], tuple[dict[str, Any] | None, list[Output]]
]:
    max_future = timedelta(seconds=settings.max_future_s)
    max_past = timedelta(days=settings.max_past_days)

    def dead(key: bytes, value: bytes, offset: int, reason: str) -> list[Output]:
        dl = DeadLetter.build("evaluate", reason, value, origin=f"readings@{offset}")
        return [(topics.DEAD_LETTER, key, dl.to_bytes())]

    def step(
        state: dict[str, Any] | None, key: bytes, value: bytes, offset: int, ts_ms: int
    ) -> tuple[dict[str, Any] | None, list[Output]]:
        try:
            sample = decode_sample(value)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return state, dead(key, value, offset, f"undecodable sample: {exc}")
        # "far in the future or past" is judged against the record's Kafka timestamp (set when the
        # bridge produced it), never the worker's clock, so a replay decides the same way.
        received = datetime.fromtimestamp(ts_ms / 1000, tz=sample.time.tzinfo)
        if sample.time - received > max_future:
            return state, dead(
                key,
                value,
                offset,
                f"time {sample.time.isoformat()} is more than {max_future} after receipt",
            )
        if received - sample.time > max_past:
            return state, dead(
                key,
                value,
                offset,
                f"time {sample.time.isoformat()} is more than {max_past.days} days before receipt",
            )
        ctx = view.context(sample.source)
        if ctx is None and sample.kind == "forecast" and view.knows_locality(sample.locality):
            # AQI forecasts (the input of heavy-pollution warnings) come from the forecast
            # office of a known locality, not from a catalogued monitor
            ctx = DEFAULT_CONTEXT
        if ctx is None:
            return state, dead(
                key, value, offset, f"unknown source {sample.source!r} (not in the catalogue)"
            )
        try:
            new, points = engine.step(state, sample, ctx)
        except RulesError as exc:
            return state, dead(key, value, offset, f"{type(exc).__name__}: {exc}")
        if not points:
            return new, []
        # Both are keyed by locality: the locality stage (city values, warnings, alerts) needs
        # a locality's points together, and the records of one batch then merge into one
        # (streams.wire.merge_point_records) — a Faust event costs more than its points.
        locality = sample.locality.encode()
        outputs: list[Output] = [(topics.EVALUATIONS, locality, points_bytes(points))]
        forward = [p for p in points if for_locality(p)]
        if forward:
            outputs.append((topics.AGGREGATES, locality, points_bytes(forward)))
        return new, outputs

    return step


def register(p: Pipeline) -> None:
    s = p.settings
    readings = p.topic(topics.READINGS)
    view: CatalogView = p.catalog
    state: CheckpointedState[Output] = CheckpointedState(
        bootstrap=topics.bootstrap_of(s.kafka),
        input_topic=topics.name(topics.READINGS, s.topic_prefix),
        state_topic=topics.name(topics.EVALUATE_STATE, s.topic_prefix),
        step=make_step(view, s),
        interval=s.checkpoint_interval,
    )
    register_checkpointed(p, "evaluate", readings, state, counter="samples", within=s.batch_within)


def register_checkpointed(
    p: Pipeline,
    name: str,
    topic: Any,
    state: CheckpointedState[Output],
    *,
    counter: str,
    within: float,
) -> None:
    """A batched agent over ``topic`` whose state is ``state``: decode the batch's records, run
    the pure step over them, send the outputs (flushed), checkpoint, then let Faust ack."""
    s = p.settings
    p.states[name] = state

    @p.app.on_partitions_revoked.connect  # type: ignore[arg-type]  # mode's Signal typing
    async def _revoked(_app: Any, revoked: Any = (), **_: Any) -> None:
        state.revoke(tp.partition for tp in revoked if tp.topic == state.input_topic)

    @p.app.agent(topic, name=name)
    async def agent(stream: Any) -> None:
        async for events in stream.take_events(s.batch_size, within=within):
            # Faust gives the record timestamp in seconds; the replay path (aiokafka) in ms
            records = [
                (m.partition, m.offset, m.key or b"", m.value, round(m.timestamp * 1000))
                for m in (e.message for e in events)
            ]
            outputs = await state.process(records)
            await send_outputs(p, outputs)
            await checkpoint(p, state)
            p.counters[counter] += len(records)


async def send_outputs(p: Pipeline, outputs: Sequence[Output]) -> None:
    """Send a batch's outputs and wait until Kafka acknowledged them (before the offsets commit)."""
    producer = p.app.producer
    prefix = p.settings.topic_prefix
    for logical, key, value in merge_point_records(outputs, MERGEABLE):
        await producer.send(prefix + logical, key, value, None, None, None)
    if outputs:
        await producer.flush()


async def checkpoint(p: Pipeline, state: CheckpointedState[Any], *, force: bool = False) -> None:
    snaps = state.due_snapshots(force=force)
    if not snaps:
        return
    topic = state.state_topic
    for key, value, partition in snaps:
        await p.app.producer.send(topic, key, value, partition, None, None)
    await p.app.producer.flush()
