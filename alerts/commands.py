"""People's commands on alert state (pure): acknowledge, assign, resolve, silence, maintenance.

The alerts service (``envwatch api``) never writes alert state. It turns each accepted request
into a :class:`Command` and produces it to the locality stage's input topic ``aggregates``
(key = the locality id, so the command is ordered with that locality's data and replayed with it
from checkpoints; wire form in :mod:`streams.commands`). The locality stage
(:class:`alerts.locality.LocalityState` → :meth:`alerts.engine.Engine.command`) applies or
refuses it and writes one :class:`CommandResult` per command to topic ``alert-commands`` (key =
locality) and the transitions it caused to ``alert-events`` as usual.

* **Effective time.** A command takes effect at the event time of its locality's data, never at
  the wall clock: the alert's source clock (``LocalityState.clocks``), else the locality's
  watermark, else (nothing seen yet) ``issued_at``; and never earlier than the newest transition
  of the alert. So a replay of the same topic gives the same transition ids.
* **Refusals** are named (:class:`Refusal`), never an exception.
* **Idempotency.** A command id applied (or refused) once is a no-op the second time (the engine
  keeps the ids of the last :data:`KEEP_COMMAND_IDS` commands in its checkpointed state).
* **Maintenance windows** are silences with the matcher ``source=<id>`` and an id starting with
  :data:`MAINTENANCE_PREFIX`; the transitions they suppress are marked ``maintenance`` and name
  the window in ``suppressed_by``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from rules.evaluate import Point

from alerts.silences import Matcher, MatchOp, Silence

#: The measurement of a command point on ``aggregates`` (streams/commands.py).
MEASUREMENT: Final = "command"

#: Id prefix of a maintenance window (a silence with matcher ``source=<id>``).
MAINTENANCE_PREFIX: Final = "maint-"

#: How many command ids the engine keeps for idempotency (per locality). envwatch's choice
#: [MEM]: a retry or redelivery comes within minutes; a locality sees far fewer than 1,000
#: commands in that time (the API rate-limits POSTs).
KEEP_COMMAND_IDS: Final = 1000

#: The longest note a command may carry (characters).
NOTE_MAX: Final = 2000

Action = Literal[
    "ack",
    "unack",
    "assign",
    "unassign",
    "resolve",
    "silence",
    "unsilence",
    "maintenance_start",
    "maintenance_end",
    "regional_warning",
]
Role = Literal["duty", "enterprise", "emergency", "admin"]

#: Actions on one alert (they need ``fingerprint``).
ALERT_ACTIONS: Final[frozenset[str]] = frozenset({"ack", "unack", "assign", "unassign", "resolve"})

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"


class Refusal(StrEnum):
    """Why the locality stage refused a command (``CommandResult.reason``)."""

    WRONG_LOCALITY = "wrong_locality"  # the command was sent to another locality's stage
    UNKNOWN_ALERT = "unknown_alert"  # no alert with that fingerprint in the locality
    NOT_FIRING = "not_firing"  # ack of an alert that is pending or resolved
    NOT_ACKNOWLEDGED = "not_acknowledged"  # unack of an alert nobody acknowledged
    ALERT_RESOLVED = "alert_resolved"  # assign / unassign / resolve of a resolved alert
    NOT_ASSIGNED = "not_assigned"  # unassign of an alert with no assignee
    MANUAL_RESOLVE_NOT_ALLOWED = "manual_resolve_not_allowed"  # AlertRule.manual_resolve false
    UNKNOWN_SILENCE = "unknown_silence"  # unsilence / maintenance_end of an id not held
    SILENCE_EXISTS = "silence_exists"  # a silence with that id is already held
    SILENCE_ENDED = "silence_ended"  # unsilence of a silence that has already ended
    RESERVED_ID = "reserved_id"  # a silence id with the maintenance prefix (or vice versa)
    UNKNOWN_SOURCE = "unknown_source"  # maintenance for a source not in the locality
    NOT_OUTLET_OR_MONITOR = "not_outlet_or_monitor"  # maintenance for a station or section
    OTHER_ENTERPRISE = "other_enterprise"  # an enterprise principal on another's alert/source
    WINDOW_ENDED = "window_ended"  # a maintenance window that ends before it takes effect


class Command(BaseModel):
    """One person's command, as the alerts service produced it (audited as is)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=_ID, description="chosen by the API (uuid4 hex); idempotency key")
    action: Action
    locality: str = Field(min_length=1, description="the locality whose stage applies it")
    actor: str = Field(min_length=1, max_length=200, description="principal name (audited)")
    role: Role
    #: the principal's enterprise (role ``enterprise``): the stage refuses an alert or source
    #: of another enterprise (the API checks this too; the stage is the last line)
    enterprise: str | None = None
    note: str = Field(default="", max_length=NOTE_MAX, description="the why (audited)")
    issued_at: AwareDatetime = Field(description="wall clock at the API (audited only)")
    fingerprint: str | None = None  # ack / unack / assign / unassign / resolve
    assignee: str | None = Field(default=None, max_length=200)  # assign
    silence: Silence | None = None  # silence (its id chosen by the API)
    #: unsilence: the silence to expire; maintenance_end: the window to end;
    #: maintenance_start: the window's id (optional, default :func:`maintenance_id`)
    silence_id: str | None = None
    source: str | None = None  # maintenance_start (/ maintenance_end: every window of it)
    #: maintenance_start, regional_warning (None: when it takes effect)
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None  # maintenance_start, regional_warning
    #: regional_warning: a warning issued by the province or a regional centre for an area
    #: (区域预警): its id (a later command with the same id changes or ends it), its level
    #: (``none`` ends it), its issuer and the area it covers; one command per locality of it
    regional_id: str | None = Field(default=None, pattern=_ID)
    regional_level: Literal["yellow", "orange", "red", "none"] | None = None
    issuer: str | None = Field(default=None, max_length=200)
    area: tuple[str, ...] = Field(default=(), max_length=200)

    @model_validator(mode="after")
    def _fields_for_action(self) -> Command:
        a = self.action
        if a in ALERT_ACTIONS and not self.fingerprint:
            raise ValueError(f"{a} needs fingerprint")
        if a == "assign" and not self.assignee:
            raise ValueError("assign needs assignee")
        if a == "silence" and self.silence is None:
            raise ValueError("silence needs silence")
        if a == "unsilence" and not self.silence_id:
            raise ValueError("unsilence needs silence_id")
        if a == "maintenance_start":
            if not self.source or self.ends_at is None:
                raise ValueError("maintenance_start needs source and ends_at")
            if self.starts_at is not None and self.ends_at <= self.starts_at:
                raise ValueError("ends_at must be after starts_at")
        if a == "maintenance_end" and not (self.silence_id or self.source):
            raise ValueError("maintenance_end needs silence_id or source")
        if a == "regional_warning":
            if not self.regional_id or self.regional_level is None or not self.issuer:
                raise ValueError("regional_warning needs regional_id, regional_level and issuer")
            if self.role != "admin":
                raise ValueError("a regional warning is issued by an admin principal only")
            if (
                self.starts_at is not None
                and self.ends_at is not None
                and self.ends_at <= self.starts_at
            ):
                raise ValueError("ends_at must be after starts_at")
        if self.role == "enterprise" and not self.enterprise:
            raise ValueError("an enterprise principal's command needs enterprise")
        return self

    def to_json(self) -> str:
        return self.model_dump_json()


class CommandResult(BaseModel):
    """What became of one command: one record on ``alert-commands`` (key = locality)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    command: Command
    status: Literal["applied", "refused"]
    reason: Refusal | None = None  # None when applied
    detail: str = ""  # the refusal in words (English), for logs and the API
    at: AwareDatetime  # the effective event time
    transitions: tuple[str, ...] = ()  # ids of the transitions it caused (alert-events)
    #: the locality's complete list of silences and maintenance windows after the command
    silences: tuple[Silence, ...] = ()

    @property
    def id(self) -> str:
        return self.command.id

    @property
    def locality(self) -> str:
        return self.command.locality

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, value: bytes | str) -> CommandResult:
        return cls.model_validate_json(value)


def maintenance_id(source: str, command_id: str) -> str:
    """The id of the maintenance window a ``maintenance_start`` command creates by default."""
    return f"{MAINTENANCE_PREFIX}{source}-{command_id[:12]}"


def is_maintenance(silence: Silence) -> bool:
    return silence.id.startswith(MAINTENANCE_PREFIX)


def maintenance_silence(cmd: Command, at: datetime) -> Silence:
    """The silence a ``maintenance_start`` command declares, effective at ``at`` (its own
    ``starts_at`` when given). Raises ``ValueError`` when the window ends before it starts
    (the engine refuses such a command first: :attr:`Refusal.WINDOW_ENDED`)."""
    if cmd.source is None or cmd.ends_at is None:
        raise ValueError("maintenance_start needs source and ends_at")
    return Silence(
        id=cmd.silence_id or maintenance_id(cmd.source, cmd.id),
        matchers=(Matcher(name="source", op=MatchOp.EQ, value=cmd.source),),
        created_by=cmd.actor,
        comment=cmd.note,
        starts_at=cmd.starts_at if cmd.starts_at is not None else at,
        ends_at=cmd.ends_at,
    )


def source_kind(detail: Mapping[str, str]) -> str:
    """What a catalogued source is, from its locality-context detail: ``outlet``, ``station``,
    ``section`` or ``monitor`` (streams.catalog.locality_context marks the first three)."""
    for kind in ("outlet", "station", "section"):
        if kind in detail:
            return kind
    return "monitor"


def command_point(cmd: Command) -> Point:
    """A command as the point carried on ``aggregates`` (stamped ``issued_at``, which the locality
    stage never uses as event time)."""
    return Point(
        MEASUREMENT,
        {"locality": cmd.locality},
        {"command": cmd.model_dump_json()},
        cmd.issued_at,
    )


def command_of(point: Mapping[str, Any]) -> Command:
    """The command in a decoded ``command`` point; raises ``ValueError`` (pydantic's
    ValidationError is one) when it is not a valid command."""
    fields = point.get("fields")
    if not isinstance(fields, Mapping):
        raise ValueError("command point without fields")
    raw = fields.get("command")
    if not isinstance(raw, str):
        raise ValueError("command point without a 'command' JSON string")
    cmd = Command.model_validate_json(raw)
    tags = point.get("tags")
    if isinstance(tags, Mapping) and tags.get("locality") not in (None, cmd.locality):
        raise ValueError(
            f"command {cmd.id}: point tag locality {tags.get('locality')!r} is not the "
            f"command's {cmd.locality!r}"
        )
    return cmd
