"""Other monitors: bypass and vapour-recovery states, permit limits of any factor, noise against
GB 3096-2008, dustfall per Beijing month. Every judged value is entered in a ``verdict`` point
(the locality stage's explicit within/exceeded observation); values above a limit are also
``exceedance`` points."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rules.beijing import BEIJING, date_of_day, day_of_instant
from rules.emission import check_permit
from rules.errors import OutsideWindow
from rules.evaluate.common import (
    DUSTFALL_LIMIT,
    Point,
    Sample,
    SourceContext,
    exceedance_point,
    judged,
    tags,
    verdict_tags,
)

__all__ = ["MonitorState", "monitor"]


@dataclass(slots=True)
class MonitorState:
    """A monitor's state: ``dustfall`` = Beijing month (year·12 + month − 1, text) → sample time
    (text epoch seconds) → the dustfall value."""

    dustfall: dict[str, dict[str, float]] = field(default_factory=dict)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> MonitorState:
        return cls(d["dustfall"])


def monitor(
    st: MonitorState | None,
    sample: Sample,
    ctx: SourceContext,
    valid: dict[str, float],
    ts: float,
) -> tuple[MonitorState | None, list[Point]]:
    """Other monitors. Every judged value is entered in a ``verdict`` point (the locality stage's
    explicit within/exceeded observation); values above a limit are also ``exceedance`` points."""
    points: list[Point] = []
    instant: dict[str, float | int | str | bool] = {}
    for f, v in valid.items():
        if f == "bypass_open":
            # any opening of a bypass (旁路) is reported: 1 open, 0 closed
            judged(instant, f, v, 0.0, "bypass opened")
            if v >= 0.5:
                points.append(
                    exceedance_point(
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
            judged(instant, f, v, 1.0, "vapour recovery working = 1")
            continue
        if f == "dustfall":
            if st is None:
                st = MonitorState()
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
            judged(instant, f, v, float(check.limit), limit.source or "limit")
        if check.exceeded:
            fields: dict[str, float | int | str | bool] = {
                "value": v,
                "limit": float(check.limit or 0.0),
                "standard": limit.source or "limit",
            }
            if check.multiple is not None:
                fields["multiple"] = round(check.multiple, 4)
            points.append(exceedance_point(sample, f, "instant", sample.time, fields))
    if instant:
        period = "hour" if sample.interval == "hour" else "instant"
        tags = verdict_tags(sample.kind, sample.locality, sample.source, period)
        points.append(Point("verdict", tags, instant, sample.time))
    return st, points


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
    judged(verdict, "noise_leq", v, float(limit), std)
    tags = verdict_tags(sample.kind, sample.locality, sample.source, period)
    points = [Point("verdict", tags, verdict, sample.time)]
    if v > limit:
        fields: dict[str, float | int | str | bool] = {
            "value": v,
            "limit": float(limit),
            "multiple": round((v - limit) / limit, 4),
            "standard": std,
        }
        points.append(exceedance_point(sample, "noise_leq", period, sample.time, fields))
    return points


def _dustfall(
    st: MonitorState, sample: Sample, ctx: SourceContext, v: float, ts: float
) -> list[Point]:
    """Dustfall (降尘量) is judged as the mean of a Beijing calendar month's samples against
    7 t/(month·km²) (DUSTFALL_LIMIT, plans) or the monitor's configured limit. Every sample
    re-emits its month's mean (same id); the exceedance while the month's mean is above."""
    sec = math.ceil(ts)
    day = date_of_day(day_of_instant(ts))
    month = day.year * 12 + day.month - 1
    months = st.dustfall
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
            tags(
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
    judged(verdict, "dustfall", round(mean, 4), float(limit), source or "limit")
    points.append(
        Point(
            "verdict",
            verdict_tags("monitor", sample.locality, sample.source, "month"),
            verdict,
            start,
        )
    )
    if mean > limit:
        points.append(
            exceedance_point(
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
