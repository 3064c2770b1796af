"""The alerts API app (``streams.api.app.create_app``) as the console's tests use it: the view fed
directly with three Weifang alerts (two enterprises' permit exceedances and an ambient one), the
principals of :data:`TOKENS`, and a stand-in of the locality stage as the command sender that
applies each command at once as the engine would (one transition with actor and note; silences and
maintenance windows per locality; a manual resolve of a permit exceedance refused, as the engine
refuses it). Expected values in the tests are written from this scenario."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI

from alerts.commands import Command, CommandResult, Refusal, maintenance_silence
from alerts.model import (
    AlertState,
    Reason,
    Severity,
    Transition,
    TransitionKind,
    fingerprint,
    transition_id,
)
from alerts.silences import Silence
from streams.api.app import Context, Source, create_app
from streams.api.auth import Auth, Principal, Role
from streams.api.settings import ApiSettings
from streams.api.view import View

T0 = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)  # 09:00 Beijing

TOKENS = {
    "duty": "duty-token-0123456789",
    "enterprise:e-wf-001": "ent-wf-001-token-0123456789",
    "enterprise:e-wf-002": "ent-wf-002-token-0123456789",
    "emergency": "emergency-token-0123456789",
}
PRINCIPALS = {
    TOKENS["duty"]: Principal("值班员王", Role.DUTY, locality="weifang"),
    TOKENS["enterprise:e-wf-001"]: Principal("e-wf-001", Role.ENTERPRISE, enterprise="e-wf-001"),
    TOKENS["enterprise:e-wf-002"]: Principal("e-wf-002", Role.ENTERPRISE, enterprise="e-wf-002"),
    TOKENS["emergency"]: Principal("应急办", Role.EMERGENCY),
}
SOURCES = {
    "e-wf-001:outlet-1": Source("e-wf-001:outlet-1", "weifang", "e-wf-001", "outlet"),
    "e-wf-002:outlet-1": Source("e-wf-002:outlet-1", "weifang", "e-wf-002", "outlet"),
    "ws-wf-01": Source("ws-wf-01", "weifang", None, "station"),
}


def fired(
    *,
    rule: str,
    source: str,
    factor: str,
    enterprise: str | None,
    summary: str,
    severity: Severity = Severity.CRITICAL,
    period: str = "",
) -> Transition:
    labels = {"rule": rule, "rule_kind": rule, "source": source, "factor": factor}
    labels["locality"] = "weifang"
    if enterprise:
        labels["enterprise"] = enterprise
    if period:
        labels["period"] = period
    fp = fingerprint(labels)
    return Transition(
        id=transition_id(fp, AlertState.FIRING, Reason.FOR_ELAPSED, T0),
        kind=TransitionKind.ALERT,
        fingerprint=fp,
        labels=labels,
        annotations={"summary": summary, "source_name": source},
        state=AlertState.FIRING,
        previous_state=AlertState.PENDING,
        reason=Reason.FOR_ELAPSED,
        at=T0,
        severity=severity,
        locality="weifang",
        source=source,
    )


A = fired(
    rule="permit_exceedance",
    source="e-wf-001:outlet-1",
    factor="nox",
    enterprise="e-wf-001",
    summary="潍坊示例化工 1号排口 氮氧化物小时均值 132 mg/m³ 超标",
)
B = fired(
    rule="permit_exceedance",
    source="e-wf-002:outlet-1",
    factor="so2",
    enterprise="e-wf-002",
    summary="潍坊示例热电 1号排口 二氧化硫小时均值 61 mg/m³ 超标",
)
AIR = fired(
    rule="ambient_exceedance",
    source="ws-wf-01",
    factor="pm25",
    enterprise=None,
    summary="潍坊市 站点 PM2.5 24 小时平均 118 µg/m³ 超标",
    severity=Severity.WARNING,
    period="24h",
)
ALERT_A = {"id": A.fingerprint, "summary": A.annotations["summary"]}
ALERT_B = {"id": B.fingerprint, "summary": B.annotations["summary"]}
ALERT_AIR = {"id": AIR.fingerprint, "summary": AIR.annotations["summary"]}

_REASONS = {
    "ack": Reason.ACKNOWLEDGED,
    "unack": Reason.UNACKNOWLEDGED,
    "assign": Reason.ASSIGNED,
    "unassign": Reason.UNASSIGNED,
    "resolve": Reason.MANUALLY_RESOLVED,
}


@dataclass
class Stage:
    """Stand-in of the locality stage (the command sender): applies each command at once."""

    view: View
    sent: list[Command] = field(default_factory=list)
    step: int = 0
    answer: bool = True  # False: the stage is behind, no result within the API's wait

    async def send(self, cmd: Command) -> None:
        self.sent.append(cmd)
        if not self.answer:
            return
        self.step += 1
        at = T0 + timedelta(hours=1, minutes=self.step)
        held: list[Silence] = list(self.view.silences.get(cmd.locality, ()))
        tids: tuple[str, ...] = ()
        refusal: Refusal | None = None
        if cmd.fingerprint and cmd.action in _REASONS:
            r = self.view.alerts[cmd.fingerprint]
            if cmd.action == "resolve" and r.labels.get("rule") == "permit_exceedance":
                refusal = Refusal.MANUAL_RESOLVE_NOT_ALLOWED
            else:
                state = AlertState.RESOLVED if cmd.action == "resolve" else AlertState(r.state)
                reason = _REASONS[cmd.action]
                t = Transition(
                    id=transition_id(cmd.fingerprint, state, reason, at),
                    kind=TransitionKind.ALERT,
                    fingerprint=cmd.fingerprint,
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
                    note=cmd.note or None,
                )
                self.view.apply_transition(t)
                tids = (t.id,)
        elif cmd.action == "silence" and cmd.silence is not None:
            held.append(cmd.silence)
        elif cmd.action == "maintenance_start":
            held.append(maintenance_silence(cmd, at))
        elif cmd.action in ("unsilence", "maintenance_end"):
            held = [s for s in held if s.id != cmd.silence_id]
        self.view.apply_result(
            CommandResult(
                command=cmd,
                status="refused" if refusal else "applied",
                reason=refusal,
                at=at,
                transitions=tids,
                silences=tuple(held),
            )
        )


@dataclass
class ConsoleAPI:
    app: FastAPI
    view: View
    stage: Stage

    @property
    def commands(self) -> list[Command]:
        return self.stage.sent

    def silences(self) -> list[Silence]:
        return [s for held in self.view.silences.values() for s in held]

    def annotations(self, alert_id: str) -> Any:
        return self.view.alerts[alert_id].annotations


def contract_api(*, answer: bool = True, command_wait: float = 2.0) -> ConsoleAPI:
    """A fresh app (own view, own sessions) for one test."""
    view = View(timedelta(hours=48))
    for t in (A, B, AIR):
        view.apply_transition(t)
    view.ready = True
    stage = Stage(view, answer=answer)
    ctx = Context(
        settings=ApiSettings(command_wait=command_wait, rate_burst=1000),
        view=view,
        auth=Auth.from_tokens(PRINCIPALS),
        sender=stage,
        sources=SOURCES,
        localities=("weifang",),
    )
    return ConsoleAPI(create_app(ctx), view, stage)


# the tests import this name for the app's fixture type
ContractAPI = ConsoleAPI
