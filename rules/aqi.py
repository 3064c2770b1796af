"""Air Quality Index (空气质量指数, AQI) per HJ 633-2012 and HJ 633-2026.

Public API (contract of issue 3)::

    realtime_aqi(concentrations, *, at)  -> AqiResult   # real-time (实时报) hourly AQI
    daily_aqi(means, *, day)             -> AqiResult   # daily report (日报)

The edition follows the event's own time: ``at`` (end of the hour) or ``day`` (Beijing natural day);
HJ 633-2026 from 2026-03-01 00:00 Asia/Shanghai (rules.standards.hj633.edition_at).

Method (docs/standards-engine.md has the reasoning):

* Real-time, both editions: the six 1-hour concentrations; PM2.5/PM10 on the daily (24-h)
  breakpoints; no O3-8h term (HJ 633-2026 4.2.4; it is what the national release has published since
  2013 — reproduced for 2,983 CNEMC station-hours in tests/rules/test_cnemc_oracle.py).
* IAQI_P = (IAQI_Hi − IAQI_Lo)/(BP_Hi − BP_Lo) × (C_P − BP_Lo) + IAQI_Lo (HJ 633 式(1)); AQI = max
  IAQI_P (式(2)); both rounded UP to an integer (HJ 633-2012 6.2, HJ 633-2026 4.2.6). Floats are
  used; a value within ``CEIL_EPSILON`` above an integer counts as that integer, so that e.g. CO
  24-h 2.04 mg/m³ (IAQI exactly 51) does not become 52 through binary representation error.
* HJ 633-2026 only: inputs rounded per GB/T 8170 (round half to even on the discarded digit):
  µg/m³ to integers, CO mg/m³ to one decimal (HJ 633-2026 4.2.2, 4.2.3).
* Above the last breakpoint: SO2 1-h > 800 → 2012: the SO2 24-h IAQI if ``so2_24h`` is given,
  else no SO2 IAQI (表1 注2); 2026: IAQI 200 (表3 注b). O3 8-h > 800 → 2012: the O3 1-h IAQI
  stands for O3 (表1 注3); 2026: IAQI 300 (表3 注c). Anything else above the top → IAQI 500,
  flagged (neither edition defines it; standards.md §1.2).
* Missing pollutants: 2012 — NA for the missing one, AQI from the others (表注 "缺测指标…NA";
  what CNEMC published, see the oracle test); 2026 §5.3.1 — AQI, primary pollutant and level
  computed from the others but published only if AQI > 100, else NA (None); the IAQIs are kept.
* Primary pollutant (首要污染物): only when AQI > 50, every pollutant whose IAQI equals the AQI.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from functools import lru_cache
from types import MappingProxyType
from typing import Final, NamedTuple

from rules.errors import InvalidReading, UnknownFactor
from rules.standards.hj633 import (
    HJ633_2012,
    HJ633_2026,
    IAQI_POINTS,
    SWITCH_2026,
    AboveTop,
    AqiEdition,
    BreakpointTable,
    edition_at,
    edition_on,
)

__all__ = [
    "CEIL_EPSILON",
    "LEVELS",
    "AqiLevel",
    "AqiResult",
    "Note",
    "Report",
    "aqi_level",
    "daily_aqi",
    "iaqi",
    "realtime_aqi",
    "realtime_iaqis",
    "round_gbt8170",
]

#: Tolerance of the upward rounding: v ∈ (n, n + ε] counts as n. Real inputs carry at most a few
#: decimals, so a true fractional part is ≥ 1/(10³·ΔBP) ≈ 1e-7 ≫ ε, while float error on an
#: IAQI ≤ 500 is < 1e-12.
CEIL_EPSILON: Final = 1e-9

#: Real-time factors and the table each is evaluated on (HJ 633-2026 4.2.4: PM on the daily table).
REALTIME_TABLE: Final[Mapping[str, str]] = {
    "pm25": "pm25_24h",
    "pm10": "pm10_24h",
    "so2": "so2_1h",
    "no2": "no2_1h",
    "co": "co_1h",
    "o3": "o3_1h",
}
#: Daily-report keys and their tables.
DAILY_TABLE: Final[Mapping[str, str]] = {
    "pm25": "pm25_24h",
    "pm10": "pm10_24h",
    "so2": "so2_24h",
    "no2": "no2_24h",
    "co": "co_24h",
    "o3_8h": "o3_8h",
    "o3_1h": "o3_1h",
}
#: Optional real-time key for the HJ 633-2012 SO2 fall-back (表1 注2): the SO2 24-h mean.
SO2_24H_KEY: Final = "so2_24h"

#: Decimals kept by the HJ 633-2026 input rounding (4.2.2: µg/m³ → integer; 4.2.3: CO → 0.1 mg/m³).
_DECIMALS: Final[Mapping[str, int]] = {"co": 1}


class Report(StrEnum):
    REALTIME = "realtime"  # 实时报
    DAILY = "daily"  # 日报


class Note(StrEnum):
    """Things a reader of an AQI must know about how it was obtained."""

    #: A concentration above its table's last breakpoint; its IAQI is reported as 500.
    ABOVE_TOP_BREAKPOINT = "above_top_breakpoint"
    #: HJ 633-2012 表1 注2: SO2 1-h > 800 µg/m³, SO2 IAQI taken from the 24-h mean.
    SO2_1H_FALLBACK_24H = "so2_1h_fallback_24h"
    #: HJ 633-2012 表1 注2 with no 24-h mean at hand: no SO2 IAQI.
    SO2_1H_NO_IAQI = "so2_1h_no_iaqi"
    #: HJ 633-2026 表3 注b: SO2 1-h > 800 µg/m³, IAQI counted as 200.
    SO2_1H_CAPPED_200 = "so2_1h_capped_200"
    #: HJ 633-2012 表1 注3: O3 8-h > 800 µg/m³, the O3 1-h IAQI stands for O3.
    O3_8H_FALLBACK_1H = "o3_8h_fallback_1h"
    #: HJ 633-2026 表3 注c: O3 8-h > 800 µg/m³, IAQI counted as 300.
    O3_8H_CAPPED_300 = "o3_8h_capped_300"
    #: At least one indicator of the report is missing or invalid.
    MISSING_POLLUTANT = "missing_pollutant"
    #: HJ 633-2026 5.3.1: AQI of an incomplete set ≤ 100, so AQI/primary/level are NA.
    AQI_WITHHELD = "aqi_withheld"
    #: Nothing to compute from.
    NO_DATA = "no_data"


@dataclass(frozen=True, slots=True)
class AqiLevel:
    """A row of HJ 633-2012 表2 / HJ 633-2026 表1 with the colour of 附录A 表A.1."""

    level: int
    lower: int
    upper: int | None
    category: str
    category_en: str
    color: str


#: HJ 633-2012 表2 + 附录A; HJ 633-2026 表1 + 附录A (identical in both editions).
LEVELS: Final[tuple[AqiLevel, ...]] = (
    AqiLevel(1, 0, 50, "优", "Excellent", "#00E400"),
    AqiLevel(2, 51, 100, "良", "Good", "#FFFF00"),
    AqiLevel(3, 101, 150, "轻度污染", "Lightly polluted", "#FF7E00"),
    AqiLevel(4, 151, 200, "中度污染", "Moderately polluted", "#FF0000"),
    AqiLevel(5, 201, 300, "重度污染", "Heavily polluted", "#99004C"),
    AqiLevel(6, 301, None, "严重污染", "Severely polluted", "#7E0023"),
)


def aqi_level(aqi: int) -> AqiLevel:
    """The level row an (integer) AQI falls in; 0 belongs to level 1."""
    if aqi < 0:
        raise InvalidReading("AQI must be >= 0", factor="aqi", value=aqi)
    for row in LEVELS:
        if row.upper is None or aqi <= row.upper:
            return row
    raise AssertionError("unreachable: the last level is open-ended")  # pragma: no cover


class AqiResult(NamedTuple):
    """An AQI with everything needed to publish it (immutable).

    ``aqi``/``level``/``category``/``color`` are None when the AQI is NA (no data, or withheld
    by HJ 633-2026 5.3.1 — then ``computed_aqi`` still holds the value computed from the others).
    A NamedTuple rather than a frozen dataclass: it is built once per station-hour on the hot
    path and a NamedTuple is several times cheaper to construct (bench/bench_rules.py).
    """

    aqi: int | None
    iaqi: Mapping[str, int]
    primary: tuple[str, ...]
    level: int | None
    category: str | None
    category_en: str | None
    color: str | None
    edition: str
    report: Report
    computed_aqi: int | None
    #: Indicators of the report that were missing (None) — NA in the release.
    missing: tuple[str, ...] = ()
    #: Indicators above their table's top breakpoint (IAQI 500 or a cap/fall-back applied).
    above_top: tuple[str, ...] = ()
    notes: frozenset[Note] = frozenset()
    #: The concentrations actually evaluated (after the 2026 input rounding).
    inputs: Mapping[str, float] = MappingProxyType({})

    @property
    def published(self) -> bool:
        return self.aqi is not None


# ------------------------------------------------------------------ numerics


def round_gbt8170(value: float, decimals: int = 0) -> float:
    """Round per GB/T 8170 (四舍六入五成双): half to even on the discarded decimal digit.

    The float is read as the decimal it was reported as: 0.35 → 0.4 and 0.25 → 0.2 at one
    decimal, 2.5 → 2 and 3.5 → 4 at zero decimals (a value within 1e-9 of a tie is a tie).
    """
    scale = 10.0**decimals
    y = value * scale
    f = math.floor(y)
    d = y - f
    if abs(d - 0.5) <= 1e-9 * max(1.0, abs(y)):
        r = f if f % 2 == 0 else f + 1
    else:
        r = math.floor(y + 0.5)
    return r / scale if decimals else float(r)


def _round_scaled(c: float, scale: float) -> float:
    """:func:`round_gbt8170` of a non-negative ``c`` at ``scale`` = 10**decimals, for the AQI hot
    paths: a value already on the grid is returned as it is."""
    y = c * scale
    f = math.floor(y)
    d = y - f
    if not d:
        return c
    if abs(d - 0.5) <= 1e-9 * (y if y > 1.0 else 1.0):
        return float(f if f % 2 == 0 else f + 1) / scale
    return float(math.floor(y + 0.5)) / scale


class _Seg:
    """Precomputed table: breakpoints and per-segment (BP_Lo, slope, IAQI_Lo)."""

    __slots__ = ("above_top", "bps", "segs")

    def __init__(self, table: BreakpointTable) -> None:
        self.bps = tuple(float(b) for b in table.breakpoints)
        self.above_top = table.above_top
        segs: list[tuple[float, float, float]] = [(0.0, 0.0, 0.0)]
        for i in range(1, len(self.bps)):
            lo, hi = self.bps[i - 1], self.bps[i]
            ilo, ihi = IAQI_POINTS[i - 1], IAQI_POINTS[i]
            segs.append((lo, (ihi - ilo) / (hi - lo), float(ilo)))
        self.segs = tuple(segs)


def iaqi(table: BreakpointTable, concentration: float) -> int | None:
    """The IAQI of one concentration on one table (ceil); None above the top (see ``above_top``).

    No input rounding is done here: that is the report functions' job.
    """
    return _iaqi(_Seg(table), concentration)


def _iaqi(seg: _Seg, c: float) -> int | None:
    i = bisect_left(seg.bps, c)
    if i >= len(seg.bps):
        return None
    lo, slope, ilo = seg.segs[i]
    v = ilo + slope * (c - lo)
    n = int(v)
    return n + 1 if v - n > CEIL_EPSILON else n


def _invalid(key: str, value: object) -> InvalidReading:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return InvalidReading("concentration must be a number or None", factor=key, value=value)
    if not math.isfinite(value):
        return InvalidReading("concentration must be finite", factor=key, value=value)
    return InvalidReading("concentration must be >= 0", factor=key, value=value)


def _number(key: str, value: object) -> float:
    """Slow path of the input check: other numeric types (e.g. numpy floats) become float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _invalid(key, value)
    return float(value)


# (key, breakpoints, segments, above-top rule, 10**input decimals)
_Step = tuple[str, tuple[float, ...], tuple[tuple[float, float, float], ...], AboveTop, float]
_Plan = tuple[_Step, ...]


def _plan(edition: AqiEdition, tables: Mapping[str, str], keys: tuple[str, ...]) -> _Plan:
    segs = {k: _Seg(t) for k, t in edition.tables.items()}
    out = []
    for key in keys:
        seg = segs[tables[key]]
        out.append((key, seg.bps, seg.segs, seg.above_top, 10.0 ** _DECIMALS.get(key, 0)))
    return tuple(out)


_SEGS: Final = {e.name: {k: _Seg(t) for k, t in e.tables.items()} for e in (HJ633_2012, HJ633_2026)}
_REALTIME_PLANS: Final = {
    e.name: _plan(e, REALTIME_TABLE, tuple(REALTIME_TABLE)) for e in (HJ633_2012, HJ633_2026)
}
_DAILY_PLANS: Final = {
    e.name: _plan(e, DAILY_TABLE, tuple(k for k in DAILY_TABLE if k in e.daily_items))
    for e in (HJ633_2012, HJ633_2026)
}
_REALTIME_KEYS: Final = frozenset(REALTIME_TABLE) | {SO2_24H_KEY}
_DAILY_KEYS: Final = frozenset(DAILY_TABLE)
_LEVEL_BY_AQI: Final = tuple(aqi_level(a) for a in range(IAQI_POINTS[-1] + 1))
_NO_NOTES: Final[frozenset[Note]] = frozenset()
_INF: Final = math.inf


def _edition(at: datetime) -> AqiEdition:
    try:
        return HJ633_2026 if at >= SWITCH_2026 else HJ633_2012
    except TypeError:
        return edition_at(at)  # raises the typed error for naive / non-datetime values


# ------------------------------------------------------------------ reports


def realtime_aqi(concentrations: Mapping[str, float | None], *, at: datetime) -> AqiResult:
    """Real-time (hourly) AQI for the hour ending at ``at`` (timezone-aware).

    ``concentrations`` maps ``pm25 pm10 so2 no2 co o3`` (1-hour means, µg/m³, CO mg/m³) to a
    number or None; an absent key counts as None. Optional ``so2_24h`` (the SO2 24-h moving mean)
    serves the HJ 633-2012 fall-back for SO2 1-h > 800. Other keys raise :class:`UnknownFactor`;
    negative, non-finite or non-numeric values raise :class:`InvalidReading`.
    """
    edition = _edition(at)
    if not _REALTIME_KEYS.issuperset(concentrations):
        raise UnknownFactor(next(k for k in concentrations if k not in _REALTIME_KEYS))
    so2_24h = concentrations.get(SO2_24H_KEY)
    if so2_24h is not None:
        so2_24h = _number(SO2_24H_KEY, so2_24h)
        if not 0.0 <= so2_24h < _INF:
            raise _invalid(SO2_24H_KEY, so2_24h)
    return _compute(
        edition, Report.REALTIME, _REALTIME_PLANS[edition.name], concentrations, so2_24h
    )


_REALTIME_2012: Final = _REALTIME_PLANS[HJ633_2012.name]
_REALTIME_2026: Final = _REALTIME_PLANS[HJ633_2026.name]


def _iaqi_of(bps: Sequence[float], segs: Sequence[tuple[float, float, float]], scale: float,
             rounds: bool) -> Callable[[float], int | None]:  # fmt: skip
    """The IAQI of one pollutant's 1-hour value in one edition's table (HJ 633 式(1), rounded up;
    HJ 633-2026 4.2.2/4.2.3 input rounding first), or None above the table's top breakpoint —
    memoised per value: a network reports a few thousand distinct values of each pollutant
    (one decimal), so most hours of most stations hit the cache."""

    @lru_cache(maxsize=16384)
    def iaqi(c: float) -> int | None:
        if rounds:
            c = _round_scaled(c, scale)
        i = bisect_left(bps, c)
        if i >= len(bps):
            return None
        lo, slope, ilo = segs[i]
        v = ilo + slope * (c - lo)
        n = int(v)
        return n + 1 if v - n > CEIL_EPSILON else n

    return iaqi


#: [edition 2026?] → one memoised IAQI function per pollutant, in REALTIME_TABLE order
_REALTIME_IAQI: Final = {
    new: tuple(_iaqi_of(bps, segs, scale, new) for _key, bps, segs, _rule, scale in plan)
    for new, plan in ((False, _REALTIME_2012), (True, _REALTIME_2026))
}


def realtime_iaqi_functions(edition_2026: bool) -> tuple[Callable[[float], int | None], ...]:
    """The memoised IAQI function of each pollutant of REALTIME_TABLE (in its order) for one
    edition, for a caller that has already validated its values (floats, finite, ≥ 0; rules.
    evaluate): ``f(c)`` is the IAQI :func:`realtime_iaqis` gives for ``c``, None above the
    table's top breakpoint."""
    return _REALTIME_IAQI[edition_2026]


def realtime_iaqis(row: Sequence[float | None], *, edition_2026: bool) -> list[int] | None:
    """The common case of :func:`realtime_aqi`, for a hot caller (rules.evaluate) that knows the
    edition: the IAQIs of ``row`` (the 1-hour values of ``pm25 pm10 so2 no2 co o3``, the order
    of REALTIME_TABLE) when every value is a float within its table, else None — a value missing,
    not a float, negative, not finite or above its table's top breakpoint (no fall-back, cap or
    NA rule applies) is left to :func:`realtime_aqi`.

    The numbers are those of :func:`realtime_aqi` (same plans, same HJ 633-2026 4.2.2/4.2.3 input
    rounding, same HJ 633 式(1) and upward rounding); tests/rules/test_aqi_properties.py holds
    them equal. The AQI is ``max`` of the result (式(2)).
    """
    out: list[int] = []
    for c, iaqi in zip(row, _REALTIME_IAQI[edition_2026], strict=True):
        if type(c) is not float or not 0.0 <= c < _INF:  # None, int, NaN … → realtime_aqi
            return None
        n = iaqi(c)
        if n is None:
            return None
        out.append(n)
    return out


def daily_aqi(means: Mapping[str, float | None], *, day: date) -> AqiResult:
    """Daily AQI for the Beijing natural day ``day``.

    ``means`` maps ``pm25 pm10 so2 no2 co`` (24-h means), ``o3_8h`` (daily maximum 8-h mean) and
    ``o3_1h`` (daily maximum 1-h mean; HJ 633-2012 only — ignored from 2026-03-01, whose daily
    report has no O3 1-h item) to a number or None.
    """
    if isinstance(day, datetime) or not isinstance(day, date):
        raise InvalidReading("day must be a datetime.date (Beijing natural day)", value=day)
    edition = edition_on(day)
    if not _DAILY_KEYS.issuperset(means):
        raise UnknownFactor(next(k for k in means if k not in _DAILY_KEYS))
    return _compute(edition, Report.DAILY, _DAILY_PLANS[edition.name], means, None)


def _compute(
    edition: AqiEdition,
    report: Report,
    plan: _Plan,
    conc: Mapping[str, float | None],
    so2_24h: float | None,
) -> AqiResult:
    rounds = edition.rounds_inputs
    get = conc.get
    iaqis: dict[str, int] = {}
    values: dict[str, float] = {}
    missing: list[str] | None = None  # lists and set allocated only when needed (hot path)
    above: list[str] | None = None
    notes: set[Note] | None = None
    best = -1
    for key, bps, segs, rule, scale in plan:
        raw = get(key)
        if raw is None:
            if missing is None:
                missing = [key]
            else:
                missing.append(key)
            continue
        c = raw if (type(raw) is float or type(raw) is int) else _number(key, raw)
        if not 0.0 <= c < _INF:  # also false for NaN
            raise _invalid(key, raw)
        if rounds:
            c = _round_scaled(c, scale)
        values[key] = c
        i = bisect_left(bps, c)
        if i < len(bps):
            lo, slope, ilo = segs[i]
            v = ilo + slope * (c - lo)
            n = int(v)
            if v - n > CEIL_EPSILON:
                n += 1
        else:
            if above is None:
                above = []
            if notes is None:
                notes = set()
            above.append(key)
            got = _above_top(rule, notes, so2_24h, _SEGS[edition.name], rounds)
            if got is None:
                continue
            n = got
        iaqis[key] = n
        if n > best:
            best = n

    computed = best if best >= 0 else None
    aqi = computed
    if missing is not None or computed is None:
        if notes is None:
            notes = set()
        if missing is not None:
            notes.add(Note.MISSING_POLLUTANT)
        if computed is None:
            notes.add(Note.NO_DATA)
        elif (
            missing is not None
            and edition.withhold_if_missing_and_at_most is not None
            and computed <= edition.withhold_if_missing_and_at_most
        ):
            aqi = None
            notes.add(Note.AQI_WITHHELD)
    frozen_notes = frozenset(notes) if notes else _NO_NOTES
    missing_t = tuple(missing) if missing is not None else ()
    above_t = tuple(above) if above is not None else ()
    if aqi is None:
        return AqiResult(
            None, iaqis, (), None, None, None, None, edition.name, report, computed,
            missing_t, above_t, frozen_notes, values,
        )  # fmt: skip
    primary = tuple([k for k, n in iaqis.items() if n == aqi]) if aqi > 50 else ()
    row = _LEVEL_BY_AQI[aqi]
    return AqiResult(
        aqi,
        iaqis,
        primary,
        row.level,
        row.category,
        row.category_en,
        row.color,
        edition.name,
        report,
        computed,
        missing_t,
        above_t,
        frozen_notes,
        values,
    )


def _above_top(
    rule: AboveTop,
    notes: set[Note],
    so2_24h: float | None,
    segs: Mapping[str, _Seg],
    rounds: bool,
) -> int | None:
    if rule is AboveTop.CAP_200:
        notes.add(Note.SO2_1H_CAPPED_200)
        return 200
    if rule is AboveTop.CAP_300:
        notes.add(Note.O3_8H_CAPPED_300)
        return 300
    if rule is AboveTop.FALLBACK_SO2_24H:
        if so2_24h is None:
            notes.add(Note.SO2_1H_NO_IAQI)
            return None
        notes.add(Note.SO2_1H_FALLBACK_24H)
        c = round_gbt8170(so2_24h) if rounds else so2_24h
        n = _iaqi(segs["so2_24h"], c)
        if n is None:
            notes.add(Note.ABOVE_TOP_BREAKPOINT)
            return 500
        return n
    if rule is AboveTop.FALLBACK_O3_1H:
        notes.add(Note.O3_8H_FALLBACK_1H)
        return None
    notes.add(Note.ABOVE_TOP_BREAKPOINT)
    return 500
