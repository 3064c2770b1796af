"""Which sources are simulated: a built-in default network, or the operator's catalogue.

* :func:`default_specs` — five localities of the plans, each with air stations, water sections,
  one enterprise (a gas outlet and a wastewater outlet), a construction-dust monitor, a noise
  monitor, an electricity monitor, and an AQI forecaster. Used when no catalogue is given.
* :func:`specs_from_catalog` — the same from a :class:`rules.catalog.Catalog`. The catalogue
  model is read defensively (``getattr`` with defaults) so that the simulators keep working
  while that model grows; anything it lacks falls back to the default levels.

Source ids follow the MQTT ACL of architecture.md §4.2: enterprise outlets start with ``e-``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any, Final

from rules.factors import AIR, MONITOR, WATER, Kind
from rules.standards.gb3096 import LIMITS as NOISE_LIMITS

from ingest.schemas import Interval
from ingest.simulators.model import DAY, SourceSpec
from ingest.simulators.profiles import DEFAULT_O2_REF, NOISE_MARGIN_DB, WATER_DEFAULTS

#: Surface-water automatic stations report every 4 h (6 values a day) in routine operation
#: (standards.md §3.3 [1]); a simulation default.
WATER_PERIOD: Final = timedelta(hours=4)
AIR_FACTORS: Final = ("pm25", "pm10", "so2", "no2", "co", "o3")
#: The 9 basic parameters of an automatic surface-water station (standards.md §3.3 [2+]).
WATER_FACTORS: Final = ("temp", "ph", "do", "cond", "turb", "codmn", "nh3n", "tp", "tn")
GAS_FACTORS: Final = ("so2", "nox", "pm", "o2", "temp", "flow", "humidity")
WASTEWATER_FACTORS: Final = ("cod", "nh3n", "tp", "tn", "ph", "flow")
FORECAST_FACTORS: Final = ("aqi", "pm25")

# (locality id, short code, 2020 annual PM2.5 µg/m³ with its plan line)
_LOCALITIES: Final = (
    ("liaocheng-etdz", "lc", 52.0),  # 000_d6d679181568297b.txt#L37
    ("weifang", "wf", 49.0),  # 001_15ef1b070f9ae15b.txt#L90
    ("tianqiao", "tq", 52.0),  # 002_6d72280123f25383.txt#L68
    ("laixi", "lx", 46.0),  # 003_021375295357aa36.txt#L129 (2019 value, table says 2020)
    ("zhifu", "zf", 31.0),  # 004_1895d2013dbd21a6.txt#L94
)


def default_specs(stations_per_locality: int = 3) -> list[SourceSpec]:
    """The built-in network (no catalogue needed), sorted by (locality, source)."""
    specs: list[SourceSpec] = []
    for locality, code, pm25 in _LOCALITIES:
        for i in range(1, stations_per_locality + 1):
            specs.append(
                SourceSpec(
                    kind=Kind.AIR,
                    locality=locality,
                    source=f"aq-{code}-{i:02d}",
                    factors=AIR_FACTORS,
                    baseline={"pm25": pm25},
                )
            )
        water_baseline: dict[str, float] = {}
        water_factors: tuple[str, ...] = WATER_FACTORS
        section = f"ws-{code}-01"
        if locality == "laixi":
            # 小沽河 敬庄公路桥: fluoride persistently above the limit, target class IV
            # (003_021375295357aa36.txt#L55, #L107). Simulated at 1.2 mg/L: class IV
            # (1.0 < F ≤ 1.5, GB 3838-2002 表1), so the river-fluoride scenario can push it
            # over 1.5 (劣V).
            section = "ws-lx-jingzhuang"
            water_factors = (*WATER_FACTORS, "fluoride")
            water_baseline = {"fluoride": 1.2}
        specs.append(
            SourceSpec(
                kind=Kind.WATER,
                locality=locality,
                source=section,
                factors=water_factors,
                period=WATER_PERIOD,
                baseline=water_baseline,
            )
        )
        ent = f"e-{code}-01"
        specs.append(
            SourceSpec(
                kind=Kind.EMISSION,
                locality=locality,
                source=f"{ent}-g1",
                factors=GAS_FACTORS,
                subtype="gas",
                enterprise=ent,
                mn=_mn(code, 1),
                o2_ref=DEFAULT_O2_REF,
            )
        )
        specs.append(
            SourceSpec(
                kind=Kind.EMISSION,
                locality=locality,
                source=f"{ent}-w1",
                factors=WASTEWATER_FACTORS,
                subtype="wastewater",
                enterprise=ent,
                mn=_mn(code, 2),
            )
        )
        specs.append(
            SourceSpec(
                kind=Kind.MONITOR,
                locality=locality,
                source=f"mon-{code}-dust1",
                factors=("dust",),
                subtype="dust",
            )
        )
        specs.append(
            SourceSpec(
                kind=Kind.MONITOR,
                locality=locality,
                source=f"mon-{code}-noise1",
                factors=("noise_leq",),
                subtype="noise",
            )
        )
        specs.append(
            SourceSpec(
                kind=Kind.MONITOR,
                locality=locality,
                source=f"mon-{ent}-power",
                factors=("power_kw",),
                subtype="power",
                enterprise=ent,
            )
        )
        specs.append(forecast_spec(locality, pm25))
    return sorted(specs, key=lambda s: (s.locality, s.source))


def forecast_spec(locality: str, pm25_annual: float) -> SourceSpec:
    """The AQI forecaster of a locality: one daily forecast per day (kind ``forecast``)."""
    return SourceSpec(
        kind=Kind.FORECAST,
        locality=locality,
        source=f"fc-{locality}",
        factors=FORECAST_FACTORS,
        period=DAY,
        interval=Interval.DAY,
        baseline={"pm25": pm25_annual},
        subtype="forecast",
    )


def _mn(code: str, n: int) -> str:
    # HJ 212-2017 表3: MN up to 24 characters; a recognisable, valid 14-character test MN.
    return f"8888{code.upper()}{n:08d}"


# --------------------------------------------------------------------------- catalogue adapter


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _str(value: Any) -> str:
    """The plain value of an enum or a string."""
    return str(getattr(value, "value", value))


def _factors(raw: Any, vocab: Mapping[str, str], default: Iterable[str]) -> tuple[str, ...]:
    got = tuple(f for f in (raw or ()) if f in vocab)
    return got or tuple(default)


def _limits(raw: Any) -> dict[str, float]:
    """Permit limits from a catalogue entry: a list of ``FactorLimit``-like items or a mapping."""
    out: dict[str, float] = {}
    if isinstance(raw, Mapping):
        items: Iterable[Any] = [{"factor": k, "limit": v} for k, v in raw.items()]
    else:
        items = raw or ()
    for item in items:
        factor, limit = _get(item, "factor"), _get(item, "limit")
        if isinstance(factor, str) and isinstance(limit, int | float) and limit >= 0:
            out[factor] = float(limit)
    return out


_MONITOR_SUBTYPE: Final = {
    "construction_dust": "dust",
    "road_dust": "dust",
    "dustfall": "dustfall",
    "noise": "noise",
    "vapour_recovery": "vapour",
    "bypass": "bypass",
    "electricity": "power",
}


def specs_from_catalog(catalog: Any, *, with_forecasts: bool = True) -> list[SourceSpec]:
    """Source specs for every station, section, outlet and monitor of a catalogue, plus one
    AQI forecaster per locality that has air stations. Sorted by (locality, source)."""
    specs: list[SourceSpec] = []
    pm25_default = {loc: pm for loc, _, pm in _LOCALITIES}
    air_localities: dict[str, float] = {}
    for st in _get(catalog, "stations", ()) or ():
        loc = _str(_get(st, "locality"))
        pm25 = pm25_default.get(loc, 45.0)
        air_localities[loc] = pm25
        specs.append(
            SourceSpec(
                kind=Kind.AIR,
                locality=loc,
                source=_str(_get(st, "id")),
                factors=_factors(_get(st, "factors"), AIR, AIR_FACTORS),
                baseline={"pm25": pm25},
                name=_str(_get(st, "name", "")),
                area_grade=_str(_get(st, "area_grade", "") or ""),
            )
        )
    for sec in _get(catalog, "sections", ()) or ():
        factors = _factors(_get(sec, "factors"), WATER, WATER_FACTORS)
        problems = tuple(f for f in (_get(sec, "problem_factors", ()) or ()) if f in WATER)
        factors = tuple(dict.fromkeys((*factors, *problems)))
        baseline = _water_baseline(_get(sec, "target_class"), problems)
        specs.append(
            SourceSpec(
                kind=Kind.WATER,
                locality=_str(_get(sec, "locality")),
                source=_str(_get(sec, "id")),
                factors=factors,
                period=WATER_PERIOD,
                baseline=baseline,
                name=_str(_get(sec, "name", "")),
                lake=_str(_get(sec, "body", "river")) == "lake",
            )
        )
    reference_o2 = getattr(catalog, "reference_o2", None)
    for ent in _get(catalog, "enterprises", ()) or ():
        ent_id = _str(_get(ent, "id"))
        loc = _str(_get(ent, "locality"))
        for out in _get(ent, "outlets", ()) or ():
            wastewater = _str(_get(out, "type", "gas")) == "wastewater"
            o2: float | None = None
            if not wastewater:
                o2 = _get(out, "reference_o2")
                if o2 is None and callable(reference_o2):
                    try:
                        o2 = reference_o2(out)
                    except Exception:  # a defensive adapter: fall back to the default
                        o2 = None
            specs.append(
                SourceSpec(
                    kind=Kind.EMISSION,
                    locality=loc,
                    source=_str(_get(out, "id")),
                    factors=WASTEWATER_FACTORS if wastewater else GAS_FACTORS,
                    subtype="wastewater" if wastewater else "gas",
                    limits=_limits(_get(out, "limits")),
                    enterprise=ent_id,
                    mn=_get(out, "mn"),
                    o2_ref=float(o2)
                    if o2 is not None
                    else (None if wastewater else DEFAULT_O2_REF),
                    name=_str(_get(out, "name", "")),
                )
            )
    for mon in _get(catalog, "monitors", ()) or ():
        subtype = _MONITOR_SUBTYPE.get(_str(_get(mon, "kind", "")), "")
        factors = _factors(_get(mon, "factors"), MONITOR, ())
        if not factors:
            continue
        period = DAY if subtype == "dustfall" else timedelta(hours=1)
        subtype, monitor_baseline = _monitor_levels(mon, subtype)
        specs.append(
            SourceSpec(
                kind=Kind.MONITOR,
                locality=_str(_get(mon, "locality")),
                source=_str(_get(mon, "id")),
                factors=factors,
                period=period,
                interval=Interval.DAY if subtype == "dustfall" else Interval.HOUR,
                baseline=monitor_baseline,
                limits=_limits(_get(mon, "limits")),
                subtype=subtype,
                enterprise=_get(mon, "enterprise"),
                name=_str(_get(mon, "name", "")),
            )
        )
    if with_forecasts:
        specs.extend(forecast_spec(loc, pm) for loc, pm in sorted(air_localities.items()))
    return sorted(specs, key=lambda s: (s.locality, s.source))


def _monitor_levels(mon: Any, subtype: str) -> tuple[str, dict[str, float]]:
    """The cycle model and typical levels of a catalogue monitor.

    * noise with a ``zone_class``: day and night levels :data:`NOISE_MARGIN_DB` below the class's
      GB 3096-2008 表1 limits (e.g. 3 类 65/55 → 59/49 dB(A)), so base hours never exceed them;
    * electricity, role ``treatment``: subtype ``power-treatment`` (a flat load, the equipment
      runs whenever production does) at the monitor's ``normal_kw``;
    * electricity, role ``production`` (or no role): the working-hours load of the base model
      (800 kW × WORK[h]: ~1164 kW 07–19 h, ~436 kW at night).
    """
    if subtype == "noise":
        limits = NOISE_LIMITS.get(_str(_get(mon, "zone_class", "") or ""))
        if limits is not None:
            day_limit, night_limit = limits
            return subtype, {
                "noise_leq": day_limit - NOISE_MARGIN_DB,
                "noise_leq_night": night_limit - NOISE_MARGIN_DB,
            }
    if subtype == "power" and _str(_get(mon, "role", "") or "") == "treatment":
        normal = _get(mon, "normal_kw")
        if isinstance(normal, int | float) and normal > 0:
            return "power-treatment", {"power_kw": float(normal)}
        return "power-treatment", {}
    return subtype, {}


def _water_baseline(target_class: Any, problems: tuple[str, ...]) -> dict[str, float]:
    """Typical values for a section: class III defaults; a section with a problem factor runs
    that factor in class IV (e.g. fluoride 1.2 mg/L: 1.0 < F ≤ 1.5, GB 3838-2002 表1)."""
    del target_class  # the defaults already meet class III; worse targets change nothing here
    baseline: dict[str, float] = {}
    if "fluoride" in problems:
        baseline["fluoride"] = 1.2
    for f in problems:
        if f != "fluoride" and f in WATER_DEFAULTS:
            baseline[f] = WATER_DEFAULTS[f] * 1.5
    return baseline
