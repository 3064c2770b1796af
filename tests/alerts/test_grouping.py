"""Grouping decisions and escalation chains of the notify stage (alerts/grouping.py, pure).

Expected values are written from the scenarios (Alertmanager timers, peers.md §1.1, with
envwatch's test timing: group_wait 30 s, group_interval 5 min, repeat_interval 4 h — the
defaults); the transitions come from the real engine (alerts/engine.py) where the lifecycle
matters (escalation, acknowledgement), else from a small constructor.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from alerts.engine import Engine
from alerts.grouping import (
    MAX_LISTED,
    Grouper,
    escalation_level,
    escalation_receiver,
    grouped_texts,
)
from alerts.model import (
    AlertState,
    Reason,
    Severity,
    Transition,
    TransitionKind,
    fingerprint,
    transition_id,
)
from alerts.notification import (
    Notification,
    NotificationKind,
    NotificationStatus,
    Texts,
    notification_id,
)
from alerts.routing import Receiver, Role, tree_from_receivers
from alerts.rules import AlertRules, Evaluation, load_alert_rules
from alerts.templates import render

T0 = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)
LOC = "weifang"
RECEIVERS = [
    Receiver("duty-weifang", Role.DUTY, LOC),
    Receiver("emergency-weifang", Role.EMERGENCY, LOC),
    Receiver("enterprise-e-wf-01", Role.ENTERPRISE, LOC, enterprise="e-wf-01"),
    Receiver("enterprise-e-wf-02", Role.ENTERPRISE, LOC, enterprise="e-wf-02"),
    Receiver("operator", Role.DUTY, "pipeline"),
    Receiver("chief-weifang", Role.ESCALATION, LOC),
    Receiver("lead-weifang", Role.ESCALATION, LOC),
]
TREE = tree_from_receivers(RECEIVERS)


def grouper(chains: dict[str, tuple[str, ...]] | None = None) -> Grouper:
    return Grouper(lambda: TREE, render, lambda rule: (chains or {}).get(rule, ()))


def tr(
    source: str,
    at: datetime,
    state: AlertState = AlertState.FIRING,
    *,
    enterprise: str = "e-wf-01",
    rule: str = "permit-exceedance",
    reason: Reason | None = None,
    locality: str = LOC,
    kind: TransitionKind = TransitionKind.ALERT,
    note: str | None = None,
) -> Transition:
    labels = {
        "rule": rule,
        "source": source,
        "factor": "nox",
        "locality": locality,
        "rule_kind": "permit_exceedance",
        "kind": kind.value,
        "enterprise": enterprise,
    }
    fp = fingerprint(labels)
    if reason is None:
        reason = (
            Reason.CONDITION_MET_NO_WAIT
            if state is AlertState.FIRING
            else Reason.CLEAR_CONDITION_MET
        )
    previous = AlertState.FIRING if state is AlertState.RESOLVED else AlertState.PENDING
    return Transition(
        id=transition_id(fp, state, reason, at),
        kind=kind,
        fingerprint=fp,
        labels=labels,
        annotations={"summary": f"{source} NOx"},
        state=state,
        previous_state=previous,
        reason=reason,
        at=at,
        severity=Severity.CRITICAL,
        locality=locality,
        source=source,
        level="orange" if kind is TransitionKind.WARNING else None,
        note=note,
        value=300.0,
        limit=150.0,
    )


def run(
    g: Grouper, transitions: list[Transition], states: dict[str, Any] | None = None
) -> list[Notification]:
    st: dict[str, Any] = {} if states is None else states
    out: list[Notification] = []
    for t in transitions:
        out += g.on_transition(st, t)
    return out


def per_receiver(ns: list[Notification]) -> Counter[str]:
    return Counter(n.receiver for n in ns)


def storm() -> list[Transition]:
    """200 exceedances in Weifang within 20 s: 120 outlets of e-wf-01, 80 of e-wf-02."""
    out = []
    for i in range(200):
        ent = "e-wf-01" if i < 120 else "e-wf-02"
        out.append(tr(f"outlet-{i:03d}", T0 + timedelta(seconds=i * 0.1), enterprise=ent))
    return out


# ---------------------------------------------------------------- grouping


def test_storm_within_group_wait_is_one_notification_per_receiver_and_group() -> None:
    g = grouper()
    states: dict[str, Any] = {}
    # nothing before group_wait (30 s after the first transition) is over
    assert run(g, storm(), states) == []
    # a later transition of the locality (another rule: its own group) moves the clock past it
    later = tr("outlet-x", T0 + timedelta(seconds=45), rule="offline")
    out = run(g, [later], states)
    assert per_receiver(out) == {
        "duty-weifang": 1,
        "enterprise-e-wf-01": 1,
        "enterprise-e-wf-02": 1,
    }
    by = {n.receiver: n for n in out}
    duty = by["duty-weifang"]
    assert duty.annotations["count"] == "200"
    assert duty.at == T0 + timedelta(seconds=30)  # flushed at its due time, not the clock's
    assert duty.texts.zh.startswith("【告警汇总】200 条告警（触发 200 条，恢复 0 条）")
    assert duty.texts.en.startswith("[Alert digest] 200 alert(s) (200 firing, 0 resolved)")
    assert f"……另有 {200 - MAX_LISTED} 条未列出" in duty.texts.zh
    assert by["enterprise-e-wf-01"].annotations["count"] == "120"
    assert by["enterprise-e-wf-02"].annotations["count"] == "80"
    listed = orjson.loads(by["enterprise-e-wf-02"].annotations["grouped_alerts"])
    assert {a["source"] for a in listed} == {f"outlet-{i:03d}" for i in range(120, 200)}


def test_resolutions_inside_group_interval_are_batched() -> None:
    g = grouper()
    states: dict[str, Any] = {}
    first = storm()[:3]  # outlet-000 … 002 of e-wf-01, fired within 0.2 s
    run(g, first, states)
    # first notification at T0 + 30 s (when the clock passes it); resolutions at +1, +2, +3 min
    resolved = [
        tr(f"outlet-{i:03d}", T0 + timedelta(minutes=1 + i), AlertState.RESOLVED) for i in range(2)
    ]
    out = run(g, resolved, states)
    assert [n.annotations.get("count") for n in out if n.receiver == "duty-weifang"] == ["3"]
    # nothing more before the next group_interval tick, T0 + 30 s + 5 min
    assert run(g, [tr("other", T0 + timedelta(minutes=5), rule="offline")], states) == []
    out = run(g, [tr("other2", T0 + timedelta(minutes=6), rule="offline")], states)
    duty = [n for n in out if n.receiver == "duty-weifang" and n.labels.get("rule") != "offline"]
    assert len(duty) == 1
    n = duty[0]
    assert n.at == T0 + timedelta(seconds=30, minutes=5)
    # the group: outlet-002 still firing (listed first), the two resolutions after it
    assert n.annotations["firing"] == "1"
    assert n.annotations["resolved"] == "2"
    assert n.status is NotificationStatus.FIRING
    listed = orjson.loads(n.annotations["grouped_alerts"])
    assert [(a["source"], a["status"]) for a in listed] == [
        ("outlet-002", "firing"),
        ("outlet-000", "resolved"),
        ("outlet-001", "resolved"),
    ]


def test_one_transition_to_tell_keeps_its_own_notification_id() -> None:
    g = grouper()
    t = tr("outlet-a", T0)
    out = run(g, [t, tr("other", T0 + timedelta(hours=1), rule="offline")])
    mine = [n for n in out if n.fingerprint == t.fingerprint]
    assert {n.receiver for n in mine} == {"duty-weifang", "enterprise-e-wf-01"}
    for n in mine:
        assert n.id == notification_id(t.fingerprint, "firing", T0, n.receiver, t.reason.value)
        assert n.group_key  # tells which group it belongs to


def test_a_group_resolved_within_group_wait_notifies_nobody() -> None:
    g = grouper()
    fired = tr("outlet-a", T0)
    gone = tr("outlet-a", T0 + timedelta(seconds=10), AlertState.RESOLVED)
    out = run(g, [fired, gone, tr("other", T0 + timedelta(hours=1), rule="offline")])
    assert [n for n in out if n.fingerprint == fired.fingerprint] == []


def test_repeat_after_repeat_interval_once_per_interval_reached() -> None:
    g = grouper()
    states: dict[str, Any] = {}
    t = tr("outlet-a", T0)
    run(g, [t], states)
    clock = [tr(f"c{i}", T0 + timedelta(minutes=m), rule="offline") for i, m in enumerate([1])]
    run(g, clock, states)  # first notification at T0 + 30 s
    # 4 h after it: a reminder for the unchanged firing group (and only that group's one)
    out = run(g, [tr("c9", T0 + timedelta(hours=4, minutes=1), rule="offline")], states)
    reminders = [n for n in out if n.reason == "repeat" and n.receiver == "duty-weifang"]
    assert len(reminders) == 1
    assert reminders[0].at == T0 + timedelta(hours=4, seconds=30)
    assert reminders[0].texts.zh.startswith("【告警提醒】1 条告警仍未恢复")
    # a backlog that jumps 13 h ahead reminds once (at the latest tick), not three times
    out = run(g, [tr("c10", T0 + timedelta(hours=17), rule="offline")], states)
    reminders = [n for n in out if n.reason == "repeat" and n.receiver == "duty-weifang"]
    assert [n.at for n in reminders] == [T0 + timedelta(hours=16, seconds=30)]


def test_ids_are_the_same_on_replay_and_with_a_timer_flush_and_a_checkpoint_round_trip() -> None:
    transitions = storm()[:50] + [
        tr(f"outlet-{i:03d}", T0 + timedelta(minutes=2, seconds=i), AlertState.RESOLVED)
        for i in range(10)
    ]
    # 1. driven by the event clock: a later transition flushes everything due
    tail = [tr("end", T0 + timedelta(hours=1), rule="offline")]
    a = run(grouper(), transitions + tail)
    # 2. the same input again, the state through JSON after every transition (a checkpoint and
    #    restore at any point), and the worker's timer flushing each due group at its due time
    g = grouper()
    states: dict[str, Any] = {}
    b: list[Notification] = []
    for t in transitions:
        b += g.on_transition(states, t)
        states = orjson.loads(orjson.dumps(states))
        for _key, due, _news in g.pending(states, LOC):
            if due <= T0 + timedelta(hours=1) and due <= t.at + timedelta(seconds=1):
                b += g.flush(states, LOC, due)
    b += g.flush(states, LOC, T0 + timedelta(minutes=30))
    b += run(g, tail, states)
    assert sorted(n.id for n in a) == sorted(n.id for n in b)
    assert {n.id: n for n in a} == {n.id: n for n in b}
    assert len({n.id for n in a}) == len(a)


# ---------------------------------------------------------------- never delayed


def test_warnings_and_operator_alerts_are_sent_at_once() -> None:
    g = grouper()
    warning = tr("wf", T0, kind=TransitionKind.WARNING, reason=Reason.WARNING_ISSUED)
    op = tr("store", T0, rule="pipeline", locality="pipeline", enterprise="")
    out = run(g, [warning, op])
    assert per_receiver(out) == {"duty-weifang": 1, "emergency-weifang": 1, "operator": 1}


# ---------------------------------------------------------------- escalation chains


def test_escalation_receiver_is_the_chain_entry_of_the_level() -> None:
    chain = ("duty", "chief", "lead")
    assert escalation_receiver(chain, 1, LOC) == "chief-weifang"
    assert escalation_receiver(chain, 2, LOC) == "lead-weifang"
    assert escalation_receiver(chain, 5, LOC) == "lead-weifang"  # past the end: the top
    assert escalation_receiver((), 1, LOC) == "duty-weifang"  # no chain: the duty officer
    assert escalation_receiver(("duty", "enterprise"), 1, LOC) is None
    t = tr("a", T0, reason=Reason.ESCALATED, note="level 2")
    assert escalation_level(t) == 2
    assert escalation_level(tr("a", T0)) is None


RULES: AlertRules = load_alert_rules(
    {
        "rules": [
            {
                "id": "permit-exceedance",
                "name": "permit",
                "kind": "permit_exceedance",
                "source": "test",
                "escalate_after_minutes": 60,
                "max_escalations": 2,
            }
        ]
    }
)
CHAINS = {"permit-exceedance": ("duty", "chief", "lead")}


def engine_stream(*, ack_after_level_1: bool) -> list[Transition]:
    """An outlet of e-wf-01 breaches at T0 and stays in breach for 3 h (hourly samples); the
    engine fires at once, escalates at T0 + 1 h (level 1) and T0 + 2 h (level 2) unless a
    person acknowledges it at T0 + 1 h 10 min."""
    engine = Engine(RULES)
    out: list[Transition] = []
    fp = None
    for h in range(4):
        at = T0 + timedelta(hours=h)
        ev = Evaluation(
            kind="permit", locality=LOC, source="e-wf-01-g1", factor="nox", value=300.0,
            time=at, limit=150.0, detail={"enterprise": "e-wf-01"},
        )  # fmt: skip
        out += engine.tick(at)
        ts = engine.process(ev)
        out += ts
        fp = fp or next(t.fingerprint for t in ts)
        if ack_after_level_1 and h == 1:
            out += engine.acknowledge(fp, "duty officer", at + timedelta(minutes=10), "on it")
    return out


def test_escalation_chain_reaches_duty_then_chief_then_lead() -> None:
    stream = engine_stream(ack_after_level_1=False)
    reasons = [(t.reason.value, t.note) for t in stream if t.reason is Reason.ESCALATED]
    assert reasons == [("escalated", "level 1"), ("escalated", "level 2")]
    g = Grouper(lambda: TREE, render, lambda rule: CHAINS.get(rule, ()))
    out = run(g, stream)
    got = [(n.receiver, n.reason) for n in out]
    assert ("duty-weifang", "condition_met_no_wait") in got
    assert ("enterprise-e-wf-01", "condition_met_no_wait") in got
    escalations = [(n.receiver, n.texts.zh[:6]) for n in out if n.reason == "escalated"]
    assert [r for r, _ in escalations] == ["chief-weifang", "lead-weifang"]
    # the original receivers are not told of the escalations; the enterprise never
    assert not any(
        n.reason == "escalated" and n.receiver in {"duty-weifang", "enterprise-e-wf-01"}
        for n in out
    )


def test_an_acknowledgement_after_level_1_leaves_the_lead_out() -> None:
    stream = engine_stream(ack_after_level_1=True)
    g = Grouper(lambda: TREE, render, lambda rule: CHAINS.get(rule, ()))
    out = run(g, stream)
    escalated = [n.receiver for n in out if n.reason == "escalated"]
    assert escalated == ["chief-weifang"]
    assert "lead-weifang" not in {n.receiver for n in out}


@pytest.mark.parametrize("listed", [1, MAX_LISTED, MAX_LISTED + 3])
def test_grouped_texts_chinese_first_with_counts(listed: int) -> None:
    items = [(NotificationStatus.FIRING, Texts(zh=f"甲{i}", en=f"A{i}")) for i in range(listed)]
    texts = grouped_texts(items, total_firing=listed, total_resolved=0)
    lines = texts.zh.splitlines()
    assert lines[0] == f"【告警汇总】{listed} 条告警（触发 {listed} 条，恢复 0 条）"
    assert lines[1] == "1. 甲0"
    assert len([x for x in lines if x[0].isdigit()]) == min(listed, MAX_LISTED)


def test_a_second_copy_of_a_transition_is_ignored() -> None:
    """The locality stage re-emits what followed its last snapshot after a restart: the copy
    must neither be told again nor turn a one-transition flush into a grouped one."""
    g = grouper()
    states: dict[str, Any] = {}
    fired = tr("outlet-a", T0)
    gone = tr("outlet-a", T0 + timedelta(hours=1), AlertState.RESOLVED)
    first = run(g, [fired, gone], states)
    again = run(g, [fired, gone, tr("x", T0 + timedelta(hours=2), rule="offline")], states)
    assert {n.receiver for n in first} == {"duty-weifang", "enterprise-e-wf-01"}
    told = [n for n in again if n.fingerprint == fired.fingerprint]
    assert [(n.receiver, n.state) for n in sorted(told, key=lambda n: n.receiver)] == [
        ("duty-weifang", "resolved"),
        ("enterprise-e-wf-01", "resolved"),
    ]
    assert all(n.reason == "clear_condition_met" for n in told)


def test_escalation_receivers_get_nothing_but_escalations() -> None:
    """A chain receiver (role escalation) is in the catalogue's tree but matches no transition:
    the storm, a warning and an operator alert never reach it."""
    assert TREE.receivers({"locality": LOC, "enterprise": "e-wf-01"}, NotificationKind.ALERT) == [
        "duty-weifang",
        "enterprise-e-wf-01",
    ]
    g = grouper()
    warning = tr("wf", T0, kind=TransitionKind.WARNING, reason=Reason.WARNING_ISSUED)
    out = run(g, [*storm(), warning, tr("end", T0 + timedelta(hours=1), rule="offline")])
    assert not {"chief-weifang", "lead-weifang"} & {n.receiver for n in out}
