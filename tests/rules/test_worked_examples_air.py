"""Worked examples a reviewer can check by hand against standards.md (§1 AQI, §2 validity).

Each case writes its arithmetic down. Formula (HJ 633 式(1)), then ceil:
    IAQI = IAQI_Lo + (IAQI_Hi − IAQI_Lo)/(BP_Hi − BP_Lo) · (C − BP_Lo)
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from rules.airstats import (
    DailyMean,
    DailyO3Max8h,
    Validity,
)
from rules.aqi import Note, daily_aqi, realtime_aqi

BEIJING = ZoneInfo("Asia/Shanghai")
AT12 = datetime(2025, 11, 3, 9, tzinfo=BEIJING)
AT26 = datetime(2026, 11, 3, 9, tzinfo=BEIJING)
SAMPLE = {"pm25": 80.0, "pm10": 120.0, "so2": 20.0, "no2": 60.0, "co": 1.2, "o3": 150.0}

# ============================================================== AQI


def test_01_realtime_2012_full_sample() -> None:
    # pm25 80 : 100 + 50·(80−75)/(115−75) = 106.25 → 107
    # pm10 120: 50 + 50·(120−50)/(150−50) = 85
    # so2 20 (1-h): 50·20/150 = 6.67 → 7;  no2 60 (1-h): 50·60/100 = 30
    # co 1.2 (1-h): 50·1.2/5 = 12;  o3 150 (1-h): 50·150/160 = 46.875 → 47
    r = realtime_aqi(SAMPLE, at=AT12)
    assert r.iaqi == {"pm25": 107, "pm10": 85, "so2": 7, "no2": 30, "co": 12, "o3": 47}
    assert (r.aqi, r.primary, r.level, r.category, r.color) == (
        107,
        ("pm25",),
        3,
        "轻度污染",
        "#FF7E00",
    )


def test_02_realtime_2026_same_sample() -> None:
    # pm25 80 : 100 + 50·(80−60)/(115−60) = 118.18 → 119;  pm10 120 = the 2026 IAQI-100 point → 100
    r = realtime_aqi(SAMPLE, at=AT26)
    assert (r.iaqi["pm25"], r.iaqi["pm10"], r.aqi, r.edition) == (119, 100, 119, "HJ 633-2026")


def test_03_gbt8170_half_to_even_keeps_60() -> None:
    # 2026: 60.5 → discarded digit 5 with nothing after, kept digit 0 even → 60 → IAQI 100
    assert realtime_aqi({"pm25": 60.5}, at=AT26).iaqi["pm25"] == 100


def test_04_gbt8170_half_to_even_rounds_61_5_up() -> None:
    # 2026: 61.5 → kept digit 1 odd → 62 → 100 + 50·2/55 = 101.8 → 102
    assert realtime_aqi({"pm25": 61.5}, at=AT26).iaqi["pm25"] == 102


def test_05_no_input_rounding_in_2012() -> None:
    # 2012: 60.5 as is → 50 + 50·(60.5−35)/40 = 81.875 → 82
    assert realtime_aqi({"pm25": 60.5}, at=AT12).iaqi["pm25"] == 82


def test_06_co_rounded_to_one_decimal_2026() -> None:
    # CO 1-h 10.05 → 10.0 (kept 0 even) → IAQI 100;  10.15 → 10.2 (kept 1 odd) → 100 + 50·0.2/25 = 100.4 → 101
    assert realtime_aqi({"co": 10.05}, at=AT26).iaqi["co"] == 100
    assert realtime_aqi({"co": 10.15}, at=AT26).iaqi["co"] == 101
    # 2012 no rounding: 10.05 → 100 + 50·0.05/25 = 100.1 → 101
    assert realtime_aqi({"co": 10.05}, at=AT12).iaqi["co"] == 101


def test_07_ceil_of_an_exact_integer_is_that_integer() -> None:
    # daily CO 2.04 (2012): 50 + 50·(2.04−2)/(4−2) = 51 exactly — not 52 through float error
    assert daily_aqi({"co": 2.04}, day=date(2025, 5, 5)).iaqi["co"] == 51


def test_08_tied_primary_pollutants_are_all_listed() -> None:
    # 2012: pm25 75 → 100, pm10 150 → 100 (both at their IAQI-100 points)
    r = realtime_aqi({"pm25": 75, "pm10": 150, "so2": 5, "no2": 5, "co": 0.5, "o3": 50}, at=AT12)
    assert (r.aqi, r.primary) == (100, ("pm25", "pm10"))


def test_09_no_primary_pollutant_at_aqi_50() -> None:
    # pm25 35 → 50 = AQI; 50 is not > 50 → no primary, level 1 优
    r = realtime_aqi({"pm25": 35, "pm10": 20, "so2": 5, "no2": 5, "co": 0.5, "o3": 50}, at=AT12)
    assert (r.aqi, r.primary, r.category) == (50, (), "优")


def test_10_2026_missing_pollutant_and_aqi_at_most_100_is_na() -> None:
    # O3 missing; pm25 50 → 50 + 50·15/25 = 80 ≤ 100 → AQI NA (HJ 633-2026 5.3.1), IAQIs kept
    r = realtime_aqi({"pm25": 50, "pm10": 20, "so2": 5, "no2": 5, "co": 0.5}, at=AT26)
    assert (r.aqi, r.level, r.primary, r.computed_aqi, r.iaqi["pm25"]) == (None, None, (), 80, 80)
    assert Note.AQI_WITHHELD in r.notes


def test_11_2026_missing_pollutant_and_aqi_over_100_is_published() -> None:
    # pm25 80 → 119 > 100 → published even without O3
    r = realtime_aqi({"pm25": 80, "pm10": 20, "so2": 5, "no2": 5, "co": 0.5}, at=AT26)
    assert (r.aqi, r.primary, r.missing) == (119, ("pm25",), ("o3",))


def test_12_2012_missing_pollutant_aqi_from_the_others() -> None:
    # PM10 missing (NA); pm25 50 → 50 + 50·15/40 = 68.75 → 69 — published, as CNEMC did
    r = realtime_aqi({"pm25": 50, "so2": 5, "no2": 5, "co": 0.5, "o3": 50}, at=AT12)
    assert (r.aqi, r.missing) == (69, ("pm10",))


def test_13_so2_fallback_to_24h_in_2012() -> None:
    # SO2 1-h 900 > 800 → 24-h 200: 100 + 50·(200−150)/(475−150) = 107.69 → 108
    r = realtime_aqi({"so2": 900, "so2_24h": 200}, at=AT12)
    assert r.iaqi["so2"] == 108


def test_14_daily_2012_o3_8h_and_1h() -> None:
    # o3_8h 170: 100 + 50·10/55 = 109.09 → 110;  o3_1h 210: 100 + 50·10/100 = 105
    r = daily_aqi({"pm25": 30, "pm10": 40, "so2": 10, "no2": 20, "co": 0.8, "o3_8h": 170, "o3_1h": 210},
                  day=date(2025, 8, 1))  # fmt: skip
    assert (r.iaqi["o3_8h"], r.iaqi["o3_1h"], r.aqi, r.primary) == (110, 105, 110, ("o3_8h",))


# ============================================================== validity


def test_15_daily_mean_19_hours_is_invalid() -> None:
    agg = DailyMean()
    s = agg.initialise()
    for slot in range(19):
        agg.add(s, slot, 50.0)
    r = agg.result(s)
    assert (r.count, r.validity, r.value) == (19, Validity.INSUFFICIENT, None)


def test_16_daily_mean_20_hours_is_valid() -> None:
    # 10 hours at 40 and 10 at 60: (400 + 600)/20 = 50
    agg = DailyMean()
    s = agg.initialise()
    for slot in range(20):
        agg.add(s, slot, 40.0 if slot < 10 else 60.0)
    assert agg.result(s).value == pytest.approx(50.0)


def _o3_day(hours: int, value: float) -> list[float | None]:
    return [value if i < hours else None for i in range(24)]


def test_21_o3_daily_max_with_13_valid_windows_is_invalid() -> None:
    # hours 01..18 present (slots 0–17). Window ending k covers slots k−8…k−1:
    # k=8…18 → 8 values (11 windows), k=19 → 7, k=20 → 6, k=21 → 5 (invalid) → 13 valid windows
    r = DailyO3Max8h().result(_o3_day(18, 100.0))
    assert (r.count, r.validity, r.value) == (13, Validity.INSUFFICIENT, None)


def test_22_o3_daily_max_with_14_valid_windows_is_valid() -> None:
    # hours 01..19: k=8…19 → 12 windows of 8, k=20 → 7, k=21 → 6 → 14 valid windows
    r = DailyO3Max8h().result(_o3_day(19, 100.0))
    assert (r.count, r.validity, r.value) == (14, Validity.VALID, 100.0)


def test_23_o3_daily_max_valid_anyway_when_over_the_limit() -> None:
    # 13 valid windows but max 200 > 160 (grade II) → valid (HJ 663)
    r = DailyO3Max8h().result(_o3_day(18, 200.0))
    assert (r.count, r.validity, r.value) == (13, Validity.VALID_EXCEEDS_LIMIT, 200.0)


# ============================================================== percentiles, good days
