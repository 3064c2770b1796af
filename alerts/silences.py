"""Silences (pure): label matchers plus a one-off or recurring time window, and HJ 212 M/C flags.

A silence mutes the *notification* of matching alerts while it is active; the lifecycle keeps
running and every transition is still recorded (marked ``suppressed``), so when the silence ends the
engine tells people the state they missed (``Reason.SUPPRESSION_ENDED``).

Recurring windows are wall-clock windows in Beijing time (Asia/Shanghai), e.g. an enterprise's
declared weekly maintenance "Tuesdays 08:00–12:00" or a nightly "23:00–01:00" (a window may cross
midnight; it then belongs to the day it starts on). Alertmanager silences cannot recur
(prometheus/alertmanager#3339, peers.md §1.1); these can.

Matchers follow Alertmanager: ``=``, ``!=``, ``=~``, ``!~`` (regular expressions anchored at both
ends). A label that is absent matches as the empty string.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime, time, timedelta
from enum import StrEnum
from functools import cached_property
from typing import Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_serializer, model_validator
from rules.beijing import BEIJING

#: HJ 212-2017 表8 flags that suppress alerts of a source: M 维护 (maintenance), C 校准 (calibration).
MAINTENANCE_FLAGS: Final[frozenset[str]] = frozenset({"M", "C"})


def in_maintenance(flags: Iterable[str]) -> bool:
    """True when a sample carries a maintenance or calibration flag (HJ 212-2017 表8: M, C)."""
    return any(f in MAINTENANCE_FLAGS for f in flags)


class MatchOp(StrEnum):
    EQ = "="
    NE = "!="
    RE = "=~"
    NRE = "!~"


class Matcher(BaseModel):
    """One label matcher, e.g. ``{name: source, op: "=", value: e-weifang-007}``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    op: MatchOp = MatchOp.EQ
    value: str

    @model_validator(mode="after")
    def _regex_compiles(self) -> Matcher:
        if self.op in (MatchOp.RE, MatchOp.NRE):
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"value is not a valid regular expression: {exc}") from exc
        return self

    @cached_property
    def _pattern(self) -> re.Pattern[str]:
        return re.compile(f"(?:{self.value})\\Z")

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op is MatchOp.EQ:
            return actual == self.value
        if self.op is MatchOp.NE:
            return actual != self.value
        hit = self._pattern.match(actual) is not None
        return hit if self.op is MatchOp.RE else not hit


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


_WEEKDAYS: Final[tuple[Weekday, ...]] = tuple(Weekday)  # date.weekday(): Monday = 0


class Recurrence(BaseModel):
    """A daily or weekly wall-clock window in Asia/Shanghai."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    every: Literal["day", "week"]
    start: time
    end: time  # end <= start: the window crosses midnight
    weekdays: frozenset[Weekday] = frozenset()  # for "week": the days the window *starts* on

    @field_serializer("weekdays")
    def _weekdays_in_order(self, days: frozenset[Weekday]) -> list[str]:
        # Monday first, never the set's hash order: a checkpoint or a command result written
        # twice is the same bytes
        return [d.value for d in _WEEKDAYS if d in days]

    @model_validator(mode="after")
    def _check(self) -> Recurrence:
        if self.every == "week" and not self.weekdays:
            raise ValueError("a weekly recurrence needs weekdays")
        if self.every == "day" and self.weekdays:
            raise ValueError("a daily recurrence takes no weekdays")
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("start/end are Beijing wall-clock times without an offset")
        return self

    def active_at(self, now: datetime) -> bool:
        local = now.astimezone(BEIJING)
        # the window may have started today or (crossing midnight) yesterday
        for days_back in (0, 1):
            day = (local - timedelta(days=days_back)).date()
            if self.every == "week" and _WEEKDAYS[day.weekday()] not in self.weekdays:
                continue
            start = datetime.combine(day, self.start, BEIJING)
            end_day = day if self.end > self.start else day + timedelta(days=1)
            end = datetime.combine(end_day, self.end, BEIJING)
            if start <= local < end:
                return True
        return False


class Silence(BaseModel):
    """Mute matching alerts during ``[starts_at, ends_at)`` and, if recurring, only in its windows."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    matchers: tuple[Matcher, ...] = Field(min_length=1)
    created_by: str = Field(min_length=1)
    comment: str = ""
    starts_at: AwareDatetime
    ends_at: AwareDatetime | None = None  # None: open-ended (recurring maintenance)
    recurrence: Recurrence | None = None

    @model_validator(mode="after")
    def _check(self) -> Silence:
        if self.ends_at is not None and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.ends_at is None and self.recurrence is None:
            raise ValueError("a one-off silence needs ends_at")
        return self

    def active_at(self, now: datetime) -> bool:
        if now < self.starts_at or (self.ends_at is not None and now >= self.ends_at):
            return False
        return self.recurrence is None or self.recurrence.active_at(now)

    def mutes(self, labels: Mapping[str, str], now: datetime) -> bool:
        return self.active_at(now) and matches_all(self.matchers, labels)


def silenced_by(silences: Iterable[Silence], labels: Mapping[str, str], now: datetime) -> list[str]:
    """Ids of the silences that mute ``labels`` at ``now`` (sorted, for deterministic output)."""
    return sorted(s.id for s in silences if s.mutes(labels, now))
