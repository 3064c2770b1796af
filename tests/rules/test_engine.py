"""rules.evaluate.step as timelines: samples in, points out, expected values computed by hand.

Every expected number is written down with its arithmetic (HJ 633 式(1), then ceil):
    IAQI = IAQI_Lo + (IAQI_Hi − IAQI_Lo)/(BP_Hi − BP_Lo) · (C − BP_Lo)
Tables: standards.md §1.1 (HJ 633-2012 表1, HJ 633-2026 表3), §2.1 (GB 3095 limits), §2.2
(validity), §3 (GB 3838), §4.11/§5 (HJ 212 附录D, O2 correction), §7.1 (GB 18918).

Time: an hour labelled t (Beijing) is the mean over (t − 1 h, t]; the day's hours are labelled
01:00 … 24:00 (= 00:00 of the next day).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

import orjson
import pytest

from rules.beijing import BEIJING as BJ
from rules.emission import Basis, PermitLimit
from rules.errors import InvalidReading, OutsideWindow
from rules.evaluate import Point, Sample, SourceContext, SourceState, load_state, step

DAY = date(2025, 6, 10)  # an HJ 633-2012 / GB 3095-2012 day
MIDNIGHT = datetime(2025, 6, 10, tzinfo=BJ)

Values = dict[str, float | tuple[float | None, str] | None]


def sample(
    kind: str, at: datetime, interval: str = "hour", src: str = "s1", **values: Any
) -> Sample:
    vals = {f: (v if isinstance(v, tuple) else (v, "N")) for f, v in values.items()}
    return Sample(kind, "weifang", src, at, interval, vals)


def run(
    samples: Iterable[Sample],
    ctx: SourceContext | None = None,
    state: SourceState | dict[str, Any] | None = None,
) -> tuple[SourceState, list[Point]]:
    ctx = ctx or SourceContext()
    out: list[Point] = []
    st = state
    for s in samples:
        st, pts = step(st, s, ctx)
        out += pts
    assert st is not None
    return st, out


def last(points: list[Point], measurement: str, **tags: str) -> Point:
    """The last point of a series (later writes overwrite earlier ones in InfluxDB)."""
    found = [
        p
        for p in points
        if p.measurement == measurement and all(p.tags.get(k) == v for k, v in tags.items())
    ]
    assert found, (measurement, tags)
    return found[-1]


def at_hour(points: list[Point], measurement: str, t: datetime, **tags: str) -> Point:
    return last([p for p in points if p.time == t], measurement, **tags)


# ------------------------------------------------------------------ a station's day (2012)


def air_day_values(slot: int) -> dict[str, Any]:
    """Hour slot 0…23 of the day (label 01:00 … 24:00):
    PM2.5 30 in slots 0–11, 90 in 12–23; PM10 100; SO2 10; NO2 40; CO 1.0;
    O3 50, except 180 in slots 10–17 (labels 11:00 … 18:00)."""
    return {
        "pm25": 30.0 if slot < 12 else 90.0,
        "pm10": 100.0,
        "so2": 10.0,
        "no2": 40.0,
        "co": 1.0,
        "o3": 180.0 if 10 <= slot <= 17 else 50.0,
    }


def label(slot: int) -> datetime:
    return MIDNIGHT + timedelta(hours=slot + 1)


def air_day(skip: Iterable[int] = ()) -> list[Sample]:
    skipped = set(skip)
    return [sample("air", label(i), **air_day_values(i)) for i in range(24) if i not in skipped]


@pytest.fixture(scope="module")
def day_points() -> list[Point]:
    return run(air_day())[1]


def test_hourly_aqi_of_chosen_hours(day_points: list[Point]) -> None:
    # label 12:00 (slot 11), HJ 633-2012 real-time (PM on the 24-h table, the rest 1-h):
    #   pm25 30: 50·30/35 = 42.86 → 43;  pm10 100: 50 + 50·(100−50)/(150−50) = 75
    #   so2 10 (1-h): 50·10/150 = 3.33 → 4;  no2 40 (1-h): 50·40/100 = 20;  co 1.0: 50·1/5 = 10
    #   o3 180 (1-h): 50 + 50·(180−160)/(200−160) = 75      → AQI 75, primary pm10 and o3 (tie)
    p = at_hour(day_points, "aqi", label(11), period="hour")
    assert p.fields["aqi"] == 75
    assert p.fields["primary"] == "pm10,o3"
    assert (p.fields["iaqi_pm25"], p.fields["iaqi_so2"], p.fields["iaqi_no2"]) == (43, 4, 20)
    assert (p.fields["level"], p.fields["category"], p.fields["edition"]) == (
        2,
        "良",
        "HJ 633-2012",
    )
    assert p.fields["published"] is True
    # label 15:00 (slot 14): pm25 90: 100 + 50·(90−75)/(115−75) = 118.75 → 119 > o3 75
    p = at_hour(day_points, "aqi", label(14), period="hour")
    assert (p.fields["aqi"], p.fields["primary"], p.fields["level"]) == (119, "pm25", 3)
    assert p.fields["category"] == "轻度污染"


def test_moving_means(day_points: list[Point]) -> None:
    # label 18:00 (slot 17): O3 8-h window = slots 10…17, all 180 → 180
    p = at_hour(day_points, "aggregate", label(17), period="moving")
    assert p.fields["o3_8h"] == 180.0
    # 18 hours so far: fewer than 20 → no 24-h PM mean yet (GB 3095 表4)
    assert "pm25_24h" not in p.fields
    # label 14:00 (slot 13): O3 window slots 6…13 = 4·50 + 4·180 = 920 / 8 = 115
    assert at_hour(day_points, "aggregate", label(13), period="moving").fields["o3_8h"] == 115.0
    # label 20:00 (slot 19): 20 hours → valid; pm25 (12·30 + 8·90)/20 = 1080/20 = 54
    assert at_hour(day_points, "aggregate", label(19), period="moving").fields["pm25_24h"] == 54.0
    # label 24:00 (slot 23): 24 hours; pm25 (12·30 + 12·90)/24 = 60, pm10 100, so2 10
    p = at_hour(day_points, "aggregate", label(23), period="moving")
    assert (p.fields["pm25_24h"], p.fields["pm10_24h"], p.fields["so2_24h"]) == (60.0, 100.0, 10.0)


def test_daily_means_daily_aqi_and_good_day(day_points: list[Point]) -> None:
    agg = last(day_points, "aggregate", period="day")
    assert agg.time == MIDNIGHT  # a day's points carry 00:00 Beijing time of the day
    assert agg.fields["hours"] == 24
    assert (agg.fields["pm25"], agg.fields["pm10"], agg.fields["co"]) == (60.0, 100.0, 1.0)
    # O3 daily max 8-h: windows ending 08:00…24:00; the best is slots 10…17 = 180; max 1-h 180
    assert (agg.fields["o3_8h_max"], agg.fields["o3_1h_max"]) == (180.0, 180.0)
    # daily AQI (HJ 633-2012 日报, 24-h tables):
    #   pm25 60: 50 + 50·(60−35)/(75−35) = 81.25 → 82;  pm10 100 → 75;  so2 10: 50·10/50 = 10
    #   no2 40 → 50;  co 1.0: 50·1/2 = 25;  o3_1h 180 → 75
    #   o3_8h 180: 100 + 50·(180−160)/(215−160) = 118.18 → 119          → AQI 119 (o3_8h)
    aqi = last(day_points, "aqi", period="day")
    assert aqi.time == MIDNIGHT
    assert (aqi.fields["aqi"], aqi.fields["primary"]) == (119, "o3_8h")
    assert aqi.fields["iaqi_pm25"] == 82
    assert aqi.fields["good"] is False  # 119 > 100 (优良 ends at 100)
    assert aqi.fields["heavy"] is False
    # GB 3095-2012 grade II O3 日最大8小时 160: (180 − 160)/160 = 0.125; PM within 75/150
    ex = [p for p in day_points if p.measurement == "exceedance" and p.time == MIDNIGHT]
    assert [(p.tags["factor"], p.tags["period"]) for p in ex] == [("o3", "max_8h")]
    assert (ex[0].fields["value"], ex[0].fields["limit"], ex[0].fields["multiple"]) == (
        180.0,
        160.0,
        0.125,
    )


def test_the_day_is_emitted_when_its_hour_labelled_0000_arrives() -> None:
    _, pts = run(air_day()[:23])
    assert not [
        p for p in pts if p.measurement in ("aqi", "aggregate") and p.tags["period"] == "day"
    ]
    _, pts = run(air_day())
    assert [p.time for p in pts if p.measurement == "aqi" and p.tags["period"] == "day"] == [
        MIDNIGHT
    ]


def test_a_day_with_19_vs_20_valid_pm25_hours() -> None:
    def day(valid_hours: int) -> list[Point]:
        samples = []
        for i in range(24):
            vals: dict[str, Any] = {"pm10": 40.0, "so2": 10.0, "no2": 20.0, "co": 0.5, "o3": 60.0}
            vals["pm25"] = 40.0 if i < valid_hours else (40.0, "D")  # flagged D: invalid
            samples.append(sample("air", label(i), **vals))
        return run(samples)[1]

    # 20 valid hours of 40 → daily mean 40 (GB 3095 表4: ≥ 20 hours);
    # daily AQI 2012: pm25 40: 50 + 50·(40−35)/(75−35) = 56.25 → 57
    twenty = day(20)
    assert last(twenty, "aggregate", period="day").fields["pm25"] == 40.0
    assert last(twenty, "aqi", period="day").fields["iaqi_pm25"] == 57
    assert last(twenty, "aqi", period="day").fields["aqi"] == 57
    # 19 valid hours: no daily PM2.5; 2012 → NA for it, AQI from the others:
    #   pm10 40: 50·40/50 = 40; no2 20 → 25; o3_8h 60 → 30; o3_1h 60: 50·60/160 = 18.75 → 19
    nineteen = day(19)
    assert "pm25" not in last(nineteen, "aggregate", period="day").fields
    p = last(nineteen, "aqi", period="day")
    assert p.fields["missing"] == "pm25"
    assert p.fields["aqi"] == 40
    assert p.fields["good"] is True  # 40 ≤ 100


def test_a_late_sample_reemits_hour_moving_means_and_day_with_the_same_ids() -> None:
    samples = air_day(skip=[5])
    state, first = run(samples)
    # without slot 5 (pm25 30): day pm25 = (11·30 + 12·90)/23 = 1410/23 = 61.304…
    day_before = last(first, "aggregate", period="day")
    assert day_before.fields["pm25"] == pytest.approx(61.304, abs=1e-3)
    assert day_before.fields["hours"] == 23
    _, late = run([sample("air", label(5), **air_day_values(5))], state=state)
    # the hour itself (its AQI), the moving means of the later hours, the day — corrected
    assert at_hour(late, "aqi", label(5), period="hour").fields["aqi"] == 75  # pm10 75 vs pm25 43
    moving = {p.time for p in late if p.measurement == "aggregate" and p.tags["period"] == "moving"}
    assert moving == {label(i) for i in range(5, 24)}
    day_after = last(late, "aggregate", period="day")
    assert day_after.id == day_before.id  # the same id: the store overwrites
    assert (day_after.fields["pm25"], day_after.fields["hours"]) == (60.0, 24)
    # label 24:00: 24-h pm25 mean (12·30 + 12·90)/24 = 60 instead of 1410/23
    m_before = at_hour(first, "aggregate", label(23), period="moving")
    m_after = at_hour(late, "aggregate", label(23), period="moving")
    assert m_after.id == m_before.id
    assert (m_before.fields["pm25_24h"], m_after.fields["pm25_24h"]) == (61.304, 60.0)
    day_aqi = last(late, "aqi", period="day")
    assert day_aqi.id == last(first, "aqi", period="day").id
    # and it is the same result as the clean day
    clean = run(air_day())[1]
    assert day_aqi == last(clean, "aqi", period="day")
    assert day_after == last(clean, "aggregate", period="day")


def test_a_station_offline_for_days_still_gets_its_last_day_evaluated() -> None:
    # 22 hours of the day (slots 0…21; its 23:00 and 24:00 never arrive), then nothing until
    # 5 days later: the day is closed by the next sample and evaluated from its 22 hours
    # (≥ 20, GB 3095 表4): pm25 (12·30 + 10·90)/22 = 1260/22 = 57.27…
    samples = air_day(skip=[22, 23])
    samples.append(sample("air", label(5 * 24 + 3), **air_day_values(3)))
    _, pts = run(samples)
    day = at_hour(pts, "aggregate", MIDNIGHT, period="day")
    assert day.fields["hours"] == 22
    assert day.fields["pm25"] == pytest.approx(57.273, abs=1e-3)


def test_a_duplicate_sample_changes_nothing() -> None:
    samples = air_day()[:10]
    state, _ = run(samples)
    before = orjson.dumps(state, option=orjson.OPT_SORT_KEYS)
    original = run(samples[-1:], state=run(samples[:-1])[0])[1]
    _, dup = run(samples[-1:], state=state)
    assert orjson.dumps(state, option=orjson.OPT_SORT_KEYS) == before
    assert dup  # it is answered …
    assert all(p in original for p in dup)  # … with the same points: same ids, same values


def test_a_correction_of_the_same_hour_replaces_it() -> None:
    samples = air_day()[:12]
    state, first = run(samples)
    fixed = sample("air", label(11), **{**air_day_values(11), "pm25": 90.0})
    _, pts = run([fixed], state=state)
    p = at_hour(pts, "aqi", label(11), period="hour")
    assert p.id == at_hour(first, "aqi", label(11), period="hour").id
    assert p.fields["aqi"] == 119  # pm25 90 → 118.75 → 119 instead of 75


def test_a_sample_more_than_48_hours_late_raises_outside_window() -> None:
    state, _ = run(air_day())  # latest hour: label 24:00
    ok = sample("air", label(23) - timedelta(hours=48), pm25=10.0)
    run([ok], state=state)  # exactly 48 h: still inside
    too_late = sample("air", label(23) - timedelta(hours=49), pm25=10.0)
    with pytest.raises(OutsideWindow) as err:
        step(state, too_late, SourceContext())
    assert err.value.factor == "s1"


def test_hourly_air_samples_must_be_labelled_with_a_whole_hour() -> None:
    with pytest.raises(InvalidReading) as err:
        step(None, sample("air", label(3) + timedelta(minutes=5), pm25=10.0), SourceContext())
    assert err.value.factor == "time"


def test_a_non_numeric_value_is_a_typed_error() -> None:
    with pytest.raises(InvalidReading) as err:
        step(None, sample("air", label(3), pm25="ten"), SourceContext())
    assert err.value.factor == "pm25"
    with pytest.raises(InvalidReading):
        step(None, sample("air", label(3), pm25=float("nan")), SourceContext())


def test_a_negative_value_or_unknown_flag_is_refused_before_the_state_changes() -> None:
    state, _ = run(air_day()[:3])
    before = orjson.dumps(state, option=orjson.OPT_SORT_KEYS)
    with pytest.raises(InvalidReading) as err:
        step(state, sample("air", label(3), pm25=-5.0, pm10=40.0), SourceContext())
    assert (err.value.factor, err.value.reason) == ("pm25", "negative value")
    with pytest.raises(InvalidReading) as err:
        step(state, sample("air", label(3), pm25=(5.0, "X")), SourceContext())
    assert err.value.factor == "pm25"
    assert orjson.dumps(state, option=orjson.OPT_SORT_KEYS) == before


# ------------------------------------------------------------------ the 2026 edition switch


def test_days_across_the_hj633_2026_switch() -> None:
    """28 Feb 2026 (HJ 633-2012 / GB 3095-2012) and 1 Mar 2026 (HJ 633-2026 / GB 3095-2026 过渡)
    with the same air: PM2.5 75, PM10 50, SO2 10, NO2 20, CO 0.5, O3 40 every hour."""
    feb28 = datetime(2026, 2, 28, tzinfo=BJ)
    samples = [
        sample(
            "air",
            feb28 + timedelta(hours=i + 1),
            pm25=75.0,
            pm10=50.0,
            so2=10.0,
            no2=20.0,
            co=0.5,
            o3=40.0,
        )
        for i in range(48)
    ]
    _, pts = run(samples)
    # label 2026-02-28 23:00 → 2012: pm25 75 is the IAQI-100 point → 100
    p = at_hour(pts, "aqi", feb28 + timedelta(hours=23), period="hour")
    assert (p.fields["edition"], p.fields["aqi"]) == ("HJ 633-2012", 100)
    # label 2026-03-01 00:00 (the last hour of 28 Feb) is published after the switch → 2026:
    #   pm25 75: 100 + 50·(75−60)/(115−60) = 113.6 → 114
    p = at_hour(pts, "aqi", feb28 + timedelta(hours=24), period="hour")
    assert (p.fields["edition"], p.fields["aqi"]) == ("HJ 633-2026", 114)
    days = {p.time.date(): p for p in pts if p.measurement == "aqi" and p.tags["period"] == "day"}
    # 28 Feb daily (2012): pm25 24-h 75 → 100 → 良, a good day
    assert days[date(2026, 2, 28)].fields["aqi"] == 100
    assert days[date(2026, 2, 28)].fields["good"] is True
    # 1 Mar daily (2026): 114 → 轻度污染, not a good day
    assert days[date(2026, 3, 1)].fields["aqi"] == 114
    assert days[date(2026, 3, 1)].fields["good"] is False
    # GB 3095 daily PM2.5: 2012 limit 75 → 75 complies; 2026 过渡 limit 60 → (75−60)/60 = 0.25
    ex = [p for p in pts if p.measurement == "exceedance" and p.tags["period"] == "daily"]
    assert [(p.time.date(), p.tags["factor"], p.fields["multiple"]) for p in ex] == [
        (date(2026, 3, 1), "pm25", 0.25)
    ]


# ------------------------------------------------------------------ GB 3095 hourly exceedance


@pytest.mark.parametrize(
    ("grade", "limit", "multiple"),
    [
        (2, 200.0, 0.25),  # grade II O3 1-h 200: (250 − 200)/200 = 0.25
        (1, 160.0, 0.5625),  # grade I O3 1-h 160: (250 − 160)/160 = 0.5625
    ],
)
def test_hourly_o3_exceedance_with_its_multiple(grade: int, limit: float, multiple: float) -> None:
    _, pts = run([sample("air", label(14), o3=250.0, pm25=20.0)], SourceContext(area_grade=grade))
    ex = last(pts, "exceedance", factor="o3")
    assert ex.tags["period"] == "hourly"
    assert (ex.fields["value"], ex.fields["limit"], ex.fields["multiple"]) == (
        250.0,
        limit,
        multiple,
    )
    assert ex.fields["standard"] == "GB 3095-2012"


def test_o3_at_the_limit_is_no_exceedance() -> None:
    _, pts = run([sample("air", label(14), o3=200.0)])  # 200 = grade II limit: complies
    assert not [p for p in pts if p.measurement == "exceedance"]


def test_hj633_2026_withheld_aqi_is_published_false() -> None:
    # 2026, PM10 missing, the others give pm25 40: 50 + 50·(40−35)/(60−35) = 60 ≤ 100
    # → HJ 633-2026 5.3.1: AQI NA; computed 58 kept, published false
    at = datetime(2026, 6, 1, 10, tzinfo=BJ)
    _, pts = run([sample("air", at, pm25=40.0, so2=10.0, no2=20.0, co=0.5, o3=40.0)])
    p = last(pts, "aqi", period="hour")
    assert "aqi" not in p.fields
    assert (p.fields["published"], p.fields["computed_aqi"], p.fields["missing"]) == (
        False,
        60,
        "pm10",
    )


# ------------------------------------------------------------------ water


def water(at: datetime, **values: Any) -> Sample:
    return sample("water", at, src="sec1", **values)


def test_water_class_per_sample_and_per_day_against_the_target() -> None:
    ctx = SourceContext(target_class=3)
    base = {"ph": 7.5, "do": 6.0, "codmn": 4.0, "tp": 0.15}
    s1 = water(MIDNIGHT + timedelta(hours=4), nh3n=0.8, **base)
    s2 = water(MIDNIGHT + timedelta(hours=8), nh3n=1.6, **base)
    state, pts = run([s1, s2], ctx)
    # s1: do 6 → II (≥ 6), codmn 4 → II, nh3n 0.8 → III (≤ 1.0), tp 0.15 → III (≤ 0.2): III
    p1 = at_hour(pts, "water_class", s1.time, period="sample")
    assert (p1.fields["label"], p1.fields["meets"], p1.fields["classes_worse"]) == ("III", True, 0)
    # s2: nh3n 1.6 > 1.5 (IV), ≤ 2.0 → V; multiple vs III (1.6 − 1.0)/1.0 = 0.6; 2 classes worse
    p2 = at_hour(pts, "water_class", s2.time, period="sample")
    assert (p2.fields["label"], p2.fields["meets"], p2.fields["classes_worse"]) == ("V", False, 2)
    assert (p2.fields["main_pollutants"], p2.fields["multiple_nh3n"]) == ("nh3n", 0.6)
    # day: nh3n mean (0.8 + 1.6)/2 = 1.2 → IV, multiple (1.2 − 1.0)/1.0 = 0.2, 1 class worse
    day = last(pts, "water_class", period="day")
    assert day.time == MIDNIGHT
    assert (day.fields["label"], day.fields["classes_worse"]) == ("IV", 1)
    assert day.fields["multiple_nh3n"] == pytest.approx(0.2)
    # a correction of s2 (same time, nh3n 1.0): day mean 0.9 → III, same id, meets the target
    _, fixed = run([water(s2.time, nh3n=1.0, **base)], ctx, state)
    day2 = last(fixed, "water_class", period="day")
    assert day2.id == day.id
    assert (day2.fields["label"], day2.fields["meets"]) == ("III", True)


def test_water_ph_outside_0_14_is_a_typed_error_and_6_9_sets_the_class() -> None:
    with pytest.raises(InvalidReading) as err:
        step(None, water(MIDNIGHT + timedelta(hours=4), ph=15.0, do=6.0), SourceContext())
    assert err.value.factor == "ph"
    # pH 9.5 outside 6–9 (GB 3838-2002 表1 第2项) → 劣V
    _, pts = run([water(MIDNIGHT + timedelta(hours=4), ph=9.5, do=6.0)])
    assert last(pts, "water_class", period="sample").fields["label"] == "劣V"


# ------------------------------------------------------------------ emissions


HOUR10 = datetime(2025, 6, 10, 10, tzinfo=BJ)
SO2_PERMIT = {"so2": PermitLimit(outlet="e1-g1", factor="so2", upper=100.0, basis=Basis.HOUR)}


def flue_gas_hour(invalid_minutes: int) -> list[Point]:
    """Minutes of 10:00–11:00 (labelled by their end 10:01 … 11:00): SO2 100 mg/m³, O2 12 %,
    the first ``invalid_minutes`` SO2 values flagged M (maintenance); one minute of the next hour
    closes the hour."""
    samples = []
    for m in range(61):
        flag = "M" if m < invalid_minutes else "N"
        samples.append(
            sample(
                "emission",
                HOUR10 + timedelta(minutes=m + 1),
                "min",
                src="e1-g1",
                so2=(100.0, flag),
                o2=12.0,
                nox=150.0,
            )
        )
    ctx = SourceContext(limits=SO2_PERMIT, reference_o2=9.0)  # GB 13271-2014 表6 coal boiler
    return run(samples, ctx)[1]


def test_emission_hour_with_45_valid_minutes_o2_correction_and_permit_exceedance() -> None:
    pts = flue_gas_hour(invalid_minutes=15)
    hour = last(pts, "emission_hour")
    assert hour.time == HOUR10 + timedelta(hours=1)  # labelled by its end
    # 60 − 15 = 45 valid minutes (HJ 212-2017 附录D: ≥ 45) → valid; 15 flagged M counted
    assert (hour.fields["valid_minutes_so2"], hour.fields["flag_M"]) == (45, 15)
    assert hour.fields["so2"] == 100.0
    # 折算: 100 × (21 − 9)/(21 − 12) = 100 × 12/9 = 133.3333
    assert hour.fields["so2_zs"] == pytest.approx(133.3333)
    # NOx: 150 × 12/9 = 200
    assert hour.fields["nox_zs"] == pytest.approx(200.0)
    ex = last(pts, "exceedance", factor="so2")
    # permit 100 on the corrected value: (133.333 − 100)/100 = 0.3333
    assert (ex.fields["limit"], ex.fields["multiple"], ex.fields["corrected"]) == (
        100.0,
        0.3333,
        True,
    )
    assert ex.fields["value"] == pytest.approx(133.3333)


def test_emission_hour_with_44_valid_minutes_has_no_so2_mean() -> None:
    pts = flue_gas_hour(invalid_minutes=16)
    hour = last(pts, "emission_hour")
    assert (hour.fields["valid_minutes_so2"], hour.fields["flag_M"]) == (44, 16)
    assert "so2" not in hour.fields
    assert "so2_zs" not in hour.fields
    assert not [p for p in pts if p.measurement == "exceedance"]  # invalid: no 超标判定


def test_a_late_minute_reemits_its_closed_hour_with_the_same_id() -> None:
    # 44 valid SO2 minutes (16 flagged M) → no SO2 mean; then one flagged minute arrives again
    # as N (a correction, same time) → 45 valid → SO2 100, corrected 133.3333, exceedance
    ctx = SourceContext(limits=SO2_PERMIT, reference_o2=9.0)
    samples = [
        sample(
            "emission",
            HOUR10 + timedelta(minutes=m + 1),
            "min",
            src="e1-g1",
            so2=(100.0, "M" if m < 16 else "N"),
            o2=12.0,
        )
        for m in range(61)
    ]
    state, first = run(samples, ctx)
    before = last(first, "emission_hour")
    assert "so2" not in before.fields
    fix = sample("emission", HOUR10 + timedelta(minutes=1), "min", src="e1-g1", so2=100.0, o2=12.0)
    _, late = run([fix], ctx, state)
    after = last(late, "emission_hour")
    assert after.id == before.id
    assert (after.fields["valid_minutes_so2"], after.fields["flag_M"]) == (45, 15)
    assert after.fields["so2_zs"] == pytest.approx(133.3333)
    assert last(late, "exceedance", factor="so2").time == HOUR10 + timedelta(hours=1)


def test_the_hour_closes_only_when_a_later_hour_begins() -> None:
    samples = [
        sample("emission", HOUR10 + timedelta(minutes=m + 1), "min", src="e", so2=50.0, o2=10.0)
        for m in range(60)
    ]
    _, pts = run(samples)
    assert not [p for p in pts if p.measurement == "emission_hour"]


def test_wastewater_plant_daily_gb18918_class() -> None:
    # 一级A plant built 2010; daily data: cod 45 (≤ 50 一级A), nh3n 6 at 15 ℃ (> 12 ℃ column:
    # 一级A 5, 一级B 8 → 一级B), tp 0.4 (built from 2006: 一级A 0.5), pH 7 (6–9)
    ctx = SourceContext(wastewater=True, effluent_class="一级A", plant_built=date(2010, 5, 1))
    at = MIDNIGHT + timedelta(days=1)
    _, pts = run(
        [sample("emission", at, "day", src="wwtp", cod=45.0, nh3n=6.0, tp=0.4, ph=7.0, temp=15.0)],
        ctx,
    )
    day = last(pts, "emission_day")
    assert (day.fields["effluent_required"], day.fields["effluent_class"]) == ("一级A", "一级B")
    assert day.fields["effluent_meets"] is False
    ex = last(pts, "exceedance", factor="nh3n")
    # (6 − 5)/5 = 0.2 against GB 18918-2002 表1 氨氮 (水温 > 12 ℃)
    assert (ex.tags["period"], ex.fields["limit"], ex.fields["multiple"]) == ("day", 5.0, 0.2)
    assert "GB 18918-2002" in str(ex.fields["standard"])
    assert {p.tags["factor"] for p in pts if p.measurement == "exceedance"} == {"nh3n"}


def test_wastewater_ph_outside_6_9_fails_gb18918() -> None:
    ctx = SourceContext(wastewater=True, effluent_class="一级B")
    _, pts = run([sample("emission", MIDNIGHT, "day", src="w", cod=30.0, ph=5.5)], ctx)
    ex = last(pts, "exceedance", factor="ph")
    assert ex.fields["limit"] == 6.0  # the bound crossed (GB 18918-2002 表1 pH 6–9)
    assert last(pts, "emission_day").fields["effluent_meets"] is False


@pytest.mark.parametrize(("hours", "mean"), [(20, 40.0), (19, None)])
def test_emission_daily_mean_needs_20_valid_hours(hours: int, mean: float | None) -> None:
    # hourly COD 40 mg/L in the first `hours` hours of the day, then the next day's first hour
    samples = [
        sample("emission", MIDNIGHT + timedelta(hours=i + 1), src="w", cod=40.0)
        for i in range(hours)
    ]
    samples.append(sample("emission", MIDNIGHT + timedelta(hours=25), src="w", cod=40.0))
    _, pts = run(samples, SourceContext(wastewater=True))
    day = at_hour(pts, "emission_day", MIDNIGHT + timedelta(days=1))  # labelled by its end
    assert day.fields["valid_hours_cod"] == hours
    assert day.fields.get("cod") == mean


# ------------------------------------------------------------------ other monitors


def test_bypass_opened_is_reported() -> None:
    _, pts = run([sample("monitor", label(3), src="m", bypass_open=0.0)])
    assert not [p for p in pts if p.measurement == "exceedance"]
    _, pts = run([sample("monitor", label(4), src="m", bypass_open=1.0)])
    ex = last(pts, "exceedance", factor="bypass_open")
    assert (ex.tags["period"], ex.fields["standard"]) == ("instant", "bypass opened")


def test_dustfall_is_judged_as_a_monthly_mean() -> None:
    first = sample("monitor", datetime(2025, 6, 5, tzinfo=BJ), "day", src="d", dustfall=6.0)
    second = sample("monitor", datetime(2025, 6, 20, tzinfo=BJ), "day", src="d", dustfall=9.0)
    state, pts = run([first])
    month = last(pts, "aggregate", period="month")
    assert month.time == datetime(2025, 6, 1, tzinfo=BJ)
    assert (month.fields["dustfall"], month.fields["samples"]) == (6.0, 1)
    assert not [p for p in pts if p.measurement == "exceedance"]  # 6 ≤ 7
    _, pts = run([second], state=state)
    # (6 + 9)/2 = 7.5 > 7 t/(month·km²) (plans); (7.5 − 7)/7 = 0.0714
    ex = last(pts, "exceedance", factor="dustfall")
    assert (ex.tags["period"], ex.fields["value"], ex.fields["limit"]) == ("month", 7.5, 7.0)
    assert ex.fields["multiple"] == 0.0714


# ------------------------------------------------------------------ data quality


def test_constant_value_run() -> None:
    # SO2 stays at 10 while PM2.5 changes every hour: the 6th identical SO2 (DEFAULT_CONSTANT_RUN)
    # raises constant_so2 = 6, the 7th 7; a zero-value run of NO2 is flagged as zero_no2 too
    samples = [
        sample("air", label(i), so2=10.0, pm25=30.0 + i, no2=0.0 if i >= 1 else 5.0)
        for i in range(7)
    ]
    state, pts = run(samples[:5])
    assert not [p for p in pts if p.tags.get("period") == "run"]
    state, pts = run(samples[5:6], state=state)
    assert last(pts, "data_quality", period="run").fields == {"constant_so2": 6}
    state, pts = run(samples[6:7], state=state)
    # NO2 0 in slots 1…6: six zeros → constant_no2 = zero_no2 = 6
    assert last(pts, "data_quality", period="run").fields == {
        "constant_no2": 6,
        "constant_so2": 7,
        "zero_no2": 6,
    }
    # a duplicate of the last sample neither extends nor breaks the runs
    _, dup = run(samples[6:7], state=state)
    assert not [p for p in dup if p.tags.get("period") == "run"]
    assert state.quality.runs == {"no2": 6, "so2": 7}


def test_daily_transmission_and_valid_rates() -> None:
    # 22 of the 24 hours received (slots 7 and 8 missing); 2 of them with NO2 flagged D
    samples = []
    for i in range(24):
        if i in (7, 8):
            continue
        vals: dict[str, Any] = {"pm25": 30.0 + i, "no2": 20.0 + i}
        if i in (3, 4):
            vals["no2"] = (20.0, "D")
        samples.append(sample("air", label(i), **vals))
    _, pts = run(samples)
    q = last(pts, "data_quality", period="day")
    assert q.time == MIDNIGHT
    # 数据传输率 22/24 = 0.91666… → 0.9167; 数据有效率 20/22 = 0.90909… → 0.9091
    assert (q.fields["expected"], q.fields["received"], q.fields["valid"]) == (24, 22, 20)
    assert (q.fields["transmission_rate"], q.fields["valid_rate"]) == (0.9167, 0.9091)
    assert q.fields["flag_D"] == 2


# ------------------------------------------------------------------ determinism


def timeline() -> list[Sample]:
    """Two air days with a late hour, a duplicate, and an invalid value."""
    samples = air_day(skip=[5]) + [
        sample("air", label(24 + i), **air_day_values(i)) for i in range(10)
    ]
    samples.insert(30, samples[29])  # duplicate
    samples.insert(31, sample("air", label(5), **air_day_values(5)))  # late
    return samples


@pytest.mark.parametrize("cut", [1, 12, 23, 30, 33])
def test_replay_from_a_json_round_tripped_state_gives_identical_points(cut: int) -> None:
    samples = timeline()
    _, straight = run(samples)
    state, head = run(samples[:cut])
    restored = orjson.loads(orjson.dumps(state))  # what a checkpoint holds (streams.state)
    # the state is plain JSON data for any encoder, and its JSON form loads back equal
    assert json.loads(json.dumps(dataclasses.asdict(state))) == restored
    assert load_state(restored) == state
    _, tail = run(samples[cut:], state=restored)
    assert head + tail == straight
    assert [p.id for p in head + tail] == [p.id for p in straight]


def test_a_state_of_another_layout_version_is_started_afresh() -> None:
    state, _ = run(air_day()[:3])
    old = orjson.loads(orjson.dumps(state)) | {"v": 2}
    assert load_state(old) == SourceState()
    assert load_state(None) is None
    assert load_state(state) is state


def test_samples_in_any_order_within_the_window_give_the_clean_days_final_answer() -> None:
    """The last write of every id is the same for the clean day and for the same day delivered
    afternoon first, then the morning, then everything again (constant-value runs excepted:
    they follow arrival order, docs/evaluations.md)."""
    clean = run(air_day())[1]
    shuffled = air_day()
    shuffled = shuffled[12:] + shuffled[:12][::-1] + shuffled  # late, reversed, then duplicated
    mixed = run(shuffled)[1]

    def final(points: list[Point]) -> dict[str, Point]:
        return {p.id: p for p in points if p.tags.get("period") != "run"}

    got, want = final(mixed), final(clean)
    assert got.keys() == want.keys()
    assert got == want


def test_an_outlet_hour_flagged_in_maintenance_writes_no_point_without_a_field() -> None:
    """Every value of an hourly flue-gas sample flagged M (maintenance, HJ 212-2017 表8): there is
    no valid mean to write, so no ``emission_hour`` point at all — a point without a field cannot
    be written as line protocol and once took the store's whole batch down. The flags stay on
    the reading (``invalid``) and the hour is judged against no limit (no verdict)."""
    ctx = SourceContext(
        limits={"nox": PermitLimit(outlet="g1", factor="nox", upper=150.0, basis=Basis.HOUR)}
    )
    _, pts = run(
        [sample("emission", MIDNIGHT + timedelta(hours=h), nox=(180.0, "M")) for h in (1, 2)], ctx
    )
    assert all(p.fields for p in pts), [p for p in pts if not p.fields]
    assert [p.measurement for p in pts if p.measurement.startswith("emission")] == []
    assert [p.measurement for p in pts if p.measurement == "verdict"] == []
    reading = last(pts, "reading")
    assert reading.fields == {"invalid": "nox:M"}
