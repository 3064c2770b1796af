"""A stand-in of the alerts API's HTTP contract (docs/api.md; /work issue-14 contract) for the
console's tests, until ``streams.api.app.create_app`` exists: bearer tokens → principals, the
alert list and detail with history, the commands applied at once and recorded in the history
(who, when, why), silences and maintenance windows; an enterprise sees only its own alerts and
any other id is a 404. The console router is mounted as the API's app factory mounts it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from fastapi import FastAPI, Header, HTTPException

from alerts.model import fingerprint
from streams.api.console import router


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    locality: str | None = None
    enterprise: str | None = None


def alert(
    *,
    rule: str,
    source: str,
    factor: str,
    locality: str,
    enterprise: str | None,
    summary: str,
    severity: str = "critical",
    period: str = "",
) -> dict[str, Any]:
    labels = {"rule": rule, "source": source, "factor": factor, "locality": locality}
    if period:
        labels["period"] = period
    fp = fingerprint(labels)
    fired = "2026-12-03T01:00:00+00:00"
    return {
        "id": fp,
        "rule": rule,
        "rule_kind": rule,
        "source": source,
        "source_name": source,
        "factor": factor,
        "period": period,
        "locality": locality,
        "enterprise": enterprise,
        "severity": severity,
        "state": "firing",
        "summary": summary,
        "summary_en": "",
        "since": fired,
        "fired_at": fired,
        "resolved_at": None,
        "acknowledged": False,
        "acknowledged_by": None,
        "acknowledged_at": None,
        "ack_note": "",
        "assignee": None,
        "suppressed_by": [],
        "escalations": 0,
        "history": [
            {
                "id": "t-fired-" + fp,
                "at": fired,
                "state": "firing",
                "reason": "for_elapsed",
                "actor": None,
                "note": "",
                "suppressed_by": [],
            }
        ],
    }


class ContractAPI:
    """The stand-in app and what it was asked (``commands``)."""

    def __init__(self, principals: dict[str, Principal], alerts: list[dict[str, Any]]) -> None:
        self.principals = principals
        self.alerts = {a["id"]: a for a in alerts}
        self.silences: dict[str, dict[str, Any]] = {}
        self.commands: list[dict[str, Any]] = []
        self.app = FastAPI()
        # the API's Context: the console asks its auth who holds a token
        self.app.state.context = SimpleNamespace(
            auth=SimpleNamespace(authenticate=self.principals.get)
        )
        self._routes()
        self.app.include_router(router)

    def who(self, authorization: str | None) -> Principal:
        token = (authorization or "").removeprefix("Bearer ")
        p = self.principals.get(token)
        if p is None:
            raise HTTPException(401, "unknown token")
        return p

    def visible(self, p: Principal, a: dict[str, Any]) -> bool:
        if p.role == "enterprise":
            return bool(a["enterprise"] == p.enterprise)
        return p.role == "admin" or p.locality is None or a["locality"] == p.locality

    def one(self, p: Principal, alert_id: str) -> dict[str, Any]:
        a = self.alerts.get(alert_id)
        if a is None or not self.visible(p, a):
            raise HTTPException(404, "no such alert")
        return a

    def applied(self, p: Principal, action: str, **fields: Any) -> dict[str, Any]:
        cid = uuid.uuid4().hex
        self.commands.append({"id": cid, "action": action, "actor": p.name, **fields})
        return {"command": cid, "status": "applied", "reason": None}

    def refused(self, p: Principal, action: str, reason: str) -> dict[str, Any]:
        cid = uuid.uuid4().hex
        self.commands.append({"id": cid, "action": action, "actor": p.name, "refused": reason})
        return {"command": cid, "status": "refused", "reason": reason}

    def _routes(self) -> None:
        app = self.app

        @app.get("/api/v1/alerts")
        def ls(
            authorization: str | None = Header(None), state: str = "", rule: str = ""
        ) -> dict[str, Any]:
            p = self.who(authorization)
            items = [
                {k: v for k, v in a.items() if k != "history"}
                for a in self.alerts.values()
                if self.visible(p, a)
                and (a["state"] == state if state else a["state"] != "resolved")
                and (not rule or a["rule"] == rule)
            ]
            return {"items": items}

        @app.get("/api/v1/alerts/{alert_id}")
        def show(alert_id: str, authorization: str | None = Header(None)) -> dict[str, Any]:
            return self.one(self.who(authorization), alert_id)

        @app.post("/api/v1/alerts/{alert_id}/{action}", status_code=202)
        def act(
            alert_id: str,
            action: str,
            body: dict[str, Any],
            authorization: str | None = Header(None),
        ) -> dict[str, Any]:
            p = self.who(authorization)
            a = self.one(p, alert_id)
            if action not in ("ack", "assign", "unassign", "resolve"):
                raise HTTPException(404, "no such action")
            if action == "resolve" and a["rule"] == "permit_exceedance":
                # as the locality stage refuses it (docs/alerts.md §11): the rule clears itself
                return self.refused(p, action, "the rule does not allow a manual resolve")
            now = datetime.now(UTC).isoformat()
            note = str(body.get("note", ""))
            reason = {
                "ack": "acknowledged",
                "assign": "assigned",
                "unassign": "unassigned",
                "resolve": "manually_resolved",
            }[action]
            if action == "ack":
                a.update(
                    acknowledged=True, acknowledged_by=p.name, acknowledged_at=now, ack_note=note
                )
            elif action == "assign":
                a["assignee"] = body.get("assignee")
            elif action == "unassign":
                a["assignee"] = None
            else:
                a.update(state="resolved", resolved_at=now)
            a["history"].append(
                {
                    "id": uuid.uuid4().hex,
                    "at": now,
                    "state": a["state"],
                    "reason": reason,
                    "actor": p.name,
                    "note": note,
                    "suppressed_by": [],
                }
            )
            return self.applied(p, action, fingerprint=alert_id, note=note, body=body)

        @app.get("/api/v1/silences")
        def silences(authorization: str | None = Header(None)) -> dict[str, Any]:
            self.who(authorization)
            return {"items": list(self.silences.values())}

        @app.post("/api/v1/silences", status_code=202)
        def silence(
            body: dict[str, Any], authorization: str | None = Header(None)
        ) -> dict[str, Any]:
            p = self.who(authorization)
            sid = uuid.uuid4().hex
            self.silences[sid] = {"id": sid, "created_by": p.name, **body}
            return self.applied(p, "silence", body=body) | {"silence": sid}

        @app.delete("/api/v1/silences/{sid}", status_code=202)
        def unsilence(sid: str, authorization: str | None = Header(None)) -> dict[str, Any]:
            p = self.who(authorization)
            if self.silences.pop(sid, None) is None:
                raise HTTPException(404, "no such silence")
            return self.applied(p, "unsilence", silence_id=sid)

        @app.post("/api/v1/maintenance", status_code=202)
        def maintenance(
            body: dict[str, Any], authorization: str | None = Header(None)
        ) -> dict[str, Any]:
            p = self.who(authorization)
            mid = f"maint-{body['source']}-{uuid.uuid4().hex[:8]}"
            self.silences[mid] = {
                "id": mid,
                "created_by": p.name,
                "comment": body.get("note", ""),
                "matchers": [{"name": "source", "op": "=", "value": body["source"]}],
                "starts_at": body["starts_at"],
                "ends_at": body["ends_at"],
            }
            return self.applied(p, "maintenance_start", body=body)

        @app.delete("/api/v1/maintenance/{mid}", status_code=202)
        def end(mid: str, authorization: str | None = Header(None)) -> dict[str, Any]:
            p = self.who(authorization)
            if self.silences.pop(mid, None) is None:
                raise HTTPException(404, "no such window")
            return self.applied(p, "maintenance_end", silence_id=mid)


TOKENS = {
    "duty": "duty-token-0123456789",
    "enterprise:e-wf-001": "ent-wf-001-token-0123456789",
    "enterprise:e-wf-002": "ent-wf-002-token-0123456789",
    "emergency": "emergency-token-0123456789",
}

ALERT_A = alert(
    rule="permit_exceedance",
    source="e-wf-001:outlet-1",
    factor="nox",
    locality="weifang",
    enterprise="e-wf-001",
    summary="潍坊示例化工 1号排口 氮氧化物小时均值 132 mg/m³ 超标",
)
ALERT_B = alert(
    rule="permit_exceedance",
    source="e-wf-002:outlet-1",
    factor="so2",
    locality="weifang",
    enterprise="e-wf-002",
    summary="潍坊示例热电 1号排口 二氧化硫小时均值 61 mg/m³ 超标",
)
ALERT_AIR = alert(
    rule="ambient_exceedance",
    source="ws-wf-01",
    factor="pm25",
    locality="weifang",
    enterprise=None,
    summary="潍坊市 站点 PM2.5 24 小时平均 118 µg/m³ 超标",
    severity="warning",
    period="24h",
)


def contract_api() -> ContractAPI:
    import copy

    return ContractAPI(
        {
            TOKENS["duty"]: Principal("值班员王", "duty", locality="weifang"),
            TOKENS["enterprise:e-wf-001"]: Principal(
                "e-wf-001", "enterprise", enterprise="e-wf-001"
            ),
            TOKENS["enterprise:e-wf-002"]: Principal(
                "e-wf-002", "enterprise", enterprise="e-wf-002"
            ),
            TOKENS["emergency"]: Principal("应急办", "emergency"),
        },
        copy.deepcopy([ALERT_A, ALERT_B, ALERT_AIR]),
    )
