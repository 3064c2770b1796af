"""``locality``: aggregates (keyed by locality) → city values, warnings, alert transitions.

Thin glue around :class:`alerts.locality.LocalityState` (pure): decode the point, load the
locality's state, call its step with the catalogue's context, checkpoint, emit — city/warning/alert
points to ``evaluations`` (the store writes them) and transitions to ``alert-events``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import orjson

from alerts.locality import LocalityContext, LocalityState, transition_point
from alerts.rules import AlertRules, default_rules
from rules.engine import Point
from streams import topics
from streams.agents.evaluate import Output, register_checkpointed
from streams.catalog import locality_context
from streams.records import DeadLetter
from streams.state import CheckpointedState
from streams.wire import decode_points, points_bytes

if TYPE_CHECKING:
    from streams.app import Pipeline

log = logging.getLogger(__name__)


def make_step(p: Pipeline, rules: AlertRules) -> Any:
    contexts: dict[str, LocalityContext] = {}
    seen_reloads = [-1]

    def context(locality: str) -> LocalityContext:
        if seen_reloads[0] != p.catalog.reloads:
            contexts.clear()
            seen_reloads[0] = p.catalog.reloads
        ctx = contexts.get(locality)
        if ctx is None:
            ctx = contexts[locality] = locality_context(p.catalog, locality)
        return ctx

    def step(
        state: LocalityState | None, key: bytes, value: bytes, offset: int, ts_ms: int
    ) -> tuple[LocalityState | None, list[Output]]:
        def dead(
            exc: Exception, st: LocalityState | None
        ) -> tuple[LocalityState | None, list[Output]]:
            dl = DeadLetter.build(
                "locality", f"{type(exc).__name__}: {exc}", value, origin=f"aggregates@{offset}"
            )
            return st, [(topics.DEAD_LETTER, key, dl.to_bytes())]

        try:
            points = decode_points(value)
            locality = points[0]["tags"]["locality"]
        except Exception as exc:  # bad input must not stop the locality stage
            return dead(exc, state)
        st = state if state is not None else LocalityState(locality, rules)
        try:
            result = st.step_record(points, context(locality))
        except Exception as exc:
            # The points before the failing one were applied: keep that state (a replay applies
            # them the same way) and set the record aside with the reason.
            return dead(exc, st)
        emitted: list[Point] = list(result.points)
        transitions = result.transitions
        emitted += [transition_point(t) for t in transitions]
        outputs: list[Output] = []
        if emitted:
            outputs.append((topics.EVALUATIONS, key, points_bytes(emitted)))
        outputs += [(topics.ALERT_EVENTS, key, orjson.dumps(t.to_dict())) for t in transitions]
        return st, outputs

    return step


def register(p: Pipeline) -> None:
    s = p.settings
    rules = default_rules()
    state: CheckpointedState[Output] = CheckpointedState(
        bootstrap=topics.bootstrap_of(s.kafka),
        input_topic=topics.name(topics.AGGREGATES, s.topic_prefix),
        state_topic=topics.name(topics.LOCALITY_STATE, s.topic_prefix),
        step=make_step(p, rules),
        interval=s.checkpoint_interval,
        dump=lambda st: st.to_dict(),
        load=lambda d: LocalityState.from_dict(d, rules),
    )
    register_checkpointed(
        p,
        "locality",
        p.topic(topics.AGGREGATES),
        state,
        counter="aggregates",
        within=s.downstream_within,
    )
