"""The plans' progress, live (pure): year-to-date values kept by the locality stage and judged at
each Beijing day's close against the locality's 2025 targets (rules/progress.py).

The locality stage (alerts/locality.py) feeds a :class:`PlanTracker` with what it computes
anyway: each closed day's city values (daily PM2.5 mean, daily AQI and the HJ 633 edition it was
computed with), each section's newest water class and each dustfall monitor's monthly mean (the
evaluate stage's ``verdict`` of period ``month``, re-sent with every sample of the month). When a
day closes, :meth:`PlanTracker.close`
returns the progress of every indicator of the locality that has a metric
(``rules.progress.locality_progress``): year-to-date value, the 2025 target and its provenance,
the projection to year end and the status. The stage writes them as ``plan_progress`` points,
sends them to the alerts service (topic ``plan-progress``) and, once the year has
:data:`MIN_DAYS_FOR_ALERTS` days of data, feeds the ``plan-progress`` alert rule (at_risk →
warning, off_track → critical, back on track → resolved).

The locality's dustfall of a month is the mean of its monitors' monthly means that month
(envwatch's choice [MEM]: the plans give the city's 平均降尘量, 000_d6d679181568297b.txt#L171,
without saying how the points are combined); the month in progress counts with its mean so far.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

from rules.catalog import Locality, WaterSection
from rules.progress import AirYear, DailyAir, TargetProgress, locality_progress

#: Plan-progress alerts wait until the year has this many days of city data: a projection from
#: a few days says nothing about an annual mean (envwatch's choice [MEM]: one quarter).
MIN_DAYS_FOR_ALERTS: Final = 90
#: HJ 633 edition names (rules.standards.hj633) → the keys rules.progress counts apart.
_EDITIONS: Final = {"HJ 633-2012": "2012", "HJ 633-2026": "2026"}


def _float(v: object) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v)


@dataclass
class PlanTracker:
    """Year-to-date inputs of one locality; plain data through ``to_dict``/``from_dict``."""

    #: ISO day → [daily PM2.5 mean | None, daily AQI | None, edition "2012"/"2026" | None]
    days: dict[str, list[Any]] = field(default_factory=dict)
    #: section → its newest water class (1–6) and the time of that sample
    classes: dict[str, list[Any]] = field(default_factory=dict)
    #: dustfall monitor → {"YYYY-MM": its monthly mean, t/(month·km²)} of the newest year
    dust: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"days": self.days, "classes": self.classes, "dust": self.dust}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> PlanTracker:
        data = data or {}
        return cls(
            days={str(k): list(v) for k, v in dict(data.get("days") or {}).items()},
            classes={str(k): list(v) for k, v in dict(data.get("classes") or {}).items()},
            dust={
                str(k): {str(m): float(x) for m, x in dict(v).items()}
                for k, v in dict(data.get("dust") or {}).items()
            },
        )

    def day(self, d: date, fields: Mapping[str, Any]) -> None:
        """A closed (or corrected) city day: the ``aqi`` point of period ``day``."""
        aqi = fields.get("aqi")
        edition = _EDITIONS.get(str(fields.get("edition", "")))
        self.days[d.isoformat()] = [
            _float(fields.get("pm25")),
            aqi if isinstance(aqi, int) and not isinstance(aqi, bool) else None,
            edition if isinstance(aqi, int) else None,
        ]
        year = d.year
        for k in [k for k in self.days if int(k[:4]) < year]:
            del self.days[k]  # a new year starts afresh

    def water(self, section: str, grade: float | None, at_iso: str) -> None:
        """A section's water class from a sample (1–6; 6 = 劣V); an older sample changes nothing."""
        if grade is None or not 1 <= grade <= 6:
            return
        known = self.classes.get(section)
        if known is None or known[1] <= at_iso:
            self.classes[section] = [int(grade), at_iso]

    def dustfall(self, monitor: str, month: date, mean: float | None) -> None:
        """A dustfall monitor's mean of the Beijing calendar month starting ``month`` (the month
        in progress: its mean so far); a month of an earlier year than the newest is dropped."""
        if mean is None or mean < 0:
            return
        key = f"{month.year:04d}-{month.month:02d}"
        newest = max([key, *(m for v in self.dust.values() for m in v)])
        if key[:4] < newest[:4]:
            return  # late data of a year already closed
        self.dust.setdefault(monitor, {})[key] = mean
        for months in self.dust.values():
            for m in [m for m in months if m[:4] < key[:4]]:
                del months[m]  # a new year starts afresh

    def dustfall_months(self, as_of: date) -> dict[int, float]:
        """Month (1–12) of ``as_of``'s year up to its month → the locality's mean dustfall: the
        mean of the monitors that reported that month."""
        by_month: dict[int, list[float]] = {}
        for monitor in sorted(self.dust):
            for key, v in self.dust[monitor].items():
                year, month = int(key[:4]), int(key[5:])
                if year == as_of.year and month <= as_of.month:
                    by_month.setdefault(month, []).append(v)
        return {m: sum(vs) / len(vs) for m, vs in sorted(by_month.items())}

    def newest_day(self) -> date | None:
        """The newest closed city day known."""
        return date.fromisoformat(max(self.days)) if self.days else None

    def days_counted(self, year: int) -> int:
        return sum(1 for k, v in self.days.items() if int(k[:4]) == year and v[0] is not None)

    def close(
        self, as_of: date, locality: Locality, sections: Sequence[WaterSection]
    ) -> tuple[TargetProgress, ...]:
        """Every indicator of ``locality`` with a metric, as of the day ``as_of`` (inclusive)."""
        air = AirYear(as_of.year)
        for k, (pm25, aqi, edition) in sorted(self.days.items()):
            d = date.fromisoformat(k)
            if d.year == as_of.year and d <= as_of:
                air.add(DailyAir(d, pm25, aqi, edition))
        classes = {s: int(v[0]) for s, v in self.classes.items()}
        return locality_progress(
            locality,
            air=air.result(as_of),
            sections=sections,
            water_classes=classes if classes else None,
            dustfall_months=self.dustfall_months(as_of) or None,
        )


def progress_dict(p: TargetProgress) -> dict[str, Any]:
    """One indicator's progress as the alerts service serves it and ``envwatch targets`` shows it
    (docs/api.md)."""
    t = p.target
    return {
        "locality": p.locality,
        "no": p.no,
        "indicator": p.indicator,
        "metric": p.metric.value,
        "unit": p.unit,
        "baseline_2020": p.baseline,
        "target_printed": p.target_printed,
        "target": None
        if t is None
        else {
            "value": t.value,
            "comparator": t.comparator,
            "origin": t.origin.value,
            "printed": t.printed,
        },
        "value": p.value,
        "projection": p.projection,
        "status": p.status.value,
        "explanation_zh": p.explanation_zh,
        "explanation_en": p.explanation_en,
        "details": _json_keys(p.details),
    }


def _json_keys(v: Any) -> Any:
    """``v`` with every mapping key a string (JSON objects; dustfall's months are ints)."""
    if isinstance(v, Mapping):
        return {str(k): _json_keys(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_keys(x) for x in v]
    return v


def indicator_key(p: TargetProgress) -> str:
    """A stable id of an indicator within its locality: its metric and printed number."""
    return p.metric.value if p.no is None else f"{p.metric.value}#{p.no}"


__all__ = [
    "MIN_DAYS_FOR_ALERTS",
    "PlanTracker",
    "indicator_key",
    "progress_dict",
]
