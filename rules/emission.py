"""Emission rules: oxygen correction, validity-aware hourly/daily means, permit and effluent limits.

Sources (standards.md §4.6, §4.11, §5, §7.1, §8):

* Oxygen correction (折算): C折 = C实测 × (21 − O2基准) / (21 − O2实测), GB 13271-2014 式(1) and
  HJ 212-2017 附录D [STD]; concentration and O2 on the same (dry) basis.
* Reference O2: the catalogue's (``rules.catalog.Catalog.reference_o2``: the outlet's own value, else
  the default of its source type in ``defaults.yaml``, GB 13271-2014 表6 for boilers [STD], the
  other rows [MEM] operator defaults, standards.md §5); the caller passes it in.
* Hourly mean from minute/real-time values: ≥ 45 valid minute means (HJ 212-2017 附录D, quoting
  HJ/T 75-2007) [STD]; daily mean from ≥ 20 valid hourly means (same) [STD], which
  ``rules.evaluate`` computes from the hourly means it files per Beijing day. Data flags
  (HJ 212-2017 表8): N and S valid, F M D C T B invalid and counted by kind (rules.flags).
  Several real-time values in one minute: flue gas — the minute is valid when ≥ 75 % of its values
  are valid; wastewater — one invalid value makes the minute invalid (HJ 212-2017 表C.16 注) [STD].
* Permit exceedance: value > limit (a value equal to the limit complies); 超标倍数 (C − L)/L;
  invalid data are not used for 超标判定 (standards.md §8) → verdict NO_DATA.
* GB 18918-2002 表1 基本控制项目 (日均值) [STD], 一级A/一级B/二级/三级, TP by plant build date,
  NH3-N by water temperature; stricter local limits are data passed in (e.g. Laixi,
  ``003_021375295357aa36.txt#L114``).

Everything here is pure. The hourly aggregator keeps a plain JSON-serialisable state (a dict) so a
Faust table can hold it and a batch replay can reuse it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Final, TypedDict

from rules.errors import InvalidReading, OutsideWindow, OxygenOutOfRange, UnknownFactor
from rules.factors import EMISSION_WATER, WATER
from rules.flags import INVALID_FLAGS, VALID_FLAGS, Flag, parse_flag

# ---------------------------------------------------------------------------- oxygen correction

#: O2 in dry air, % (the "21" of GB 13271-2014 式(1)).
AIR_O2: Final = 21.0


def _finite(value: object, factor: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidReading("not a number", factor=factor, value=value)
    number = float(value)
    if not math.isfinite(number):
        raise InvalidReading("not a finite number", factor=factor, value=value)
    return number


def _check_o2(value: object, factor: str) -> float:
    number = _finite(value, factor)
    if number >= AIR_O2:
        raise OxygenOutOfRange(number, "O2 ≥ 21 %: no correction possible", factor=factor)
    if number < 0:
        raise OxygenOutOfRange(number, "negative O2", factor=factor)
    return number


def o2_corrected(concentration: float, *, o2_measured: float, o2_reference: float) -> float:
    """C × (21 − O2ref) / (21 − O2meas) (GB 13271-2014 式(1)), same (dry) basis for C and O2.

    Raises:
        OxygenOutOfRange: O2 measured or reference ≥ 21 % or negative (factor ``o2`` /
            ``o2_reference``).
        InvalidReading: a negative or non-finite concentration (factor ``concentration``).
    """
    c = _finite(concentration, "concentration")
    if c < 0:
        raise InvalidReading("negative concentration", factor="concentration", value=c)
    measured = _check_o2(o2_measured, "o2")
    ref = _check_o2(o2_reference, "o2_reference")
    return c * (AIR_O2 - ref) / (AIR_O2 - measured)


# ---------------------------------------------------------------------------- hourly means

#: HJ 212-2017 附录D (HJ/T 75-2007): an hourly mean needs ≥ 45 valid minute means.
MIN_VALID_MINUTES: Final = 45
#: HJ 212-2017 附录D (HJ/T 75-2007): a daily mean needs ≥ 20 valid hourly means (rules.evaluate).
MIN_VALID_HOURS: Final = 20
#: HJ 212-2017 表C.16 注: a flue-gas minute is N only if ≥ 75 % of its real-time values are normal.
FLUE_GAS_VALID_SHARE: Final = (3, 4)

_HOUR: Final = timedelta(hours=1)


class MinuteRule(StrEnum):
    """How several real-time values within one minute make that minute valid (表C.16 注)."""

    FLUE_GAS = "flue_gas"  # ≥ 75 % of the values valid
    WASTEWATER = "wastewater"  # every value valid


class WindowStatus(StrEnum):
    VALID = "valid"
    INSUFFICIENT = "insufficient"  # too few valid minutes/hours: no mean (not 0, not a guess)


class HourState(TypedDict):
    """Plain, JSON-serialisable state of one hour of one factor."""

    factor: str
    start: str  # ISO-8601 with offset: the start of the hour (HJ 212 labels hours by start)
    #: seconds since the start → [value, flag]; a re-delivered reading overwrites itself.
    readings: dict[str, list[float | str]]


@dataclass(frozen=True, slots=True)
class HourlyResult:
    """An hourly mean with its validity (named result, never a bare float)."""

    factor: str
    start: datetime
    status: WindowStatus
    mean: float | None  # None unless VALID
    minimum: float | None  # over the valid minute means
    maximum: float | None
    valid_minutes: int
    minutes_with_data: int
    readings: int
    #: Readings with an invalid flag, counted by flag (F M D C T B).
    invalid_counts: Mapping[Flag, int]

    @property
    def end(self) -> datetime:
        return self.start + _HOUR

    @property
    def valid(self) -> bool:
        return self.status is WindowStatus.VALID


def _check_aware(at: object, factor: str) -> datetime:
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise InvalidReading("time must be a timezone-aware datetime", factor=factor, value=at)
    return at


#: Flag by its letter (a dict lookup instead of an Enum call per stored reading).
_FLAG_BY_LETTER: Final[dict[str, Flag]] = {f.value: f for f in Flag}


@dataclass(frozen=True, slots=True)
class HourlyAverage:
    """Incremental hourly mean of one factor from minute or real-time values.

    ``initialise(hour_start)`` → state; ``add(state, at=…, value=…, flag=…)`` → state (updated in
    place and returned; store the returned value); ``result(state)`` → :class:`HourlyResult`.
    Idempotent under re-delivery: two readings at the same second are one reading (the last wins).
    """

    rule: MinuteRule = MinuteRule.FLUE_GAS
    min_valid_minutes: int = MIN_VALID_MINUTES

    def initialise(self, factor: str, hour_start: datetime) -> HourState:
        start = _check_aware(hour_start, "hour_start")
        if (start.minute, start.second, start.microsecond) != (0, 0, 0):
            raise InvalidReading("hour start must be on the hour", factor="hour_start", value=start)
        return {"factor": factor, "start": start.isoformat(), "readings": {}}

    def add(
        self, state: HourState, *, at: datetime, value: float, flag: Flag | str = Flag.N
    ) -> HourState:
        """Add one minute or real-time value; raises a typed error for bad input."""
        factor = state["factor"]
        when = _check_aware(at, factor)
        number = _finite(value, factor)
        letter = parse_flag(flag)
        start = datetime.fromisoformat(state["start"])
        offset = when - start
        if not timedelta(0) <= offset < _HOUR:
            raise OutsideWindow(factor, when, f"[{state['start']}, +1 h)")
        state["readings"][str(int(offset.total_seconds()))] = [number, letter.value]
        return state

    def result(self, state: HourState) -> HourlyResult:
        minutes: dict[int, list[float]] = {}  # minute → [valid sum, valid n, invalid n]
        invalid_counts: dict[Flag, int] = {}
        for second, (value, letter) in state["readings"].items():
            flag = _FLAG_BY_LETTER.get(letter) if type(letter) is str else None
            if flag is None:
                flag = Flag(str(letter))
            acc = minutes.setdefault(int(second) // 60, [0.0, 0, 0])
            if flag in VALID_FLAGS:  # is_valid(flag), inlined for the per-reading loop
                acc[0] += float(value)
                acc[1] += 1
            else:
                acc[2] += 1
                invalid_counts[flag] = invalid_counts.get(flag, 0) + 1
        means = [acc[0] / acc[1] for acc in minutes.values() if self._minute_valid(acc)]
        enough = len(means) >= self.min_valid_minutes
        return HourlyResult(
            factor=state["factor"],
            start=datetime.fromisoformat(state["start"]),
            status=WindowStatus.VALID if enough else WindowStatus.INSUFFICIENT,
            mean=sum(means) / len(means) if enough else None,
            minimum=min(means) if means else None,
            maximum=max(means) if means else None,
            valid_minutes=len(means),
            minutes_with_data=len(minutes),
            readings=len(state["readings"]),
            invalid_counts={f: invalid_counts[f] for f in INVALID_FLAGS if f in invalid_counts},
        )

    def _minute_valid(self, acc: list[float]) -> bool:
        valid, invalid = acc[1], acc[2]
        if valid == 0:
            return False
        if self.rule is MinuteRule.WASTEWATER:
            return invalid == 0
        num, den = FLUE_GAS_VALID_SHARE
        return valid * den >= num * (valid + invalid)


# ---------------------------------------------------------------------------- permit limits


class Basis(StrEnum):
    """The averaging period a limit is judged on."""

    HOUR = "hour"  # flue gas: hourly mean after O2 correction (standards.md §8, [MEM])
    DAY = "day"  # wastewater: daily mean (GB 18918-2002 表1 日均值)


class Verdict(StrEnum):
    WITHIN = "within"
    EXCEEDED = "exceeded"
    NO_DATA = "no_data"  # invalid or missing: not used for 超标判定


@dataclass(frozen=True, slots=True)
class PermitLimit:
    """A limit of one factor at one outlet (排放口), from a permit or a standard."""

    outlet: str
    factor: str
    upper: float | None = None
    lower: float | None = None  # pH only, in practice
    basis: Basis = Basis.HOUR
    source: str = ""

    def __post_init__(self) -> None:
        if self.upper is None and self.lower is None:
            raise InvalidReading("a limit needs an upper or a lower bound", factor=self.factor)
        for bound in (self.upper, self.lower):
            if bound is not None and (not math.isfinite(bound) or bound < 0):
                raise InvalidReading(
                    "limit must be finite and ≥ 0", factor=self.factor, value=bound
                )


@dataclass(frozen=True, slots=True)
class PermitCheck:
    """One value against one limit (named result)."""

    outlet: str
    factor: str
    verdict: Verdict
    value: float | None
    #: The bound that was crossed (the upper bound when within).
    limit: float | None
    #: 超标倍数 (C − L)/L above an upper bound; None when within, without data, or below a lower bound.
    multiple: float | None
    basis: Basis
    source: str

    @property
    def exceeded(self) -> bool:
        return self.verdict is Verdict.EXCEEDED


def check_permit(limit: PermitLimit, value: float | None) -> PermitCheck:
    """Judge one (valid) value against a limit; ``None`` means no valid value → NO_DATA."""

    def make(verdict: Verdict, bound: float | None, multiple: float | None) -> PermitCheck:
        return PermitCheck(
            limit.outlet, limit.factor, verdict, number, bound, multiple, limit.basis, limit.source
        )

    number = None if value is None else _finite(value, limit.factor)
    if number is None:
        return make(Verdict.NO_DATA, limit.upper, None)
    if limit.upper is not None and number > limit.upper:
        multiple = (number - limit.upper) / limit.upper if limit.upper > 0 else math.inf
        return make(Verdict.EXCEEDED, limit.upper, multiple)
    if limit.lower is not None and number < limit.lower:
        return make(Verdict.EXCEEDED, limit.lower, None)
    return make(Verdict.WITHIN, limit.upper, None)


# ---------------------------------------------------------------------------- GB 18918-2002


class EffluentClass(StrEnum):
    """GB 18918-2002 表1 classes, strictest first."""

    CLASS_1A = "一级A"
    CLASS_1B = "一级B"
    CLASS_2 = "二级"
    CLASS_3 = "三级"

    @property
    def english(self) -> str:
        return {"一级A": "class 1-A", "一级B": "class 1-B", "二级": "class 2", "三级": "class 3"}[
            self.value
        ]


EFFLUENT_CLASSES: Final[tuple[EffluentClass, ...]] = tuple(EffluentClass)

#: GB 18918-2002 表1: plants built up to this date use the older TP row ("2005年12月31日前建设").
TP_OLD_PLANTS_UNTIL: Final = date(2005, 12, 31)
#: GB 18918-2002 表1 注(2): NH3-N outside brackets for water temperature > 12 ℃, in brackets ≤ 12 ℃.
NH3N_WARM_ABOVE_C: Final = 12.0

_Row = tuple[float | None, float | None, float | None, float | None]

# GB 18918-2002 表1 基本控制项目最高允许排放浓度（日均值）, mg/L (standards.md §7.1) [STD].
# None = "–" (no limit at that class). Columns: 一级A, 一级B, 二级, 三级.
GB18918_TABLE1: Final[dict[str, _Row]] = {
    "cod": (50, 60, 100, 120),  # 表1 第1项 (三级: 注(1) removal-rate condition not modelled)
    "bod5": (10, 20, 30, 60),  # 表1 第2项
    "ss": (10, 20, 30, 50),  # 表1 第3项
    "oil": (1, 3, 5, 15),  # 表1 第5项 石油类
    "las": (0.5, 1, 2, 5),  # 表1 第6项 阴离子表面活性剂
    "tn": (15, 20, None, None),  # 表1 第7项
    "fecal_coliform": (1000, 10000, 10000, None),  # 表1 第12项, 个/L
}
GB18918_NH3N: Final[dict[bool, _Row]] = {
    True: (5, 8, 25, None),  # 表1 第8项, water temperature > 12 ℃
    False: (8, 15, 30, None),  # 表1 第8项 (括号内), water temperature ≤ 12 ℃
}
GB18918_TP: Final[dict[bool, _Row]] = {
    True: (1, 1.5, 3, 5),  # 表1 第9项, built before 2005-12-31
    False: (0.5, 1, 3, 5),  # 表1 第9项, built from 2006-01-01
}
GB18918_PH: Final[tuple[float, float]] = (6.0, 9.0)  # 表1 第11项, every class

#: Factors an effluent sample may carry without a GB 18918 limit (ignored, not an error).
_EFFLUENT_FACTORS: Final[frozenset[str]] = frozenset(EMISSION_WATER) | frozenset(WATER)


@dataclass(frozen=True, slots=True)
class LocalLimit:
    """A stricter local limit for one factor (data passed in, with its source)."""

    factor: str
    upper: float
    source: str


#: Laixi WWTP, 10万吨/日 portion: 一级A（加严）COD ≤ 40, NH3-N ≤ 2 mg/L — 003_021375295357aa36.txt#L114
#: (docs/plans/seed-003.md). An example of data a catalogue passes in.
LAIXI_WWTP_STRICTER: Final[tuple[LocalLimit, ...]] = (
    LocalLimit("cod", 40, "003_021375295357aa36.txt#L114 一级A（加严）"),
    LocalLimit("nh3n", 2, "003_021375295357aa36.txt#L114 一级A（加严）"),
)


def _limits_for(built: date, warm: bool) -> dict[str, tuple[_Row, str]]:
    old = built <= TP_OLD_PLANTS_UNTIL
    rows = {f: (row, f"GB 18918-2002 表1 {f}") for f, row in GB18918_TABLE1.items()}
    rows["nh3n"] = (
        GB18918_NH3N[warm],
        f"GB 18918-2002 表1 氨氮 (水温{'>' if warm else '≤'}12℃)",
    )
    rows["tp"] = (
        GB18918_TP[old],
        f"GB 18918-2002 表1 总磷 ({'2005年12月31日前' if old else '2006年1月1日起'}建设)",
    )
    return rows


@dataclass(frozen=True, slots=True)
class EffluentItem:
    """One factor's daily mean against GB 18918 (and any local limit)."""

    factor: str
    value: float
    #: The strictest GB 18918 class this value meets; None = worse than 三级 (or pH outside 6–9).
    effluent_class: EffluentClass | None
    verdict: Verdict  # against the required class and local limits
    limit: float | None  # the binding upper limit (or the pH bound crossed)
    multiple: float | None  # (C − L)/L when exceeded above an upper limit
    source: str  # which standard/plan line the binding limit comes from


@dataclass(frozen=True, slots=True)
class EffluentCheck:
    """A WWTP's daily means against its required GB 18918 class and local limits."""

    required: EffluentClass
    items: Mapping[str, EffluentItem]
    #: The worst per-item class (None = some item is worse than 三级).
    achieved: EffluentClass | None
    #: True when no water temperature was given: NH3-N judged on the stricter > 12 ℃ limits.
    temperature_assumed: bool

    @property
    def exceeded(self) -> tuple[EffluentItem, ...]:
        return tuple(i for i in self.items.values() if i.verdict is Verdict.EXCEEDED)

    @property
    def verdict(self) -> Verdict:
        return Verdict.EXCEEDED if self.exceeded else Verdict.WITHIN


def _best_class(value: float, row: _Row) -> EffluentClass | None:
    for cls, limit in zip(EFFLUENT_CLASSES, row, strict=True):
        if limit is None or value <= limit:
            return cls
    return None


def check_effluent(
    daily_means: Mapping[str, float | None],
    required: EffluentClass | str,
    *,
    built: date,
    water_temp: float | None = None,
    local: Sequence[LocalLimit] = (),
) -> EffluentCheck:
    """Judge a WWTP's daily means (日均值) against GB 18918-2002 表1 and stricter local limits.

    ``water_temp`` (℃) selects the NH3-N column; when absent, ``daily_means["temp"]`` is used, and
    failing that the stricter > 12 ℃ column (``temperature_assumed=True``). ``built`` (建设日期)
    selects the TP row. A local limit replaces the national one only where it is stricter.

    Raises:
        UnknownFactor: a factor outside the water vocabularies.
        InvalidReading: a bad value, or ``required`` not one of 一级A/一级B/二级/三级.
    """
    try:
        req = EffluentClass(required)
    except ValueError:
        raise InvalidReading("not a GB 18918 class", factor="required", value=required) from None
    for factor in daily_means:
        if factor not in _EFFLUENT_FACTORS:
            raise UnknownFactor(factor)
    temp = water_temp if water_temp is not None else daily_means.get("temp")
    assumed = temp is None
    warm = True if temp is None else _finite(temp, "temp") > NH3N_WARM_ABOVE_C
    rows = _limits_for(built, warm)
    column = EFFLUENT_CLASSES.index(req)
    locals_by_factor: dict[str, LocalLimit] = {}
    for lim in local:
        known = locals_by_factor.get(lim.factor)
        if known is None or lim.upper < known.upper:
            locals_by_factor[lim.factor] = lim

    items: dict[str, EffluentItem] = {}
    for factor, raw in daily_means.items():
        if raw is None or (
            factor not in rows and factor not in locals_by_factor and factor != "ph"
        ):
            continue
        value = _finite(raw, factor)
        if value < 0:
            raise InvalidReading("negative value", factor=factor, value=value)
        if factor == "ph":
            low, high = GB18918_PH
            inside = low <= value <= high
            items[factor] = EffluentItem(
                factor,
                value,
                EffluentClass.CLASS_1A if inside else None,  # pH 6–9 is the same for every class
                Verdict.WITHIN if inside else Verdict.EXCEEDED,
                None if inside else (low if value < low else high),
                None,
                "GB 18918-2002 表1 pH",
            )
            continue
        best: EffluentClass | None = None
        limit: float | None = None
        source = ""
        if factor in rows:
            row, source = rows[factor]
            best = _best_class(value, row)
            limit = row[column]
        loc = locals_by_factor.get(factor)
        if loc is not None and (limit is None or loc.upper < limit):
            limit, source = loc.upper, loc.source
        if limit is not None and value > limit:
            verdict = Verdict.EXCEEDED
            multiple: float | None = (value - limit) / limit if limit > 0 else math.inf
        else:
            verdict, multiple = Verdict.WITHIN, None
        items[factor] = EffluentItem(factor, value, best, verdict, limit, multiple, source)

    graded = [i.effluent_class for i in items.values() if i.factor in rows or i.factor == "ph"]
    achieved: EffluentClass | None
    if any(c is None for c in graded):
        achieved = None
    else:
        achieved = max(
            (c for c in graded if c is not None),
            key=EFFLUENT_CLASSES.index,
            default=EffluentClass.CLASS_1A,
        )
    return EffluentCheck(req, items, achieved, assumed)
