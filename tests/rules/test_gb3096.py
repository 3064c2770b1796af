"""GB 3096-2008 表1 noise limits and the 昼间/夜间 split of hourly samples labelled by their END.

Expected values are written by hand from GB 3096-2008 表1 (dB(A)): 0 类 50/40, 1 类 55/45,
2 类 60/50, 3 类 65/55, 4a 类 70/55, 4b 类 70/60; 昼间 06:00–22:00, 夜间 22:00–06:00.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from rules.errors import InvalidReading
from rules.standards.gb3096 import noise_limit

BJ = ZoneInfo("Asia/Shanghai")


def at(hour: int, day: int = 10) -> datetime:
    """Beijing 2026-06-{day} {hour}:00 (hour 24 = next day 00:00)."""
    return datetime(2026, 6, day, tzinfo=BJ) + timedelta(hours=hour)


@pytest.mark.parametrize(
    ("zone", "day_limit", "night_limit"),
    [("0", 50, 40), ("1", 55, 45), ("2", 60, 50), ("3", 65, 55), ("4a", 70, 55), ("4b", 70, 60)],
)
def test_table_1_per_class(zone: str, day_limit: int, night_limit: int) -> None:
    assert noise_limit(zone, at(12)) == (day_limit, "day")  # hour 11:00–12:00
    assert noise_limit(zone, at(3)) == (night_limit, "night")  # hour 02:00–03:00


@pytest.mark.parametrize(
    ("label_hour", "period"),
    [
        (6, "night"),  # (05:00, 06:00]: starts 05:00 → night
        (7, "day"),  # (06:00, 07:00]: the first day hour
        (22, "day"),  # (21:00, 22:00]: the last day hour
        (23, "night"),  # (22:00, 23:00]: the first night hour
        (24, "night"),  # (23:00, 24:00], labelled next day 00:00
        (1, "night"),  # (00:00, 01:00]
    ],
)
def test_the_hour_is_judged_by_its_start(label_hour: int, period: str) -> None:
    limit = {"day": 60, "night": 50}[period]  # 2 类
    assert noise_limit("2", at(label_hour)) == (limit, period)


def test_local_time_decides_not_utc() -> None:
    # 14:00 UTC = 22:00 Beijing: the hour (13:00, 14:00] UTC = (21:00, 22:00] Beijing is a day hour
    assert noise_limit("3", datetime(2026, 6, 10, 14, tzinfo=UTC)) == (65, "day")
    # 15:00 UTC = 23:00 Beijing: (22:00, 23:00] is a night hour
    assert noise_limit("3", datetime(2026, 6, 10, 15, tzinfo=UTC)) == (55, "night")
    # 22:00 UTC = 06:00 Beijing next day: (05:00, 06:00] is still night
    assert noise_limit("4b", datetime(2026, 6, 10, 22, tzinfo=UTC)) == (60, "night")


@pytest.mark.parametrize("zone", ["4", "5", "IV", "", "2a", "4A"])
def test_unknown_zone_class_is_refused(zone: str) -> None:
    with pytest.raises(InvalidReading, match="not one of 0, 1, 2, 3, 4a, 4b"):
        noise_limit(zone, at(12))


def test_naive_time_is_refused() -> None:
    with pytest.raises(InvalidReading, match="naive"):
        noise_limit("1", datetime(2026, 6, 10, 12))  # naive on purpose: the case under test
