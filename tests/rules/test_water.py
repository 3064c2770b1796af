"""GB 3838-2002 surface-water classes and the 环办〔2011〕22号 section evaluation (rules.water).

The limits below are copied by hand from GB 3838-2002 表1 (standards.md §3.1), independently of
rules/water.py, so a typo in either shows up as a failing test.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.errors import InvalidReading, UnknownFactor
from rules.water import (
    ComplianceStatus,
    Trend,
    classify,
    classify_item,
    compare_upstream,
    compliance,
)

# GB 3838-2002 表1, classes I…V ("≤" items), mg/L; fecal coliform 个/L.
LE_TABLE: dict[str, tuple[float, float, float, float, float]] = {
    "codmn": (2, 4, 6, 10, 15),  # 第4项
    "cod": (15, 15, 20, 30, 40),  # 第5项
    "bod5": (3, 3, 4, 6, 10),  # 第6项
    "nh3n": (0.15, 0.5, 1.0, 1.5, 2.0),  # 第7项
    "tp": (0.02, 0.1, 0.2, 0.3, 0.4),  # 第8项 河流
    "cu": (0.01, 1.0, 1.0, 1.0, 1.0),  # 第10项
    "zn": (0.05, 1.0, 1.0, 2.0, 2.0),  # 第11项
    "fluoride": (1.0, 1.0, 1.0, 1.5, 1.5),  # 第12项
    "se": (0.01, 0.01, 0.01, 0.02, 0.02),  # 第13项
    "as": (0.05, 0.05, 0.05, 0.1, 0.1),  # 第14项
    "hg": (0.00005, 0.00005, 0.0001, 0.001, 0.001),  # 第15项
    "cd": (0.001, 0.005, 0.005, 0.005, 0.01),  # 第16项
    "cr6": (0.01, 0.05, 0.05, 0.05, 0.1),  # 第17项
    "pb": (0.01, 0.01, 0.05, 0.05, 0.1),  # 第18项
    "cyanide": (0.005, 0.05, 0.2, 0.2, 0.2),  # 第19项
    "phenol": (0.002, 0.002, 0.005, 0.01, 0.1),  # 第20项
    "oil": (0.05, 0.05, 0.05, 0.5, 1.0),  # 第21项
    "las": (0.2, 0.2, 0.2, 0.3, 0.3),  # 第22项
    "sulfide": (0.05, 0.1, 0.2, 0.5, 1.0),  # 第23项
}
LAKE_TP = (0.01, 0.025, 0.05, 0.1, 0.2)  # 第8项 湖、库
LAKE_TN = (0.2, 0.5, 1.0, 1.5, 2.0)  # 第9项 湖、库
FECAL = (200, 2000, 10000, 20000, 40000)  # 第24项
DO = (7.5, 6, 5, 3, 2)  # 第3项, "≥"; class I 饱和率90% 或 7.5


def _le_cases(
    table: Mapping[str, tuple[float, ...]],
) -> list[tuple[str, float, int]]:
    """(factor, value, expected class) at each limit, 0.1 % above and 0.1 % below it.

    Expected class for a "≤" item: the first class whose limit is ≥ the value (equal limits of
    several classes give the best of them), 6 (劣V) when above class V.
    """
    cases = []
    for factor, limits in table.items():
        for limit in sorted(set(limits)):
            at = limits.index(limit) + 1  # first class with this limit
            above = next((k + 1 for k, lim in enumerate(limits) if lim > limit), 6)
            cases += [
                (factor, limit, at),
                (factor, limit * 1.001, above),
                (factor, limit * 0.999, at),
            ]
    return cases


@pytest.mark.parametrize(("factor", "value", "expected"), _le_cases(LE_TABLE))
def test_river_item_at_just_above_and_below_each_limit(
    factor: str, value: float, expected: int
) -> None:
    assert classify_item(factor, value).grade == expected


@pytest.mark.parametrize(("factor", "value", "expected"), _le_cases({"tp": LAKE_TP}))
def test_lake_tp_column(factor: str, value: float, expected: int) -> None:
    assert classify_item(factor, value, lake=True).grade == expected


@pytest.mark.parametrize(("factor", "value", "expected"), _le_cases({"tn": LAKE_TN}))
def test_lake_tn_column(factor: str, value: float, expected: int) -> None:
    assert classify_item(factor, value, lake=True).grade == expected


@pytest.mark.parametrize(("factor", "value", "expected"), _le_cases({"fecal_coliform": FECAL}))
def test_fecal_coliform_row(factor: str, value: float, expected: int) -> None:
    assert classify_item(factor, value).grade == expected


def test_river_and_lake_tp_differ_for_the_same_value() -> None:
    # 0.08 mg/L: river ≤ 0.1 → II; lake 0.05 < 0.08 ≤ 0.1 → IV.
    assert classify_item("tp", 0.08).grade == 2
    assert classify_item("tp", 0.08, lake=True).grade == 4
    # Whole-sample: same TP decides the section class.
    assert classify({"ph": 7.5, "tp": 0.08}).label == "II"
    assert classify({"ph": 7.5, "tp": 0.08}, lake=True).label == "IV"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (7.5, 1),  # = I limit (≥ 7.5)
        (7.51, 1),
        (7.49, 2),
        (6.0, 2),
        (5.99, 3),
        (5.0, 3),
        (4.99, 4),
        (3.0, 4),
        (2.99, 5),
        (2.0, 5),
        (1.99, 6),  # below class V → 劣V
        (0.0, 6),
        (12.0, 1),  # supersaturated is still class I
    ],
)
def test_dissolved_oxygen_is_at_least(value: float, expected: int) -> None:
    assert classify_item("do", value).grade == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(6.0, 1), (9.0, 1), (7.2, 1), (5.99, 6), (9.01, 6), (0.0, 6), (14.0, 6)],
)
def test_ph_inside_6_to_9_does_not_limit_outside_is_worse_than_v(
    value: float, expected: int
) -> None:
    assert classify_item("ph", value).grade == expected


def test_ph_out_of_range_makes_the_section_worse_than_v_without_multiple() -> None:
    result = classify({"ph": 9.4, "do": 8.0, "cod": 10.0})
    assert (result.grade, result.label) == (6, "劣V")
    assert result.main_pollutants == ("ph",)
    assert result.items["ph"].multiple is None
    assert result.grade_name == "重度污染"


def test_section_class_is_the_worst_item_and_excluded_items_do_not_count() -> None:
    # TN 5.0 (far above any class), fecal coliform 100000, water temperature 30: all excluded
    # from the section class by 环办〔2011〕22号; the worst evaluation item is NH3-N 0.6 → III.
    result = classify(
        {
            "ph": 7.8,
            "do": 7.6,  # I
            "codmn": 3.0,  # II
            "nh3n": 0.6,  # III (0.5 < 0.6 ≤ 1.0)
            "tp": 0.05,  # II
            "tn": 5.0,
            "fecal_coliform": 100000,
            "temp": 30.0,
            "cond": 500.0,
            "turb": 12.0,
        }
    )
    assert (result.grade, result.label) == (3, "III")
    assert result.items["nh3n"].grade == 3  # the worst item: it sets the section's class
    assert result.main_pollutants == ()  # not worse than III → no main pollutants
    assert result.grade_name == "良好"
    assert result.grade_name_en == "good"
    assert "tn" not in result.items
    assert result.supplementary["fecal_coliform"].grade == 6  # 100000 > 40000
    assert "tn" not in result.supplementary  # TN is a lake/reservoir item only


def test_lake_reports_tn_separately() -> None:
    # TN 1.2: 1.0 < 1.2 ≤ 1.5 → IV, but the lake's class stays set by TP 0.04 (≤ 0.05 → III).
    result = classify({"ph": 8.0, "tp": 0.04, "tn": 1.2}, lake=True)
    assert result.label == "III"
    assert result.supplementary["tn"].grade == 4


def test_main_pollutants_by_class_then_multiple_and_at_most_three() -> None:
    # III limits: COD 20, NH3-N 1.0, TP 0.2, CODMn 6, BOD5 4.
    # COD 36 → 劣V? no: V ≤ 40 → V, multiple (36−20)/20 = 0.8
    # NH3-N 2.5 → 劣V (> 2.0), multiple (2.5−1.0)/1.0 = 1.5
    # TP 0.35 → V (0.3 < 0.35 ≤ 0.4), multiple (0.35−0.2)/0.2 = 0.75
    # CODMn 12 → V (10 < 12 ≤ 15), multiple (12−6)/6 = 1.0
    # BOD5 5 → IV, multiple (5−4)/4 = 0.25
    # Order: 劣V NH3-N; then class V by multiple: CODMn 1.0, COD 0.8 (TP 0.75 is fourth).
    result = classify(
        {"ph": 7.0, "cod": 36, "nh3n": 2.5, "tp": 0.35, "codmn": 12, "bod5": 5, "do": 6.5}
    )
    assert result.label == "劣V"
    assert result.main_pollutants == ("nh3n", "codmn", "cod")
    assert result.multiples["nh3n"] == pytest.approx(1.5)
    assert result.multiples["codmn"] == pytest.approx(1.0)
    assert result.multiples["cod"] == pytest.approx(0.8)
    assert (
        result.describe()
        == "劣V类（重度污染），主要污染指标：氨氮(1.50)、高锰酸盐指数(1.00)、化学需氧量(0.80)"
    )


def test_heavy_metal_or_cyanide_over_class_iii_comes_first() -> None:
    # 22号: 当氰化物或铅、铬等重金属超标时，优先作为主要污染指标.
    # Pb 0.07 → V (0.05 < 0.07 ≤ 0.1), multiple 0.4; COD 45 → 劣V (> 40), multiple 1.25.
    # Despite COD's worse class, lead is listed first.
    result = classify({"ph": 7.0, "cod": 45, "pb": 0.07})
    assert result.main_pollutants == ("pb", "cod")


def test_do_has_no_multiple_and_ranks_after_items_with_one_in_its_class() -> None:
    # DO 2.5 → V (≥ 2); COD 35 → V, multiple (35−20)/20 = 0.75.
    result = classify({"ph": 7.0, "do": 2.5, "cod": 35})
    assert result.main_pollutants == ("cod", "do")
    assert result.multiples == {"cod": pytest.approx(0.75), "do": None}
    assert result.describe(lang="en") == (
        "class V (moderately polluted), main pollutants: COD(0.75), dissolved oxygen"
    )


def test_missing_items_are_listed_not_guessed() -> None:
    result = classify({"ph": 7.0, "nh3n": None, "cod": 12})
    assert result.label == "I"  # pH in range → I; COD 12 ≤ 15 → I
    assert "nh3n" in result.missing
    assert "nh3n" not in result.items


@pytest.mark.parametrize(
    ("target", "status", "worse"),
    [
        (5, ComplianceStatus.MEETS, 0),
        ("IV", ComplianceStatus.MEETS, 0),
        ("Ⅲ", ComplianceStatus.FAILS, 1),
        (2, ComplianceStatus.FAILS, 2),
    ],
)
def test_compliance_against_target_class(
    target: int | str, status: ComplianceStatus, worse: int
) -> None:
    result = classify({"ph": 7.0, "cod": 25})  # 20 < 25 ≤ 30 → IV
    verdict = compliance(result, target)
    assert verdict.status is status
    assert verdict.classes_worse == worse


def test_compliance_names_exceeding_items_with_multiple_over_the_target_limit() -> None:
    # Target II. COD 25: II limit 15, multiple (25−15)/15 = 0.6667; DO 5.5 < 6: no multiple.
    # TP 0.08 ≤ 0.1 meets II and is not listed.
    verdict = compliance(classify({"ph": 7.0, "cod": 25, "do": 5.5, "tp": 0.08}), 2)
    assert [e.factor for e in verdict.exceeding] == ["cod", "do"]
    cod = verdict.exceeding[0]
    assert (cod.limit, cod.multiple) == (15, pytest.approx(10 / 15))
    assert verdict.exceeding[1].multiple is None
    assert not verdict.meets


def test_compliance_ph_limit_is_the_bound_it_crossed() -> None:
    low = compliance(classify({"ph": 5.5}), 3).exceeding[0]
    high = compliance(classify({"ph": 9.5}), 3).exceeding[0]
    assert (low.limit, high.limit) == (6.0, 9.0)


@pytest.mark.parametrize("target", [0, 6, "VI", "劣V", "x", True])
def test_compliance_rejects_a_target_outside_i_to_v(target: int | str) -> None:
    with pytest.raises(InvalidReading) as err:
        compliance(classify({"ph": 7.0}), target)
    assert err.value.factor == "target_class"


def test_upstream_comparison_counts_classes_and_names_worsened_items() -> None:
    upstream = classify({"ph": 7.0, "cod": 18, "nh3n": 0.4})  # COD III, NH3-N II → III
    section = classify({"ph": 7.0, "cod": 18, "nh3n": 1.8})  # NH3-N 1.5 < 1.8 ≤ 2.0 → V
    cmp = compare_upstream(section, upstream)
    assert (cmp.classes_worse, cmp.trend, cmp.worsened) == (2, Trend.WORSE, ("nh3n",))
    back = compare_upstream(upstream, section)
    assert (back.classes_worse, back.trend) == (-2, Trend.BETTER)
    assert compare_upstream(section, section).trend is Trend.SAME


@pytest.mark.parametrize(
    ("values", "factor"),
    [
        ({"cod": -1.0}, "cod"),
        ({"cod": math.nan}, "cod"),
        ({"cod": math.inf}, "cod"),
        ({"ph": 14.5}, "ph"),
        ({"cod": "12"}, "cod"),
    ],
)
def test_bad_values_raise_a_typed_error_naming_the_factor(
    values: dict[str, object], factor: str
) -> None:
    with pytest.raises(InvalidReading) as err:
        classify(values)  # type: ignore[arg-type]
    assert err.value.factor == factor


def test_unknown_factor_and_empty_sample() -> None:
    with pytest.raises(UnknownFactor) as err:
        classify({"ph": 7.0, "pm25": 30.0})
    assert err.value.factor == "pm25"
    with pytest.raises(InvalidReading):
        classify({"temp": 12.0, "cond": 300.0})  # no evaluation item at all


# ---------------------------------------------------------------- invariants

_AT_MOST = sorted(LE_TABLE)
_sample = st.fixed_dictionaries(
    {f: st.floats(min_value=0, max_value=50, allow_nan=False) for f in ("cod", "codmn", "nh3n")},
    optional={
        "tp": st.floats(min_value=0, max_value=1),
        "do": st.floats(min_value=0, max_value=15),
        "ph": st.floats(min_value=0, max_value=14),
        "pb": st.floats(min_value=0, max_value=0.5),
        "hg": st.floats(min_value=0, max_value=0.01),
    },
)


@given(
    values=_sample,
    factor=st.sampled_from(["cod", "codmn", "nh3n", "tp", "do", "ph", "pb", "hg"]),
    step=st.floats(min_value=0, max_value=100),
    lake=st.booleans(),
)
def test_a_class_never_improves_when_a_value_worsens(
    values: dict[str, float], factor: str, step: float, lake: bool
) -> None:
    before = classify(values, lake=lake)
    worse = dict(values)
    current = values.get(factor, 7.5 if factor == "ph" else 5.0 if factor == "do" else 0.0)
    if factor == "do":
        worse[factor] = max(0.0, current - step)  # less oxygen is worse
    elif factor == "ph":
        # further from neutral is worse: move away from 7.5, within 0…14
        away = current + step if current >= 7.5 else current - step
        worse[factor] = min(14.0, max(0.0, away))
    else:
        worse[factor] = current + step
    after = classify(worse, lake=lake)
    assert after.grade >= before.grade
    assert after.items[factor].grade >= before.items.get(factor, after.items[factor]).grade


@given(values=_sample, lake=st.booleans())
def test_section_class_is_the_worst_item_and_main_pollutants_are_worse_than_iii(
    values: dict[str, float], lake: bool
) -> None:
    result = classify(values, lake=lake)
    assert result.grade == max(item.grade for item in result.items.values())
    assert len(result.main_pollutants) <= 3
    assert all(result.items[f].grade > 3 for f in result.main_pollutants)
    assert bool(result.main_pollutants) == (result.grade > 3)
