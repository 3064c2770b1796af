"""Request and response bodies of the alerts API (docs/api.md §4)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from alerts.commands import NOTE_MAX
from alerts.silences import Matcher, Recurrence


class HistoryOut(BaseModel):
    id: str
    at: datetime
    state: str
    reason: str
    actor: str | None
    note: str
    suppressed_by: list[str]


class AlertOut(BaseModel):
    id: str = Field(description="the alert's fingerprint")
    kind: str = "alert"
    rule: str
    rule_kind: str
    source: str
    source_name: str
    factor: str
    period: str
    locality: str
    enterprise: str | None
    severity: str
    level: str | None = None
    state: str
    summary: str
    summary_en: str
    since: datetime
    fired_at: datetime | None
    resolved_at: datetime | None
    acknowledged: bool
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    ack_note: str
    assignee: str | None
    suppressed_by: list[str]
    escalations: int
    receivers: list[str] = Field(default_factory=list, description="receivers told")
    url: str


class AlertDetail(AlertOut):
    history: list[HistoryOut]


class AlertList(BaseModel):
    items: list[AlertOut]
    count: int


class Note(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field("", max_length=NOTE_MAX)


class AssignIn(Note):
    assignee: str = Field(min_length=1, max_length=200)


class SilenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    matchers: list[Matcher] = Field(min_length=1, max_length=20)
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    recurrence: Recurrence | None = None
    comment: str = Field("", max_length=NOTE_MAX)


class MaintenanceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str = Field(min_length=1, max_length=200)
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime
    note: str = Field("", max_length=NOTE_MAX)


class RegionalWarningIn(BaseModel):
    """A regional heavy-pollution warning (区域预警) issued by the province or a regional centre:
    every locality of ``area`` is raised to at least ``level`` (``none`` ends the warning
    ``id`` early) from ``starts_at`` (default: at once) until ``ends_at`` (default: until
    ended)."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
    level: Literal["yellow", "orange", "red", "none"]
    area: list[str] = Field(min_length=1, max_length=200)
    issuer: str = Field(min_length=1, max_length=200)
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    note: str = Field("", max_length=NOTE_MAX)


class SilenceOut(BaseModel):
    id: str
    locality: str
    matchers: list[dict[str, str]]
    created_by: str
    comment: str
    starts_at: datetime
    ends_at: datetime | None
    recurrence: dict[str, Any] | None
    maintenance: bool


class SilenceList(BaseModel):
    items: list[SilenceOut]


class Accepted(BaseModel):
    command: str = Field(description="the command id (first of a fan-out)")
    status: Literal["applied", "refused", "pending"]
    reason: str | None = None
    detail: str = ""
    commands: list[str] = Field(default_factory=list, description="every command sent")
    silence: str | None = None


class CommandOut(BaseModel):
    command: dict[str, Any]
    status: str
    reason: str | None
    detail: str
    at: datetime
    transitions: list[str]


class Problem(BaseModel):
    detail: str
