"""Is a sample what the catalogue says its source is, and are its values physically possible?

The evaluate stage (``streams.steps.EvaluateStep``, the same step ``envwatch backtest`` runs)
screens every sample with :func:`screen` before anything is computed from it. Two questions:

**Identity** — against the catalogue (:func:`expected_of`): the source must exist, be published
under the locality it belongs to and as the kind it is (an air station publishes ``air``, a
section ``water``, an outlet ``emission``, another monitor ``monitor``; an AQI forecast comes from
a source the catalogue does not list, under a known locality). A sample failing one of these is a
forgery or a wiring mistake: it is rejected **whole** — none of its values is trusted, so a
known station published under another locality never reaches that locality's statistics.

**Factors and values** — per factor: the source must measure it (*foreign factor*; what a source
measures is decided from the catalogue, see :func:`expected_of`), the value must be a finite
number (*not a number*, *not finite*) inside the factor's physical range (*out of range*,
:data:`RANGES`). A bad factor is **dropped alone** and the rest of the sample is evaluated: one
broken analyser channel must not lose a station's whole hour (its other factors are good data),
and a dropped factor simply has no value for that time, as when the analyser is off. When no
factor is left, the sample is rejected whole.

Every rejection becomes one dead letter whose reason names the source, the field, the value and
why (:meth:`Rejection.reason`); nothing rejected reaches the engine's state, the partition clock,
a city value, an aggregate, an alert or a data rate.

Ranges are by the factor's canonical unit (rules.factors) and source group; each carries where
it comes from — a standard, physics, or envwatch's choice [MEM]. They are deliberately wide: they
catch values no instrument and no atmosphere, river or stack can produce (1.7e308, 1e12, a
negative concentration), never a real extreme (a dust-storm hour far above the AQI scale stays
data). docs/plausibility.md shows the table (:func:`ranges_markdown`; a test keeps the two equal).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from rules.factors import (
    AIR,
    EMISSION_GAS,
    EMISSION_WATER,
    FORECAST,
    MONITOR,
    WATER,
    Kind,
)

if TYPE_CHECKING:
    from rules.evaluate import Sample

# --------------------------------------------------------------------------- reason codes

#: The source id is not in the catalogue (the evaluate stage's long-standing wording).
UNKNOWN_SOURCE: Final = "unknown source"
#: An AQI forecast under a locality the catalogue does not have.
UNKNOWN_LOCALITY: Final = "unknown locality"
#: The source belongs to another locality than the one it was published under.
WRONG_LOCALITY: Final = "wrong locality"
#: The sample's kind is not the source's kind (water values on an air station …).
WRONG_KIND: Final = "wrong kind"
#: The source does not measure this factor.
FOREIGN_FACTOR: Final = "foreign factor"
#: The value is not a number (a string, a boolean …).
NOT_A_NUMBER: Final = "not a number"
#: The value is NaN or infinite.
NOT_FINITE: Final = "not finite"
#: The value lies outside the factor's physical range.
OUT_OF_RANGE: Final = "out of range"

#: Codes that reject the whole sample.
WHOLE: Final = frozenset({UNKNOWN_SOURCE, UNKNOWN_LOCALITY, WRONG_LOCALITY, WRONG_KIND})
#: Every code, as a dead letter's reason begins with it.
CODES: Final = (
    UNKNOWN_SOURCE,
    UNKNOWN_LOCALITY,
    WRONG_LOCALITY,
    WRONG_KIND,
    FOREIGN_FACTOR,
    NOT_A_NUMBER,
    NOT_FINITE,
    OUT_OF_RANGE,
)


def code_of(reason: str) -> str | None:
    """The code a dead letter's reason begins with; None for a reason of another check."""
    return next((c for c in CODES if reason.startswith(c)), None)


# --------------------------------------------------------------------------- ranges

PHYSICS: Final = "physics"
MEM: Final = "envwatch's choice [MEM]"


class Range(NamedTuple):
    """Inclusive physical range of one factor in its canonical unit, with its source."""

    low: float
    high: float
    unit: str
    source: str

    def holds(self, value: float) -> bool:
        return self.low <= value <= self.high


def _r(low: float, high: float, unit: str, source: str) -> Range:
    return Range(float(low), float(high), unit, source)


# Why the lower bounds are 0: a concentration, a count, a flow, a load or a deposition rate is
# never negative (physics). An analyser's zero drift can print a small negative number; it is
# not a concentration and is refused like any other impossible value.
_NONNEG = "≥ 0: physics"

#: Ambient air, µg/m³ (CO mg/m³), HJ 633 表1 units. Upper bounds: envwatch's choice [MEM], each
#: ≥ 10× the factor's top concentration breakpoint of HJ 633-2012 表1 (the end of the AQI scale:
#: PM2.5 500, PM10 600, SO2 1-h 800, NO2 1-h 3840, CO 1-h 150 mg/m³, O3 1-h 1200), and for
#: particles room for dust-storm hours far above the scale.
_AIR_RANGES: Final = {
    "pm25": _r(0, 20_000, "ug/m3", f"{_NONNEG}; ≤ 20 000: {MEM} (HJ 633 表1 top 500, ×40)"),
    "pm10": _r(0, 20_000, "ug/m3", f"{_NONNEG}; ≤ 20 000: {MEM} (HJ 633 表1 top 600; dust storms)"),
    "so2": _r(0, 10_000, "ug/m3", f"{_NONNEG}; ≤ 10 000: {MEM} (HJ 633 表1 1-h top 800)"),
    "no2": _r(0, 40_000, "ug/m3", f"{_NONNEG}; ≤ 40 000: {MEM} (HJ 633 表1 1-h top 3840)"),
    "co": _r(0, 1_500, "mg/m3", f"{_NONNEG}; ≤ 1 500: {MEM} (HJ 633 表1 1-h top 150)"),
    "o3": _r(0, 12_000, "ug/m3", f"{_NONNEG}; ≤ 12 000: {MEM} (HJ 633 表1 1-h top 1200)"),
}

_MGL_WIDE = f"{_NONNEG}; ≤ 100 000 mg/L: {MEM} (above raw industrial wastewater)"
_MGL_TRACE = f"{_NONNEG}; ≤ 1 000 mg/L: {MEM} (GB 3838-2002 表1 class V limits ≤ 2 mg/L)"

#: Surface water, GB 3838-2002 表1 items in its units (mg/L unless noted).
_WATER_RANGES: Final = {
    "temp": _r(-5, 100, "degC", f"{PHYSICS}: liquid water at ~1 atm (≤ 100 ℃); -5: {MEM}"),
    "ph": _r(0, 14, "1", f"{PHYSICS}: the pH scale of dilute aqueous solutions"),
    "do": _r(
        0, 50, "mg/L", f"{_NONNEG}; ≤ 50: {MEM} (saturation 14.6 mg/L at 0 ℃; supersaturation)"
    ),
    "cond": _r(0, 300_000, "uS/cm", f"{_NONNEG}; ≤ 300 000: {MEM} (seawater ≈ 50 000; brines)"),
    "turb": _r(0, 100_000, "NTU", f"{_NONNEG}; ≤ 100 000: {MEM} (hyperconcentrated flows)"),
    "codmn": _r(0, 100_000, "mg/L", _MGL_WIDE),
    "cod": _r(0, 100_000, "mg/L", _MGL_WIDE),
    "bod5": _r(0, 100_000, "mg/L", _MGL_WIDE),
    "nh3n": _r(0, 100_000, "mg/L", _MGL_WIDE),
    "tp": _r(0, 100_000, "mg/L", _MGL_WIDE),
    "tn": _r(0, 100_000, "mg/L", _MGL_WIDE),
    "cu": _r(0, 1_000, "mg/L", _MGL_TRACE),
    "zn": _r(0, 1_000, "mg/L", _MGL_TRACE),
    "fluoride": _r(0, 1_000, "mg/L", _MGL_TRACE),
    "se": _r(0, 1_000, "mg/L", _MGL_TRACE),
    "as": _r(0, 1_000, "mg/L", _MGL_TRACE),
    "hg": _r(0, 1_000, "mg/L", _MGL_TRACE),
    "cd": _r(0, 1_000, "mg/L", _MGL_TRACE),
    "cr6": _r(0, 1_000, "mg/L", _MGL_TRACE),
    "pb": _r(0, 1_000, "mg/L", _MGL_TRACE),
    "cyanide": _r(0, 1_000, "mg/L", _MGL_TRACE),
    "phenol": _r(0, 100_000, "mg/L", _MGL_WIDE),
    "oil": _r(0, 100_000, "mg/L", _MGL_WIDE),
    "las": _r(0, 100_000, "mg/L", _MGL_WIDE),
    "sulfide": _r(0, 100_000, "mg/L", _MGL_WIDE),
    "fecal_coliform": _r(0, 1e12, "1/L", f"{_NONNEG}; ≤ 1e12: {MEM} (raw sewage ≈ 1e10/L)"),
    "chla": _r(0, 1_000, "mg/L", f"{_NONNEG}; ≤ 1 000: {MEM} (dense blooms: a few mg/L)"),
}


def _gas_density(molar_mass: float) -> float:
    """mg/m³ of the pure gas at the standard state of HJ 75-2017 (273.15 K, 101.325 kPa; molar
    volume 22.414 L/mol): no flue gas holds more of it than that."""
    return round(molar_mass / 22.414 * 1e6, -3)


_PURE = f"{_NONNEG}; ≤ the pure gas at the standard state ({PHYSICS}: M / 22.414 L/mol)"

#: Enterprise flue gas, mg/m³ at the standard state (HJ 75-2017 / HJ 212 units).
_GAS_RANGES: Final = {
    "so2": _r(0, _gas_density(64.06), "mg/m3", _PURE),
    "nox": _r(0, _gas_density(46.01), "mg/m3", f"{_PURE} (as NO2)"),
    "co": _r(0, _gas_density(28.01), "mg/m3", _PURE),
    "nmhc": _r(0, 1_000_000, "mg/m3", f"{_NONNEG}; ≤ 1 000 000 (as C): {MEM}"),
    "pm": _r(0, 100_000, "mg/m3", f"{_NONNEG}; ≤ 100 000: {MEM} (above uncontrolled dust)"),
    "o2": _r(
        0,
        100,
        "%",
        f"{PHYSICS}: a volume fraction (≥ 21 % is refused by the O2 correction, "
        "GB 13271-2014 式(1): the whole sample, rules.emission)",
    ),
    "temp": _r(-50, 1_500, "degC", f"{MEM} (stack gas: ambient cold to kiln exhaust)"),
    "flow": _r(0, 1e8, "m3/h", f"{_NONNEG}; ≤ 1e8: {MEM} (largest stacks ≈ 5e6 m³/h)"),
    "humidity": _r(0, 100, "%", f"{PHYSICS}: a volume fraction"),
    "pressure": _r(-200, 1_000, "kPa", f"{MEM} (static pressure, gauge or absolute)"),
    "velocity": _r(0, 200, "m/s", f"{_NONNEG}; ≤ 200: {MEM} (stacks: 5–30 m/s)"),
}

#: Enterprise wastewater, mg/L (flow m³/h; pH 1).
_WASTEWATER_RANGES: Final = {
    "cod": _r(0, 100_000, "mg/L", _MGL_WIDE),
    "nh3n": _r(0, 100_000, "mg/L", _MGL_WIDE),
    "tp": _r(0, 100_000, "mg/L", _MGL_WIDE),
    "tn": _r(0, 100_000, "mg/L", _MGL_WIDE),
    "ss": _r(0, 100_000, "mg/L", _MGL_WIDE),
    "bod5": _r(0, 100_000, "mg/L", _MGL_WIDE),
    "ph": _WATER_RANGES["ph"],
    "temp": _WATER_RANGES["temp"],
    "flow": _r(0, 1e6, "m3/h", f"{_NONNEG}; ≤ 1e6: {MEM} (largest plants ≈ 1.2e5 m³/h)"),
}

#: Other monitors (rules.factors.MONITOR units).
_MONITOR_RANGES: Final = {
    "dustfall": _r(0, 10_000, "t/(month*km2)", f"{_NONNEG}; ≤ 10 000: {MEM} (plan limit 7)"),
    "dust": _r(0, 100_000, "ug/m3", f"{_NONNEG}; ≤ 100 000: {MEM} (construction-site dust)"),
    "pm10": _AIR_RANGES["pm10"],
    "noise_leq": _r(
        0,
        194,
        "dB(A)",
        f"{PHYSICS}: 194 dB re 20 µPa is a pressure amplitude of one atmosphere, the loudest "
        "undistorted sound in air",
    ),
    "vapour_recovery": _r(0, 99, "status", f"{MEM}: an equipment status code (1 = working)"),
    "bypass_open": _r(0, 1, "bool", "0 closed, 1 open (rules.evaluate)"),
    "power_kw": _r(0, 1e7, "kW", f"{_NONNEG}; ≤ 1e7 (10 GW): {MEM} (above any single site)"),
}

#: AQI forecasts.
_FORECAST_RANGES: Final = {
    "aqi": _r(0, 500, "1", "HJ 633-2012 表1 / HJ 633-2026: the AQI scale ends at 500"),
    "pm25": _AIR_RANGES["pm25"],
    "o3_8h": _AIR_RANGES["o3"],
}

#: Range groups: what kind of source, by its catalogue entry (outlets by their type).
AIR_GROUP: Final = "air"
WATER_GROUP: Final = "water"
GAS_GROUP: Final = "emission_gas"
WASTEWATER_GROUP: Final = "emission_water"
MONITOR_GROUP: Final = "monitor"
FORECAST_GROUP: Final = "forecast"

RANGES: Final[Mapping[str, Mapping[str, Range]]] = {
    AIR_GROUP: _AIR_RANGES,
    WATER_GROUP: _WATER_RANGES,
    GAS_GROUP: _GAS_RANGES,
    WASTEWATER_GROUP: _WASTEWATER_RANGES,
    MONITOR_GROUP: _MONITOR_RANGES,
    FORECAST_GROUP: _FORECAST_RANGES,
}

#: The vocabulary each group's ranges must cover (rules.factors; checked by the tests).
VOCABULARY: Final[Mapping[str, Mapping[str, str]]] = {
    AIR_GROUP: AIR,
    WATER_GROUP: WATER,
    GAS_GROUP: EMISSION_GAS,
    WASTEWATER_GROUP: EMISSION_WATER,
    MONITOR_GROUP: MONITOR,
    FORECAST_GROUP: FORECAST,
}


def _wider(a: Range, b: Range) -> Range:
    return Range(min(a.low, b.low), max(a.high, b.high), a.unit, f"{a.source} | {b.source}")


def _emission_any() -> dict[str, Range]:
    """An emission sample of an outlet whose type is unknown (no catalogue): the wider range of
    a factor both types have (temp, flow, …)."""
    out = dict(_GAS_RANGES)
    for f, r in _WASTEWATER_RANGES.items():
        out[f] = _wider(out[f], r) if f in out else r
    return out


#: Range group by the sample's kind when no catalogue says more.
_BY_KIND: Final[Mapping[str, Mapping[str, Range]]] = {
    Kind.AIR.value: _AIR_RANGES,
    Kind.WATER.value: _WATER_RANGES,
    Kind.EMISSION.value: _emission_any(),
    Kind.MONITOR.value: _MONITOR_RANGES,
    Kind.FORECAST.value: _FORECAST_RANGES,
}


# --------------------------------------------------------------------------- the catalogue


class Expected(NamedTuple):
    """What the catalogue says a source is: its kind, locality and the factors it measures."""

    source: str
    what: str  # "air station", "water section", "gas outlet", … (for reasons)
    kind: str  # the sample kind it publishes (rules.factors.Kind value)
    locality: str
    group: str  # key of RANGES
    factors: frozenset[str]


def _value(x: Any) -> str:
    return str(getattr(x, "value", x))


def expected_of(catalog: Any, source_id: str) -> Expected | None:
    """The catalogue's entry for ``source_id`` as :class:`Expected`; None when it has none.

    What a source measures (the *foreign factor* rule):

    * an air station: its ``factors`` (default the six HJ 633 pollutants);
    * a water section: its ``factors`` and its ``problem_factors`` (a section's problem factors
      are what it is watched for);
    * an outlet: every factor of its type's vocabulary (rules.factors.EMISSION_GAS or
      EMISSION_WATER) — an online monitoring system reports the flue-gas or effluent parameters
      (O2, temperature, flow, …) besides the limited pollutants, and the catalogue lists only
      the limits;
    * another monitor: its ``factors``.

    An enterprise's own id is no sample source: its ``kind`` is empty, so every sample under it
    is *wrong kind*.
    """
    item = catalog.source(source_id)
    if item is None:
        return None
    cls = type(item).__name__
    if cls == "AirStation":
        return Expected(
            source_id,
            "air station",
            Kind.AIR.value,
            item.locality,
            AIR_GROUP,
            frozenset(item.factors),
        )
    if cls == "WaterSection":
        return Expected(
            source_id,
            "water section",
            Kind.WATER.value,
            item.locality,
            WATER_GROUP,
            frozenset((*item.factors, *item.problem_factors)),
        )
    if cls == "Outlet":
        locality = next(
            (e.locality for e in catalog.enterprises if any(o.id == source_id for o in e.outlets)),
            "",
        )
        gas = _value(item.type) == "gas"
        return Expected(
            source_id,
            "gas outlet" if gas else "wastewater outlet",
            Kind.EMISSION.value,
            locality,
            GAS_GROUP if gas else WASTEWATER_GROUP,
            frozenset(EMISSION_GAS if gas else EMISSION_WATER),
        )
    if cls == "Monitor":
        return Expected(
            source_id,
            f"{_value(item.kind)} monitor",
            Kind.MONITOR.value,
            item.locality,
            MONITOR_GROUP,
            frozenset(item.factors),
        )
    locality = str(getattr(item, "locality", ""))
    return Expected(source_id, "enterprise", "", locality, "", frozenset())


def forecaster(source_id: str, locality: str) -> Expected:
    """An AQI forecast's source: not catalogued; it may carry every forecast factor."""
    return Expected(
        source_id,
        "AQI forecast",
        Kind.FORECAST.value,
        locality,
        FORECAST_GROUP,
        frozenset(FORECAST),
    )


# --------------------------------------------------------------------------- the check


class Rejection(NamedTuple):
    """Why (part of) a sample was refused: ``code`` (one of the constants above), the source,
    the field (a factor, ``locality``, ``kind`` or ``source``), the offending value, details."""

    code: str
    source: str
    field: str
    value: str
    detail: str

    def reason(self) -> str:
        """The dead letter's reason: ``<code>: source '…' <field> '…': <detail>``."""
        return f"{self.code}: source {self.source!r} {self.field} {self.value!r}: {self.detail}"


class Screened(NamedTuple):
    """The outcome of :func:`screen`: the sample to evaluate (None: rejected whole) and every
    rejection (empty: the sample passed unchanged)."""

    sample: Sample | None
    rejections: tuple[Rejection, ...]


def _show(value: object) -> str:
    if isinstance(value, float):
        return repr(value)
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def screen(sample: Sample, expected: Expected | None) -> Screened:
    """Check ``sample`` against its catalogue entry ``expected`` and the physical ranges.

    ``expected`` None: there is no catalogue (a test or an ad-hoc run) — only the values are
    checked, with the ranges of the sample's kind. The caller decides *unknown source* (it knows
    whether a catalogue is configured) and passes :func:`forecaster` for AQI forecasts.
    """
    source = sample.source
    if expected is not None:
        if sample.kind != expected.kind:
            shown = expected.kind or "no samples"
            return Screened(
                None,
                (
                    Rejection(
                        WRONG_KIND,
                        source,
                        "kind",
                        sample.kind,
                        f"the catalogue's {expected.what} publishes {shown!r}",
                    ),
                ),
            )
        if sample.locality != expected.locality:
            return Screened(
                None,
                (
                    Rejection(
                        WRONG_LOCALITY,
                        source,
                        "locality",
                        sample.locality,
                        f"the catalogue's {expected.what} belongs to {expected.locality!r}",
                    ),
                ),
            )
        ranges = RANGES[expected.group]
    else:
        ranges = _BY_KIND.get(sample.kind, {})
    bad: list[Rejection] = []
    kept: dict[str, tuple[float | None, str]] = {}
    for factor, pair in sample.values.items():
        value = pair[0]
        if expected is not None and factor not in expected.factors:
            bad.append(
                Rejection(
                    FOREIGN_FACTOR,
                    source,
                    factor,
                    _show(value),
                    f"the catalogue's {expected.what} does not measure it",
                )
            )
            continue
        if value is None:  # no value (a flag alone): nothing to check
            kept[factor] = pair
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            bad.append(Rejection(NOT_A_NUMBER, source, factor, _show(value), "not a number"))
            continue
        if not math.isfinite(value):
            bad.append(Rejection(NOT_FINITE, source, factor, _show(value), "NaN or infinite"))
            continue
        rng = ranges.get(factor)
        if rng is None:
            bad.append(
                Rejection(FOREIGN_FACTOR, source, factor, _show(value), "no such factor here")
            )
            continue
        if not rng.holds(value):
            bad.append(
                Rejection(
                    OUT_OF_RANGE,
                    source,
                    factor,
                    _show(value),
                    f"outside [{rng.low:g}, {rng.high:g}] {rng.unit} ({rng.source})",
                )
            )
            continue
        kept[factor] = pair
    if not bad:
        return Screened(sample, ())
    return Screened(replace(sample, values=kept) if kept else None, tuple(bad))


# --------------------------------------------------------------------------- documentation


def ranges_markdown() -> str:
    """The ranges as the Markdown table of docs/plausibility.md (group, factor, unit, range,
    source), one row per factor, groups in :data:`RANGES` order."""
    rows = [
        "| group | factor | unit | low | high | source |",
        "|---|---|---|---|---|---|",
    ]
    for group, ranges in RANGES.items():
        for factor, r in ranges.items():
            rows.append(
                f"| {group} | `{factor}` | {r.unit} | {r.low:g} | {r.high:g} | {r.source} |"
            )
    return "\n".join(rows) + "\n"
