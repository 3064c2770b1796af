"""The locality stage per record (``LocalityState.step_record``) against the per-point path.

Every scenario of ``ingest.simulators`` on the catalogue's network (deploy/config, every
locality) goes through the live worker's evaluate step (``streams.steps.EvaluateStep``, one sample
per ``readings`` record, in delivery order) into ``aggregates`` records, then through the locality
stage twice:

* the reference: every point a record of its own (``step_record([point])`` is ``step(point)``,
  the per-point path as it always was);
* batched: the outputs of N consecutive samples merged per locality as the evaluate agent
  merges a batch's outputs (``streams.wire.merge_point_records``) — N = 50, 500, and every
  sample delivered within one hour.

Both must give the same final stored points (by id, the last write), the same transition
sequence per locality (alerts and warnings, in order; merging a batch's outputs per locality
changes the order between localities only, each has its own state), the same plans' progress (the last record per day, as
the compacted topic keeps it, in the same order of days per locality) and the same final state.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from alerts.locality import LocalityContext, LocalityState
from alerts.rules import default_rules
from ingest.simulators import SCENARIOS, simulate, specs_from_catalog
from rules import evaluate as engine
from streams import topics
from streams.catalog import CatalogView, locality_context
from streams.cli.backtest import sample_bytes
from streams.steps import EvaluateStep
from streams.wire import decode_points, merge_point_records, point_dict, point_id

REPO = Path(__file__).resolve().parents[2]
START = datetime(2026, 11, 9, tzinfo=ZoneInfo("Asia/Shanghai"))
#: hours per scenario: its own duration (docs/simulators.md); forty-days on a shorter span
#: (its first 10 days: warnings, day closes and progress without a minute-long test)
HOURS = {"forty-days": 240}
RULES = default_rules()
#: batch sizes in samples; 0: every sample delivered within the same hour
BATCHES = (50, 500, 0)


@functools.cache
def _view() -> CatalogView:
    return CatalogView(REPO / "deploy" / "config")


@functools.cache
def _evaluated(scenario: str) -> tuple[tuple[datetime, tuple[tuple[bytes, bytes], ...]], ...]:
    """Per sample in delivery order: (delivered at, its ``aggregates`` records (key, value))."""
    view = _view()
    specs = specs_from_catalog(view.catalog)
    cls = SCENARIOS[scenario]
    hours = HOURS.get(scenario, cls.hours)
    step = EvaluateStep(view, max_future=timedelta(days=9999), max_past=timedelta(days=9999))
    state: dict[str, Any] = {}
    out: list[tuple[datetime, tuple[tuple[bytes, bytes], ...]]] = []
    for i, d in enumerate(simulate(specs, start=START, hours=hours, seed=0, scenario=scenario)):
        s = d.sample
        smp = engine.Sample(
            kind=s.kind.value,
            locality=s.locality,
            source=s.source,
            time=s.time,
            interval=s.interval.value,
            values={f: (v.value, v.flag.value) for f, v in s.values.items()},
        )
        ts = round(d.at.timestamp() * 1000)
        recs = tuple(
            (key, value)
            for topic, key, value in step(state, b"", sample_bytes(smp), i, ts)
            if topic == topics.AGGREGATES
        )
        out.append((d.at, recs))
    return tuple(out)


def _per_point(scenario: str) -> Iterator[list[dict[str, Any]]]:
    for _at, recs in _evaluated(scenario):
        for _key, value in recs:
            for p in decode_points(value):
                yield [p]


def _batched(scenario: str, size: int) -> Iterator[list[dict[str, Any]]]:
    """The records of ``size`` samples merged per locality (size 0: per delivery hour)."""
    batch: list[tuple[str, bytes, bytes]] = []
    hour: datetime | None = None
    for n, (at, recs) in enumerate(_evaluated(scenario)):
        if size == 0:
            h = at.replace(minute=0, second=0, microsecond=0)
            if hour is not None and h != hour:
                yield from _merged(batch)
                batch = []
            hour = h
        elif n and n % size == 0:
            yield from _merged(batch)
            batch = []
        batch += [(topics.AGGREGATES, key, value) for key, value in recs]
    yield from _merged(batch)


def _merged(batch: Sequence[tuple[str, bytes, bytes]]) -> Iterator[list[dict[str, Any]]]:
    for _topic, _key, value in merge_point_records(batch, {topics.AGGREGATES}):
        yield decode_points(value)


def _run(records: Iterator[list[dict[str, Any]]]) -> dict[str, Any]:
    view = _view()
    states: dict[str, LocalityState] = {}
    contexts: dict[str, LocalityContext] = {}
    stored: dict[str, dict[str, Any]] = {}
    transitions: dict[str, list[dict[str, Any]]] = {}
    progress: dict[tuple[str, str], dict[str, Any]] = {}
    days: dict[str, list[str]] = {}
    n_records = 0
    for points in records:
        n_records += 1
        loc = points[0]["tags"]["locality"]
        st = states.get(loc)
        if st is None:
            st = states[loc] = LocalityState(loc, RULES)
            contexts[loc] = locality_context(view, loc)
        out = st.step_record(points, contexts[loc])
        for p in out.points:
            d = point_dict(p)
            stored[point_id(d)] = {k: d[k] for k in ("measurement", "tags", "fields", "time")}
        transitions.setdefault(loc, []).extend(t.to_dict() for t in out.transitions)
        assert not out.rejected
        assert not out.results
        for pr in out.progress:
            progress[(pr["locality"], pr["as_of"])] = pr
            seen = days.setdefault(pr["locality"], [])
            if not seen or seen[-1] != pr["as_of"]:
                seen.append(pr["as_of"])
    return {
        "records": n_records,
        "stored": stored,
        "transitions": transitions,
        "progress": progress,
        "days": days,
        "states": {loc: st.to_dict() for loc, st in sorted(states.items())},
    }


@functools.cache
def _reference(scenario: str) -> dict[str, Any]:
    return _run(_per_point(scenario))


@pytest.mark.parametrize("size", BATCHES, ids=lambda s: f"batch-{s or 'hour'}")
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_records_give_what_single_points_give(scenario: str, size: int) -> None:
    ref = _reference(scenario)
    got = _run(_batched(scenario, size))
    assert got["records"] < ref["records"]  # records of many points, really
    assert got["transitions"] == ref["transitions"]
    assert got["days"] == ref["days"]
    assert got["progress"] == ref["progress"]
    assert got["stored"].keys() == ref["stored"].keys()
    assert got["stored"] == ref["stored"]
    assert got["states"] == ref["states"]


def test_the_scenarios_exercise_what_is_batched() -> None:
    """The reference runs see city hours, day closes, warnings and progress — the parity above
    is not vacuous."""
    ref = _reference("winter-episode")
    kinds = {(v["measurement"], v["tags"].get("period")) for v in ref["stored"].values()}
    assert {("aqi", "hour"), ("aqi", "rolling24h"), ("aqi", "day")} <= kinds
    assert any(t["kind"] == "warning" for ts in ref["transitions"].values() for t in ts)
    assert ref["progress"]
