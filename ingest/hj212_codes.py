"""HJ 212 pollutant codes (污染物编码) → envwatch factor names, with unit conversions (pure data).

Sources (standards.md §4.10 unless a row says otherwise):

* [STD] HJ 212-2017 附录B (表B.1 water, 表B.2 gas) with the HJ/T 212-2005 code (原编码) of each row;
  read from the standard's text as compiled in ``/work/shared/docs/standards.md`` §4.10.
* [1] ``srdgame/lua-HJ212:hj212/tags/info.lua`` (a code table transcribed from HJ 212-2017 附录B):
  ambient meteorology a01001–a01008, NO a21003, NO2 a21004, TSP a34001, dustfall a34011, noise
  ``Leq``/``LA`` …
* [2+] ``w01003`` = 浊度 (turbidity, NTU): several independent HJ 212 implementations agree.
* [1] ``a05024`` = O3 at ambient-air stations (standards.md §4.10 note; seen in packet V10 of
  ``/work/shared/data/hj212/packets.jsonl``). Not in the 2017 table.

Units. HJ 212 gives concentrations of flue-gas pollutants in mg/m³ and wastewater in mg/L, the same
as envwatch's canonical units (rules/factors.py), so most scales are 1. Conversions:

* ``a00000`` flue-gas flow m³/s → m³/h: × 3600 (HJ 212-2017 附录B: unit m³/s).
* ``w00000`` wastewater flow L/s → m³/h: × 3.6 (1 L/s = 0.001 m³/s = 3.6 m³/h; 附录B: unit L/s).
* ``w20111 w20115 w20117 w20119 w20120`` (Hg, Cd, Cr(VI), As, Pb) µg/L → mg/L: × 0.001
  (附录B gives µg/L for these; GB 3838 and rules/factors.py use mg/L).
* Ambient-air stations (ST=22): 附录B gives mg/m³ (and "ng/m³" for PM, flagged ⚠ in standards.md),
  but stations send the national release units: µg/m³, CO mg/m³ (packet V10: SO2 6, PM2.5 14,
  CO 0.427). [MEM] scale 1 is a configuration default an operator can override (``scales=`` of
  :func:`ingest.hj212.decode_data`).
* The 2005 codes are taken in the same unit as their 2017 row. [MEM] — the 2005 text was not read.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from rules.factors import Kind


@dataclass(frozen=True, slots=True)
class Target:
    """Where one HJ 212 code goes for one source kind: the factor and the unit scale."""

    factor: str
    scale: float = 1.0


# ---------------------------------------------------------------------------------------------
# Every code the codec knows, 2017 code → (name, HJ/T 212-2005 code or None).
# A code known here but not mapped for a source's kind is dropped silently (meteorology at a
# station, TOC …); a code known nowhere is an *unknown code* (the packet goes to dead-letter).
_KNOWN: Final[dict[str, tuple[str, str | None]]] = {
    # water, HJ 212-2017 表B.1 [STD] (standards.md §4.10)
    "w00000": ("污水 flow", "B01"),
    "w01001": ("pH", "001"),
    "w01009": ("溶解氧 DO", None),
    "w01010": ("水温 water temperature", None),
    "w01012": ("悬浮物 SS", "003"),
    "w01014": ("电导率 conductivity", None),
    "w01017": ("BOD5", "010"),
    "w01018": ("化学需氧量 COD", "011"),
    "w01019": ("高锰酸盐指数 CODMn", None),
    "w01020": ("总有机碳 TOC", "015"),
    "w02003": ("粪大肠菌群 faecal coliforms", "550"),
    "w19002": ("阴离子表面活性剂 LAS", "520"),
    "w20111": ("总汞 Hg", "020"),
    "w20115": ("总镉 Cd", "022"),
    "w20116": ("总铬 total Cr", "023"),
    "w20117": ("六价铬 Cr(VI)", "024"),
    "w20119": ("总砷 As", "026"),
    "w20120": ("总铅 Pb", "027"),
    "w20122": ("总铜 Cu", "029"),
    "w20123": ("总锌 Zn", "030"),
    "w21001": ("总氮 TN", "065"),
    "w21003": ("氨氮 NH3-N", "060"),
    "w21011": ("总磷 TP", "101"),
    "w21016": ("氰化物 cyanide", "070"),
    "w21017": ("氟化物 fluoride", "072"),
    "w21019": ("硫化物 sulfide", "071"),
    "w22001": ("石油类 petroleum", "080"),
    "w23002": ("挥发酚 volatile phenol", "110"),
    # water, [2+]
    "w01003": ("浊度 turbidity", None),
    # gas, HJ 212-2017 表B.2 [STD] (standards.md §4.10)
    "a00000": ("废气 flue-gas flow", "B02"),
    "a01011": ("烟气流速 velocity", "S02"),
    "a01012": ("烟气温度 flue-gas temperature", "S03"),
    "a01013": ("烟气压力 flue-gas pressure", "S08"),
    "a01014": ("烟气湿度 flue-gas humidity", "S05"),
    "a01017": ("烟气动压 dynamic pressure", "S04"),
    "a01001": ("温度 air temperature", None),
    "a01002": ("湿度 air humidity", None),
    "a01006": ("气压 air pressure", None),
    "a01007": ("风速 wind speed", None),
    "a01008": ("风向 wind direction", None),
    "a19001": ("氧气含量 O2", "S01"),
    "a21001": ("氨 NH3", "10"),
    "a21002": ("氮氧化物 NOx", "03"),
    "a21003": ("一氧化氮 NO", None),
    "a21004": ("二氧化氮 NO2", None),
    "a21005": ("一氧化碳 CO", "04"),
    "a21026": ("二氧化硫 SO2", "02"),
    "a24088": ("非甲烷总烃 NMHC", None),
    "a34013": ("烟尘 particulate (CEMS)", "01"),
    "a34002": ("PM10", None),
    "a34004": ("PM2.5", None),
    # [1] srdgame/lua-HJ212:hj212/tags/info.lua
    "a34001": ("总悬浮颗粒物 TSP", None),
    "a34011": ("降尘 dustfall", None),
    "a05002": ("甲烷 CH4", None),
    "Leq": ("等效声级 equivalent sound level", None),
    "LA": ("A权声级 A-weighted sound level", None),
    # [1] ambient O3 (standards.md §4.10 note)
    "a05024": ("臭氧 O3", None),
}

# The 2017 code of every 2005 code (原编码).
ALIASES_2005: Final[MappingProxyType[str, str]] = MappingProxyType(
    {old: new for new, (_, old) in _KNOWN.items() if old is not None}
)

KNOWN_CODES: Final[frozenset[str]] = frozenset(_KNOWN) | frozenset(ALIASES_2005)

_UG_PER_L_TO_MG_PER_L = 0.001  # µg/L → mg/L (附录B units for Hg, Cd, Cr(VI), As, Pb)
_M3_PER_S_TO_M3_PER_H = 3600.0  # a00000 m³/s → m³/h (3600 s/h)
_L_PER_S_TO_M3_PER_H = 3.6  # w00000 L/s → m³/h (0.001 m³/L × 3600 s/h)

_AIR: dict[str, Target] = {
    "a21026": Target("so2"),
    "a21004": Target("no2"),
    "a21005": Target("co"),
    "a05024": Target("o3"),
    "a34004": Target("pm25"),
    "a34002": Target("pm10"),
}

_WATER: dict[str, Target] = {
    "w01010": Target("temp"),
    "w01001": Target("ph"),
    "w01009": Target("do"),
    "w01014": Target("cond"),
    "w01003": Target("turb"),
    "w01019": Target("codmn"),
    "w01018": Target("cod"),
    "w01017": Target("bod5"),
    "w21003": Target("nh3n"),
    "w21011": Target("tp"),
    "w21001": Target("tn"),
    "w20122": Target("cu"),
    "w20123": Target("zn"),
    "w21017": Target("fluoride"),
    "w20119": Target("as", _UG_PER_L_TO_MG_PER_L),
    "w20111": Target("hg", _UG_PER_L_TO_MG_PER_L),
    "w20115": Target("cd", _UG_PER_L_TO_MG_PER_L),
    "w20117": Target("cr6", _UG_PER_L_TO_MG_PER_L),
    "w20120": Target("pb", _UG_PER_L_TO_MG_PER_L),
    "w21016": Target("cyanide"),
    "w23002": Target("phenol"),
    "w22001": Target("oil"),
    "w19002": Target("las"),
    "w21019": Target("sulfide"),
    "w02003": Target("fecal_coliform"),
}

_EMISSION: dict[str, Target] = {
    # flue gas
    "a21026": Target("so2"),
    "a21002": Target("nox"),
    "a34013": Target("pm"),
    "a24088": Target("nmhc"),
    "a21005": Target("co"),
    "a19001": Target("o2"),
    "a01012": Target("temp"),
    "a00000": Target("flow", _M3_PER_S_TO_M3_PER_H),
    "a01014": Target("humidity"),
    "a01013": Target("pressure"),
    "a01011": Target("velocity"),
    # wastewater
    "w01018": Target("cod"),
    "w21003": Target("nh3n"),
    "w21011": Target("tp"),
    "w21001": Target("tn"),
    "w01001": Target("ph"),
    "w00000": Target("flow", _L_PER_S_TO_M3_PER_H),
    "w01012": Target("ss"),
    "w01017": Target("bod5"),
    "w01010": Target("temp"),
}

_MONITOR: dict[str, Target] = {
    "a34002": Target("pm10"),
    "a34011": Target("dustfall"),
    "Leq": Target("noise_leq"),
}

#: Kind → {2017 code: Target}. FORECAST sources do not speak HJ 212.
FACTORS: Final[MappingProxyType[Kind, MappingProxyType[str, Target]]] = MappingProxyType(
    {
        Kind.AIR: MappingProxyType(_AIR),
        Kind.WATER: MappingProxyType(_WATER),
        Kind.EMISSION: MappingProxyType(_EMISSION),
        Kind.MONITOR: MappingProxyType(_MONITOR),
        Kind.FORECAST: MappingProxyType({}),
    }
)


def canonical_code(code: str) -> str:
    """The 2017 code for ``code`` (a 2005 code is translated; anything else is returned as is)."""
    return ALIASES_2005.get(code, code)


def is_known(code: str) -> bool:
    """Whether ``code`` is in the HJ 212 code tables this module knows (2017 or 2005)."""
    return code in KNOWN_CODES


def target(kind: Kind, code: str) -> Target | None:
    """Where ``code`` (2017 or 2005) goes for a source of ``kind``; None when envwatch drops it."""
    return FACTORS[kind].get(canonical_code(code))


def code_for(kind: Kind, factor: str) -> tuple[str, float]:
    """The first 2017 code carrying ``factor`` for ``kind`` and its scale (for building packets).

    Raises KeyError when no HJ 212 code carries the factor for that kind.
    """
    for code, t in FACTORS[kind].items():
        if t.factor == factor:
            return code, t.scale
    raise KeyError(f"no HJ 212 code for factor {factor!r} of kind {kind.value!r}")


def name_of(code: str) -> str | None:
    """The human name of a code (2017 or 2005), or None when unknown."""
    entry = _KNOWN.get(canonical_code(code))
    return entry[0] if entry is not None else None
