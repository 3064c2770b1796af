"""Surface-water sections: the GB 3838-2002 class per sample and per Beijing day (rules.water),
sudden changes against the section's baseline (rules.water_events)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from rules.beijing import day_of_instant, day_start
from rules.evaluate.common import (
    KEEP_DAYS,
    LATENESS_HOURS,
    Point,
    Sample,
    SourceContext,
    check_late,
    tags,
)
from rules.water import classify, parse_class
from rules.water_events import Change, sudden_change

__all__ = ["WATER_UNCLASSED", "WaterState", "water"]

#: Water factors without a GB 3838 class (accepted and ignored by the classification).
WATER_UNCLASSED: Final = frozenset({"temp", "cond", "turb", "chla"})


@dataclass(slots=True)
class WaterState:
    """A section's state: ``last_s`` the latest sample time (epoch seconds); ``change`` the
    sudden-change state of rules.water_events.sudden_change (its own documented JSON layout);
    ``days`` Beijing day number (text) → sample time (text seconds) → the sample's classed values."""

    last_s: int
    change: dict[str, Any] = field(default_factory=dict)
    days: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> WaterState:
        return cls(d["last_s"], d["change"], d["days"])


def water(
    st: WaterState | None, sample: Sample, ctx: SourceContext, valid: dict[str, float], ts: float
) -> tuple[WaterState | None, list[Point]]:
    evaluable = {f: v for f, v in valid.items() if f not in WATER_UNCLASSED}
    if not evaluable:
        return st, []
    sec = math.ceil(ts)
    if st is None:
        st = WaterState(sec)
    else:
        check_late(st.last_s, sec, LATENESS_HOURS * 3600, sample)
        st.last_s = max(sec, st.last_s)
    tags_sample = tags("locality", sample.locality, "source", sample.source, "period", "sample")
    tags_day = tags("locality", sample.locality, "source", sample.source, "period", "day")
    points = [
        _water_point(classify(evaluable, lake=ctx.lake), ctx, tags_sample, sample.time),
    ]
    # sudden changes against the section's recent baseline (rules/water_events.py)
    changes = sudden_change(st.change, sec, evaluable, lake=ctx.lake)
    if changes:
        points.append(_change_point(changes, tags_sample, sample.time))
    # daily class from the day's arithmetic means of each item (环办〔2011〕22号: a period's
    # samples are averaged, then the single-factor method). Samples are slots keyed by their
    # time, so a duplicate changes nothing and a correction replaces the earlier values.
    d = day_of_instant(ts)
    days = st.days
    day = days.setdefault(str(d), {})
    day[str(sec)] = evaluable
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for key in sorted(day, key=int):  # time order: the same sums for any arrival order
        for f, v in day[key].items():
            sums[f] = sums.get(f, 0.0) + v
            counts[f] = counts.get(f, 0) + 1
    means = {f: s / counts[f] for f, s in sums.items()}
    points.append(_water_point(classify(means, lake=ctx.lake), ctx, tags_day, day_start(d)))
    for k in [k for k in days if int(k) < d - KEEP_DAYS]:
        del days[k]
    return st, points


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
