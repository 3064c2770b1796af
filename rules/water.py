"""Surface-water quality classes: GB 3838-2002 表1 and the section evaluation of 环办〔2011〕22号.

Sources (standards.md §3):

* GB 3838-2002《地表水环境质量标准》表1 基本项目标准限值 — the limits below, item numbers as in
  the table [STD].
* 《地表水环境质量评价办法（试行）》(环办〔2011〕22号) — evaluation items (表1 minus 水温、总氮、
  粪大肠菌群 = 21 items), single-factor method (单因子评价法), qualitative grade (水质定性评价分级,
  its 表1 and 表2), main pollutants (主要污染指标, §3(1)), rivers with ≥ 5 sections by the
  proportion method (断面水质类别比例法), fewer sections and lakes/reservoirs by the arithmetic
  mean of each item, then single-factor [2+].

Conventions (written down in docs/water-and-emissions.md):

* A value equal to a limit belongs to that class ("≤" items, "≥" for DO). Comparisons allow a
  relative tolerance of 1e-9 so that a mean such as (0.2 + 0.2 + 0.2) / 3 = 0.20000000000000004
  stays class III for river TP; this is far below any reporting precision.
* pH 6–9 is the same for every class: inside → class I (pH does not limit the class), outside → 劣V.
* DO class I is "饱和率90%（或7.5）": the 7.5 mg/L alternative is used (saturation needs the
  water temperature and pressure, which the automatic stations do not normalise).
* 超标倍数 (exceedance multiple) = (C − L) / L against class III for main pollutants (against the
  target class in :func:`compliance`); none for pH and DO (22号 §3(1): 水温、pH值和溶解氧等项目不
  计算超标倍数).

Everything here is pure: values in, frozen results out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Final

from rules.errors import InvalidReading, UnknownFactor
from rules.factors import WATER

#: Relative tolerance for "value equals the limit" (see module docstring).
REL_TOL: Final = 1e-9

#: Section grade for 劣V类 (worse than class V).
WORSE_THAN_V: Final = 6

#: Class labels by grade; ASCII Roman numerals (contract of issue 3).
LABELS: Final[dict[int, str]] = {1: "I", 2: "II", 3: "III", 4: "IV", 5: "V", 6: "劣V"}
_LABEL_TO_GRADE: Final[dict[str, int]] = {
    **{label: grade for grade, label in LABELS.items()},
    # Unicode Roman numerals as printed in the standards and plans.
    "Ⅰ": 1,
    "Ⅱ": 2,
    "Ⅲ": 3,
    "Ⅳ": 4,
    "Ⅴ": 5,
    "劣Ⅴ": 6,
}


class Comparison(Enum):
    """How a value is compared with its limits."""

    AT_MOST = "<="  # concentration ≤ limit
    AT_LEAST = ">="  # dissolved oxygen ≥ limit
    RANGE = "range"  # pH 6–9 for every class


@dataclass(frozen=True, slots=True)
class ItemStandard:
    """One row of GB 3838-2002 表1: the limits for classes I…V of one item."""

    factor: str
    name_zh: str
    name_en: str
    limits: tuple[float, float, float, float, float]
    comparison: Comparison
    clause: str

    def limit(self, grade: int) -> float:
        """The limit of class ``grade`` (1…5)."""
        return self.limits[grade - 1]


def _row(
    factor: str,
    name_zh: str,
    name_en: str,
    number: int,
    limits: tuple[float, float, float, float, float],
    comparison: Comparison = Comparison.AT_MOST,
    note: str = "",
) -> ItemStandard:
    return ItemStandard(
        factor, name_zh, name_en, limits, comparison, f"GB 3838-2002 表1 第{number}项{note}"
    )


# GB 3838-2002 表1 基本项目标准限值 (mg/L unless noted) — standards.md §3.1 [STD].
_PH: Final = _row("ph", "pH值", "pH", 2, (6, 6, 6, 6, 6), Comparison.RANGE)
PH_RANGE: Final[tuple[float, float]] = (6.0, 9.0)  # GB 3838-2002 表1 第2项: 6～9 (无量纲)

RIVER_ITEMS: Final[tuple[ItemStandard, ...]] = (
    _PH,
    _row(
        "do",
        "溶解氧",
        "dissolved oxygen",
        3,
        (7.5, 6, 5, 3, 2),
        Comparison.AT_LEAST,
        " (I类: 饱和率90%或7.5)",
    ),
    _row("codmn", "高锰酸盐指数", "permanganate index", 4, (2, 4, 6, 10, 15)),
    _row("cod", "化学需氧量", "COD", 5, (15, 15, 20, 30, 40)),
    _row("bod5", "五日生化需氧量", "BOD5", 6, (3, 3, 4, 6, 10)),
    _row("nh3n", "氨氮", "ammonia nitrogen", 7, (0.15, 0.5, 1.0, 1.5, 2.0)),
    _row("tp", "总磷", "total phosphorus", 8, (0.02, 0.1, 0.2, 0.3, 0.4), note=" (河流)"),
    _row("cu", "铜", "copper", 10, (0.01, 1.0, 1.0, 1.0, 1.0)),
    _row("zn", "锌", "zinc", 11, (0.05, 1.0, 1.0, 2.0, 2.0)),
    _row("fluoride", "氟化物", "fluoride", 12, (1.0, 1.0, 1.0, 1.5, 1.5)),
    _row("se", "硒", "selenium", 13, (0.01, 0.01, 0.01, 0.02, 0.02)),
    _row("as", "砷", "arsenic", 14, (0.05, 0.05, 0.05, 0.1, 0.1)),
    _row("hg", "汞", "mercury", 15, (0.00005, 0.00005, 0.0001, 0.001, 0.001)),
    _row("cd", "镉", "cadmium", 16, (0.001, 0.005, 0.005, 0.005, 0.01)),
    _row("cr6", "铬（六价）", "chromium (VI)", 17, (0.01, 0.05, 0.05, 0.05, 0.1)),
    _row("pb", "铅", "lead", 18, (0.01, 0.01, 0.05, 0.05, 0.1)),
    _row("cyanide", "氰化物", "cyanide", 19, (0.005, 0.05, 0.2, 0.2, 0.2)),
    _row("phenol", "挥发酚", "volatile phenol", 20, (0.002, 0.002, 0.005, 0.01, 0.1)),
    _row("oil", "石油类", "petroleum", 21, (0.05, 0.05, 0.05, 0.5, 1.0)),
    _row("las", "阴离子表面活性剂", "anionic surfactant (LAS)", 22, (0.2, 0.2, 0.2, 0.3, 0.3)),
    _row("sulfide", "硫化物", "sulfide", 23, (0.05, 0.1, 0.2, 0.5, 1.0)),
)

#: Lake/reservoir TP column of GB 3838-2002 表1 第8项 (湖、库).
LAKE_TP: Final = _row(
    "tp", "总磷", "total phosphorus", 8, (0.01, 0.025, 0.05, 0.1, 0.2), note=" (湖、库)"
)
LAKE_ITEMS: Final[tuple[ItemStandard, ...]] = tuple(
    LAKE_TP if item.factor == "tp" else item for item in RIVER_ITEMS
)

#: Items reported alongside but not used for the section class (环办〔2011〕22号):
#: TN (第9项, lakes/reservoirs only) and fecal coliform (第24项, 个/L).
TN: Final = _row("tn", "总氮", "total nitrogen", 9, (0.2, 0.5, 1.0, 1.5, 2.0), note=" (湖、库)")
FECAL_COLIFORM: Final = _row(
    "fecal_coliform", "粪大肠菌群", "fecal coliform", 24, (200, 2000, 10000, 20000, 40000)
)

#: The 21 evaluation items (参评指标) of 环办〔2011〕22号, in GB 3838 表1 order.
EVALUATION_ITEMS: Final[tuple[str, ...]] = tuple(item.factor for item in RIVER_ITEMS)

#: Items put first among main pollutants when they exceed class III (22号 §3(1): 当氰化物或铅、铬
#: 等重金属超标时，优先作为主要污染指标). "等重金属" is read as the metals of 表1 (Cu, Zn, Hg, Cd,
#: Cr(VI), Pb) plus As, which Chinese practice counts among the heavy metals; Se is not included.
PRIORITY_POLLUTANTS: Final[frozenset[str]] = frozenset(
    {"cyanide", "pb", "cr6", "hg", "cd", "cu", "zn", "as"}
)

#: At most this many main pollutants (22号 §3(1): 前三项).
MAX_MAIN_POLLUTANTS: Final = 3

_BY_FACTOR_RIVER: Final[dict[str, ItemStandard]] = {i.factor: i for i in RIVER_ITEMS}
_BY_FACTOR_LAKE: Final[dict[str, ItemStandard]] = {i.factor: i for i in LAKE_ITEMS}
_ORDER: Final[dict[str, int]] = {f: n for n, f in enumerate(EVALUATION_ITEMS)}


def item_standard(factor: str, *, lake: bool = False) -> ItemStandard | None:
    """The GB 3838-2002 表1 row of an evaluation item (the lake TP column with ``lake``); TN's
    row (第9项) too; None for other factors."""
    if factor == "tn":
        return TN
    return (_BY_FACTOR_LAKE if lake else _BY_FACTOR_RIVER).get(factor)


class WaterQuality(StrEnum):
    """水质状况: the qualitative grade (环办〔2011〕22号 表1 for sections, 表2 for rivers)."""

    EXCELLENT = "优"
    GOOD = "良好"
    SLIGHTLY_POLLUTED = "轻度污染"
    MODERATELY_POLLUTED = "中度污染"
    HEAVILY_POLLUTED = "重度污染"

    @property
    def english(self) -> str:
        return _QUALITY_EN[self]


_QUALITY_EN: Final[dict[WaterQuality, str]] = {
    WaterQuality.EXCELLENT: "excellent",
    WaterQuality.GOOD: "good",
    WaterQuality.SLIGHTLY_POLLUTED: "slightly polluted",
    WaterQuality.MODERATELY_POLLUTED: "moderately polluted",
    WaterQuality.HEAVILY_POLLUTED: "heavily polluted",
}

# 环办〔2011〕22号 表1: I–II 优, III 良好, IV 轻度污染, V 中度污染, 劣V 重度污染.
_QUALITY_BY_GRADE: Final[dict[int, WaterQuality]] = {
    1: WaterQuality.EXCELLENT,
    2: WaterQuality.EXCELLENT,
    3: WaterQuality.GOOD,
    4: WaterQuality.SLIGHTLY_POLLUTED,
    5: WaterQuality.MODERATELY_POLLUTED,
    6: WaterQuality.HEAVILY_POLLUTED,
}


def quality_of(grade: int) -> WaterQuality:
    """The qualitative grade of a section class (1…5, 6 = 劣V)."""
    try:
        return _QUALITY_BY_GRADE[grade]
    except KeyError:
        raise InvalidReading("class must be 1…6", factor="grade", value=grade) from None


def parse_class(target: int | str) -> int:
    """A water class given as 1…5 or as "I"…"V" (ASCII or Ⅰ…Ⅴ) → 1…5.

    Raises:
        InvalidReading: ``factor="target_class"`` when it is not one of classes I…V.
    """
    grade = target if isinstance(target, int) else _LABEL_TO_GRADE.get(target.strip().upper())
    if isinstance(target, bool) or grade is None or not 1 <= grade <= 5:
        raise InvalidReading("target class must be I…V (1…5)", factor="target_class", value=target)
    return grade


# ---------------------------------------------------------------------------- per item


@dataclass(frozen=True, slots=True)
class ItemClass:
    """The class of one item at one section, with what a duty officer needs to read it."""

    factor: str
    value: float
    grade: int  # 1…5, 6 = 劣V
    standard: ItemStandard
    #: (C − III)/III when the item is worse than class III; None when not worse or when the
    #: item has no multiple (pH, DO).
    multiple: float | None

    @property
    def label(self) -> str:
        return LABELS[self.grade]

    @property
    def name_zh(self) -> str:
        return self.standard.name_zh

    @property
    def name_en(self) -> str:
        return self.standard.name_en


def _le(value: float, limit: float) -> bool:
    return value <= limit * (1 + REL_TOL)


def _ge(value: float, limit: float) -> bool:
    return value >= limit * (1 - REL_TOL)


def _thresholds(standard: ItemStandard) -> tuple[float, ...]:
    """The bounds _le/_ge compare with (limit × (1 ± REL_TOL)), computed once per row."""
    if standard.comparison is Comparison.RANGE:
        low, high = PH_RANGE
        return (low * (1 - REL_TOL), high * (1 + REL_TOL))
    if standard.comparison is Comparison.AT_LEAST:
        return tuple(limit * (1 - REL_TOL) for limit in standard.limits)
    return tuple(limit * (1 + REL_TOL) for limit in standard.limits)


#: by id() of the module's rows (hashing a dataclass row per value would cost more than it saves)
_THRESHOLDS: Final[dict[int, tuple[float, ...]]] = {
    id(s): _thresholds(s) for s in (*RIVER_ITEMS, LAKE_TP, TN, FECAL_COLIFORM)
}


def _item_grade(value: float, standard: ItemStandard) -> int:
    bounds = _THRESHOLDS.get(id(standard)) or _thresholds(standard)
    comparison = standard.comparison
    if comparison is Comparison.RANGE:
        return 1 if bounds[0] <= value <= bounds[1] else WORSE_THAN_V
    if comparison is Comparison.AT_LEAST:  # _ge of each class limit, best class first
        for grade, bound in enumerate(bounds, start=1):
            if value >= bound:
                return grade
        return WORSE_THAN_V
    for grade, bound in enumerate(bounds, start=1):  # _le
        if value <= bound:
            return grade
    return WORSE_THAN_V


def multiple_over(value: float, limit: float) -> float:
    """超标倍数 (C − L)/L, the share by which ``value`` exceeds ``limit``."""
    return (value - limit) / limit


def _check_value(factor: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidReading("not a number", factor=factor, value=value)
    number = float(value)
    if not math.isfinite(number):
        raise InvalidReading("not a finite number", factor=factor, value=value)
    if number < 0:
        raise InvalidReading("negative concentration", factor=factor, value=value)
    if factor == "ph" and number > 14:
        raise InvalidReading("pH above 14", factor=factor, value=value)
    return number


def classify_item(factor: str, value: float, *, lake: bool = False) -> ItemClass:
    """The GB 3838-2002 class of one item.

    ``factor`` is one of the 21 evaluation items, or ``tn`` / ``fecal_coliform`` (classed against
    their rows of 表1 for reference, never used for the section class).

    Raises:
        UnknownFactor: when GB 3838 表1 has no class limits for ``factor``.
        InvalidReading: a negative, non-finite or non-numeric value, or pH above 14.
    """
    table = _BY_FACTOR_LAKE if lake else _BY_FACTOR_RIVER
    standard = table.get(factor) or {"tn": TN, "fecal_coliform": FECAL_COLIFORM}.get(factor)
    if standard is None:
        raise UnknownFactor(factor)
    if type(value) is float and 0.0 <= value < math.inf and (value <= 14.0 or factor != "ph"):
        number = value  # fast path: what _check_value returns for a valid float
    else:
        number = _check_value(factor, value)
    grade = _item_grade(number, standard)
    multiple = None
    if grade > 3 and standard.comparison is Comparison.AT_MOST:
        multiple = multiple_over(number, standard.limit(3))
    return ItemClass(factor, number, grade, standard, multiple)


# ---------------------------------------------------------------------------- per section


@dataclass(frozen=True, slots=True)
class WaterClass:
    """A section's class by the single-factor method (单因子评价法), 环办〔2011〕22号."""

    grade: int  # 1…5, 6 = 劣V
    lake: bool
    #: Classes of the evaluation items present, in GB 3838 表1 order.
    items: Mapping[str, ItemClass]
    #: Up to three 主要污染指标, only when the section is worse than class III.
    main_pollutants: tuple[str, ...]
    #: Evaluation items that were not in the sample (their absence cannot worsen the class).
    missing: tuple[str, ...]
    #: TN (lakes/reservoirs) and fecal coliform, classed but not counted (22号).
    supplementary: Mapping[str, ItemClass] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """ "I"…"V" or "劣V"."""
        return LABELS[self.grade]

    @property
    def quality(self) -> WaterQuality:
        return quality_of(self.grade)

    @property
    def grade_name(self) -> str:
        """水质状况 in Chinese (优/良好/轻度污染/中度污染/重度污染)."""
        return self.quality.value

    @property
    def grade_name_en(self) -> str:
        return self.quality.english

    @property
    def multiples(self) -> Mapping[str, float | None]:
        """超标倍数 vs class III of each main pollutant (None for pH and DO)."""
        return {f: self.items[f].multiple for f in self.main_pollutants}

    def describe(self, *, lang: str = "zh") -> str:
        """One line for people, e.g. ``IV类（轻度污染），主要污染指标：化学需氧量(0.25)``."""
        if lang == "zh":
            text = f"{self.label}类（{self.grade_name}）"
            if self.main_pollutants:
                text += "，主要污染指标：" + "、".join(
                    _with_multiple(self.items[f].name_zh, self.items[f].multiple)
                    for f in self.main_pollutants
                )
            return text
        text = f"class {self.label} ({self.grade_name_en})"
        if self.main_pollutants:
            text += ", main pollutants: " + ", ".join(
                _with_multiple(self.items[f].name_en, self.items[f].multiple)
                for f in self.main_pollutants
            )
        return text


def _with_multiple(name: str, multiple: float | None) -> str:
    return name if multiple is None else f"{name}({multiple:.2f})"


def _main_pollutants(items: Iterable[ItemClass]) -> tuple[str, ...]:
    worse = [item for item in items if item.grade > 3]

    def rank(item: ItemClass) -> tuple[int, int, float, int]:
        # 22号 §3(1): cyanide and heavy metals first, then the worse class, then the larger
        # multiple; items without a multiple (pH, DO) after those with one; then 表1 order.
        return (
            0 if item.factor in PRIORITY_POLLUTANTS else 1,
            -item.grade,
            -(item.multiple if item.multiple is not None else -math.inf),
            _ORDER[item.factor],
        )

    return tuple(item.factor for item in sorted(worse, key=rank)[:MAX_MAIN_POLLUTANTS])


def classify(values: Mapping[str, float | None], *, lake: bool = False) -> WaterClass:
    """Classify one section sample by the single-factor method over the 21 evaluation items.

    ``values`` maps factor names of ``rules.factors.WATER`` to mg/L (pH unitless, fecal coliform
    个/L). ``None`` means "not measured". Water temperature, conductivity, turbidity and
    chlorophyll-a are accepted and ignored (no class in GB 3838 表1); TN and fecal coliform are
    classed in ``supplementary`` (TN for lakes/reservoirs only) but do not set the class.

    Raises:
        UnknownFactor: a name outside ``rules.factors.WATER``.
        InvalidReading: a bad value (negative, not finite, pH > 14), or no evaluation item at all.
    """
    for factor in values:
        if factor not in WATER:
            raise UnknownFactor(factor)
    items: dict[str, ItemClass] = {}
    missing: list[str] = []
    for factor in EVALUATION_ITEMS:
        value = values.get(factor)
        if value is None:
            missing.append(factor)
        else:
            items[factor] = classify_item(factor, value, lake=lake)
    if not items:
        raise InvalidReading(
            "no GB 3838 evaluation item in the sample", factor="values", value=sorted(values)
        )
    supplementary: dict[str, ItemClass] = {}
    for factor in ("tn", "fecal_coliform") if lake else ("fecal_coliform",):
        value = values.get(factor)
        if value is not None:
            supplementary[factor] = classify_item(factor, value, lake=lake)
    grade = max(item.grade for item in items.values())
    main = _main_pollutants(items.values()) if grade > 3 else ()
    return WaterClass(grade, lake, items, main, tuple(missing), supplementary)


# ---------------------------------------------------------------------------- compliance


class ComplianceStatus(StrEnum):
    """Whether a section meets its target class (描述用"符合"/"劣于")."""

    MEETS = "meets"  # 符合
    FAILS = "fails"  # 劣于


@dataclass(frozen=True, slots=True)
class TargetExceedance:
    """One item worse than the target class, with its multiple over the target limit."""

    factor: str
    value: float
    grade: int
    limit: float
    #: (C − L)/L over the target class limit; None for pH and DO (no multiple).
    multiple: float | None


@dataclass(frozen=True, slots=True)
class Compliance:
    """A section's class against its target class (GB 3838-2002 §5.1: 超标项目和超标倍数)."""

    status: ComplianceStatus
    target: int
    grade: int
    #: How many classes worse than the target (0 when it meets it).
    classes_worse: int
    #: Items worse than the target class, worst first (class, then multiple).
    exceeding: tuple[TargetExceedance, ...]

    @property
    def meets(self) -> bool:
        return self.status is ComplianceStatus.MEETS


def compliance(result: WaterClass, target_class: int | str) -> Compliance:
    """Compare a classified section with its target class (I…V, as 1…5 or "III").

    Raises:
        InvalidReading: ``factor="target_class"`` when the target is not I…V.
    """
    target = parse_class(target_class)
    exceeding: list[TargetExceedance] = []
    for item in result.items.values():
        if item.grade <= target:
            continue
        if item.standard.comparison is Comparison.RANGE:
            # pH: the bound it fell outside of (6 below, 9 above).
            limit = PH_RANGE[0] if item.value < PH_RANGE[0] else PH_RANGE[1]
        else:
            limit = item.standard.limit(target)
        multiple = (
            multiple_over(item.value, limit)
            if item.standard.comparison is Comparison.AT_MOST
            else None
        )
        exceeding.append(TargetExceedance(item.factor, item.value, item.grade, limit, multiple))
    exceeding.sort(
        key=lambda e: (
            -e.grade,
            -(e.multiple if e.multiple is not None else -math.inf),
            _ORDER[e.factor],
        )
    )
    worse = max(0, result.grade - target)
    status = ComplianceStatus.MEETS if worse == 0 else ComplianceStatus.FAILS
    return Compliance(status, target, result.grade, worse, tuple(exceeding))


class Trend(StrEnum):
    """A section compared with its upstream neighbour."""

    WORSE = "worse"
    SAME = "same"
    BETTER = "better"


@dataclass(frozen=True, slots=True)
class UpstreamComparison:
    """How a section compares with the section upstream of it (上下游断面)."""

    #: section grade − upstream grade: > 0 worse downstream, < 0 better.
    classes_worse: int
    trend: Trend
    #: Items present at both whose class is worse at this section than upstream, 表1 order.
    worsened: tuple[str, ...]


def compare_upstream(section: WaterClass, upstream: WaterClass) -> UpstreamComparison:
    """How many classes worse ``section`` is than its upstream neighbour, and which items worsened."""
    delta = section.grade - upstream.grade
    trend = Trend.WORSE if delta > 0 else Trend.BETTER if delta < 0 else Trend.SAME
    worsened = tuple(
        f
        for f, item in section.items.items()
        if f in upstream.items and item.grade > upstream.items[f].grade
    )
    return UpstreamComparison(delta, trend, worsened)
