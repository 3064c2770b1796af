"""The alerts API over real HTTP (uvicorn on a free loopback port) with a view fed directly (no
Kafka) and a stand-in of the locality stage that answers each command: every endpoint × role
isolation, 401/404/403/413/422/429, silences and maintenance scoped per role, readiness, metrics.
Expected values are written from the scenario below."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn

from alerts.commands import Command, CommandResult, Refusal
from alerts.model import (
    AlertState,
    Reason,
    Severity,
    Transition,
    TransitionKind,
    fingerprint,
    transition_id,
)
from alerts.notification import Notification, NotificationKind, NotificationStatus, Texts
from alerts.silences import Silence
from streams.api.app import Context, Source, create_app
from streams.api.auth import Auth, Principal, PrincipalsError, Role, load_principals
from streams.api.settings import ApiSettings
from streams.api.view import View

T0 = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)
TOKENS = {
    "duty-wf": "tok-duty-weifang-0123456789",
    "duty-all": "tok-duty-all-0123456789",
    "e1": "tok-e-wf-001-0123456789",
    "e2": "tok-e-wf-002-0123456789",
    "emergency": "tok-emergency-0123456789",
    "admin": "tok-admin-0123456789",
}
PRINCIPALS = {
    TOKENS["duty-wf"]: Principal("duty-wf", Role.DUTY, locality="weifang"),
    TOKENS["duty-all"]: Principal("duty-all", Role.DUTY),
    TOKENS["e1"]: Principal("e-wf-001", Role.ENTERPRISE, enterprise="e-wf-001"),
    TOKENS["e2"]: Principal("e-wf-002", Role.ENTERPRISE, enterprise="e-wf-002"),
    TOKENS["emergency"]: Principal("emergency", Role.EMERGENCY),
    TOKENS["admin"]: Principal("admin", Role.ADMIN),
}
SOURCES = {
    "e-wf-001:outlet-1": Source("e-wf-001:outlet-1", "weifang", "e-wf-001", "outlet"),
    "e-wf-002:outlet-1": Source("e-wf-002:outlet-1", "weifang", "e-wf-002", "outlet"),
    "e-zb-001:outlet-1": Source("e-zb-001:outlet-1", "zibo", "e-zb-001", "outlet"),
    "ws-wf-01": Source("ws-wf-01", "weifang", None, "station"),
}


def tr(
    *,
    rule: str,
    source: str,
    factor: str,
    locality: str,
    enterprise: str | None,
    state: AlertState,
    reason: Reason,
    at: datetime,
    previous: AlertState | None = None,
    kind: TransitionKind = TransitionKind.ALERT,
    severity: Severity = Severity.CRITICAL,
    actor: str | None = None,
    note: str | None = None,
    summary: str = "",
) -> Transition:
    labels = {"rule": rule, "rule_kind": rule, "source": source, "factor": factor}
    labels["locality"] = locality
    if enterprise:
        labels["enterprise"] = enterprise
    fp = fingerprint(labels)
    return Transition(
        id=transition_id(fp, state, reason, at),
        kind=kind,
        fingerprint=fp,
        labels=labels,
        annotations={"summary": summary, "summary_en": summary + " (en)", "source_name": source},
        state=state,
        previous_state=previous,
        reason=reason,
        at=at,
        severity=severity,
        locality=locality,
        source=source,
        actor=actor,
        note=note,
    )


def fired(source: str, locality: str, enterprise: str | None, **kw: object) -> Transition:
    return tr(
        rule=str(kw.pop("rule", "permit_exceedance")),
        source=source,
        factor=str(kw.pop("factor", "nox")),
        locality=locality,
        enterprise=enterprise,
        state=AlertState.FIRING,
        reason=Reason.CONDITION_MET_NO_WAIT,
        at=kw.pop("at", T0),  # type: ignore[arg-type]
        summary=f"{source} 超标",
        **kw,  # type: ignore[arg-type]
    )


A = fired("e-wf-001:outlet-1", "weifang", "e-wf-001")
B = fired("e-wf-002:outlet-1", "weifang", "e-wf-002", at=T0 + timedelta(minutes=5))
Z = fired("e-zb-001:outlet-1", "zibo", "e-zb-001")
AIR = fired(
    "ws-wf-01",
    "weifang",
    None,
    rule="ambient_exceedance",
    factor="pm25",
    severity=Severity.WARNING,
    at=T0 + timedelta(minutes=10),
)
OLD = tr(  # resolved yesterday: listed only with state=resolved / all
    rule="permit_exceedance",
    source="e-wf-001:outlet-1",
    factor="so2",
    locality="weifang",
    enterprise="e-wf-001",
    state=AlertState.RESOLVED,
    reason=Reason.CLEAR_CONDITION_MET,
    previous=AlertState.FIRING,
    at=T0 - timedelta(hours=3),
)
WARN = tr(
    rule="heavy_pollution_warning",
    source="weifang",
    factor="aqi",
    locality="weifang",
    enterprise=None,
    state=AlertState.FIRING,
    reason=Reason.WARNING_ISSUED,
    at=T0,
    kind=TransitionKind.WARNING,
)


@dataclass
class Stage:
    """Stand-in of the locality stage: records the commands and answers each one, applying an
    ack/assign/resolve as the engine would (one transition) and keeping silences per locality."""

    view: View
    answer: bool = True
    sent: list[Command] = field(default_factory=list)

    async def send(self, cmd: Command) -> None:
        self.sent.append(cmd)
        if not self.answer:
            return
        asyncio.get_running_loop().call_later(0.05, self._apply, cmd)

    def _apply(self, cmd: Command) -> None:
        held = list(self.view.silences.get(cmd.locality, ()))
        at = T0 + timedelta(hours=1)
        tids: tuple[str, ...] = ()
        if cmd.fingerprint:
            r = self.view.alerts[cmd.fingerprint]
            if cmd.action == "resolve" and r.labels.get("rule") == "permit_exceedance":
                self._result(cmd, held, Refusal.MANUAL_RESOLVE_NOT_ALLOWED)
                return
            reason = {
                "ack": Reason.ACKNOWLEDGED,
                "assign": Reason.ASSIGNED,
                "unassign": Reason.UNASSIGNED,
                "resolve": Reason.MANUALLY_RESOLVED,
                "unack": Reason.UNACKNOWLEDGED,
            }[cmd.action]
            state = AlertState.RESOLVED if cmd.action == "resolve" else AlertState(r.state)
            fp = cmd.fingerprint
            t = Transition(
                id=transition_id(fp, state, reason, at),
                kind=TransitionKind.ALERT,
                fingerprint=fp,
                labels=r.labels,
                annotations=r.annotations,
                state=state,
                previous_state=AlertState(r.state),
                reason=reason,
                at=at,
                severity=Severity(r.severity),
                locality=r.locality,
                source=r.source,
                actor=cmd.actor,
                note=cmd.note or (f"assigned to {cmd.assignee}" if cmd.assignee else None),
            )
            self.view.apply_transition(t)
            tids = (t.id,)
        elif cmd.action == "silence" and cmd.silence is not None:
            held.append(cmd.silence)
        elif cmd.action == "maintenance_start":
            from alerts.commands import maintenance_silence

            held.append(maintenance_silence(cmd, at))
        elif cmd.action in ("unsilence", "maintenance_end"):
            held = [s for s in held if s.id != cmd.silence_id]
        self._result(cmd, held, None, tids)

    def _result(
        self, cmd: Command, held: list[Silence], reason: Refusal | None, tids: tuple[str, ...] = ()
    ) -> None:
        self.view.apply_result(
            CommandResult(
                command=cmd,
                status="refused" if reason else "applied",
                reason=reason,
                at=T0 + timedelta(hours=1),
                transitions=tids,
                silences=tuple(held),
            )
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    url: str
    view: View
    stage: Stage
    ctx: Context

    def get(self, path: str, who: str | None, **params: object) -> httpx.Response:
        return httpx.get(self.url + path, headers=_auth(who), params=params, timeout=10)  # type: ignore[arg-type]

    def post(self, path: str, who: str | None, body: object) -> httpx.Response:
        return httpx.post(self.url + path, headers=_auth(who), json=body, timeout=10)

    def delete(self, path: str, who: str | None) -> httpx.Response:
        return httpx.delete(self.url + path, headers=_auth(who), timeout=10)


def _auth(who: str | None) -> dict[str, str]:
    return {} if who is None else {"Authorization": f"Bearer {TOKENS.get(who, who)}"}


def serve(settings: ApiSettings, *, answer: bool = True) -> Iterator[Served]:
    view = View(timedelta(hours=48))
    for t in (OLD, A, B, Z, AIR, WARN):
        view.apply_transition(t)
    view.apply_notification(_note(A, "enterprise-e-wf-001"))
    view.apply_notification(_note(A, "duty-weifang"))
    view.ready = True
    stage = Stage(view, answer=answer)
    ctx = Context(
        settings=settings,
        view=view,
        auth=Auth.from_tokens(PRINCIPALS),
        sender=stage,
        sources=SOURCES,
        localities=("weifang", "zibo"),
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(ctx), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield Served(f"http://127.0.0.1:{port}", view, stage, ctx)
    finally:
        server.should_exit = True
        thread.join(10)


def _note(t: Transition, receiver: str) -> Notification:
    return Notification(
        id=(t.fingerprint + receiver + "0" * 16)[:32],
        receiver=receiver,
        kind=NotificationKind.ALERT,
        status=NotificationStatus.FIRING,
        state=t.state.value,
        fingerprint=t.fingerprint,
        labels=dict(t.labels),
        at=t.at,
        starts_at=t.at,
        texts=Texts(zh="x", en="x"),
    )


@pytest.fixture
def api() -> Iterator[Served]:
    yield from serve(ApiSettings(command_wait=2.0, rate_burst=100))


def ids(r: httpx.Response) -> set[str]:
    assert r.status_code == 200, r.text
    return {a["id"] for a in r.json()["items"]}


# ----------------------------------------------------------------------------- authentication


def test_no_token_or_a_wrong_one_is_401_with_bearer_challenge(api: Served) -> None:
    for who in (None, "not-a-token"):
        r = api.get("/api/v1/alerts", who)
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "Bearer"
    r = httpx.get(api.url + "/api/v1/alerts", headers={"Authorization": "Basic " + TOKENS["admin"]})
    assert r.status_code == 401
    r = api.post(f"/api/v1/alerts/{A.fingerprint}/ack", "wrong", {"note": ""})
    assert r.status_code == 401
    assert api.stage.sent == []


# ----------------------------------------------------------------------------- isolation


def test_each_role_lists_only_what_it_may_see(api: Served) -> None:
    assert ids(api.get("/api/v1/alerts", "admin")) == {
        A.fingerprint,
        B.fingerprint,
        Z.fingerprint,
        AIR.fingerprint,
    }
    assert ids(api.get("/api/v1/alerts", "duty-all")) == {
        A.fingerprint,
        B.fingerprint,
        Z.fingerprint,
        AIR.fingerprint,
    }
    assert ids(api.get("/api/v1/alerts", "duty-wf")) == {
        A.fingerprint,
        B.fingerprint,
        AIR.fingerprint,
    }
    r = api.get("/api/v1/alerts", "e1")
    assert ids(r) == {A.fingerprint}
    assert r.json()["count"] == 1
    assert ids(api.get("/api/v1/alerts", "e2")) == {B.fingerprint}
    assert ids(api.get("/api/v1/alerts", "emergency")) == set()
    # even with filters naming another's source or state=all an enterprise sees only its own
    assert ids(api.get("/api/v1/alerts", "e1", source="e-wf-002:outlet-1")) == set()
    assert ids(api.get("/api/v1/alerts", "e1", state="all")) == {A.fingerprint, OLD.fingerprint}


def test_an_enterprise_enumerating_other_ids_learns_nothing(api: Served) -> None:
    missing = "0123456789abcdef"
    answers = [
        api.get(f"/api/v1/alerts/{x}", "e1")
        for x in (B.fingerprint, Z.fingerprint, AIR.fingerprint, WARN.fingerprint, missing)
    ]
    assert {r.status_code for r in answers} == {404}
    assert {r.content for r in answers} == {b'{"detail":"not found"}'}
    acts = [
        api.post(f"/api/v1/alerts/{x}/ack", "e1", {"note": "x"}) for x in (B.fingerprint, missing)
    ]
    assert [r.status_code for r in acts] == [404, 404]
    assert acts[0].content == acts[1].content
    assert api.stage.sent == []
    own = api.get(f"/api/v1/alerts/{A.fingerprint}", "e1")
    assert own.status_code == 200
    assert own.json()["enterprise"] == "e-wf-001"


def test_receivers_told_an_enterprise_sees_only_its_own(api: Served) -> None:
    assert api.get(f"/api/v1/alerts/{A.fingerprint}", "e1").json()["receivers"] == [
        "enterprise-e-wf-001"
    ]
    assert api.get(f"/api/v1/alerts/{A.fingerprint}", "duty-wf").json()["receivers"] == [
        "duty-weifang",
        "enterprise-e-wf-001",
    ]


def test_duty_of_a_locality_does_not_see_another(api: Served) -> None:
    assert api.get(f"/api/v1/alerts/{Z.fingerprint}", "duty-wf").status_code == 404
    assert api.get(f"/api/v1/alerts/{Z.fingerprint}", "duty-all").status_code == 200


def test_emergency_sees_the_water_emergencies_routed_to_it_only() -> None:
    """A sudden change at a section (category water_emergency) is read by the emergency
    responders who were told of it; an outlet's alert is not."""
    from streams.api.view import AlertRecord, visible

    def record(category: str) -> AlertRecord:
        return AlertRecord(
            fingerprint="f",
            kind="alert",
            labels={"category": category, "locality": "weifang"},
            annotations={},
            state="firing",
            since=T0,
            severity="critical",
            locality="weifang",
            source="ws-wf-01",
        )

    emergency = Principal("emergency", Role.EMERGENCY)
    assert visible(emergency, record("water_emergency"))
    assert not visible(emergency, record("emission"))


def test_emergency_sees_warnings_not_alerts(api: Served) -> None:
    assert ids(api.get("/api/v1/warnings", "emergency")) == {WARN.fingerprint}
    assert ids(api.get("/api/v1/warnings", "admin")) == {WARN.fingerprint}
    assert ids(api.get("/api/v1/warnings", "e1")) == set()
    assert api.get(f"/api/v1/alerts/{WARN.fingerprint}", "emergency").status_code == 200
    assert api.get(f"/api/v1/alerts/{A.fingerprint}", "emergency").status_code == 404
    r = api.post(f"/api/v1/alerts/{WARN.fingerprint}/ack", "emergency", {"note": ""})
    assert r.status_code == 403


# ----------------------------------------------------------------------------- filters, detail


def test_filters(api: Served) -> None:
    assert ids(api.get("/api/v1/alerts", "admin", state="resolved")) == {OLD.fingerprint}
    assert ids(api.get("/api/v1/alerts", "admin", locality="zibo")) == {Z.fingerprint}
    assert ids(api.get("/api/v1/alerts", "admin", source="ws-wf-01")) == {AIR.fingerprint}
    assert ids(api.get("/api/v1/alerts", "admin", rule="ambient_exceedance")) == {AIR.fingerprint}
    assert ids(api.get("/api/v1/alerts", "admin", severity="warning")) == {AIR.fingerprint}
    since = (T0 + timedelta(minutes=5)).isoformat()
    assert ids(api.get("/api/v1/alerts", "admin", since=since)) == {B.fingerprint, AIR.fingerprint}


def test_detail_fields_and_history(api: Served) -> None:
    r = api.get(f"/api/v1/alerts/{A.fingerprint}", "duty-wf")
    a = r.json()
    assert a["rule"] == "permit_exceedance"
    assert a["source"] == "e-wf-001:outlet-1"
    assert a["state"] == "firing"
    assert a["summary"] == "e-wf-001:outlet-1 超标"
    assert a["fired_at"] == "2026-12-03T01:00:00Z"
    assert a["acknowledged"] is False
    assert a["url"] == f"/console/alerts/{A.fingerprint}"
    assert [h["reason"] for h in a["history"]] == ["condition_met_no_wait"]


# ----------------------------------------------------------------------------- commands


def test_ack_becomes_a_command_and_the_view_shows_it(api: Served) -> None:
    r = api.post(f"/api/v1/alerts/{A.fingerprint}/ack", "duty-wf", {"note": "在处理"})
    assert r.status_code == 202
    body = r.json()
    assert body["status"] == "applied"
    [cmd] = api.stage.sent
    assert (cmd.action, cmd.locality, cmd.actor, cmd.role, cmd.fingerprint, cmd.note) == (
        "ack",
        "weifang",
        "duty-wf",
        "duty",
        A.fingerprint,
        "在处理",
    )
    assert body["command"] == cmd.id
    a = api.get(f"/api/v1/alerts/{A.fingerprint}", "e1").json()
    assert (a["acknowledged"], a["acknowledged_by"], a["ack_note"]) == (True, "duty-wf", "在处理")
    assert [h["reason"] for h in a["history"]] == ["condition_met_no_wait", "acknowledged"]
    c = api.get(f"/api/v1/commands/{cmd.id}", "duty-wf")
    assert c.status_code == 200
    assert c.json()["status"] == "applied"
    # another principal's command is a 404 like a missing one
    assert api.get(f"/api/v1/commands/{cmd.id}", "e1").status_code == 404


def test_assign_refused_resolve_and_enterprise_on_its_own(api: Served) -> None:
    r = api.post(f"/api/v1/alerts/{A.fingerprint}/assign", "e1", {"assignee": "张工"})
    assert (r.status_code, r.json()["status"]) == (202, "applied")
    assert api.get(f"/api/v1/alerts/{A.fingerprint}", "e1").json()["assignee"] == "张工"
    assert api.stage.sent[-1].enterprise == "e-wf-001"
    r = api.post(f"/api/v1/alerts/{A.fingerprint}/resolve", "admin", {"note": ""})
    assert r.json() == {
        "command": api.stage.sent[-1].id,
        "status": "refused",
        "reason": "manual_resolve_not_allowed",
        "detail": "",
        "commands": [api.stage.sent[-1].id],
        "silence": None,
    }
    r = api.post(f"/api/v1/alerts/{AIR.fingerprint}/unassign", "duty-wf", None)
    assert r.status_code == 202


def test_pending_when_the_stage_does_not_answer() -> None:
    for served in serve(ApiSettings(command_wait=0.2), answer=False):
        r = served.post(f"/api/v1/alerts/{A.fingerprint}/ack", "admin", {"note": ""})
        assert (r.status_code, r.json()["status"]) == (202, "pending")
        cid = r.json()["command"]
        assert served.get(f"/api/v1/commands/{cid}", "admin").status_code == 404


def test_silence_scopes(api: Served) -> None:
    one_day = {"ends_at": (datetime.now(UTC) + timedelta(days=1)).isoformat()}
    m = {"name": "rule", "op": "=", "value": "permit_exceedance"}
    r = api.post("/api/v1/silences", "duty-wf", {"matchers": [m], **one_day})
    assert (r.status_code, r.json()["status"]) == (202, "applied")
    cmd = api.stage.sent[-1]
    assert cmd.locality == "weifang"
    assert cmd.silence is not None
    assert {(x.name, x.value) for x in cmd.silence.matchers} == {
        ("rule", "permit_exceedance"),
        ("locality", "weifang"),
    }
    other = {"name": "locality", "op": "=", "value": "zibo"}
    assert (
        api.post("/api/v1/silences", "duty-wf", {"matchers": [other], **one_day}).status_code == 403
    )
    # enterprise: its own id is forced
    r = api.post("/api/v1/silences", "e1", {"matchers": [m], **one_day})
    assert r.status_code == 202
    assert {(x.name, x.value) for x in api.stage.sent[-1].silence.matchers} == {  # type: ignore[union-attr]
        ("rule", "permit_exceedance"),
        ("enterprise", "e-wf-001"),
    }
    bad = {"name": "enterprise", "op": "=", "value": "e-wf-002"}
    assert api.post("/api/v1/silences", "e1", {"matchers": [bad], **one_day}).status_code == 403
    assert (
        api.post("/api/v1/silences", "emergency", {"matchers": [m], **one_day}).status_code == 403
    )
    # admin without a locality matcher: one command per locality
    n = len(api.stage.sent)
    r = api.post("/api/v1/silences", "admin", {"matchers": [m], **one_day})
    assert r.status_code == 202
    assert sorted(c.locality for c in api.stage.sent[n:]) == ["weifang", "zibo"]
    assert len(r.json()["commands"]) == 2
    # listing: e1 sees only its own silence, duty-wf weifang's, admin all
    e1 = api.get("/api/v1/silences", "e1").json()["items"]
    assert [s["created_by"] for s in e1] == ["e-wf-001"]
    assert api.get("/api/v1/silences", "e2").json()["items"] == []
    assert len(api.get("/api/v1/silences", "duty-wf").json()["items"]) == 3
    assert len(api.get("/api/v1/silences", "admin").json()["items"]) == 4
    # delete: e2 cannot see e1's silence (404); e1 can end it
    sid = e1[0]["id"]
    assert api.delete(f"/api/v1/silences/{sid}", "e2").status_code == 404
    r = api.delete(f"/api/v1/silences/{sid}", "e1")
    assert (r.status_code, r.json()["status"]) == (202, "applied")
    assert api.get("/api/v1/silences", "e1").json()["items"] == []


def test_maintenance_scopes(api: Served) -> None:
    body = {
        "source": "e-wf-001:outlet-1",
        "ends_at": (T0 + timedelta(hours=4)).isoformat(),
        "note": "换滤袋",
    }
    r = api.post("/api/v1/maintenance", "e1", body)
    assert (r.status_code, r.json()["status"]) == (202, "applied")
    wid = r.json()["silence"]
    assert wid.startswith("maint-e-wf-001:outlet-1-")
    cmd = api.stage.sent[-1]
    assert (cmd.action, cmd.locality, cmd.source) == (
        "maintenance_start",
        "weifang",
        "e-wf-001:outlet-1",
    )
    # another's outlet, an unknown source, a station: the same 404
    for src in ("e-wf-002:outlet-1", "nope", "ws-wf-01"):
        r = api.post("/api/v1/maintenance", "e1", {**body, "source": src})
        assert (r.status_code, r.content) == (404, b'{"detail":"not found"}')
    assert (
        api.post(
            "/api/v1/maintenance", "duty-wf", {**body, "source": "e-zb-001:outlet-1"}
        ).status_code
        == 404
    )
    assert (
        api.post(
            "/api/v1/maintenance", "duty-wf", {**body, "source": "e-wf-002:outlet-1"}
        ).status_code
        == 202
    )
    items = api.get("/api/v1/silences", "e1").json()["items"]
    assert [(s["id"], s["maintenance"]) for s in items] == [(wid, True)]
    assert api.delete(f"/api/v1/maintenance/{wid}", "e2").status_code == 404
    assert api.delete(f"/api/v1/maintenance/{wid}", "e1").json()["status"] == "applied"


# ----------------------------------------------------------------------------- limits


def test_size_limits() -> None:
    for served in serve(ApiSettings(max_body=2048, command_wait=1.0)):
        big = {"note": "x" * 5000}
        r = served.post(f"/api/v1/alerts/{A.fingerprint}/ack", "admin", big)
        assert r.status_code == 413
        r = httpx.post(  # chunked, no Content-Length: counted while read
            served.url + f"/api/v1/alerts/{A.fingerprint}/ack",
            headers=_auth("admin") | {"Content-Type": "application/json"},
            content=iter([b'{"note": "', b"y" * 3000, b'"}']),
        )
        assert r.status_code == 413
        r = served.post(f"/api/v1/alerts/{A.fingerprint}/ack", "admin", {"note": "z" * 2001})
        assert r.status_code == 422  # under 2 KiB, over the 2,000-character note
        assert served.stage.sent == []
    for served in serve(ApiSettings(command_wait=1.0)):
        r = served.post(f"/api/v1/alerts/{A.fingerprint}/ack", "admin", {"note": "z" * 2001})
        assert r.status_code == 422
        r = served.post(f"/api/v1/alerts/{A.fingerprint}/ack", "admin", {"note": "z" * 2000})
        assert r.status_code == 202


def test_rate_limit_per_principal() -> None:
    for served in serve(ApiSettings(rate_burst=3, rate_per_minute=6, command_wait=0.5)):
        codes = [
            served.post(f"/api/v1/alerts/{A.fingerprint}/ack", "duty-wf", {"note": ""}).status_code
            for _ in range(4)
        ]
        assert codes == [202, 202, 202, 429]
        r = served.post(f"/api/v1/alerts/{A.fingerprint}/ack", "duty-wf", {"note": ""})
        assert r.status_code == 429
        assert 1 <= int(r.headers["retry-after"]) <= 10  # 6/min: one token every 10 s
        # another principal has its own bucket
        assert served.post(f"/api/v1/alerts/{A.fingerprint}/ack", "admin", {}).status_code == 202
        assert len(served.stage.sent) == 4


# ----------------------------------------------------------------------------- ops endpoints


def test_health_readiness_metrics_openapi(api: Served) -> None:
    assert httpx.get(api.url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(api.url + "/readyz").status_code == 200
    api.view.ready = False
    assert httpx.get(api.url + "/readyz").status_code == 503
    api.view.ready = True
    api.get("/api/v1/alerts", None)
    text = httpx.get(api.url + "/metrics").text
    assert "envwatch_api_ready 1\n" in text
    assert 'envwatch_api_alerts{state="firing"} 4\n' in text
    assert 'envwatch_api_alerts{state="resolved"} 1\n' in text
    assert "envwatch_api_unauthorized_total 1\n" in text
    assert TOKENS["admin"] not in text
    spec = httpx.get(api.url + "/openapi.json").json()
    assert "/api/v1/alerts/{alert_id}/ack" in spec["paths"]
    assert httpx.get(api.url + "/docs").status_code == 200


# ----------------------------------------------------------------------------- view


def test_view_folds_idempotently_and_forgets_old_resolved_alerts() -> None:
    v = View(timedelta(hours=48))
    for t in (A, A, B):
        v.apply_transition(t)
    assert len(v.alerts[A.fingerprint].history) == 1
    res = tr(
        rule="permit_exceedance",
        source="e-wf-001:outlet-1",
        factor="nox",
        locality="weifang",
        enterprise="e-wf-001",
        state=AlertState.RESOLVED,
        reason=Reason.CLEAR_CONDITION_MET,
        previous=AlertState.FIRING,
        at=T0 + timedelta(hours=1),
    )
    v.apply_transition(res)
    assert v.alerts[A.fingerprint].resolved_at == T0 + timedelta(hours=1)
    later = fired("e-wf-002:outlet-1", "weifang", "e-wf-002", at=T0 + timedelta(hours=50))
    v.apply_transition(later)
    assert A.fingerprint not in v.alerts  # resolved 49 h before the newest event
    assert B.fingerprint in v.alerts


# ----------------------------------------------------------------------------- principals file


def test_principals_file_by_reference(tmp_path: Path) -> None:
    (tmp_path / "e1.token").write_text("file-token-0123456789\n")
    f = tmp_path / "principals.yaml"
    f.write_text(
        "principals:\n"
        "  - {name: wf, role: duty, locality: weifang, token: {env: WF_TOKEN}}\n"
        "  - {name: e1, role: enterprise, enterprise: e-wf-001, token: {file: e1.token}}\n"
    )
    auth = load_principals(f, {"WF_TOKEN": "env-token-0123456789"})
    wf = auth.authenticate("env-token-0123456789")
    e1 = auth.authenticate("file-token-0123456789")
    assert wf == Principal("wf", Role.DUTY, locality="weifang")
    assert e1 == Principal("e1", Role.ENTERPRISE, enterprise="e-wf-001")
    assert auth.authenticate("env-token-012345678") is None
    assert auth.authenticate("") is None


def test_an_inline_token_is_refused_naming_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "principals.yaml"
    f.write_text(
        "principals:\n"
        "  - {name: wf, role: duty, token: {env: WF_TOKEN}}\n"
        "  - name: admin\n"
        "    role: admin\n"
        "    token: s3cret-inline-token\n"
    )
    with pytest.raises(PrincipalsError) as err:
        load_principals(f, {"WF_TOKEN": "x" * 20})
    assert str(err.value).startswith(f"{f}:5: inline token")
    assert "s3cret-inline-token" not in str(err.value)


def test_missing_env_reference_is_an_error(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text("principals:\n  - {name: a, role: admin, token: {env: NOPE_TOKEN}}\n")
    with pytest.raises(PrincipalsError, match="NOPE_TOKEN is not set"):
        load_principals(f, {})


def test_envwatch_api_refuses_an_inline_token_before_listening(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from streams.cli import app

    f = tmp_path / "principals.yaml"
    f.write_text("principals:\n  - {name: a, role: admin, token: inline-secret-0123}\n")
    result = CliRunner().invoke(app, ["api", "--principals", str(f), "--port", "0"])
    assert result.exit_code == 2
    assert f"{f}:2: inline token" in result.output
    assert "inline-secret-0123" not in result.output
