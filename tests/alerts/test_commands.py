"""People's commands on the alert engine (alerts/commands.py, Engine.command), on hand-written
timelines.

The scenario: locality ``weifang``, 1 December 2026 (a Tuesday), Beijing time. Two flue-gas
outlets of two enterprises — ``out-a`` (enterprise ``ent-a``) and ``out-b`` (``ent-b``) — and an
air station ``aq-1``. The permit rule fires at once (for = 0) when SO2 > 50 mg/m³ and escalates
every 60 min while firing and unacknowledged, at most twice; the offline rule fires after 120 min
of silence. Commands are issued on 5 December (wall clock at the API): that date must never
appear as an effective time — a command takes effect at its locality's data time.
"""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from alerts.commands import Command, Refusal, maintenance_id
from alerts.engine import Engine
from alerts.model import AlertState, Reason, Suppression, Transition
from alerts.rules import AlertRules, Evaluation, load_alert_rules
from alerts.silences import Matcher, Recurrence, Silence, Weekday

BJ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 12, 1, 10, tzinfo=BJ)  # Tuesday 10:00 Beijing
M = timedelta(minutes=1)
H = timedelta(hours=1)
ISSUED = datetime(2026, 12, 5, 9, tzinfo=BJ)  # the API's wall clock: never an effective time
LOC = "weifang"
RULES: AlertRules = load_alert_rules(
    {
        "rules": [
            {
                "id": "permit",
                "name": "permit",
                "kind": "permit_exceedance",
                "source": "test scenario",
                "escalate_after_minutes": 60,
                "max_escalations": 2,
            },
            {
                "id": "offline",
                "name": "offline",
                "kind": "offline",
                "source": "test scenario",
                "silent_after_minutes": 120,
            },
        ]
    }
)
SOURCES = {
    "out-a": {"enterprise": "ent-a", "outlet": "out-a"},
    "out-b": {"enterprise": "ent-b", "outlet": "out-b"},
    "aq-1": {"station": "aq-1"},
    "mon-1": {"enterprise": "ent-a", "source_name": "旁路监控"},
}


def so2(source: str, at: datetime, value: float) -> Evaluation:
    detail = {k: v for k, v in SOURCES[source].items() if k in ("enterprise", "outlet")}
    return Evaluation(
        kind="permit",
        locality=LOC,
        source=source,
        factor="so2",
        value=value,
        time=at,
        limit=50.0,
        detail={**detail, "period": "hour"},
    )


_n = 0


def cmd(action: str, **kw: Any) -> Command:
    global _n
    _n += 1
    base: dict[str, Any] = {
        "id": f"c{_n:04d}",
        "action": action,
        "locality": LOC,
        "actor": "张三",
        "role": "duty",
        "issued_at": ISSUED,
    }
    return Command.model_validate({**base, **kw})


def fp_of(eng: Engine, source: str) -> str:
    return next(fp for fp, a in eng.alerts.items() if a.source == source)


def run(eng: Engine, c: Command, now: datetime, **clocks: datetime) -> Any:
    result, ts = eng.command(c, locality=LOC, now=now, clocks=clocks, sources=SOURCES)
    return result, ts


def reasons(ts: list[Transition]) -> list[tuple[str, str, datetime]]:
    return [(t.source, t.reason.value, t.at) for t in ts]


def firing(*sources: str) -> Engine:
    """An engine where each of ``sources`` fired at T0 (SO2 80 > 50)."""
    eng = Engine(RULES)
    for s in sources:
        assert [t.reason for t in eng.process(so2(s, T0, 80))] == [Reason.CONDITION_MET_NO_WAIT]
    return eng


# ---------------------------------------------------------------- acknowledge


def test_an_acknowledged_alert_is_never_escalated_the_other_one_is() -> None:
    eng = firing("out-a", "out-b")
    # the duty officer acknowledges out-a while its data has reached 10:10 and the locality 10:20
    result, ts = run(
        eng,
        cmd("ack", fingerprint=fp_of(eng, "out-a"), note="已通知企业"),
        T0 + 20 * M,
        **{"out-a": T0 + 10 * M},
    )
    assert result.status == "applied"
    assert result.reason is None
    assert result.at == T0 + 10 * M  # the alert's source clock, not issued_at, not the watermark
    assert [(t.reason, t.actor, t.note, t.at) for t in ts] == [
        (Reason.ACKNOWLEDGED, "张三", "已通知企业", T0 + 10 * M)
    ]
    assert result.transitions == (ts[0].id,)
    assert eng.alerts[fp_of(eng, "out-a")].acked_by == "张三"
    # three hours of data: out-b escalates at 11:00 and 12:00 (fired 10:00 + n × 60 min, max 2)
    out: list[Transition] = []
    for k in range(1, 19):
        at = T0 + k * 10 * M
        out += eng.process(so2("out-a", at, 80)) + eng.process(so2("out-b", at, 80))
        out += eng.tick(at)
    assert [(s, r, at) for s, r, at in reasons(out) if r == "escalated"] == [
        ("out-b", "escalated", T0 + H),
        ("out-b", "escalated", T0 + 2 * H),
    ]


def test_ack_refusals_are_named() -> None:
    eng = firing("out-a", "out-b")
    eng.process(so2("out-b", T0 + H, 40))  # out-b resolved at 11:00
    unknown, _ = run(eng, cmd("ack", fingerprint="0" * 16), T0 + H)
    assert (unknown.status, unknown.reason) == ("refused", Refusal.UNKNOWN_ALERT)
    resolved, ts = run(eng, cmd("ack", fingerprint=fp_of(eng, "out-b")), T0 + H)
    assert (resolved.reason, ts) == (Refusal.NOT_FIRING, [])
    other = cmd("ack", fingerprint=fp_of(eng, "out-a"), role="enterprise", enterprise="ent-b")
    assert run(eng, other, T0 + H)[0].reason is Refusal.OTHER_ENTERPRISE
    own = cmd("ack", fingerprint=fp_of(eng, "out-a"), role="enterprise", enterprise="ent-a")
    assert run(eng, own, T0 + H)[0].status == "applied"
    elsewhere = cmd("ack", fingerprint=fp_of(eng, "out-a"), locality="laixi")
    assert run(eng, elsewhere, T0 + H)[0].reason is Refusal.WRONG_LOCALITY
    assert run(eng, cmd("unack", fingerprint=fp_of(eng, "out-b")), T0 + H)[0].reason is (
        Refusal.NOT_FIRING
    )


def test_unack_lets_the_escalation_resume_at_its_own_time() -> None:
    eng = firing("out-a")
    fp = fp_of(eng, "out-a")
    assert run(eng, cmd("ack", fingerprint=fp), T0 + 10 * M)[0].at == T0 + 10 * M
    _result, ts = run(eng, cmd("unack", fingerprint=fp, note="误确认"), T0 + 30 * M)
    assert reasons(ts) == [("out-a", "unacknowledged", T0 + 30 * M)]
    assert eng.alerts[fp].acked_at is None
    assert reasons(eng.tick(T0 + 70 * M)) == [("out-a", "escalated", T0 + H)]


def test_an_effective_time_is_never_before_the_alerts_newest_transition() -> None:
    eng = firing("out-a")
    # the source's clock (09:00) lags the alert's own firing (10:00): the ack is at 10:00
    result, ts = run(eng, cmd("ack", fingerprint=fp_of(eng, "out-a")), T0, **{"out-a": T0 - H})
    assert result.at == T0
    assert ts[0].at == T0


# ---------------------------------------------------------------- assign, resolve


def test_assign_twice_at_one_data_time_gives_two_transitions_and_unassign() -> None:
    eng = firing("out-a")
    fp = fp_of(eng, "out-a")
    first, t1 = run(eng, cmd("assign", fingerprint=fp, assignee="李四"), T0 + 5 * M)
    second, t2 = run(eng, cmd("assign", fingerprint=fp, assignee="王五"), T0 + 5 * M)
    # same alert, state, reason and data time: the second is stamped 1 ms later, its own id
    assert (first.at, second.at) == (T0 + 5 * M, T0 + 5 * M + timedelta(milliseconds=1))
    assert t1[0].id != t2[0].id
    assert [t.note for t in t1 + t2] == ["assigned to 李四", "assigned to 王五"]
    assert eng.alerts[fp].assignee == "王五"
    _, t3 = run(eng, cmd("unassign", fingerprint=fp), T0 + 6 * M)
    assert reasons(t3) == [("out-a", "unassigned", T0 + 6 * M)]
    assert eng.alerts[fp].assignee is None
    again, _ = run(eng, cmd("unassign", fingerprint=fp), T0 + 7 * M)
    assert again.reason is Refusal.NOT_ASSIGNED


def test_manual_resolve_only_where_the_rule_allows_it() -> None:
    eng = firing("out-a")
    # aq-1 seen at 10:00, silent while the data reaches 12:30: offline stamped 12:00
    eng.process(
        Evaluation(kind="sample", locality=LOC, source="aq-1", factor="pm25", value=30.0, time=T0)
    )
    off = eng.silence(LOC, "aq-1", T0, T0 + 150 * M)
    assert reasons(off) == [("aq-1", "condition_met_no_wait", T0 + 2 * H)]
    refused, ts = run(eng, cmd("resolve", fingerprint=off[0].fingerprint), T0 + 150 * M)
    assert (refused.reason, ts) == (Refusal.MANUAL_RESOLVE_NOT_ALLOWED, [])
    _ok, ts = run(eng, cmd("resolve", fingerprint=fp_of(eng, "out-a"), note="已整改"), T0 + H)
    assert reasons(ts) == [("out-a", "manually_resolved", T0 + H)]
    assert ts[0].state is AlertState.RESOLVED
    assert ts[0].notify
    assert run(eng, cmd("resolve", fingerprint=fp_of(eng, "out-a")), T0 + H)[0].reason is (
        Refusal.ALERT_RESOLVED
    )


def test_a_command_id_is_applied_once() -> None:
    eng = firing("out-a")
    c = cmd("assign", fingerprint=fp_of(eng, "out-a"), assignee="李四")
    first, ts = run(eng, c, T0)
    assert first is not None
    assert len(ts) == 1
    assert run(eng, c, T0 + H) == (None, [])  # redelivered or retried: nothing
    assert len(eng.alerts[fp_of(eng, "out-a")].history) == 2  # fired, assigned
    # a refused command is remembered too
    r = cmd("ack", fingerprint="0" * 16)
    assert run(eng, r, T0)[0].reason is Refusal.UNKNOWN_ALERT
    assert run(eng, r, T0) == (None, [])


# ---------------------------------------------------------------- silences


def one_off(sid: str, start: datetime, end: datetime, **match: str) -> Silence:
    return Silence(
        id=sid,
        matchers=tuple(Matcher(name=k, value=v) for k, v in match.items()),
        created_by="张三",
        comment="检修",
        starts_at=start,
        ends_at=end,
    )


def test_a_silence_mutes_and_its_expiry_tells_what_was_missed() -> None:
    eng = Engine(RULES)
    s = one_off("s-1", T0, T0 + 4 * H, source="out-a")
    result, _ = run(eng, cmd("silence", silence=s), T0)
    assert result.status == "applied"
    assert result.silences == (s,)
    ts = eng.process(so2("out-a", T0 + 30 * M, 80))
    assert [(t.reason, t.suppressed, t.suppressed_by, t.notify) for t in ts] == [
        (Reason.CONDITION_MET_NO_WAIT, (Suppression.SILENCED,), ("s-1",), False)
    ]
    history = eng.alerts[ts[0].fingerprint].history
    assert history[-1].suppressed_by == ("s-1",)
    # expired at 11:00 (the watermark): the catch-up tells the firing at 11:00
    result, ts = run(eng, cmd("unsilence", silence_id="s-1"), T0 + H)
    assert reasons(ts) == [("out-a", "suppression_ended", T0 + H)]
    assert ts[0].notify
    assert result.transitions == (ts[0].id,)
    assert result.silences[0].ends_at == T0 + H
    again, _ = run(eng, cmd("unsilence", silence_id="s-1"), T0 + 2 * H)
    assert again.reason is Refusal.SILENCE_ENDED
    assert run(eng, cmd("unsilence", silence_id="nope"), T0)[0].reason is Refusal.UNKNOWN_SILENCE


def test_a_silence_that_ends_by_itself_is_caught_up_by_tick() -> None:
    eng = Engine(RULES)
    run(eng, cmd("silence", silence=one_off("s-2", T0, T0 + H, source="out-a")), T0)
    eng.process(so2("out-a", T0 + 30 * M, 80))
    assert eng.tick(T0 + 50 * M) == []
    assert reasons(eng.tick(T0 + 70 * M)) == [("out-a", "suppression_ended", T0 + 70 * M)]


def test_an_enterprise_silences_only_its_own_alerts() -> None:
    eng = Engine(RULES)
    broad = cmd(
        "silence",
        silence=one_off("s-3", T0, T0 + H, source="out-b"),
        role="enterprise",
        enterprise="ent-a",
    )
    assert run(eng, broad, T0)[0].reason is Refusal.OTHER_ENTERPRISE
    own = cmd(
        "silence",
        silence=one_off("s-4", T0, T0 + H, enterprise="ent-a"),
        role="enterprise",
        enterprise="ent-a",
    )
    assert run(eng, own, T0)[0].status == "applied"
    unsilence = cmd("unsilence", silence_id="s-4", role="enterprise", enterprise="ent-b")
    assert run(eng, unsilence, T0)[0].reason is Refusal.OTHER_ENTERPRISE
    reserved = cmd("silence", silence=one_off("maint-x", T0, T0 + H, source="out-a"))
    assert run(eng, reserved, T0)[0].reason is Refusal.RESERVED_ID


def test_a_weekly_silence_mutes_only_inside_its_windows() -> None:
    # every Tuesday 08:00–12:00 Beijing, from 1 December on, for enterprise ent-a
    weekly = Silence(
        id="tue-maint",
        matchers=(Matcher(name="enterprise", value="ent-a"),),
        created_by="张三",
        starts_at=datetime(2026, 12, 1, tzinfo=BJ),
        recurrence=Recurrence(
            every="week", start=time(8), end=time(12), weekdays=frozenset({Weekday.TUE})
        ),
    )
    eng = Engine(RULES)
    run(eng, cmd("silence", silence=weekly), T0)
    tue_9 = datetime(2026, 12, 1, 9, tzinfo=BJ)
    steps = [
        (tue_9, 80),  # Tue 09:00 inside: fires muted
        (tue_9 + 30 * M, 40),  # Tue 09:30 clears, muted: nobody was told, nobody is
        (datetime(2026, 12, 1, 13, tzinfo=BJ), 80),  # Tue 13:00 outside: told
        (datetime(2026, 12, 1, 14, tzinfo=BJ), 40),  # told it cleared
        (datetime(2026, 12, 2, 9, tzinfo=BJ), 80),  # Wednesday 09:00: not a window day
        (datetime(2026, 12, 2, 10, tzinfo=BJ), 40),
        (datetime(2026, 12, 8, 11, 59, tzinfo=BJ), 80),  # next Tuesday 11:59: inside
    ]
    got = []
    for at, v in steps:
        got += [
            (t.at, t.state.value, t.notify, t.suppressed_by)
            for t in eng.process(so2("out-a", at, v))
        ]
    assert got == [
        (steps[0][0], "firing", False, ("tue-maint",)),
        (steps[1][0], "resolved", False, ("tue-maint",)),
        (steps[2][0], "firing", True, ()),
        (steps[3][0], "resolved", True, ()),
        (steps[4][0], "firing", True, ()),
        (steps[5][0], "resolved", True, ()),
        (steps[6][0], "firing", False, ("tue-maint",)),
    ]
    # 12:00 that Tuesday: the window is over — the firing nobody heard of is told then
    noon = datetime(2026, 12, 8, 12, tzinfo=BJ)
    assert reasons(eng.tick(noon)) == [("out-a", "suppression_ended", noon)]


# ---------------------------------------------------------------- maintenance windows


def test_a_maintenance_window_suppresses_an_outlet_and_shows_in_its_history() -> None:
    eng = firing("out-b")
    start = cmd("maintenance_start", source="out-a", ends_at=T0 + 4 * H, note="脱硫检修")
    result, _ = run(eng, start, T0)
    window_id = maintenance_id("out-a", start.id)
    assert result.status == "applied"
    assert [(s.id, s.starts_at, s.ends_at, s.comment) for s in result.silences] == [
        (window_id, T0, T0 + 4 * H, "脱硫检修")
    ]
    ts = eng.process(so2("out-a", T0 + H, 90)) + eng.process(so2("out-b", T0 + H, 90))
    a = [t for t in ts if t.source == "out-a"]
    assert [(t.reason, t.suppressed, t.suppressed_by) for t in a] == [
        (Reason.CONDITION_MET_NO_WAIT, (Suppression.MAINTENANCE,), (window_id,))
    ]
    entry = eng.alerts[a[0].fingerprint].history[-1]
    assert (entry.suppressed, entry.suppressed_by) == ((Suppression.MAINTENANCE,), (window_id,))
    # out-b is not in the window: its escalation at 11:00 is not suppressed
    assert [t.suppressed for t in ts if t.source == "out-b"] == [()]
    # ended early at 11:30 by the enterprise itself: the missed firing is told at 11:30 (out-a
    # escalates at 12:00, out-b's second escalation is due at 12:00 too: nothing else yet)
    end = cmd("maintenance_end", silence_id=window_id, role="enterprise", enterprise="ent-a")
    result, ts = run(eng, end, T0 + 90 * M)
    assert result.status == "applied"
    assert [(t.source, t.reason.value, t.at, t.notify) for t in ts] == [
        ("out-a", "suppression_ended", T0 + 90 * M, True),
    ]
    assert result.transitions == (ts[0].id,)
    assert result.silences[0].ends_at == T0 + 90 * M


def test_maintenance_refusals() -> None:
    eng = Engine(RULES)
    station = cmd("maintenance_start", source="aq-1", ends_at=T0 + H)
    assert run(eng, station, T0)[0].reason is Refusal.NOT_OUTLET_OR_MONITOR
    unknown = cmd("maintenance_start", source="out-zz", ends_at=T0 + H)
    assert run(eng, unknown, T0)[0].reason is Refusal.UNKNOWN_SOURCE
    other = cmd(
        "maintenance_start", source="out-b", ends_at=T0 + H, role="enterprise", enterprise="ent-a"
    )
    assert run(eng, other, T0)[0].reason is Refusal.OTHER_ENTERPRISE
    past = cmd("maintenance_start", source="out-a", ends_at=T0 - H)
    assert run(eng, past, T0)[0].reason is Refusal.WINDOW_ENDED
    monitor = cmd(
        "maintenance_start", source="mon-1", ends_at=T0 + H, role="enterprise", enterprise="ent-a"
    )
    assert run(eng, monitor, T0)[0].status == "applied"
    assert run(eng, cmd("maintenance_end", source="out-a"), T0)[0].reason is (
        Refusal.UNKNOWN_SILENCE
    )
    by_source, _ = run(eng, cmd("maintenance_end", source="mon-1"), T0 + 30 * M)
    assert by_source.status == "applied"
    assert by_source.silences[0].ends_at == T0 + 30 * M


# ---------------------------------------------------------------- persistence


def test_state_round_trips_mid_silence_and_old_state_still_loads() -> None:
    eng = firing("out-b")
    run(eng, cmd("silence", silence=one_off("s-5", T0, T0 + 4 * H, source="out-a")), T0)
    eng.process(so2("out-a", T0 + 30 * M, 80))
    done = cmd("assign", fingerprint=fp_of(eng, "out-b"), assignee="李四")
    run(eng, done, T0 + 30 * M)
    restored = Engine.from_dict(json.loads(json.dumps(eng.to_dict())), RULES)
    assert restored.held_silences == eng.held_silences
    assert run(restored, done, T0 + H) == (None, [])  # the id is remembered across restarts
    # both go on identically: still muted at 11:00 (nothing new), then the expiry at 11:20
    # tells out-a's firing; the same tick stamps out-b's first escalation at its 11:00
    for e in (eng, restored):
        assert e.process(so2("out-a", T0 + H, 85)) == []
    expire = cmd("unsilence", silence_id="s-5")
    a = run(eng, expire, T0 + 80 * M)
    b = run(restored, expire, T0 + 80 * M)
    assert a == b
    assert reasons(a[1]) == [
        ("out-b", "escalated", T0 + H),
        ("out-a", "suppression_ended", T0 + 80 * M),
    ]
    # state written before issue 14 has neither silences nor command ids
    old = eng.to_dict()
    del old["silences"], old["commands"]
    legacy = Engine.from_dict(old, RULES)
    assert legacy.held_silences == {}
    assert legacy.command_ids == {}


# ---------------------------------------------------------------- the command model


def test_a_command_carries_what_its_action_needs() -> None:
    for action, missing in [
        ("ack", {}),  # no fingerprint
        ("assign", {"fingerprint": "f" * 16}),  # no assignee
        ("silence", {}),
        ("unsilence", {}),
        ("maintenance_start", {"source": "out-a"}),  # no ends_at
        ("maintenance_end", {}),
    ]:
        with pytest.raises(ValidationError):
            cmd(action, **missing)
    with pytest.raises(ValidationError, match="enterprise"):
        cmd("ack", fingerprint="f" * 16, role="enterprise")  # whose enterprise?
    with pytest.raises(ValidationError):
        cmd("ack", fingerprint="f" * 16, note="x" * 2001)  # notes are at most 2,000 characters
    with pytest.raises(ValidationError):
        cmd("ack", fingerprint="f" * 16, issued_at=datetime(2026, 12, 5, 9))  # naive
    with pytest.raises(ValidationError):
        cmd("reboot")
    with pytest.raises(ValidationError):
        cmd("ack", fingerprint="f" * 16, extra="field")
    ok = cmd("ack", fingerprint="f" * 16, note="x" * 2000)
    assert Command.model_validate_json(ok.model_dump_json()) == ok
