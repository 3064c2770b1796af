"""Ambient-air limit exceedance against GB 3095 (环境空气质量标准), edition by event time.

``exceedance(pollutant, value, period=…, at=…, grade=…)`` compares a concentration statistic of the
right averaging period (1-h, 24-h/daily, O3 daily max 8-h, annual …) with the limit of the
area grade in the edition in force at ``at``:

* before 2026-03-01 00:00 Beijing: GB 3095-2012;
* 2026-03-01 … 2030-12-31: GB 3095-2026 transitional limits; from 2031-01-01: final limits.

From 2026 the judgement is a concentration comparison (HJ 633-2026 deleted the "IAQI > 100"
exceedance pollutant; standards.md §1.3). For GB 3095-2012 grade II the concentration comparison
is the same judgement as HJ 633-2012 §4.4.2 IAQI > 100, because the IAQI-100 breakpoints equal the
grade-II limits (tests/rules/test_ambient.py checks this), so one method serves both editions.

A value equal to the limit complies (the limits are "不超过"). The exceedance multiple (超标倍数)
is (C − limit) / limit. The value is compared as given (no rounding here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from rules.beijing import BEIJING
from rules.errors import InvalidReading, NoLimit
from rules.standards.gb3095 import Grade, Period, edition_at

__all__ = ["Exceedance", "Status", "exceedance"]


class Status(StrEnum):
    WITHIN = "within"  # 达标
    EXCEEDED = "exceeded"  # 超标


@dataclass(frozen=True, slots=True)
class Exceedance:
    pollutant: str
    period: Period
    grade: Grade
    value: float
    limit: float
    unit: str
    edition: str
    source: str
    status: Status
    #: value / limit
    ratio: float
    #: (value − limit) / limit when exceeded (超标倍数), else None
    multiple: float | None

    @property
    def exceeded(self) -> bool:
        return self.status is Status.EXCEEDED


def exceedance(
    pollutant: str,
    value: float,
    *,
    period: Period,
    at: datetime | date,
    grade: Grade = Grade.II,
) -> Exceedance:
    """Judge one statistic against GB 3095.

    ``at``: the statistic's time label — the hour label (end of the hour) for 1-h values, the
    Beijing day (a ``date``, taken at its 00:00) for daily values, and for longer periods any
    instant of the period the caller wants the edition of (e.g. its first day).
    Raises :class:`~rules.errors.NoLimit` when the edition has no such limit (e.g. PM2.5 1-h),
    :class:`~rules.errors.InvalidReading` for a negative or non-finite value.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidReading("value must be a finite number", factor=pollutant, value=value)
    if value < 0:
        raise InvalidReading("value must be >= 0", factor=pollutant, value=value)
    when = at if isinstance(at, datetime) else datetime(at.year, at.month, at.day, tzinfo=BEIJING)
    edition = edition_at(when)
    grade = Grade(grade)
    period = Period(period)
    lim = edition.limit(pollutant, period, grade)
    if lim is None:
        raise NoLimit(edition.name, pollutant, period.value, int(grade))
    v = float(value)
    exceeded = v > lim.value
    return Exceedance(
        pollutant=pollutant,
        period=period,
        grade=grade,
        value=v,
        limit=lim.value,
        unit=lim.unit,
        edition=edition.name,
        source=lim.source,
        status=Status.EXCEEDED if exceeded else Status.WITHIN,
        ratio=v / lim.value,
        multiple=(v - lim.value) / lim.value if exceeded else None,
    )
