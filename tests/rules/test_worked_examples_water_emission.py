"""Worked examples a reviewer can check by hand against standards.md §3, §4, §5 and §7.

Each test is one case; the comment shows the table values used and the arithmetic.
Water: GB 3838-2002 表1 (standards.md §3.1) and 环办〔2011〕22号 (§3.2).
Emissions: GB 13271-2014 式(1) and limits (§5), HJ 212-2017 附录D/表8/表C.16 (§4.6, §4.11),
GB 18918-2002 表1 (§7.1), Laixi plan 003_021375295357aa36.txt#L114.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from rules.emission import (
    LAIXI_WWTP_STRICTER,
    HourlyAverage,
    HourlyResult,
    MinuteRule,
    PermitLimit,
    Verdict,
    WindowStatus,
    check_effluent,
    check_permit,
    o2_corrected,
)
from rules.evaluate import Point, Sample, SourceContext, step
from rules.water import (
    Trend,
    classify,
    compare_upstream,
    compliance,
)

BJ = ZoneInfo("Asia/Shanghai")
H8 = datetime(2026, 7, 1, 8, 0, tzinfo=BJ)

# ------------------------------------------------------------------------------------ water


def test_w01_clean_river_section_is_class_ii_excellent() -> None:
    # DO 8.1 ≥ 7.5 → I; CODMn 3.2: 2 < 3.2 ≤ 4 → II; NH3-N 0.32: 0.15 < 0.32 ≤ 0.5 → II;
    # TP 0.08 (river): 0.02 < 0.08 ≤ 0.1 → II; pH 7.6 in 6–9.  Worst = II → 优, no main pollutants.
    r = classify({"ph": 7.6, "do": 8.1, "codmn": 3.2, "nh3n": 0.32, "tp": 0.08})
    assert (r.grade, r.label, r.grade_name, r.main_pollutants) == (2, "II", "优", ())


def test_w02_same_tp_in_a_lake_is_class_iv() -> None:
    # Lake TP column: 0.05 < 0.08 ≤ 0.1 → IV. Multiple vs III (0.05): (0.08 − 0.05)/0.05 = 0.6.
    r = classify({"ph": 7.6, "do": 8.1, "codmn": 3.2, "nh3n": 0.32, "tp": 0.08}, lake=True)
    assert (r.label, r.grade_name, r.main_pollutants) == ("IV", "轻度污染", ("tp",))
    assert r.multiples["tp"] == pytest.approx(0.6)


def test_w03_cod_on_the_class_iii_limit_and_just_over() -> None:
    # COD III limit 20: 20 → III; 20.5 → IV (≤ 30), multiple (20.5 − 20)/20 = 0.025.
    assert classify({"cod": 20.0}).label == "III"
    over = classify({"cod": 20.5})
    assert over.label == "IV"
    assert over.multiples["cod"] == pytest.approx(0.025)


def test_w04_mercury_tiny_limits() -> None:
    # Hg III 0.0001: 0.0001 → III; 0.00011 → IV (≤ 0.001), multiple (0.00011 − 0.0001)/0.0001 = 0.1.
    assert classify({"hg": 0.0001}).label == "III"
    r = classify({"hg": 0.00011})
    assert r.label == "IV"
    assert r.multiples["hg"] == pytest.approx(0.1)


def test_w05_fluoride_over_class_v_is_worse_than_v() -> None:
    # Fluoride V 1.5: 1.6 > 1.5 → 劣V; multiple vs III (1.0): (1.6 − 1.0)/1.0 = 0.6.
    r = classify({"ph": 7.0, "fluoride": 1.6})
    assert (r.grade, r.label, r.grade_name_en) == (6, "劣V", "heavily polluted")
    assert r.multiples["fluoride"] == pytest.approx(0.6)


def test_w06_low_oxygen_first_without_multiple() -> None:
    # DO 1.5 < 2 (V) → 劣V, no multiple. COD 25: 20 < 25 ≤ 30 → IV, multiple 0.25.
    # Order by class: DO (劣V) before COD (IV).
    r = classify({"ph": 7.0, "do": 1.5, "cod": 25.0})
    assert r.main_pollutants == ("do", "cod")
    assert r.multiples == {"do": None, "cod": pytest.approx(0.25)}
    assert r.describe() == "劣V类（重度污染），主要污染指标：溶解氧、化学需氧量(0.25)"


def test_w07_cyanide_takes_priority_over_a_larger_multiple() -> None:
    # Cyanide 0.25 > 0.2 (V) → 劣V, multiple (0.25 − 0.2)/0.2 = 0.25.
    # NH3-N 2.6 > 2.0 → 劣V, multiple (2.6 − 1.0)/1.0 = 1.6. Same class, NH3-N's multiple is
    # larger, but 22号 puts cyanide and heavy metals first.
    r = classify({"ph": 7.0, "cyanide": 0.25, "nh3n": 2.6})
    assert r.main_pollutants == ("cyanide", "nh3n")


def test_w08_only_the_three_worst_of_four() -> None:
    # All class V; multiples vs III: CODMn 11 → (11−6)/6 = 0.833; BOD5 7 → (7−4)/4 = 0.75;
    # COD 32 → (32−20)/20 = 0.6; TP 0.31 → (0.31−0.2)/0.2 = 0.55 (fourth, dropped).
    r = classify({"ph": 7.0, "codmn": 11.0, "cod": 32.0, "bod5": 7.0, "tp": 0.31})
    assert r.label == "V"
    assert r.main_pollutants == ("codmn", "bod5", "cod")


def test_w09_compliance_one_class_worse_than_target_iii() -> None:
    # NH3-N 1.4: 1.0 < 1.4 ≤ 1.5 → IV. Target III: fails by 1 class, multiple (1.4 − 1.0)/1.0 = 0.4.
    verdict = compliance(classify({"ph": 7.2, "nh3n": 1.4}), "III")
    assert (verdict.meets, verdict.classes_worse) == (False, 1)
    assert verdict.exceeding[0].multiple == pytest.approx(0.4)


def test_w10_compliance_multiple_is_against_the_target_limit() -> None:
    # COD 18: 15 < 18 ≤ 20 → III. Target II (COD 15): multiple (18 − 15)/15 = 0.2.
    verdict = compliance(classify({"cod": 18.0}), 2)
    assert (verdict.exceeding[0].limit, verdict.exceeding[0].multiple) == (15, pytest.approx(0.2))
    # Same section against target IV meets it.
    assert compliance(classify({"cod": 18.0}), "IV").meets


def test_w11_downstream_three_classes_worse_than_upstream() -> None:
    # Upstream COD 19 → III. Downstream COD 41 > 40 → 劣V (6). 6 − 3 = 3 classes worse.
    cmp = compare_upstream(classify({"cod": 41.0}), classify({"cod": 19.0}))
    assert (cmp.classes_worse, cmp.trend, cmp.worsened) == (3, Trend.WORSE, ("cod",))


# ------------------------------------------------------------------------------- emissions


def test_e01_coal_boiler_so2_corrected_then_checked() -> None:
    # Coal boiler, reference O2 9 % (GB 13271-2014 表6). Measured SO2 180 at O2 11 %:
    # 180 × (21 − 9)/(21 − 11) = 180 × 12/10 = 216. 特别排放限值 coal SO2 200 (standards.md §5):
    # exceeded, multiple (216 − 200)/200 = 0.08.
    c = o2_corrected(180.0, o2_measured=11.0, o2_reference=9.0)
    assert c == pytest.approx(216.0)
    check = check_permit(PermitLimit("DA001", "so2", upper=200.0), c)
    assert (check.verdict, check.multiple) == (Verdict.EXCEEDED, pytest.approx(0.08))


def test_e02_gas_boiler_nox() -> None:
    # Gas boiler, reference 3.5 %. NOx 120 at O2 8.5 %: 120 × 17.5/12.5 = 168.
    # Special limit gas NOx 150: multiple (168 − 150)/150 = 0.12.
    c = o2_corrected(120.0, o2_measured=8.5, o2_reference=3.5)
    assert c == pytest.approx(168.0)
    assert check_permit(PermitLimit("DA002", "nox", upper=150.0), c).multiple == pytest.approx(0.12)


def _hour_from(
    values_flags: list[tuple[float, str]], rule: MinuteRule = MinuteRule.FLUE_GAS
) -> HourlyResult:
    agg = HourlyAverage(rule=rule)
    state = agg.initialise("so2", H8)
    for minute, (value, flag) in enumerate(values_flags):
        state = agg.add(state, at=H8 + timedelta(minutes=minute), value=value, flag=flag)
    return agg.result(state)


def test_e03_hourly_mean_ignores_maintenance_minutes() -> None:
    # 30 minutes at 20 and 20 minutes at 35 (N), 10 minutes at 999 flagged M (maintenance).
    # Valid minutes 50 ≥ 45; mean (30×20 + 20×35)/50 = (600 + 700)/50 = 26.
    hour = _hour_from([(20.0, "N")] * 30 + [(35.0, "N")] * 20 + [(999.0, "M")] * 10)
    assert (hour.valid_minutes, hour.mean) == (50, 26.0)
    assert dict(hour.invalid_counts) == {"M": 10}


def test_e04_45_versus_44_valid_minutes() -> None:
    # 45 N at 12 + 15 C (calibration) → valid, mean 12.
    ok = _hour_from([(12.0, "N")] * 45 + [(0.0, "C")] * 15)
    assert (ok.status, ok.mean) == (WindowStatus.VALID, 12.0)
    # 44 N at 300 + 16 C → not a valid hour: no mean, and no exceedance of a 200 limit either.
    short = _hour_from([(300.0, "N")] * 44 + [(0.0, "C")] * 16)
    assert (short.status, short.mean) == (WindowStatus.INSUFFICIENT, None)
    # live (rules.evaluate.step): the same minutes against a permit limit of 200 give no hourly
    # mean, hence no verdict and no exceedance for the hour
    ctx = SourceContext(limits={"so2": PermitLimit("DA001", "so2", upper=200.0)})
    minutes = [(300.0, "N")] * 44 + [(0.0, "C")] * 16 + [(0.0, "N")]  # + 09:00–09:01 closes it
    state = None
    points: list[Point] = []
    for m, so2 in enumerate(minutes):  # minute samples are labelled by their end
        sample = Sample(
            "emission", "weifang", "DA001", H8 + timedelta(minutes=m + 1), "min", {"so2": so2}
        )
        state, out = step(state, sample, ctx)
        points += out
    hour = [p for p in points if p.time == H8 + timedelta(hours=1) and p.measurement != "reading"]
    assert [p.measurement for p in hour] == ["emission_hour"]
    fields = hour[0].fields
    assert (fields["valid_minutes_so2"], fields["flag_C"]) == (44, 16)
    assert "so2" not in fields


def test_e05_realtime_every_30_s_half_faulty_minutes() -> None:
    # 60 minutes × 2 real-time values (every 30 s). In 20 minutes one value of the two is D:
    # 1/2 = 50 % < 75 % → those minutes are invalid (flue gas). Valid minutes 40 < 45 → no mean.
    agg = HourlyAverage(rule=MinuteRule.FLUE_GAS)
    state = agg.initialise("so2", H8)
    for minute in range(60):
        at = H8 + timedelta(minutes=minute)
        state = agg.add(state, at=at, value=10.0, flag="N")
        state = agg.add(
            state, at=at + timedelta(seconds=30), value=10.0, flag="D" if minute < 20 else "N"
        )
    hour = agg.result(state)
    assert (hour.readings, hour.valid_minutes, hour.mean) == (120, 40, None)
    assert dict(hour.invalid_counts) == {"D": 20}


def test_e06_daily_mean_from_22_valid_hours() -> None:
    # 11 hours at 30 and 11 at 40 (valid), 2 invalid: (11×30 + 11×40)/22 = 770/22 = 35.
    # Live (rules.evaluate.step): hourly samples labelled 01:00 … 24:00 of 2026-07-01; the two
    # invalid hours are flagged C at 999; the hour labelled 24:00 completes the day.
    day = datetime(2026, 7, 1, 0, 0, tzinfo=BJ)
    state = None
    points: list[Point] = []
    for h in range(24):
        so2 = ((30.0 if h < 11 else 40.0), "N") if h < 22 else (999.0, "C")
        sample = Sample(
            "emission", "weifang", "DA001", day + timedelta(hours=h + 1), "hour", {"so2": so2}
        )
        state, out = step(state, sample, SourceContext())
        points += out
    [result] = [p for p in points if p.measurement == "emission_day"]
    assert result.time == day + timedelta(days=1)  # labelled by the day's end
    assert (result.fields["valid_hours_so2"], result.fields["so2"]) == (22, 35.0)


def test_e07_wwtp_tp_old_versus_new_plant() -> None:
    # TP 1.2 against 一级B: built 1998 (before 2005-12-31) limit 1.5 → within;
    # built 2008 (from 2006-01-01) limit 1.0 → exceeded, multiple (1.2 − 1.0)/1.0 = 0.2.
    old = check_effluent({"tp": 1.2}, "一级B", built=date(1998, 5, 1))
    new = check_effluent({"tp": 1.2}, "一级B", built=date(2008, 5, 1))
    assert old.items["tp"].verdict is Verdict.WITHIN
    assert (new.items["tp"].verdict, new.items["tp"].multiple) == (
        Verdict.EXCEEDED,
        pytest.approx(0.2),
    )


def test_e08_wwtp_nh3n_winter_versus_summer() -> None:
    # NH3-N 7 against 一级A: at 8 ℃ (≤ 12) the bracket limit 8 → within;
    # at 20 ℃ limit 5 → exceeded, multiple (7 − 5)/5 = 0.4.
    winter = check_effluent({"nh3n": 7.0, "temp": 8.0}, "一级A", built=date(2010, 1, 1))
    summer = check_effluent({"nh3n": 7.0, "temp": 20.0}, "一级A", built=date(2010, 1, 1))
    assert winter.items["nh3n"].verdict is Verdict.WITHIN
    assert summer.items["nh3n"].multiple == pytest.approx(0.4)


def test_e09_laixi_stricter_cod() -> None:
    # Laixi 一级A（加严）COD ≤ 40 (003_021375295357aa36.txt#L114): COD 42 exceeds,
    # multiple (42 − 40)/40 = 0.05, although GB 18918 一级A (50) is met. NH3-N 1.5 ≤ 2 complies.
    check = check_effluent(
        {"cod": 42.0, "nh3n": 1.5, "temp": 16.0},
        "一级A",
        built=date(2012, 1, 1),
        local=LAIXI_WWTP_STRICTER,
    )
    assert [i.factor for i in check.exceeded] == ["cod"]
    assert check.items["cod"].multiple == pytest.approx(0.05)
    assert check.achieved is not None
    assert check.achieved.value == "一级A"
