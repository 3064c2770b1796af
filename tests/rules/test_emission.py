"""Emission rules (rules.emission): O2 correction, hourly validity, permit and GB 18918 limits.

Expected values are computed by hand in the comments from GB 13271-2014 式(1), HJ 212-2017
附录D/表8/表C.16 and GB 18918-2002 表1 (standards.md §4, §5, §7.1). The daily mean and the hourly
permit judgement are what ``rules.evaluate.step`` computes live, so they are checked through it.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from rules.emission import (
    LAIXI_WWTP_STRICTER,
    Basis,
    EffluentClass,
    HourlyAverage,
    HourlyResult,
    LocalLimit,
    MinuteRule,
    PermitLimit,
    Verdict,
    WindowStatus,
    check_effluent,
    check_permit,
    o2_corrected,
)
from rules.errors import InvalidReading, OutsideWindow, OxygenOutOfRange, UnknownFactor
from rules.evaluate import Point, Sample, SourceContext, step
from rules.flags import Flag

BJ = ZoneInfo("Asia/Shanghai")
HOUR = datetime(2026, 3, 5, 8, 0, tzinfo=BJ)

# ---------------------------------------------------------------- O2 correction


@pytest.mark.parametrize(
    ("c", "o2", "ref", "expected"),
    [
        (200.0, 12.0, 9.0, 200 * 12 / 9),  # 200 × (21−9)/(21−12) = 266.67
        (30.0, 3.5, 3.5, 30.0),  # measured = reference → unchanged
        (100.0, 6.0, 3.5, 100 * 17.5 / 15),  # 100 × (21−3.5)/(21−6) = 116.67
        (80.0, 18.0, 9.0, 320.0),  # 80 × 12/3 = 320: high O2 (dilution) raises the figure
        (0.0, 15.0, 9.0, 0.0),
    ],
)
def test_o2_correction_hand_computed(c: float, o2: float, ref: float, expected: float) -> None:
    assert o2_corrected(c, o2_measured=o2, o2_reference=ref) == pytest.approx(expected)


def test_coal_boiler_worked_example() -> None:
    # Coal boiler, reference O2 9 % (GB 13271-2014 表6; the catalogue's coal_boiler default),
    # 150 mg/m³ at 10.5 % O2: 150 × (21−9)/(21−10.5) = 150 × 12/10.5 = 171.43
    corrected = o2_corrected(150.0, o2_measured=10.5, o2_reference=9.0)
    assert corrected == pytest.approx(171.428571, rel=1e-6)


def test_incinerator_worked_example() -> None:
    # Waste incinerator, reference O2 11 % (GB 18485-2014, a [MEM] operator default in the
    # catalogue), 50 mg/m³ at 14 % O2 → 50 × (21−11)/(21−14) = 50 × 10/7 = 71.43
    got = o2_corrected(50.0, o2_measured=14.0, o2_reference=11.0)
    assert got == pytest.approx(500 / 7)


@pytest.mark.parametrize("o2", [21.0, 25.0, -0.1])
def test_measured_o2_out_of_range_is_a_typed_error(o2: float) -> None:
    with pytest.raises(OxygenOutOfRange) as err:
        o2_corrected(100.0, o2_measured=o2, o2_reference=9.0)
    assert (err.value.factor, err.value.value) == ("o2", o2)


@pytest.mark.parametrize("ref", [21.0, -1.0])
def test_reference_o2_out_of_range_is_a_typed_error(ref: float) -> None:
    with pytest.raises(OxygenOutOfRange) as err:
        o2_corrected(100.0, o2_measured=10.0, o2_reference=ref)
    assert (err.value.factor, err.value.value) == ("o2_reference", ref)


def test_negative_concentration_is_a_typed_error() -> None:
    with pytest.raises(InvalidReading) as err:
        o2_corrected(-5.0, o2_measured=10.0, o2_reference=9.0)
    assert err.value.factor == "concentration"


# ---------------------------------------------------------------- hourly validity


def _minutes(agg: HourlyAverage, values_flags: list[tuple[float, str]]) -> HourlyResult:
    state = agg.initialise("so2", HOUR)
    for minute, (value, flag) in enumerate(values_flags):
        state = agg.add(state, at=HOUR + timedelta(minutes=minute), value=value, flag=flag)
    return agg.result(state)


def test_45_valid_minutes_make_an_hour_44_do_not() -> None:
    agg = HourlyAverage()
    # 45 valid minutes with values 1…45: mean (1+45)/2 = 23; 15 minutes flagged D at 1000 ignored.
    ok = _minutes(agg, [(float(v), "N") for v in range(1, 46)] + [(1000.0, "D")] * 15)
    assert (ok.status, ok.valid_minutes, ok.mean) == (WindowStatus.VALID, 45, 23.0)
    assert (ok.minimum, ok.maximum) == (1.0, 45.0)
    # 44 valid minutes (values 1…44) + 16 flagged F: not enough → no mean at all.
    short = _minutes(agg, [(float(v), "N") for v in range(1, 45)] + [(1.0, "F")] * 16)
    assert (short.status, short.valid_minutes, short.mean) == (WindowStatus.INSUFFICIENT, 44, None)
    assert not short.valid


def test_manual_set_values_s_count_as_valid() -> None:
    # 44 N + 1 S = 45 valid minutes, all value 10 → mean 10.
    result = _minutes(HourlyAverage(), [(10.0, "N")] * 44 + [(10.0, "S")])
    assert (result.valid_minutes, result.mean) == (45, 10.0)


def test_invalid_flags_counted_by_kind() -> None:
    # 40 N, 10 F, 5 M, 3 D, 1 C, 1 T = 60 minutes; B absent → not listed.
    data = (
        [(1.0, "N")] * 40
        + [(1.0, "F")] * 10
        + [(1.0, "M")] * 5
        + [(1.0, "D")] * 3
        + [(1.0, "C")]
        + [(1.0, "T")]
    )
    result = _minutes(HourlyAverage(), data)
    assert dict(result.invalid_counts) == {Flag.F: 10, Flag.M: 5, Flag.D: 3, Flag.C: 1, Flag.T: 1}
    assert result.valid_minutes == 40
    assert result.status is WindowStatus.INSUFFICIENT


def _realtime_minute(rule: MinuteRule, flags: list[str]) -> HourlyResult:
    """One minute of real-time values (every 10 s) with the given flags, value 8 each."""
    agg = HourlyAverage(rule=rule, min_valid_minutes=1)
    state = agg.initialise("cod", HOUR)
    for i, flag in enumerate(flags):
        state = agg.add(state, at=HOUR + timedelta(seconds=10 * i), value=8.0, flag=flag)
    return agg.result(state)


@pytest.mark.parametrize(
    ("rule", "flags", "valid_minutes"),
    [
        (MinuteRule.FLUE_GAS, ["N", "N", "N", "D"], 1),  # 3/4 = 75 % normal → valid
        (MinuteRule.FLUE_GAS, ["N", "N", "D"], 0),  # 2/3 = 66.7 % < 75 % → invalid
        (MinuteRule.WASTEWATER, ["N", "N", "N", "D"], 0),  # one abnormal value spoils it
        (MinuteRule.WASTEWATER, ["N", "S", "N"], 1),
    ],
)
def test_minute_validity_from_realtime_values(
    rule: MinuteRule, flags: list[str], valid_minutes: int
) -> None:
    assert _realtime_minute(rule, flags).valid_minutes == valid_minutes


def test_redelivered_reading_is_counted_once_and_state_is_json() -> None:
    agg = HourlyAverage(min_valid_minutes=1)
    state = agg.initialise("nox", HOUR)
    for _ in range(3):  # at-least-once delivery: the same packet three times
        state = agg.add(state, at=HOUR + timedelta(minutes=5), value=40.0)
    state = agg.add(state, at=HOUR + timedelta(minutes=6), value=60.0, flag=Flag.N)
    restored = json.loads(json.dumps(state))
    result = agg.result(restored)
    # Two readings, mean (40 + 60)/2 = 50.
    assert (result.readings, result.mean) == (2, 50.0)
    assert result.start == HOUR
    assert result.end == HOUR + timedelta(hours=1)


@pytest.mark.parametrize("offset", [timedelta(hours=1), timedelta(seconds=-1)])
def test_reading_outside_the_hour_is_rejected(offset: timedelta) -> None:
    agg = HourlyAverage()
    state = agg.initialise("so2", HOUR)
    with pytest.raises(OutsideWindow) as err:
        agg.add(state, at=HOUR + offset, value=1.0)
    assert err.value.factor == "so2"


def test_bad_inputs_to_the_hourly_mean() -> None:
    agg = HourlyAverage()
    state = agg.initialise("so2", HOUR)
    with pytest.raises(InvalidReading) as err:
        agg.add(state, at=HOUR, value=1.0, flag="X")
    assert err.value.factor == "flag"
    with pytest.raises(InvalidReading):
        agg.add(state, at=datetime(2026, 3, 5, 8, 1), value=1.0)  # naive
    with pytest.raises(InvalidReading):
        agg.add(state, at=HOUR, value=float("nan"))
    with pytest.raises(InvalidReading) as err2:
        agg.initialise("so2", HOUR + timedelta(minutes=30))
    assert err2.value.factor == "hour_start"


def _emission_day(hourly: list[float | None]) -> Point:
    """Hourly SO2 samples of 2026-03-05 labelled 01:00 … 24:00 (``None``: the hour's value is
    flagged F, invalid) through ``rules.evaluate.step``; the day's ``emission_day`` point."""
    day = datetime(2026, 3, 5, 0, 0, tzinfo=BJ)
    state = None
    points: list[Point] = []
    for slot, value in enumerate(hourly):
        so2 = (value, "N") if value is not None else (999.0, "F")
        sample = Sample(
            "emission", "weifang", "DA001", day + timedelta(hours=slot + 1), "hour", {"so2": so2}
        )
        state, out = step(state, sample, SourceContext())
        points += out
    days = [p for p in points if p.measurement == "emission_day"]
    assert len(days) == 1  # the hour labelled 24:00 completes the day
    assert days[0].time == day + timedelta(days=1)  # labelled by its end
    return days[0]


def test_daily_mean_needs_20_valid_hours() -> None:
    # 20 valid hours of 30 and 4 invalid ones (flagged F at 999) → (20 × 30)/20 = 30.
    hours: list[float | None] = [30.0 if h < 20 else None for h in range(24)]
    full = _emission_day(hours)
    assert (full.fields["valid_hours_so2"], full.fields["so2"]) == (20, 30.0)
    # 19 valid hours → no daily mean.
    hours[0] = None
    short = _emission_day(hours)
    assert short.fields["valid_hours_so2"] == 19
    assert "so2" not in short.fields


# ---------------------------------------------------------------- permit exceedance

SO2_LIMIT = PermitLimit(
    "DA001", "so2", upper=50.0, source="GB 13271-2014 新建燃气锅炉 SO2 (standards.md §5)"
)


@pytest.mark.parametrize(
    ("value", "verdict", "multiple"),
    [
        (50.0, Verdict.WITHIN, None),  # equal to the limit complies
        (49.9, Verdict.WITHIN, None),
        (50.1, Verdict.EXCEEDED, 0.002),  # (50.1 − 50)/50 = 0.002
        (75.0, Verdict.EXCEEDED, 0.5),  # (75 − 50)/50 = 0.5
        (None, Verdict.NO_DATA, None),
    ],
)
def test_permit_check(value: float | None, verdict: Verdict, multiple: float | None) -> None:
    check = check_permit(SO2_LIMIT, value)
    assert (check.outlet, check.factor, check.verdict) == ("DA001", "so2", verdict)
    if multiple is None:
        assert check.multiple is None
    else:
        assert check.multiple == pytest.approx(multiple)


def test_permit_ph_range() -> None:
    ph = PermitLimit("DW001", "ph", upper=9.0, lower=6.0, basis=Basis.DAY)
    assert check_permit(ph, 5.8).verdict is Verdict.EXCEEDED
    assert check_permit(ph, 5.8).limit == 6.0
    assert check_permit(ph, 9.0).verdict is Verdict.WITHIN
    with pytest.raises(InvalidReading):
        PermitLimit("DW001", "cod")  # no bound at all


def _judged_hour(minutes: list[tuple[float, str]]) -> list[Point]:
    """SO2 minute samples from 08:00 on (labelled by their end: 08:01 …) against SO2_LIMIT
    through ``rules.evaluate.step``, then the minute 09:00–09:01, which closes the hour; the points
    of the hour 08:00–09:00 (labelled 09:00) other than the samples' readings."""
    ctx = SourceContext(limits={"so2": SO2_LIMIT})
    timeline = [(HOUR + timedelta(minutes=m + 1), so2) for m, so2 in enumerate(minutes)]
    timeline.append((HOUR + timedelta(minutes=61), (0.0, "N")))
    state = None
    points: list[Point] = []
    for at, so2 in timeline:
        state, out = step(
            state, Sample("emission", "weifang", "DA001", at, "min", {"so2": so2}), ctx
        )
        points += out
    end = HOUR + timedelta(hours=1)
    return [p for p in points if p.time == end and p.measurement != "reading"]


def _only(points: list[Point], measurement: str) -> Point:
    found = [p for p in points if p.measurement == measurement]
    assert len(found) == 1, (measurement, found)
    return found[0]


def test_invalid_hour_is_no_data_not_within() -> None:
    # 44 valid minutes of 80 mg/m³ (above the limit 50) are still not a valid hour: no hourly
    # mean, so no verdict (the engine's NO_DATA) and no exceedance.
    short = _judged_hour([(80.0, "N")] * 44)
    hour = _only(short, "emission_hour")
    assert hour.fields["valid_minutes_so2"] == 44
    assert "so2" not in hour.fields
    assert not [p for p in short if p.measurement in ("verdict", "exceedance")]
    # 45 valid minutes of 60 → a valid hour, exceeded: multiple (60 − 50)/50 = 10/50 = 0.2.
    full = _judged_hour([(60.0, "N")] * 45)
    assert _only(full, "emission_hour").fields["so2"] == 60.0
    verdict = _only(full, "verdict")
    assert verdict.tags["period"] == "hour"
    assert (verdict.fields["so2"], verdict.fields["so2_limit"]) == (60.0, 50.0)
    ex = _only(full, "exceedance")
    assert (ex.tags["factor"], ex.tags["period"]) == ("so2", "hour")
    assert (ex.fields["value"], ex.fields["limit"]) == (60.0, 50.0)
    assert ex.fields["multiple"] == pytest.approx(0.2)


# ---------------------------------------------------------------- GB 18918-2002 表1

NEW = date(2010, 6, 1)


@pytest.mark.parametrize(
    ("factor", "value", "expected"),
    [
        # COD 50 / 60 / 100 / 120
        ("cod", 50.0, EffluentClass.CLASS_1A),
        ("cod", 50.1, EffluentClass.CLASS_1B),
        ("cod", 60.0, EffluentClass.CLASS_1B),
        ("cod", 100.0, EffluentClass.CLASS_2),
        ("cod", 120.0, EffluentClass.CLASS_3),
        ("cod", 120.5, None),
        # BOD5 10 / 20 / 30 / 60; SS 10 / 20 / 30 / 50
        ("bod5", 20.0, EffluentClass.CLASS_1B),
        ("bod5", 61.0, None),
        ("ss", 10.0, EffluentClass.CLASS_1A),
        ("ss", 50.0, EffluentClass.CLASS_3),
        # 石油类 1/3/5/15, LAS 0.5/1/2/5
        ("oil", 3.0, EffluentClass.CLASS_1B),
        ("las", 0.6, EffluentClass.CLASS_1B),
        # TN 15 / 20 / – / –: above 20 there is no TN limit at 二级
        ("tn", 15.0, EffluentClass.CLASS_1A),
        ("tn", 20.0, EffluentClass.CLASS_1B),
        ("tn", 35.0, EffluentClass.CLASS_2),
        # fecal coliform 10³ / 10⁴ / 10⁴ / –
        ("fecal_coliform", 1000.0, EffluentClass.CLASS_1A),
        ("fecal_coliform", 10001.0, EffluentClass.CLASS_3),
    ],
)
def test_gb18918_class_per_item(factor: str, value: float, expected: EffluentClass | None) -> None:
    check = check_effluent({factor: value, "temp": 20.0}, "三级", built=NEW)
    assert check.items[factor].effluent_class is expected


@pytest.mark.parametrize(
    ("built", "tp", "expected"),
    [
        # built up to 2005-12-31: TP 1 / 1.5 / 3 / 5
        (date(2005, 12, 31), 1.0, EffluentClass.CLASS_1A),
        (date(2005, 12, 31), 1.2, EffluentClass.CLASS_1B),
        # built from 2006-01-01: TP 0.5 / 1 / 3 / 5
        (date(2006, 1, 1), 0.5, EffluentClass.CLASS_1A),
        (date(2006, 1, 1), 1.0, EffluentClass.CLASS_1B),
        (date(2006, 1, 1), 1.2, EffluentClass.CLASS_2),
        (date(2006, 1, 1), 5.1, None),
    ],
)
def test_gb18918_tp_switches_on_build_date(
    built: date, tp: float, expected: EffluentClass | None
) -> None:
    assert check_effluent({"tp": tp}, "一级A", built=built).items["tp"].effluent_class is expected


@pytest.mark.parametrize(
    ("temp", "nh3n", "expected"),
    [
        # > 12 ℃: 5 / 8 / 25; ≤ 12 ℃ (brackets): 8 / 15 / 30
        (15.0, 5.0, EffluentClass.CLASS_1A),
        (15.0, 6.0, EffluentClass.CLASS_1B),
        (12.1, 6.0, EffluentClass.CLASS_1B),
        (12.0, 6.0, EffluentClass.CLASS_1A),  # exactly 12 ℃ is "≤ 12": bracket value 8
        (8.0, 8.0, EffluentClass.CLASS_1A),
        (8.0, 15.0, EffluentClass.CLASS_1B),
        (8.0, 28.0, EffluentClass.CLASS_2),
        (20.0, 28.0, EffluentClass.CLASS_3),  # 三级 has no NH3-N limit
    ],
)
def test_gb18918_nh3n_switches_on_water_temperature(
    temp: float, nh3n: float, expected: EffluentClass
) -> None:
    check = check_effluent({"nh3n": nh3n}, "一级A", built=NEW, water_temp=temp)
    assert check.items["nh3n"].effluent_class is expected
    assert not check.temperature_assumed


def test_water_temperature_from_the_sample_or_assumed_warm() -> None:
    # temp in the daily means: 10 ℃ → bracket limit 8 for 一级A, 6 mg/L complies.
    cold = check_effluent({"nh3n": 6.0, "temp": 10.0}, "一级A", built=NEW)
    assert cold.items["nh3n"].verdict is Verdict.WITHIN
    # No temperature at all: judged on the stricter > 12 ℃ column (5), and said so.
    unknown = check_effluent({"nh3n": 6.0}, "一级A", built=NEW)
    assert unknown.temperature_assumed
    assert unknown.items["nh3n"].verdict is Verdict.EXCEEDED
    assert unknown.items["nh3n"].multiple == pytest.approx(0.2)  # (6 − 5)/5


def test_required_class_verdict_and_achieved_class() -> None:
    # Required 一级A (COD 50, NH3-N 5 at 20 ℃, TP 0.5 new plant). COD 55 → exceeded,
    # multiple (55 − 50)/50 = 0.1; NH3-N 3 and TP 0.4 comply. Achieved: worst item = 一级B.
    check = check_effluent({"cod": 55.0, "nh3n": 3.0, "tp": 0.4, "temp": 20.0}, "一级A", built=NEW)
    assert check.verdict is Verdict.EXCEEDED
    assert [i.factor for i in check.exceeded] == ["cod"]
    assert check.items["cod"].multiple == pytest.approx(0.1)
    assert check.achieved is EffluentClass.CLASS_1B
    assert check.items["cod"].source.startswith("GB 18918-2002")


def test_laixi_stricter_local_limits() -> None:
    # Laixi WWTP 一级A（加严）: COD ≤ 40, NH3-N ≤ 2 (003_021375295357aa36.txt#L114).
    # COD 45 meets national 一级A (≤ 50) but not the local 40: multiple (45 − 40)/40 = 0.125.
    # NH3-N 3 at 18 ℃ meets national 5 but not local 2: multiple (3 − 2)/2 = 0.5.
    check = check_effluent(
        {"cod": 45.0, "nh3n": 3.0, "temp": 18.0},
        EffluentClass.CLASS_1A,
        built=NEW,
        local=LAIXI_WWTP_STRICTER,
    )
    cod, nh3n = check.items["cod"], check.items["nh3n"]
    assert (cod.verdict, cod.limit, cod.multiple) == (Verdict.EXCEEDED, 40, pytest.approx(0.125))
    assert (nh3n.limit, nh3n.multiple) == (2, pytest.approx(0.5))
    assert "#L114" in cod.source
    assert cod.effluent_class is EffluentClass.CLASS_1A  # its GB 18918 class is still 一级A


def test_a_laxer_local_limit_does_not_relax_the_national_one() -> None:
    check = check_effluent(
        {"cod": 55.0}, "一级A", built=NEW, local=[LocalLimit("cod", 60.0, "somewhere")]
    )
    assert (check.items["cod"].limit, check.items["cod"].verdict) == (50, Verdict.EXCEEDED)


def test_effluent_ph_and_bad_input() -> None:
    check = check_effluent({"ph": 5.5, "cod": 20.0}, "一级A", built=NEW)
    assert check.items["ph"].verdict is Verdict.EXCEEDED
    assert check.achieved is None  # pH outside 6–9 meets no class
    with pytest.raises(UnknownFactor):
        check_effluent({"pm25": 3.0}, "一级A", built=NEW)
    with pytest.raises(InvalidReading) as err:
        check_effluent({"cod": 3.0}, "一级C", built=NEW)
    assert err.value.factor == "required"
    with pytest.raises(InvalidReading) as err2:
        check_effluent({"cod": -3.0}, "一级A", built=NEW)
    assert err2.value.factor == "cod"
