"""Base signal models: the value of every factor of a source at a label time, deterministically.

Every value is a pure function of ``(seed, spec, label)``; nothing reads a clock. The models are
*illustrative*: shapes and amplitudes are simulation parameters chosen to look like the daily
cycles operators know (numbers without a standard citation below are such parameters, not
domain limits). Levels are anchored on cited figures:

* air PM2.5 baseline = the locality's annual mean (plans, see ``network.py``); the seasonal
  factor ``0.6 + 0.8·w`` (w = 1 in mid-January, 0 in mid-July) averages 1 over a year, so the
  simulated annual mean equals that baseline; winter PM2.5 is high at night and in the morning,
  low in the afternoon; summer O3 peaks around 15:00;
* the locality's day-to-day factor is capped to [0.5, 1.7], so that WITHOUT a scenario no
  locality reaches a daily PM2.5 of 150 µg/m³ (daily AQI 200, HJ 633-2012/2026 表1/表3) with the
  plans' annual means (≤ 52 µg/m³ × 1.4 × 1.7 × 1.1 station factor < 150): base streams never
  trigger a heavy-pollution warning by themselves;
* outlet concentrations sit at ``baseline`` (default 40–55 % of the permit limit) with a small
  production cycle; water quality drifts slowly, DO and pH follow a day/night photosynthesis
  cycle; noise is ~10 dB(A) lower at night (22:00–06:00, GB 3096-2008 昼间/夜间), or, for a
  catalogue monitor with a zone class, 6 dB(A) below its class's day and night limits;
* the random part of monitor values is bounded (:data:`MONITOR_NOISE_BOUNDS`), so base monitor
  values never cross the catalogue's limits.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Final

from rules.beijing import BEIJING
from rules.factors import Kind

from ingest.schemas import Value
from ingest.simulators.model import DAY, Rng, SourceSpec, local_day_and_hour, rng_for


def _normalised(raw: Sequence[float]) -> tuple[float, ...]:
    mean = sum(raw) / len(raw)
    return tuple(v / mean for v in raw)


# Diurnal shapes: 24 factors (slot h = the hour h:00–h+1:00 Beijing time), each with mean 1.
#: Winter PM2.5/CO: accumulation under the night inversion, morning peak, afternoon mixing.
PM_WINTER: Final = _normalised(
    [1.25, 1.30, 1.30, 1.28, 1.25, 1.20, 1.18, 1.20, 1.22, 1.15, 1.00, 0.85,
     0.72, 0.65, 0.62, 0.62, 0.68, 0.80, 0.95, 1.05, 1.12, 1.18, 1.22, 1.25]
)  # fmt: skip
#: Summer PM2.5: flatter, slightly higher in the early morning.
PM_SUMMER: Final = _normalised([1 + 0.15 * math.cos(2 * math.pi * (h - 6) / 24) for h in range(24)])
#: O3: photochemical production, maximum around 15:00, night floor by titration.
O3_SHAPE: Final = _normalised(
    [0.35 + 1.3 * max(0.0, math.sin(math.pi * (h - 7) / 16)) if 7 <= h <= 23 else 0.35
     for h in range(24)]
)  # fmt: skip
#: NO2: traffic peaks around 08:00 and 19:00.
NO2_SHAPE: Final = _normalised(
    [0.95, 0.90, 0.85, 0.82, 0.82, 0.88, 1.00, 1.20, 1.30, 1.15, 0.95, 0.85,
     0.80, 0.78, 0.78, 0.82, 0.92, 1.10, 1.28, 1.30, 1.22, 1.12, 1.05, 1.00]
)  # fmt: skip
#: Dissolved oxygen / pH: photosynthesis, maximum mid-afternoon, minimum at dawn.
PHOTO: Final = tuple(math.sin(2 * math.pi * (h - 9) / 24) for h in range(24))  # mean 0
#: Construction dust and electricity: working hours 07:00–19:00.
WORK: Final = _normalised([1.6 if 7 <= h < 19 else 0.6 for h in range(24)])


def winter_weight(at: datetime) -> float:
    """1 in mid-January, 0 in mid-July (a cosine over the year)."""
    doy = at.astimezone(BEIJING).timetuple().tm_yday
    return (1 + math.cos(2 * math.pi * (doy - 15) / 365.25)) / 2


def locality_day_factor(seed: int, locality: str, day: datetime) -> float:
    """The locality's weather of the day (dispersion): lognormal, capped to [0.5, 1.7]."""
    z = rng_for(seed, "dayfactor", locality, day.date()).gauss(0.0, 1.0)
    return min(1.7, max(0.5, math.exp(0.3 * z)))


def station_factor(seed: int, source: str) -> float:
    """A station's constant offset from its locality's mean: within ±10 %."""
    return 1 + rng_for(seed, "station", source).uniform(-0.1, 0.1)


def expected_daily_pm25(seed: int, locality: str, annual: float, day: datetime) -> float:
    """The locality's simulated daily mean PM2.5 (before station offsets and hourly noise)."""
    w = winter_weight(day + DAY / 2)
    return annual * (0.6 + 0.8 * w) * locality_day_factor(seed, locality, day)


_PM25_BP: Final = ((0, 0), (35, 50), (60, 100), (115, 150), (150, 200), (250, 300), (350, 400), (500, 500))  # fmt: skip
# HJ 633-2026 表3, PM2.5 日平均 column: (concentration µg/m³, IAQI); standards.md §1.1.


def pm25_daily_aqi_2026(c: float) -> int:
    """IAQI of a daily mean PM2.5 by HJ 633-2026 表3 (linear between breakpoints, rounded up,
    4.2.6); 500 above the top breakpoint. Used only to label simulated forecasts."""
    c = float(round(c))  # HJ 633-2026 4.2.3: µg/m³ to whole numbers (GB/T 8170)
    for (c_lo, i_lo), (c_hi, i_hi) in itertools.pairwise(_PM25_BP):
        if c <= c_hi:
            return math.ceil((i_hi - i_lo) / (c_hi - c_lo) * (c - c_lo) + i_lo - 1e-9)
    return 500


Values = dict[str, Value]
_DECIMALS: Final = {"co": 2, "ph": 2, "tp": 3, "nh3n": 3, "fluoride": 3, "o2": 2, "flow": 0}


def _v(factor: str, x: float) -> Value:
    return Value(value=round(max(0.0, x), _DECIMALS.get(factor, 1)))


def _air(spec: SourceSpec, label: datetime, seed: int) -> Values:
    day, h = local_day_and_hour(label, spec.period)
    w = winter_weight(label)
    rng = rng_for(seed, spec.source, label.isoformat())
    annual = spec.baseline.get("pm25", 45.0)
    pm_day = expected_daily_pm25(seed, spec.locality, annual, day) * station_factor(
        seed, spec.source
    )
    pm_shape = w * PM_WINTER[h] + (1 - w) * PM_SUMMER[h]
    pm25 = pm_day * pm_shape * (1 + rng.gauss(0, 0.08))
    disp = locality_day_factor(seed, spec.locality, day)
    models: dict[str, Callable[[], float]] = {
        "pm25": lambda: pm25,
        # PM10/PM2.5 ≈ 1.74: Zhifu 2020, PM10 54 / PM2.5 31 (004_1895d2013dbd21a6.txt#L94)
        "pm10": lambda: pm25 * spec.baseline.get("pm10_ratio", 1.74) * (1 + rng.gauss(0, 0.05)),
        "no2": lambda: (25 + 20 * w) * disp**0.5 * NO2_SHAPE[h] * (1 + rng.gauss(0, 0.1)),
        "so2": lambda: (7 + 8 * w) * (1 + rng.gauss(0, 0.1)),
        "co": lambda: (0.5 + 0.6 * w) * disp**0.5 * pm_shape * (1 + rng.gauss(0, 0.05)),
        # O3 daily mean ~35 µg/m³ in winter, ~100 in summer (afternoon peaks ~45 / ~185)
        "o3": lambda: (35 + 65 * (1 - w)) * O3_SHAPE[h] * (1 + rng.gauss(0, 0.08)),
    }
    return {f: _v(f, models[f]()) for f in spec.factors if f in models}


#: Typical river values when a spec gives no baseline: within GB 3838-2002 表1 class III
#: (CODMn ≤ 6, NH3-N ≤ 1.0, TP ≤ 0.2, fluoride ≤ 1.0 mg/L; DO ≥ 5 mg/L; standards.md §3.1).
WATER_DEFAULTS: Final = {
    "temp": 14.0, "ph": 7.8, "do": 7.5, "cond": 650.0, "turb": 18.0, "codmn": 4.2,
    "cod": 16.0, "bod5": 3.2, "nh3n": 0.45, "tp": 0.12, "tn": 2.1, "fluoride": 0.75,
    "cu": 0.005, "zn": 0.02, "as": 0.002, "hg": 0.00002, "cd": 0.0005, "pb": 0.002,
    "cr6": 0.004, "se": 0.001, "cyanide": 0.002, "phenol": 0.001, "oil": 0.02,
    "las": 0.05, "sulfide": 0.01, "fecal_coliform": 800.0, "chla": 0.01,
}  # fmt: skip


def _water(spec: SourceSpec, label: datetime, seed: int) -> Values:
    day, h = local_day_and_hour(label, spec.period)
    w = winter_weight(label)
    rng = rng_for(seed, spec.source, label.isoformat())
    drift = 1 + 0.06 * math.sin(2 * math.pi * day.toordinal() / 9.0)  # slow, ~9-day swing
    out: Values = {}
    for f in spec.factors:
        base = spec.baseline.get(f, WATER_DEFAULTS.get(f, 1.0))
        if f == "temp":
            x = 4 + 22 * (1 - w) + 1.2 * PHOTO[h] + rng.gauss(0, 0.2)
        elif f == "do":
            x = base * (1 + 0.12 * PHOTO[h]) + 1.5 * (w - 0.5) + rng.gauss(0, 0.1)
        elif f == "ph":
            x = base + 0.15 * PHOTO[h] + rng.gauss(0, 0.03)
        else:
            x = base * drift * (1 + rng.gauss(0, 0.03))
        out[f] = _v(f, x)
    return out


#: Permit limits used when a spec gives none: GB 13271-2014 表3 特别排放限值, coal-fired boiler
#: (PM 30, SO2 200, NOx 200 mg/m³, reference O2 9 %), and GB 18918-2002 表1 一级A for
#: wastewater (COD 50, NH3-N 5, TP 0.5, TN 15 mg/L); standards.md §5 and §7.1. Configuration
#: defaults: the catalogue's permit values replace them.
DEFAULT_LIMITS: Final = {
    "gas": {"pm": 30.0, "so2": 200.0, "nox": 200.0},
    "wastewater": {"cod": 50.0, "nh3n": 5.0, "tp": 0.5, "tn": 15.0},
}
#: Reference O2 of a coal-fired boiler, GB 13271-2014 表6 (standards.md §5).
DEFAULT_O2_REF: Final = 9.0
#: Share of the permit limit an outlet runs at in normal operation (simulation parameter).
NORMAL_SHARE: Final = {"pm": 0.35, "so2": 0.4, "nox": 0.55, "cod": 0.5, "nh3n": 0.3, "tp": 0.5, "tn": 0.55}  # fmt: skip


def _emission(spec: SourceSpec, label: datetime, seed: int) -> Values:
    _, h = local_day_and_hour(label, spec.period)
    rng = rng_for(seed, spec.source, label.isoformat())
    load = 1 + 0.05 * math.sin(2 * math.pi * (h - 10) / 24)  # production swing ±5 %
    limits = {**DEFAULT_LIMITS.get(spec.subtype, {}), **spec.limits}
    o2_ref = spec.o2_ref if spec.o2_ref is not None else DEFAULT_O2_REF
    out: Values = {}
    for f in spec.factors:
        if f in spec.baseline:
            base = spec.baseline[f]
        elif f in limits:
            base = limits[f] * NORMAL_SHARE.get(f, 0.5)
        else:
            base = {
                "o2": o2_ref,
                "temp": 55.0 if spec.subtype != "wastewater" else 18.0,
                "flow": 120_000.0 if spec.subtype != "wastewater" else 400.0,
                "humidity": 9.0,
                "pressure": 0.2,
                "velocity": 12.0,
                "ph": 7.3,
                "co": 20.0,
                "nmhc": 8.0,
                "ss": 6.0,
                "bod5": 5.0,
            }.get(f, 1.0)
        if f == "o2":
            x = base + rng.gauss(0, 0.15)
        elif f == "ph":
            x = base + rng.gauss(0, 0.05)
        elif f in ("temp", "pressure", "humidity"):
            x = base * (1 + rng.gauss(0, 0.02))
        else:
            x = base * load * (1 + rng.gauss(0, 0.04))
        out[f] = _v(f, x)
    return out


#: Noise monitors of the catalogue run this many dB(A) below their zone class's GB 3096-2008
#: 表1 day and night limits (simulation parameter; ``network.specs_from_catalog``).
NOISE_MARGIN_DB: Final = 6.0
#: Bounds of the random part of monitor values (simulation parameters), so that base values stay
#: within the limits by construction: noise ±3 dB(A) (σ 1); dust/PM10 ±20 % (σ 10 %: at most
#: 80 × WORK 1.4545 × 1.2 = 139.6 µg/m³ below the catalogue's 150); electricity ±10 % (σ 3 %:
#: production at night ≥ 800 × 0.5455 × 0.9 = 392.7 kW, above the catalogue's running_kw 300;
#: treatment ≥ 0.9 × normal_kw); dustfall ±25 % (σ 10 %: at most 6.25 below 7).
MONITOR_NOISE_BOUNDS: Final = {"noise_leq": 3.0, "dust": 0.2, "pm10": 0.2, "power_kw": 0.1, "dustfall": 0.25}  # fmt: skip


def _bounded(rng: Rng, sigma: float, bound: float) -> float:
    return max(-bound, min(bound, rng.gauss(0, sigma)))


def _monitor(spec: SourceSpec, label: datetime, seed: int) -> Values:
    _, h = local_day_and_hour(label, spec.period)
    rng = rng_for(seed, spec.source, label.isoformat())
    out: Values = {}
    b = MONITOR_NOISE_BOUNDS
    for f in spec.factors:
        base = spec.baseline.get(f)
        if f == "noise_leq":
            day_level = base if base is not None else 58.0
            night_level = spec.baseline.get("noise_leq_night", day_level - 10)
            level = day_level if 6 <= h < 22 else night_level  # 昼间 06–22 by the hour's start
            out[f] = Value(value=round(level + _bounded(rng, 1.0, b[f]), 1))
        elif f in ("dust", "pm10"):
            x = (base if base is not None else 80.0) * WORK[h] * (1 + _bounded(rng, 0.1, b[f]))
            out[f] = _v(f, x)
        elif f == "power_kw":
            shape = 1.0 if spec.subtype == "power-treatment" else WORK[h]
            x = (base if base is not None else 800.0) * shape * (1 + _bounded(rng, 0.03, b[f]))
            out[f] = _v(f, x)
        elif f == "dustfall":
            x = (base if base is not None else 5.0) * (1 + _bounded(rng, 0.1, b[f]))
            out[f] = Value(value=round(max(0.0, x), 2))
        elif f == "bypass_open":
            out[f] = Value(value=base if base is not None else 0.0)
        else:  # vapour_recovery status: 1 = working
            out[f] = Value(value=base if base is not None else 1.0)
    return out


def _forecast(spec: SourceSpec, label: datetime, seed: int) -> Values:
    """A perfect forecast of the locality's daily mean PM2.5 for the day ending at ``label``."""
    day = (label - DAY).astimezone(BEIJING)
    pm = expected_daily_pm25(seed, spec.locality, spec.baseline.get("pm25", 45.0), day)
    out: Values = {}
    if "pm25" in spec.factors:
        out["pm25"] = Value(value=float(round(pm)))
    if "aqi" in spec.factors:
        out["aqi"] = Value(value=float(pm25_daily_aqi_2026(pm)))
    return out


_MODELS: Final[dict[Kind, Callable[[SourceSpec, datetime, int], Values]]] = {
    Kind.AIR: _air,
    Kind.WATER: _water,
    Kind.EMISSION: _emission,
    Kind.MONITOR: _monitor,
    Kind.FORECAST: _forecast,
}


def base_values(spec: SourceSpec, label: datetime, seed: int) -> Values:
    """Every factor of ``spec`` at ``label`` (flag N), before any scenario."""
    return _MODELS[spec.kind](spec, label, seed)
