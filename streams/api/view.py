"""The alerts service's materialised view (docs/api.md §5), folded only from Kafka topics:

* ``alert-events`` — :class:`alerts.model.Transition` JSON: per fingerprint its state, since,
  fired/resolved times, severity, labels and names, acknowledgement, assignee, escalations,
  suppression and the history; warnings (kind ``warning``) apart;
* ``alert-commands`` — :class:`alerts.commands.CommandResult`: each command's outcome and each
  locality's silences and maintenance windows;
* ``notifications`` — :class:`alerts.notification.Notification`: which receivers were told of
  each alert (an enterprise is shown only its own receivers).

The view never writes alert state. Folding is idempotent (a transition id seen twice is applied
once), so a restarted service reading the topics from the beginning rebuilds the same view.
Resolved alerts are forgotten ``retention`` after their resolution (bounded memory).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from alerts.commands import CommandResult
from alerts.model import AlertState, Reason, Transition, TransitionKind
from alerts.notification import Notification
from alerts.routing import WATER_EMERGENCY
from alerts.silences import Silence
from streams.api.auth import Principal, Role

FIRED_REASONS = frozenset({Reason.FOR_ELAPSED, Reason.CONDITION_MET_NO_WAIT})
NAME_KEYS = ("source_name", "outlet_name", "enterprise_name", "locality_name", "station_name")


@dataclass
class HistoryEntry:
    id: str
    at: datetime
    state: str
    reason: str
    actor: str | None
    note: str
    suppressed_by: list[str]


@dataclass
class AlertRecord:
    fingerprint: str
    kind: str
    labels: dict[str, str]
    annotations: dict[str, str]
    state: str
    since: datetime
    severity: str
    locality: str
    source: str
    level: str | None = None
    fired_at: datetime | None = None
    resolved_at: datetime | None = None
    ack_by: str | None = None
    ack_at: datetime | None = None
    ack_note: str = ""
    assignee: str | None = None
    escalations: int = 0
    suppressed_by: list[str] = field(default_factory=list)
    history: list[HistoryEntry] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)

    @property
    def enterprise(self) -> str | None:
        return self.labels.get("enterprise") or None

    def name(self, key: str) -> str:
        return self.labels.get(key) or self.annotations.get(key) or ""


@dataclass(frozen=True)
class Filters:
    state: str | None = None  # None: open (pending + firing); "all": every state
    locality: str | None = None
    source: str | None = None
    rule: str | None = None
    severity: str | None = None
    since: datetime | None = None


def visible(p: Principal, r: AlertRecord) -> bool:
    """May ``p`` see alert ``r`` at all (isolation, docs/api.md §2)."""
    if p.role is Role.ADMIN:
        return True
    if p.role is Role.ENTERPRISE:
        return r.kind == TransitionKind.ALERT.value and r.enterprise == p.enterprise
    if p.role is Role.EMERGENCY:
        # warnings, and the water emergencies routed to them (docs/routing.md §1)
        return r.kind == TransitionKind.WARNING.value or (
            r.labels.get("category") == WATER_EMERGENCY
        )
    return p.locality is None or r.locality == p.locality  # duty


def may_see_silence(
    p: Principal, s: Silence, locality: str, source_enterprise: dict[str, str] | None = None
) -> bool:
    if p.role is Role.ADMIN:
        return True
    if p.role is Role.ENTERPRISE:
        owners = source_enterprise or {}
        return any(
            m.op.value == "="
            and (
                (m.name == "enterprise" and m.value == p.enterprise)
                or (m.name == "source" and owners.get(m.value) == p.enterprise)
            )
            for m in s.matchers
        )
    if p.role is Role.DUTY:
        return p.locality is None or locality == p.locality
    return False


class View:
    def __init__(self, retention: timedelta = timedelta(hours=48), keep_results: int = 10_000):
        self.retention = retention
        self.keep_results = keep_results
        self.alerts: dict[str, AlertRecord] = {}
        self.warnings: dict[str, AlertRecord] = {}
        self.results: OrderedDict[str, CommandResult] = OrderedDict()
        self.silences: dict[str, tuple[Silence, ...]] = {}
        self.localities: set[str] = set()
        self.source_enterprise: dict[str, str] = {}  # catalogue: source → its enterprise
        #: newest event time per locality: each locality stage has its own event-time clock
        #: (the ``pipeline`` locality's health alerts run on the wall clock)
        self.newest: dict[str, datetime] = {}
        self.applied = 0  # records folded (metrics)
        self.ready = False
        #: fingerprint → receivers told (notifications; may be read before the alert's events)
        self.receivers: dict[str, set[str]] = {}
        self._waiters: dict[str, asyncio.Event] = {}
        #: the plans' progress: locality → its newest day-close record (topic plan-progress)
        self.progress: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ folding

    def apply_progress(self, record: Mapping[str, Any]) -> None:
        """A day-close record of the plans' progress (alerts/progress_live.py); an older day
        (a replay, a late correction of an earlier day) does not replace a newer one."""
        self.applied += 1
        loc = str(record["locality"])
        known = self.progress.get(loc)
        if known is None or str(record["as_of"]) >= str(known["as_of"]):
            self.progress[loc] = dict(record)

    def list_progress(self, p: Principal, locality: str | None) -> list[dict[str, Any]]:
        """Duty officers (of their locality), emergency responders and admins read the plans'
        progress; enterprises do not."""
        if p.role is Role.ENTERPRISE:
            return []
        out = []
        for loc, rec in sorted(self.progress.items()):
            if locality is not None and loc != locality:
                continue
            if p.role is Role.DUTY and p.locality is not None and loc != p.locality:
                continue
            out.append(rec)
        return out

    def apply_transition(self, t: Transition) -> None:
        self.applied += 1
        self.localities.add(t.locality)
        if t.kind is TransitionKind.DUTY:
            return  # an enterprise's duties under a warning: delivered, not an alert to work on
        table = self.warnings if t.kind is TransitionKind.WARNING else self.alerts
        if t.kind is TransitionKind.WARNING:
            # one record per locality: the level in force (firing) or the lift (resolved) —
            # each level has its own fingerprint, and a change supersedes the previous level
            for fp in [
                fp
                for fp, w in self.warnings.items()
                if w.locality == t.locality and fp != t.fingerprint and t.at >= w.since
            ]:
                del self.warnings[fp]
        r = table.get(t.fingerprint)
        if r is None:
            r = AlertRecord(
                fingerprint=t.fingerprint,
                kind=t.kind.value,
                labels=dict(t.labels),
                annotations=dict(t.annotations),
                state=t.state.value,
                since=t.at,
                severity=t.severity.value,
                locality=t.locality,
                source=t.source,
            )
            table[t.fingerprint] = r
        elif t.id in r.seen:
            return
        r.seen.add(t.id)
        new_episode = (
            r.history
            and r.state == AlertState.RESOLVED.value
            and (t.state is not AlertState.RESOLVED)
        )
        if new_episode:
            r.fired_at = r.resolved_at = r.ack_by = r.ack_at = r.assignee = None
            r.ack_note = ""
            r.escalations = 0
        if not r.history or r.state != t.state.value:
            r.since = t.at
        r.state = t.state.value
        r.severity = t.severity.value
        r.level = t.level
        r.labels.update(t.labels)
        r.annotations.update(t.annotations)
        r.suppressed_by = list(t.suppressed_by)
        if t.state is AlertState.FIRING and (t.reason in FIRED_REASONS or r.fired_at is None):
            r.fired_at = r.fired_at or t.at
        if t.state is AlertState.RESOLVED:
            r.resolved_at = t.at
        if t.reason is Reason.ACKNOWLEDGED:
            r.ack_by, r.ack_at, r.ack_note = t.actor, t.at, t.note or ""
        elif t.reason is Reason.UNACKNOWLEDGED:
            r.ack_by = r.ack_at = None
            r.ack_note = ""
        elif t.reason is Reason.ASSIGNED:
            note = t.note or ""
            if note.startswith("assigned to "):
                r.assignee = note.removeprefix("assigned to ")
        elif t.reason is Reason.UNASSIGNED:
            r.assignee = None
        elif t.reason is Reason.ESCALATED:
            r.escalations += 1
        r.history.append(
            HistoryEntry(
                id=t.id,
                at=t.at,
                state=t.state.value,
                reason=t.reason.value,
                actor=t.actor,
                note=t.note or "",
                suppressed_by=list(t.suppressed_by),
            )
        )
        r.history.sort(key=lambda h: h.at)
        newest = self.newest.get(t.locality)
        if newest is None or t.at > newest:
            self.newest[t.locality] = t.at
            self.prune(t.locality, t.at)

    def apply_result(self, res: CommandResult) -> None:
        self.applied += 1
        cmd = res.command
        self.localities.add(cmd.locality)
        self.results[cmd.id] = res
        self.results.move_to_end(cmd.id)
        while len(self.results) > self.keep_results:
            self.results.popitem(last=False)
        self.silences[cmd.locality] = tuple(res.silences)
        if res.status == "applied" and cmd.action == "assign" and cmd.fingerprint:
            r = self.alerts.get(cmd.fingerprint)
            if r is not None:
                r.assignee = cmd.assignee
        ev = self._waiters.pop(cmd.id, None)
        if ev is not None:
            ev.set()

    def apply_notification(self, n: Notification) -> None:
        self.applied += 1
        self.receivers.setdefault(n.fingerprint, set()).add(n.receiver)

    def prune(self, locality: str, now: datetime) -> None:
        """Forget the locality's alerts resolved more than ``retention`` before ``now``."""
        cut = now - self.retention
        for table in (self.alerts, self.warnings):
            for fp in [
                fp
                for fp, r in table.items()
                if r.locality == locality
                and r.state == AlertState.RESOLVED.value
                and r.resolved_at is not None
                and r.resolved_at < cut
            ]:
                del table[fp]
                self.receivers.pop(fp, None)

    async def wait_result(self, command_id: str, wait: float) -> CommandResult | None:
        if command_id in self.results:
            return self.results[command_id]
        ev = self._waiters.setdefault(command_id, asyncio.Event())
        try:
            await asyncio.wait_for(ev.wait(), wait)
        except TimeoutError:
            self._waiters.pop(command_id, None)
        return self.results.get(command_id)

    # ------------------------------------------------------------------ queries

    def list_alerts(self, p: Principal, f: Filters) -> list[AlertRecord]:
        out = []
        for r in self.alerts.values():
            if not visible(p, r):
                continue
            if f.state in (None, ""):
                if r.state == AlertState.RESOLVED.value:
                    continue
            elif f.state != "all" and r.state != f.state:
                continue
            if f.locality and r.locality != f.locality:
                continue
            if f.source and r.source != f.source:
                continue
            if f.rule and r.labels.get("rule") != f.rule:
                continue
            if f.severity and r.severity != f.severity:
                continue
            if f.since and r.since < f.since:
                continue
            out.append(r)
        out.sort(key=lambda r: (r.since, r.fingerprint), reverse=True)
        return out

    def get_alert(self, p: Principal, fp: str) -> AlertRecord | None:
        """The alert, or None when missing *or* not visible (the caller answers 404 alike)."""
        r = self.alerts.get(fp) or self.warnings.get(fp)
        if r is None or not visible(p, r):
            return None
        return r

    def list_warnings(self, p: Principal) -> list[AlertRecord]:
        if p.role not in (Role.EMERGENCY, Role.ADMIN, Role.DUTY):
            return []
        out = [r for r in self.warnings.values() if visible(p, r)]
        out.sort(key=lambda r: (r.since, r.fingerprint), reverse=True)
        return out

    def list_silences(self, p: Principal) -> list[tuple[str, Silence]]:
        return [
            (loc, s)
            for loc, ss in sorted(self.silences.items())
            for s in ss
            if may_see_silence(p, s, loc, self.source_enterprise)
        ]

    def find_silence(self, p: Principal, sid: str) -> tuple[str, Silence] | None:
        for loc, s in self.list_silences(p):
            if s.id == sid:
                return loc, s
        return None

    def receivers_for(self, p: Principal, r: AlertRecord) -> list[str]:
        told = self.receivers.get(r.fingerprint, set())
        if p.role is Role.ENTERPRISE:
            # only receivers named after its own id: never an authority's or another's
            return sorted(k for k in told if p.enterprise and p.enterprise in k)
        return sorted(told)

    def result_for(self, p: Principal, command_id: str) -> CommandResult | None:
        res = self.results.get(command_id)
        if res is None:
            return None
        c = res.command
        if p.role is Role.ADMIN or c.actor == p.name:
            return res
        return None

    def known(self) -> Iterable[str]:
        return sorted(self.localities)
