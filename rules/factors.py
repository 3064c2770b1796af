"""The canonical factor vocabulary (architecture.md §4.1).

Every name used inside envwatch for a measured quantity is listed here with its canonical unit.
Units are converted at the edge (ingest/), never inside rules/.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Kind(StrEnum):
    """What kind of source produced a sample (also the MQTT topic's ``{kind}`` segment)."""

    AIR = "air"
    WATER = "water"
    EMISSION = "emission"
    MONITOR = "monitor"
    FORECAST = "forecast"


#: Ambient air, 1-hour or shorter means. µg/m³ except CO in mg/m³ (HJ 633 表1 units).
AIR: Final[dict[str, str]] = {
    "pm25": "ug/m3",
    "pm10": "ug/m3",
    "so2": "ug/m3",
    "no2": "ug/m3",
    "co": "mg/m3",
    "o3": "ug/m3",
}

#: Surface water, GB 3838-2002 表1 items (mg/L unless noted).
WATER: Final[dict[str, str]] = {
    "temp": "degC",
    "ph": "1",
    "do": "mg/L",
    "cond": "uS/cm",
    "turb": "NTU",
    "codmn": "mg/L",
    "cod": "mg/L",
    "bod5": "mg/L",
    "nh3n": "mg/L",
    "tp": "mg/L",
    "tn": "mg/L",
    "cu": "mg/L",
    "zn": "mg/L",
    "fluoride": "mg/L",
    "se": "mg/L",
    "as": "mg/L",
    "hg": "mg/L",
    "cd": "mg/L",
    "cr6": "mg/L",
    "pb": "mg/L",
    "cyanide": "mg/L",
    "phenol": "mg/L",
    "oil": "mg/L",
    "las": "mg/L",
    "sulfide": "mg/L",
    "fecal_coliform": "1/L",
    "chla": "mg/L",
}

#: Enterprise flue gas (mg/m³ for concentrations; flow m³/h; O2, humidity %; temp ℃; pressure kPa).
EMISSION_GAS: Final[dict[str, str]] = {
    "so2": "mg/m3",
    "nox": "mg/m3",
    "pm": "mg/m3",
    "nmhc": "mg/m3",
    "co": "mg/m3",
    "o2": "%",
    "temp": "degC",
    "flow": "m3/h",
    "humidity": "%",
    "pressure": "kPa",
    "velocity": "m/s",
}

#: Enterprise wastewater (mg/L; flow m³/h; pH unitless).
EMISSION_WATER: Final[dict[str, str]] = {
    "cod": "mg/L",
    "nh3n": "mg/L",
    "tp": "mg/L",
    "tn": "mg/L",
    "ph": "1",
    "flow": "m3/h",
    "ss": "mg/L",
    "bod5": "mg/L",
    "temp": "degC",
}

#: Other monitors the plans name.
MONITOR: Final[dict[str, str]] = {
    "dustfall": "t/(month*km2)",
    "dust": "ug/m3",
    "pm10": "ug/m3",
    "noise_leq": "dB(A)",
    "vapour_recovery": "status",
    "bypass_open": "bool",
    "power_kw": "kW",
}

#: AQI forecasts (input for heavy-pollution warnings).
FORECAST: Final[dict[str, str]] = {"aqi": "1", "pm25": "ug/m3", "o3_8h": "ug/m3"}

BY_KIND: Final[dict[Kind, dict[str, str]]] = {
    Kind.AIR: AIR,
    Kind.WATER: WATER,
    Kind.EMISSION: {**EMISSION_GAS, **EMISSION_WATER},
    Kind.MONITOR: MONITOR,
    Kind.FORECAST: FORECAST,
}
