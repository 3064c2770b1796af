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
from streams.agents.evaluate import (
    Output,
    checkpoint,
    decode_points,
    points_bytes,
    send_outputs,
)
from streams.catalog import WATER_INTERVAL_S, monitor_interval_s
from streams.records import DeadLetter
from streams.state import CheckpointedState

if TYPE_CHECKING:
    from streams.app import Pipeline
    from streams.catalog import CatalogView

log = logging.getLogger(__name__)


def locality_context(view: CatalogView, locality: str) -> LocalityContext:
    """The catalogue's view of one locality (rule set, enterprises, routing labels)."""
    cat = view.catalog
    if cat is None:
        return LocalityContext(locality=locality, rule_set=_default_rule_set(None, None))
    try:
        loc = cat.locality(locality)
    except KeyError:
        return LocalityContext(locality=locality, rule_set=_default_rule_set(cat, None))
    detail: dict[str, dict[str, str]] = {}
    enterprises = []
    for ent in cat.enterprises_of(locality):
        enterprises.append(
            {
                "id": ent.id,
                "name": ent.name,
                "locality": ent.locality,
                "performance_grade": ent.grade.value if ent.grade is not None else "",
                "measures": {
                    lvl: tuple(m.text for m in getattr(ent.measures, lvl))
                    for lvl in ("yellow", "orange", "red")
                },
            }
        )
        for out in ent.outlets:
            # online monitors report at least hourly (HJ 212 2061 hourly data)
            detail[out.id] = {"enterprise": ent.id, "outlet": out.id, "interval_minutes": "60"}
    for st in cat.stations_of(locality):
        detail[st.id] = {
            "station": st.id,
            "interval_minutes": "60",  # hourly air data (HJ 633 real-time report)
            "area_grade": str(st.area_grade.value),
        }
    for sec in cat.sections_of(locality):
        detail[sec.id] = {"section": sec.id, "interval_minutes": str(WATER_INTERVAL_S // 60)}
    for mon in cat.monitors_of(locality):
        d = {"enterprise": mon.enterprise} if mon.enterprise else {}
        interval = monitor_interval_s(mon)
        if interval is not None:
            d["interval_minutes"] = str(interval // 60)
        detail[mon.id] = d
    return LocalityContext(
        locality=locality,
        rule_set=_default_rule_set(cat, loc.warning_rule_set),
        enterprises=enterprises,
        source_detail=detail,
        stations=frozenset(s.id for s in cat.stations_of(locality)),
    )


def _default_rule_set(cat: Any, wanted: str | None) -> Any:
    from rules.warnings import WarningRuleSet, default_rule_set

    sets: dict[str, WarningRuleSet] = {}
    if cat is not None:
        for k, v in cat.warning_rule_sets.items():
            sets[k] = v if isinstance(v, WarningRuleSet) else WarningRuleSet.model_validate(v)
    if not sets:
        from rules.warnings import load_rule_sets

        sets = _shipped_rule_sets(load_rule_sets)
    if wanted is not None and wanted in sets:
        return sets[wanted]
    return default_rule_set(sets)


def _shipped_rule_sets(load: Any) -> Any:
    import yaml

    from streams.embedded import REPO

    data = yaml.safe_load(
        (REPO / "deploy" / "config" / "warnings.yaml").read_text(encoding="utf-8")
    )
    return load(data)


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
    p.states["locality"] = state

    @p.app.on_partitions_revoked.connect  # type: ignore[arg-type]  # mode's Signal typing
    async def _revoked(_app: Any, revoked: Any = (), **_: Any) -> None:
        state.revoke(tp.partition for tp in revoked if tp.topic == state.input_topic)

    @p.app.agent(p.topic(topics.AGGREGATES), name="locality")
    async def locality(stream: Any) -> None:
        async for events in stream.take_events(s.batch_size, within=s.batch_within):
            records = [
                (m.partition, m.offset, m.key or b"", m.value, round(m.timestamp * 1000))
                for m in (e.message for e in events)
            ]
            outputs = await state.process(records)
            await send_outputs(p, outputs)
            await checkpoint(p, state)
            p.counters["aggregates"] += len(records)
