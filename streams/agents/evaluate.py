"""``evaluate``: readings → :class:`streams.steps.EvaluateStep` (pure) → evaluations, aggregates,
dead-letter.

The agent takes batches (``stream.take_events``), keeps per-source state in memory per partition
(:class:`streams.state.CheckpointedState`: snapshotted to Kafka, restored by deterministic replay)
and sends the outputs of a batch before the batch's offsets are acknowledged, so a crash at any
instant loses nothing and re-emits only identical records with identical ids.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from streams import topics
from streams.brokerwatch import send_confirmed
from streams.catalog import CatalogView
from streams.state import CheckpointedState
from streams.steps import EvaluateStep, Output
from streams.wire import merge_point_records

if TYPE_CHECKING:
    from streams.app import Pipeline

log = logging.getLogger(__name__)

#: the outputs whose values are point arrays (streams.wire), merged per batch, topic and key
MERGEABLE = frozenset({topics.EVALUATIONS, topics.AGGREGATES})


def register(p: Pipeline) -> None:
    s = p.settings
    readings = p.topic(topics.READINGS)
    view: CatalogView = p.catalog
    state: CheckpointedState[Output] = CheckpointedState(
        bootstrap=topics.bootstrap_of(s.kafka),
        input_topic=topics.name(topics.READINGS, s.topic_prefix),
        state_topic=topics.name(topics.EVALUATE_STATE, s.topic_prefix),
        partition_step=EvaluateStep(
            view,
            max_future=timedelta(seconds=s.max_future_s),
            max_past=timedelta(days=s.max_past_days),
        ),
        interval=s.checkpoint_interval,
    )
    step = state.partition_step
    assert isinstance(step, EvaluateStep)
    register_checkpointed(
        p,
        "evaluate",
        readings,
        state,
        counter="samples",
        within=s.batch_within,
        count=lambda: step.samples,  # an envelope counts its samples
    )


def register_checkpointed(
    p: Pipeline,
    name: str,
    topic: Any,
    state: CheckpointedState[Output],
    *,
    counter: str,
    within: float,
    count: Callable[[], int] | None = None,
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
        import asyncio

        from streams.state import LogQuiet

        async for events in stream.take_events(s.batch_size, within=within):
            # Faust gives the record timestamp in seconds; the replay path (aiokafka) in ms
            records = [
                (m.partition, m.offset, m.key or b"", m.value, round(m.timestamp * 1000))
                for m in (e.message for e in events)
            ]
            before = count() if count is not None else 0
            while True:
                try:
                    outputs = await state.process(records)
                    break
                except LogQuiet as exc:  # the broker may come back: retry, drop nothing
                    log.error(
                        "%s: cannot restore its state (%s); the batch is tried again", name, exc
                    )
                    await asyncio.sleep(1.0)  # process() changed nothing: the same records
            await send_outputs(p, outputs)
            await checkpoint(p, state)
            p.counters[counter] += count() - before if count is not None else len(records)


async def send_outputs(p: Pipeline, outputs: Sequence[Output]) -> None:
    """Send a batch's outputs and wait until Kafka acknowledged them (before the offsets commit)."""
    prefix = p.settings.topic_prefix
    items = [
        (prefix + logical, key, value, None)
        for logical, key, value in merge_point_records(outputs, MERGEABLE)
    ]
    await send_confirmed(p.app.producer, items)  # a refused send is sent again, not dropped


async def checkpoint(p: Pipeline, state: CheckpointedState[Any], *, force: bool = False) -> None:
    snaps = state.due_snapshots(force=force)
    if not snaps:
        return
    topic = state.state_topic
    await send_confirmed(p.app.producer, [(topic, k, v, part) for k, v, part in snaps])
