"""Plan progress on synthetic years; every expected value is computed by hand in a comment."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from rules.catalog import Catalog, EffectiveTarget, Metric, Override, TargetOrigin, load_catalog
from rules.progress import (
    AirYear,
    DailyAir,
    Direction,
    ProgressInputError,
    Status,
    TargetProgress,
    judge,
    locality_progress,
)

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "config"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(CONFIG)


def _days(start: date, n: int) -> list[date]:
    return [start + timedelta(days=i) for i in range(n)]


def _by_metric(rows: tuple[TargetProgress, ...], metric: Metric) -> TargetProgress:
    found = [r for r in rows if r.metric == metric]
    assert len(found) == 1, found
    return found[0]


def test_pm25_january_at_risk_against_weifang_40(catalog: Catalog) -> None:
    # 20 days at 30 and 11 days at 60: Σ = 600 + 660 = 1260, mean = 1260 / 31 = 40.645…
    days = _days(date(2025, 1, 1), 31)
    air = AirYear(2025).extend(
        DailyAir(d, 30.0 if i < 20 else 60.0, 50, "2012") for i, d in enumerate(days)
    )
    ytd = air.result(date(2025, 1, 31))
    rows = locality_progress(catalog.locality("weifang"), air=ytd)
    pm = _by_metric(rows, Metric.PM25_ANNUAL_MEAN)
    assert pm.value == pytest.approx(1260 / 31)
    # target 40 (001…#L162); 40 < 40.645 ≤ 40 × 1.05 = 42 → at_risk
    assert pm.status is Status.AT_RISK
    # rest of year: r = 365 − 31 = 334; (40 × (31 + 334) − 1260) / 334 = 13340 / 334 = 39.94
    assert pm.details["required_rest_of_year"] == pytest.approx(13340 / 334)
    assert "39.9" in pm.explanation_en
    assert "存在风险" in pm.explanation_zh
    assert pm.baseline == 49  # 2020 value, 001…#L162


def test_invalid_days_are_left_out_and_short_months_reported(catalog: Catalog) -> None:
    # January 2025: 26 valid days at 35 and 5 days without a value → mean 35, January short
    # (GB 3095 表4: ≥ 27 per month). February: 25 valid days (the February minimum) → not short.
    jan = [
        DailyAir(d, 35.0 if i < 26 else None, None)
        for i, d in enumerate(_days(date(2025, 1, 1), 31))
    ]
    feb = [
        DailyAir(d, 20.0 if i < 25 else None, None)
        for i, d in enumerate(_days(date(2025, 2, 1), 28))
    ]
    ytd = AirYear(2025).extend(jan + feb).result(date(2025, 2, 28))
    # mean = (26 × 35 + 25 × 20) / 51 = (910 + 500) / 51 = 27.647…
    assert ytd.pm25_days == 51
    assert ytd.pm25_mean == pytest.approx(1410 / 51)
    assert ytd.months_short == (1,)
    pm = _by_metric(
        locality_progress(catalog.locality("weifang"), air=ytd), Metric.PM25_ANNUAL_MEAN
    )
    assert "months 1 below" in pm.explanation_en


def test_february_with_24_days_is_short_and_march_not_yet_judged() -> None:
    feb = [
        DailyAir(d, 20.0 if i < 24 else None, None)
        for i, d in enumerate(_days(date(2025, 2, 1), 28))
    ]
    mar = [DailyAir(d, 20.0, None) for d in _days(date(2025, 3, 1), 10)]
    ytd = AirYear(2025).extend(feb + mar).result(date(2025, 3, 10))
    # January (no data at all) and February (24 < 25) are complete and short; March is running
    assert ytd.months_short == (1, 2)


def test_year_still_valid_boundary() -> None:
    # as of 2025-06-30: 181 days elapsed, 184 remain; 140 + 184 = 324 (still possible),
    # 139 + 184 = 323 (not any more)
    def valid_days(n: int) -> bool:
        days = _days(date(2025, 1, 1), 181)
        air = AirYear(2025).extend(
            DailyAir(d, 30.0 if i < n else None, None) for i, d in enumerate(days)
        )
        return air.result(date(2025, 6, 30)).year_still_valid

    assert valid_days(140) is True
    assert valid_days(139) is False


def test_leap_year_heavy_days_projection(catalog: Catalog) -> None:
    # 2024 is a leap year: 366 days; to 29 Feb 31 + 29 = 60 days elapsed.
    # 3 days with AQI > 200 (201, 250, 301) and one at exactly 200 (not heavy) → 3 heavy days;
    # projection 3 × 366 / 60 = 18.3
    days = _days(date(2024, 1, 1), 60)
    aqis = [201, 250, 301, 200] + [80] * 56
    ytd = (
        AirYear(2024)
        .extend(DailyAir(d, 40.0, a, "2012") for d, a in zip(days, aqis, strict=True))
        .result(date(2024, 2, 29))
    )
    assert (ytd.days_in_year, ytd.days_elapsed, ytd.heavy_days) == (366, 60, 3)
    heavy = _by_metric(
        locality_progress(catalog.locality("weifang"), air=ytd), Metric.HEAVY_POLLUTION_DAYS
    )
    assert heavy.projection == pytest.approx(18.3)
    assert heavy.status is Status.NO_TARGET  # the plan prints no number for it


def test_year_crossing_the_hj633_edition_switch(catalog: Catalog) -> None:
    # 2026: 1 Jan–28 Feb (59 days) with HJ 633-2012 AQIs, all 90 (good);
    # 1–31 Mar (31 days) with HJ 633-2026 AQIs: 21 at 80 (good), 10 at 120 (not good).
    # good = 59 + 21 = 80 of 90 valid days → 88.89 %; Weifang target 74.3 (001…#L163) → on_track
    early = [DailyAir(d, 30.0, 90, "2012") for d in _days(date(2026, 1, 1), 59)]
    late = [
        DailyAir(d, 30.0, 80 if i < 21 else 120, "2026")
        for i, d in enumerate(_days(date(2026, 3, 1), 31))
    ]
    ytd = AirYear(2026).extend(early + late).result(date(2026, 3, 31))
    assert dict(ytd.editions) == {"2012": (59, 59), "2026": (21, 31)}
    good = _by_metric(
        locality_progress(catalog.locality("weifang"), air=ytd), Metric.GOOD_DAY_RATIO
    )
    assert good.value == pytest.approx(80 / 90 * 100)
    assert good.status is Status.ON_TRACK
    assert "HJ 633-2012: 59 d" in good.explanation_en
    assert "HJ 633-2026: 31 d" in good.explanation_en


def test_laixi_good_days_use_the_text_target_85(catalog: Catalog) -> None:
    # 31 January days: 25 good (AQI 60), 6 not (AQI 130) → 25 / 31 = 80.6 %;
    # text target ≥ 85 (003…#L107); 85 × 0.95 = 80.75 > 80.6 → off_track
    days = _days(date(2025, 1, 1), 31)
    ytd = (
        AirYear(2025)
        .extend(DailyAir(d, 30.0, 60 if i < 25 else 130, "2012") for i, d in enumerate(days))
        .result(date(2025, 1, 31))
    )
    good = _by_metric(locality_progress(catalog.locality("laixi"), air=ytd), Metric.GOOD_DAY_RATIO)
    assert good.target is not None
    assert (good.target.value, good.target.origin) == (85, TargetOrigin.TEXT)
    assert good.value == pytest.approx(2500 / 31)
    assert good.status is Status.OFF_TRACK


def test_laixi_water_shares_and_compliance(catalog: Catalog) -> None:
    laixi = catalog.locality("laixi")
    classes = {
        "ws-lx-zaochao": 3,  # target III → compliant
        "ws-lx-jiangjiazhuang": 4,  # target III → not
        "ws-lx-jingzhuang": 6,  # 劣V, target IV → not
        "ws-lx-jiaoshuzhuang": 4,  # target IV → compliant
        "ws-lx-liujiadu": 3,  # target III → compliant
        "ws-lx-nianzhitou": 5,  # no target
        "ws-lx-cuoyang": 4,  # no target
        "ws-lx-chanzhi": 2,  # no target
        "ws-lx-town-01": 4,  # target IV → compliant
    }
    rows = locality_progress(laixi, sections=catalog.sections_of("laixi"), water_classes=classes)
    # ≥ III: 早朝, 刘家都桥, 产芝水库 = 3 of 9 = 33.3 %; prose target ≥ 65 (L107) → off_track
    at3 = _by_metric(rows, Metric.SECTIONS_AT_LEAST_III)
    assert at3.value == pytest.approx(100 * 3 / 9)
    assert at3.status is Status.OFF_TRACK
    # 劣V: 1 of 9 = 11.1 %; 全面消除 read as 0 (override) → off_track
    worse = _by_metric(rows, Metric.SECTIONS_WORSE_THAN_V)
    assert worse.value == pytest.approx(100 / 9)
    assert worse.status is Status.OFF_TRACK
    # compliance: 4 of the 6 with a target = 66.7 %; target 71.4 (L154); 71.4 × 0.95 = 67.83 → off
    comp = _by_metric(rows, Metric.SECTION_COMPLIANCE)
    assert comp.value == pytest.approx(100 * 4 / 6)
    assert comp.status is Status.OFF_TRACK


def test_section_scope_counts_only_that_level_and_above(catalog: Catalog) -> None:
    # Weifang row 3 counts 省控及以上 (001…#L164): ws-wf-01 (省控, II) and ws-wf-02 (省控, IV);
    # ws-wf-03 (市控, I) is left out → 1 of 2 = 50 % ≥ 35 → on_track
    classes = {"ws-wf-01": 2, "ws-wf-02": 4, "ws-wf-03": 1}
    rows = locality_progress(
        catalog.locality("weifang"), sections=catalog.sections_of("weifang"), water_classes=classes
    )
    at3 = _by_metric(rows, Metric.SECTIONS_AT_LEAST_III)
    assert at3.value == 50
    assert at3.status is Status.ON_TRACK
    assert at3.details["sections"] == 2


@pytest.mark.parametrize(
    ("months", "mean", "status"),
    [
        # worst month 7.4 > 7 × 1.05 = 7.35 → off_track; mean (6.5 + 7.4 + 5.0) / 3 = 6.3
        ({1: 6.5, 2: 7.4, 3: 5.0}, 6.3, Status.OFF_TRACK),
        # worst 7.2: 7 < 7.2 ≤ 7.35 → at_risk; mean (6.0 + 7.2) / 2 = 6.6
        ({1: 6.0, 2: 7.2}, 6.6, Status.AT_RISK),
        ({1: 6.0, 2: 7.0}, 6.5, Status.ON_TRACK),
    ],
)
def test_dustfall_against_seven(
    catalog: Catalog, months: dict[int, float], mean: float, status: Status
) -> None:
    rows = locality_progress(catalog.locality("liaocheng-etdz"), dustfall_months=months)
    dust = _by_metric(rows, Metric.DUSTFALL_MONTHLY_MEAN)
    assert dust.value == pytest.approx(mean)
    assert dust.status is status


def test_word_target_gives_no_target_until_an_override(catalog: Catalog) -> None:
    zhifu = catalog.locality("zhifu")
    ytd = (
        AirYear(2025)
        .extend(DailyAir(d, 33.0, 50, "2012") for d in _days(date(2025, 1, 1), 10))
        .result(date(2025, 1, 10))
    )
    pm = _by_metric(locality_progress(zhifu, air=ytd), Metric.PM25_ANNUAL_MEAN)
    assert pm.status is Status.NO_TARGET  # 完成市分解任务 ² (004…#L170)
    assert pm.target_printed == "完成市分解任务 ²"
    # an operator enters the Yantai allocation, say 30: 33 > 30 × 1.05 = 31.5 → off_track
    row = zhifu.indicators[0].model_copy(
        update={"override": Override(value=30, provenance="test allocation"), "progress_uses": None}
    )
    patched = zhifu.model_copy(update={"indicators": (row, *zhifu.indicators[1:])})
    pm = _by_metric(locality_progress(patched, air=ytd), Metric.PM25_ANNUAL_MEAN)
    assert pm.status is Status.OFF_TRACK
    assert pm.target is not None
    assert pm.target.origin is TargetOrigin.OVERRIDE


def test_no_data_when_nothing_is_known(catalog: Catalog) -> None:
    ytd = AirYear(2025).result(date(2025, 1, 10))
    pm = _by_metric(
        locality_progress(catalog.locality("weifang"), air=ytd), Metric.PM25_ANNUAL_MEAN
    )
    assert pm.status is Status.NO_DATA


@pytest.mark.parametrize(
    ("projection", "status"),
    [
        (40.0, Status.ON_TRACK),
        (42.0, Status.AT_RISK),
        (42.1, Status.OFF_TRACK),
        (None, Status.NO_DATA),
    ],
)
def test_judge_lower_is_better(projection: float | None, status: Status) -> None:
    # target 40, margin 5 %: at_risk up to 40 × 1.05 = 42
    target = EffectiveTarget(40, "=", TargetOrigin.TABLE, "40")
    assert judge(projection, target, Direction.LOWER_IS_BETTER) is status


@pytest.mark.parametrize(
    ("day", "field", "reason"),
    [
        (DailyAir(date(2025, 1, 1), -1.0, None), "pm25", "≥ 0"),
        (DailyAir(date(2025, 1, 1), float("nan"), None), "pm25", "finite"),
        (DailyAir(date(2025, 1, 1), 30.0, 50, None), "edition", "2012"),
        (DailyAir(date(2024, 12, 31), 30.0, None), "day", "outside year"),
    ],
)
def test_bad_daily_input_names_day_field_and_reason(day: DailyAir, field: str, reason: str) -> None:
    with pytest.raises(ProgressInputError) as info:
        AirYear(2025).add(day)
    assert info.value.field == field
    assert reason in info.value.reason
    assert day.day.isoformat() in str(info.value)


def test_duplicate_day_is_refused() -> None:
    air = AirYear(2025)
    air.add(DailyAir(date(2025, 1, 1), 30.0, None))
    with pytest.raises(ProgressInputError, match="given twice"):
        air.add(DailyAir(date(2025, 1, 1), 31.0, None))
