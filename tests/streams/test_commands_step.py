"""People's commands through the worker's locality step (streams/steps.py ``LocalityStep``), with
real wire records: samples as the bridge writes them → ``EvaluateStep`` → ``aggregates`` records,
and commands as the alerts service writes them (streams.commands.encode_command) on the same
topic and key.

Scenario (reference catalogue, deploy/config/weifang.yaml): the bypass monitor
``mon-wf-bypass-01`` of enterprise ``e-wf-02`` reports hourly; ``bypass_open`` = 1 fires the
``bypass-open`` rule at once (for = 0). 1 December 2026 is a Tuesday; times are Beijing wall
clock. Commands are issued on 5 December (the API's wall clock), which must never be an
effective time.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from alerts.commands import Command, CommandResult, Refusal, maintenance_id
from alerts.locality import LocalityState
from alerts.rules import DEFAULT_RULES, AlertRules, default_rules, load_alert_rules
from alerts.silences import Matcher, Recurrence, Silence, Weekday
from streams import topics
from streams.catalog import CatalogView
from streams.commands import encode_command
from streams.steps import EvaluateStep, LocalityStep

BJ = ZoneInfo("Asia/Shanghai")
TUE = datetime(2026, 12, 1, tzinfo=BJ)  # Tuesday 00:00 Beijing
H = timedelta(hours=1)
ISSUED = datetime(2026, 12, 5, 9, tzinfo=BJ)
CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "config"
BYPASS = "mon-wf-bypass-01"


@pytest.fixture(scope="module")
def view() -> CatalogView:
    return CatalogView(CONFIG)


def bypass(at: datetime, is_open: int) -> bytes:
    return orjson.dumps(
        {
            "kind": "monitor",
            "locality": "weifang",
            "source": BYPASS,
            "time": at.isoformat(),
            "interval": "hour",
            "values": {"bypass_open": {"value": is_open, "flag": "N"}},
        }
    )


_n = 0


def command(action: str, **kw: Any) -> Command:
    global _n
    _n += 1
    base: dict[str, Any] = {
        "id": f"cmd{_n:04d}",
        "action": action,
        "locality": "weifang",
        "actor": "值班员",
        "role": "duty",
        "issued_at": ISSUED,
    }
    return Command.model_validate({**base, **kw})


class Worker:
    """The evaluate step (one partition) → the locality step, collecting what it sends."""

    def __init__(self, view: CatalogView, rules: AlertRules) -> None:
        self.evaluate = EvaluateStep(
            view, max_future=timedelta(days=9999), max_past=timedelta(days=9999)
        )
        self.locality = LocalityStep(view, rules)
        self.partition: dict[str, Any] = {}
        self.state: LocalityState | None = None
        self.offset = 0
        self.events: list[dict[str, Any]] = []  # alert-events
        self.results: list[CommandResult] = []  # alert-commands
        self.dead: list[dict[str, Any]] = []
        self.sent: list[tuple[str, bytes, bytes]] = []

    def sample(self, value: bytes) -> None:
        self.offset += 1
        ts = round(datetime.fromisoformat(orjson.loads(value)["time"]).timestamp() * 1000)
        for topic, key, v in self.evaluate(self.partition, b"k", value, self.offset, ts):
            assert topic != topics.DEAD_LETTER, v
            if topic == topics.AGGREGATES:
                self.aggregate(key, v, ts)

    def command(self, cmd: Command) -> None:
        key, value = encode_command(cmd)
        self.aggregate(key, value, round(cmd.issued_at.timestamp() * 1000))

    def aggregate(self, key: bytes, value: bytes, ts: int) -> None:
        self.offset += 1
        self.state, outputs = self.locality(self.state, key, value, self.offset, ts)
        for topic, k, v in outputs:
            self.sent.append((topic, k, v))
            if topic == topics.ALERT_EVENTS:
                self.events.append(orjson.loads(v))
            elif topic == topics.ALERT_COMMANDS:
                assert k == b"weifang"
                self.results.append(CommandResult.from_bytes(v))
            elif topic == topics.DEAD_LETTER:
                self.dead.append(orjson.loads(v))

    def alerts(self) -> list[tuple[str, str, datetime, bool, list[str]]]:
        return [
            (
                e["reason"],
                e["state"],
                datetime.fromisoformat(e["at"]),
                bool(
                    not e["suppressed"]
                    and (e["state"] == "firing" or e["previous_state"] == "firing")
                ),
                e["suppressed_by"],
            )
            for e in self.events
            if e["labels"]["rule"] == "bypass-open"
        ]


def feed(w: Worker, script: list[tuple[str, Any]]) -> None:
    for kind, item in script:
        if kind == "sample":
            w.sample(item)
        else:
            w.command(item)


def escalating_rules() -> AlertRules:
    """The built-in rules, the bypass rule escalating every 30 min up to 3 times (short, for
    the test; the built-in rule does not escalate)."""
    return load_alert_rules(
        {
            "rules": [
                {**r, "escalate_after_minutes": 30, "max_escalations": 3}
                if r["id"] == "bypass-open"
                else r
                for r in DEFAULT_RULES
            ]
        }
    )


def test_without_an_ack_the_bypass_escalates_every_30_minutes(view: CatalogView) -> None:
    w = Worker(view, escalating_rules())
    for k in range(4):  # open 09:00 … 12:00
        w.sample(bypass(TUE + (9 + k) * H, 1))
    assert [(r, at) for r, _s, at, _n, _b in w.alerts()] == [
        ("condition_met_no_wait", TUE + 9 * H),
        ("escalated", TUE + 9.5 * H),
        ("escalated", TUE + 10 * H),
        ("escalated", TUE + 10.5 * H),
    ]


def test_an_acknowledged_alert_is_never_escalated(view: CatalogView) -> None:
    w = Worker(view, escalating_rules())
    w.sample(bypass(TUE + 9 * H, 1))
    fp = w.events[0]["fingerprint"]
    ack = command("ack", fingerprint=fp, note="已电话通知企业关闭旁路")
    w.command(ack)
    for k in range(1, 4):
        w.sample(bypass(TUE + (9 + k) * H, 1))
    assert [(r, at) for r, _s, at, _n, _b in w.alerts()] == [
        ("condition_met_no_wait", TUE + 9 * H),
        ("acknowledged", TUE + 9 * H),  # the monitor's data time, not the 5 December wall clock
    ]
    acked = w.events[1]
    assert (acked["actor"], acked["note"]) == ("值班员", "已电话通知企业关闭旁路")
    [result] = w.results
    assert result.command == ack
    assert (result.status, result.reason, result.at) == ("applied", None, TUE + 9 * H)
    assert result.transitions == (acked["id"],)


def test_a_weekly_silence_mutes_only_inside_its_window(view: CatalogView) -> None:
    w = Worker(view, default_rules())
    tuesdays = Silence(
        id="tue-morning",
        matchers=(Matcher(name="source", value=BYPASS),),
        created_by="值班员",
        comment="每周二上午例行检修",
        starts_at=TUE,
        recurrence=Recurrence(
            every="week", start=time(8), end=time(12), weekdays=frozenset({Weekday.TUE})
        ),
    )
    w.command(command("silence", silence=tuesdays))
    # open 07:00 (outside: told) and 08:00; closed 09:00 (inside: muted) … 12:00; open 13:00
    for hour, is_open in [(7, 1), (8, 1), (9, 0), (10, 0), (11, 0), (12, 0), (13, 1), (14, 0)]:
        w.sample(bypass(TUE + hour * H, is_open))
    assert w.alerts() == [
        ("condition_met_no_wait", "firing", TUE + 7 * H, True, []),
        ("clear_condition_met", "resolved", TUE + 9 * H, False, ["tue-morning"]),
        # 12:00: the window is over; people, told it opened, now hear it closed
        ("suppression_ended", "resolved", TUE + 12 * H, True, []),
        ("condition_met_no_wait", "firing", TUE + 13 * H, True, []),
        ("clear_condition_met", "resolved", TUE + 14 * H, True, []),
    ]
    # the following Tuesday 09:00 is inside again, the Wednesday after it is not
    w.sample(bypass(TUE + 7 * 24 * H + 9 * H, 1))
    w.sample(bypass(TUE + 8 * 24 * H + 9 * H, 1))
    assert w.alerts()[5:] == [
        ("condition_met_no_wait", "firing", TUE + 7 * 24 * H + 9 * H, False, ["tue-morning"]),
        # 12:00 that Tuesday has no data; the next data (Wednesday 09:00) tells the firing
        ("suppression_ended", "firing", TUE + 8 * 24 * H + 9 * H, True, []),
    ]


def test_a_maintenance_window_keeps_an_exceedance_from_being_notified(view: CatalogView) -> None:
    w = Worker(view, default_rules())
    w.sample(bypass(TUE + 8 * H, 0))
    station = command("maintenance_start", source="aq-wf-01", ends_at=TUE + 12 * H)
    other = command(
        "maintenance_start",
        source=BYPASS,
        ends_at=TUE + 12 * H,
        role="enterprise",
        enterprise="e-wf-01",
    )
    own = command(
        "maintenance_start",
        source=BYPASS,
        ends_at=TUE + 12 * H,
        role="enterprise",
        enterprise="e-wf-02",
        note="旁路阀检修",
    )
    for c in (station, other, own):
        w.command(c)
    window = maintenance_id(BYPASS, own.id)
    assert [(r.status, r.reason, r.at) for r in w.results] == [
        ("refused", Refusal.NOT_OUTLET_OR_MONITOR, TUE + 8 * H),
        ("refused", Refusal.OTHER_ENTERPRISE, TUE + 8 * H),
        ("applied", None, TUE + 8 * H),
    ]
    assert [(s.id, s.starts_at, s.ends_at) for s in w.results[-1].silences] == [
        (window, TUE + 8 * H, TUE + 12 * H)
    ]
    for hour in (9, 10, 11, 12):
        w.sample(bypass(TUE + hour * H, 1))
    assert w.alerts() == [
        ("condition_met_no_wait", "firing", TUE + 9 * H, False, [window]),
        ("suppression_ended", "firing", TUE + 12 * H, True, []),
    ]
    assert w.events[0]["suppressed"] == ["maintenance"]
    # the alert's history (engine state) shows the window too
    assert w.state is not None
    history = w.state.engine.alerts[w.events[0]["fingerprint"]].history
    assert [(h.reason.value, h.suppressed_by) for h in history] == [
        ("condition_met_no_wait", (window,)),
        ("suppression_ended", ()),
    ]


def test_a_bad_command_is_a_dead_letter_and_the_stage_goes_on(view: CatalogView) -> None:
    w = Worker(view, default_rules())
    w.sample(bypass(TUE + 9 * H, 1))
    good_key, good = encode_command(command("ack", fingerprint=w.events[0]["fingerprint"]))
    bad_point = orjson.loads(good)[0]
    bad_point["fields"] = {"command": '{"id": "x", "action": "reboot"}'}
    not_json = {**bad_point, "fields": {"command": "{not json"}}
    # one record: an invalid command, a valid one, an undecodable one
    w.aggregate(good_key, orjson.dumps([bad_point, orjson.loads(good)[0], not_json]), 0)
    assert len(w.dead) == 2
    assert all(d["reason"].startswith("invalid command:") for d in w.dead)
    assert [r.status for r in w.results] == ["applied"]
    w.sample(bypass(TUE + 10 * H, 0))
    assert [r for r, *_ in w.alerts()] == [
        "condition_met_no_wait",
        "acknowledged",
        "clear_condition_met",
    ]


def test_a_replay_gives_the_same_records_and_a_repeated_command_nothing(
    view: CatalogView,
) -> None:
    fp_probe = Worker(view, escalating_rules())
    fp_probe.sample(bypass(TUE + 9 * H, 1))
    fp = fp_probe.events[0]["fingerprint"]
    script: list[tuple[str, Any]] = [
        ("sample", bypass(TUE + 9 * H, 1)),
        ("command", command("assign", fingerprint=fp, assignee="李四")),
        ("command", command("assign", fingerprint=fp, assignee="王五")),
        ("sample", bypass(TUE + 10 * H, 1)),
        ("command", command("ack", fingerprint=fp)),
        ("sample", bypass(TUE + 11 * H, 0)),
    ]
    runs = []
    for _ in range(2):
        w = Worker(view, escalating_rules())
        feed(w, script)
        runs.append(w.sent)
    assert runs[0] == runs[1]
    w2 = Worker(view, escalating_rules())
    feed(w2, script)
    assert [(r, at) for r, _s, at, _n, _b in w2.alerts()] == [
        ("condition_met_no_wait", TUE + 9 * H),
        ("assigned", TUE + 9 * H),
        ("assigned", TUE + 9 * H + timedelta(milliseconds=1)),
        ("escalated", TUE + 9.5 * H),
        ("escalated", TUE + 10 * H),
        ("acknowledged", TUE + 10 * H),
        ("clear_condition_met", TUE + 11 * H),
    ]
    # the API retried the ack (same id): nothing more is applied or sent
    before = len(w2.sent)
    w2.command(script[4][1])
    assert len(w2.sent) == before


def test_the_wire_form_of_a_command() -> None:
    from streams.commands import decode_command, decode_result, encode_result
    from streams.wire import point_id

    c = command("ack", fingerprint="0123456789abcdef", note="收到")
    key, value = encode_command(c)
    assert key == b"weifang"
    [point] = orjson.loads(value)
    assert point["measurement"] == "command"
    assert point["tags"] == {"locality": "weifang"}
    assert point["time"] == ISSUED.isoformat()
    assert point_id(point) == "command|locality=weifang|2026-12-05T01:00:00+00:00"
    assert Command.model_validate_json(point["fields"]["command"]) == c
    assert decode_command(value) == c
    result = CommandResult(command=c, status="refused", reason=Refusal.UNKNOWN_ALERT, at=TUE)
    rkey, rvalue = encode_result(result)
    assert rkey == b"weifang"
    assert decode_result(rvalue) == result
    assert orjson.loads(rvalue)["reason"] == "unknown_alert"
