"""Air-quality statistics with data validity, as small incremental aggregators.

Every aggregator has the same three steps (``initialise / add / result``, style.md §1 habit 3):

* ``initialise()`` returns a *plain* state — lists of floats/None (and ints) only — that a Faust
  table can hold as JSON and a batch replay can rebuild.
* ``add(state, …)`` writes one value into its **slot** (minute of the hour, hour of the day, day of
  the year) and returns the state. A slot is overwritten, never summed, so a duplicate delivery
  (at-least-once transport) changes nothing.
* ``result(state, …)`` returns a named :class:`Stat` that says whether the statistic is valid
  and why, with the value withheld (``value is None``) when it is not.

Validity minima are GB 3095-2012 表4 = GB 3095-2026 表4 (see rules.standards.gb3095); the O3
daily-maximum 8-h window rule is HJ 663's. Year-to-date statistics for the plans' targets are
rules/progress.py's (fed live by alerts/progress_live.py).

Time labels (architecture.md §5): an hour labelled *t* is the mean over (t−1 h, t]; days are
Beijing natural days, so the day's hours are labelled 01:00 … 24:00 (= 00:00 of the next day).
Slot ``i`` of a day holds the hour labelled ``i + 1`` o'clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Final

from rules.beijing import BEIJING, FIXED_FROM_S, UTC8_S
from rules.errors import InvalidReading
from rules.standards.gb3095 import (
    MIN_HOURS_PER_8H,
    MIN_HOURS_PER_DAY,
)

__all__ = [
    "MIN_VALID_8H_WINDOWS",
    "O3_8H_WINDOW_ENDS",
    "DailyMean",
    "DailyO3Max8h",
    "Stat",
    "StationDay",
    "StationDayResult",
    "Validity",
    "day_slot",
    "epoch_hour",
]

#: HJ 663-2013 (O3 日最大8小时平均): the 8-h means whose windows end 08:00 … 24:00 of the day
#: (17 windows lying fully inside the natural day) — standards.md §2.3 [2+].
O3_8H_WINDOW_ENDS: Final[tuple[int, ...]] = tuple(range(8, 25))
#: HJ 663-2013: at least 14 valid 8-h means for a valid daily maximum, unless the maximum of
#: fewer already exceeds the limit — standards.md §2.3 [2+].
MIN_VALID_8H_WINDOWS: Final = 14
#: GB 3095 O3 日最大8小时平均 grade-II limit, 160 µg/m³ in GB 3095-2012 表1 and GB 3095-2026 表1
#: (transitional and final) — the default limit of the "valid anyway if it exceeds" rule.
O3_8H_GRADE_II_LIMIT: Final = 160.0

State = list[float | None]
_INF: Final = float("inf")


class Validity(StrEnum):
    VALID = "valid"
    #: Fewer values than the minimum; ``value`` is None, ``partial`` holds what was computed.
    INSUFFICIENT = "insufficient"
    #: HJ 663: fewer valid 8-h windows than required, but the maximum already exceeds the limit.
    VALID_EXCEEDS_LIMIT = "valid_exceeds_limit"
    NO_DATA = "no_data"


@dataclass(frozen=True, slots=True)
class Stat:
    """A statistic with its validity: ``value`` only when valid, ``partial`` always if any data."""

    value: float | None
    partial: float | None
    count: int
    required: int
    validity: Validity
    #: For annual means: the months (1–12) short of their minimum.
    short_months: tuple[int, ...] = ()

    @property
    def valid(self) -> bool:
        return self.validity in (Validity.VALID, Validity.VALID_EXCEEDS_LIMIT)


def _stat(total: float, count: int, required: int) -> Stat:
    if count == 0:
        return Stat(None, None, 0, required, Validity.NO_DATA)
    mean = total / count
    if count >= required:
        return Stat(mean, mean, count, required, Validity.VALID)
    return Stat(None, mean, count, required, Validity.INSUFFICIENT)


def _mean_of(slots: Iterable[float | None], required: int) -> Stat:
    total = 0.0
    count = 0
    for v in slots:
        if v is not None:
            total += v
            count += 1
    return _stat(total, count, required)


def _check_value(value: float, factor: str | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidReading("value must be a number", factor=factor, value=value)
    v = float(value)
    if not -_INF < v < _INF:  # NaN compares false
        raise InvalidReading("value must be finite", factor=factor, value=value)
    return v


# ------------------------------------------------------------------ time slots


def _require_aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidReading("naive datetime; times must be timezone-aware", value=at)


#: Asia/Shanghai has been UTC+8 without daylight saving since September 1991 (IANA tz database);
#: from 1992 on, day_slot uses the fixed-offset arithmetic of rules.beijing (inlined: hot path)
#: instead of a zone conversion.
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()


def day_slot(hour_label: datetime) -> tuple[date, int]:
    """The Beijing natural day and slot (0…23) of the hour labelled ``hour_label``.

    The hour labelled 01:00 is slot 0 of its day; the one labelled 00:00 is slot 23 of the
    *previous* day (it is the mean over 23:00–24:00).
    """
    _require_aware(hour_label)
    ts = hour_label.timestamp()
    if ts >= FIXED_FROM_S and ts % 3600 == 0:
        days, rem = divmod(int(ts) + UTC8_S - 3600, 86400)
        return date.fromordinal(_EPOCH_ORDINAL + days), rem // 3600
    local = hour_label.astimezone(BEIJING)
    if local.minute or local.second or local.microsecond:
        raise InvalidReading("hourly values are labelled with a whole hour", value=hour_label)
    start = local - timedelta(hours=1)
    return start.date(), start.hour


def epoch_hour(hour_label: datetime) -> int:
    """Whole hours since the Unix epoch for an hour label (a compact, zone-free slot key)."""
    _require_aware(hour_label)
    ts = hour_label.timestamp()
    if ts % 3600:
        raise InvalidReading("hourly values are labelled with a whole hour", value=hour_label)
    return int(ts) // 3600


# ------------------------------------------------------------------ daily mean, 8-h, daily max


class DailyMean:
    """Daily (24-h, natural day) mean from hourly means: valid with ≥ 20 hours (GB 3095 表4)."""

    def __init__(self, min_hours: int = MIN_HOURS_PER_DAY) -> None:
        self.min_hours = min_hours

    def initialise(self) -> State:
        return [None] * 24

    def add(self, state: State, slot: int, value: float) -> State:
        if not 0 <= slot < 24:
            raise InvalidReading("hour slot outside 0…23", factor="slot", value=slot)
        state[slot] = _check_value(value)
        return state

    def result(self, state: State) -> Stat:
        return _mean_of(state, self.min_hours)


class DailyO3Max8h:
    """O3 daily maximum 8-h mean (日最大8小时平均) from the day's 24 hourly O3 slots.

    Windows ending 08:00 … 24:00 (slots 0–7 … 16–23), each valid with ≥ 6 hours; the maximum is
    valid with ≥ 14 valid windows, or with fewer when it already exceeds ``limit`` (HJ 663-2013,
    standards.md §2.3). ``limit`` defaults to the grade-II 160 µg/m³ (GB 3095 表1); pass 100
    for a grade-I area.
    """

    def __init__(
        self,
        min_windows: int = MIN_VALID_8H_WINDOWS,
        min_hours: int = MIN_HOURS_PER_8H,
        limit: float = O3_8H_GRADE_II_LIMIT,
    ) -> None:
        self.min_windows = min_windows
        self.min_hours = min_hours
        self.limit = limit

    def windows(self, day: Sequence[float | None]) -> list[float | None]:
        """The 17 window means (None where < 6 hours), in order of their end 08:00 … 24:00."""
        out: list[float | None] = []
        for end in O3_8H_WINDOW_ENDS:
            total = 0.0
            count = 0
            for v in day[end - 8 : end]:
                if v is not None:
                    total += v
                    count += 1
            out.append(total / count if count >= self.min_hours else None)
        return out

    def result(self, day: Sequence[float | None]) -> Stat:
        valid = [w for w in self.windows(day) if w is not None]
        if not valid:
            return Stat(None, None, 0, self.min_windows, Validity.NO_DATA)
        best = max(valid)
        n = len(valid)
        if n >= self.min_windows:
            return Stat(best, best, n, self.min_windows, Validity.VALID)
        if best > self.limit:
            return Stat(best, best, n, self.min_windows, Validity.VALID_EXCEEDS_LIMIT)
        return Stat(None, best, n, self.min_windows, Validity.INSUFFICIENT)


# ------------------------------------------------------------------ one station, one day

STATION_DAY_FACTORS: Final[tuple[str, ...]] = ("pm25", "pm10", "so2", "no2", "co", "o3")


@dataclass(frozen=True, slots=True)
class StationDayResult:
    """A station-day's statistics and the ``means`` mapping :func:`rules.aqi.daily_aqi` takes."""

    daily: Mapping[str, Stat]
    o3_8h: Stat
    o3_1h: Stat
    means: Mapping[str, float | None]


class StationDay:
    """All six factors of one station for one Beijing natural day, hour by hour.

    State: ``{factor: [24 slots]}``. ``add`` takes the slot from :func:`day_slot` (computed once per
    station-hour) and a sample's values; unknown factors are ignored here (the caller validated the
    sample), None leaves the slot empty.
    """

    def __init__(self, daily: DailyMean | None = None, o3: DailyO3Max8h | None = None) -> None:
        self.daily = daily or DailyMean()
        self.o3 = o3 or DailyO3Max8h()

    def initialise(self) -> dict[str, State]:
        return {f: [None] * 24 for f in STATION_DAY_FACTORS}

    def add(
        self, state: dict[str, State], slot: int, values: Mapping[str, float | None]
    ) -> dict[str, State]:
        if not 0 <= slot < 24:
            raise InvalidReading("hour slot outside 0…23", factor="slot", value=slot)
        get = values.get
        for f in STATION_DAY_FACTORS:
            v = get(f)
            if v is not None:
                if type(v) is not float or not -_INF < v < _INF:  # fast path: a finite float
                    v = _check_value(v, f)
                state[f][slot] = v
        return state

    def result(self, state: dict[str, State]) -> StationDayResult:
        daily = {f: self.daily.result(state[f]) for f in STATION_DAY_FACTORS if f != "o3"}
        o3 = state["o3"]
        o3_8h = self.o3.result(o3)
        present = [v for v in o3 if v is not None]
        # O3 daily max 1-h (HJ 633-2012 日报 only): the largest hourly value, validated like a
        # daily value (≥ 20 hours; GB 3095 表4 gives no separate rule) — a choice, see the docs.
        peak = max(present) if present else None
        n = len(present)
        if peak is None:
            o3_1h = Stat(None, None, 0, self.daily.min_hours, Validity.NO_DATA)
        elif n >= self.daily.min_hours:
            o3_1h = Stat(peak, peak, n, self.daily.min_hours, Validity.VALID)
        else:
            o3_1h = Stat(None, peak, n, self.daily.min_hours, Validity.INSUFFICIENT)
        means: dict[str, float | None] = {f: s.value for f, s in daily.items()}
        means["o3_8h"] = o3_8h.value
        means["o3_1h"] = o3_1h.value
        return StationDayResult(daily, o3_8h, o3_1h, means)
