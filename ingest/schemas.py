"""MQTT payload schemas (pure): one message = one source's sample at one time, all factors.

Wire format (UTF-8 JSON, schema version 1; documented in docs/mqtt.md)::

    {"schema": 1, "kind": "air", "locality": "weifang", "source": "aq-wf-001",
     "time": "2026-11-22T08:00:00+08:00", "interval": "hour",
     "values": {"pm25": {"value": 35.0, "flag": "N"}, "o3": {"value": 80}}}

``time`` is the label of the sample as architecture.md §5 defines it: for an hourly air sample
the *end* of the hour (mean over (t−1h, t]); gateways convert HJ 212 period-start labels.
"""

from __future__ import annotations

import math
from datetime import date as date_
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator
from rules.errors import InvalidReading
from rules.factors import BY_KIND, Kind
from rules.flags import VALID_FLAGS, Flag
from rules.forecast import issue_of

SCHEMA_VERSION = 1

SourceId = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
]
LocalityId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")]


# HJ 212-2017 表8 data flags: one vocabulary for the whole system (rules.flags), re-exported here
# because the payload model uses it.
__all__ = [
    "VALID_FLAGS",
    "Flag",
    "ForecastDayIn",
    "ForecastIssue",
    "Interval",
    "Sample",
    "Value",
    "topic_for",
]


class Interval(StrEnum):
    RT = "rt"
    MIN = "min"
    HOUR = "hour"
    DAY = "day"


class Value(BaseModel):
    """One factor's value with its data flag."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    value: float | None
    flag: Flag = Flag.N

    @field_validator("value")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("value must be a finite number")
        return v


class Sample(BaseModel):
    """One source's sample at one time (the MQTT payload, schema 1)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    schema_version: Literal[1] = Field(default=1, alias="schema")
    kind: Kind
    locality: LocalityId
    source: SourceId
    time: AwareDatetime
    interval: Interval = Interval.HOUR
    values: dict[str, Value] = Field(min_length=1)

    @model_validator(mode="after")
    def _known_factors(self) -> Sample:
        vocab = BY_KIND[self.kind]
        unknown = sorted(set(self.values) - set(vocab))
        if unknown:
            raise ValueError(
                f"unknown factor(s) for kind {self.kind.value!r}: {', '.join(unknown)}"
            )
        return self


class ForecastDayIn(BaseModel):
    """One target day of a forecast issue: the daily AQI or a range, and the primary pollutant."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    date: date_
    aqi: int | None = Field(default=None, ge=0, le=500)
    aqi_min: int | None = Field(default=None, ge=0, le=500)
    aqi_max: int | None = Field(default=None, ge=0, le=500)
    primary: str | None = None


class ForecastIssue(BaseModel):
    """An AQI forecast issue (rules/forecast.py) on ``env/forecast/{locality}/{source}``: its
    ``time`` is the issue time; ``days`` the target days (docs/mqtt.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    schema_version: Literal[1] = Field(default=1, alias="schema")
    kind: Literal[Kind.FORECAST]
    locality: LocalityId
    source: SourceId
    time: AwareDatetime
    issuer: str = Field(min_length=1, max_length=200)
    days: list[ForecastDayIn] = Field(min_length=1, max_length=15)

    @model_validator(mode="after")
    def _days(self) -> ForecastIssue:
        try:
            issue_of(self.issuer, [d.model_dump(mode="json", exclude_none=True) for d in self.days])
        except InvalidReading as exc:
            raise ValueError(f"{exc.factor}: {exc.reason}") from exc
        return self


def topic_for(sample: Sample) -> str:
    """The MQTT topic a sample is published on: ``env/{kind}/{locality}/{source}``."""
    return f"env/{sample.kind.value}/{sample.locality}/{sample.source}"
