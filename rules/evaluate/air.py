"""Air quality stations: moving means (GB 3095 表4), the real-time AQI (HJ 633), GB 3095 表1
1-hour exceedances per hour; daily means, the daily AQI, 24-hour and daily max 8-hour O3
exceedances per Beijing day (rules.airstats, rules.aqi)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Final, cast

from rules import aqi as aqi_mod
from rules.airstats import DailyO3Max8h, StationDay
from rules.beijing import (
    FIXED_FROM_H,
    UTC8_H,
    date_of_day,
    day_of_hour,
    day_start,
    first_hour_of_day,
)
from rules.errors import InvalidReading, OutsideWindow
from rules.evaluate.common import (
    AIR_FACTORS,
    KEEP_DAYS,
    LATENESS_HOURS,
    Point,
    Sample,
    SourceContext,
    hour_dt,
    point,
    tags,
    verdict_tags,
)
from rules.standards import gb3095
from rules.standards.gb3095 import Grade, Period
from rules.standards.hj633 import HJ633_2012, HJ633_2026, IAQI_POINTS

__all__ = ["RING", "AirState", "air", "aqi_point"]

#: GB 3095 表1 1-hour limits exist for these (PM has none); (index in AIR_FACTORS, name).
HOURLY_LIMITED: Final = ((2, "so2"), (3, "no2"), (4, "co"), (5, "o3"))
#: GB 3095 表1 24-hour limits.
DAILY_LIMITED: Final = ("so2", "no2", "co", "pm10", "pm25")
#: Hours of air data held: a sample LATENESS_HOURS late may be the last hour of its day, whose
#: first hour and whose 24-h window reach 23 hours further back.
RING: Final = LATENESS_HOURS + 24
#: Epoch hour of the HJ 633-2026 switch (2026-03-01 00:00 Beijing; rules.standards.hj633).
SWITCH_2026_H: Final = int(gb3095.SWITCH_2026.timestamp()) // 3600


@dataclass(slots=True)
class AirState:
    """An air station's hours: ``cols`` = one ring of ``RING`` hourly values per factor of
    AIR_FACTORS (index = epoch hour mod ``RING``), ``ring_h`` = the epoch hour each slot holds
    (-1: none). When the latest hour ``last_h`` advances, the slots of skipped hours are cleared,
    so every slot of the last ``RING`` hours holds its own hour or nothing and a window is a plain
    slice. ``day``: the latest Beijing day number; ``done``: the days already evaluated."""

    last_h: int
    ring_h: list[int]
    cols: list[list[float | None]]
    done: list[int]
    day: int

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> AirState:
        return cls(d["last_h"], d["ring_h"], d["cols"], d["done"], d["day"])


def air(
    st: AirState | None,
    sample: Sample,
    ctx: SourceContext,
    valid: dict[str, float],
    ts: float,
    points: list[Point],
) -> AirState | None:
    """Append the points of an air sample to ``points``; return the station's new state (the
    same object, updated in place, once it exists; hourly samples only)."""
    if sample.interval != "hour":
        # sub-hourly air data are aggregated upstream; the reading point keeps them
        return st
    if ts % 3600:
        raise InvalidReading(
            "hourly air samples are labelled with a whole hour", factor="time", value=sample.time
        )
    h = int(ts) // 3600
    atags = _air_tags(sample.locality, sample.source)
    # (Beijing day number, slot) of the hour (rules.beijing.day_of_hour, inlined)
    d, slot = divmod(h + UTC8_H - 1, 24) if h >= FIXED_FROM_H else day_of_hour(h)
    if st is None:
        st = AirState(h, [-1] * RING, [[None] * RING for _ in AIR_FACTORS], [], d)
        ring_h = st.ring_h
        cols = st.cols
        last = h
    else:
        last = st.last_h
        if h < last - LATENESS_HOURS:
            raise OutsideWindow(
                sample.source,
                sample.time,
                f"more than {LATENESS_HOURS} h before the latest sample of the source",
            )
        ring_h = st.ring_h
        cols = st.cols
        done = st.done
        cur = st.day
        if d > cur:
            # a new day begins: the previous one is closed — evaluate it before its hours can
            # leave the ring (unless its last hour already did so)
            if cur not in done:
                _air_day(ring_h, cols, cur, atags, ctx, points)
                done.append(cur)
            st.day = d
            done[:] = [x for x in done if x >= d - KEEP_DAYS]
        if h > last:
            if h > last + 1:
                for k in range(max(last + 1, h - RING + 1), h):  # hours skipped: no data
                    i = k % RING
                    ring_h[i] = -1
                    for col in cols:
                        col[i] = None
            last = h
    st.last_h = last
    i = h % RING
    ring_h[i] = h
    get = valid.get
    c0, c1, c2, c3, c4, c5 = cols
    c0[i] = get("pm25")
    c1[i] = get("pm10")
    c2[i] = get("so2")
    c3[i] = get("no2")
    c4[i] = get("co")
    c5[i] = get("o3")

    _air_hour(cols, h, atags, ctx, points, full=True)
    # a late or corrected hour: every later hour whose 24-h / 8-h window holds it is re-emitted
    if h < last:
        for hh in range(h + 1, min(last, h + 23) + 1):
            if ring_h[hh % RING] == hh:
                _air_hour(cols, hh, atags, ctx, points, full=False)
    # the day of this hour: when complete (its last hour, labelled 00:00, arrived), closed (a
    # later day has begun: a late sample) or already published (a correction)
    done = st.done
    if slot == 23 or d < st.day or d in done:
        _air_day(ring_h, cols, d, atags, ctx, points)
        if d not in done:
            done.append(d)
    return st


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
        self.moving = tags("kind", "air", "locality", loc, "source", src, "period", "moving")
        self.verdict_hourly = verdict_tags("air", loc, src, "hourly")
        self.verdict_24h = verdict_tags("air", loc, src, "24h")
        self.verdict_8h = verdict_tags("air", loc, src, "8h")
        self.aqi_hour = tags("locality", loc, "source", src, "period", "hour")
        self.aqi_day = tags("locality", loc, "source", src, "period", "day")
        self.day = tags("kind", "air", "locality", loc, "source", src, "period", "day")
        self.loc = loc
        self.src = src
        self._exceedance: dict[tuple[str, str], dict[str, str]] = {}

    def exceedance(self, factor: str, period: str) -> dict[str, str]:
        got = self._exceedance.get((factor, period))
        if got is None:
            got = self._exceedance[(factor, period)] = tags(
                "kind", "air", "locality", self.loc, "source", self.src,
                "factor", factor, "period", period,
            )  # fmt: skip
        return got


@lru_cache(maxsize=100_000)
def _air_tags(loc: str, src: str) -> _AirTags:
    return _AirTags(loc, src)


def _grade(ctx: SourceContext) -> Grade:
    return Grade.I if ctx.area_grade == 1 else Grade.II


SWITCH_FINAL_H: Final = int(gb3095.SWITCH_FINAL.timestamp()) // 3600


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
HOURLY_LIMITS: Final = tuple({g: _hourly_limits_of(e, g) for g in Grade} for e in gb3095.EDITIONS)


#: HOURLY_LIMITS with the verdict's field names, by [edition][area grade I (True) or II (False)]:
#: (index, factor, "<factor>_limit", "<factor>_standard", limit, edition, clause)
_HOURLY_ROWS: Final = tuple(
    {
        grade is Grade.I: tuple(
            (idx, f, f + "_limit", f + "_standard", limit, edition, clause)
            for idx, f, limit, edition, clause in rows
        )
        for grade, rows in by_grade.items()
    }
    for by_grade in HOURLY_LIMITS
)


def _window(col: list[float | None], end: int, n: int) -> list[float | None]:
    """The ring slots of the ``n`` hours labelled ``end − n + 1`` … ``end`` (hour order)."""
    b = end % RING + 1
    a = b - n
    return col[a:b] if a >= 0 else col[a:] + col[:b]


def round3(x: float) -> float:
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
_IAQI_2012: Final = aqi_mod.realtime_iaqi_functions(False)
_IAQI_2026: Final = aqi_mod.realtime_iaqi_functions(True)
_HJ633_2026: Final = HJ633_2026.name


def realtime_fields(iaqis: list[int], edition: str) -> dict[str, float | int | str | bool]:
    """The fields :func:`aqi_point` writes for a real-time AQI that rules.aqi.realtime_iaqis
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
    points: list[Point],
    *,
    full: bool,
) -> None:
    """Points of the hour labelled ``h``: moving means (always), real-time AQI and GB 3095 1-h
    exceedances (``full``, or when the 2012 SO2 fall-back makes the AQI depend on the 24-h mean)."""
    at = hour_dt(h)
    # moving means: 24 h for PM and SO2 (≥ 20 hours, GB 3095 表4), 8 h for O3 (≥ 6 hours, 表4).
    # Each window is a slice of the ring summed in hour order by C-level calls (filter(None, …)
    # drops the missing hours and the zeros, which add nothing): the same float whatever the
    # arrival order. A running sum (add the new hour, subtract the one leaving) would not be:
    # floating-point addition is not associative, and the means are published to 3 decimals. A
    # running count would be exact, but updating it in Python costs more than counting a
    # 24-slot slice in C (bench/bench_engine.py, docs/evaluations.md).
    agg: dict[str, float | int | str | bool] = {}
    b = h % RING + 1
    a = b - 24
    so2_24h: float | None = None
    if a >= 0:
        w0, w1, w2 = cols[0][a:b], cols[1][a:b], cols[2][a:b]
    else:
        c0, c1, c2 = cols[0], cols[1], cols[2]
        w0, w1, w2 = c0[a:] + c0[:b], c1[a:] + c1[:b], c2[a:] + c2[:b]
    # the present values of a window are counted as the non-zero ones (filter: a C-level truth
    # test) plus the zeros — list.count(None) compares every float with None the slow way
    nz = list(filter(None, w0))
    n = len(nz)
    if n != 24:
        n += w0.count(0.0)
    if n >= 20:
        agg["pm25_24h"] = round3(sum(nz) / n)
    nz = list(filter(None, w1))
    n = len(nz)
    if n != 24:
        n += w1.count(0.0)
    if n >= 20:
        agg["pm10_24h"] = round3(sum(nz) / n)
    nz = list(filter(None, w2))
    n = len(nz)
    if n != 24:
        n += w2.count(0.0)
    if n >= 20:
        agg["so2_24h"] = so2_24h = round3(sum(nz) / n)
    a = b - 8
    c5 = cols[5]
    w5 = c5[a:b] if a >= 0 else c5[a:] + c5[:b]
    nz = list(filter(None, w5))
    n = len(nz)
    if n != 8:
        n += w5.count(0.0)
    if n >= 6:
        agg["o3_8h"] = round3(sum(nz) / n)
    if agg:
        points.append(point(Point, ("aggregate", tags.moving, agg, at)))
    i = b - 1
    row = [cols[0][i], cols[1][i], cols[2][i], cols[3][i], cols[4][i], cols[5][i]]
    so2 = row[2]
    new = h >= SWITCH_2026_H
    # HJ 633-2012 表1 注2: SO2 1-h > 800 µg/m³ → SO2 IAQI from the 24-h mean
    fallback = not new and so2 is not None and so2 > 800.0
    if not full and not fallback:
        return
    # the common case of rules.aqi.realtime_aqi: every value present (split has checked they are
    # finite non-negative floats) and within its table; anything else takes the general path
    iaqis: list[int] | None = None
    if not fallback and None not in row:
        f0, f1, f2, f3, f4, f5 = _IAQI_2026 if new else _IAQI_2012
        r0, r1, r2, r3, r4, r5 = cast("list[float]", row)
        got = [f0(r0), f1(r1), f2(r2), f3(r3), f4(r4), f5(r5)]
        if None not in got:
            iaqis = cast("list[int]", got)
    if iaqis is not None:
        fields = realtime_fields(iaqis, _HJ633_2026 if new else _HJ633_2012)
        points.append(point(Point, ("aqi", tags.aqi_hour, fields, at)))
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
        return
    verdict: dict[str, float | int | str | bool] = {}
    e = 0 if h < SWITCH_2026_H else 1 if h < SWITCH_FINAL_H else 2
    for idx, f, f_limit, f_standard, limit, edition, clause in _HOURLY_ROWS[e][ctx.area_grade == 1]:
        v = row[idx]
        if v is None:
            continue
        # every judged value, within or above its limit: the locality stage's explicit verdict
        verdict[f] = v
        verdict[f_limit] = limit
        verdict[f_standard] = clause
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
        points.append(point(Point, ("verdict", tags.verdict_hourly, verdict, at)))


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
DAILY_LIMITS: Final = tuple({g: _daily_limits_of(e, g) for g in Grade} for e in gb3095.EDITIONS)


def _air_day(
    ring_h: list[int],
    cols: list[list[float | None]],
    d: int,
    tags: _AirTags,
    ctx: SourceContext,
    points: list[Point],
) -> None:
    day = date_of_day(d)
    start = day_start(d)
    grade = _grade(ctx)
    # the GB 3095 edition of the day: its 00:00 Beijing (epoch hour) against the switches
    h0 = first_hour_of_day(d) - 1
    limits = DAILY_LIMITS[0 if h0 < SWITCH_2026_H else 1 if h0 < SWITCH_FINAL_H else 2][grade]
    o3_limit = limits[-1][3]
    # HJ 663: a daily max 8-h O3 of fewer than 14 windows is valid anyway when it exceeds the
    # GB 3095 表1 limit of the area grade (160 grade II, 100 grade I)
    agg = StationDay(o3=DailyO3Max8h(limit=o3_limit))
    # the StationDay state ({factor: 24 hour slots}) is the day's slice of each column: every
    # hour of a day that is evaluated lies within the ring's last RING hours (see _air)
    end = h0 + 24
    state = {f: _window(col, end, 24) for f, col in zip(AIR_FACTORS, cols, strict=True)}
    n_hours = sum(1 for k in range(end - 23, end + 1) if ring_h[k % RING] == k)
    res = agg.result(state)
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
