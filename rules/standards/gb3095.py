"""GB 3095 环境空气质量标准 — concentration limits and data-validity minima, by edition.

Editions, selected by the event's own time (architecture.md §5, standards.md §2.1):

* ``GB 3095-2012`` (with its 2018 修改单) — until 2026-02-28 24:00 Beijing time.
* ``GB 3095-2026 过渡`` — transitional limits, 2026-03-01 00:00 … 2030-12-31 24:00 (GB 3095-2026 §4.4).
* ``GB 3095-2026`` — final limits from 2031-01-01 00:00 Asia/Shanghai (GB 3095-2026 §4.4).

Area grades (GB 3095-2026 §4.1): grade I (一类区: national parks, nature reserves …), grade II
(二类区: residential, commercial, industrial, rural …). Units µg/m³, CO mg/m³.

GB 3095-2012 values are [2+] in standards.md (a reproduction of 表1/表2, consistent with the 2026
transitional column and HJ 633's IAQI 50/100 points); GB 3095-2026 values are [STD].
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum, StrEnum
from types import MappingProxyType
from typing import Final

from rules.beijing import BEIJING
from rules.errors import InvalidReading

__all__ = [
    "EDITIONS",
    "GB3095_2012",
    "GB3095_2026_FINAL",
    "GB3095_2026_TRANSITIONAL",
    "MIN_DAYS_PER_MONTH",
    "MIN_DAYS_PER_MONTH_FEBRUARY",
    "MIN_DAYS_PER_YEAR",
    "MIN_HOURS_PER_8H",
    "MIN_HOURS_PER_DAY",
    "MIN_MINUTES_PER_HOUR",
    "SWITCH_2026",
    "SWITCH_FINAL",
    "Grade",
    "Limit",
    "LimitEdition",
    "Period",
    "edition_at",
]

#: GB 3095-2026 takes effect 2026-03-01 (GB 3095-2026 封面 实施日期).
SWITCH_2026: Final = datetime(2026, 3, 1, tzinfo=BEIJING)
#: GB 3095-2026 §4.4: the final limits apply nationwide from 2031-01-01.
SWITCH_FINAL: Final = datetime(2031, 1, 1, tzinfo=BEIJING)

# ---------------------------------------------------------------- 表4 data validity
# GB 3095-2012 表4 = GB 3095-2026 表4 (standards.md §2.2: [2+] for 2012, [STD] for 2026).
#: 1-h mean of SO2/NO2/CO/O3/NOx: at least 45 minutes of sampling per hour.
MIN_MINUTES_PER_HOUR: Final = 45
#: 24-h mean of SO2/NO2/CO/PM10/PM2.5/NOx: at least 20 hourly means per day.
MIN_HOURS_PER_DAY: Final = 20
#: O3 8-h mean: at least 6 hourly means in the 8 hours.
MIN_HOURS_PER_8H: Final = 6
#: Annual mean of SO2/NO2/PM10/PM2.5/NOx: at least 324 daily means per year …
MIN_DAYS_PER_YEAR: Final = 324
#: … and at least 27 daily means in each month …
MIN_DAYS_PER_MONTH: Final = 27
#: … February at least 25.
MIN_DAYS_PER_MONTH_FEBRUARY: Final = 25


class Grade(IntEnum):
    """Ambient-air functional area grade (环境空气功能区类别)."""

    I = 1  # noqa: E741 — the standard's own name for the grade
    II = 2


class Period(StrEnum):
    """Averaging period of a limit (平均时间)."""

    ANNUAL = "annual"  # 年平均
    QUARTERLY = "quarterly"  # 季平均 (Pb)
    DAILY = "daily"  # 24 小时平均 / 日平均
    MAX_8H = "max_8h"  # 日最大 8 小时平均 (O3)
    HOURLY = "hourly"  # 1 小时平均


@dataclass(frozen=True, slots=True)
class Limit:
    pollutant: str
    period: Period
    grade: Grade
    value: float
    unit: str
    source: str


@dataclass(frozen=True, slots=True)
class LimitEdition:
    name: str
    valid_from: datetime | None
    valid_until: datetime | None
    limits: Mapping[tuple[str, Period, Grade], Limit]

    def limit(self, pollutant: str, period: Period, grade: Grade) -> Limit | None:
        return self.limits.get((pollutant, period, grade))


_A, _Q, _D, _8, _H = Period.ANNUAL, Period.QUARTERLY, Period.DAILY, Period.MAX_8H, Period.HOURLY

# (pollutant, period, grade I, grade II, unit)
_Row = tuple[str, Period, float, float, str]

_2012: Final[tuple[_Row, ...]] = (
    # GB 3095-2012 表1 基本项目 (standards.md §2.1)
    ("so2", _A, 20, 60, "ug/m3"), ("so2", _D, 50, 150, "ug/m3"), ("so2", _H, 150, 500, "ug/m3"),
    ("no2", _A, 40, 40, "ug/m3"), ("no2", _D, 80, 80, "ug/m3"), ("no2", _H, 200, 200, "ug/m3"),
    ("co", _D, 4, 4, "mg/m3"), ("co", _H, 10, 10, "mg/m3"),
    ("o3", _8, 100, 160, "ug/m3"), ("o3", _H, 160, 200, "ug/m3"),
    ("pm10", _A, 40, 70, "ug/m3"), ("pm10", _D, 50, 150, "ug/m3"),
    ("pm25", _A, 15, 35, "ug/m3"), ("pm25", _D, 35, 75, "ug/m3"),
    # GB 3095-2012 表2 其他项目
    ("tsp", _A, 80, 200, "ug/m3"), ("tsp", _D, 120, 300, "ug/m3"),
    ("nox", _A, 50, 50, "ug/m3"), ("nox", _D, 100, 100, "ug/m3"), ("nox", _H, 250, 250, "ug/m3"),
    ("pb", _A, 0.5, 0.5, "ug/m3"), ("pb", _Q, 1, 1, "ug/m3"),
    ("bap", _A, 0.001, 0.001, "ug/m3"), ("bap", _D, 0.0025, 0.0025, "ug/m3"),
)  # fmt: skip

_2026_TRANSITIONAL: Final[tuple[_Row, ...]] = (
    # GB 3095-2026 表1 基本项目, 过渡限值 (2026-03-01 … 2030-12-31)
    ("so2", _A, 20, 60, "ug/m3"), ("so2", _D, 50, 150, "ug/m3"), ("so2", _H, 150, 500, "ug/m3"),
    ("no2", _A, 40, 40, "ug/m3"), ("no2", _D, 80, 80, "ug/m3"), ("no2", _H, 200, 200, "ug/m3"),
    ("co", _D, 4, 4, "mg/m3"), ("co", _H, 10, 10, "mg/m3"),
    ("o3", _8, 100, 160, "ug/m3"), ("o3", _H, 160, 200, "ug/m3"),
    ("pm10", _A, 40, 60, "ug/m3"), ("pm10", _D, 50, 120, "ug/m3"),
    ("pm25", _A, 15, 30, "ug/m3"), ("pm25", _D, 35, 60, "ug/m3"),
    # GB 3095-2026 表2 其他项目 (NOx: transitional 50 / 100)
    ("tsp", _A, 80, 200, "ug/m3"), ("tsp", _D, 120, 300, "ug/m3"),
    ("nox", _A, 50, 50, "ug/m3"), ("nox", _D, 100, 100, "ug/m3"), ("nox", _H, 250, 250, "ug/m3"),
    ("pb", _A, 0.5, 0.5, "ug/m3"), ("pb", _Q, 1, 1, "ug/m3"),
    ("bap", _A, 0.001, 0.001, "ug/m3"), ("bap", _D, 0.0025, 0.0025, "ug/m3"),
)  # fmt: skip

_2026_FINAL: Final[tuple[_Row, ...]] = (
    # GB 3095-2026 表1 基本项目, 最终限值 (from 2031-01-01)
    ("so2", _A, 20, 20, "ug/m3"), ("so2", _D, 50, 50, "ug/m3"), ("so2", _H, 150, 150, "ug/m3"),
    ("no2", _A, 30, 30, "ug/m3"), ("no2", _D, 50, 50, "ug/m3"), ("no2", _H, 200, 200, "ug/m3"),
    ("co", _D, 4, 4, "mg/m3"), ("co", _H, 10, 10, "mg/m3"),
    ("o3", _8, 100, 160, "ug/m3"), ("o3", _H, 160, 200, "ug/m3"),
    ("pm10", _A, 20, 50, "ug/m3"), ("pm10", _D, 50, 100, "ug/m3"),
    ("pm25", _A, 10, 25, "ug/m3"), ("pm25", _D, 25, 50, "ug/m3"),
    # GB 3095-2026 表2 其他项目 (NOx final 40 / 70)
    ("tsp", _A, 80, 200, "ug/m3"), ("tsp", _D, 120, 300, "ug/m3"),
    ("nox", _A, 40, 40, "ug/m3"), ("nox", _D, 70, 70, "ug/m3"), ("nox", _H, 250, 250, "ug/m3"),
    ("pb", _A, 0.5, 0.5, "ug/m3"), ("pb", _Q, 1, 1, "ug/m3"),
    ("bap", _A, 0.001, 0.001, "ug/m3"), ("bap", _D, 0.0025, 0.0025, "ug/m3"),
)  # fmt: skip


def _build(rows: tuple[_Row, ...], source: str) -> Mapping[tuple[str, Period, Grade], Limit]:
    out: dict[tuple[str, Period, Grade], Limit] = {}
    for pollutant, period, g1, g2, unit in rows:
        tag = "表1" if pollutant in {"so2", "no2", "co", "o3", "pm10", "pm25"} else "表2"
        for grade, value in ((Grade.I, g1), (Grade.II, g2)):
            out[(pollutant, period, grade)] = Limit(
                pollutant, period, grade, float(value), unit, f"{source} {tag}"
            )
    return MappingProxyType(out)


GB3095_2012: Final = LimitEdition("GB 3095-2012", None, SWITCH_2026, _build(_2012, "GB 3095-2012"))
GB3095_2026_TRANSITIONAL: Final = LimitEdition(
    "GB 3095-2026 过渡限值",
    SWITCH_2026,
    SWITCH_FINAL,
    _build(_2026_TRANSITIONAL, "GB 3095-2026 过渡限值"),
)
GB3095_2026_FINAL: Final = LimitEdition(
    "GB 3095-2026 最终限值", SWITCH_FINAL, None, _build(_2026_FINAL, "GB 3095-2026 最终限值")
)
EDITIONS: Final = (GB3095_2012, GB3095_2026_TRANSITIONAL, GB3095_2026_FINAL)


def edition_at(at: datetime) -> LimitEdition:
    """The GB 3095 limit set in force at the timezone-aware instant ``at``."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidReading("naive datetime; the event time must be timezone-aware", value=at)
    if at < SWITCH_2026:
        return GB3095_2012
    if at < SWITCH_FINAL:
        return GB3095_2026_TRANSITIONAL
    return GB3095_2026_FINAL
