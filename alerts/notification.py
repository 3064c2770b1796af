"""The ``Notification`` value: one alert or warning transition addressed to one receiver (pure).

A notification is what the outbox stores and a channel delivers. Its :attr:`Notification.id` is
deterministic — a hash of the alert's fingerprint, the transition's state, its *event* time and the
receiver — so a replay or a restarted worker rebuilds the very same id, the outbox ignores the
second enqueue, and a receiver can deduplicate on the ``Idempotency-Key`` header
(architecture.md §6).

:func:`build_notification` turns a transition of ``alerts.model`` (or anything with the same field
names, see :class:`TransitionLike`) into a notification; :func:`notifications_for` adds routing and
message texts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class NotificationKind(StrEnum):
    """What the notification is about."""

    ALERT = "alert"
    WARNING = "warning"  # a heavy-pollution weather warning (重污染天气预警) change
    #: an enterprise's own duties under a warning change (its measures, 一厂一策)
    DUTY = "warning_duty"


class NotificationStatus(StrEnum):
    """Alertmanager's two statuses: a firing alert or a resolved one."""

    FIRING = "firing"
    RESOLVED = "resolved"


#: Transition states that mean "this is over" (alert resolved, warning lifted).
RESOLVED_STATES: frozenset[str] = frozenset({"resolved", "lifted", "inactive", "cleared"})


class Texts(BaseModel):
    """Message texts for people: Chinese (the default) and English."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    zh: str
    en: str

    def get(self, language: str) -> str:
        """The text in ``language`` (``zh`` or ``en``); Chinese for anything else."""
        return self.en if language == "en" else self.zh


class Notification(BaseModel):
    """One transition for one receiver; frozen, JSON-serialisable (the outbox stores it so)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=16, description="idempotency key: fingerprint+state+at+receiver")
    receiver: str = Field(min_length=1)
    kind: NotificationKind
    status: NotificationStatus
    state: str = Field(description="the lifecycle state of the transition, e.g. firing, lifted")
    reason: str = Field(default="", description="why the transition happened (alerts.model.Reason)")
    fingerprint: str = Field(min_length=1)
    group_key: str = ""
    severity: str = ""
    level: str | None = Field(default=None, description="warnings: yellow / orange / red")
    locality: str = ""
    source: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    at: AwareDatetime = Field(description="event time of the transition")
    starts_at: AwareDatetime
    ends_at: AwareDatetime | None = None
    texts: Texts
    trigger: dict[str, Any] | None = Field(
        default=None, description="warnings: the emergency trigger (reductions, measures)"
    )

    def to_json(self) -> str:
        """Canonical JSON (used by the outbox)."""
        return self.model_dump_json()

    @classmethod
    def from_json(cls, data: str | bytes) -> Notification:
        """Inverse of :meth:`to_json`."""
        return cls.model_validate_json(data)


def notification_id(
    fingerprint: str, state: str, at: datetime, receiver: str, reason: str = ""
) -> str:
    """Deterministic idempotency key (32 hex chars) of one transition for one receiver.

    Hash of fingerprint, state, event time and receiver — plus the transition's reason, so two
    different events of one alert at the same instant (``alerts.model``: *firing* and
    *escalated*) never share a key. The event time is normalised to UTC so the same instant
    written with another offset gives the same key.
    """
    if at.tzinfo is None:
        msg = "at must be timezone-aware"
        raise ValueError(msg)
    key = "\x1f".join((fingerprint, state, reason, at.astimezone(UTC).isoformat(), receiver))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


class TransitionLike(Protocol):
    """The fields of ``alerts.model.Transition`` this module reads.

    Optional fields (``kind``, ``reason``, ``severity``, ``level``, ``locality``, ``source``,
    ``starts_at``, ``trigger``, ``value``, ``limit``, ``notify``) are read with a default when the
    transition has no such attribute.
    """

    @property
    def fingerprint(self) -> str: ...

    @property
    def labels(self) -> Mapping[str, str]: ...

    @property
    def annotations(self) -> Mapping[str, str]: ...

    @property
    def state(self) -> Any: ...

    @property
    def at(self) -> datetime: ...


def _text(value: object) -> str:
    """A StrEnum, an enum or a string as its plain value."""
    inner = getattr(value, "value", value)
    return "" if inner is None else str(inner)


def transition_kind(transition: TransitionLike) -> NotificationKind:
    """``warning`` for heavy-pollution warning transitions, else ``alert``."""
    explicit = _text(getattr(transition, "kind", ""))
    if explicit in {k.value for k in NotificationKind}:
        return NotificationKind(explicit)
    if getattr(transition, "level", None) is not None or transition.labels.get("kind") == "warning":
        return NotificationKind.WARNING
    return NotificationKind.ALERT


def build_notification(
    transition: TransitionLike,
    receiver: str,
    texts: Texts,
    *,
    group_key: str = "",
) -> Notification:
    """The notification of ``transition`` for ``receiver`` with the given message texts."""
    state = _text(transition.state)
    reason = _text(getattr(transition, "reason", ""))
    at = transition.at
    labels = {str(k): str(v) for k, v in transition.labels.items()}
    resolved = state in RESOLVED_STATES
    starts_at = getattr(transition, "starts_at", None) or at
    level = getattr(transition, "level", None)
    trigger = getattr(transition, "trigger", None)
    if trigger is not None and not isinstance(trigger, dict):
        dump = getattr(trigger, "to_dict", None) or getattr(trigger, "model_dump", None)
        trigger = dump() if callable(dump) else None
    if trigger is None and "trigger_json" in transition.annotations:
        # alerts.engine writes the emergency trigger as JSON into this annotation
        try:
            parsed = json.loads(transition.annotations["trigger_json"])
        except ValueError:
            parsed = None
        trigger = parsed if isinstance(parsed, dict) else None
    return Notification(
        id=notification_id(transition.fingerprint, state, at, receiver, reason),
        receiver=receiver,
        kind=transition_kind(transition),
        status=NotificationStatus.RESOLVED if resolved else NotificationStatus.FIRING,
        state=state,
        reason=reason,
        fingerprint=transition.fingerprint,
        group_key=group_key,
        severity=_text(getattr(transition, "severity", "")),
        level=_text(level) or None,
        locality=_text(getattr(transition, "locality", None)) or labels.get("locality", ""),
        source=_text(getattr(transition, "source", None)) or labels.get("source", ""),
        labels=labels,
        annotations={str(k): str(v) for k, v in transition.annotations.items()},
        at=at,
        starts_at=starts_at,
        ends_at=at if resolved else None,
        texts=texts,
        trigger=trigger,
    )


def notifications_for(
    transition: TransitionLike,
    receivers: Iterable[str],
    render: Callable[[TransitionLike], Texts],
    *,
    group_key: Callable[[str], str] | None = None,
) -> list[Notification]:
    """One notification per receiver (texts rendered once), in receiver order, no duplicates.

    Nothing when the transition says it must not be notified (``alerts.model.Transition.notify``
    is False: suppressed, or audit only).
    """
    if not getattr(transition, "notify", True):
        return []
    texts = render(transition)
    seen: set[str] = set()
    out: list[Notification] = []
    for receiver in receivers:
        if receiver in seen:
            continue
        seen.add(receiver)
        key = group_key(receiver) if group_key is not None else ""
        out.append(build_notification(transition, receiver, texts, group_key=key))
    return out
