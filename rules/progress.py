"""Plan progress (pure): year-to-date statistics compared with each locality's 2025 targets.

Inputs are DAILY values computed elsewhere (the city's daily PM2.5 mean and daily AQI, with the
HJ 633 edition each day's AQI used) — this module computes no AQI. Water progress takes each
section's current class (1–5, 6 = 劣V); dustfall takes monthly locality means.

Validity (GB 3095-2012 表4 and GB 3095-2026 表4, identical; standards.md §2.2): an annual mean
needs ≥ 324 daily means per year and ≥ 27 per month (February ≥ 25). Year-to-date figures are
always shown; a completed month below its minimum, or a year that can no longer reach 324 days,
is reported with the result.

Good days: daily AQI ≤ 100 (HJ 633 levels 优 + 良, standards.md §2.5). Heavy-pollution days:
daily AQI > 200 (HJ 633 表1/表2: 重度污染 201–300, 严重污染 > 300). The 2012 and 2026 editions
give different AQIs for the same concentrations (HJ 633-2026 表3 moved the PM breakpoints), so
the good-day series are counted per edition and reported apart; the ratio compared with the
target is over all valid days, each judged with the edition in force that day.

Projection to year end: persistence — the year-to-date value is the projected annual value
(counts are scaled to the whole year) — plus, for PM2.5, the mean the rest of the year must
keep to meet the target. Status: on_track when the projection meets the target, at_risk when it
misses by no more than ``margin`` (relative; 5 % by default — an envwatch policy default, not a
standard), off_track otherwise; no_target when the target is a word without an override;
no_data when nothing is known yet.

Pass time in: every function takes ``as_of`` (the last day that counts); no clock here.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from rules.catalog import (
    ControlLevel,
    EffectiveTarget,
    Indicator,
    Locality,
    Metric,
    WaterSection,
)
from rules.errors import RulesError

#: GB 3095-2012 表4 / GB 3095-2026 表4: daily means needed for an annual mean.
MIN_DAYS_PER_YEAR = 324
MIN_DAYS_PER_MONTH = 27
MIN_DAYS_FEBRUARY = 25
#: HJ 633-2012 表2 / HJ 633-2026 表1: 良 ends at AQI 100; 重度污染 starts above 200.
GOOD_AQI_MAX = 100
HEAVY_AQI_ABOVE = 200
#: Worse than class V (劣V) as a class number (GB 3838-2002 classes I–V are 1–5).
WORSE_THAN_V = 6
#: envwatch policy default: a projection missing its target by ≤ 5 % (relative) is at_risk.
DEFAULT_MARGIN = 0.05


class ProgressInputError(RulesError):
    """Bad input to a progress calculation; names the day (or item), the field and the reason."""

    def __init__(self, where: str, field_name: str, reason: str) -> None:
        self.where = where
        self.field = field_name
        self.reason = reason
        super().__init__(f"{where}: {field_name}: {reason}")


class Status(StrEnum):
    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    OFF_TRACK = "off_track"
    NO_TARGET = "no_target"
    NO_DATA = "no_data"


class Direction(StrEnum):
    LOWER_IS_BETTER = "lower"
    HIGHER_IS_BETTER = "higher"


#: What "better" means for each metric.
DIRECTION: dict[Metric, Direction] = {
    Metric.PM25_ANNUAL_MEAN: Direction.LOWER_IS_BETTER,
    Metric.GOOD_DAY_RATIO: Direction.HIGHER_IS_BETTER,
    Metric.GOOD_DAY_COUNT: Direction.HIGHER_IS_BETTER,
    Metric.SECTIONS_AT_LEAST_III: Direction.HIGHER_IS_BETTER,
    Metric.SECTIONS_WORSE_THAN_V: Direction.LOWER_IS_BETTER,
    Metric.SECTION_COMPLIANCE: Direction.HIGHER_IS_BETTER,
    Metric.HEAVY_POLLUTION_DAYS: Direction.LOWER_IS_BETTER,
    Metric.DUSTFALL_MONTHLY_MEAN: Direction.LOWER_IS_BETTER,
}

_LABEL = {  # (zh, en, unit)
    Metric.PM25_ANNUAL_MEAN: ("PM2.5年均浓度", "PM2.5 mean", "µg/m³"),
    Metric.GOOD_DAY_RATIO: ("优良天数比率", "good-day ratio", "%"),
    Metric.GOOD_DAY_COUNT: ("优良天数", "good days", "d"),
    Metric.SECTIONS_AT_LEAST_III: ("Ⅲ类及以上断面比例", "sections at class I–III", "%"),
    Metric.SECTIONS_WORSE_THAN_V: ("劣Ⅴ类断面比例", "sections worse than V", "%"),
    Metric.SECTION_COMPLIANCE: ("断面水质达标率", "section compliance", "%"),
    Metric.HEAVY_POLLUTION_DAYS: ("重污染天数", "heavy-pollution days", "d"),
    Metric.DUSTFALL_MONTHLY_MEAN: ("月均降尘量", "monthly dustfall", "t/(month·km²)"),
}
_STATUS_TEXT = {
    Status.ON_TRACK: ("达标进度正常", "on track"),
    Status.AT_RISK: ("存在风险", "at risk"),
    Status.OFF_TRACK: ("进度滞后", "off track"),
    Status.NO_TARGET: ("无量化目标", "no numeric target"),
    Status.NO_DATA: ("暂无数据", "no data yet"),
}
_ORIGIN_TEXT = {
    "table": ("规划表", "table"),
    "text": ("规划正文", "plan text"),
    "override": ("人工录入", "override"),
}


def min_days_in_month(year: int, month: int) -> int:
    """GB 3095 表4: 27 daily values per month, 25 in February."""
    return MIN_DAYS_FEBRUARY if month == 2 else MIN_DAYS_PER_MONTH


# --------------------------------------------------------------------------- air


@dataclass(frozen=True, slots=True)
class DailyAir:
    """One natural day (Asia/Shanghai) of a locality: city daily PM2.5 mean and daily AQI.

    ``None`` means no valid value that day. ``edition`` is the HJ 633 edition the AQI was
    computed with ("2012" or "2026").
    """

    day: date
    pm25: float | None
    aqi: int | None
    edition: str | None = None


@dataclass(frozen=True, slots=True)
class AirYearToDate:
    year: int
    as_of: date
    days_elapsed: int
    days_in_year: int
    pm25_days: int
    pm25_mean: float | None
    pm25_sum: float
    aqi_days: int
    good_days: int
    heavy_days: int
    months_short: tuple[int, ...]  # completed months below the GB 3095 表4 minimum
    year_still_valid: bool  # can the year still reach 324 valid PM2.5 days?
    editions: Mapping[str, tuple[int, int]]  # edition → (good days, valid AQI days)

    @property
    def good_ratio(self) -> float | None:
        return 100.0 * self.good_days / self.aqi_days if self.aqi_days else None

    @property
    def days_remaining(self) -> int:
        return self.days_in_year - self.days_elapsed


class AirYear:
    """Year-to-date accumulator: ``AirYear(year)``, ``add(day)`` …, ``result(as_of)``."""

    def __init__(self, year: int) -> None:
        self.year = year
        self._days: dict[date, DailyAir] = {}

    def add(self, d: DailyAir) -> None:
        where = d.day.isoformat()
        if d.day.year != self.year:
            raise ProgressInputError(where, "day", f"outside year {self.year}")
        if d.day in self._days:
            raise ProgressInputError(where, "day", "given twice")
        if d.pm25 is not None and (not math.isfinite(d.pm25) or d.pm25 < 0):
            raise ProgressInputError(where, "pm25", f"must be a finite number ≥ 0, got {d.pm25!r}")
        if d.aqi is not None and (isinstance(d.aqi, bool) or d.aqi < 0):
            raise ProgressInputError(where, "aqi", f"must be an integer ≥ 0, got {d.aqi!r}")
        if d.aqi is not None and d.edition not in {"2012", "2026"}:
            raise ProgressInputError(
                where, "edition", f"HJ 633 edition '2012' or '2026', got {d.edition!r}"
            )
        self._days[d.day] = d

    def extend(self, days: Iterable[DailyAir]) -> AirYear:
        for d in days:
            self.add(d)
        return self

    def result(self, as_of: date) -> AirYearToDate:
        start = date(self.year, 1, 1)
        end = min(as_of, date(self.year, 12, 31))
        days_in_year = 366 if calendar.isleap(self.year) else 365
        elapsed = max(0, (end - start).days + 1) if end >= start else 0
        counted = [d for day, d in self._days.items() if day <= end]
        pm = [d.pm25 for d in counted if d.pm25 is not None]
        aqi = [d for d in counted if d.aqi is not None]
        per_month = [0] * 13
        for d in counted:
            if d.pm25 is not None:
                per_month[d.day.month] += 1
        completed = [
            m
            for m in range(1, 13)
            if date(self.year, m, calendar.monthrange(self.year, m)[1]) <= end
        ]
        short = tuple(m for m in completed if per_month[m] < min_days_in_month(self.year, m))
        editions: dict[str, tuple[int, int]] = {}
        for d in aqi:
            assert d.aqi is not None
            assert d.edition is not None
            good, valid = editions.get(d.edition, (0, 0))
            editions[d.edition] = (good + (d.aqi <= GOOD_AQI_MAX), valid + 1)
        return AirYearToDate(
            year=self.year,
            as_of=end,
            days_elapsed=elapsed,
            days_in_year=days_in_year,
            pm25_days=len(pm),
            pm25_mean=sum(pm) / len(pm) if pm else None,
            pm25_sum=sum(pm),
            aqi_days=len(aqi),
            good_days=sum(1 for d in aqi if d.aqi is not None and d.aqi <= GOOD_AQI_MAX),
            heavy_days=sum(1 for d in aqi if d.aqi is not None and d.aqi > HEAVY_AQI_ABOVE),
            months_short=short,
            year_still_valid=len(pm) + (days_in_year - elapsed) >= MIN_DAYS_PER_YEAR,
            editions=dict(sorted(editions.items())),
        )


# --------------------------------------------------------------------------- water


@dataclass(frozen=True, slots=True)
class WaterShares:
    counted: int  # sections in scope with a known class
    at_least_iii: int
    worse_than_v: int
    with_target: int  # of the counted, those with a target class
    compliant: int

    def share(self, n: int, of: int) -> float | None:
        return 100.0 * n / of if of else None


def water_shares(
    sections: Sequence[WaterSection],
    classes: Mapping[str, int | None],
    scope: ControlLevel | None = None,
) -> WaterShares:
    """Count sections in ``scope`` (that control level and above; all when None) by class.

    ``classes`` maps section id → current class 1–6 (6 = 劣V) or None when unknown.
    """
    counted = at3 = worse = with_target = compliant = 0
    for s in sections:
        if scope is not None and (s.control is None or not s.control.at_least(scope)):
            continue
        c = classes.get(s.id)
        if c is None:
            continue
        if isinstance(c, bool) or not 1 <= c <= WORSE_THAN_V:
            raise ProgressInputError(s.id, "class", f"water class 1–6 (6 = 劣V), got {c!r}")
        counted += 1
        at3 += c <= 3
        worse += c == WORSE_THAN_V
        if s.target_class is not None:
            with_target += 1
            compliant += c <= s.target_class
    return WaterShares(counted, at3, worse, with_target, compliant)


# --------------------------------------------------------------------------- progress


@dataclass(frozen=True, slots=True)
class TargetProgress:
    locality: str
    indicator: str  # name as printed
    no: int | None
    metric: Metric
    unit: str
    baseline: float | None
    target: EffectiveTarget | None
    target_printed: str  # the 2025 cell (or prose quote) as printed
    value: float | None  # year-to-date / current
    projection: float | None  # projected to year end
    status: Status
    explanation_zh: str
    explanation_en: str
    details: Mapping[str, object] = field(default_factory=dict)


def judge(
    projection: float | None,
    target: EffectiveTarget | None,
    direction: Direction,
    margin: float = DEFAULT_MARGIN,
) -> Status:
    """Compare a projection with a target (see the module docstring for the rule)."""
    if target is None:
        return Status.NO_TARGET
    if projection is None:
        return Status.NO_DATA
    t = target.value
    lower = direction is Direction.LOWER_IS_BETTER
    if target.comparator == "≥":
        lower = False
    elif target.comparator == "≤":
        lower = True
    if lower:
        if projection <= t:
            return Status.ON_TRACK
        return Status.AT_RISK if projection <= t * (1 + margin) else Status.OFF_TRACK
    if projection >= t:
        return Status.ON_TRACK
    return Status.AT_RISK if projection >= t * (1 - margin) else Status.OFF_TRACK


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f}"


def _target_text(t: EffectiveTarget | None, direction: Direction) -> tuple[str, str]:
    if t is None:
        return "无", "none"
    cmp = (
        t.comparator
        if t.comparator != "="
        else ("≤" if direction is Direction.LOWER_IS_BETTER else "≥")
    )
    zh, en = _ORIGIN_TEXT[t.origin.value]
    return f"{cmp}{t.value:g}（{zh}）", f"{cmp} {t.value:g} ({en})"


def _progress(
    locality: Locality,
    ind: Indicator,
    metric: Metric,
    value: float | None,
    projection: float | None,
    details: dict[str, object],
    margin: float,
    extra_zh: str = "",
    extra_en: str = "",
) -> TargetProgress:
    direction = DIRECTION[metric]
    target = ind.effective_target()
    status = judge(projection, target, direction, margin)
    if target is not None and value is None:
        status = Status.NO_DATA
    zh_label, en_label, unit = _LABEL[metric]
    tzh, ten = _target_text(target, direction)
    szh, sen = _STATUS_TEXT[status]
    zh = f"{zh_label}：当前{_fmt(value)}{unit}，预计全年{_fmt(projection)}，目标{tzh}：{szh}{extra_zh}"
    en = f"{en_label}: {_fmt(value)} {unit} so far, projected {_fmt(projection)}, target {ten}: {sen}{extra_en}"
    return TargetProgress(
        locality=locality.id,
        indicator=ind.name,
        no=ind.no,
        metric=metric,
        unit=unit,
        baseline=ind.baseline_value(),
        target=target,
        target_printed=ind.target_2025,
        value=value,
        projection=projection,
        status=status,
        explanation_zh=zh,
        explanation_en=en,
        details=details,
    )


def locality_progress(
    locality: Locality,
    *,
    air: AirYearToDate | None = None,
    sections: Sequence[WaterSection] = (),
    water_classes: Mapping[str, int | None] | None = None,
    dustfall_months: Mapping[int, float] | None = None,
    margin: float = DEFAULT_MARGIN,
) -> tuple[TargetProgress, ...]:
    """Progress of every target of ``locality`` that has a metric envwatch can compute.

    ``dustfall_months`` maps month (1–12) → the locality's mean dustfall that month.
    """
    out: list[TargetProgress] = []
    for ind in locality.targets():
        if ind.metric is None:
            continue
        m = Metric(ind.metric)
        details: dict[str, object] = {}
        value = projection = None
        zh = en = ""
        if (
            m
            in {
                Metric.PM25_ANNUAL_MEAN,
                Metric.GOOD_DAY_RATIO,
                Metric.GOOD_DAY_COUNT,
                Metric.HEAVY_POLLUTION_DAYS,
            }
            and air is not None
        ):
            details = {
                "valid_pm25_days": air.pm25_days,
                "valid_aqi_days": air.aqi_days,
                "days_elapsed": air.days_elapsed,
                "months_short": list(air.months_short),
                "year_still_valid": air.year_still_valid,
                "editions": {k: {"good": g, "valid": v} for k, (g, v) in air.editions.items()},
            }
            if m is Metric.PM25_ANNUAL_MEAN:
                value = projection = air.pm25_mean
                target = ind.effective_target()
                if target is not None and air.pm25_days and air.days_remaining:
                    # mean the rest of the year must keep: (T·(n + r) − Σ) / r, r = days left
                    n, r = air.pm25_days, air.days_remaining
                    need = (target.value * (n + r) - air.pm25_sum) / r
                    details["required_rest_of_year"] = need
                    zh, en = (
                        f"；余下{r}天均值需≤{need:.1f}",
                        f"; the remaining {r} days must average ≤ {need:.1f}",
                    )
            elif m is Metric.GOOD_DAY_RATIO:
                value = projection = air.good_ratio
            elif m is Metric.GOOD_DAY_COUNT:
                value = float(air.good_days)
                projection = (
                    air.good_days / air.aqi_days * air.days_in_year if air.aqi_days else None
                )
            else:
                value = float(air.heavy_days)
                projection = (
                    air.heavy_days * air.days_in_year / air.days_elapsed
                    if air.days_elapsed
                    else None
                )
            if len(air.editions) > 1:
                parts = ", ".join(f"HJ 633-{k}: {v} d" for k, (_, v) in air.editions.items())
                zh += f"；分版本统计（{parts}）"
                en += f"; editions kept apart ({parts})"
            if air.months_short:
                short = ",".join(str(x) for x in air.months_short)
                zh += f"；{short}月有效天数不足（GB 3095 表4）"
                en += f"; months {short} below the GB 3095 表4 minimum"
            if not air.year_still_valid:
                zh += "；全年已无法达到324个有效日"
                en += "; the year can no longer reach 324 valid days"
        elif (
            m
            in {
                Metric.SECTIONS_AT_LEAST_III,
                Metric.SECTIONS_WORSE_THAN_V,
                Metric.SECTION_COMPLIANCE,
            }
            and water_classes is not None
        ):
            scope = ControlLevel(ind.section_scope) if ind.section_scope is not None else None
            shares = water_shares(sections, water_classes, scope)
            details = {"sections": shares.counted, "scope": scope.value if scope else "all"}
            if m is Metric.SECTIONS_AT_LEAST_III:
                value = shares.share(shares.at_least_iii, shares.counted)
            elif m is Metric.SECTIONS_WORSE_THAN_V:
                value = shares.share(shares.worse_than_v, shares.counted)
            else:
                value = shares.share(shares.compliant, shares.with_target)
            projection = value  # no seasonal model: the current state is the projection
            zh, en = f"；计入{shares.counted}个断面", f"; {shares.counted} sections counted"
        elif m is Metric.DUSTFALL_MONTHLY_MEAN and dustfall_months:
            for month, v in dustfall_months.items():
                if not 1 <= month <= 12 or not math.isfinite(v) or v < 0:
                    raise ProgressInputError(
                        f"month {month}", "dustfall", f"month 1–12 and value ≥ 0, got {v!r}"
                    )
            months = dict(sorted(dustfall_months.items()))
            value = sum(months.values()) / len(months)
            worst_month = max(months, key=lambda k: months[k])
            projection = months[worst_month]  # a standing monthly limit: the worst month decides
            details = {"months": months, "worst_month": worst_month}
            zh = f"；最高为{worst_month}月{months[worst_month]:.1f}"
            en = f"; worst month {worst_month}: {months[worst_month]:.1f}"
        out.append(_progress(locality, ind, m, value, projection, details, margin, zh, en))
    return tuple(out)


__all__ = [
    "DEFAULT_MARGIN",
    "DIRECTION",
    "GOOD_AQI_MAX",
    "HEAVY_AQI_ABOVE",
    "MIN_DAYS_PER_YEAR",
    "AirYear",
    "AirYearToDate",
    "DailyAir",
    "Direction",
    "ProgressInputError",
    "Status",
    "TargetProgress",
    "WaterShares",
    "judge",
    "locality_progress",
    "min_days_in_month",
    "water_shares",
]
