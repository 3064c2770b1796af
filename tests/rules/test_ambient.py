"""GB 3095 exceedance: right limit for period, grade and edition; multiple (C − L)/L.

Limits transcribed from standards.md §2.1 (GB 3095-2012 表1; GB 3095-2026 表1 transitional/final).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from rules.ambient import Status, exceedance
from rules.aqi import daily_aqi, realtime_aqi
from rules.errors import InvalidReading, NoLimit
from rules.standards.gb3095 import Grade, Period

BEIJING = ZoneInfo("Asia/Shanghai")
D2012, D2026, D2031 = date(2025, 6, 1), date(2026, 6, 1), date(2031, 6, 1)


@pytest.mark.parametrize(
    ("pollutant", "period", "day", "grade", "limit", "edition"),
    [
        ("pm25", Period.DAILY, D2012, Grade.II, 75, "GB 3095-2012"),
        ("pm25", Period.DAILY, D2026, Grade.II, 60, "GB 3095-2026 过渡限值"),
        ("pm25", Period.DAILY, D2031, Grade.II, 50, "GB 3095-2026 最终限值"),
        ("pm25", Period.ANNUAL, D2012, Grade.II, 35, "GB 3095-2012"),
        ("pm25", Period.ANNUAL, D2026, Grade.II, 30, "GB 3095-2026 过渡限值"),
        ("pm25", Period.ANNUAL, D2031, Grade.II, 25, "GB 3095-2026 最终限值"),
        ("pm25", Period.DAILY, D2031, Grade.I, 25, "GB 3095-2026 最终限值"),
        ("pm10", Period.DAILY, D2012, Grade.II, 150, "GB 3095-2012"),
        ("pm10", Period.DAILY, D2026, Grade.II, 120, "GB 3095-2026 过渡限值"),
        ("pm10", Period.DAILY, D2031, Grade.II, 100, "GB 3095-2026 最终限值"),
        ("so2", Period.HOURLY, D2026, Grade.II, 500, "GB 3095-2026 过渡限值"),
        ("so2", Period.HOURLY, D2031, Grade.II, 150, "GB 3095-2026 最终限值"),
        ("no2", Period.DAILY, D2031, Grade.II, 50, "GB 3095-2026 最终限值"),
        ("o3", Period.MAX_8H, D2012, Grade.I, 100, "GB 3095-2012"),
        ("o3", Period.MAX_8H, D2026, Grade.II, 160, "GB 3095-2026 过渡限值"),
        ("co", Period.HOURLY, D2012, Grade.II, 10, "GB 3095-2012"),
    ],
)
def test_limit_by_pollutant_period_grade_edition(
    pollutant: str, period: Period, day: date, grade: Grade, limit: float, edition: str
) -> None:
    at_limit = exceedance(pollutant, limit, period=period, at=day, grade=grade)
    assert (at_limit.limit, at_limit.edition, at_limit.status) == (limit, edition, Status.WITHIN)
    above = exceedance(pollutant, limit * 1.5, period=period, at=day, grade=grade)
    assert above.status is Status.EXCEEDED
    assert above.multiple == pytest.approx(0.5)  # (1.5 L − L)/L


def test_multiple_worked_example() -> None:
    # PM2.5 daily 90 in 2026 grade II: (90 − 60)/60 = 0.5
    r = exceedance("pm25", 90, period=Period.DAILY, at=D2026)
    assert (r.exceeded, r.multiple, r.ratio) == (True, pytest.approx(0.5), pytest.approx(1.5))
    # the same 90 in 2025: (90 − 75)/75 = 0.2
    assert exceedance("pm25", 90, period=Period.DAILY, at=D2012).multiple == pytest.approx(0.2)


def test_within_has_no_multiple() -> None:
    r = exceedance("pm25", 59.9, period=Period.DAILY, at=D2026)
    assert (r.status, r.multiple) == (Status.WITHIN, None)


def test_edition_switches_at_the_instants() -> None:
    switch = datetime(2026, 3, 1, tzinfo=BEIJING)
    before = exceedance("pm25", 70, period=Period.DAILY, at=switch - timedelta(microseconds=1))
    after = exceedance("pm25", 70, period=Period.DAILY, at=switch)
    assert (before.edition, before.exceeded) == ("GB 3095-2012", False)  # 70 ≤ 75
    assert (after.edition, after.exceeded) == ("GB 3095-2026 过渡限值", True)  # 70 > 60
    final = datetime(2031, 1, 1, tzinfo=BEIJING)
    assert (
        exceedance("pm25", 55, period=Period.DAILY, at=final - timedelta(microseconds=1)).exceeded
        is False
    )
    assert exceedance("pm25", 55, period=Period.DAILY, at=final).exceeded is True  # 55 > 50


def test_2026_exceedance_is_a_concentration_comparison_not_iaqi_over_100() -> None:
    # From 2031 the PM2.5 grade-II daily limit (50) lies below the HJ 633-2026 IAQI-100 point (60):
    # PM2.5 55 exceeds although its IAQI is 50 + 50·20/25 = 90 ≤ 100.
    assert daily_aqi({"pm25": 55}, day=D2031).iaqi["pm25"] == 90
    assert exceedance("pm25", 55, period=Period.DAILY, at=D2031).exceeded


@pytest.mark.parametrize(
    ("pollutant", "key", "period"),
    [
        ("so2", "so2", Period.DAILY), ("no2", "no2", Period.DAILY), ("co", "co", Period.DAILY),
        ("pm10", "pm10", Period.DAILY), ("pm25", "pm25", Period.DAILY),
        ("o3", "o3_8h", Period.MAX_8H), ("o3", "o3_1h", Period.HOURLY),
    ],
)  # fmt: skip
def test_2012_grade_ii_equals_hj633_2012_iaqi_over_100(
    pollutant: str, key: str, period: Period
) -> None:
    # HJ 633-2012 §4.4.2: exceedance pollutant = IAQI > 100. Its IAQI-100 points equal the GB
    # 3095-2012 grade-II limits, so the two judgements agree just below, at and above the limit.
    limit = exceedance(pollutant, 0, period=period, at=D2012).limit
    for c in (limit - 0.01, limit, limit + 0.01):
        by_iaqi = daily_aqi({key: c}, day=D2012).iaqi[key] > 100
        assert exceedance(pollutant, c, period=period, at=D2012).exceeded is by_iaqi


def test_2012_hourly_limits_equal_the_realtime_iaqi_100_points() -> None:
    at = datetime(2025, 6, 1, 12, tzinfo=BEIJING)
    for pollutant in ("so2", "no2", "co", "o3"):
        limit = exceedance(pollutant, 0, period=Period.HOURLY, at=at).limit
        assert realtime_aqi({pollutant: limit}, at=at).iaqi[pollutant] == 100
        assert realtime_aqi({pollutant: limit + 0.01}, at=at).iaqi[pollutant] == 101


def test_no_limit_is_a_typed_error() -> None:
    with pytest.raises(NoLimit) as err:
        exceedance("pm25", 50, period=Period.HOURLY, at=D2026)
    assert (err.value.pollutant, err.value.period) == ("pm25", "hourly")


@pytest.mark.parametrize("bad", [-1.0, float("nan"), "50"])
def test_bad_value_is_a_typed_error(bad: object) -> None:
    with pytest.raises(InvalidReading) as err:
        exceedance("pm25", bad, period=Period.DAILY, at=D2026)  # type: ignore[arg-type]
    assert err.value.factor == "pm25"
