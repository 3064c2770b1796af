"""The per-source evaluation step (pure): one sample in, state updated, result points out.

``step(state, sample, ctx)`` is what the stream worker calls for every sample (streams/agents):
it never reads the clock — the sample's own time drives every window — and it is deterministic,
so a replay of the same samples from the same state (also from a JSON round trip of it) produces
the same points with the same ids (the store overwrites, receivers deduplicate).

State per source is a plain JSON-able dict (str keys, lists, ints, floats, None). Hourly values
are retained for ``LATENESS_HOURS`` (a late sample inside that horizon re-evaluates its hour, its
moving means and its day, and the corrected points carry the same ids as the originals; older
samples raise :class:`~rules.errors.OutsideWindow` and go to the dead-letter topic).

Points (measurement → what it holds; tags are bounded sets only, architecture.md §4.4;
docs/evaluations.md says when each is emitted and with which id):

| measurement    | tags                                  | fields                                       |
|----------------|---------------------------------------|----------------------------------------------|
| reading        | kind, locality, source                | the valid values; ``invalid`` = "f:flag,…"   |
| aqi            | locality, source, period (hour/day)   | aqi, published, level, category, iaqi_*, …   |
| aggregate      | kind, locality, source, period        | moving means, daily means, dustfall month    |
| exceedance     | kind, locality, source, factor, period| value, limit, multiple, standard             |
| water_class    | locality, source, period              | grade, label, target, meets, main_pollutants |
| water_change   | locality, source, period (sample)     | <factor>, baseline_*, limit_*, jump_*        |
| emission_hour  | locality, source                      | <factor>, <factor>_zs (O2-corrected), valid  |
| emission_day   | locality, source                      | daily means, valid hours, GB 18918 class     |
| data_quality   | kind, locality, source, period        | expected, received, valid, rates, runs       |

Time (architecture.md §5): an hour labelled *t* is the mean over (t − 1 h, t]; a sample belongs to
the Beijing natural day of the instant just before its label, so the hour labelled 00:00 is the
last hour of the previous day. Asia/Shanghai has been UTC+8 without daylight saving since 1991
(IANA tz database), so from 1992 on days and slots are plain integer arithmetic on epoch hours.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, NamedTuple

from rules import aqi as aqi_mod
from rules.airstats import DailyO3Max8h, StationDay
from rules.emission import (
    MIN_VALID_HOURS,
    EffluentClass,
    HourlyAverage,
    LocalLimit,
    MinuteRule,
    PermitLimit,
    check_effluent,
    check_permit,
    o2_corrected,
)
from rules.errors import InvalidReading, OutsideWindow, RulesError
from rules.flags import VALID_FLAGS, Flag
from rules.forecast import ForecastIssue
from rules.standards import gb3095
from rules.standards.gb3095 import Grade, Period
from rules.standards.hj633 import BEIJING, HJ633_2012, HJ633_2026, IAQI_POINTS
from rules.water import classify, parse_class
from rules.water_events import Change, sudden_change

__all__ = [
    "AIR_FACTORS",
    "DEFAULT_CONSTANT_RUN",
    "DUSTFALL_LIMIT",
    "LATENESS_HOURS",
    "STATE_VERSION",
    "Point",
    "Sample",
    "SourceContext",
    "epoch_hours",
    "from_epoch_hours",
    "step",
]

#: How far back a late sample may still correct its window (hours). A design choice of envwatch
#: (no standard sets it): HJ 633-2026 publishes a day's AQI by 12:00 the next day (standards.md
#: §1.5), so 48 h covers the publication deadline with margin.
LATENESS_HOURS: Final = 48

#: Consecutive identical (or zero) values that raise a data-quality flag. Default 6 samples:
#: standards.md §8 lists "长期在某一固定值上下小幅波动" as a fraud cue without a number, so the
#: count is configuration (``SourceContext.constant_run``), not a standard's value.
DEFAULT_CONSTANT_RUN: Final = 6

#: Dustfall (降尘量) monthly mean limit, t/(month·km²): "平均降尘量不得高于7吨/月·平方公里"
#: (000_d6d679181568297b.txt#L171, 001_15ef1b070f9ae15b.txt#L351). A plan target used as the
#: default; a monitor's own ``dustfall`` limit in the catalogue overrides it.
DUSTFALL_LIMIT: Final = 7.0

#: The version of the state layout; a state of another version is discarded (started afresh).
STATE_VERSION: Final = 2

AIR_FACTORS: Final = ("pm25", "pm10", "so2", "no2", "co", "o3")
#: GB 3095 表1 1-hour limits exist for these (PM has none); (index in AIR_FACTORS, name).
HOURLY_LIMITED: Final = ((2, "so2"), (3, "no2"), (4, "co"), (5, "o3"))
#: GB 3095 表1 24-hour limits.
DAILY_LIMITED: Final = ("so2", "no2", "co", "pm10", "pm25")
#: Factors that may be negative (temperatures, flue-gas static pressure); every other value < 0
#: is refused before any state changes, so a bad sample cannot poison a window.
SIGNED_FACTORS: Final = frozenset({"temp", "pressure"})
#: Status factors: 0/1 states, never a constant- or zero-value anomaly.
STATUS_FACTORS: Final = frozenset({"bypass_open", "vapour_recovery"})
#: Water factors without a GB 3838 class (accepted and ignored by the classification).
WATER_UNCLASSED: Final = frozenset({"temp", "cond", "turb", "chla"})
#: Gas factors an O2 correction (折算) applies to (HJ 212-2017 -Zs codes; GB 13271-2014 式(1)).
CORRECTED_FACTORS: Final = ("so2", "nox", "pm", "co", "nmhc")
#: Plants whose build date is unknown are judged on the stricter TP row of GB 18918-2002 表1
#: (built from 2006-01-01) — a conservative default, see docs/evaluations.md.
DEFAULT_PLANT_BUILT: Final = date(2006, 1, 1)

_HOUR: Final = timedelta(hours=1)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
#: Asia/Shanghai = UTC+8 without DST from 1992-01-01 (IANA tz database): fixed-offset arithmetic.
_FIXED_FROM_H: Final = int(datetime(1992, 1, 1, tzinfo=BEIJING).timestamp()) // 3600
_UTC8_H: Final = 8
#: Hours of air data held: a sample LATENESS_HOURS late may be the last hour of its day, whose
#: first hour and whose 24-h window reach 23 hours further back.
_RING: Final = LATENESS_HOURS + 24
#: Days (and months, for dustfall) of day state kept behind the latest: LATENESS_HOURS spans 3 days.
_KEEP_DAYS: Final = LATENESS_HOURS // 24 + 1
#: Epoch hour of the HJ 633-2026 switch (2026-03-01 00:00 Beijing; rules.standards.hj633).
_SWITCH_2026_H: Final = int(gb3095.SWITCH_2026.timestamp()) // 3600
_INTERVAL_S: Final = {"rt": 30, "min": 60, "hour": 3600, "day": 86400}


# ----------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class Sample:
    """A validated sample (decoded from the wire by the caller)."""

    kind: str
    locality: str
    source: str
    time: datetime  # aware; label of the sample (end of period)
    interval: str  # rt | min | hour | day
    values: Mapping[str, tuple[float | None, str]]  # factor -> (value, flag)
    #: an AQI forecast issue (kind ``forecast``, ``time`` = its issue time; rules/forecast.py)
    forecast: ForecastIssue | None = None


class Point(NamedTuple):
    """One evaluation result: an InfluxDB point and a record for the alert engine (immutable).

    A NamedTuple rather than a frozen dataclass: several are built per sample on the hot path and
    a NamedTuple is several times cheaper to construct (bench/bench_engine.py).
    """

    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, float | int | str | bool]
    time: datetime

    @property
    def id(self) -> str:
        """Deterministic id: measurement, tags and time (a replay yields the same id)."""
        tags = ",".join(f"{k}={self.tags[k]}" for k in sorted(self.tags))
        return f"{self.measurement}|{tags}|{self.time.astimezone(UTC).isoformat()}"


@dataclass(frozen=True, slots=True)
class SourceContext:
    """What the catalogue says about a source (built by the caller from rules.catalog)."""

    area_grade: int = 2
    lake: bool = False
    target_class: int | None = None
    #: permit limits by factor (the outlet's FactorLimit entries)
    limits: Mapping[str, PermitLimit] = field(default_factory=dict)
    reference_o2: float | None = None
    wastewater: bool = False
    #: expected seconds between samples (for the transmission rate); None: from the interval
    expected_interval_s: int | None = None
    constant_run: int = DEFAULT_CONSTANT_RUN
    #: wastewater treatment plants: the GB 18918-2002 class the plant must meet (一级A …);
    #: None: no effluent-class evaluation
    effluent_class: EffluentClass | str | None = None
    #: build date of the plant (selects the GB 18918-2002 表1 TP row); None: DEFAULT_PLANT_BUILT
    plant_built: date | None = None
    #: stricter local effluent limits (e.g. 003_021375295357aa36.txt#L114 for Laixi)
    local_limits: Sequence[LocalLimit] = ()
    #: other monitors: the catalogue's monitor kind (construction_dust, road_dust, noise, …)
    monitor_kind: str | None = None
    #: noise monitors: the GB 3096-2008 声环境功能区 class ("0", "1", "2", "3", "4a", "4b")
    zone_class: str | None = None


def epoch_hours(at: datetime) -> int:
    """Whole hours since the Unix epoch (floor) of an aware instant."""
    return int((at - _EPOCH) // _HOUR)


def from_epoch_hours(h: int) -> datetime:
    """The UTC instant ``h`` whole hours after the Unix epoch."""
    return _EPOCH + h * _HOUR


# ----------------------------------------------------------------------------- time helpers

_HOUR_DT: dict[int, datetime] = {}


def _hour_dt(h: int) -> datetime:
    """``from_epoch_hours(h)``, memoised: every station of a network labels the same hours."""
    got = _HOUR_DT.get(h)
    if got is None:
        if len(_HOUR_DT) > 10_000:
            _HOUR_DT.clear()
        got = _HOUR_DT[h] = _EPOCH + h * _HOUR
    return got


_ISO: dict[float, str] = {}


def _iso_utc(ts: float) -> str:
    """ISO-8601 UTC text of epoch seconds ``ts``, memoised (shared sample times)."""
    got = _ISO.get(ts)
    if got is None:
        if len(_ISO) > 10_000:
            _ISO.clear()
        got = _ISO[ts] = (_EPOCH + timedelta(seconds=ts)).isoformat()
    return got


def _day_of_hour(h: int) -> tuple[int, int]:
    """(Beijing day number since 1970-01-01, slot 0…23) of the hour labelled epoch hour ``h``."""
    if h >= _FIXED_FROM_H:
        d, slot = divmod(h + _UTC8_H - 1, 24)
        return d, slot
    local = (from_epoch_hours(h) - _HOUR).astimezone(BEIJING)
    return local.date().toordinal() - _EPOCH_ORDINAL, local.hour


def _day_of_instant(ts: float) -> int:
    """Beijing day number of the period labelled by ``ts`` (epoch seconds): the day of the instant
    just before the label, so a label at 00:00 belongs to the previous day."""
    sec = math.ceil(ts)
    if sec >= _FIXED_FROM_H * 3600:
        return (sec + _UTC8_H * 3600 - 1) // 86400
    local = (_EPOCH + timedelta(seconds=sec - 1)).astimezone(BEIJING)
    return local.date().toordinal() - _EPOCH_ORDINAL


def _date(d: int) -> date:
    return date.fromordinal(_EPOCH_ORDINAL + d)


_DAY_STARTS: dict[int, datetime] = {}


def _day_start(d: int) -> datetime:
    """00:00 Beijing time of day number ``d`` (aware, Asia/Shanghai; memoised)."""
    got = _DAY_STARTS.get(d)
    if got is None:
        if len(_DAY_STARTS) > 10_000:
            _DAY_STARTS.clear()
        x = _date(d)
        got = _DAY_STARTS[d] = datetime(x.year, x.month, x.day, tzinfo=BEIJING)
    return got


def _first_hour_of_day(d: int) -> int:
    """Epoch hour of the label 01:00 (slot 0) of day number ``d``."""
    if d * 24 - _UTC8_H + 1 >= _FIXED_FROM_H:
        return d * 24 - _UTC8_H + 1
    return int(_day_start(d).timestamp()) // 3600 + 1


# ----------------------------------------------------------------------------- reading


_TAGS_CACHE: dict[tuple[str, ...], dict[str, str]] = {}


def _tags(*pairs: str) -> dict[str, str]:
    """Tags dict for alternating key/value strings, shared between points of the same series.

    Tag dicts are never mutated (``Point.tags`` is a read-only Mapping); sharing them saves
    building the same small dict for every sample. The cache is bounded by the catalogue (source
    ids × a few measurements) and cleared if it ever grows beyond that.
    """
    tags = _TAGS_CACHE.get(pairs)
    if tags is None:
        if len(_TAGS_CACHE) > 100_000:
            _TAGS_CACHE.clear()
        tags = dict(zip(pairs[::2], pairs[1::2], strict=True))
        _TAGS_CACHE[pairs] = tags
    return tags


def _verdict_tags(kind: str, loc: str, src: str, period: str) -> dict[str, str]:
    """Tags of a ``verdict`` point: every value judged against a limit in one averaging period
    of one source (wire-only: the locality stage's explicit within/exceeded observations)."""
    return _tags("kind", kind, "locality", loc, "source", src, "period", period)


def _judged(
    verdict: dict[str, float | int | str | bool], factor: str, value: float, limit: float, std: str
) -> None:
    verdict[factor] = value
    verdict[factor + "_limit"] = limit
    verdict[factor + "_standard"] = std


class _SourceTags(NamedTuple):
    reading: dict[str, str]
    quality_run: dict[str, str]
    quality_day: dict[str, str]


_SOURCE_TAGS: dict[tuple[str, str, str], _SourceTags] = {}


def _source_tags(sample: Sample) -> _SourceTags:
    """The tag dicts every sample of a source uses (memoised per kind, locality, source)."""
    key = (sample.kind, sample.locality, sample.source)
    got = _SOURCE_TAGS.get(key)
    if got is None:
        if len(_SOURCE_TAGS) > 100_000:
            _SOURCE_TAGS.clear()
        kind, loc, src = key
        got = _SOURCE_TAGS[key] = _SourceTags(
            _tags("kind", kind, "locality", loc, "source", src),
            _tags("kind", kind, "locality", loc, "source", src, "period", "run"),
            _tags("kind", kind, "locality", loc, "source", src, "period", "day"),
        )
    return got


def _split(
    values: Mapping[str, tuple[float | None, str]],
) -> tuple[dict[str, float], dict[str, str]]:
    """(valid values as floats, invalid flags by factor). A value is valid when present and flagged
    N or S (HJ 212-2017 表8; rules.flags.VALID_FLAGS).

    Raises InvalidReading for a value that is not a finite number, or a pH outside 0–14.
    """
    valid = {f: v for f, (v, flag) in values.items() if v is not None and flag in VALID_FLAGS}
    bad: dict[str, str] = (
        {}
        if len(valid) == len(values)
        else {f: flag for f, (_v, flag) in values.items() if flag not in VALID_FLAGS}
    )
    if valid:
        # fast path: every value a float (one C-level pass) and their sum finite (so is each)
        if set(map(type, valid.values())) != _FLOAT_ONLY or not (
            -math.inf < sum(valid.values()) < math.inf
        ):
            for f, v in valid.items():
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise InvalidReading("value must be a number or null", factor=f, value=v)
                if not math.isfinite(v):
                    raise InvalidReading("value must be finite", factor=f, value=v)
                valid[f] = float(v)
        ph = valid.get("ph")
        if ph is not None and not 0.0 <= ph <= 14.0:
            raise InvalidReading("pH outside 0–14", factor="ph", value=ph)
        if min(valid.values()) < 0:
            for f, v in valid.items():
                if v < 0 and f not in SIGNED_FACTORS:
                    raise InvalidReading("negative value", factor=f, value=v)
    if bad and not _KNOWN_FLAGS.issuperset(bad.values()):
        f = next(f for f, flag in bad.items() if flag not in _KNOWN_FLAGS)
        raise InvalidReading("not an HJ 212-2017 表8 data flag", factor=f, value=bad[f])
    return valid, bad


_FLOAT_ONLY: Final = {float}
#: HJ 212-2017 表8 flags (rules.flags.Flag).
_KNOWN_FLAGS: Final = frozenset(f.value for f in Flag)


def _reading(sample: Sample, valid: dict[str, float], bad: dict[str, str]) -> Point | None:
    fields: dict[str, float | int | str | bool]
    if bad:
        fields = dict(valid)
        fields["invalid"] = ",".join(f"{f}:{bad[f]}" for f in sorted(bad))
    elif valid:
        fields = valid  # type: ignore[assignment]  # dict[str, float] is a valid field mapping
    else:
        return None
    return Point("reading", _source_tags(sample).reading, fields, sample.time)


# ----------------------------------------------------------------------------- entry point


def step(
    state: dict[str, Any] | None, sample: Sample, ctx: SourceContext
) -> tuple[dict[str, Any], list[Point]]:
    """Evaluate one sample; return the new state and the points it produced or corrected.

    The state is updated in place and returned (pass the returned one next time). Raises
    :class:`~rules.errors.RulesError` subclasses for input that cannot be evaluated (the caller
    dead-letters the sample with the error's reason). Values, flags, time labels and lateness
    are checked before anything is written, so such a sample leaves the state untouched.
    """
    t = sample.time
    if t.tzinfo is None or t.utcoffset() is None:
        raise InvalidReading("sample time must be timezone-aware", factor="time", value=t)
    st: dict[str, Any]
    st = {"v": STATE_VERSION} if state is None or state.get("v") != STATE_VERSION else state
    valid, bad = _split(sample.values)
    ts = t.timestamp()
    points: list[Point] = []
    reading = _reading(sample, valid, bad)
    if reading is not None:
        points.append(reading)
    kind = sample.kind
    if kind == "air":
        points += _air(st, sample, ctx, valid, ts)
    elif kind == "water":
        points += _water(st, sample, ctx, valid, ts)
    elif kind == "emission":
        points += _emission(st, sample, ctx, valid, ts)
    elif kind == "monitor":
        points += _monitor(st, sample, ctx, valid, ts)
    run = _quality_runs(st, sample, ctx, valid, ts)
    if run is not None:
        points.append(run)
    points += _quality_day(st, sample, ctx, valid, bad, ts)
    return st, points


def _check_late(st: dict[str, Any], key: str, at: int, horizon: int, sample: Sample) -> None:
    """Raise OutsideWindow when ``at`` lies more than ``horizon`` before the latest ``st[key]``."""
    last = st.get(key)
    if last is not None and at < last - horizon:
        raise OutsideWindow(
            sample.source,
            sample.time,
            f"more than {LATENESS_HOURS} h before the latest sample of the source",
        )


# ----------------------------------------------------------------------------- air


def _air(
    st: dict[str, Any], sample: Sample, ctx: SourceContext, valid: dict[str, float], ts: float
) -> list[Point]:
    """Air state: ``cols`` = one ring of ``_RING`` hourly values per factor (index = epoch hour
    mod ``_RING``), ``ring_h`` = the epoch hour each slot holds (-1: none). When the latest hour
    advances, the slots of skipped hours are cleared, so every slot of the last ``_RING`` hours
    holds its own hour or nothing and a window is a plain slice."""
    if sample.interval != "hour":
        # sub-hourly air data are aggregated upstream; the reading point keeps them
        return []
    if ts % 3600:
        raise InvalidReading(
            "hourly air samples are labelled with a whole hour", factor="time", value=sample.time
        )
    h = int(ts) // 3600
    last: int | None = st.get("last_h")
    tags = _air_tags(sample.locality, sample.source)
    d, slot = _day_of_hour(h)
    points: list[Point] = []
    cols: list[list[float | None]]
    if last is None:
        ring_h: list[int] = [-1] * _RING
        cols = [[None] * _RING for _ in AIR_FACTORS]
        st["ring_h"] = ring_h
        st["cols"] = cols
        st["done"] = []
        st["day"] = d
        last = h
    else:
        if h < last - LATENESS_HOURS:
            raise OutsideWindow(
                sample.source,
                sample.time,
                f"more than {LATENESS_HOURS} h before the latest sample of the source",
            )
        ring_h = st["ring_h"]
        cols = st["cols"]
        done: list[int] = st["done"]
        cur: int = st["day"]
        if d > cur:
            # a new day begins: the previous one is closed — evaluate it before its hours can
            # leave the ring (unless its last hour already did so)
            if cur not in done:
                points += _air_day(ring_h, cols, cur, tags, ctx)
                done.append(cur)
            st["day"] = d
            done[:] = [x for x in done if x >= d - _KEEP_DAYS]
        if h > last:
            for k in range(max(last + 1, h - _RING + 1), h):  # hours skipped: no data
                i = k % _RING
                ring_h[i] = -1
                for col in cols:
                    col[i] = None
            last = h
    st["last_h"] = last
    i = h % _RING
    ring_h[i] = h
    get = valid.get
    cols[0][i] = get("pm25")
    cols[1][i] = get("pm10")
    cols[2][i] = get("so2")
    cols[3][i] = get("no2")
    cols[4][i] = get("co")
    cols[5][i] = get("o3")

    points += _air_hour(cols, h, tags, ctx, full=True)
    # a late or corrected hour: every later hour whose 24-h / 8-h window holds it is re-emitted
    if h < last:
        for hh in range(h + 1, min(last, h + 23) + 1):
            if ring_h[hh % _RING] == hh:
                points += _air_hour(cols, hh, tags, ctx, full=False)
    # the day of this hour: when complete (its last hour, labelled 00:00, arrived), closed (a
    # later day has begun: a late sample) or already published (a correction)
    done = st["done"]
    if slot == 23 or d < st["day"] or d in done:
        points += _air_day(ring_h, cols, d, tags, ctx)
        if d not in done:
            done.append(d)
    return points


class _AirTags:
    """The tag dicts of an air station's points (built once per station, shared; never mutated)."""

    __slots__ = (
        "_exceedance",
        "aqi_day",
        "aqi_hour",
        "day",
        "loc",
        "moving",
        "src",
        "verdict_8h",
        "verdict_24h",
        "verdict_hourly",
    )

    def __init__(self, loc: str, src: str) -> None:
        self.moving = _tags("kind", "air", "locality", loc, "source", src, "period", "moving")
        self.verdict_hourly = _verdict_tags("air", loc, src, "hourly")
        self.verdict_24h = _verdict_tags("air", loc, src, "24h")
        self.verdict_8h = _verdict_tags("air", loc, src, "8h")
        self.aqi_hour = _tags("locality", loc, "source", src, "period", "hour")
        self.aqi_day = _tags("locality", loc, "source", src, "period", "day")
        self.day = _tags("kind", "air", "locality", loc, "source", src, "period", "day")
        self.loc = loc
        self.src = src
        self._exceedance: dict[tuple[str, str], dict[str, str]] = {}

    def exceedance(self, factor: str, period: str) -> dict[str, str]:
        got = self._exceedance.get((factor, period))
        if got is None:
            got = self._exceedance[(factor, period)] = _tags(
                "kind", "air", "locality", self.loc, "source", self.src,
                "factor", factor, "period", period,
            )  # fmt: skip
        return got


_AIR_TAGS: dict[tuple[str, str], _AirTags] = {}


def _air_tags(loc: str, src: str) -> _AirTags:
    got = _AIR_TAGS.get((loc, src))
    if got is None:
        if len(_AIR_TAGS) > 100_000:
            _AIR_TAGS.clear()
        got = _AIR_TAGS[(loc, src)] = _AirTags(loc, src)
    return got


def _grade(ctx: SourceContext) -> Grade:
    return Grade.I if ctx.area_grade == 1 else Grade.II


_SWITCH_FINAL_H: Final = int(gb3095.SWITCH_FINAL.timestamp()) // 3600


def _hourly_limits_of(
    edition: gb3095.LimitEdition, grade: Grade
) -> tuple[tuple[int, str, float, str, str], ...]:
    rows = []
    for idx, f in HOURLY_LIMITED:
        lim = edition.limit(f, Period.HOURLY, grade)
        if lim is not None:
            rows.append((idx, f, lim.value, edition.name, lim.source))
    return tuple(rows)


#: (index, factor, limit, edition, clause) of the GB 3095 表1 1-hour limits:
#: [edition 2012/2026 过渡/2026 最终][grade] — looked up once, not per sample
_HOURLY_LIMITS: Final = tuple({g: _hourly_limits_of(e, g) for g in Grade} for e in gb3095.EDITIONS)


def _hourly_limits(h: int, grade: Grade) -> tuple[tuple[int, str, float, str, str], ...]:
    """The GB 3095 1-hour limits in force for the hour labelled epoch hour ``h`` (the edition
    switches of rules.standards.gb3095 are whole hours)."""
    e = 0 if h < _SWITCH_2026_H else 1 if h < _SWITCH_FINAL_H else 2
    return _HOURLY_LIMITS[e][grade]


def _window(col: list[float | None], end: int, n: int) -> list[float | None]:
    """The ring slots of the ``n`` hours labelled ``end − n + 1`` … ``end`` (hour order)."""
    b = end % _RING + 1
    a = b - n
    return col[a:b] if a >= 0 else col[a:] + col[:b]


def _round3(x: float) -> float:
    """``round(x, 3)``, bit for bit, about twice as fast for the moving means.

    ``round`` rounds the exact binary value to 3 decimals and converts that decimal back
    (correctly rounded). For 0 < x < 10⁶ the product y = x·1000 is within 6·10⁻⁸ of the exact
    one, so unless y's fraction lies within 10⁻⁶ of a tie both round to the same integer r, and
    r / 1000 (an IEEE division, correctly rounded) is that same decimal's nearest float. Ties,
    zero, negative and large values take ``round`` itself (tests/rules/test_engine_fast.py)."""
    y = x * 1000.0
    f = math.floor(y)
    d = y - f
    if 0.0 < x < 1e6 and abs(d - 0.5) > 1e-6:
        return (f + 1 if d > 0.5 else f) / 1000.0
    return round(x, 3)


#: (level, category, category_en, color) of every AQI 0…500 (HJ 633 表 levels, rules.aqi.LEVELS)
_LEVEL_FIELDS: Final = tuple(
    (r.level, r.category, r.category_en, r.color)
    for r in (aqi_mod.aqi_level(a) for a in range(IAQI_POINTS[-1] + 1))
)
_REALTIME_KEYS: Final = tuple(aqi_mod.REALTIME_TABLE)
_HJ633_2012: Final = HJ633_2012.name
_HJ633_2026: Final = HJ633_2026.name


def _realtime_fields(iaqis: list[int], edition: str) -> dict[str, float | int | str | bool]:
    """The fields :func:`_aqi_point` writes for a real-time AQI that rules.aqi.realtime_iaqis
    computed (every pollutant present and within its table): AQI = max IAQI (HJ 633 式(2)),
    published; primary pollutants when AQI > 50 (those whose IAQI equals the AQI)."""
    pm25, pm10, so2, no2, co, o3 = iaqis
    aqi = max(iaqis)
    level, category, category_en, color = _LEVEL_FIELDS[aqi]
    if aqi <= 50:
        return {
            "edition": edition, "aqi": aqi, "published": True, "level": level,
            "category": category, "category_en": category_en, "color": color,
            "iaqi_pm25": pm25, "iaqi_pm10": pm10, "iaqi_so2": so2, "iaqi_no2": no2,
            "iaqi_co": co, "iaqi_o3": o3,
        }  # fmt: skip
    primary = (
        _REALTIME_KEYS[iaqis.index(aqi)]
        if iaqis.count(aqi) == 1
        else ",".join([k for k, n in zip(_REALTIME_KEYS, iaqis, strict=True) if n == aqi])
    )
    return {
        "edition": edition, "aqi": aqi, "published": True, "level": level,
        "category": category, "category_en": category_en, "color": color, "primary": primary,
        "iaqi_pm25": pm25, "iaqi_pm10": pm10, "iaqi_so2": so2, "iaqi_no2": no2,
        "iaqi_co": co, "iaqi_o3": o3,
    }  # fmt: skip


def _air_hour(
    cols: list[list[float | None]],
    h: int,
    tags: _AirTags,
    ctx: SourceContext,
    *,
    full: bool,
) -> list[Point]:
    """Points of the hour labelled ``h``: moving means (always), real-time AQI and GB 3095 1-h
    exceedances (``full``, or when the 2012 SO2 fall-back makes the AQI depend on the 24-h mean)."""
    at = _hour_dt(h)
    # moving means: 24 h for PM and SO2 (≥ 20 hours, GB 3095 表4), 8 h for O3 (≥ 6 hours, 表4)
    agg: dict[str, float | int | str | bool] = {}
    b = h % _RING + 1
    a = b - 24
    so2_24h: float | None = None
    for name, col in (("pm25_24h", cols[0]), ("pm10_24h", cols[1]), ("so2_24h", cols[2])):
        w = col[a:b] if a >= 0 else col[a:] + col[:b]
        count = 24 - w.count(None)
        if count >= 20:
            # sum in hour order: the same result whatever the arrival order; filter(None, …)
            # also drops zeros, which add nothing
            agg[name] = mean = _round3(sum(filter(None, w)) / count)
            if name == "so2_24h":
                so2_24h = mean
    a = b - 8
    col = cols[5]
    w = col[a:b] if a >= 0 else col[a:] + col[:b]
    count = 8 - w.count(None)
    if count >= 6:
        agg["o3_8h"] = _round3(sum(filter(None, w)) / count)
    points: list[Point] = []
    if agg:
        points.append(Point("aggregate", tags.moving, agg, at))
    i = b - 1
    row = [col[i] for col in cols]
    so2 = row[2]
    new = h >= _SWITCH_2026_H
    # HJ 633-2012 表1 注2: SO2 1-h > 800 µg/m³ → SO2 IAQI from the 24-h mean
    fallback = not new and so2 is not None and so2 > 800.0
    if not full and not fallback:
        return points
    iaqis = None if fallback else aqi_mod.realtime_iaqis(row, edition_2026=new)
    if iaqis is not None:
        points.append(
            Point(
                "aqi",
                tags.aqi_hour,
                _realtime_fields(iaqis, _HJ633_2026 if new else _HJ633_2012),
                at,
            )
        )
    else:
        conc: dict[str, float | None] = {
            "pm25": row[0],
            "pm10": row[1],
            "so2": so2,
            "no2": row[3],
            "co": row[4],
            "o3": row[5],
        }
        if fallback and so2_24h is not None:
            conc["so2_24h"] = so2_24h
        result = aqi_mod.realtime_aqi(conc, at=at)
        points.append(aqi_point(result, tags.aqi_hour, at))
    if not full:
        return points
    verdict: dict[str, float | int | str | bool] = {}
    for idx, f, limit, edition, clause in _hourly_limits(h, _grade(ctx)):
        v = row[idx]
        if v is None:
            continue
        # every judged value, within or above its limit: the locality stage's explicit verdict
        verdict[f] = v
        verdict[f + "_limit"] = limit
        verdict[f + "_standard"] = clause
        if v > limit:
            # GB 3095 表1 1-h limit; 超标倍数 (C − limit)/limit (rules.ambient.exceedance)
            points.append(
                Point(
                    "exceedance",
                    tags.exceedance(f, "hourly"),
                    {
                        "value": float(v),
                        "limit": limit,
                        "multiple": round((v - limit) / limit, 4),
                        "standard": edition,
                        "clause": clause,
                    },
                    at,
                )
            )
    if verdict:
        points.append(Point("verdict", tags.verdict_hourly, verdict, at))
    return points


_IAQI_FIELD: Final = {
    k: f"iaqi_{k}" for k in (*AIR_FACTORS, "o3_8h", "o3_1h", "so2_24h", "pm25_24h", "pm10_24h")
}


def aqi_point(result: aqi_mod.AqiResult, tags: Mapping[str, str], at: datetime) -> Point:
    """The AQI point. ``published`` is always written: False when the AQI is NA (no data, or
    withheld by HJ 633-2026 5.3.1 — a pollutant missing and the AQI of the others ≤ 100), so a
    correction that turns a published AQI into NA is visible although line protocol cannot delete
    the earlier ``aqi`` field."""
    fields: dict[str, float | int | str | bool] = {"edition": result.edition}
    aqi = result.aqi
    if aqi is not None:
        fields["aqi"] = aqi
        fields["published"] = True
        fields["level"] = int(result.level or 0)
        fields["category"] = result.category or ""
        fields["category_en"] = result.category_en or ""
        fields["color"] = result.color or ""
    else:
        fields["published"] = False
        if result.computed_aqi is not None:
            fields["computed_aqi"] = result.computed_aqi
    if result.primary:
        fields["primary"] = ",".join(result.primary)
    for k, v in result.iaqi.items():
        fields[_IAQI_FIELD.get(k) or f"iaqi_{k}"] = v
    if result.missing:
        fields["missing"] = ",".join(result.missing)
    if result.above_top:
        fields["above_top"] = ",".join(result.above_top)
    return Point("aqi", tags, fields, at)


def _daily_limits_of(
    edition: gb3095.LimitEdition, grade: Grade
) -> tuple[tuple[str, str, str, float, str, str], ...]:
    """(mean key, factor, period, limit, edition, clause) of the GB 3095 表1 24-hour limits
    (DAILY_LIMITED) and the O3 daily max 8-h limit — the judgements of rules.ambient.exceedance
    for a Beijing day, looked up once per edition and grade."""
    rows = []
    for key, f, period in (*((f, f, Period.DAILY) for f in DAILY_LIMITED), ("o3_8h", "o3", _8H)):
        lim = edition.limit(f, period, grade)
        if lim is None:  # pragma: no cover - GB 3095 表1 has all of them in every edition
            raise AssertionError(f"{edition.name} has no {period.value} limit for {f}")
        rows.append((key, f, period.value, lim.value, edition.name, lim.source))
    return tuple(rows)


_8H: Final = Period.MAX_8H
#: [edition 2012/2026 过渡/2026 最终][grade] → rows of _daily_limits_of
_DAILY_LIMITS: Final = tuple({g: _daily_limits_of(e, g) for g in Grade} for e in gb3095.EDITIONS)


def _air_day(
    ring_h: list[int],
    cols: list[list[float | None]],
    d: int,
    tags: _AirTags,
    ctx: SourceContext,
) -> list[Point]:
    day = _date(d)
    start = _day_start(d)
    grade = _grade(ctx)
    # the GB 3095 edition of the day: its 00:00 Beijing (epoch hour) against the switches
    h0 = _first_hour_of_day(d) - 1
    limits = _DAILY_LIMITS[0 if h0 < _SWITCH_2026_H else 1 if h0 < _SWITCH_FINAL_H else 2][grade]
    o3_limit = limits[-1][3]
    # HJ 663: a daily max 8-h O3 of fewer than 14 windows is valid anyway when it exceeds the
    # GB 3095 表1 limit of the area grade (160 grade II, 100 grade I)
    agg = StationDay(o3=DailyO3Max8h(limit=o3_limit))
    # the StationDay state ({factor: 24 hour slots}) is the day's slice of each column: every
    # hour of a day that is evaluated lies within the ring's last _RING hours (see _air)
    end = h0 + 24
    state = {f: _window(col, end, 24) for f, col in zip(AIR_FACTORS, cols, strict=True)}
    n_hours = sum(1 for k in range(end - 23, end + 1) if ring_h[k % _RING] == k)
    res = agg.result(state)
    points: list[Point] = []
    fields: dict[str, float | int | str | bool] = {"hours": n_hours}
    for f, stat in res.daily.items():
        if stat.value is not None:
            fields[f] = round(stat.value, 3)
    if res.o3_8h.value is not None:
        fields["o3_8h_max"] = round(res.o3_8h.value, 3)
    if res.o3_1h.value is not None:
        fields["o3_1h_max"] = round(res.o3_1h.value, 3)
    points.append(Point("aggregate", tags.day, fields, start))
    daily = aqi_mod.daily_aqi(res.means, day=day)
    p = aqi_point(daily, tags.aqi_day, start)
    extra: dict[str, float | int | str | bool] = {
        # 优良天: daily AQI ≤ 100 (HJ 633-2012 表2 / HJ 633-2026 表1 levels 1–2); False when NA
        "good": daily.aqi is not None and daily.aqi <= 100,
        # 重度及以上: daily AQI > 200 (HJ 633 levels 5–6)
        "heavy": daily.aqi is not None and daily.aqi > 200,
    }
    points.append(Point(p.measurement, p.tags, {**p.fields, **extra}, p.time))
    # GB 3095 表1 24-h limits and the O3 daily max 8-h limit; a value equal to the limit
    # complies; 超标倍数 (C − limit)/limit (rules.ambient.exceedance)
    means = res.means
    v24: dict[str, float | int | str | bool] = {}
    v8: dict[str, float | int | str | bool] = {}
    for key, f, period, limit, edition, clause in limits:
        v = means.get(key)
        if v is None:
            continue
        judged = v8 if key == "o3_8h" else v24
        judged[f] = float(v)
        judged[f + "_limit"] = limit
        judged[f + "_standard"] = clause
        if v > limit:
            points.append(
                Point(
                    "exceedance",
                    tags.exceedance(f, period),
                    {
                        "value": float(v),
                        "limit": limit,
                        "multiple": round((v - limit) / limit, 4),
                        "standard": edition,
                        "clause": clause,
                    },
                    start,
                )
            )
    if v24:
        points.append(Point("verdict", tags.verdict_24h, v24, start))
    if v8:
        points.append(Point("verdict", tags.verdict_8h, v8, start))
    return points


# ----------------------------------------------------------------------------- water


def _water(
    st: dict[str, Any], sample: Sample, ctx: SourceContext, valid: dict[str, float], ts: float
) -> list[Point]:
    evaluable = {f: v for f, v in valid.items() if f not in WATER_UNCLASSED}
    if not evaluable:
        return []
    sec = math.ceil(ts)
    _check_late(st, "last_s", sec, LATENESS_HOURS * 3600, sample)
    st["last_s"] = max(sec, st.get("last_s", sec))
    tags_sample = _tags("locality", sample.locality, "source", sample.source, "period", "sample")
    tags_day = _tags("locality", sample.locality, "source", sample.source, "period", "day")
    points = [
        _water_point(classify(evaluable, lake=ctx.lake), ctx, tags_sample, sample.time),
    ]
    # sudden changes against the section's recent baseline (rules/water_events.py)
    changes = sudden_change(st.setdefault("change", {}), sec, evaluable, lake=ctx.lake)
    if changes:
        points.append(_change_point(changes, tags_sample, sample.time))
    # daily class from the day's arithmetic means of each item (环办〔2011〕22号: a period's
    # samples are averaged, then the single-factor method). Samples are slots keyed by their
    # time, so a duplicate changes nothing and a correction replaces the earlier values.
    d = _day_of_instant(ts)
    days: dict[str, dict[str, dict[str, float]]] = st.setdefault("water", {})
    day = days.setdefault(str(d), {})
    day[str(sec)] = evaluable
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for key in sorted(day, key=int):  # time order: the same sums for any arrival order
        for f, v in day[key].items():
            sums[f] = sums.get(f, 0.0) + v
            counts[f] = counts.get(f, 0) + 1
    means = {f: s / counts[f] for f, s in sums.items()}
    points.append(_water_point(classify(means, lake=ctx.lake), ctx, tags_day, _day_start(d)))
    for k in [k for k in days if int(k) < d - _KEEP_DAYS]:
        del days[k]
    return points


def _change_point(changes: list[Change], tags: Mapping[str, str], at: datetime) -> Point:
    """``water_change``: per judged factor its value, baseline, jump threshold and verdict."""
    fields: dict[str, float | int | str | bool] = {}
    for c in changes:
        fields[c.factor] = c.value
        fields[f"baseline_{c.factor}"] = round(c.baseline, 6)
        fields[f"limit_{c.factor}"] = round(c.threshold, 6)
        fields[f"jump_{c.factor}"] = c.jump
    return Point("water_change", tags, fields, at)


def _water_point(result: Any, ctx: SourceContext, tags: Mapping[str, str], at: datetime) -> Point:
    fields: dict[str, float | int | str | bool] = {
        "grade": result.grade,
        "label": result.label,
        "quality": result.grade_name,
        "worse_than_v": result.grade == 6,
    }
    if result.main_pollutants:
        fields["main_pollutants"] = ",".join(result.main_pollutants)
        for f in result.main_pollutants:
            m = result.items[f].multiple
            if m is not None:
                fields[f"multiple_{f}"] = round(m, 4)
    if ctx.target_class is not None:
        # rules.water.compliance's target, meets and classes_worse, without the list of items
        # worse than the target (not written): classes worse = max(0, grade − target)
        target = parse_class(ctx.target_class)
        worse = max(0, result.grade - target)
        fields["target"] = target
        fields["meets"] = worse == 0
        fields["classes_worse"] = worse
    return Point("water_class", tags, fields, at)


# ----------------------------------------------------------------------------- emissions


def _emission(
    st: dict[str, Any], sample: Sample, ctx: SourceContext, valid: dict[str, float], ts: float
) -> list[Point]:
    interval = sample.interval
    if interval == "day":
        return _emission_day_checks(valid, {}, sample, ctx, sample.time)
    if interval == "hour":
        if ts % 3600:
            raise InvalidReading(
                "hourly samples are labelled with a whole hour", factor="time", value=sample.time
            )
        h_end = int(ts) // 3600
        _check_late(st, "last_h", h_end, LATENESS_HOURS, sample)
        st["last_h"] = max(h_end, st.get("last_h", h_end))
        out = _emission_hour_checks(valid, {}, sample, ctx, from_epoch_hours(h_end))
        return out + _emission_day_add(st, sample, ctx, h_end, valid)
    # minute / real-time data → hourly means with validity (≥ 45 valid minutes, HJ 212-2017
    # 附录D). A minute sample is labelled by its end, a real-time value by its instant.
    start_ts = ts - 60.0 if interval == "min" else ts
    h_start = int(start_ts // 3600)
    _check_late(st, "last_h", h_start, LATENESS_HOURS, sample)
    rule = MinuteRule.WASTEWATER if ctx.wastewater else MinuteRule.FLUE_GAS
    avg = HourlyAverage(rule=rule)
    hours: dict[str, dict[str, Any]] = st.setdefault("em_hours", {})
    hstate = hours.get(str(h_start))
    if hstate is None:
        hstate = hours[str(h_start)] = {}
    # written straight into HourlyAverage's documented state (rules.emission.HourState: readings
    # by second of the hour → [value, flag]); value and flag were validated by _split, and the
    # offset lies in the hour by construction — the same state HourlyAverage.add would build
    offset = str(int(start_ts - h_start * 3600))
    for f, (v, flag) in sample.values.items():
        if v is None:
            continue
        fs = hstate.get(f)
        if fs is None:
            fs = hstate[f] = avg.initialise(f, from_epoch_hours(h_start))
        fs["readings"][offset] = [float(v), flag]
    last_prev: int | None = st.get("last_h")
    last = h_start if last_prev is None or h_start > last_prev else last_prev
    st["last_h"] = last
    opened: list[int] = st.setdefault("em_open", [])
    done: list[int] = st.setdefault("em_done", [])
    points: list[Point] = []
    # an hour closes when a sample of a later hour arrives; a closed hour is re-emitted when a
    # late minute of it arrives (same ids, corrected values)
    if h_start in done:
        points += _emission_hour(st, hstate, avg, sample, ctx, h_start)
    elif h_start not in opened:
        opened.append(h_start)
    if opened and min(opened) < last:
        for hh in sorted(x for x in opened if x < last):
            points += _emission_hour(st, hours[str(hh)], avg, sample, ctx, hh)
            done.append(hh)
            opened.remove(hh)
    if last != last_prev:
        done[:] = [x for x in done if x >= last - LATENESS_HOURS]
        for k in [k for k in hours if int(k) < last - LATENESS_HOURS]:
            del hours[k]
    return points


def _emission_hour(
    st: dict[str, Any],
    hstate: Mapping[str, Any],
    avg: HourlyAverage,
    sample: Sample,
    ctx: SourceContext,
    h_start: int,
) -> list[Point]:
    h_end = h_start + 1  # envwatch labels an hour by its end
    valid: dict[str, float] = {}
    counts: dict[str, int] = {}
    extra: dict[str, float | int | str | bool] = {}
    for f in sorted(hstate):
        res = avg.result(hstate[f])
        if res.valid and res.mean is not None:
            valid[f] = res.mean
        extra[f"valid_minutes_{f}"] = res.valid_minutes
        for flag, n in res.invalid_counts.items():
            counts[flag.value] = counts.get(flag.value, 0) + n
    for k in sorted(counts):
        extra[f"flag_{k}"] = counts[k]
    points = _emission_hour_checks(valid, extra, sample, ctx, from_epoch_hours(h_end))
    points += _emission_day_add(st, sample, ctx, h_end, valid)
    return points


def _o2_correct(
    valid: Mapping[str, float], ctx: SourceContext, fields: dict[str, float | int | str | bool]
) -> dict[str, float]:
    """折算: C × (21 − O2ref)/(21 − O2meas) (GB 13271-2014 式(1), HJ 212-2017 附录D) for the gas
    factors, with the hourly O2 mean; nothing for wastewater or without a reference O2."""
    o2 = valid.get("o2")
    corrected: dict[str, float] = {}
    if ctx.reference_o2 is None or o2 is None or ctx.wastewater:
        return corrected
    for f in CORRECTED_FACTORS:
        v = valid.get(f)
        if v is None:
            continue
        try:
            c = o2_corrected(v, o2_measured=o2, o2_reference=ctx.reference_o2)
        except RulesError:
            continue  # O2 ≥ 21 % or negative: no correction possible (value kept uncorrected)
        corrected[f] = c
        fields[f"{f}_zs"] = round(c, 4)  # HJ 212 -Zs
    return corrected


def _emission_tags(sample: Sample) -> dict[str, str]:
    return _tags("locality", sample.locality, "source", sample.source)


def _exceedance_point(
    sample: Sample,
    factor: str,
    period: str,
    at: datetime,
    fields: dict[str, float | int | str | bool],
) -> Point:
    return Point(
        "exceedance",
        _tags(
            "kind",
            sample.kind,
            "locality",
            sample.locality,
            "source",
            sample.source,
            "factor",
            factor,
            "period",
            period,
        ),
        fields,
        at,
    )


def _permit_exceedances(
    valid: Mapping[str, float],
    corrected: Mapping[str, float],
    sample: Sample,
    ctx: SourceContext,
    at: datetime,
    period: str,
    verdict: dict[str, float | int | str | bool],
) -> dict[str, dict[str, float | int | str | bool]]:
    """Permit-limit exceedances of the limits judged on ``period`` (hour/day), by factor; every
    judged value (within or above) is also entered in ``verdict``."""
    out: dict[str, dict[str, float | int | str | bool]] = {}
    for f, limit in ctx.limits.items():
        if limit.basis.value != period:
            continue
        v = corrected.get(f, valid.get(f))
        if v is None:
            continue
        check = check_permit(limit, v)
        if check.limit is not None:
            _judged(verdict, f, round(v, 4), float(check.limit), limit.source or "permit")
        if check.exceeded:
            fields: dict[str, float | int | str | bool] = {
                "value": round(v, 4),
                "limit": float(check.limit or 0.0),
                "standard": limit.source or "permit",
                "corrected": f in corrected,
            }
            if check.multiple is not None:
                fields["multiple"] = round(check.multiple, 4)
            out[f] = fields
    return out


def _emission_hour_checks(
    valid: Mapping[str, float],
    extra: Mapping[str, float | int | str | bool],
    sample: Sample,
    ctx: SourceContext,
    at: datetime,
) -> list[Point]:
    fields: dict[str, float | int | str | bool] = {f: round(v, 4) for f, v in valid.items()}
    corrected = _o2_correct(valid, ctx, fields)
    fields.update(extra)
    # an hour whose every value is flagged (maintenance, faults) has no mean to write: the flags
    # are in the sample's reading and the day's data quality
    points = [Point("emission_hour", _emission_tags(sample), fields, at)] if fields else []
    verdict: dict[str, float | int | str | bool] = {}
    for f, ex in _permit_exceedances(valid, corrected, sample, ctx, at, "hour", verdict).items():
        points.append(_exceedance_point(sample, f, "hour", at, ex))
    if verdict:
        tags = _verdict_tags(sample.kind, sample.locality, sample.source, "hour")
        points.append(Point("verdict", tags, verdict, at))
    return points


def _emission_day_checks(
    valid: Mapping[str, float],
    extra: Mapping[str, float | int | str | bool],
    sample: Sample,
    ctx: SourceContext,
    at: datetime,
) -> list[Point]:
    """Daily values: the emission_day point, day-basis permit limits and, for a wastewater
    treatment plant, the GB 18918-2002 class of its daily means (表1, 日均值)."""
    fields: dict[str, float | int | str | bool] = {f: round(v, 4) for f, v in valid.items()}
    corrected = _o2_correct(valid, ctx, fields)
    fields.update(extra)
    verdict: dict[str, float | int | str | bool] = {}
    found = _permit_exceedances(valid, corrected, sample, ctx, at, "day", verdict)
    if ctx.effluent_class is not None and ctx.wastewater:
        check = check_effluent(
            {f: v for f, v in valid.items() if f in _EFFLUENT_KEYS},
            ctx.effluent_class,
            built=ctx.plant_built or DEFAULT_PLANT_BUILT,
            local=ctx.local_limits,
        )
        fields["effluent_required"] = check.required.value
        # the worst per-item class; "劣三级" (worse than class 3) when an item meets none
        fields["effluent_class"] = check.achieved.value if check.achieved else "劣三级"
        fields["effluent_meets"] = not check.exceeded
        for item in check.items.values():
            if item.limit is None or item.factor == "ph":
                continue
            known_limit = verdict.get(item.factor + "_limit")
            if isinstance(known_limit, float) and known_limit <= item.limit:
                continue  # the permit's limit is the stricter one: it stands
            _judged(verdict, item.factor, round(item.value, 4), float(item.limit), item.source)
        for item in check.exceeded:
            limit = item.limit if item.limit is not None else 0.0
            known = found.get(item.factor)
            if known is not None and float(known["limit"]) <= limit:
                continue  # the permit's limit is the stricter one: it stands
            ex: dict[str, float | int | str | bool] = {
                "value": round(item.value, 4),
                "limit": float(limit),
                "standard": item.source,
                "corrected": False,
            }
            if item.multiple is not None:
                ex["multiple"] = round(item.multiple, 4)
            found[item.factor] = ex
    points = [Point("emission_day", _emission_tags(sample), fields, at)] if fields else []
    for f in sorted(found):
        points.append(_exceedance_point(sample, f, "day", at, found[f]))
    if verdict:
        tags = _verdict_tags(sample.kind, sample.locality, sample.source, "day")
        points.append(Point("verdict", tags, verdict, at))
    return points


_EFFLUENT_KEYS: Final = frozenset(
    {"cod", "bod5", "ss", "oil", "las", "tn", "nh3n", "tp", "ph", "fecal_coliform", "temp"}
)


def _emission_day_add(
    st: dict[str, Any], sample: Sample, ctx: SourceContext, h_end: int, valid: Mapping[str, float]
) -> list[Point]:
    """File a valid hourly mean into its Beijing day; emit the day when it is complete (its hour
    labelled 24:00 arrived), closed (a later day began) or already emitted (a correction)."""
    d, slot = _day_of_hour(h_end)
    days: dict[str, list[dict[str, float] | None]] = st.setdefault("em_days", {})
    hours = days.setdefault(str(d), [None] * 24)
    hours[slot] = dict(valid)
    done: list[int] = st.setdefault("em_days_done", [])
    cur: int | None = st.get("em_day")
    todo: list[int] = []
    if cur is None or d > cur:
        if cur is not None and cur not in done and str(cur) in days:
            todo.append(cur)
        st["em_day"] = cur = d
        done[:] = [x for x in done if x >= d - _KEEP_DAYS]
        for k in [k for k in days if int(k) < d - _KEEP_DAYS]:
            del days[k]
    if slot == 23 or d < cur or d in done:
        todo.append(d)
    points: list[Point] = []
    for dd in todo:
        points += _emission_day(days[str(dd)], sample, ctx, dd)
        if dd not in done:
            done.append(dd)
    return points


def _emission_day(
    hours: Sequence[Mapping[str, float] | None], sample: Sample, ctx: SourceContext, d: int
) -> list[Point]:
    """Daily mean per factor from ≥ 20 valid hourly means (HJ 212-2017 附录D, HJ/T 75-2007)."""
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for row in hours:
        if row is None:
            continue
        for f, v in row.items():
            sums[f] = sums.get(f, 0.0) + v
            counts[f] = counts.get(f, 0) + 1
    valid = {f: s / counts[f] for f, s in sums.items() if counts[f] >= MIN_VALID_HOURS}
    extra: dict[str, float | int | str | bool] = {
        f"valid_hours_{f}": counts[f] for f in sorted(counts)
    }
    return _emission_day_checks(valid, extra, sample, ctx, _day_start(d + 1))


# ----------------------------------------------------------------------------- other monitors


def _monitor(
    st: dict[str, Any], sample: Sample, ctx: SourceContext, valid: dict[str, float], ts: float
) -> list[Point]:
    """Other monitors. Every judged value is entered in a ``verdict`` point (the locality stage's
    explicit within/exceeded observation); values above a limit are also ``exceedance`` points."""
    points: list[Point] = []
    instant: dict[str, float | int | str | bool] = {}
    for f, v in valid.items():
        if f == "bypass_open":
            # any opening of a bypass (旁路) is reported: 1 open, 0 closed
            _judged(instant, f, v, 0.0, "bypass opened")
            if v >= 0.5:
                points.append(
                    _exceedance_point(
                        sample,
                        f,
                        "instant",
                        sample.time,
                        {"value": v, "limit": 0.0, "multiple": 0.0, "standard": "bypass opened"},
                    )
                )
            continue
        if f == "vapour_recovery":
            # 1 = the vapour-recovery system works; anything else is a fault or a stop
            # (envwatch's reading of the HJ 212-2017 equipment states, docs/configuration.md)
            _judged(instant, f, v, 1.0, "vapour recovery working = 1")
            continue
        if f == "dustfall":
            points += _dustfall(st, sample, ctx, v, ts)
            continue
        if f == "noise_leq" and ctx.zone_class is not None:
            points += _noise(sample, ctx.zone_class, v)
            continue
        limit = ctx.limits.get(f)
        if limit is None:
            continue
        check = check_permit(limit, v)
        if check.limit is not None:
            _judged(instant, f, v, float(check.limit), limit.source or "limit")
        if check.exceeded:
            fields: dict[str, float | int | str | bool] = {
                "value": v,
                "limit": float(check.limit or 0.0),
                "standard": limit.source or "limit",
            }
            if check.multiple is not None:
                fields["multiple"] = round(check.multiple, 4)
            points.append(_exceedance_point(sample, f, "instant", sample.time, fields))
    if instant:
        period = "hour" if sample.interval == "hour" else "instant"
        tags = _verdict_tags(sample.kind, sample.locality, sample.source, period)
        points.append(Point("verdict", tags, instant, sample.time))
    return points


def _noise(sample: Sample, zone_class: str, v: float) -> list[Point]:
    """An equivalent sound level (Leq) against the GB 3096-2008 表1 limit of the monitor's
    声环境功能区 class for the period its interval lies in (昼间 06:00–22:00, 夜间 22:00–06:00).
    Judging each hourly Leq (not the whole day or night period's Ld/Ln) is envwatch's choice for
    online monitors, so an alert can follow the hours."""
    from rules.standards.gb3096 import noise_limit

    limit, name = noise_limit(zone_class, sample.time)
    night = name == "night"
    period = "night_time" if night else "day_time"
    std = f"GB 3096-2008 表1 {zone_class}类 {'夜间' if night else '昼间'}"
    verdict: dict[str, float | int | str | bool] = {}
    _judged(verdict, "noise_leq", v, float(limit), std)
    tags = _verdict_tags(sample.kind, sample.locality, sample.source, period)
    points = [Point("verdict", tags, verdict, sample.time)]
    if v > limit:
        fields: dict[str, float | int | str | bool] = {
            "value": v,
            "limit": float(limit),
            "multiple": round((v - limit) / limit, 4),
            "standard": std,
        }
        points.append(_exceedance_point(sample, "noise_leq", period, sample.time, fields))
    return points


def _dustfall(
    st: dict[str, Any], sample: Sample, ctx: SourceContext, v: float, ts: float
) -> list[Point]:
    """Dustfall (降尘量) is judged as the mean of a Beijing calendar month's samples against
    7 t/(month·km²) (DUSTFALL_LIMIT, plans) or the monitor's configured limit. Every sample
    re-emits its month's mean (same id); the exceedance while the month's mean is above."""
    sec = math.ceil(ts)
    day = _date(_day_of_instant(ts))
    month = day.year * 12 + day.month - 1
    months: dict[str, dict[str, float]] = st.setdefault("dustfall", {})
    latest = max([month, *(int(k) for k in months)])
    if month < latest - 1:
        raise OutsideWindow("dustfall", sample.time, "more than one month before the latest")
    samples = months.setdefault(str(month), {})
    samples[str(sec)] = v
    for k in [k for k in months if int(k) < latest - 1]:
        del months[k]
    mean = sum(samples[k] for k in sorted(samples, key=int)) / len(samples)
    start = datetime(day.year, day.month, 1, tzinfo=BEIJING)
    points = [
        Point(
            "aggregate",
            _tags(
                "kind",
                "monitor",
                "locality",
                sample.locality,
                "source",
                sample.source,
                "period",
                "month",
            ),
            {"dustfall": round(mean, 4), "samples": len(samples)},
            start,
        )
    ]
    configured = ctx.limits.get("dustfall")
    limit = configured.upper if configured is not None and configured.upper is not None else None
    source = configured.source if configured is not None and limit is not None else ""
    if limit is None:
        limit, source = DUSTFALL_LIMIT, "000_d6d679181568297b.txt#L171 平均降尘量≤7吨/月·平方公里"
    verdict: dict[str, float | int | str | bool] = {}
    _judged(verdict, "dustfall", round(mean, 4), float(limit), source or "limit")
    points.append(
        Point(
            "verdict",
            _verdict_tags("monitor", sample.locality, sample.source, "month"),
            verdict,
            start,
        )
    )
    if mean > limit:
        points.append(
            _exceedance_point(
                sample,
                "dustfall",
                "month",
                start,
                {
                    "value": round(mean, 4),
                    "limit": float(limit),
                    "multiple": round((mean - limit) / limit, 4),
                    "standard": source or "limit",
                },
            )
        )
    return points


# ----------------------------------------------------------------------------- data quality


def _quality_runs(
    st: dict[str, Any], sample: Sample, ctx: SourceContext, valid: dict[str, float], ts: float
) -> Point | None:
    """Constant-value and zero-value runs (数据恒值/零值; standards.md §8 fraud cues).

    A factor's run is the number of consecutive samples (in time order) with the identical valid
    value; a zero run is a run of the value 0. A duplicate or an older (late) sample neither
    extends nor breaks a run. State: ``rv`` = the previous sample's valid values, ``rn`` = run
    lengths ≥ 2 by factor.
    """
    last_t = st.get("runs_t")
    if last_t is not None and ts <= last_t:
        return None
    st["runs_t"] = ts
    prev: dict[str, float] = st.get("rv") or {}
    runs: dict[str, int] = st.get("rn") or {}
    same = prev.items() & valid.items()  # factors whose value did not change (C-level)
    runs = {f: runs.get(f, 1) + 1 for f, _v in same if f not in STATUS_FACTORS} if same else {}
    st["rv"] = valid
    st["rn"] = runs
    need = ctx.constant_run
    if not runs or max(runs.values()) < need:
        return None
    fields: dict[str, float | int | str | bool] = {}
    for f in sorted(runs):
        n = runs[f]
        if n >= need:
            fields[f"constant_{f}"] = n
            if valid[f] == 0:
                fields[f"zero_{f}"] = n
    return Point("data_quality", _source_tags(sample).quality_run, fields, sample.time)


def _quality_day(
    st: dict[str, Any],
    sample: Sample,
    ctx: SourceContext,
    valid: dict[str, float],
    bad: dict[str, str],
    ts: float,
) -> list[Point]:
    """Transmission and valid-data rates per Beijing day (数据传输率/有效率, standards.md §8).

    A sample is a slot of its day keyed by its time: a duplicate counts once, a correction
    replaces (the counters are updated by difference). The day's point (one series, its last
    write holds the day's figures) is written for every hourly and daily sample; for sub-hourly
    samples at whole hours and for samples older than the day's latest (late); and for the
    previous day when a new day begins (its final figures even when its last samples are
    missing). Writing it for every hourly sample keeps the last write of the day equal for a
    clean and a late/duplicated stream of the same samples."""
    d = _day_of_instant(ts)
    days: dict[str, dict[str, Any]] = st.setdefault("q_days", {})
    cur: int | None = st.get("q_day")
    if cur is not None and d < cur - _KEEP_DAYS:
        return []  # older than any window: not counted (the evaluation raised already)
    points: list[Point] = []
    if cur is None or d > cur:
        prev = days.get(str(cur))
        if prev is not None:
            points.append(_quality_point(prev, sample, ctx, cur))  # type: ignore[arg-type]
        st["q_day"] = cur = d
        for k in [k for k in days if int(k) < d - _KEEP_DAYS]:
            del days[k]
    day = days.get(str(d))
    if day is None:
        day = days[str(d)] = {"s": {}, "n": 0, "ok": 0, "flags": {}, "last": ts}
    slots: dict[str, list[Any]] = day["s"]
    key = str(math.ceil(ts))
    # [all values valid (0/1), invalid flags of its values]
    ok = 1 if not bad and len(valid) == len(sample.values) else 0
    invalid = sorted(bad.values()) if bad else []
    old = slots.get(key)
    if old is None or old[0] != ok or old[1] != invalid:
        flags: dict[str, int] = day["flags"]
        if old is None:
            day["n"] += 1
        else:
            day["ok"] -= old[0]
            for x in old[1]:
                flags[x] -= 1
        day["ok"] += ok
        for x in invalid:
            flags[x] = flags.get(x, 0) + 1
        slots[key] = [ok, invalid]
    late = ts < day["last"]
    if not late:
        day["last"] = ts
    if d == cur and not late and ts % 3600 and sample.interval not in ("hour", "day"):
        return points  # sub-hourly: the day's figures at whole hours (and for late samples)
    points.append(_quality_point(day, sample, ctx, d))
    return points


def _quality_point(day: dict[str, Any], sample: Sample, ctx: SourceContext, d: int) -> Point:
    step_s = ctx.expected_interval_s or _INTERVAL_S.get(sample.interval, 3600)
    expected = max(1, 86400 // step_s)
    received: int = day["n"]
    n_valid: int = day["ok"]
    last: float = day["last"]
    fields: dict[str, float | int | str | bool] = {
        "expected": expected,
        "received": received,
        "valid": n_valid,
        "transmission_rate": _rate(received, expected),
        "valid_rate": _rate(n_valid, received),
        "last_seen": _iso_utc(last),
    }
    flags: dict[str, int] = day["flags"]
    if flags:
        for x in sorted(flags):
            if flags[x]:
                fields[f"flag_{x}"] = flags[x]
    return Point("data_quality", _source_tags(sample).quality_day, fields, _day_start(d))


_RATES: dict[tuple[int, int], float] = {}


def _rate(n: int, of: int) -> float:
    """``round(min(1.0, n / of), 4)``, memoised: the counts of a day are small integers shared by
    every source with the same interval, and float ``round`` to digits is slow."""
    got = _RATES.get((n, of))
    if got is None:
        if len(_RATES) > 100_000:
            _RATES.clear()
        got = _RATES[(n, of)] = round(min(1.0, n / of), 4)
    return got


def city_tags(locality: str) -> dict[str, str]:
    """Tags of a locality's real-time city AQI point (rules.city)."""
    return _tags("locality", locality, "source", "city", "period", "hour")
