"""The alert lifecycle as pure steps: ``(alert, observation, now) -> (alert, transitions)``.

States: *pending* (condition met, waiting ``for``) → *firing* → *resolved*. Rules turn values into
an :class:`Observation` whose ``status`` is already the hysteresis decision:

* ``BREACH`` — the firing condition holds (e.g. value > limit);
* ``CLEAR`` — the separate clear condition holds (e.g. value ≤ 90 % of the limit);
* ``BAND`` — neither: inside the hysteresis band. The alert **holds** its state: a firing alert
  keeps firing, a pending one keeps waiting (it is not promoted and its ``for`` clock is not reset);
* ``NO_DATA`` — the value is missing/invalid. The alert holds; nothing ever resolves because data
  stopped (peers.md: Grafana's MissingSeries resolves, which is what envwatch must not do);
* ``MAINTENANCE`` — the source flags the value M or C (HJ 212-2017 表8): data not used for the
  exceedance judgement (standards.md §8 [1]); the alert holds.

``for`` is evidence-based: a pending alert fires on the first ``BREACH`` observation whose event time
is at least ``for`` after the episode's first breach (no timer fires it without data).

**Late data.** Observations are processed in event-time order per fingerprint. One whose time equals
the newest processed time is a duplicate (at-least-once redelivery) and is ignored; one whose time is
older is *late*: it is counted (``Alert.late_count``) and ignored. So the result never depends on how
often a message is redelivered, and a late value cannot reopen or resolve an alert after the fact.

**Flapping** (Kapacitor ``.flapping(low, high)`` / Nagios style): over the last ``flap_window``
BREACH/CLEAR observations, the weighted share of observations where the raw condition changed
(weights from 0.8 for the oldest to 1.2 for the newest). At ≥ ``flap_high`` the alert goes (or stays)
firing with one ``FLAPPING_STARTED`` transition and then holds still; at ≤ ``flap_low`` it settles
with ``FLAPPING_ENDED`` (resolved if the newest observation is clear).

**Escalation**: a firing alert not acknowledged ``escalate_after`` after it fired gets an
``ESCALATED`` transition stamped ``fired_at + n × escalate_after`` (deterministic, whenever the
check runs), up to ``max_escalations`` times.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final, NamedTuple

from alerts.errors import InvalidAction
from alerts.model import (
    Alert,
    AlertState,
    AuditEntry,
    Reason,
    Severity,
    Suppression,
    Transition,
    TransitionKind,
    fingerprint,
    transition_id,
    with_history,
)


class ObservationStatus(StrEnum):
    """The rule's verdict on one value (see module docstring)."""

    BREACH = "breach"
    CLEAR = "clear"
    BAND = "band"
    NO_DATA = "no_data"
    MAINTENANCE = "maintenance"


class StepOutcome(StrEnum):
    """What a step did with its observation (named, for counters and tests)."""

    APPLIED = "applied"
    NO_ALERT = "no_alert"  # not a breach and no alert exists: nothing to do
    DUPLICATE = "duplicate"  # same event time as the newest processed: ignored
    LATE = "late"  # older than the newest processed: counted, ignored
    HELD = "held"  # BAND / NO_DATA / MAINTENANCE: state kept
    FLAPPING = "flapping"  # state frozen while flapping


@dataclass(frozen=True, slots=True)
class Observation:
    """One rule verdict for one alert identity at one event time."""

    labels: Mapping[str, str]
    at: datetime
    status: ObservationStatus
    severity: Severity = Severity.WARNING
    annotations: Mapping[str, str] = field(default_factory=dict)
    value: float | None = None
    limit: float | None = None
    clear_reason: Reason | None = None  # e.g. DATA_RESUMED for offline alerts
    fingerprint: str = ""

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("Observation.at must be timezone-aware")
        if not self.fingerprint:
            object.__setattr__(self, "fingerprint", fingerprint(self.labels))


@dataclass(frozen=True, slots=True)
class LifecyclePolicy:
    """Per-rule lifecycle settings (declared in alerts.rules; defaults are operator defaults)."""

    for_duration: timedelta = timedelta(0)
    escalate_after: timedelta | None = None
    max_escalations: int = 1
    # Nagios-style flap thresholds; envwatch operator defaults [MEM], not from a standard.
    flap_window: int = 21
    flap_high: float = 0.5
    flap_low: float = 0.25

    def __post_init__(self) -> None:
        if self.for_duration < timedelta(0):
            raise ValueError("for_duration must not be negative")
        if not 2 <= self.flap_window <= 62:
            raise ValueError("flap_window must be within 2..62")
        if not 0 <= self.flap_low < self.flap_high <= 1:
            raise ValueError("need 0 <= flap_low < flap_high <= 1")


class StepResult(NamedTuple):
    alert: Alert | None
    transitions: tuple[Transition, ...]
    outcome: StepOutcome


_NO_TRANSITIONS: Final[tuple[Transition, ...]] = ()
_ALERT_FIELDS: Final[tuple[str, ...]] = tuple(f.name for f in fields(Alert))
_set = object.__setattr__


def _evolve(alert: Alert, changes: Mapping[str, Any]) -> Alert:
    """``dataclasses.replace`` without its per-call overhead (the hot path of every step)."""
    new = object.__new__(Alert)
    get = changes.get
    for name in _ALERT_FIELDS:
        _set(new, name, get(name, getattr(alert, name)))
    return new


def flap_ratio(bits: int, window: int) -> float:
    """Weighted share of changes: bit i = change at the i-th newest observation (0 = newest)."""
    if not bits:
        return 0.0
    total = 0.0
    changed = 0.0
    span = window - 1
    for i in range(window):
        w = 1.2 - 0.4 * i / span
        total += w
        if bits >> i & 1:
            changed += w
    return changed / total


class _Builder:
    """Collects transitions and audit entries of one step for one alert."""

    __slots__ = ("alert", "changes", "suppressed", "suppressed_by", "transitions")

    def __init__(
        self, alert: Alert, suppressed: tuple[Suppression, ...], suppressed_by: tuple[str, ...]
    ) -> None:
        self.alert = alert
        self.changes: dict[str, Any] = {}
        self.transitions: list[Transition] = []
        self.suppressed = suppressed
        self.suppressed_by = suppressed_by

    def get(self, name: str) -> Any:
        return self.changes[name] if name in self.changes else getattr(self.alert, name)

    def emit(
        self,
        state: AlertState,
        reason: Reason,
        at: datetime,
        *,
        previous: AlertState | None = None,
        actor: str | None = None,
        note: str | None = None,
        use_previous: bool = False,
    ) -> None:
        prev = previous if use_previous else self.get("state")
        labels = self.get("labels")
        t = Transition(
            id=transition_id(self.alert.fingerprint, state, reason, at),
            kind=TransitionKind.ALERT,
            fingerprint=self.alert.fingerprint,
            labels=labels,
            annotations=self.get("annotations"),
            state=state,
            previous_state=prev,
            reason=reason,
            at=at,
            severity=self.get("severity"),
            locality=labels.get("locality", ""),
            source=labels.get("source", ""),
            suppressed=self.suppressed,
            suppressed_by=self.suppressed_by,
            actor=actor,
            note=note,
            value=self.get("value"),
            limit=self.get("limit"),
        )
        self.transitions.append(t)
        self.changes["state"] = state
        if t.notify:
            self.changes["notified_state"] = state

    def finish(self) -> tuple[Alert, tuple[Transition, ...]]:
        if self.transitions:
            entries = (
                AuditEntry(
                    t.id, t.at, t.state, t.reason, t.actor, t.note, t.suppressed, t.suppressed_by
                )
                for t in self.transitions
            )
            self.changes["history"] = with_history(self.get("history"), entries)
        alert = _evolve(self.alert, self.changes) if self.changes else self.alert
        return alert, tuple(self.transitions)


def _new_alert(obs: Observation) -> Alert:
    return Alert(
        fingerprint=obs.fingerprint,
        labels=dict(obs.labels),
        state=AlertState.RESOLVED,
        severity=obs.severity,
        annotations=dict(obs.annotations),
    )


def step(
    alert: Alert | None,
    obs: Observation,
    now: datetime,
    policy: LifecyclePolicy,
    *,
    suppressed: tuple[Suppression, ...] = (),
    suppressed_by: tuple[str, ...] = (),
) -> StepResult:
    """Apply one observation. ``now`` is the stream's event-time watermark (≥ ``obs.at``), used for
    escalation; ``suppressed`` marks the transitions of this step as not-to-notify (silence,
    inhibition, maintenance) — they still enter the audit trail."""
    status = obs.status
    if alert is None:
        if status is not ObservationStatus.BREACH:
            return StepResult(None, _NO_TRANSITIONS, StepOutcome.NO_ALERT)
        alert = _new_alert(obs)
        is_new = True
    else:
        is_new = False
        last = alert.last_at
        if last is not None and obs.at <= last:
            if obs.at == last:
                return StepResult(alert, _NO_TRANSITIONS, StepOutcome.DUPLICATE)
            return StepResult(
                replace(alert, late_count=alert.late_count + 1),
                _NO_TRANSITIONS,
                StepOutcome.LATE,
            )

        quiet = _quiet_step(alert, obs, policy, suppressed)
        if quiet is not None:
            return StepResult(quiet, _NO_TRANSITIONS, StepOutcome.APPLIED)

    b = _Builder(alert, suppressed, suppressed_by)
    b.changes["last_at"] = obs.at
    if status is ObservationStatus.BREACH or status is ObservationStatus.CLEAR:
        outcome = _apply_raw(b, obs, policy, is_new)
    else:
        outcome = StepOutcome.HELD
    _escalate(b, now, policy)
    if not suppressed:
        _catch_up(b, now)
    new_alert, transitions = b.finish()
    return StepResult(new_alert, transitions, outcome)


def _quiet_step(
    alert: Alert, obs: Observation, policy: LifecyclePolicy, suppressed: tuple[Suppression, ...]
) -> Alert | None:
    """Fast path for the common case — the raw condition repeats and nothing can change (no
    flapping, no severity change, no escalation due, nothing to catch up): only bookkeeping."""
    status = obs.status
    if status is ObservationStatus.BREACH:
        if (
            alert.state is not AlertState.FIRING
            or alert.last_breach is not True
            or obs.severity is not alert.severity
        ):
            return None
    elif status is ObservationStatus.CLEAR:
        if alert.state is not AlertState.RESOLVED or alert.last_breach is not False:
            return None
    else:
        return None
    if alert.flapping or suppressed:
        return None
    if alert.notified_state is not alert.state and not (
        alert.state is AlertState.RESOLVED and alert.notified_state is not AlertState.FIRING
    ):
        return None
    if (
        policy.escalate_after is not None
        and alert.state is AlertState.FIRING
        and alert.acked_at is None
        and alert.escalations < policy.max_escalations
    ):
        return None
    return _evolve(
        alert,
        {
            "last_at": obs.at,
            "value": obs.value,
            "limit": obs.limit,
            # no change at this observation: shift a 0 in (the share can only fall, and the alert
            # is not flapping, so no flapping transition can be due)
            "flap_bits": (alert.flap_bits << 1) & ((1 << policy.flap_window) - 1),
            "flap_count": min(alert.flap_count + 1, policy.flap_window),
        },
    )


def _apply_raw(b: _Builder, obs: Observation, policy: LifecyclePolicy, is_new: bool) -> StepOutcome:
    breach = obs.status is ObservationStatus.BREACH
    alert = b.alert
    at = obs.at
    b.changes["value"] = obs.value
    b.changes["limit"] = obs.limit
    if obs.annotations:
        b.changes["annotations"] = dict(obs.annotations)

    # flapping bookkeeping (only BREACH/CLEAR count as raw conditions)
    changed = alert.last_breach is not None and alert.last_breach != breach
    mask = (1 << policy.flap_window) - 1
    bits = ((alert.flap_bits << 1) | int(changed)) & mask
    b.changes["flap_bits"] = bits
    b.changes["flap_count"] = min(alert.flap_count + 1, policy.flap_window)
    b.changes["last_breach"] = breach
    ratio = flap_ratio(bits, policy.flap_window) if changed or alert.flapping else 0.0
    if alert.flapping:
        if ratio > policy.flap_low:
            return StepOutcome.FLAPPING
        b.changes["flapping"] = False
        if breach:
            b.emit(AlertState.FIRING, Reason.FLAPPING_ENDED, at)
        else:
            b.emit(AlertState.RESOLVED, Reason.FLAPPING_ENDED, at)
            b.changes["active_since"] = None
            b.changes["resolved_at"] = at
        return StepOutcome.APPLIED
    if ratio >= policy.flap_high:
        b.changes["flapping"] = True
        if alert.state is not AlertState.FIRING:
            b.changes["fired_at"] = at
            b.changes["active_since"] = alert.active_since or at
        b.emit(AlertState.FIRING, Reason.FLAPPING_STARTED, at)
        return StepOutcome.FLAPPING

    state = alert.state
    if breach:
        if state is AlertState.RESOLVED:
            # a new episode: people's earlier acknowledgement/assignment do not carry over
            b.changes.update(
                active_since=at,
                severity=obs.severity,
                acked_by=None,
                acked_at=None,
                assignee=None,
                assigned_by=None,
                assigned_at=None,
                escalations=0,
                resolved_at=None,
            )
            previous = None if is_new else AlertState.RESOLVED
            if policy.for_duration <= timedelta(0):
                b.changes["fired_at"] = at
                b.emit(
                    AlertState.FIRING,
                    Reason.CONDITION_MET_NO_WAIT,
                    at,
                    previous=previous,
                    use_previous=True,
                )
            else:
                b.emit(
                    AlertState.PENDING,
                    Reason.CONDITION_MET,
                    at,
                    previous=previous,
                    use_previous=True,
                )
        elif state is AlertState.PENDING:
            b.changes["severity"] = obs.severity
            since = alert.active_since or at
            if at - since >= policy.for_duration:
                b.changes["fired_at"] = at
                b.emit(AlertState.FIRING, Reason.FOR_ELAPSED, at)
        elif obs.severity is not alert.severity:  # firing
            raised = obs.severity.rank > alert.severity.rank
            b.changes["severity"] = obs.severity
            b.emit(
                AlertState.FIRING,
                Reason.SEVERITY_RAISED if raised else Reason.SEVERITY_LOWERED,
                at,
            )
    elif state is AlertState.PENDING:
        b.changes["active_since"] = None
        b.changes["resolved_at"] = at
        b.emit(AlertState.RESOLVED, Reason.PENDING_CLEARED, at)
    elif state is AlertState.FIRING:
        b.changes["active_since"] = None
        b.changes["resolved_at"] = at
        b.emit(AlertState.RESOLVED, obs.clear_reason or Reason.CLEAR_CONDITION_MET, at)
    return StepOutcome.APPLIED


def _escalate(b: _Builder, now: datetime, policy: LifecyclePolicy) -> None:
    after = policy.escalate_after
    if after is None or b.get("state") is not AlertState.FIRING or b.get("acked_at") is not None:
        return
    fired_at: datetime | None = b.get("fired_at")
    if fired_at is None:
        return
    n: int = b.get("escalations")
    while n < policy.max_escalations and now >= fired_at + after * (n + 1):
        n += 1
        b.changes["escalations"] = n
        b.emit(AlertState.FIRING, Reason.ESCALATED, fired_at + after * n, note=f"level {n}")


def _catch_up(b: _Builder, now: datetime) -> None:
    """After a suppression ended: tell people the state they missed (firing, or its resolution)."""
    state: AlertState = b.get("state")
    told: AlertState | None = b.get("notified_state")
    if state is AlertState.FIRING and told is not AlertState.FIRING:
        b.emit(AlertState.FIRING, Reason.SUPPRESSION_ENDED, now, previous=told, use_previous=True)
    elif state is AlertState.RESOLVED and told is AlertState.FIRING:
        b.emit(AlertState.RESOLVED, Reason.SUPPRESSION_ENDED, now, previous=told, use_previous=True)


def tick(
    alert: Alert,
    now: datetime,
    policy: LifecyclePolicy,
    *,
    suppressed: tuple[Suppression, ...] = (),
    suppressed_by: tuple[str, ...] = (),
) -> tuple[Alert, tuple[Transition, ...]]:
    """Advance time without an observation: escalation, and catch-up after a suppression ended."""
    b = _Builder(alert, suppressed, suppressed_by)
    _escalate(b, now, policy)
    if not suppressed:
        _catch_up(b, now)
    return b.finish()


# ---------------------------------------------------------------- people


def acknowledge(
    alert: Alert,
    who: str,
    at: datetime,
    note: str | None = None,
    *,
    suppressed: tuple[Suppression, ...] = (),
    suppressed_by: tuple[str, ...] = (),
) -> tuple[Alert, tuple[Transition, ...]]:
    """A person acknowledges a firing alert (stops escalation). Acknowledging twice is a no-op."""
    if alert.state is not AlertState.FIRING:
        raise InvalidAction(alert.fingerprint, "acknowledge", f"alert is {alert.state.value}")
    if not who:
        raise InvalidAction(alert.fingerprint, "acknowledge", "who is empty")
    if alert.acked_at is not None:
        return alert, _NO_TRANSITIONS
    b = _Builder(alert, suppressed, suppressed_by)
    b.changes.update(acked_by=who, acked_at=at)
    b.emit(AlertState.FIRING, Reason.ACKNOWLEDGED, at, actor=who, note=note)
    return b.finish()


def assign(
    alert: Alert,
    assignee: str,
    by: str,
    at: datetime,
    note: str | None = None,
    *,
    suppressed: tuple[Suppression, ...] = (),
    suppressed_by: tuple[str, ...] = (),
) -> tuple[Alert, tuple[Transition, ...]]:
    """A person assigns a pending or firing alert to someone."""
    if alert.state is AlertState.RESOLVED:
        raise InvalidAction(alert.fingerprint, "assign", "alert is resolved")
    if not assignee or not by:
        raise InvalidAction(alert.fingerprint, "assign", "assignee and by must be given")
    b = _Builder(alert, suppressed, suppressed_by)
    b.changes.update(assignee=assignee, assigned_by=by, assigned_at=at)
    b.emit(alert.state, Reason.ASSIGNED, at, actor=by, note=note or f"assigned to {assignee}")
    return b.finish()


def unacknowledge(
    alert: Alert,
    who: str,
    at: datetime,
    note: str | None = None,
    *,
    suppressed: tuple[Suppression, ...] = (),
    suppressed_by: tuple[str, ...] = (),
) -> tuple[Alert, tuple[Transition, ...]]:
    """A person withdraws an acknowledgement of a firing alert: escalation resumes (an
    escalation already due is stamped at its own time by the next tick)."""
    if alert.state is not AlertState.FIRING:
        raise InvalidAction(alert.fingerprint, "unacknowledge", f"alert is {alert.state.value}")
    if alert.acked_at is None:
        raise InvalidAction(alert.fingerprint, "unacknowledge", "alert is not acknowledged")
    b = _Builder(alert, suppressed, suppressed_by)
    b.changes.update(acked_by=None, acked_at=None)
    b.emit(AlertState.FIRING, Reason.UNACKNOWLEDGED, at, actor=who, note=note)
    return b.finish()


def unassign(
    alert: Alert,
    by: str,
    at: datetime,
    note: str | None = None,
    *,
    suppressed: tuple[Suppression, ...] = (),
    suppressed_by: tuple[str, ...] = (),
) -> tuple[Alert, tuple[Transition, ...]]:
    """A person takes the assignment off a pending or firing alert."""
    if alert.state is AlertState.RESOLVED:
        raise InvalidAction(alert.fingerprint, "unassign", "alert is resolved")
    if alert.assignee is None:
        raise InvalidAction(alert.fingerprint, "unassign", "alert is not assigned")
    b = _Builder(alert, suppressed, suppressed_by)
    b.changes.update(assignee=None, assigned_by=None, assigned_at=None)
    b.emit(
        alert.state, Reason.UNASSIGNED, at, actor=by, note=note or f"unassigned {alert.assignee}"
    )
    return b.finish()


def resolve(
    alert: Alert,
    who: str,
    at: datetime,
    note: str | None = None,
    *,
    suppressed: tuple[Suppression, ...] = (),
    suppressed_by: tuple[str, ...] = (),
) -> tuple[Alert, tuple[Transition, ...]]:
    """A person resolves a pending or firing alert. If the condition still holds, the next breach
    opens a new episode (pending again) — use a silence to mute a known problem instead."""
    if alert.state is AlertState.RESOLVED:
        raise InvalidAction(alert.fingerprint, "resolve", "alert is already resolved")
    if not who:
        raise InvalidAction(alert.fingerprint, "resolve", "who is empty")
    b = _Builder(alert, suppressed, suppressed_by)
    b.changes.update(active_since=None, resolved_at=at, flapping=False)
    b.emit(AlertState.RESOLVED, Reason.MANUALLY_RESOLVED, at, actor=who, note=note)
    return b.finish()


def close(alert: Alert, at: datetime, reason: Reason) -> tuple[Alert, tuple[Transition, ...]]:
    """Resolve an alert for a system reason (e.g. RULE_REMOVED on hot reload)."""
    if alert.state is AlertState.RESOLVED:
        return alert, _NO_TRANSITIONS
    b = _Builder(alert, (), ())
    b.changes.update(active_since=None, resolved_at=at, flapping=False)
    b.emit(AlertState.RESOLVED, reason, at)
    return b.finish()
