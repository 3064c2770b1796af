"""Scripted scenarios: named, deterministic transformations of the base streams.

Each scenario picks its target among the simulated sources (or takes ``target``), rewrites the
values of some samples (:meth:`Scenario.override`), may drop samples (offline) or re-order and
duplicate deliveries (:meth:`Scenario.deliveries`), and documents what it does as a timeline
(:meth:`Scenario.timeline`). Offsets are relative to the run's ``start`` (a whole hour); the
winter episode counts Beijing natural days from the day containing ``start`` (day 0). Hourly
samples are labelled with the END of their hour, so "labels in (start+6 h, start+8 h]" are the
two samples labelled start+7 h and start+8 h. ``docs/simulators.md`` has the same timelines
with the effects downstream rules should show.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar, Final

from rules.factors import Kind

from ingest.schemas import Flag, Value
from ingest.simulators.errors import ScenarioError
from ingest.simulators.model import (
    BEIJING,
    DAY,
    HOUR,
    Delivery,
    SourceSpec,
    day_index,
    local_day_and_hour,
    rng_for,
)
from ingest.simulators.profiles import (
    DEFAULT_LIMITS,
    DEFAULT_O2_REF,
    PM_WINTER,
    Values,
    base_values,
    pm25_daily_aqi_2026,
)


@dataclass(frozen=True, slots=True)
class Event:
    """One documented step of a scenario: from ``begin`` to ``end`` (None: an instant),
    ``subject`` (a source or locality) shows ``effect``."""

    begin: datetime
    end: datetime | None
    subject: str
    effect: str


class Scenario:
    """Base class: no change. Subclasses set the class attributes and override the hooks."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    hours: ClassVar[int] = 24
    #: Kinds (and outlet subtypes) the default target is taken from, in order of preference.
    prefer: ClassVar[tuple[tuple[Kind, str], ...]] = ()

    def __init__(
        self, specs: Sequence[SourceSpec], *, start: datetime, seed: int, target: str | None
    ) -> None:
        self.start = start.astimezone(BEIJING)
        self.seed = seed
        self.specs = tuple(specs)
        self.target = self._resolve(target)

    # ---------------------------------------------------------------- targets
    def _resolve(self, target: str | None) -> str:
        ids = {s.source for s in self.specs}
        if target is not None:
            if target not in ids:
                raise ScenarioError(self.name, f"target {target!r} is not a simulated source")
            return target
        ordered = sorted(self.specs, key=lambda s: (s.locality, s.source))
        for kind, subtype in self.prefer:
            for s in ordered:
                if s.kind is kind and (not subtype or s.subtype == subtype):
                    return s.source
        raise ScenarioError(self.name, "no simulated source it can act on")

    def spec(self, source: str) -> SourceSpec:
        return next(s for s in self.specs if s.source == source)

    def offset(self, label: datetime) -> timedelta:
        return label - self.start

    # ---------------------------------------------------------------- hooks
    def override(self, spec: SourceSpec, label: datetime, values: Values) -> Values | None:
        """The values ``spec`` reports at ``label`` (None: nothing is sent)."""
        return values

    def deliveries(self, stream: Iterator[Delivery]) -> Iterator[Delivery]:
        """Re-time, re-order or duplicate deliveries (``stream`` is in delivery order)."""
        return stream

    def timeline(self) -> list[Event]:
        return []

    def at(self, hours: float) -> datetime:
        return self.start + timedelta(hours=hours)


# ============================================================================ winter episode

#: Daily mean PM2.5 (µg/m³) of every station of the target locality, by Beijing day index
#: (day 0 = the day containing ``start``); days after the table keep its last value.
#: Daily AQI by HJ 633-2026 表3 (PM2.5 日平均 breakpoints 35/60/115/150/250/350; IAQI rounded
#: up, 4.2.6): 90, 110, 132, 225, 260, 315, 370, 340, 280, 137, 100, 70. Above 115 µg/m³ the
#: PM2.5 breakpoints of HJ 633-2012 表1 are the same, so days 3–8 have the same AQI under both
#: editions; days 0–2 and 9–11 give 75, 94, 125 and 132, 82, 63 under HJ 633-2012.
EPISODE_PM25: Final = (55.0, 70.0, 95.0, 175.0, 210.0, 265.0, 320.0, 290.0, 230.0, 100.0, 60.0, 45.0)  # fmt: skip
#: PM10 = 1.25 × PM2.5 during the scenario: its IAQI stays below PM2.5's (e.g. PM2.5 320 →
#: IAQI 370; PM10 400 → IAQI 200 + 100·(400−350)/70 = 272, HJ 633-2026 表3), so the daily AQI
#: is the PM2.5 IAQI.
EPISODE_PM10_RATIO: Final = 1.25


class WinterEpisode(Scenario):
    name = "winter-episode"
    summary = (
        "heavy-pollution episode in one locality: daily AQI > 200 on days 3-8, > 300 on "
        "days 5-7, clearing to <= 150 from day 9; AQI forecasts issued 3 days ahead"
    )
    hours = 12 * 24
    prefer = ((Kind.AIR, ""),)

    def _resolve(self, target: str | None) -> str:
        localities = sorted({s.locality for s in self.specs if s.kind is Kind.AIR})
        if not localities:
            raise ScenarioError(self.name, "no simulated air station")
        if target is None:
            return "weifang" if "weifang" in localities else localities[0]
        if target in localities:
            return target
        ids = {s.source: s.locality for s in self.specs}
        if target in ids and ids[target] in localities:
            return ids[target]
        raise ScenarioError(self.name, f"target {target!r} is not a locality with air stations")

    @staticmethod
    def daily_pm25(day: int) -> float:
        return EPISODE_PM25[min(max(day, 0), len(EPISODE_PM25) - 1)]

    def override(self, spec: SourceSpec, label: datetime, values: Values) -> Values | None:
        if spec.locality != self.target:
            return values
        if spec.kind is Kind.FORECAST:
            pm = self.daily_pm25(day_index(label, self.start, DAY))
            out = dict(values)
            if "pm25" in spec.factors:
                out["pm25"] = Value(value=pm)
            if "aqi" in spec.factors:
                out["aqi"] = Value(value=float(pm25_daily_aqi_2026(pm)))
            return out
        if spec.kind is not Kind.AIR or spec.period != HOUR:
            return values
        day, slot = local_day_and_hour(label, spec.period)
        mean = self.daily_pm25(day_index(label, self.start, spec.period))
        # 24 deviations with sum 0 per (station, day): the natural-day mean is exactly `mean`.
        rng = rng_for(self.seed, self.name, spec.source, day.date())
        noise = [max(-0.15, min(0.15, rng.gauss(0.0, 0.05))) for _ in range(24)]
        centre = sum(noise) / 24
        pm25 = mean * (PM_WINTER[slot] + noise[slot] - centre)
        out = dict(values)
        if "pm25" in spec.factors:
            out["pm25"] = Value(value=round(pm25, 1))
        if "pm10" in spec.factors:
            out["pm10"] = Value(value=round(pm25 * EPISODE_PM10_RATIO, 1))
        return out

    def timeline(self) -> list[Event]:
        day0 = self.start.replace(hour=0)
        events = []
        for d, pm in enumerate(EPISODE_PM25):
            aqi = pm25_daily_aqi_2026(pm)
            events.append(
                Event(
                    day0 + d * DAY,
                    day0 + (d + 1) * DAY,
                    self.target,
                    f"day {d}: daily mean PM2.5 {pm:g} µg/m³, daily AQI {aqi} (HJ 633-2026)",
                )
            )
        events += [
            Event(day0 + 5 * DAY, None, self.target, "yellow expected (> 200 on days 3 and 4)"),
            Event(day0 + 6 * DAY, None, self.target, "orange expected (> 200 ×3 d, > 300 day 5)"),
            Event(day0 + 7 * DAY, None, self.target, "red expected (> 200 ×4 d, > 300 ×2 d)"),
            Event(
                day0 + 10 * DAY + 12 * HOUR,
                None,
                self.target,
                "lift expected (observed ≤ 150 for 36 h from day 9 00:00)",
            ),
        ]
        return events


# ============================================================================ river fluoride

#: GB 3838-2002 表1: fluoride ≤ 1.0 (I–III), ≤ 1.5 mg/L (IV–V); above 1.5 is 劣V.
FLUORIDE_IV: Final = 1.35
FLUORIDE_WORSE_THAN_V: Final = (1.8, 2.0)


class RiverFluoride(Scenario):
    name = "river-fluoride"
    summary = (
        "a water section turns 劣V for fluoride: > 1.5 mg/L for samples labelled in "
        "[start+24 h, start+48 h), class IV (1.35) 4 h before and after"
    )
    hours = 72
    prefer = ((Kind.WATER, ""),)

    def _resolve(self, target: str | None) -> str:
        if target is None:
            with_f = sorted(
                (s.locality, s.source)
                for s in self.specs
                if s.kind is Kind.WATER and "fluoride" in s.factors
            )
            if with_f:
                return with_f[0][1]
        return super()._resolve(target)

    def override(self, spec: SourceSpec, label: datetime, values: Values) -> Values | None:
        if spec.source != self.target:
            return values
        h = self.offset(label) / HOUR
        out = dict(values)
        if 24 <= h < 48:
            lo, hi = FLUORIDE_WORSE_THAN_V
            x = rng_for(self.seed, self.name, label.isoformat()).uniform(lo, hi)
            out["fluoride"] = Value(value=round(x, 3))
        elif 20 <= h < 24 or 48 <= h < 52:
            out["fluoride"] = Value(value=FLUORIDE_IV)
        elif "fluoride" not in out:
            out["fluoride"] = Value(value=0.8)  # class I–III when the section had no fluoride
        return out

    def timeline(self) -> list[Event]:
        t = self.target
        return [
            Event(self.at(20), self.at(24), t, "fluoride 1.35 mg/L: class IV"),
            Event(self.at(24), self.at(48), t, "fluoride 1.8–2.0 mg/L: 劣V (> 1.5)"),
            Event(self.at(48), self.at(52), t, "fluoride 1.35 mg/L: class IV"),
            Event(self.at(52), None, t, "back to the base level"),
        ]


# ============================================================================ NOx exceedance

#: NOx during the exceedance, as multiples of the permit limit, for the hours labelled
#: start+7 h and start+8 h.
NOX_MULTIPLES: Final = (1.5, 1.4)


class NoxExceedance(Scenario):
    name = "nox-exceedance"
    summary = (
        "an enterprise gas outlet exceeds its NOx permit limit for two hours: hourly samples "
        "labelled start+7 h and start+8 h at 1.5× and 1.4× the limit, O2 at the reference"
    )
    hours = 12
    prefer = ((Kind.EMISSION, "gas"),)

    def limit(self) -> float:
        spec = self.spec(self.target)
        return spec.limits.get("nox", DEFAULT_LIMITS["gas"]["nox"])

    def override(self, spec: SourceSpec, label: datetime, values: Values) -> Values | None:
        if spec.source != self.target:
            return values
        h = self.offset(label) / HOUR
        if h not in (7, 8):
            return values
        out = dict(values)
        out["nox"] = Value(value=round(self.limit() * NOX_MULTIPLES[int(h) - 7], 1))
        if "o2" in spec.factors:
            # O2 at the reference: the O2-corrected value equals the measured one
            # (C折 = C × (21 − O2ref)/(21 − O2), GB 13271-2014 式(1)).
            o2 = spec.o2_ref if spec.o2_ref is not None else DEFAULT_O2_REF
            out["o2"] = Value(value=o2)
        return out

    def timeline(self) -> list[Event]:
        lim = self.limit()
        return [
            Event(self.at(6), self.at(7), self.target, f"NOx {lim * 1.5:g} mg/m³ (1.5× {lim:g})"),
            Event(self.at(7), self.at(8), self.target, f"NOx {lim * 1.4:g} mg/m³ (1.4× {lim:g})"),
        ]


# ============================================================================ stuck monitor


class StuckMonitor(Scenario):
    name = "stuck-monitor"
    summary = (
        "a monitor repeats one value: samples labelled start+2 h … start+14 h (13 hourly "
        "samples) all carry the values of start+2 h, flag N"
    )
    hours = 24
    prefer = ((Kind.MONITOR, "dust"), (Kind.EMISSION, "gas"), (Kind.AIR, ""))

    def override(self, spec: SourceSpec, label: datetime, values: Values) -> Values | None:
        if spec.source != self.target:
            return values
        if self.at(2) < label <= self.at(14):
            return base_values(spec, self.at(2), self.seed)
        return values

    def timeline(self) -> list[Event]:
        return [Event(self.at(2), self.at(14), self.target, "every value constant")]


# ============================================================================ offline


class Offline(Scenario):
    name = "offline"
    summary = (
        "a monitor goes silent: no samples labelled start+4 h … start+9 h (6 hourly samples "
        "missing); it reports again from start+10 h"
    )
    hours = 24
    prefer = ((Kind.AIR, ""), (Kind.MONITOR, ""), (Kind.EMISSION, ""))

    def override(self, spec: SourceSpec, label: datetime, values: Values) -> Values | None:
        if spec.source == self.target and self.at(3) < label <= self.at(9):
            return None
        return values

    def timeline(self) -> list[Event]:
        return [Event(self.at(3), self.at(9), self.target, "silent (no message)")]


# ============================================================================ maintenance

#: During maintenance the analyser sees calibration gas: concentrations with a permit limit
#: read 1.2× the limit — flagged M, so they must NOT count as an exceedance.
MAINTENANCE_MULTIPLE: Final = 1.2


class Maintenance(Scenario):
    name = "maintenance"
    summary = (
        "maintenance period: samples labelled start+3 h … start+6 h carry flag M on every "
        "factor; an outlet's limited factors read 1.2× the limit (span gas) meanwhile"
    )
    hours = 12
    prefer = ((Kind.EMISSION, "gas"), (Kind.WATER, ""), (Kind.AIR, ""))

    def override(self, spec: SourceSpec, label: datetime, values: Values) -> Values | None:
        if spec.source != self.target or not (self.at(2) < label <= self.at(6)):
            return values
        limits = {**DEFAULT_LIMITS.get(spec.subtype, {}), **spec.limits}
        out: Values = {}
        for f, v in values.items():
            x = v.value
            if spec.kind is Kind.EMISSION and f in limits:
                x = round(limits[f] * MAINTENANCE_MULTIPLE, 3)
            out[f] = Value(value=x, flag=Flag.M)
        return out

    def timeline(self) -> list[Event]:
        return [Event(self.at(2), self.at(6), self.target, "flag M on every factor")]


# ============================================================================ late and duplicates


class LateAndDuplicates(Scenario):
    name = "late-and-duplicates"
    summary = (
        "every source of one locality holds back what it would deliver in (start+2 h, "
        "start+5 h] and delivers it at start+5 h 10 min in reverse order, then once more in "
        "order: late, out of order, each twice, same content"
    )
    hours = 12
    prefer = ((Kind.AIR, ""),)
    burst_delay: ClassVar[timedelta] = timedelta(minutes=10)

    def _resolve(self, target: str | None) -> str:
        localities = sorted({s.locality for s in self.specs})
        if not localities:
            raise ScenarioError(self.name, "no simulated source")
        if target is None:
            return "weifang" if "weifang" in localities else localities[0]
        if target in localities:
            return target
        raise ScenarioError(self.name, f"target {target!r} is not a simulated locality")

    def deliveries(self, stream: Iterator[Delivery]) -> Iterator[Delivery]:
        hold_from, hold_to = self.at(2), self.at(5)
        burst_at = hold_to + self.burst_delay
        held: list[Delivery] = []
        burst_done = False

        def burst() -> Iterator[Delivery]:
            for d in reversed(held):
                yield Delivery(at=burst_at, sample=d.sample, note="late")
            for d in held:
                yield Delivery(at=burst_at, sample=d.sample, note="duplicate")

        for d in stream:
            if not burst_done and d.at >= burst_at:
                yield from burst()
                burst_done = True
            if d.sample.locality == self.target and hold_from < d.at <= hold_to:
                held.append(d)
                continue
            yield d
        if not burst_done:
            yield from burst()

    def timeline(self) -> list[Event]:
        return [
            Event(self.at(2), self.at(5), self.target, "held back (nothing delivered)"),
            Event(
                self.at(5) + self.burst_delay,
                None,
                self.target,
                "burst: held samples in reverse order, then again in order",
            ),
        ]


SCENARIOS: Final[dict[str, type[Scenario]]] = {
    cls.name: cls
    for cls in (
        WinterEpisode,
        RiverFluoride,
        NoxExceedance,
        StuckMonitor,
        Offline,
        Maintenance,
        LateAndDuplicates,
    )
}


def make_scenario(
    name: str,
    specs: Sequence[SourceSpec],
    *,
    start: datetime,
    seed: int = 0,
    target: str | None = None,
) -> Scenario:
    """Build scenario ``name`` against ``specs`` (raises :class:`ScenarioError` if unknown)."""
    try:
        cls = SCENARIOS[name]
    except KeyError:
        known = ", ".join(SCENARIOS)
        raise ScenarioError(name, f"unknown scenario; known: {known}") from None
    return cls(specs, start=start, seed=seed, target=target)
