"""The alert model: states, severities, fingerprints, transitions and the audit trail (pure).

An *alert* is identified by its **fingerprint**, a hash of four identity labels
(``rule``, ``source``, ``factor``, ``locality``) — never of the value, the time or free text — so
the same problem at the same place is always the same alert, across restarts and replays.

Every change of an alert is a :class:`Transition`. Its ``id`` is a hash of
``fingerprint | state | reason | event time`` (architecture.md §6: "fingerprint + state + event
time"; the reason is added so that two different events of one alert at the same instant, e.g.
*firing* and *escalated*, never share an id). A replay of the same input yields the same ids, so
receivers deduplicate and InfluxDB overwrites.

Notification contract (for ``alerts/routing.py`` & co.): a transition is worth notifying when
``suppressed`` is empty and either ``state is FIRING`` or ``previous_state is FIRING``; a
``RESOLVED`` transition whose previous state was ``PENDING`` (reason ``PENDING_CLEARED``) is audit
only — nobody was ever told the alert fired.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, TypeVar

from alerts.errors import StateError

_E = TypeVar("_E", bound=StrEnum)

#: The labels that identify an alert; everything else is descriptive.
IDENTITY_LABELS: Final[tuple[str, str, str, str]] = ("rule", "source", "factor", "locality")


class AlertState(StrEnum):
    """Where an alert is in its lifecycle."""

    PENDING = "pending"  # condition met, waiting for the rule's ``for`` duration
    FIRING = "firing"  # condition met for at least ``for``; people are told
    RESOLVED = "resolved"  # condition cleared (or a person resolved it)


class Severity(StrEnum):
    """How urgent an alert is; ordered (``rank``)."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK: Final[dict[Severity, int]] = {
    Severity.INFO: 0,
    Severity.WARNING: 1,
    Severity.CRITICAL: 2,
}


class TransitionKind(StrEnum):
    """What a transition is about (``kind`` in ``alerts.jsonl``)."""

    ALERT = "alert"
    WARNING = "warning"  # heavy-pollution-weather warning (重污染天气预警)
    #: one enterprise's duties under a warning change: its level, grade and own measures
    #: (一厂一策), for that enterprise only (alerts/engine.py ``apply_warning``)
    DUTY = "warning_duty"


class Reason(StrEnum):
    """Why a transition happened — a named decision, never a bare bool (style.md #1)."""

    # lifecycle, driven by observations
    CONDITION_MET = "condition_met"  # first breach: pending starts
    FOR_ELAPSED = "for_elapsed"  # breach held for the rule's ``for``: firing
    CONDITION_MET_NO_WAIT = "condition_met_no_wait"  # rule has for = 0: firing at once
    CLEAR_CONDITION_MET = "clear_condition_met"  # value back past the clear threshold
    PENDING_CLEARED = "pending_cleared"  # cleared before ``for`` elapsed (audit only)
    DATA_RESUMED = "data_resumed"  # a silent source reports again (offline alerts)
    SEVERITY_RAISED = "severity_raised"
    SEVERITY_LOWERED = "severity_lowered"
    FLAPPING_STARTED = "flapping_started"
    FLAPPING_ENDED = "flapping_ended"
    ESCALATED = "escalated"  # firing and not acknowledged for ``escalate_after``
    SUPPRESSION_ENDED = "suppression_ended"  # silence/inhibition/maintenance over: catch up
    RULE_REMOVED = "rule_removed"  # a hot reload dropped the rule
    # people
    ACKNOWLEDGED = "acknowledged"
    UNACKNOWLEDGED = "unacknowledged"  # an acknowledgement withdrawn: escalation resumes
    ASSIGNED = "assigned"
    UNASSIGNED = "unassigned"
    MANUALLY_RESOLVED = "manually_resolved"
    # heavy-pollution-weather warnings (rules.warnings.DecisionKind)
    WARNING_ISSUED = "warning_issued"
    WARNING_UPGRADED = "warning_upgraded"
    WARNING_DOWNGRADED = "warning_downgraded"
    WARNING_LIFTED = "warning_lifted"


class Suppression(StrEnum):
    """Why a transition must not be notified (it is still recorded in the audit trail)."""

    SILENCED = "silenced"  # a matching silence (one-off or recurring window)
    INHIBITED = "inhibited"  # a firing source alert inhibits it (e.g. station offline)
    MAINTENANCE = "maintenance"  # the source reports HJ 212 flag M or C


def fingerprint(labels: Mapping[str, str]) -> str:
    """A deterministic 16-hex-digit id from the identity labels (missing ones count as empty)."""
    canonical = "\x1f".join(f"{k}={labels.get(k, '')}" for k in IDENTITY_LABELS)
    period = labels.get("period")
    if period:
        # the averaging period (hourly, 24h, 8h, day, month, day_time …) tells apart two alerts
        # of one factor at one source, e.g. NO2 1-hour and NO2 24-hour
        canonical += f"\x1fperiod={period}"
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def transition_id(fp: str, state: AlertState, reason: Reason, at: datetime) -> str:
    """A deterministic transition id: hash of fingerprint, state, reason and event time (UTC)."""
    stamp = at.astimezone(UTC).isoformat()
    raw = f"{fp}|{state.value}|{reason.value}|{stamp}"
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat()


def _parse_time(data: Mapping[str, Any], key: str) -> datetime | None:
    raw = data.get(key)
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise StateError(key, f"expected an ISO-8601 string, got {type(raw).__name__}")
    try:
        at = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise StateError(key, f"not ISO-8601: {raw!r}") from exc
    if at.tzinfo is None:
        raise StateError(key, "timestamp without timezone")
    return at


def _require_time(data: Mapping[str, Any], key: str) -> datetime:
    at = _parse_time(data, key)
    if at is None:
        raise StateError(key, "missing")
    return at


def _enum(cls: type[_E], data: Mapping[str, Any], key: str) -> _E:
    raw = data.get(key)
    try:
        return cls(str(raw))
    except ValueError as exc:
        raise StateError(key, f"{raw!r} is not a {cls.__name__}") from exc


def _opt_enum(cls: type[_E], data: Mapping[str, Any], key: str) -> _E | None:
    return None if data.get(key) is None else _enum(cls, data, key)


@dataclass(frozen=True, slots=True)
class Transition:
    """One change of an alert or a warning. Fields are a stable contract for notification."""

    id: str
    kind: TransitionKind
    fingerprint: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    state: AlertState
    previous_state: AlertState | None
    reason: Reason
    at: datetime  # event time of the change (not the wall clock)
    severity: Severity
    locality: str
    source: str
    level: str | None = None  # warnings: yellow / orange / red / none
    suppressed: tuple[Suppression, ...] = ()
    suppressed_by: tuple[str, ...] = ()  # silence ids / inhibiting fingerprints
    actor: str | None = None  # who acknowledged / assigned / resolved
    note: str | None = None
    value: float | None = None
    limit: float | None = None

    @property
    def notify(self) -> bool:
        """True when people should hear about this transition (see module docstring)."""
        if self.suppressed:
            return False
        if self.kind is not TransitionKind.ALERT:
            return True
        return self.state is AlertState.FIRING or self.previous_state is AlertState.FIRING

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (one line of ``alerts.jsonl``)."""
        return {
            "id": self.id,
            "kind": self.kind.value,
            "fingerprint": self.fingerprint,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "state": self.state.value,
            "previous_state": None if self.previous_state is None else self.previous_state.value,
            "reason": self.reason.value,
            "at": _iso(self.at),
            "severity": self.severity.value,
            "locality": self.locality,
            "source": self.source,
            "level": self.level,
            "suppressed": [s.value for s in self.suppressed],
            "suppressed_by": list(self.suppressed_by),
            "actor": self.actor,
            "note": self.note,
            "value": self.value,
            "limit": self.limit,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Transition:
        try:
            return cls(
                id=str(data["id"]),
                kind=_enum(TransitionKind, data, "kind"),
                fingerprint=str(data["fingerprint"]),
                labels={str(k): str(v) for k, v in dict(data.get("labels") or {}).items()},
                annotations={
                    str(k): str(v) for k, v in dict(data.get("annotations") or {}).items()
                },
                state=_enum(AlertState, data, "state"),
                previous_state=_opt_enum(AlertState, data, "previous_state"),
                reason=_enum(Reason, data, "reason"),
                at=_require_time(data, "at"),
                severity=_enum(Severity, data, "severity"),
                locality=str(data["locality"]),
                source=str(data["source"]),
                level=data.get("level"),
                suppressed=tuple(Suppression(s) for s in data.get("suppressed") or ()),
                suppressed_by=tuple(str(s) for s in data.get("suppressed_by") or ()),
                actor=data.get("actor"),
                note=data.get("note"),
                value=data.get("value"),
                limit=data.get("limit"),
            )
        except KeyError as exc:
            raise StateError(str(exc.args[0]), "missing") from exc
        except ValueError as exc:
            raise StateError("transition", str(exc)) from exc


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of an alert's history: what happened, when, and who did it."""

    transition_id: str
    at: datetime
    state: AlertState
    reason: Reason
    actor: str | None = None
    note: str | None = None
    suppressed: tuple[Suppression, ...] = ()
    #: the silences / maintenance windows / inhibiting alerts that suppressed it
    suppressed_by: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "transition_id": self.transition_id,
            "at": _iso(self.at),
            "state": self.state.value,
            "reason": self.reason.value,
            "actor": self.actor,
            "note": self.note,
            "suppressed": [s.value for s in self.suppressed],
            "suppressed_by": list(self.suppressed_by),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditEntry:
        return cls(
            transition_id=str(data.get("transition_id", "")),
            at=_require_time(data, "at"),
            state=_enum(AlertState, data, "state"),
            reason=_enum(Reason, data, "reason"),
            actor=data.get("actor"),
            note=data.get("note"),
            suppressed=tuple(Suppression(s) for s in data.get("suppressed") or ()),
            suppressed_by=tuple(str(s) for s in data.get("suppressed_by") or ()),
        )


#: Audit entries kept inside an alert's state (the full history is the transition stream).
HISTORY_LIMIT: Final[int] = 100


@dataclass(frozen=True, slots=True)
class Alert:
    """The lifecycle state of one alert (one fingerprint). Plain data; see ``to_dict``."""

    fingerprint: str
    labels: Mapping[str, str]
    state: AlertState
    severity: Severity
    annotations: Mapping[str, str] = field(default_factory=dict)
    active_since: datetime | None = None  # first breach of the current episode
    fired_at: datetime | None = None
    resolved_at: datetime | None = None
    last_at: datetime | None = None  # event time of the newest observation processed
    last_breach: bool | None = None  # raw condition of the newest observation
    flap_bits: int = 0  # bit i = the raw condition changed at the i-th newest observation
    flap_count: int = 0  # how many observations the bits cover (≤ the flapping window)
    flapping: bool = False
    acked_by: str | None = None
    acked_at: datetime | None = None
    assignee: str | None = None
    assigned_by: str | None = None
    assigned_at: datetime | None = None
    escalations: int = 0
    late_count: int = 0  # observations older than ``last_at`` (ignored, counted)
    value: float | None = None
    limit: float | None = None
    notified_state: AlertState | None = None  # last state told to people (unsuppressed)
    history: tuple[AuditEntry, ...] = ()

    @property
    def locality(self) -> str:
        return self.labels.get("locality", "")

    @property
    def source(self) -> str:
        return self.labels.get("source", "")

    @property
    def acknowledged(self) -> bool:
        return self.acked_at is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "labels": dict(self.labels),
            "state": self.state.value,
            "severity": self.severity.value,
            "annotations": dict(self.annotations),
            "active_since": _iso(self.active_since),
            "fired_at": _iso(self.fired_at),
            "resolved_at": _iso(self.resolved_at),
            "last_at": _iso(self.last_at),
            "last_breach": self.last_breach,
            "flap_bits": self.flap_bits,
            "flap_count": self.flap_count,
            "flapping": self.flapping,
            "acked_by": self.acked_by,
            "acked_at": _iso(self.acked_at),
            "assignee": self.assignee,
            "assigned_by": self.assigned_by,
            "assigned_at": _iso(self.assigned_at),
            "escalations": self.escalations,
            "late_count": self.late_count,
            "value": self.value,
            "limit": self.limit,
            "notified_state": None if self.notified_state is None else self.notified_state.value,
            "history": [h.to_dict() for h in self.history],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Alert:
        try:
            labels = {str(k): str(v) for k, v in dict(data["labels"]).items()}
            fp = str(data["fingerprint"])
        except KeyError as exc:
            raise StateError(str(exc.args[0]), "missing") from exc
        if fp != fingerprint(labels):
            raise StateError("fingerprint", "does not match the identity labels")
        last_breach = data.get("last_breach")
        if last_breach is not None and not isinstance(last_breach, bool):
            raise StateError("last_breach", "expected true, false or null")
        return cls(
            fingerprint=fp,
            labels=labels,
            state=_enum(AlertState, data, "state"),
            severity=_enum(Severity, data, "severity"),
            annotations={str(k): str(v) for k, v in dict(data.get("annotations") or {}).items()},
            active_since=_parse_time(data, "active_since"),
            fired_at=_parse_time(data, "fired_at"),
            resolved_at=_parse_time(data, "resolved_at"),
            last_at=_parse_time(data, "last_at"),
            last_breach=last_breach,
            flap_bits=int(data.get("flap_bits", 0)),
            flap_count=int(data.get("flap_count", 0)),
            flapping=bool(data.get("flapping", False)),
            acked_by=data.get("acked_by"),
            acked_at=_parse_time(data, "acked_at"),
            assignee=data.get("assignee"),
            assigned_by=data.get("assigned_by"),
            assigned_at=_parse_time(data, "assigned_at"),
            escalations=int(data.get("escalations", 0)),
            late_count=int(data.get("late_count", 0)),
            value=data.get("value"),
            limit=data.get("limit"),
            notified_state=_opt_enum(AlertState, data, "notified_state"),
            history=tuple(AuditEntry.from_dict(h) for h in data.get("history") or ()),
        )


def with_history(
    history: tuple[AuditEntry, ...], entries: Iterable[AuditEntry]
) -> tuple[AuditEntry, ...]:
    """Append audit entries, keeping the newest ``HISTORY_LIMIT``."""
    merged = history + tuple(entries)
    return merged[-HISTORY_LIMIT:]
