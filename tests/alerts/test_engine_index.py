"""The engine's index by source and its cache of the rules that can apply (issue 16).

``Engine.tick(source=…)`` visits that source's alerts through an index (source → fingerprints, in
the order of ``Engine.alerts``) kept in step on every store and drop and rebuilt by
``from_dict``; ``Engine.process`` tries only the rules of the evaluation's kind whose factors
admit its factor (cached per rule set). Random streams of evaluations, silence statements,
ticks (all, one source, with and without source clocks), people's commands, rule swaps and
restores over a few sources and factors check, after every step:

* the index equals one rebuilt from scratch from the alerts (same sources, same fingerprints in
  the same order; no empty entry), and so does the (source, factor, kind, period) index;
* the transitions, in order, the command results and the state (``to_dict``, serialised, so
  order counts) equal those of a reference engine that reads neither index nor cache: its
  ``tick`` is the one before issue 16 (a source's alerts found by scanning every alert) and its
  ``process`` evaluates every rule of the evaluation's kind on every evaluation.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest

from alerts import lifecycle
from alerts.commands import Command
from alerts.engine import RETAIN_RESOLVED, RETAIN_SILENCES, Engine
from alerts.model import Alert, AlertState, Transition
from alerts.rules import AlertRule, AlertRules, Evaluation, load_alert_rules
from alerts.silences import Matcher, Silence

LOC = "weifang"
T0 = datetime(2026, 12, 1, tzinfo=UTC)
SOURCES = ("s1", "s2", "s3", "s4")

_BASE = {"source": "test rule"}
RULES_A = load_alert_rules(
    {
        "rules": [
            {
                **_BASE,
                "id": "permit",
                "name": "permit",
                "kind": "permit_exceedance",
                "for_minutes": 10,
                "escalate_after_minutes": 30,
                "max_escalations": 2,
            },
            {
                **_BASE,
                "id": "permit-nox",
                "name": "permit nox",
                "kind": "permit_exceedance",
                "factors": ["nox"],
                "escalate_after_minutes": 20,
            },
            {
                **_BASE,
                "id": "constant",
                "name": "constant",
                "kind": "constant_value",
                "samples": 3,
                "factors": ["so2", "nox"],
            },
            {
                **_BASE,
                "id": "zero",
                "name": "zero",
                "kind": "zero_value",
                "samples": 2,
                "factors": ["flow", "so2"],
            },
            {**_BASE, "id": "data-rate", "name": "data rate", "kind": "data_rate", "limit": 0.9},
            {
                **_BASE,
                "id": "offline",
                "name": "offline",
                "kind": "offline",
                "silent_after_minutes": 30,
            },
        ]
    }
)
#: a reload: one rule gone (its alerts close), another narrowed to fewer factors
RULES_B = AlertRules(
    rules=tuple(
        r.model_copy(update={"factors": frozenset({"so2"})}) if r.id == "constant" else r
        for r in RULES_A.rules
        if r.id != "permit-nox"
    )
)

#: (evaluation kind, factor, values to draw from, limit)
STREAMS: tuple[tuple[str, str, tuple[float, ...], float | None], ...] = (
    ("permit", "so2", (40.0, 90.0, 120.0, 150.0), 100.0),
    ("permit", "nox", (40.0, 110.0, 160.0), 100.0),
    ("sample", "so2", (0.0, 5.0, 5.0, 7.0), None),
    ("sample", "nox", (3.0, 3.0, 4.0), None),
    ("sample", "flow", (0.0, 0.0, 2.0), None),
    ("data_rate", "valid_rate", (0.5, 0.8, 0.95, 1.0), None),
)


def rebuilt_by_source(alerts: Mapping[str, Alert]) -> dict[str, list[str]]:
    """The index by source, from scratch: every alert's source, in the order of ``alerts``."""
    out: dict[str, list[str]] = {}
    for fp, alert in alerts.items():
        out.setdefault(alert.labels.get("source", ""), []).append(fp)
    return out


def rebuilt_by_subject(alerts: Mapping[str, Alert]) -> dict[tuple[str, str, str, str], set[str]]:
    out: dict[tuple[str, str, str, str], set[str]] = {}
    for fp, alert in alerts.items():
        out.setdefault(Engine._subject(alert.labels), set()).add(fp)
    return out


def assert_indexed(eng: Engine) -> None:
    assert {s: list(fps) for s, fps in eng._by_source.items()} == rebuilt_by_source(eng.alerts)
    assert all(eng._by_source.values())
    assert eng._by_subject == rebuilt_by_subject(eng.alerts)


class _EveryRuleHeld(dict[tuple[str, str, str, str], set[str]]):
    """An index by subject that holds an alert for every subject: process evaluates every rule
    (no fast path; tests/alerts/test_lifecycle_timelines.py shows the fast path changes nothing)."""

    def get(self, key: object, default: object = None) -> set[str]:
        return {"held"}


class Rescan(Engine):
    """The reference: what the engine did before the index and the cache, and no fast path.
    ``tick`` is the engine's before issue 16, verbatim (a source's alerts found by scanning every
    alert); ``process`` evaluates every rule of the evaluation's kind, whatever its factors and
    whether an alert is held or not."""

    def __init__(self, rules: AlertRules, **kw: Any) -> None:
        super().__init__(rules, **kw)
        self._by_subject = _EveryRuleHeld()

    def _applicable_rules(self, kind: str, factor: str) -> tuple[tuple[AlertRule, str], ...]:
        self._applicable_of = None  # never a cached rule list: this is asked on every call
        return tuple((r, r.kind.value) for r in self.rules.by_evaluation_kind.get(kind, ()))

    def tick(
        self,
        now: datetime,
        *,
        clocks: Mapping[str, datetime] | None = None,
        source: str | None = None,
    ) -> list[Transition]:
        out: list[Transition] = []
        if self.held_silences and source is None:
            old = [
                sid
                for sid, s in self.held_silences.items()
                if s.ends_at is not None and now - s.ends_at > RETAIN_SILENCES
            ]
            for sid in old:
                del self.held_silences[sid]
            if old:
                self._silences_changed()
        for fp, alert in list(self.alerts.items()):
            of = alert.labels.get("source", "")
            if source is not None and of != source:
                continue
            at = now
            if clocks is not None:
                clock = clocks.get(of)
                if clock is not None and clock < at:
                    at = clock
            if alert.state is AlertState.RESOLVED and alert.notified_state is not AlertState.FIRING:
                if alert.resolved_at is not None and now - alert.resolved_at > RETAIN_RESOLVED:
                    self._drop(fp)
                continue
            alert_rule = self.rules.by_id.get(alert.labels.get("rule", ""))
            if alert_rule is None:
                continue
            sup, by = self._suppression(alert.labels, fp, at)
            new, ts = lifecycle.tick(alert, at, alert_rule.policy, suppressed=sup, suppressed_by=by)
            if ts:
                self._store(new)
                out.extend(ts)
        return out


Step = Callable[[Engine], Any]


def random_steps(seed: int, n: int) -> list[tuple[str, Step]]:
    """``n`` steps (a name and a call on an engine), drawn once so that every engine is driven
    through the very same calls."""
    rng = random.Random(seed)
    clock = dict.fromkeys(SOURCES, T0)  # each source's own data time
    seen = dict.fromkeys(SOURCES, T0)
    held_silences: list[str] = []
    steps: list[tuple[str, Step]] = []

    def watermark() -> datetime:
        return max(clock.values())

    for counter in range(1, n + 1):
        roll = rng.random()
        src = rng.choice(SOURCES)
        if roll < 0.45:
            jump = rng.choice((0, 0, 5, 5, 10, 15, 15, 60, -20))
            if rng.random() < 0.02:
                jump = rng.choice((6 * 60, 26 * 60))  # past the offline threshold / retention
            at = clock[src] + timedelta(minutes=jump)
            if jump > 0:
                clock[src] = at
            seen[src] = max(seen[src], at)
            kind, factor, values, limit = rng.choice(STREAMS)
            flags = rng.choice((frozenset(), frozenset(), frozenset(), frozenset({"M"})))
            detail = {"period": "hour"} if kind == "permit" and rng.random() < 0.3 else {}
            ev = Evaluation(
                kind=kind,
                locality=LOC,
                source=src,
                factor=factor,
                value=rng.choice(values),
                time=at,
                limit=limit,
                flags=flags,
                detail=detail,
            )
            steps.append((f"process {kind} {src} {factor}", partial(_process, ev=ev)))
        elif roll < 0.55:
            now = watermark() + timedelta(minutes=rng.choice((0, 20, 45)))
            steps.append((f"silence {src}", partial(_silence, source=src, last=seen[src], now=now)))
        elif roll < 0.65:
            clocks = dict(clock)
            wm = watermark()
            steps.append(("tick all", partial(_tick, now=wm, clocks=clocks, source=None)))
        elif roll < 0.85:
            clocks = dict(clock)
            wm = watermark()
            which = src if rng.random() < 0.9 else "nowhere"
            if rng.random() < 0.8:
                steps.append((f"tick {which}", partial(_tick, now=wm, clocks=clocks, source=which)))
            else:
                tick = partial(_tick, now=wm, clocks=None, source=which)
                steps.append((f"tick {which} (no clocks)", tick))
        elif roll < 0.93:
            action = rng.choice(("ack", "resolve", "assign", "unack"))
            pick = rng.random()
            person = partial(
                _person, action=action, pick=pick, now=watermark(), n=counter, clocks=dict(clock)
            )
            steps.append((f"command {action}", person))
        elif roll < 0.97:
            wm = watermark()
            if held_silences and rng.random() < 0.4:
                sid = held_silences.pop(rng.randrange(len(held_silences)))
                cmd = _command(counter, "unsilence", silence_id=sid)
            else:
                sid = f"sil-{counter}"
                held_silences.append(sid)
                silence = Silence(
                    id=sid,
                    matchers=(Matcher(name="source", value=src),),
                    created_by="test",
                    starts_at=wm - timedelta(minutes=rng.choice((0, 30))),
                    ends_at=wm + timedelta(minutes=rng.choice((10, 40, 90))),
                )
                cmd = _command(counter, "silence", silence=silence)
            steps.append(
                (
                    f"command {cmd.action}",
                    partial(_command_step, cmd=cmd, now=wm, clocks=dict(clock)),
                )
            )
        elif roll < 0.985:
            rules = rng.choice((RULES_A, RULES_B))
            wm = watermark()
            if rng.random() < 0.5:
                steps.append(("set_rules", partial(_set_rules, rules=rules, now=wm)))
            else:
                steps.append(("rules =", partial(_assign_rules, rules=rules)))
        else:
            steps.append(("restore", _nothing))  # the driver restores the engine first
    return steps


def _process(e: Engine, ev: Evaluation) -> list[Transition]:
    return e.process(ev)


def _silence(e: Engine, source: str, last: datetime, now: datetime) -> list[Transition]:
    interval = 20.0 if source == "s4" else None  # one source with its own reporting interval
    return e.silence(LOC, source, last, now, interval_minutes=interval)


def _tick(
    e: Engine, now: datetime, clocks: Mapping[str, datetime] | None, source: str | None
) -> list[Transition]:
    return e.tick(now, clocks=clocks, source=source)


def _person(
    e: Engine, action: str, pick: float, now: datetime, n: int, clocks: Mapping[str, datetime]
) -> Any:
    """A person's command on one of the alerts the engine holds (``pick`` ∈ [0, 1) chooses)."""
    fps = sorted(e.alerts)
    if not fps:
        return None
    cmd = _command(n, action, fingerprint=fps[int(pick * len(fps))])
    return e.command(cmd, locality=LOC, now=now, clocks=clocks)


def _command_step(e: Engine, cmd: Command, now: datetime, clocks: Mapping[str, datetime]) -> Any:
    return e.command(cmd, locality=LOC, now=now, clocks=clocks)


def _set_rules(e: Engine, rules: AlertRules, now: datetime) -> list[Transition]:
    return e.set_rules(rules, now)


def _assign_rules(e: Engine, rules: AlertRules) -> None:
    e.rules = rules  # as the locality stage does before any data


def _nothing(e: Engine) -> None:
    return None


def _command(n: int, action: str, **kw: Any) -> Command:
    return Command.model_validate(
        {
            "id": f"c{n:05d}",
            "action": action,
            "locality": LOC,
            "actor": "tester",
            "role": "duty",
            "issued_at": T0,
            **({"assignee": "someone"} if action == "assign" else {}),
            **kw,
        }
    )


def _out(result: Any) -> Any:
    """A step's result as plain data (transitions, command results)."""
    if isinstance(result, Transition):
        return result.to_dict()
    if isinstance(result, list | tuple):
        return [_out(x) for x in result]
    if result is None:
        return None
    dump = getattr(result, "model_dump", None)
    return dump(mode="json") if dump is not None else repr(result)


def _restored(eng: Engine) -> Engine:
    return type(eng).from_dict(json.loads(json.dumps(eng.to_dict())), eng.rules)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_index_and_transitions_match_a_full_rescan(seed: int) -> None:
    eng: Engine = Engine(RULES_A)
    ref: Engine = Rescan(RULES_A)
    told = 0
    for i, (name, step) in enumerate(random_steps(seed, 600)):
        if name == "restore":
            eng, ref = _restored(eng), _restored(ref)
            assert isinstance(ref, Rescan)
        got, want = _out(step(eng)), _out(step(ref))
        assert got == want, f"seed {seed}, step {i}: {name}"
        assert json.dumps(eng.to_dict()) == json.dumps(ref.to_dict()), f"step {i}: {name}"
        assert_indexed(eng)
        told += sum(1 for x in got or () if isinstance(x, dict) and "reason" in x)
    assert told > 20  # the streams do open, escalate and close alerts


def test_the_random_streams_reach_the_paths_the_index_serves() -> None:
    """The streams are not vacuous: source ticks of sources with several alerts that change
    something, drops after retention, offline alerts, and a restore with alerts held."""
    eng = Engine(RULES_A)
    source_ticks = drops = restores = 0
    for name, step in random_steps(1, 600):
        if name == "restore":
            restores += bool(eng.alerts)
            eng = _restored(eng)
            assert_indexed(eng)
            continue
        before = set(eng.alerts)
        result = step(eng)
        drops += len(before - set(eng.alerts))
        if name.startswith("tick s") and result:
            source = name.split()[1]
            source_ticks += len(eng._by_source.get(source, ())) > 1
    assert source_ticks >= 3
    assert drops >= 1
    assert restores >= 1
    assert any(a.labels.get("rule") == "offline" for a in eng.alerts.values()) or drops


def test_restore_rebuilds_the_index_in_the_order_of_the_alerts() -> None:
    eng = Engine(RULES_A)
    for _, step in random_steps(7, 300):
        step(eng)
    assert eng.alerts
    restored = Engine.from_dict(json.loads(json.dumps(eng.to_dict())), RULES_A)
    assert list(restored.alerts) == list(eng.alerts)
    assert_indexed(restored)
    assert {s: list(f) for s, f in restored._by_source.items()} == {
        s: list(f) for s, f in eng._by_source.items()
    }
