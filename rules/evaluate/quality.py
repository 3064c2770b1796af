"""Data quality of every source: constant- and zero-value runs, daily transmission and valid-data
rates (standards.md §8)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final

from rules.beijing import FIXED_FROM_S, UTC8_S, day_of_instant, day_start
from rules.evaluate.common import (
    KEEP_DAYS,
    STATUS_FACTORS,
    Point,
    Sample,
    SourceContext,
    SourceTags,
    iso_utc,
    point,
)

__all__ = ["QualityDay", "QualityState", "quality_day", "quality_runs"]

_INTERVAL_S: Final = {"rt": 30, "min": 60, "hour": 3600, "day": 86400}


@dataclass(slots=True)
class QualityDay:
    """One Beijing day's counters. ``s``: a slot per sample time (whole epoch seconds, as text
    for JSON) → [all values valid (0/1), the invalid flags of its values]; ``n`` received, ``ok``
    valid samples, ``flags`` invalid values by HJ 212-2017 表8 flag, ``last`` the latest time."""

    s: dict[str, list[Any]]
    n: int
    ok: int
    flags: dict[str, int]
    last: float

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> QualityDay:
        return cls(d["s"], d["n"], d["ok"], d["flags"], d["last"])


@dataclass(slots=True)
class QualityState:
    """``runs_t``: time of the latest sample counted in the runs; ``prev``: its valid values;
    ``runs``: run lengths ≥ 2 by factor; ``days``: day number (text) → :class:`QualityDay`;
    ``day``: the latest day number."""

    runs_t: float | None = None
    prev: dict[str, float] = field(default_factory=dict)
    runs: dict[str, int] = field(default_factory=dict)
    days: dict[str, QualityDay] = field(default_factory=dict)
    day: int | None = None

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> QualityState:
        return cls(
            d["runs_t"],
            d["prev"],
            d["runs"],
            {k: QualityDay.from_json(v) for k, v in d["days"].items()},
            d["day"],
        )


def quality_runs(
    st: QualityState,
    sample: Sample,
    ctx: SourceContext,
    valid: dict[str, float],
    ts: float,
    stags: SourceTags,
) -> Point | None:
    """Constant-value and zero-value runs (数据恒值/零值; standards.md §8 fraud cues).

    A factor's run is the number of consecutive samples (in time order) with the identical valid
    value; a zero run is a run of the value 0. A duplicate or an older (late) sample neither
    extends nor breaks a run.
    """
    last_t = st.runs_t
    if last_t is not None and ts <= last_t:
        return None
    st.runs_t = ts
    same = st.prev.items() & valid.items()  # factors whose value did not change (C-level)
    if same:
        old = st.runs
        runs = {f: old.get(f, 1) + 1 for f, _v in same if f not in STATUS_FACTORS}
    else:
        runs = {}
    st.prev = valid
    st.runs = runs
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
    return point(Point, ("data_quality", stags.quality_run, fields, sample.time))


def quality_day(
    st: QualityState,
    sample: Sample,
    ctx: SourceContext,
    valid: dict[str, float],
    bad: dict[str, str],
    ts: float,
    stags: SourceTags,
    out: list[Point],
) -> None:
    """Transmission and valid-data rates per Beijing day (数据传输率/有效率, standards.md §8).

    A sample is a slot of its day keyed by its time: a duplicate counts once, a correction
    replaces (the counters are updated by difference). The day's point (one series, its last
    write holds the day's figures) is written for every hourly and daily sample; for sub-hourly
    samples at whole hours and for samples older than the day's latest (late); and for the
    previous day when a new day begins (its final figures even when its last samples are
    missing). Writing it for every hourly sample keeps the last write of the day equal for a
    clean and a late/duplicated stream of the same samples. The points are appended to ``out``."""
    sec = math.ceil(ts)
    # the day of the instant just before the label (rules.beijing.day_of_instant, inlined)
    d = (sec + UTC8_S - 1) // 86400 if sec >= FIXED_FROM_S else day_of_instant(ts)
    days = st.days
    cur = st.day
    if cur is not None and d < cur - KEEP_DAYS:
        return  # older than any window: not counted (the evaluation raised already)
    if cur is None or d > cur:
        if cur is not None:
            prev = days.get(str(cur))
            if prev is not None:
                out.append(_quality_point(prev, sample, ctx, cur, stags))
        st.day = cur = d
        for k in [k for k in days if int(k) < d - KEEP_DAYS]:
            del days[k]
    day = days.get(str(d))
    if day is None:
        day = days[str(d)] = QualityDay({}, 0, 0, {}, ts)
    slots = day.s
    key = str(sec)
    # [all values valid (0/1), invalid flags of its values]
    if bad:
        ok = 0
        invalid = sorted(bad.values())
    else:
        ok = 1 if len(valid) == len(sample.values) else 0
        invalid = []
    old = slots.get(key)
    if old is None or old[0] != ok or old[1] != invalid:
        flags = day.flags
        if old is None:
            day.n += 1
        else:
            day.ok -= old[0]
            for x in old[1]:
                flags[x] -= 1
        day.ok += ok
        for x in invalid:
            flags[x] = flags.get(x, 0) + 1
        slots[key] = [ok, invalid]
    late = ts < day.last
    if not late:
        day.last = ts
    if d == cur and not late and ts % 3600 and sample.interval not in ("hour", "day"):
        return  # sub-hourly: the day's figures at whole hours (and for late samples)
    out.append(_quality_point(day, sample, ctx, d, stags))


def _quality_point(
    day: QualityDay, sample: Sample, ctx: SourceContext, d: int, stags: SourceTags
) -> Point:
    step_s = ctx.expected_interval_s or _INTERVAL_S.get(sample.interval, 3600)
    expected = max(1, 86400 // step_s)
    received = day.n
    n_valid = day.ok
    fields: dict[str, float | int | str | bool] = {
        "expected": expected,
        "received": received,
        "valid": n_valid,
        "transmission_rate": rate(received, expected),
        "valid_rate": rate(n_valid, received),
        "last_seen": iso_utc(day.last),
    }
    flags = day.flags
    if flags:
        for x in sorted(flags):
            if flags[x]:
                fields[f"flag_{x}"] = flags[x]
    return point(Point, ("data_quality", stags.quality_day, fields, day_start(d)))


@lru_cache(maxsize=65536)
def rate(n: int, of: int) -> float:
    """``round(min(1.0, n / of), 4)``, memoised: the counts of a day are small integers shared by
    every source with the same interval, and float ``round`` to digits is slow."""
    return round(min(1.0, n / of), 4)
