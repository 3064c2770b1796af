"""Emission outlets (flue gas, wastewater): minute and real-time data → hourly means with
validity (HJ 212-2017 附录D), O2 correction, permit limits per hour and per day, daily means and
the GB 18918-2002 class of a wastewater treatment plant (rules.emission)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from rules.beijing import day_of_hour, day_start
from rules.emission import (
    MIN_VALID_HOURS,
    HourlyAverage,
    MinuteRule,
    check_effluent,
    check_permit,
    o2_corrected,
)
from rules.errors import InvalidReading, RulesError
from rules.evaluate.common import (
    DEFAULT_PLANT_BUILT,
    KEEP_DAYS,
    LATENESS_HOURS,
    Point,
    Sample,
    SourceContext,
    check_late,
    exceedance_point,
    from_epoch_hours,
    judged,
    tags,
    verdict_tags,
)

__all__ = ["CORRECTED_FACTORS", "EmissionState", "emission"]

#: Gas factors an O2 correction (折算) applies to (HJ 212-2017 -Zs codes; GB 13271-2014 式(1)).
CORRECTED_FACTORS: Final = ("so2", "nox", "pm", "co", "nmhc")


@dataclass(slots=True)
class EmissionState:
    """An outlet's state. ``last_h``: the latest epoch hour (the hour's start for minute data,
    its end label for hourly data); ``hours``: epoch hour of a minute-data hour's start (text) →
    factor → rules.emission.HourlyAverage's documented state (HourState); ``open`` the hours not
    yet closed, ``done`` the hours emitted; ``days``: Beijing day number (text) → 24 slots of
    valid hourly means; ``days_done`` the days emitted; ``day`` the latest day number."""

    last_h: int | None = None
    hours: dict[str, dict[str, Any]] = field(default_factory=dict)
    open: list[int] = field(default_factory=list)
    done: list[int] = field(default_factory=list)
    days: dict[str, list[dict[str, float] | None]] = field(default_factory=dict)
    days_done: list[int] = field(default_factory=list)
    day: int | None = None

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> EmissionState:
        return cls(
            d["last_h"], d["hours"], d["open"], d["done"], d["days"], d["days_done"], d["day"]
        )


def emission(
    st: EmissionState | None,
    sample: Sample,
    ctx: SourceContext,
    valid: dict[str, float],
    ts: float,
) -> tuple[EmissionState | None, list[Point]]:
    interval = sample.interval
    if interval == "day":
        return st, _emission_day_checks(valid, {}, sample, ctx, sample.time)
    if interval == "hour":
        if ts % 3600:
            raise InvalidReading(
                "hourly samples are labelled with a whole hour", factor="time", value=sample.time
            )
        h_end = int(ts) // 3600
        if st is None:
            st = EmissionState()
        check_late(st.last_h, h_end, LATENESS_HOURS, sample)
        st.last_h = h_end if st.last_h is None else max(h_end, st.last_h)
        out = _emission_hour_checks(valid, {}, sample, ctx, from_epoch_hours(h_end))
        return st, out + _emission_day_add(st, sample, ctx, h_end, valid)
    # minute / real-time data → hourly means with validity (≥ 45 valid minutes, HJ 212-2017
    # 附录D). A minute sample is labelled by its end, a real-time value by its instant.
    start_ts = ts - 60.0 if interval == "min" else ts
    h_start = int(start_ts // 3600)
    if st is None:
        st = EmissionState()
    check_late(st.last_h, h_start, LATENESS_HOURS, sample)
    rule = MinuteRule.WASTEWATER if ctx.wastewater else MinuteRule.FLUE_GAS
    avg = HourlyAverage(rule=rule)
    hours = st.hours
    hstate = hours.get(str(h_start))
    if hstate is None:
        hstate = hours[str(h_start)] = {}
    # written straight into HourlyAverage's documented state (rules.emission.HourState: readings
    # by second of the hour → [value, flag]); value and flag were validated by split, and the
    # offset lies in the hour by construction — the same state HourlyAverage.add would build
    offset = str(int(start_ts - h_start * 3600))
    for f, (v, flag) in sample.values.items():
        if v is None:
            continue
        fs = hstate.get(f)
        if fs is None:
            fs = hstate[f] = avg.initialise(f, from_epoch_hours(h_start))
        fs["readings"][offset] = [float(v), flag]
    last_prev = st.last_h
    last = h_start if last_prev is None or h_start > last_prev else last_prev
    st.last_h = last
    opened = st.open
    done = st.done
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
    return st, points


def _emission_hour(
    st: EmissionState,
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
    return tags("locality", sample.locality, "source", sample.source)


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
            judged(verdict, f, round(v, 4), float(check.limit), limit.source or "permit")
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
        points.append(exceedance_point(sample, f, "hour", at, ex))
    if verdict:
        tags = verdict_tags(sample.kind, sample.locality, sample.source, "hour")
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
            judged(verdict, item.factor, round(item.value, 4), float(item.limit), item.source)
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
        points.append(exceedance_point(sample, f, "day", at, found[f]))
    if verdict:
        tags = verdict_tags(sample.kind, sample.locality, sample.source, "day")
        points.append(Point("verdict", tags, verdict, at))
    return points


_EFFLUENT_KEYS: Final = frozenset(
    {"cod", "bod5", "ss", "oil", "las", "tn", "nh3n", "tp", "ph", "fecal_coliform", "temp"}
)


def _emission_day_add(
    st: EmissionState, sample: Sample, ctx: SourceContext, h_end: int, valid: Mapping[str, float]
) -> list[Point]:
    """File a valid hourly mean into its Beijing day; emit the day when it is complete (its hour
    labelled 24:00 arrived), closed (a later day began) or already emitted (a correction)."""
    d, slot = day_of_hour(h_end)
    days = st.days
    hours = days.setdefault(str(d), [None] * 24)
    hours[slot] = dict(valid)
    done = st.days_done
    cur = st.day
    todo: list[int] = []
    if cur is None or d > cur:
        if cur is not None and cur not in done and str(cur) in days:
            todo.append(cur)
        st.day = cur = d
        done[:] = [x for x in done if x >= d - KEEP_DAYS]
        for k in [k for k in days if int(k) < d - KEEP_DAYS]:
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
    return _emission_day_checks(valid, extra, sample, ctx, day_start(d + 1))
