"""HJ 633 breakpoint tables: every breakpoint and just either side of it, both editions.

The tables below are transcribed independently from standards.md §1.1 (HJ 633-2012 表1, HJ 633-2026
表3) — not imported from the code under test. Expected IAQIs are computed here with exact
fractions from HJ 633 式(1) and rounded up (HJ 633-2012 6.2 / HJ 633-2026 4.2.6):

    IAQI = IAQI_Lo + (IAQI_Hi − IAQI_Lo) / (BP_Hi − BP_Lo) × (C − BP_Lo), then ceil.

"Just either side": 2012 takes concentrations as given, so ±0.01 (µg/m³ or mg/m³); 2026 rounds
inputs to integers (CO to 0.1 mg/m³) before evaluation, so ±1 µg/m³ (CO ±0.1 mg/m³) is the
smallest step that can change the answer.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest

from rules.aqi import Note, daily_aqi, realtime_aqi

BEIJING = ZoneInfo("Asia/Shanghai")
AT_2012 = datetime(2025, 6, 1, 12, tzinfo=BEIJING)
AT_2026 = datetime(2026, 6, 1, 12, tzinfo=BEIJING)
DAY_2012 = date(2025, 6, 1)
DAY_2026 = date(2026, 6, 1)
IAQI = (0, 50, 100, 150, 200, 300, 400, 500)

# (report, key in the report, table) — standards.md §1.1
T2012 = {
    ("daily", "so2"): (0, 50, 150, 475, 800, 1600, 2100, 2620),
    ("realtime", "so2"): (0, 150, 500, 650, 800),
    ("daily", "no2"): (0, 40, 80, 180, 280, 565, 750, 940),
    ("realtime", "no2"): (0, 100, 200, 700, 1200, 2340, 3090, 3840),
    ("daily", "pm10"): (0, 50, 150, 250, 350, 420, 500, 600),
    ("realtime", "pm10"): (0, 50, 150, 250, 350, 420, 500, 600),  # 1-h PM on the daily table
    ("daily", "co"): ("0", "2", "4", "14", "24", "36", "48", "60"),
    ("realtime", "co"): ("0", "5", "10", "35", "60", "90", "120", "150"),
    ("daily", "o3_1h"): (0, 160, 200, 300, 400, 800, 1000, 1200),
    ("realtime", "o3"): (0, 160, 200, 300, 400, 800, 1000, 1200),
    ("daily", "o3_8h"): (0, 100, 160, 215, 265, 800),
    ("daily", "pm25"): (0, 35, 75, 115, 150, 250, 350, 500),
    ("realtime", "pm25"): (0, 35, 75, 115, 150, 250, 350, 500),
}
T2026 = {k: v for k, v in T2012.items() if k != ("daily", "o3_1h")}  # 2026 日报 has no O3 1-h
T2026[("daily", "pm10")] = T2026[("realtime", "pm10")] = (0, 50, 120, 250, 350, 420, 500, 600)
T2026[("daily", "pm25")] = T2026[("realtime", "pm25")] = (0, 35, 60, 115, 150, 250, 350, 500)


def expected_iaqi(bps: tuple[object, ...], c: Fraction) -> int:
    bp = [Fraction(str(b)) for b in bps]
    for i in range(1, len(bp)):
        if c <= bp[i]:
            return math.ceil(
                IAQI[i - 1]
                + Fraction(IAQI[i] - IAQI[i - 1]) / (bp[i] - bp[i - 1]) * (c - bp[i - 1])
            )
    raise AssertionError("above the table")


def compute(edition: int, report: str, key: str, c: float) -> int | None:
    if report == "daily":
        r = daily_aqi({key: c}, day=DAY_2012 if edition == 2012 else DAY_2026)
    else:
        r = realtime_aqi({key: c}, at=AT_2012 if edition == 2012 else AT_2026)
    return r.iaqi.get(key)


def _cases() -> list[tuple[int, str, str, str, int]]:
    out = []
    for edition, tables in ((2012, T2012), (2026, T2026)):
        for (report, key), bps in tables.items():
            step = (
                Fraction("0.01")
                if edition == 2012
                else (Fraction("0.1") if key == "co" else Fraction(1))
            )
            for k, b in enumerate(bps):
                bp = Fraction(str(b))
                points = (
                    [bp]
                    + ([bp - step] if k > 0 else [])
                    + ([bp + step] if k < len(bps) - 1 else [])
                )
                for c in points:
                    out.append(
                        (
                            edition,
                            report,
                            key,
                            str(c if c.denominator == 1 else float(c)),
                            expected_iaqi(bps, c),
                        )
                    )
    return out


CASES = _cases()


def test_case_count() -> None:
    # 2012: 13 columns; 2026: 12 columns. Each column with n breakpoints gives 3n − 2 points.
    assert len(CASES) > 250


@pytest.mark.parametrize(("edition", "report", "key", "conc", "expected"), CASES)
def test_breakpoint_and_either_side(
    edition: int, report: str, key: str, conc: str, expected: int
) -> None:
    assert compute(edition, report, key, float(conc)) == expected


@pytest.mark.parametrize(
    ("edition", "report", "key", "conc", "expected"),
    [
        # standards.md §1.6 test vectors
        (2012, "daily", "pm25", 50, 69), (2026, "daily", "pm25", 50, 80),
        (2012, "daily", "pm25", 60, 82), (2026, "daily", "pm25", 60, 100),
        (2012, "daily", "pm25", 75, 100), (2026, "daily", "pm25", 75, 114),
        (2012, "daily", "pm25", 80, 107), (2026, "daily", "pm25", 80, 119),
        (2012, "daily", "pm10", 120, 85), (2026, "daily", "pm10", 120, 100),
        (2012, "daily", "pm10", 150, 100), (2026, "daily", "pm10", 150, 112),
        (2012, "daily", "o3_8h", 170, 110), (2026, "daily", "o3_8h", 170, 110),
        (2012, "realtime", "o3", 210, 105), (2026, "realtime", "o3", 210, 105),
        (2012, "realtime", "co", 12.3, 105), (2026, "realtime", "co", 12.3, 105),
        # real-time PM (1-h concentration on the daily table), same numbers as the daily column
        (2012, "realtime", "pm25", 50, 69), (2026, "realtime", "pm25", 50, 80),
    ],
)  # fmt: skip
def test_standards_md_vectors(
    edition: int, report: str, key: str, conc: float, expected: int
) -> None:
    assert compute(edition, report, key, conc) == expected


def test_so2_1h_above_800_2012_falls_back_to_the_24h_iaqi() -> None:
    # HJ 633-2012 表1 注2. SO2 24-h = 100 → 50 + (100−50)·50/100 = 75.
    r = realtime_aqi({"so2": 801, "so2_24h": 100}, at=AT_2012)
    assert r.iaqi["so2"] == 75
    assert Note.SO2_1H_FALLBACK_24H in r.notes
    assert r.above_top == ("so2",)


def test_so2_1h_above_800_2012_without_24h_gives_no_so2_iaqi() -> None:
    r = realtime_aqi({"so2": 801, "pm25": 10}, at=AT_2012)
    assert "so2" not in r.iaqi
    assert Note.SO2_1H_NO_IAQI in r.notes
    assert r.aqi == 15  # PM2.5 10 → 10·50/35 = 14.29 → 15; from the others (2012 NA rule)


def test_so2_1h_above_800_2026_is_capped_at_200() -> None:
    r = realtime_aqi({"so2": 801}, at=AT_2026)
    assert r.iaqi["so2"] == 200
    assert Note.SO2_1H_CAPPED_200 in r.notes
    # SO2 1-h = 800 exactly is the top breakpoint: 200 without the cap note
    assert realtime_aqi({"so2": 800}, at=AT_2026).notes.isdisjoint({Note.SO2_1H_CAPPED_200})


def test_o3_8h_above_800_2012_uses_the_1h_iaqi() -> None:
    # HJ 633-2012 表1 注3; O3 1-h 900 → 300 + (900−800)·100/200 = 350.
    r = daily_aqi({"o3_8h": 1000, "o3_1h": 900}, day=DAY_2012)
    assert "o3_8h" not in r.iaqi
    assert r.iaqi["o3_1h"] == 350
    assert r.primary == ("o3_1h",)
    assert Note.O3_8H_FALLBACK_1H in r.notes


def test_o3_8h_above_800_2026_is_capped_at_300() -> None:
    r = daily_aqi({"o3_8h": 1000, "o3_1h": 900}, day=DAY_2026)
    assert r.iaqi == {"o3_8h": 300}  # 2026 日报 has no O3 1-h item
    assert Note.O3_8H_CAPPED_300 in r.notes


@pytest.mark.parametrize(
    ("edition", "report", "key", "conc"),
    [
        (2012, "daily", "pm25", 500.01), (2026, "realtime", "pm25", 501),
        (2012, "realtime", "no2", 3841), (2026, "daily", "co", 60.1),
        (2012, "daily", "so2", 2621), (2026, "realtime", "o3", 1201),
    ],
)  # fmt: skip
def test_above_top_breakpoint_is_500_and_flagged(
    edition: int, report: str, key: str, conc: float
) -> None:
    assert compute(edition, report, key, conc) == 500
    r = (daily_aqi({key: conc}, day=DAY_2012 if edition == 2012 else DAY_2026) if report == "daily"
         else realtime_aqi({key: conc}, at=AT_2012 if edition == 2012 else AT_2026))  # fmt: skip
    assert key in r.above_top
    assert Note.ABOVE_TOP_BREAKPOINT in r.notes


@pytest.mark.parametrize(
    ("aqi_source", "level", "category", "color"),
    [
        # PM2.5 2012 daily: 0 → 0; 35 → 50; 35.01 → 51 (ceil 50.0125); 75 → 100; 75.01 → 101;
        # 115 → 150; 115.01 → 151; 150 → 200; 150.01 → 201; 250 → 300; 250.01 → 301.
        (0, 1, "优", "#00E400"), (35, 1, "优", "#00E400"), (35.01, 2, "良", "#FFFF00"),
        (75, 2, "良", "#FFFF00"), (75.01, 3, "轻度污染", "#FF7E00"), (115, 3, "轻度污染", "#FF7E00"),
        (115.01, 4, "中度污染", "#FF0000"), (150, 4, "中度污染", "#FF0000"),
        (150.01, 5, "重度污染", "#99004C"), (250, 5, "重度污染", "#99004C"),
        (250.01, 6, "严重污染", "#7E0023"), (600, 6, "严重污染", "#7E0023"),
    ],
)  # fmt: skip
def test_levels_categories_colours(
    aqi_source: float, level: int, category: str, color: str
) -> None:
    full = {"pm25": aqi_source, "pm10": 0, "so2": 0, "no2": 0, "co": 0, "o3_8h": 0, "o3_1h": 0}
    r = daily_aqi(full, day=DAY_2012)
    assert (r.level, r.category, r.color) == (level, category, color)
