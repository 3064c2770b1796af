"""Aggregator mechanics: time slots, idempotent slots, plain (JSON) state, validity, errors.

Edge cases of the validity minima with their arithmetic are in test_worked_examples_air.py.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from rules.airstats import (
    DailyMean,
    DailyO3Max8h,
    StationDay,
    Validity,
    day_slot,
    epoch_hour,
)
from rules.aqi import daily_aqi
from rules.errors import InvalidReading

BEIJING = ZoneInfo("Asia/Shanghai")


def bj(*args: int) -> datetime:
    return datetime(*args, tzinfo=BEIJING)  # type: ignore[misc]


# ---------------------------------------------------------------- time slots


def test_hour_labelled_0100_is_the_first_slot_of_its_day() -> None:
    assert day_slot(bj(2025, 6, 1, 1)) == (date(2025, 6, 1), 0)


def test_hour_labelled_midnight_is_the_last_slot_of_the_previous_day() -> None:
    # (23:00, 24:00] of 31 May
    assert day_slot(bj(2025, 6, 1, 0)) == (date(2025, 5, 31), 23)


def test_utc_labels_are_placed_on_the_beijing_day() -> None:
    # 2025-06-01 16:00 UTC = 2025-06-02 00:00 Beijing → last hour of 1 June
    assert day_slot(datetime(2025, 6, 1, 16, tzinfo=UTC)) == (date(2025, 6, 1), 23)


@pytest.mark.parametrize("bad", [bj(2025, 6, 1, 1, 30), datetime(2025, 6, 1, 1)])
def test_day_slot_rejects_non_hour_or_naive_labels(bad: datetime) -> None:
    with pytest.raises(InvalidReading):
        day_slot(bad)


def test_epoch_hour_steps_by_one_per_hour_and_rejects_half_hours() -> None:
    assert epoch_hour(bj(2025, 6, 1, 2)) - epoch_hour(bj(2025, 6, 1, 1)) == 1
    with pytest.raises(InvalidReading):
        epoch_hour(bj(2025, 6, 1, 1, 30))


# ---------------------------------------------------------------- idempotence, serialisation


def test_redelivered_hour_does_not_count_twice() -> None:
    agg = DailyMean()
    s = agg.initialise()
    for slot in range(19):
        agg.add(s, slot, 10.0)
    agg.add(s, 18, 10.0)  # the same hour again (at-least-once delivery)
    r = agg.result(s)
    assert (r.count, r.validity, r.value) == (19, Validity.INSUFFICIENT, None)


def test_corrected_hour_replaces_the_earlier_value() -> None:
    agg = DailyMean()
    s = agg.initialise()
    for slot in range(20):
        agg.add(s, slot, 10.0)
    agg.add(s, 0, 30.0)  # 19 × 10 + 30 = 220; / 20 = 11
    assert agg.result(s).value == pytest.approx(11.0)


def test_states_survive_a_json_round_trip() -> None:
    day = StationDay()
    s = day.initialise()
    for slot in range(24):
        day.add(s, slot, {"pm25": 30.0 + slot, "o3": 100.0, "co": 0.5})
    again = json.loads(json.dumps(s))
    assert day.result(again) == day.result(s)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "12", True])
def test_bad_values_are_typed_errors(bad: object) -> None:
    agg = DailyMean()
    with pytest.raises(InvalidReading) as err:
        agg.add(agg.initialise(), 0, bad)  # type: ignore[arg-type]
    assert err.value.reason


# ---------------------------------------------------------------- station-day → daily AQI


def test_station_day_feeds_daily_aqi() -> None:
    agg = StationDay()
    s = agg.initialise()
    for slot in range(24):
        agg.add(
            s, slot, {"pm25": 60.0, "pm10": 100.0, "so2": 10.0, "no2": 30.0, "co": 0.8, "o3": 120.0}
        )
    r = agg.result(s)
    assert r.means["pm25"] == 60.0
    assert r.means["o3_8h"] == 120.0
    # 2026: PM2.5 60 → IAQI 100 (the 2026 IAQI-100 point); PM10 100 → 50 + 50·50/70 = 85.7 → 86
    aqi = daily_aqi(r.means, day=date(2026, 6, 1))
    assert (aqi.aqi, aqi.primary) == (100, ("pm25",))
    # 2012: PM2.5 60 → 50 + 50·25/40 = 81.25 → 82
    assert daily_aqi(r.means, day=date(2025, 6, 1)).aqi == 82


def test_station_day_with_too_few_hours_leaves_the_mean_out() -> None:
    agg = StationDay()
    s = agg.initialise()
    for slot in range(10):
        agg.add(s, slot, {"pm25": 60.0})
    r = agg.result(s)
    assert r.means["pm25"] is None
    assert r.daily["pm25"].partial == 60.0


# ---------------------------------------------------------------- month, year, percentile, good days


def test_daily_o3_max_windows_are_the_17_windows_ending_0800_to_2400() -> None:
    day: list[float | None] = [0.0] * 24
    day[23] = 800.0  # only the hour labelled 24:00 is high
    w = DailyO3Max8h().windows(day)
    assert len(w) == 17
    assert w[-1] == pytest.approx(100.0)  # 800/8
    assert w[:-1] == [0.0] * 16
