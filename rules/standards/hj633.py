"""HJ 633 环境空气质量指数（AQI）技术规定 — the IAQI breakpoint tables as data, by edition.

Two editions, selected by the event's own time (architecture.md §5):

* ``HJ 633-2012`` — in force until 2026-02-28 24:00 Beijing time (HJ 633-2026 前言: replaces 2012).
* ``HJ 633-2026`` — in force from 2026-03-01 00:00 Asia/Shanghai (HJ 633-2026 cover: 实施日期 2026-03-01).

Each :class:`BreakpointTable` holds the concentration breakpoints at the IAQI points
0/50/100/150/200/300/400/500 and cites the table it comes from. Units: µg/m³, CO mg/m³.
Values were read from the standards' texts ([STD] in standards.md §1.1).

Table keys name the pollutant and its averaging period: ``so2_24h so2_1h no2_24h no2_1h co_24h
co_1h o3_1h o3_8h pm10_24h pm25_24h``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from itertools import pairwise
from types import MappingProxyType
from typing import Final

from rules.beijing import BEIJING
from rules.errors import InvalidReading

#: The IAQI values at the breakpoints — HJ 633-2012 表1 / HJ 633-2026 表3, first column.
IAQI_POINTS: Final[tuple[int, ...]] = (0, 50, 100, 150, 200, 300, 400, 500)

#: HJ 633-2026 takes effect at 2026-03-01 00:00 Beijing time (HJ 633-2026 封面 实施日期).
SWITCH_2026: Final = datetime(2026, 3, 1, 0, 0, tzinfo=BEIJING)


class AboveTop(StrEnum):
    """What an edition says about a concentration above a table's last breakpoint."""

    #: Not defined by the standard; envwatch reports IAQI 500 and flags it (standards.md §1.2,
    #: same as ``ringsaturn/go-aqi``).
    IAQI_500 = "iaqi_500"
    #: HJ 633-2012 表1 注(2): SO2 1-h > 800 → no 1-h IAQI, report the 24-h IAQI instead.
    FALLBACK_SO2_24H = "fallback_so2_24h"
    #: HJ 633-2012 表1 注(3): O3 8-h > 800 → no 8-h IAQI, report the 1-h IAQI instead.
    FALLBACK_O3_1H = "fallback_o3_1h"
    #: HJ 633-2026 表3 注b: SO2 1-h > 800 → IAQI counted as 200.
    CAP_200 = "cap_200"
    #: HJ 633-2026 表3 注c: O3 8-h > 800 → IAQI counted as 300.
    CAP_300 = "cap_300"


@dataclass(frozen=True, slots=True)
class BreakpointTable:
    """One column of the IAQI table: concentrations at the IAQI points, with its source."""

    key: str
    breakpoints: tuple[float, ...]
    unit: str
    source: str
    above_top: AboveTop = AboveTop.IAQI_500

    def __post_init__(self) -> None:
        bps = self.breakpoints
        if len(bps) < 2 or len(bps) > len(IAQI_POINTS) or bps[0] != 0:
            raise ValueError(f"{self.key}: breakpoints must start at 0 and fit IAQI_POINTS")
        if any(b <= a for a, b in pairwise(bps)):
            raise ValueError(f"{self.key}: breakpoints must increase strictly")

    @property
    def top(self) -> float:
        """The last breakpoint (the concentration at the table's highest IAQI point)."""
        return self.breakpoints[-1]


@dataclass(frozen=True, slots=True)
class AqiEdition:
    """One edition of HJ 633: its tables and its rules."""

    name: str
    #: First instant (inclusive) the edition applies to; ``None`` = since ever.
    valid_from: datetime | None
    #: First instant it no longer applies to (exclusive); ``None`` = still in force.
    valid_until: datetime | None
    tables: Mapping[str, BreakpointTable]
    #: HJ 633-2026 4.2.2/4.2.3: inputs rounded per GB/T 8170 (µg/m³ to integer, CO mg/m³ to 0.1).
    rounds_inputs: bool
    #: Indicators of the daily report (HJ 633-2012 5.1: 7 items; HJ 633-2026 5.1: 6 items).
    daily_items: tuple[str, ...]
    #: HJ 633-2026 5.3.1: with a pollutant missing, the AQI is published only if > 100.
    withhold_if_missing_and_at_most: int | None


def _t(key: str, bps: tuple[float, ...], source: str, *, unit: str = "ug/m3",
       above_top: AboveTop = AboveTop.IAQI_500) -> BreakpointTable:  # fmt: skip
    return BreakpointTable(key, bps, unit, source, above_top)


_S12 = "HJ 633-2012 表1"
_S26 = "HJ 633-2026 表3"

_TABLES_2012: Final = MappingProxyType(
    {
        t.key: t
        for t in (
            _t("so2_24h", (0, 50, 150, 475, 800, 1600, 2100, 2620), _S12),
            # 表1 注(2): the SO2 1-h column stops at IAQI 200 (800 µg/m³).
            _t("so2_1h", (0, 150, 500, 650, 800), _S12, above_top=AboveTop.FALLBACK_SO2_24H),
            _t("no2_24h", (0, 40, 80, 180, 280, 565, 750, 940), _S12),
            _t("no2_1h", (0, 100, 200, 700, 1200, 2340, 3090, 3840), _S12),
            _t("pm10_24h", (0, 50, 150, 250, 350, 420, 500, 600), _S12),
            _t("co_24h", (0, 2, 4, 14, 24, 36, 48, 60), _S12, unit="mg/m3"),
            _t("co_1h", (0, 5, 10, 35, 60, 90, 120, 150), _S12, unit="mg/m3"),
            _t("o3_1h", (0, 160, 200, 300, 400, 800, 1000, 1200), _S12),
            # 表1 注(3): the O3 8-h column stops at IAQI 300 (800 µg/m³).
            _t("o3_8h", (0, 100, 160, 215, 265, 800), _S12, above_top=AboveTop.FALLBACK_O3_1H),
            _t("pm25_24h", (0, 35, 75, 115, 150, 250, 350, 500), _S12),
        )
    }
)

_TABLES_2026: Final = MappingProxyType(
    {
        t.key: t
        for t in (
            _t("so2_24h", (0, 50, 150, 475, 800, 1600, 2100, 2620), _S26),
            # 表3 注b: SO2 1-h > 800 → IAQI 200.
            _t("so2_1h", (0, 150, 500, 650, 800), _S26, above_top=AboveTop.CAP_200),
            _t("no2_24h", (0, 40, 80, 180, 280, 565, 750, 940), _S26),
            _t("no2_1h", (0, 100, 200, 700, 1200, 2340, 3090, 3840), _S26),
            _t("co_24h", (0, 2, 4, 14, 24, 36, 48, 60), _S26, unit="mg/m3"),
            _t("co_1h", (0, 5, 10, 35, 60, 90, 120, 150), _S26, unit="mg/m3"),
            # 表3 注c: O3 8-h > 800 → IAQI 300.
            _t("o3_8h", (0, 100, 160, 215, 265, 800), _S26, above_top=AboveTop.CAP_300),
            _t("o3_1h", (0, 160, 200, 300, 400, 800, 1000, 1200), _S26),
            # The only changes against 2012: PM10 IAQI-100 point 150 → 120, PM2.5 75 → 60.
            _t("pm10_24h", (0, 50, 120, 250, 350, 420, 500, 600), _S26),
            _t("pm25_24h", (0, 35, 60, 115, 150, 250, 350, 500), _S26),
        )
    }
)

HJ633_2012: Final = AqiEdition(
    name="HJ 633-2012",
    valid_from=None,
    valid_until=SWITCH_2026,
    tables=_TABLES_2012,
    rounds_inputs=False,
    # HJ 633-2012 5.1 (日报 7 items incl. O3 daily max 1-h).
    daily_items=("so2", "no2", "co", "pm10", "pm25", "o3_1h", "o3_8h"),
    withhold_if_missing_and_at_most=None,
)

HJ633_2026: Final = AqiEdition(
    name="HJ 633-2026",
    valid_from=SWITCH_2026,
    valid_until=None,
    tables=_TABLES_2026,
    rounds_inputs=True,
    # HJ 633-2026 5.1 (日报 6 items; no O3 1-h).
    daily_items=("so2", "no2", "co", "pm10", "pm25", "o3_8h"),
    # HJ 633-2026 5.3.1: publish the AQI of an incomplete set only when it is > 100.
    withhold_if_missing_and_at_most=100,
)

EDITIONS: Final[tuple[AqiEdition, ...]] = (HJ633_2012, HJ633_2026)


def edition_at(at: datetime) -> AqiEdition:
    """The HJ 633 edition in force at the timezone-aware instant ``at``.

    ``at`` is the event's own time label (for an hour, the end of the hour). The switch is at
    2026-03-01 00:00 Beijing time inclusive: the hour labelled 00:00 on 2026-03-01 (mean over
    23:00–24:00 of 28 February) is published on 1 March and is computed with HJ 633-2026.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidReading("naive datetime; the event time must be timezone-aware", value=at)
    return HJ633_2026 if at >= SWITCH_2026 else HJ633_2012


def edition_on(day: date) -> AqiEdition:
    """The HJ 633 edition for the Beijing natural day ``day`` (its 00:00 decides)."""
    return HJ633_2026 if day >= SWITCH_2026.date() else HJ633_2012
