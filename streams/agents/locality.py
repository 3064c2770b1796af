"""``locality``: aggregates (keyed by locality) → city values, warnings, alert transitions.

Thin glue around :class:`streams.steps.LocalityStep` (pure; ``envwatch backtest`` calls the same):
load the locality's state, run the step, checkpoint, emit — city/warning/alert points to
``evaluations`` (the store writes them) and transitions to ``alert-events``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alerts.locality import LocalityState
from streams import topics
from streams.agents.evaluate import register_checkpointed
from streams.state import CheckpointedState
from streams.steps import LocalityStep, Output

if TYPE_CHECKING:
    from streams.app import Pipeline


def register(p: Pipeline) -> None:
    s = p.settings
    rules = p.alert_rules  # current rules, hot-reloaded (streams.alert_rules)
    state: CheckpointedState[Output] = CheckpointedState(
        bootstrap=topics.bootstrap_of(s.kafka),
        input_topic=topics.name(topics.AGGREGATES, s.topic_prefix),
        state_topic=topics.name(topics.LOCALITY_STATE, s.topic_prefix),
        step=LocalityStep(p.catalog, rules),
        interval=s.checkpoint_interval,
        dump=lambda st: st.to_dict(),
        load=lambda d: LocalityState.from_dict(d, rules()),
    )
    register_checkpointed(
        p,
        "locality",
        p.topic(topics.AGGREGATES),
        state,
        counter="aggregates",
        within=s.downstream_within,
    )
