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

from rules.beijing import BEIJING
from rules.factors import Kind

from ingest.schemas import Flag, Value
from ingest.simulators.errors import ScenarioError
from ingest.simulators.model import (
    DAY,
    HOUR,
    Delivery,
    Rng,
    SourceSpec,
    day_index,
    local_day_and_hour,
    rng_for,
)
from ingest.simulators.profiles import (
    DEFAULT_LIMITS,
    DEFAULT_O2_REF,
    NOISE_MARGIN_DB,
    PM_WINTER,
    WATER_DEFAULTS,
    Values,
    base_values,
    expected_daily_pm25,
    locality_day_factor,
    pm25_daily_aqi_2026,
    station_factor,
    winter_weight,
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
    #: True when the scenario acts on the catalogue's sources (``--config``, default
    #: ``deploy/config``) rather than the built-in network.
    needs_catalog: ClassVar[bool] = False
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
#: The complying enterprise's load during the episode (half load: more than any cut its list
#: requires, 10/20/30 % for e-wf-01's boiler; a scenario parameter).
EPISODE_LOAD: Final = 0.5


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

    @property
    def complying(self) -> str | None:
        """The enterprise of the target locality that carries out its emergency measures: the
        first by id (the others keep emitting at their usual level)."""
        ids = sorted(
            {s.enterprise for s in self.specs if s.locality == self.target and s.enterprise}
        )
        return ids[0] if ids else None

    @property
    def cut_from(self) -> datetime:
        """When the complying enterprise cuts: day 1 20:00, when the forecasts of days 3–4
        (AQI > 200 for 48 h) make the yellow warning due."""
        return self.start.replace(hour=0) + DAY + 20 * HOUR

    def _enterprise(self, spec: SourceSpec, label: datetime, values: Values) -> Values:
        """The complying enterprise runs at :data:`EPISODE_LOAD` of its load from
        :attr:`cut_from` on: flue-gas flow and production-line electricity fall with it, the
        concentrations stay; the others change nothing."""
        if spec.enterprise != self.complying or label <= self.cut_from:
            return values
        out = dict(values)
        for f in ("flow", "power_kw"):
            if f not in out or (f == "power_kw" and spec.subtype == "power-treatment"):
                continue
            v = out[f].value
            if v is not None:
                out[f] = Value(value=round(v * EPISODE_LOAD, 1))
        return out

    def override(self, spec: SourceSpec, label: datetime, values: Values) -> Values | None:
        if spec.locality != self.target:
            return values
        if spec.enterprise:
            return self._enterprise(spec, label, values)
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


# ============================================================================ forty days

#: The sources the forty-days script acts on (ids of deploy/config).
FD_BYPASS: Final = "mon-wf-bypass-01"  # bypass of e-wf-02, weifang
FD_WWTP: Final = "e-lx-wwtp-w1"  # 莱西市污水处理厂 10万吨/日 outlet, COD ≤ 40 mg/L (003…#L114)
FD_AMBIENT: Final = "aq-wf-03"  # 寒亭区 station, weifang, 省控, area grade II
FD_DUSTFALL: Final = "mon-wf-dustfall-01"  # 奎文区 dustfall, 7 t/(month·km²) (001…#L351)
FD_NOISE: Final = "mon-lc-noise-01"  # liaocheng-etdz, GB 3096-2008 3 类 (65/55 dB(A))
FD_SITE: Final = "mon-tq-site-01"  # tianqiao construction site, dust/PM10 limit 150 µg/m³
FD_VAPOUR: Final = "mon-lc-vapour-01"  # liaocheng-etdz vapour recovery
FD_TREATMENT: Final = "mon-lc-power-02"  # e-lc-01 treatment (normal 180 kW)
FD_PRODUCTION: Final = "mon-lc-power-01"  # e-lc-01 production (running above 300 kW)

#: Windows on hourly labels: samples labelled in [start + a h, start + b h).
FD_BYPASS_HOURS: Final = (100, 104)  # day 4, labels 04:00 … 07:00
FD_SITE_HOURS: Final = (400, 406)  # day 16, labels 16:00 … 21:00 (working hours)
FD_VAPOUR_HOURS: Final = (500, 505)  # day 20 20:00 … day 21 00:00
FD_POWER_HOURS: Final = (600, 606)  # day 25, labels 00:00 … 05:00 (production at night load)
#: Whole Beijing days (index from the start's day 0; day D = labels D 01:00 … D+1 00:00).
FD_WWTP_DAYS: Final = (5, 6)
FD_AMBIENT_DAYS: Final = (10, 11)
#: Nights: night N = hours starting day N 22:00 … day N+1 05:00 (labels N 23:00 … N+1 06:00).
FD_NOISE_NIGHTS: Final = (15, 16)

#: Scripted values.
FD_WWTP_COD_MULTIPLE: Final = (1.9, 2.1)  # × the outlet's COD limit (40 → 76–84 mg/L)
FD_AMBIENT_PM25: Final = 140.0  # daily mean µg/m³ (> 75 GB 3095-2012, > 60 GB 3095-2026 过渡)
FD_AMBIENT_PM10_RATIO: Final = 1.25  # PM10 daily mean 175 (> 150 and > 120)
FD_DUSTFALL_HIGH: Final = 11.0  # t/(month·km²) ± 5 %, on every day of the start's month
FD_NOISE_ABOVE_DB: Final = 7.0  # night Leq = night limit + 7 ± 1 dB(A) (3 类: 61–63)
FD_SITE_MULTIPLE: Final = (1.6, 2.0)  # × the monitor's limit (150 → 240–300 µg/m³)
FD_TREATMENT_KW: Final = (0.0, 1.5)  # treatment equipment off: standby draw only

#: Clean background (envwatch's choice, so that nothing but the script exceeds a limit):
#: daily-level caps per GB 3095 area grade. PM2.5 caps 20 (I) / 30 (II) µg/m³ keep the daily
#: means within 35 / 60 (the stricter GB 3095-2026 过渡 II value; 2012: 75) and PM10 (≈ 1.74 ×)
#: within 50 / 120; O3 daily-level caps 45 / 70 µg/m³ keep the 8-h maximum (≈ 1.69 × the level)
#: within 100 / 160 and the 1-h peak (≈ 1.83 ×) within 160 / 200; NO2 cap 35 µg/m³ keeps the
#: daily mean within 50 (even GB 3095-2026's final value). standards.md §2.1.
FD_PM25_CAP: Final = {"I": 20.0, "II": 30.0}
FD_O3_CAP: Final = {"I": 45.0, "II": 70.0}
FD_NO2_CAP: Final = 35.0
#: Clean water (envwatch's choice): typical values of the class-II-limited items, well inside
#: GB 3838-2002 表1 class II (CODMn 4, COD 15, BOD5 3, NH3-N 0.5, TP 0.1 river / 0.025 lake,
#: F 1.0 mg/L; DO ≥ 6 by a +1 mg/L shift), so every section meets its target (II at worst).
FD_WATER: Final = {"codmn": 3.0, "cod": 11.0, "bod5": 2.2, "nh3n": 0.3, "fluoride": 0.75}
FD_TP: Final = {False: 0.07, True: 0.015}  # river / lake
FD_TN_LAKE: Final = 0.4
FD_DO_SHIFT: Final = 1.0


class FortyDays(Scenario):
    name = "forty-days"
    summary = (
        "40 days of the catalogue (start at Beijing 00:00; day D = labels D 01:00…D+1 00:00), "
        "all within limits except: mon-wf-bypass-01 bypass_open=1 for labels [start+100 h, "
        "+104 h); e-lx-wwtp-w1 COD 1.9-2.1x its 40 mg/L limit all hours of days 5-6; aq-wf-03 "
        "daily PM2.5 140 / PM10 175 on days 10-11; mon-wf-dustfall-01 ~11 t/(month*km2) every "
        "day of the start's calendar month, base ~5 after; mon-lc-noise-01 night Leq 62+-1 "
        "(3 类 limit 55) nights of days 15 and 16; mon-tq-site-01 dust/PM10 240-300 (limit 150) "
        "for labels [start+400 h, +406 h); mon-lc-vapour-01 status 0 for labels [start+500 h, "
        "+505 h); mon-lc-power-02 (treatment) 0-1.5 kW for labels [start+600 h, +606 h) while "
        "mon-lc-power-01 produces"
    )
    hours = 40 * 24
    needs_catalog = True

    def __init__(
        self, specs: Sequence[SourceSpec], *, start: datetime, seed: int, target: str | None
    ) -> None:
        local = start.astimezone(BEIJING)
        if (local.hour, local.minute, local.second, local.microsecond) != (0, 0, 0, 0):
            raise ScenarioError(
                self.name,
                f"start {start.isoformat()} is not a Beijing midnight; the script counts whole "
                "Beijing days from the start",
            )
        super().__init__(specs, start=start, seed=seed, target=target)
        self.day0 = self.start.date()
        #: the Beijing calendar month with the high dustfall: the month containing day 0
        self.dustfall_month = (self.day0.year, self.day0.month)
        self._pm_scale: dict[tuple[str, object], float] = {}
        self._by_id = {sp.source: sp for sp in self.specs}

    def _resolve(self, target: str | None) -> str:
        if target is not None:
            raise ScenarioError(self.name, "the script acts on fixed sources; --target is refused")
        wanted = {
            FD_BYPASS: Kind.MONITOR,
            FD_WWTP: Kind.EMISSION,
            FD_AMBIENT: Kind.AIR,
            FD_DUSTFALL: Kind.MONITOR,
            FD_NOISE: Kind.MONITOR,
            FD_SITE: Kind.MONITOR,
            FD_VAPOUR: Kind.MONITOR,
            FD_TREATMENT: Kind.MONITOR,
            FD_PRODUCTION: Kind.MONITOR,
        }
        kinds = {sp.source: sp.kind for sp in self.specs}
        # a subset of the catalogue (e.g. one locality) plays the part of the script it holds
        if not any(kinds.get(src) is kind for src, kind in wanted.items()):
            raise ScenarioError(
                self.name,
                "none of its sources is simulated: it needs the catalogue's sources "
                f"(--config deploy/config): {', '.join(wanted)}",
            )
        return "catalogue"

    # ---------------------------------------------------------------- helpers
    def _hours(self, label: datetime) -> float:
        return self.offset(label) / HOUR

    def _in(self, label: datetime, window: tuple[int, int]) -> bool:
        return window[0] <= self._hours(label) < window[1]

    def night_of(self, label: datetime) -> int | None:
        """The day index N of the night (day N 22:00 … N+1 06:00) an hourly label lies in."""
        day, slot = local_day_and_hour(label, HOUR)
        index = (day.date() - self.day0).days
        if slot >= 22:
            return index
        if slot < 6:
            return index - 1
        return None

    def _rng(self, spec: SourceSpec, label: datetime) -> Rng:
        return rng_for(self.seed, self.name, spec.source, label.isoformat())

    # ---------------------------------------------------------------- the script
    def override(self, spec: SourceSpec, label: datetime, values: Values) -> Values | None:
        if spec.kind is Kind.AIR:
            return self._air(spec, label, values)
        if spec.kind is Kind.WATER:
            return self._water(spec, values)
        if spec.kind is Kind.FORECAST:
            return self._forecast(spec, label, values)
        src = spec.source
        out = dict(values)
        if src == FD_BYPASS and self._in(label, FD_BYPASS_HOURS):
            out["bypass_open"] = Value(value=1.0)
        elif src == FD_WWTP and day_index(label, self.start) in FD_WWTP_DAYS:
            limit = spec.limits.get("cod", DEFAULT_LIMITS["wastewater"]["cod"])
            lo, hi = FD_WWTP_COD_MULTIPLE
            out["cod"] = Value(value=round(limit * self._rng(spec, label).uniform(lo, hi), 1))
        elif src == FD_DUSTFALL:
            day, _ = local_day_and_hour(label, spec.period)
            if (day.year, day.month) == self.dustfall_month:
                x = FD_DUSTFALL_HIGH * (1 + self._rng(spec, label).uniform(-0.05, 0.05))
                out["dustfall"] = Value(value=round(x, 2))
        elif src == FD_NOISE and self.night_of(label) in FD_NOISE_NIGHTS:
            night_limit = spec.baseline.get("noise_leq_night", 48.0) + NOISE_MARGIN_DB
            x = night_limit + FD_NOISE_ABOVE_DB + self._rng(spec, label).uniform(-1.0, 1.0)
            out["noise_leq"] = Value(value=round(x, 1))
        elif src == FD_SITE and self._in(label, FD_SITE_HOURS):
            rng = self._rng(spec, label)
            for f in ("dust", "pm10"):
                if f in spec.factors:
                    x = spec.limits.get(f, 150.0) * rng.uniform(*FD_SITE_MULTIPLE)
                    out[f] = Value(value=round(x, 1))
        elif src == FD_VAPOUR and self._in(label, FD_VAPOUR_HOURS):
            out["vapour_recovery"] = Value(value=0.0)
        elif src == FD_TREATMENT and self._in(label, FD_POWER_HOURS):
            out["power_kw"] = Value(
                value=round(self._rng(spec, label).uniform(*FD_TREATMENT_KW), 1)
            )
        return out

    def _grade(self, spec: SourceSpec) -> str:
        return "I" if spec.area_grade == "I" else "II"

    def _air(self, spec: SourceSpec, label: datetime, values: Values) -> Values:
        day, slot = local_day_and_hour(label, spec.period)
        out = dict(values)
        if spec.source == FD_AMBIENT and day_index(label, self.start) in FD_AMBIENT_DAYS:
            # exactly FD_AMBIENT_PM25 as the natural-day mean: the winter shape plus 24
            # deviations summing to zero (as in winter-episode)
            rng = rng_for(self.seed, self.name, spec.source, day.date())
            noise = [max(-0.15, min(0.15, rng.gauss(0.0, 0.05))) for _ in range(24)]
            centre = sum(noise) / 24
            pm25 = FD_AMBIENT_PM25 * (PM_WINTER[slot] + noise[slot] - centre)
            if "pm25" in out:
                out["pm25"] = Value(value=round(pm25, 1))
            if "pm10" in out:
                out["pm10"] = Value(value=round(pm25 * FD_AMBIENT_PM10_RATIO, 1))
        else:
            k = self._pm_factor(spec, day)
            for f in ("pm25", "pm10"):
                v = out.get(f)
                if v is not None and v.value is not None and k < 1:
                    out[f] = Value(value=round(v.value * k, 1), flag=v.flag)
        grade = self._grade(spec)
        w = winter_weight(label)
        scales = {
            "o3": FD_O3_CAP[grade] / (35 + 65 * (1 - w)),
            "no2": FD_NO2_CAP
            / ((25 + 20 * w) * locality_day_factor(self.seed, spec.locality, day) ** 0.5),
        }
        for f, k in scales.items():
            v = out.get(f)
            if v is not None and v.value is not None and k < 1:
                out[f] = Value(value=round(v.value * k, 1), flag=v.flag)
        return out

    def _pm_factor(self, spec: SourceSpec, day: datetime) -> float:
        key = (spec.source, day.date())
        k = self._pm_scale.get(key)
        if k is None:
            annual = spec.baseline.get("pm25", 45.0)
            level = expected_daily_pm25(self.seed, spec.locality, annual, day)
            level *= station_factor(self.seed, spec.source)
            k = min(1.0, FD_PM25_CAP[self._grade(spec)] / level)
            self._pm_scale[key] = k
        return k

    def _water(self, spec: SourceSpec, values: Values) -> Values:
        out = dict(values)
        targets = {**FD_WATER, "tp": FD_TP[spec.lake]}
        if spec.lake:
            targets["tn"] = FD_TN_LAKE
        for f, v in values.items():
            if v.value is None:
                continue
            if f == "do":
                out[f] = Value(value=round(v.value + FD_DO_SHIFT, 1), flag=v.flag)
            elif f in targets:
                typical = spec.baseline.get(f, WATER_DEFAULTS.get(f, 1.0))
                x = v.value * targets[f] / typical
                out[f] = Value(
                    value=round(x, 3 if f in ("tp", "nh3n", "fluoride") else 1), flag=v.flag
                )
        return out

    def _forecast(self, spec: SourceSpec, label: datetime, values: Values) -> Values:
        """The forecasters follow the clean background: daily PM2.5 at most the grade II cap."""
        day = (label - DAY).astimezone(BEIJING)
        pm = expected_daily_pm25(self.seed, spec.locality, spec.baseline.get("pm25", 45.0), day)
        pm = min(pm, FD_PM25_CAP["II"])
        out = dict(values)
        if "pm25" in spec.factors:
            out["pm25"] = Value(value=float(round(pm)))
        if "aqi" in spec.factors:
            out["aqi"] = Value(value=float(pm25_daily_aqi_2026(pm)))
        return out

    # ---------------------------------------------------------------- documentation
    def timeline(self) -> list[Event]:
        """Each event spans the time its samples cover: from the start of the first sampled
        period to the last label (as the other scenarios' timelines)."""
        d0 = self.start

        def day(d: int) -> datetime:
            return d0 + d * DAY

        def hours(window: tuple[int, int], subject: str, effect: str) -> Event:
            a, b = window
            return Event(
                self.at(a - 1),
                self.at(b - 1),
                subject,
                f"{effect} (samples labelled start+{a} h … start+{b - 1} h)",
            )

        def spec(src: str) -> SourceSpec | None:
            return self._by_id.get(src)

        wwtp_spec, site_spec, noise_spec = spec(FD_WWTP), spec(FD_SITE), spec(FD_NOISE)
        wwtp = DEFAULT_LIMITS["wastewater"]["cod"]
        if wwtp_spec is not None:
            wwtp = wwtp_spec.limits.get("cod", wwtp)
        site = site_spec.limits.get("pm10", 150.0) if site_spec is not None else 150.0
        noise = 48.0 + NOISE_MARGIN_DB
        if noise_spec is not None:
            noise = noise_spec.baseline.get("noise_leq_night", 48.0) + NOISE_MARGIN_DB
        y, m = self.dustfall_month
        month_start = datetime(y, m, 1, tzinfo=BEIJING)
        next_month = datetime(y + m // 12, m % 12 + 1, 1, tzinfo=BEIJING)
        following = datetime(
            next_month.year + next_month.month // 12, next_month.month % 12 + 1, 1, tzinfo=BEIJING
        )
        lo, hi = FD_WWTP_COD_MULTIPLE
        s_lo, s_hi = FD_SITE_MULTIPLE
        events = [
            hours(FD_BYPASS_HOURS, FD_BYPASS, "bypass_open = 1"),
            Event(
                day(FD_WWTP_DAYS[0]),
                day(FD_WWTP_DAYS[-1] + 1),
                FD_WWTP,
                f"COD {wwtp * lo:g}–{wwtp * hi:g} mg/L every hour of days "
                f"{FD_WWTP_DAYS[0]}–{FD_WWTP_DAYS[-1]} (daily mean ≈ 2× the {wwtp:g} mg/L limit)",
            ),
            Event(
                day(FD_AMBIENT_DAYS[0]),
                day(FD_AMBIENT_DAYS[-1] + 1),
                FD_AMBIENT,
                f"daily mean PM2.5 {FD_AMBIENT_PM25:g} µg/m³ and PM10 "
                f"{FD_AMBIENT_PM25 * FD_AMBIENT_PM10_RATIO:g} µg/m³ on days "
                f"{FD_AMBIENT_DAYS[0]}–{FD_AMBIENT_DAYS[-1]}",
            ),
            Event(
                max(month_start, d0),
                next_month,
                FD_DUSTFALL,
                f"dustfall ≈ {FD_DUSTFALL_HIGH:g} t/(month·km²) every day of {y}-{m:02d} "
                f"(monthly mean above 7); base ≈ 5 from {next_month:%Y-%m-%d}",
            ),
            Event(
                next_month,
                following,
                FD_DUSTFALL,
                f"{next_month:%Y-%m}: base dustfall ≈ 5 t/(month·km²), monthly mean within 7",
            ),
            *(
                Event(
                    day(n) + 22 * HOUR,
                    day(n + 1) + 6 * HOUR,
                    FD_NOISE,
                    f"night Leq {noise + FD_NOISE_ABOVE_DB - 1:g}–{noise + FD_NOISE_ABOVE_DB + 1:g}"
                    f" dB(A) above the {noise:g} night limit (night of day {n})",
                )
                for n in FD_NOISE_NIGHTS
            ),
            hours(
                FD_SITE_HOURS,
                FD_SITE,
                f"dust and PM10 {site * s_lo:g}–{site * s_hi:g} µg/m³ (limit {site:g})",
            ),
            hours(FD_VAPOUR_HOURS, FD_VAPOUR, "vapour_recovery = 0 (fault)"),
            hours(
                FD_POWER_HOURS,
                FD_TREATMENT,
                f"treatment {FD_TREATMENT_KW[0]:g}–{FD_TREATMENT_KW[1]:g} kW while "
                f"{FD_PRODUCTION} runs (night load ≈ 436 kW > running_kw)",
            ),
        ]
        present = [e for e in events if e.subject in self._by_id]
        return sorted(present, key=lambda e: (e.begin, e.subject))


# ============================================================================ river spill

#: NH3-N (mg/L) at the spill section for the samples labelled start+20 h, +24 h and +28 h
#: (sections report every 4 h): a spill upstream arrives, peaks and recedes. The base value is
#: ~0.45 mg/L (class II, GB 3838-2002 表1); 3.0 and 5.0 are 劣V (> 2.0), 1.2 is class IV.
SPILL_NH3N: Final = (3.0, 5.0, 1.2)
#: The spill section when the catalogue has it: 潍河上游, upstream of the drinking-water source
#: 峡山水库 (ws-wf-03) and of 潍河入海 (ws-wf-02), deploy/config/weifang.yaml (example links).
SPILL_SECTION: Final = "ws-wf-01"


class RiverSpill(Scenario):
    name = "river-spill"
    summary = (
        "a spill upstream reaches a water section: NH3-N 3.0, 5.0, 1.2 mg/L in the samples "
        "labelled start+20 h, +24 h, +28 h (base ~0.45), back to the base from +32 h"
    )
    hours = 48
    needs_catalog = True
    prefer = ((Kind.WATER, ""),)

    def _resolve(self, target: str | None) -> str:
        if target is None and any(s.source == SPILL_SECTION for s in self.specs):
            return SPILL_SECTION
        return super()._resolve(target)

    def override(self, spec: SourceSpec, label: datetime, values: Values) -> Values | None:
        if spec.source != self.target:
            return values
        h = self.offset(label) / HOUR
        for i, x in enumerate(SPILL_NH3N):
            if h == 20 + 4 * i:
                return {**values, "nh3n": Value(value=x)}
        return values

    def timeline(self) -> list[Event]:
        t = self.target
        return [
            Event(self.at(20), None, t, "NH3-N 3.0 mg/L: a jump (≥ 2 × its 24-h baseline), 劣V"),
            Event(self.at(24), None, t, "NH3-N 5.0 mg/L: the peak"),
            Event(self.at(28), None, t, "NH3-N 1.2 mg/L: receding, still a jump, class IV"),
            Event(self.at(32), None, t, "back to the base level: the jump is over"),
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
        FortyDays,
        RiverSpill,
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
