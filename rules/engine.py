"""The per-source evaluation step (pure): one sample in, state updated, result points out.

``step(state, sample, ctx)`` is what the stream worker calls for every sample (streams/agents):
it never reads the clock — the sample's own time drives every window — and it is deterministic,
so a replay of the same samples from the same state produces the same points with the same ids
(the store overwrites, receivers deduplicate).

State per source is a plain JSON-able dict. Hourly values are retained for ``LATENESS_HOURS``
(a late sample inside that horizon re-evaluates its hour, its moving means and its day, and the
corrected points carry the same ids as the originals; older samples raise
:class:`~rules.errors.OutsideWindow` and go to the dead-letter topic).

Points (measurement → what it holds; tags are bounded sets only, architecture.md §4.4):

| measurement    | tags                                  | fields                                       |
|----------------|---------------------------------------|----------------------------------------------|
| reading        | kind, locality, source                | the valid values; ``invalid`` = "f:flag,…"   |
| aqi            | locality, source, period (hour/day)   | aqi, level, category, primary, iaqi_*, …     |
| aggregate      | kind, locality, source, period        | pm25_24h, pm10_24h, o3_8h, daily means …     |
| exceedance     | kind, locality, source, factor, period| value, limit, multiple, standard             |
| water_class    | locality, source, period              | grade, label, target, meets, main_pollutants |
| emission_hour  | locality, source                      | <factor>, <factor>_zs (O2-corrected), valid  |
| data_quality   | kind, locality, source, period        | expected, received, valid, rates, runs       |
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from rules import aqi as aqi_mod
from rules.airstats import StationDay, day_slot
from rules.ambient import exceedance as ambient_exceedance
from rules.emission import HourlyAverage, MinuteRule, PermitLimit, check_permit, o2_corrected
from rules.errors import InvalidReading, NoLimit, OutsideWindow, RulesError
from rules.readings import VALID_FLAGS
from rules.standards.gb3095 import Grade, Period
from rules.standards.hj633 import BEIJING
from rules.water import classify, compliance

#: How far back a late sample may still correct its window (hours). A design choice of envwatch
#: (no standard sets it): HJ 633 publishes a day's AQI by 12:00 the next day, so 48 h covers the
#: publication deadline with margin.
LATENESS_HOURS: Final = 48

#: Consecutive identical (or zero) values that raise a data-quality flag. Default 6 samples:
#: standards.md §8 lists "长期在某一固定值上下小幅波动" as a fraud cue without a number, so the
#: count is configuration (``SourceContext.constant_run``).
DEFAULT_CONSTANT_RUN: Final = 6

AIR_FACTORS: Final = ("pm25", "pm10", "so2", "no2", "co", "o3")
#: GB 3095 表1 1-hour limits exist for these (PM has none).
HOURLY_LIMITED: Final = ("so2", "no2", "co", "o3")
#: GB 3095 表1 24-hour limits.
DAILY_LIMITED: Final = ("so2", "no2", "co", "pm10", "pm25")

_HOUR: Final = timedelta(hours=1)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


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


@dataclass(frozen=True, slots=True)
class Point:
    """One evaluation result: an InfluxDB point and a record for the alert engine."""

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
    """What the catalogue says about a source (built by the caller from rules.config)."""

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


def epoch_hours(at: datetime) -> int:
    return int((at - _EPOCH) // _HOUR)


def from_epoch_hours(h: int) -> datetime:
    return _EPOCH + h * _HOUR


def _valid(values: Mapping[str, tuple[float | None, str]]) -> dict[str, float]:
    return {f: float(v) for f, (v, flag) in values.items() if v is not None and flag in VALID_FLAGS}


def _flags(values: Mapping[str, tuple[float | None, str]]) -> dict[str, str]:
    return {f: flag for f, (_v, flag) in values.items() if flag not in VALID_FLAGS}


def _reading(sample: Sample) -> Point | None:
    fields: dict[str, float | int | str | bool] = dict(_valid(sample.values))
    bad = _flags(sample.values)
    if bad:
        fields["invalid"] = ",".join(f"{f}:{flag}" for f, flag in sorted(bad.items()))
    if not fields:
        return None
    tags = {"kind": sample.kind, "locality": sample.locality, "source": sample.source}
    return Point("reading", tags, fields, sample.time)


# ----------------------------------------------------------------------------- entry point


def step(
    state: dict[str, Any] | None, sample: Sample, ctx: SourceContext
) -> tuple[dict[str, Any], list[Point]]:
    """Evaluate one sample; return the new state and the points it produced or corrected.

    Raises :class:`~rules.errors.RulesError` subclasses for input that cannot be evaluated
    (the caller dead-letters the sample with the error's reason).
    """
    if sample.time.tzinfo is None:
        raise InvalidReading("sample time must be timezone-aware", factor="time", value=sample.time)
    st: dict[str, Any] = state if state is not None else {}
    points: list[Point] = []
    reading = _reading(sample)
    if reading is not None:
        points.append(reading)
    points += _quality_runs(st, sample, ctx)
    if sample.kind == "air":
        points += _air(st, sample, ctx)
    elif sample.kind == "water":
        points += _water(st, sample, ctx)
    elif sample.kind == "emission":
        points += _emission(st, sample, ctx)
    elif sample.kind == "monitor":
        points += _monitor(st, sample, ctx)
    points += _quality_day(st, sample, ctx)
    return st, points


# ----------------------------------------------------------------------------- air


def _hour_label(sample: Sample) -> int:
    t = sample.time
    if (t.minute, t.second, t.microsecond) != (0, 0, 0):
        raise InvalidReading(
            "hourly air samples are labelled with a whole hour", factor="time", value=t
        )
    return epoch_hours(t)


def _check_lateness(st: dict[str, Any], h: int, source: str) -> None:
    last = st.get("last_hour")
    if last is not None and h < last - LATENESS_HOURS:
        raise OutsideWindow(
            source, from_epoch_hours(h), f"more than {LATENESS_HOURS} h before the latest sample"
        )


def _air(st: dict[str, Any], sample: Sample, ctx: SourceContext) -> list[Point]:
    if sample.interval != "hour":
        # sub-hourly air data are aggregated upstream (or by a later version); keep the reading
        return []
    h = _hour_label(sample)
    _check_lateness(st, h, sample.source)
    hours: dict[str, list[float | None]] = st.setdefault("hours", {})
    valid = _valid(sample.values)
    hours[str(h)] = [valid.get(f) for f in AIR_FACTORS]
    last = max(h, st.get("last_hour", h))
    st["last_hour"] = last
    # drop what no late sample can touch any more (keep 24 h more for the moving means)
    horizon = last - LATENESS_HOURS - 24
    for k in [k for k in hours if int(k) < horizon]:
        del hours[k]

    points: list[Point] = []
    # the hour itself and — for a late sample — every later hour whose 24-h/8-h window it is in
    for hh in range(h, min(last, h + 23) + 1):
        if str(hh) in hours:
            points += _air_hour(hours, hh, sample, ctx, moving_only=hh != h)
    # the day(s): the day of this hour when complete or already published, and any earlier day
    # that the arrival of a later day closes
    day, slot = day_slot(from_epoch_hours(h))
    published: list[str] = st.setdefault("days_done", [])
    todo: set[date] = set()
    if slot == 23 or day.isoformat() in published:
        todo.add(day)
    prev_day = st.get("current_day")
    if prev_day is not None and date.fromisoformat(prev_day) < day:
        if prev_day not in published:
            todo.add(date.fromisoformat(prev_day))
        st["current_day"] = day.isoformat()
    elif prev_day is None:
        st["current_day"] = day.isoformat()
    for d in sorted(todo):
        points += _air_day(hours, d, sample, ctx)
        if d.isoformat() not in published:
            published.append(d.isoformat())
    del published[:-4]
    return points


def _window(hours: Mapping[str, list[float | None]], end: int, n: int, idx: int) -> list[float]:
    out: list[float] = []
    for hh in range(end - n + 1, end + 1):
        row = hours.get(str(hh))
        if row is not None:
            v = row[idx]
            if v is not None:
                out.append(v)
    return out


def _air_hour(
    hours: Mapping[str, list[float | None]],
    h: int,
    sample: Sample,
    ctx: SourceContext,
    *,
    moving_only: bool,
) -> list[Point]:
    at = from_epoch_hours(h)
    row = hours[str(h)]
    loc, src = sample.locality, sample.source
    points: list[Point] = []
    # moving means: 24 h for PM (≥ 20 hours, GB 3095 表4), 8 h for O3 (≥ 6 hours, 表4)
    agg: dict[str, float | int | str | bool] = {}
    for name, idx, n, need in (
        ("pm25_24h", 0, 24, 20),
        ("pm10_24h", 1, 24, 20),
        ("so2_24h", 2, 24, 20),
        ("o3_8h", 5, 8, 6),
    ):
        vals = _window(hours, h, n, idx)
        if len(vals) >= need:
            agg[name] = round(sum(vals) / len(vals), 3)
    if agg:
        points.append(
            Point(
                "aggregate",
                {"kind": "air", "locality": loc, "source": src, "period": "moving"},
                agg,
                at,
            )
        )
    if moving_only:
        return points
    conc: dict[str, float | None] = dict(zip(AIR_FACTORS, row, strict=True))
    if "so2_24h" in agg:
        conc["so2_24h"] = float(agg["so2_24h"])
    result = aqi_mod.realtime_aqi(conc, at=at)
    points.append(_aqi_point(result, loc, src, "hour", at))
    grade = Grade.I if ctx.area_grade == 1 else Grade.II
    for f in HOURLY_LIMITED:
        v = conc.get(f)
        if v is None:
            continue
        ex = ambient_exceedance(f, v, period=Period.HOURLY, at=at, grade=grade)
        if ex.exceeded:
            points.append(_ambient_point(ex, loc, src, at))
    return points


def _aqi_point(result: aqi_mod.AqiResult, loc: str, src: str, period: str, at: datetime) -> Point:
    fields: dict[str, float | int | str | bool] = {"edition": result.edition}
    if result.aqi is not None:
        fields["aqi"] = result.aqi
        fields["level"] = int(result.level or 0)
        fields["category"] = result.category or ""
        fields["category_en"] = result.category_en or ""
        fields["color"] = result.color or ""
    elif result.computed_aqi is not None:
        fields["computed_aqi"] = result.computed_aqi
    if result.primary:
        fields["primary"] = ",".join(result.primary)
    for k, v in result.iaqi.items():
        fields[f"iaqi_{k}"] = v
    if result.missing:
        fields["missing"] = ",".join(result.missing)
    if result.above_top:
        fields["above_top"] = ",".join(result.above_top)
    return Point("aqi", {"locality": loc, "source": src, "period": period}, fields, at)


def _ambient_point(ex: Any, loc: str, src: str, at: datetime) -> Point:
    return Point(
        "exceedance",
        {
            "kind": "air",
            "locality": loc,
            "source": src,
            "factor": ex.pollutant,
            "period": ex.period.value,
        },
        {
            "value": ex.value,
            "limit": ex.limit,
            "multiple": round(ex.multiple or 0.0, 4),
            "standard": ex.edition,
            "clause": ex.source,
        },
        at,
    )


def _air_day(
    hours: Mapping[str, list[float | None]], day: date, sample: Sample, ctx: SourceContext
) -> list[Point]:
    start = datetime(day.year, day.month, day.day, tzinfo=BEIJING)
    first = epoch_hours(start) + 1  # the hour labelled 01:00 is slot 0
    agg = StationDay()
    state = agg.initialise()
    n_hours = 0
    for slot in range(24):
        row = hours.get(str(first + slot))
        if row is None:
            continue
        n_hours += 1
        agg.add(state, slot, dict(zip(AIR_FACTORS, row, strict=True)))
    res = agg.result(state)
    loc, src = sample.locality, sample.source
    points: list[Point] = []
    fields: dict[str, float | int | str | bool] = {"hours": n_hours}
    for f, stat in res.daily.items():
        if stat.value is not None:
            fields[f] = round(stat.value, 3)
    if res.o3_8h.value is not None:
        fields["o3_8h_max"] = round(res.o3_8h.value, 3)
    if res.o3_1h.value is not None:
        fields["o3_1h_max"] = round(res.o3_1h.value, 3)
    points.append(
        Point(
            "aggregate",
            {"kind": "air", "locality": loc, "source": src, "period": "day"},
            fields,
            start,
        )
    )
    daily = aqi_mod.daily_aqi(res.means, day=day)
    p = _aqi_point(daily, loc, src, "day", start)
    extra: dict[str, float | int | str | bool] = {}
    if daily.aqi is not None:
        extra["good"] = daily.aqi <= 100  # 优良天: daily AQI ≤ 100 (HJ 633 表1/表2 levels 1–2)
        extra["heavy"] = daily.aqi > 200  # 重度及以上 (HJ 633 level 5–6)
    points.append(Point(p.measurement, p.tags, {**p.fields, **extra}, p.time))
    grade = Grade.I if ctx.area_grade == 1 else Grade.II
    for f in DAILY_LIMITED:
        v = res.means.get(f)
        if v is None:
            continue
        ex = ambient_exceedance(f, v, period=Period.DAILY, at=day, grade=grade)
        if ex.exceeded:
            points.append(_ambient_point(ex, loc, src, start))
    o3 = res.means.get("o3_8h")
    if o3 is not None:
        try:
            o3ex = ambient_exceedance("o3", o3, period=Period.MAX_8H, at=day, grade=grade)
        except NoLimit:
            o3ex = None
        if o3ex is not None and o3ex.exceeded:
            points.append(_ambient_point(o3ex, loc, src, start))
    return points


# ----------------------------------------------------------------------------- water


def _water(st: dict[str, Any], sample: Sample, ctx: SourceContext) -> list[Point]:
    valid = _valid(sample.values)
    evaluable = {f: v for f, v in valid.items() if f not in {"temp", "cond", "turb", "chla"}}
    if not evaluable:
        return []
    points: list[Point] = []
    result = classify(evaluable, lake=ctx.lake)
    points.append(_water_point(result, ctx, sample, "sample", sample.time))
    # daily class from the day's arithmetic means (环办〔2011〕22号: time aggregation by mean)
    local_day = (sample.time.astimezone(BEIJING) - timedelta(microseconds=1)).date()
    days: dict[str, dict[str, list[float]]] = st.setdefault("water_days", {})
    acc = days.setdefault(local_day.isoformat(), {})
    key = sample.time.isoformat()
    seen: dict[str, list[str]] = st.setdefault("water_seen", {})
    stamps = seen.setdefault(local_day.isoformat(), [])
    if key not in stamps:  # a duplicate sample does not count twice in the mean
        stamps.append(key)
        for f, v in evaluable.items():
            acc.setdefault(f, [0.0, 0.0])
            acc[f][0] += v
            acc[f][1] += 1
    means = {f: s / n for f, (s, n) in acc.items() if n}
    day_start = datetime(local_day.year, local_day.month, local_day.day, tzinfo=BEIJING)
    points.append(_water_point(classify(means, lake=ctx.lake), ctx, sample, "day", day_start))
    for d in sorted(days)[:-3]:
        days.pop(d, None)
        seen.pop(d, None)
    return points


def _water_point(
    result: Any, ctx: SourceContext, sample: Sample, period: str, at: datetime
) -> Point:
    fields: dict[str, float | int | str | bool] = {
        "grade": result.grade,
        "label": result.label,
        "quality": result.grade_name,
        "worse_than_v": result.grade == 6,
    }
    if result.main_pollutants:
        fields["main_pollutants"] = ",".join(result.main_pollutants)
        for f in result.main_pollutants:
            item = result.items.get(f)
            m = getattr(item, "multiple", None)
            if m is not None:
                fields[f"multiple_{f}"] = round(m, 4)
    if ctx.target_class is not None:
        c = compliance(result, ctx.target_class)
        fields["target"] = ctx.target_class
        fields["meets"] = c.meets
        fields["classes_worse"] = c.classes_worse
    return Point(
        "water_class",
        {"locality": sample.locality, "source": sample.source, "period": period},
        fields,
        at,
    )


# ----------------------------------------------------------------------------- emissions


def _emission(st: dict[str, Any], sample: Sample, ctx: SourceContext) -> list[Point]:
    if sample.interval in ("hour", "day"):
        return _emission_checks(sample.values, sample, ctx, sample.time, sample.interval, {})
    # minute / real-time data → hourly means with validity (≥ 45 valid minutes, HJ 212 附录D)
    end = sample.time
    start_of_value = end - timedelta(minutes=1) if sample.interval == "min" else end
    hour_start = start_of_value.astimezone(BEIJING).replace(minute=0, second=0, microsecond=0)
    h = epoch_hours(hour_start)
    _check_lateness(st, h, sample.source)
    rule = MinuteRule.WASTEWATER if ctx.wastewater else MinuteRule.FLUE_GAS
    avg = HourlyAverage(rule=rule)
    hours: dict[str, dict[str, Any]] = st.setdefault("em_hours", {})
    hstate = hours.setdefault(str(h), {})
    for f, (v, flag) in sample.values.items():
        if v is None:
            continue
        fs = hstate.get(f) or avg.initialise(f, hour_start)
        hstate[f] = avg.add(fs, at=start_of_value, value=v, flag=flag)
    last = max(h, st.get("last_hour", h))
    st["last_hour"] = last
    done: list[int] = st.setdefault("em_done", [])
    points: list[Point] = []
    to_close = [int(k) for k in hours if int(k) < last and (int(k) not in done or int(k) == h)]
    for hh in sorted(to_close):
        points += _emission_hour(hours[str(hh)], avg, sample, ctx, hh)
        if hh not in done:
            done.append(hh)
    del done[:-LATENESS_HOURS]
    for k in [k for k in hours if int(k) < last - LATENESS_HOURS]:
        del hours[k]
    return points


def _emission_hour(
    hstate: Mapping[str, Any], avg: HourlyAverage, sample: Sample, ctx: SourceContext, h: int
) -> list[Point]:
    end = from_epoch_hours(h) + _HOUR  # envwatch labels an hour by its end
    values: dict[str, tuple[float | None, str]] = {}
    counts: dict[str, int] = {}
    valid_minutes: dict[str, int] = {}
    for f, fs in hstate.items():
        res = avg.result(fs)
        values[f] = (res.mean, "N" if res.valid else "D")
        valid_minutes[f] = res.valid_minutes
        for flag, n in res.invalid_counts.items():
            counts[str(flag.value)] = counts.get(str(flag.value), 0) + n
    extra: dict[str, float | int | str | bool] = {
        f"valid_minutes_{f}": n for f, n in valid_minutes.items()
    }
    extra.update({f"flag_{k}": n for k, n in sorted(counts.items())})
    return _emission_checks(values, sample, ctx, end, "hour", extra)


def _emission_checks(
    values: Mapping[str, tuple[float | None, str]],
    sample: Sample,
    ctx: SourceContext,
    at: datetime,
    period: str,
    extra: Mapping[str, float | int | str | bool],
) -> list[Point]:
    valid = _valid(values)
    loc, src = sample.locality, sample.source
    fields: dict[str, float | int | str | bool] = {f: round(v, 4) for f, v in valid.items()}
    o2 = valid.get("o2")
    corrected: dict[str, float] = {}
    if ctx.reference_o2 is not None and o2 is not None and not ctx.wastewater:
        for f in ("so2", "nox", "pm", "co", "nmhc"):
            if f in valid:
                try:
                    corrected[f] = o2_corrected(
                        valid[f], o2_measured=o2, o2_reference=ctx.reference_o2
                    )
                except RulesError:
                    continue
                fields[f"{f}_zs"] = round(corrected[f], 4)  # 折算 (HJ 212 -Zs)
    fields.update(extra)
    points = [
        Point(
            "emission_hour" if period == "hour" else "emission_day",
            {"locality": loc, "source": src},
            fields,
            at,
        )
    ]
    for f, limit in ctx.limits.items():
        if (limit.basis.value == "day") != (period == "day"):
            continue
        v = corrected.get(f, valid.get(f))
        if v is None:
            continue
        check = check_permit(limit, v)
        if check.exceeded:
            points.append(
                Point(
                    "exceedance",
                    {
                        "kind": "emission",
                        "locality": loc,
                        "source": src,
                        "factor": f,
                        "period": period,
                    },
                    {
                        "value": round(v, 4),
                        "limit": float(check.limit or 0.0),
                        "multiple": round(check.multiple or 0.0, 4),
                        "standard": limit.source or "permit",
                        "corrected": f in corrected,
                    },
                    at,
                )
            )
    return points


# ----------------------------------------------------------------------------- other monitors


def _monitor(st: dict[str, Any], sample: Sample, ctx: SourceContext) -> list[Point]:
    valid = _valid(sample.values)
    loc, src = sample.locality, sample.source
    points: list[Point] = []
    for f, v in valid.items():
        limit = ctx.limits.get(f)
        if f == "bypass_open":
            if v >= 0.5:  # any opening of a bypass (旁路) is reported
                points.append(
                    Point(
                        "exceedance",
                        {
                            "kind": "monitor",
                            "locality": loc,
                            "source": src,
                            "factor": f,
                            "period": "instant",
                        },
                        {"value": v, "limit": 0.0, "multiple": 0.0, "standard": "bypass opened"},
                        sample.time,
                    )
                )
            continue
        if limit is None:
            continue
        check = check_permit(limit, v)
        if check.exceeded:
            period = "month" if f == "dustfall" else "instant"
            points.append(
                Point(
                    "exceedance",
                    {
                        "kind": "monitor",
                        "locality": loc,
                        "source": src,
                        "factor": f,
                        "period": period,
                    },
                    {
                        "value": v,
                        "limit": float(check.limit or 0.0),
                        "multiple": round(check.multiple or 0.0, 4),
                        "standard": limit.source or "limit",
                    },
                    sample.time,
                )
            )
    return points


# ----------------------------------------------------------------------------- data quality


_INTERVAL_S: Final = {"rt": 30, "min": 60, "hour": 3600, "day": 86400}


def _quality_runs(st: dict[str, Any], sample: Sample, ctx: SourceContext) -> list[Point]:
    """Constant-value and zero-value runs (数据恒值/零值; standards.md §8 fraud cues)."""
    runs: dict[str, list[Any]] = st.setdefault("runs", {})  # factor -> [last value, run, zero run]
    flagged: list[str] = []
    fields: dict[str, float | int | str | bool] = {}
    key = sample.time.isoformat()
    if st.get("runs_at") == key:  # a duplicate does not extend a run
        return []
    st["runs_at"] = key
    for f, v in _valid(sample.values).items():
        last = runs.get(f)
        if last is not None and last[0] == v:
            last[1] += 1
        else:
            last = [v, 1, 0]
            runs[f] = last
        last[2] = last[2] + 1 if v == 0 else 0
        if last[1] >= ctx.constant_run and f not in {"bypass_open", "vapour_recovery"}:
            fields[f"constant_{f}"] = last[1]
            flagged.append(f)
        if last[2] >= ctx.constant_run:
            fields[f"zero_{f}"] = last[2]
            flagged.append(f)
    if not fields:
        return []
    tags = {
        "kind": sample.kind,
        "locality": sample.locality,
        "source": sample.source,
        "period": "run",
    }
    return [Point("data_quality", tags, fields, sample.time)]


def _quality_day(st: dict[str, Any], sample: Sample, ctx: SourceContext) -> list[Point]:
    """Transmission and valid-data rates per Beijing day (数据传输率/有效率, standards.md §8)."""
    local = (sample.time.astimezone(BEIJING) - timedelta(microseconds=1)).date()
    days: dict[str, dict[str, Any]] = st.setdefault("q_days", {})
    d = days.setdefault(local.isoformat(), {"times": [], "valid": 0, "flags": {}})
    key = sample.time.isoformat()
    if key in d["times"]:
        return []  # duplicates count once
    d["times"].append(key)
    if all(flag in VALID_FLAGS and v is not None for v, flag in sample.values.values()):
        d["valid"] += 1
    for _f, flag in _flags(sample.values).items():
        d["flags"][flag] = d["flags"].get(flag, 0) + 1
    interval = ctx.expected_interval_s or _INTERVAL_S.get(sample.interval, 3600)
    expected = max(1, 86400 // interval)
    received = len(d["times"])
    start = datetime(local.year, local.month, local.day, tzinfo=BEIJING)
    fields: dict[str, float | int | str | bool] = {
        "expected": expected,
        "received": received,
        "valid": d["valid"],
        "transmission_rate": round(min(1.0, received / expected), 4),
        "valid_rate": round(d["valid"] / received, 4) if received else 0.0,
        "last_seen": sample.time.astimezone(UTC).isoformat(),
    }
    for flag, n in sorted(d["flags"].items()):
        fields[f"flag_{flag}"] = n
    for old in sorted(days)[:-3]:
        del days[old]
    tags = {
        "kind": sample.kind,
        "locality": sample.locality,
        "source": sample.source,
        "period": "day",
    }
    return [Point("data_quality", tags, fields, start)]


# ----------------------------------------------------------------------------- locality stage


def city_hour(
    stations: Mapping[str, Sequence[float | None]], at: datetime, locality: str
) -> Point | None:
    """City real-time AQI: per factor the mean of the stations' valid values, then AQI.

    standards.md §2.5: city values = arithmetic mean of the city's valid stations [MEM].
    """
    if not stations:
        return None
    conc: dict[str, float | None] = {}
    for i, f in enumerate(AIR_FACTORS):
        vals = [row[i] for row in stations.values() if row[i] is not None]
        conc[f] = sum(vals) / len(vals) if vals else None  # type: ignore[arg-type]
    if all(v is None for v in conc.values()):
        return None
    result = aqi_mod.realtime_aqi(conc, at=at)
    p = _aqi_point(result, locality, "city", "hour", at)
    return Point(p.measurement, p.tags, {**p.fields, "stations": len(stations)}, at)


def is_finite(v: object) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)
