"""Alert lifecycle written as timelines: push evaluations at t1, t2 … expect transitions at …

Times are minutes after T0 (2026-01-13 08:00 Beijing, a Tuesday) unless a test says otherwise.
Each expectation is (minute, reason, state, notify?) — what a duty officer would see.
"""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from alerts.commands import Command
from alerts.engine import Engine
from alerts.errors import InvalidAction, InvalidEvaluation, RuleConfigError, UnknownAlert
from alerts.model import AlertState, Reason, Suppression, Transition, fingerprint
from alerts.rules import Evaluation, load_alert_rules
from alerts.silences import Matcher, Recurrence, Silence, Weekday
from rules.warnings import DecisionKind, DecisionReason, Level, WarningDecision

BJ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 1, 13, 8, 0, tzinfo=BJ)  # a Tuesday


def at(minute: float) -> datetime:
    return T0 + timedelta(minutes=minute)


def minute_of(t: datetime) -> float:
    return (t - T0).total_seconds() / 60


PERMIT = {
    "id": "permit",
    "name": "permit exceedance",
    "kind": "permit_exceedance",
    "source": "test rule: limit 100 mg/m3",
}


def engine(*, with_offline: bool = True, **overrides: object) -> Engine:
    rule = {**PERMIT, **overrides}
    offline = {
        "id": "offline",
        "name": "offline",
        "kind": "offline",
        "silent_after_minutes": 120,
        "source": "test rule",
    }
    return Engine(load_alert_rules({"rules": [rule, offline] if with_offline else [rule]}))


def ev(
    minute: float,
    value: float | None,
    *,
    source: str = "e-wf-001",
    flags: frozenset[str] = frozenset(),
    kind: str = "permit",
    locality: str = "weifang",
    factor: str = "so2",
) -> Evaluation:
    return Evaluation(
        kind=kind,
        locality=locality,
        source=source,
        factor=factor,
        value=value,
        limit=100.0,
        time=at(minute),
        flags=flags,
    )


def seen(ts: list[Transition]) -> list[tuple[float, Reason, AlertState, bool]]:
    return [(minute_of(t.at), t.reason, t.state, t.notify) for t in ts]


def run(eng: Engine, pushes: list[tuple[float, float | None]]) -> list[Transition]:
    out: list[Transition] = []
    for minute, value in pushes:
        out += eng.process(ev(minute, value))
    return out


F, R, P = AlertState.FIRING, AlertState.RESOLVED, AlertState.PENDING


def silence(eng: Engine, *silences: Silence) -> None:
    """Each silence as a duty officer creates it: a ``silence`` command (alerts.commands)."""
    for s in silences:
        cmd = Command.model_validate(
            {
                "id": f"cmd-{s.id}",
                "action": "silence",
                "locality": "weifang",
                "actor": "值班员",
                "role": "duty",
                "issued_at": at(0),
                "silence": s,
            }
        )
        result, _ = eng.command(cmd, locality="weifang", now=None)
        assert result is not None
        assert result.status == "applied", result


def test_for_duration_fires_only_after_the_breach_held_for_10_minutes() -> None:
    eng = engine(for_minutes=10)
    assert seen(eng.process(ev(0, 120))) == [(0, Reason.CONDITION_MET, P, False)]
    assert eng.process(ev(5, 130)) == []  # 5 < 10 minutes
    assert seen(eng.process(ev(10, 125))) == [(10, Reason.FOR_ELAPSED, F, True)]


def test_pending_that_clears_is_audit_only() -> None:
    eng = engine(for_minutes=10)
    ts = run(eng, [(0, 120), (5, 80)])
    assert seen(ts) == [
        (0, Reason.CONDITION_MET, P, False),
        (5, Reason.PENDING_CLEARED, R, False),  # nobody was told it fired
    ]


def test_hysteresis_band_holds_firing_until_the_clear_condition() -> None:
    # limit 100, clear_margin 0.1 → clears only at value <= 100 × (1 − 0.1) = 90
    eng = engine(clear_margin=0.1)
    ts = run(eng, [(0, 120), (1, 95), (2, 105), (3, 99), (4, 90)])
    assert seen(ts) == [
        (0, Reason.CONDITION_MET_NO_WAIT, F, True),
        (4, Reason.CLEAR_CONDITION_MET, R, True),
    ]


def test_flapping_is_detected_suppressed_and_settles() -> None:
    # Alternating 120/80 each minute. Weights over a 21-sample window run 1.2 (newest) … 0.8,
    # total 21.0. After k consecutive changes the weighted share is (1.2k − 0.01k(k−1)) / 21:
    # k = 9 → 10.08/21 = 0.48 < 0.5; k = 10 → 11.1/21 = 0.53 ≥ 0.5 → flapping at the 10th
    # change, i.e. minute 10 (minute 0 is the first sample, no change).
    eng = engine()
    alternating = [(m, 120.0 if m % 2 == 0 else 80.0) for m in range(12)]  # changes at 1..11
    steady = [(m, 80.0) for m in range(12, 30)]
    ts = run(eng, alternating + steady)
    expected = [
        (m, Reason.CONDITION_MET_NO_WAIT if m == 0 else None, F if m % 2 == 0 else R)
        for m in range(10)
    ]
    got = seen(ts)
    assert [(g[0], g[2]) for g in got[:10]] == [(e[0], e[2]) for e in expected]
    assert got[10] == (10, Reason.FLAPPING_STARTED, F, True)
    # Then silence while it flaps. It ends when the share drops to <= 0.25 (5.25 weighted):
    # 11 changes (minutes 1..11) followed by m unchanged samples weigh
    # Σ_{i=m}^{m+10} (1.2 − 0.02 i); m = 14 → 8.4 − 2.38 = 6.02 (i = 14..20, 7 terms in the
    # window) > 5.25; m = 15 → 7.2 − 2.1 = 5.1 ≤ 5.25 → ends at minute 11 + 15 = 26, resolved.
    assert got[11:] == [(26, Reason.FLAPPING_ENDED, R, True)]


def test_one_off_silence_mutes_then_catches_up_when_it_ends() -> None:
    eng = engine()
    silence(
        eng,
        Silence(
            id="s-1",
            matchers=(Matcher(name="source", value="e-wf-001"),),
            created_by="duty-wf",
            starts_at=at(0),
            ends_at=at(30),
        ),
    )
    ts = eng.process(ev(5, 120))
    assert seen(ts) == [(5, Reason.CONDITION_MET_NO_WAIT, F, False)]
    assert ts[0].suppressed == (Suppression.SILENCED,)
    assert ts[0].suppressed_by == ("s-1",)
    assert eng.tick(at(20)) == []  # still silenced
    assert seen(eng.tick(at(31))) == [(31, Reason.SUPPRESSION_ENDED, F, True)]
    # another source is not silenced
    assert seen(eng.process(ev(6, 120, source="e-wf-002"))) == [
        (6, Reason.CONDITION_MET_NO_WAIT, F, True)
    ]


def test_alert_that_fires_and_clears_inside_a_silence_is_never_notified() -> None:
    eng = engine()
    silence(
        eng,
        Silence(
            id="s-1",
            matchers=(Matcher(name="rule", value="permit"),),
            created_by="duty-wf",
            starts_at=at(0),
            ends_at=at(30),
        ),
    )
    ts = run(eng, [(5, 120), (10, 50)])
    assert [t.notify for t in ts] == [False, False]
    assert eng.tick(at(40)) == []


def test_recurring_weekly_maintenance_window_in_beijing_time() -> None:
    # enterprise declares maintenance every Tuesday 08:00–12:00 Beijing time
    eng = engine(with_offline=False)
    silence(
        eng,
        Silence(
            id="s-tue-0800",
            matchers=(Matcher(name="source", value="e-wf-001"),),
            created_by="e-wf-001",
            starts_at=datetime(2026, 1, 1, tzinfo=BJ),
            recurrence=Recurrence(
                every="week", weekdays=frozenset({Weekday.TUE}), start=time(8), end=time(12)
            ),
        ),
    )
    assert seen(eng.process(ev(60, 120))) == [(60, Reason.CONDITION_MET_NO_WAIT, F, False)]
    assert eng.tick(at(239)) == []  # 11:59, still inside
    assert seen(eng.tick(at(240))) == [(240, Reason.SUPPRESSION_ENDED, F, True)]  # 12:00
    # next Tuesday 09:00 (7 days = 10080 min after T0 + 60) the window mutes again
    eng.process(ev(300, 50))
    t = eng.process(ev(10080 + 60, 130))
    assert seen(t) == [(10140, Reason.CONDITION_MET_NO_WAIT, F, False)]
    # Wednesday 09:00 is outside the window
    eng2 = engine()
    silence(eng2, *eng.all_silences())
    assert seen(eng2.process(ev(1440 + 60, 120))) == [(1500, Reason.CONDITION_MET_NO_WAIT, F, True)]


def test_daily_window_crossing_midnight() -> None:
    rec = Recurrence(every="day", start=time(23), end=time(1))
    assert rec.active_at(datetime(2026, 1, 13, 23, 30, tzinfo=BJ))
    assert rec.active_at(datetime(2026, 1, 14, 0, 30, tzinfo=BJ))
    assert not rec.active_at(datetime(2026, 1, 14, 1, 0, tzinfo=BJ))
    assert not rec.active_at(datetime(2026, 1, 13, 22, 59, tzinfo=BJ))
    # 15:30 UTC = 23:30 Beijing: the window is in Beijing time, not UTC
    assert rec.active_at(datetime(2026, 1, 13, 15, 30, tzinfo=ZoneInfo("UTC")))


def test_maintenance_and_calibration_flags_hold_and_suppress() -> None:
    eng = engine(escalate_after_minutes=30)
    # a value flagged C (calibration) never opens an alert
    assert eng.process(ev(0, 500, flags=frozenset({"C"}))) == []
    assert eng.alerts == {}
    # a firing alert is not resolved by a value taken under maintenance (M) …
    assert seen(eng.process(ev(5, 120))) == [(5, Reason.CONDITION_MET_NO_WAIT, F, True)]
    assert eng.process(ev(10, 20, flags=frozenset({"M"}))) == []
    # … and its escalation, due at 5 + 30 = 35, is recorded but not notified during maintenance
    ts = eng.tick(at(36))
    assert seen(ts) == [(35, Reason.ESCALATED, F, False)]
    assert ts[0].suppressed == (Suppression.MAINTENANCE,)
    # a normal (N) value resolves it
    assert seen(eng.process(ev(40, 20, flags=frozenset({"N"})))) == [
        (40, Reason.CLEAR_CONDITION_MET, R, True)
    ]


def silent(
    eng: Engine, minute: float, *, last: float = 0, source: str = "e-wf-001"
) -> list[Transition]:
    """The evaluate stage's statement that ``source`` sent nothing since minute ``last`` while
    the data flowing with it reached ``minute`` (streams.steps)."""
    return eng.silence("weifang", source, at(last), at(minute))


def test_offline_never_hides_an_exceedance_of_the_same_source() -> None:
    """A silent source's offline alert fires; its exceedance alert still escalates to people
    (an exceedance is never suppressed by a data-quality alert)."""
    eng = engine(escalate_after_minutes=180)
    assert seen(eng.process(ev(0, 120))) == [(0, Reason.CONDITION_MET_NO_WAIT, F, True)]
    assert silent(eng, 119) == []  # 119 min silent: not yet past the rule's 120 min
    off = silent(eng, 121)  # silent since minute 0 → BREACH stamped 0 + 120
    assert seen(off) == [(120, Reason.CONDITION_MET_NO_WAIT, F, True)]
    assert off[0].labels["rule"] == "offline"
    assert silent(eng, 180) == []  # told once
    esc = eng.tick(at(181))
    assert seen(esc) == [(180, Reason.ESCALATED, F, True)]
    assert esc[0].suppressed == ()


def test_a_red_warning_never_hides_station_ambient_alerts() -> None:
    rules = load_alert_rules(
        {
            "rules": [
                {
                    "id": "aqi",
                    "name": "ambient",
                    "kind": "ambient_exceedance",
                    "source": "test: GB 3095",
                }
            ]
        }
    )
    eng = Engine(rules)

    def amb(minute: float, locality: str, source: str) -> Evaluation:
        return Evaluation(
            kind="ambient",
            locality=locality,
            source=source,
            factor="pm25",
            value=200,
            limit=75,
            time=at(minute),
        )

    def decision(level: Level, prev: Level, kind: DecisionKind) -> WarningDecision:
        return WarningDecision(
            kind, DecisionReason.THRESHOLDS_MET, "weifang", "mee-2018-875", level, prev, at(0)
        )

    eng.apply_warning(decision(Level.ORANGE, Level.NONE, DecisionKind.ISSUE))
    assert [t.notify for t in eng.process(amb(1, "weifang", "aq-wf-1"))] == [True]
    w = eng.apply_warning(decision(Level.RED, Level.ORANGE, DecisionKind.UPGRADE))
    assert [(t.kind.value, t.level, t.state) for t in w] == [("warning", "red", F)]
    told = eng.process(amb(2, "weifang", "aq-wf-2"))
    assert [(t.suppressed, t.notify) for t in told] == [((), True)]


def test_escalation_when_unacknowledged_and_not_after_ack() -> None:
    eng = engine(with_offline=False, escalate_after_minutes=30, max_escalations=2)
    run(eng, [(0, 120)])
    assert seen(eng.tick(at(45))) == [(30, Reason.ESCALATED, F, True)]
    assert seen(eng.tick(at(61))) == [(60, Reason.ESCALATED, F, True)]
    assert eng.tick(at(200)) == []  # max 2 escalations
    eng2 = engine(escalate_after_minutes=30)
    ts = eng2.process(ev(0, 120))
    eng2.acknowledge(ts[0].fingerprint, "duty-wf", at(10))
    assert eng2.tick(at(45)) == []


def test_ack_assign_manual_resolve_record_who_and_when() -> None:
    eng = engine()
    fp = eng.process(ev(0, 120))[0].fingerprint
    ack = eng.acknowledge(fp, "zhang.san", at(3), "checking the CEMS")
    assert seen(ack) == [(3, Reason.ACKNOWLEDGED, F, True)]
    assert ack[0].actor == "zhang.san"
    assert eng.acknowledge(fp, "li.si", at(4)) == []  # already acknowledged
    asg = eng.assign(fp, "li.si", "zhang.san", at(5))
    assert (asg[0].reason, asg[0].actor) == (Reason.ASSIGNED, "zhang.san")
    assert eng.alerts[fp].assignee == "li.si"
    res = eng.resolve(fp, "li.si", at(20), "analyser replaced")
    assert seen(res) == [(20, Reason.MANUALLY_RESOLVED, R, True)]
    history = [(h.reason, h.actor) for h in eng.alerts[fp].history]
    assert history == [
        (Reason.CONDITION_MET_NO_WAIT, None),
        (Reason.ACKNOWLEDGED, "zhang.san"),
        (Reason.ASSIGNED, "zhang.san"),
        (Reason.MANUALLY_RESOLVED, "li.si"),
    ]
    with pytest.raises(InvalidAction):
        eng.acknowledge(fp, "x", at(21))  # resolved alerts cannot be acknowledged
    with pytest.raises(UnknownAlert):
        eng.resolve("0" * 16, "x", at(21))
    # still exceeding: a new episode opens, without the old acknowledgement
    assert seen(eng.process(ev(25, 130))) == [(25, Reason.CONDITION_MET_NO_WAIT, F, True)]
    assert eng.alerts[fp].acked_by is None


def test_offline_never_auto_resolves_only_data_does() -> None:
    eng = engine()
    eng.process(ev(0, 50))
    assert seen(silent(eng, 121)) == [(120, Reason.CONDITION_MET_NO_WAIT, F, True)]
    assert silent(eng, 600) == []
    assert silent(eng, 6000) == []  # days later: still firing
    eng.process(ev(6001, 50, source="e-wf-002"))  # another source's data changes nothing
    off = [a for a in eng.alerts.values() if a.labels["rule"] == "offline"]
    assert [a.state for a in off if a.source == "e-wf-001"] == [F]
    back = eng.process(ev(6010, 50))
    assert seen(back) == [(6010, Reason.DATA_RESUMED, R, True)]


def test_a_source_that_resumes_resolves_its_offline_alert_whatever_the_order() -> None:
    """The partition clock ran ahead (other sources' data) and declared the source offline at
    0 + 120; then its own sample of minute 60 arrives late. It proves the source was not silent:
    the alert resolves, stamped one second after the breach (an older stamp would be "late")."""
    eng = engine()
    eng.process(ev(0, 50))
    assert seen(silent(eng, 200)) == [(120, Reason.CONDITION_MET_NO_WAIT, F, True)]
    back = eng.process(ev(60, 50))
    assert seen(back) == [(120 + 1 / 60, Reason.DATA_RESUMED, R, True)]


def test_manually_resolved_offline_alert_stays_resolved_while_silent() -> None:
    eng = engine()
    eng.process(ev(0, 50))
    fp = silent(eng, 121)[0].fingerprint
    eng.resolve(fp, "duty-wf", at(130), "station decommissioned")
    assert silent(eng, 500) == []


def test_late_and_duplicate_observations_change_nothing() -> None:
    eng = engine()
    assert seen(eng.process(ev(10, 120))) == [(10, Reason.CONDITION_MET_NO_WAIT, F, True)]
    assert eng.process(ev(5, 50)) == []  # late: older than minute 10
    assert eng.process(ev(10, 50)) == []  # same event time: a redelivery, ignored
    fp = next(iter(eng.alerts))
    assert eng.alerts[fp].late_count == 1
    assert eng.alerts[fp].state is F
    assert seen(eng.process(ev(15, 50))) == [(15, Reason.CLEAR_CONDITION_MET, R, True)]


SCENARIO: list[tuple[float, float | None]] = [
    (0, 120),
    (5, 130),
    (10, 125),
    (15, 95),
    (20, 80),
    (25, 140),
    (40, 150),
]


def test_replay_gives_the_same_transition_ids() -> None:
    a = run(engine(for_minutes=10, clear_margin=0.1), SCENARIO)
    b = run(engine(for_minutes=10, clear_margin=0.1), SCENARIO)
    assert [t.id for t in a] == [t.id for t in b]
    assert len({t.id for t in a}) == len(a)  # and they are distinct


def test_restart_mid_timeline_resumes_pending_alert_and_duration() -> None:
    whole = run(engine(for_minutes=10, clear_margin=0.1), SCENARIO)
    first = engine(for_minutes=10, clear_margin=0.1)
    part = run(first, SCENARIO[:2])  # stopped while pending (fires at minute 10)
    saved = json.loads(json.dumps(first.to_dict()))  # as a Faust table would hold it
    second = Engine.from_dict(saved, first.rules)
    part += run(second, SCENARIO[2:])
    assert [(t.id, t.reason) for t in part] == [(t.id, t.reason) for t in whole]
    assert seen(part)[1] == (10, Reason.FOR_ELAPSED, F, True)


def test_fingerprint_depends_only_on_identity_labels() -> None:
    a = {"rule": "r", "source": "s", "factor": "so2", "locality": "weifang", "severity": "x"}
    b = {**a, "severity": "y", "enterprise": "e"}
    assert fingerprint(a) == fingerprint(b)
    assert fingerprint(a) != fingerprint({**a, "factor": "nox"})


def test_bad_input_is_a_typed_error_naming_the_field() -> None:
    with pytest.raises(InvalidEvaluation) as err:
        Evaluation(
            kind="permit",
            locality="weifang",
            source="s",
            factor="so2",
            value=float("nan"),
            time=at(0),
        )
    assert err.value.field == "value"
    with pytest.raises(InvalidEvaluation) as err2:
        Evaluation(
            kind="nonsense", locality="weifang", source="s", factor="so2", value=1, time=at(0)
        )
    assert err2.value.field == "kind"
    with pytest.raises(RuleConfigError) as err3:
        load_alert_rules({"rules": [{**PERMIT, "for_minutes": -1}]})
    assert "for_minutes" in err3.value.field


def test_constant_value_rule_fires_after_n_identical_samples() -> None:
    rules = load_alert_rules(
        {
            "rules": [
                {
                    "id": "const",
                    "name": "constant",
                    "kind": "constant_value",
                    "samples": 3,
                    "source": "test",
                }
            ]
        }
    )
    eng = Engine(rules)

    def s(minute: float, v: float) -> list[Transition]:
        return eng.process(
            Evaluation(
                kind="sample",
                locality="weifang",
                source="e1",
                factor="so2",
                value=v,
                time=at(minute),
            )
        )

    assert s(0, 42) == []
    assert s(1, 42) == []
    assert seen(s(2, 42)) == [(2, Reason.CONDITION_MET_NO_WAIT, F, True)]  # third in a row
    assert seen(s(3, 43)) == [(3, Reason.CLEAR_CONDITION_MET, R, True)]


def test_data_rate_below_90_percent_fires() -> None:
    from alerts.rules import default_rules

    eng = Engine(default_rules())
    day = Evaluation(
        kind="data_rate", locality="laixi", source="ws-1", factor="rate", value=0.85, time=at(0)
    )
    ts = eng.process(day)
    assert [(t.labels["rule"], t.state) for t in ts] == [("data-rate", F)]
    ok = Evaluation(
        kind="data_rate", locality="laixi", source="ws-1", factor="rate", value=0.95, time=at(1440)
    )
    assert [t.state for t in eng.process(ok)] == [R]


def test_has_alert_follows_alerts_through_resolve_expiry_and_restore() -> None:
    """The locality stage asks "is a permit alert held for this outlet and factor?" for every
    value it could clear with; the engine answers from an index that must track every alert it
    holds: open, resolved but retained (RETAIN_RESOLVED, one day), dropped, restored."""
    eng = engine(for_minutes=0)
    assert not eng.has_alert("e-wf-001", "so2", "permit_exceedance")
    eng.process(ev(0, 120))  # 120 > 100: firing at once (for 0)
    assert eng.has_alert("e-wf-001", "so2", "permit_exceedance")
    assert not eng.has_alert("e-wf-001", "nox", "permit_exceedance")
    assert not eng.has_alert("e-wf-002", "so2", "permit_exceedance")
    eng.process(ev(5, 50))  # back within the limit: resolved, still held for a day
    assert eng.has_alert("e-wf-001", "so2", "permit_exceedance")
    restored = Engine.from_dict(json.loads(json.dumps(eng.to_dict())), eng.rules)
    assert restored.has_alert("e-wf-001", "so2", "permit_exceedance")
    eng.process(ev(5 + 24 * 60 + 1, 50))  # the source keeps reporting
    eng.tick(at(5 + 24 * 60 + 2))  # more than a day after the resolve: dropped
    assert "permit" not in {a.labels.get("rule") for a in eng.alerts.values()}
    assert not eng.has_alert("e-wf-001", "so2", "permit_exceedance")


def test_engine_fast_path_gives_the_transitions_of_evaluating_every_rule() -> None:
    """The engine skips a rule when no alert is held for the subject and the rule's verdict is
    not a breach (alerts.rules.breaches). A reference engine that evaluates every rule on every
    evaluation must produce exactly the same transitions over a mixed stream: constant and zero
    runs, maintenance flags, permit breaches, band values, clears and silence."""
    from alerts.rules import default_rules

    class EveryRule(Engine):
        def process(self, ev: Evaluation, now: datetime | None = None) -> list[Transition]:
            self._by_subject = _AlwaysHeld()
            return super().process(ev, now)

    class _AlwaysHeld(dict[tuple[str, str, str], set[str]]):
        def get(self, key: object, default: object = None) -> set[str]:
            return {"held"}

    fast, slow = Engine(default_rules()), EveryRule(default_rules())
    stream: list[Evaluation] = []
    for minute in range(0, 600, 10):
        flags = frozenset({"M"}) if 200 <= minute < 240 else frozenset()
        stream.append(ev(minute, 0.0, kind="sample", factor="so2", flags=flags))  # zero run
        stream.append(ev(minute, 7.5, kind="sample", factor="no2"))  # constant run
        stream.append(ev(minute, float(minute % 97), kind="sample", factor="co"))
        nox = 180.0 if 100 <= minute < 300 else (95.0 if minute < 400 else 40.0)
        stream.append(ev(minute, nox, kind="permit", factor="nox"))
    got_fast = [t.to_dict() for e in stream for t in fast.process(e)]
    got_slow = [t.to_dict() for e in stream for t in slow.process(e)]
    assert got_slow  # the stream does open and close alerts
    assert got_fast == got_slow
