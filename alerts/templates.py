"""Message texts for people (pure): Chinese (the default) and English, for every alert kind and
for heavy-pollution warning (重污染天气预警) changes.

Which template applies is named by the alert's ``template`` annotation or, failing that, its
``rule_kind`` label (set by ``alerts.rules.AlertRule.labels``) or its ``rule`` label, matched
against :class:`AlertKind`'s values (the rule kinds of ``alerts.rules.RuleKind``; a dotted name
such as ``permit_exceedance.nox`` matches by its first part). The fields a template reads come from
the annotations first, then the labels (``alerts.rules`` writes them from the evaluation and its
catalogue detail):

=======================  ===================================================================
field                    meaning
=======================  ===================================================================
``locality``             locality id (label); displayed via :data:`LOCALITY_NAMES`, else as
                         ``locality_name``
``source``               source id (label); shown after the names: ``江家庄 (ws-lx-…)``
``source_name``          catalogue name of the station / section / monitor; for an outlet the
                         enterprise's name
``outlet_name``          outlet (排口) name, outlets only
``enterprise_name``      the enterprise a monitor belongs to (shown when not the source name)
``factor``               canonical factor name (rules.factors), displayed via :data:`FACTOR_NAMES`
``value``, ``limit``     numbers (the transition's own when not annotated); ``unit`` the
                         canonical unit (``mg/m3`` → mg/m³), else looked up per kind
``period``               averaging period (label), displayed via :data:`PERIODS`
``basis``, ``basis_en``  the averaging period as text, e.g. 24 小时平均 — else from ``period``,
                         else a default per kind
``limit_name``,          e.g. 二级浓度限值 / the grade II limit — defaults per kind
``limit_name_en``
``standard``             where the limit comes from, e.g. ``GB 3095-2012 表1``
``zone_class``           noise: 声环境功能区 class (0, 1, 2, 3, 4a, 4b)
``observed_class``,      water classes: Ⅰ … Ⅴ, 劣Ⅴ (also 1..6, I … V, 劣V); else from value/limit
``target_class``
``count``                consecutive samples (constant / zero values)
``rate``, ``threshold``  percentages (data transmission / valid-data rate)
``last_seen``,           offline: the newest sample (ISO-8601, shown in Beijing time) and the
``expected``             silence threshold in minutes
``indicator``,           plan progress: indicator name, status (at_risk / off_track), target
``progress``, ``target``
``level``, ``cut``,      non-compliance during a warning: level, achieved and required
``required``             reduction (%)
``normal_kw``,           electricity: the treatment equipment's normal load and the production
``production_kw``        line's load (kW), when known
=======================  ===================================================================

Numbers are printed as the standards print them, rounded per GB/T 8170 (round half to even,
``rules.aqi.round_gbt8170``): µg/m³ concentrations and AQI as integers, ambient CO in mg/m³ with
one decimal (HJ 633-2026 §4.2.2–4.2.3 [STD], standards.md §1.2; HJ 663-2013 evaluations print the
same digits [2+]: https://swgk.naimanyun.cn/front/information/157729 and a public code note on
HJ 663-2013 output rounding); percentages with one decimal ([1], the same bulletin) and 超标倍数
with two [MEM]; noise levels with one decimal [MEM]; anything else as measured, three
significant digits (docs/notifications.md §3). A
value above its limit is never shown equal to it: a digit is added until the two differ. The
超标倍数 is computed from the value as shown, so a reader can redo it.

A template never raises on missing or malformed fields: it falls back to a generic text built
from the ``summary`` annotation (or the rule name), so a notification is always deliverable.
Times are shown in Beijing time (architecture.md §5).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, Final
from zoneinfo import ZoneInfo

from rules.beijing import BEIJING

from alerts.notification import RESOLVED_STATES, NotificationKind, Texts, TransitionLike
from alerts.notification import transition_kind as _transition_kind
from alerts.pipeline import COMPONENT_NAMES, CONDITIONS, component_kind
from rules import aqi, factors


class AlertKind(StrEnum):
    """The alert kinds with their own template (issue 7, "Rules that produce alerts"; issue 11)."""

    AMBIENT_EXCEEDANCE = "ambient_exceedance"
    WATER_CLASS = "water_class"  # worse than the section's target class
    WATER_WORSE_V = "water_worse_than_v"  # 劣V
    PERMIT_EXCEEDANCE = "permit_exceedance"  # hourly average, O2-corrected
    EFFLUENT_EXCEEDANCE = "effluent_exceedance"  # GB 18918
    DUSTFALL = "dustfall"
    BYPASS_OPEN = "bypass_open"
    OFFLINE = "offline"
    CONSTANT_VALUE = "constant_value"
    ZERO_VALUE = "zero_value"
    LOW_DATA_RATE = "data_rate"
    PLAN_PROGRESS = "plan_progress"
    WARNING_NONCOMPLIANCE = "warning_compliance"
    NOISE = "noise"  # GB 3096-2008 by 声环境功能区 class, 昼间 / 夜间
    DUST = "dust"  # construction-site and road dust (扬尘)
    VAPOUR_RECOVERY = "vapour_recovery"  # 油气回收装置 fault or stop
    ELECTRICITY = "electricity"  # treatment equipment off or far below normal while producing
    PIPELINE = "pipeline"  # a component of envwatch itself (alerts/pipeline.py)
    WATER_SUDDEN_CHANGE = "water_sudden_change"  # a factor jumps against its recent baseline
    WATER_UPSTREAM_WORSE = "water_upstream_worse"  # a section much worse than upstream


#: Display names of the five localities (plans/README.md). Other localities are named by the
#: ``locality_name`` (and ``locality_name_en``) annotation.
LOCALITY_NAMES: dict[str, tuple[str, str]] = {
    "liaocheng-etdz": ("聊城经济技术开发区", "Liaocheng ETDZ"),
    "weifang": ("潍坊市", "Weifang"),
    "tianqiao": ("济南市天桥区", "Jinan Tianqiao"),
    "laixi": ("莱西市", "Laixi"),
    "zhifu": ("烟台市芝罘区", "Yantai Zhifu"),
}

#: Display names of canonical factors (rules.factors).
FACTOR_NAMES: dict[str, tuple[str, str]] = {
    "pm25": ("PM2.5", "PM2.5"),
    "pm10": ("PM10", "PM10"),
    "so2": ("二氧化硫", "SO2"),
    "no2": ("二氧化氮", "NO2"),
    "co": ("一氧化碳", "CO"),
    "o3": ("臭氧", "O3"),
    "o3_8h": ("臭氧8小时", "O3 8-h"),
    "nox": ("氮氧化物", "NOx"),
    "pm": ("颗粒物", "particulate matter"),
    "tsp": ("TSP", "TSP"),
    "nmhc": ("非甲烷总烃", "NMHC"),
    "vocs": ("挥发性有机物", "VOCs"),
    "cod": ("化学需氧量", "COD"),
    "codmn": ("高锰酸盐指数", "permanganate index"),
    "bod5": ("五日生化需氧量", "BOD5"),
    "nh3n": ("氨氮", "ammonia nitrogen"),
    "tp": ("总磷", "total phosphorus"),
    "tn": ("总氮", "total nitrogen"),
    "do": ("溶解氧", "dissolved oxygen"),
    "fluoride": ("氟化物", "fluoride"),
    "ss": ("悬浮物", "suspended solids"),
    "ph": ("pH", "pH"),
    "flow": ("流量", "flow"),
    "dustfall": ("降尘量", "dustfall"),
    "dust": ("扬尘", "site dust"),
    "noise_leq": ("等效声级", "Leq"),
    "power_kw": ("用电负荷", "electric load"),
    "vapour_recovery": ("油气回收装置状态", "vapour-recovery status"),
    "bypass_open": ("旁路状态", "bypass status"),
    "transmission_rate": ("数据传输率", "data transmission rate"),
    "valid_rate": ("数据有效率", "valid-data rate"),
    "aqi": ("AQI", "AQI"),
}

UNIT_DISPLAY: dict[str, str] = {
    "mg/m3": "mg/m³",
    "ug/m3": "µg/m³",
    "m3/h": "m³/h",
    "t/(month*km2)": "t/(月·km²)",
    "degC": "℃",
    "uS/cm": "µS/cm",
    "1/L": "个/L",
    "1": "",
    "bool": "",
    "status": "",
}

#: English where the Chinese display differs.
UNIT_DISPLAY_EN: dict[str, str] = {"t/(month*km2)": "t/(month·km²)", "1/L": "/L"}

#: Averaging periods (``Evaluation.detail["period"]``, the alert's ``period`` label) in the words
#: of the standards: GB 3095 (1 小时平均, 24 小时平均, 日最大 8 小时平均), GB 18918 (日均值),
#: GB 3096 (昼间, 夜间).
PERIODS: dict[str, tuple[str, str]] = {
    "hourly": ("1 小时平均", "1-hour mean"),
    "24h": ("24 小时平均", "24-hour mean"),
    "8h": ("日最大 8 小时平均", "daily maximum 8-hour mean"),
    "day": ("日均值", "daily mean"),
    "month": ("月均值", "monthly mean"),
    "instant": ("实时值", "instantaneous value"),
    "hour": ("小时均值", "hourly mean"),
    "day_time": ("昼间", "daytime"),
    "night_time": ("夜间", "night-time"),
    "sample": ("监测值", "sampled value"),
}

#: GB 3838-2002 classes by index 1..6 (6 = 劣Ⅴ, worse than class V): (zh, en).
WATER_CLASSES: Final[tuple[tuple[str, str], ...]] = (
    ("Ⅰ", "I"),
    ("Ⅱ", "II"),
    ("Ⅲ", "III"),
    ("Ⅳ", "IV"),
    ("Ⅴ", "V"),
    ("劣Ⅴ", "worse than V"),
)

LEVEL_NAMES: dict[str, tuple[str, str]] = {
    "blue": ("蓝色", "blue"),
    "yellow": ("黄色", "yellow"),
    "orange": ("橙色", "orange"),
    "red": ("红色", "red"),
}

_PROGRESS_STATUS: dict[str, tuple[str, str]] = {
    "at_risk": ("存在风险", "at risk"),
    "off_track": ("偏离目标", "off track"),
    "on_track": ("按计划推进", "on track"),
    "achieved": ("已完成", "achieved"),
}

#: Title (prefix) per kind: (zh, en).
_TITLES: dict[AlertKind, tuple[str, str]] = {
    AlertKind.AMBIENT_EXCEEDANCE: ("超标", "Exceedance"),
    AlertKind.WATER_CLASS: ("水质不达标", "Water below target"),
    AlertKind.WATER_WORSE_V: ("劣Ⅴ类水质", "Worse than class V"),
    AlertKind.PERMIT_EXCEEDANCE: ("超标", "Exceedance"),
    AlertKind.EFFLUENT_EXCEEDANCE: ("超标", "Exceedance"),
    AlertKind.DUSTFALL: ("降尘超标", "Dustfall exceedance"),
    AlertKind.BYPASS_OPEN: ("旁路开启", "Bypass open"),
    AlertKind.OFFLINE: ("离线", "Offline"),
    AlertKind.CONSTANT_VALUE: ("数据异常", "Suspect data"),
    AlertKind.ZERO_VALUE: ("数据异常", "Suspect data"),
    AlertKind.LOW_DATA_RATE: ("数据传输有效率低", "Low valid-data rate"),
    AlertKind.PLAN_PROGRESS: ("目标进度", "Target progress"),
    AlertKind.WARNING_NONCOMPLIANCE: ("减排不力", "Emission cut not met"),
    AlertKind.NOISE: ("噪声超标", "Noise exceedance"),
    AlertKind.DUST: ("扬尘超标", "Site dust exceedance"),
    AlertKind.VAPOUR_RECOVERY: ("油气回收故障", "Vapour recovery fault"),
    AlertKind.ELECTRICITY: (
        "治污设施停运或低负荷运行",
        "Pollution control off or underloaded",
    ),
    AlertKind.PIPELINE: ("系统运行异常", "envwatch component fault"),
    AlertKind.WATER_SUDDEN_CHANGE: ("水质突变", "Sudden water-quality change"),
    AlertKind.WATER_UPSTREAM_WORSE: ("水质劣于上游", "Worse than upstream"),
}

#: Default averaging basis and limit name per exceedance kind: (zh, en).
_BASIS: dict[AlertKind, tuple[str, str]] = {
    AlertKind.PERMIT_EXCEEDANCE: ("小时均值", "hourly mean"),  # issue 7: hourly average
    AlertKind.EFFLUENT_EXCEEDANCE: ("日均值", "daily mean"),  # GB 18918-2002 表1 "日均值"
    AlertKind.AMBIENT_EXCEEDANCE: ("浓度", "concentration"),
    AlertKind.DUSTFALL: ("月降尘量", "monthly dustfall"),
    AlertKind.DUST: ("浓度", "concentration"),
}
_LIMIT_NAME: dict[AlertKind, tuple[str, str]] = {
    AlertKind.PERMIT_EXCEEDANCE: ("许可限值", "the permit limit"),
    AlertKind.EFFLUENT_EXCEEDANCE: ("排放标准限值", "the discharge limit"),
    AlertKind.AMBIENT_EXCEEDANCE: ("标准限值", "the standard limit"),
    AlertKind.DUSTFALL: ("控制目标", "the target"),
    AlertKind.DUST: ("控制限值", "the site-dust limit"),
}

#: GB 3095 names the limits of 一类区 / 二类区 一级 / 二级浓度限值 (``area_grade`` of a station).
_GRADE_LIMIT_NAMES: dict[str, tuple[str, str]] = {
    "I": ("一级浓度限值", "the grade I limit"),
    "II": ("二级浓度限值", "the grade II limit"),
}

#: Where an exceedance's canonical unit is looked up when no ``unit`` is given.
_UNIT_TABLES: dict[AlertKind, tuple[Mapping[str, str], ...]] = {
    AlertKind.AMBIENT_EXCEEDANCE: (factors.AIR, {"o3_8h": "ug/m3", "aqi": "1"}),
    AlertKind.PERMIT_EXCEEDANCE: (factors.EMISSION_GAS, factors.EMISSION_WATER),
    AlertKind.EFFLUENT_EXCEEDANCE: (factors.EMISSION_WATER,),
    AlertKind.DUSTFALL: (factors.MONITOR,),
    AlertKind.DUST: (factors.MONITOR, {"tsp": "ug/m3"}),
    AlertKind.NOISE: (factors.MONITOR,),
    AlertKind.ELECTRICITY: (factors.MONITOR,),
    AlertKind.WATER_SUDDEN_CHANGE: (factors.WATER,),
}

#: Factor names that are no pollutant (placeholders of evaluations without one).
_NO_FACTOR: Final[frozenset[str]] = frozenset({"", "*", "class", "_flags", "status"})


class _Missing(Exception):
    """A field a template needs is absent or malformed (internal: triggers the fallback)."""


class _Fields:
    """Read access to annotations, then labels."""

    def __init__(self, labels: Mapping[str, str], annotations: Mapping[str, str]) -> None:
        self.labels = labels
        self.annotations = annotations

    def opt(self, name: str, default: str = "") -> str:
        value = self.annotations.get(name)
        if value is None or value == "":
            value = self.labels.get(name, default)
        return str(value)

    def req(self, name: str) -> str:
        value = self.opt(name)
        if not value:
            raise _Missing(name)
        return value

    def num(self, name: str) -> float:
        value = self.maybe(name)
        if value is None:
            raise _Missing(name)
        return value

    def maybe(self, name: str) -> float | None:
        """The field as a finite number, None when absent or malformed."""
        text = self.opt(name)
        if not text:
            return None
        try:
            value = float(text)
        except ValueError:
            return None
        return value if math.isfinite(value) else None


# ---------------------------------------------------------------- numbers


def fmt_number(value: float, max_decimals: int = 3) -> str:
    """At most ``max_decimals`` decimals, trailing zeros dropped: 132.0 → "132", 0.125 → "0.125"."""
    text = f"{value:.{max_decimals}f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def fmt_fixed(value: float, decimals: int) -> str:
    """``value`` rounded per GB/T 8170 (round half to even) to exactly ``decimals`` decimals."""
    text = f"{aqi.round_gbt8170(value, decimals):.{decimals}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text


def _significant_decimals(value: float, digits: int = 3) -> int:
    if value == 0:
        return 0
    return max(0, min(8, digits - 1 - math.floor(math.log10(abs(value)))))


def _strip(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


def value_decimals(kind: str, factor: str, unit: str) -> int | None:
    """Decimals the standards print a value of ``factor`` in ``unit`` with; None: as measured.

    AQI and µg/m³ concentrations: integers; ambient CO (mg/m³): one decimal — HJ 633-2026
    §4.2.2–4.2.3 round the inputs so, per GB/T 8170 [STD] (standards.md §1.2), and HJ 663-2013
    bulletins print the same digits [2+]. Noise levels in dB(A): one decimal [MEM].
    """
    if factor == "aqi":
        return 0
    if unit == "ug/m3":
        return 0
    if unit == "mg/m3" and kind == AlertKind.AMBIENT_EXCEEDANCE:
        return 1
    if unit == "dB(A)":
        return 1
    return None


def fmt_value(value: float, decimals: int | None) -> str:
    """``value`` with the standard's ``decimals`` (GB/T 8170), or as measured: three significant
    digits, trailing zeros dropped (156.91666 → "157", 2.6666 → "2.67", 35.0 → "35")."""
    if decimals is not None:
        return fmt_fixed(value, decimals)
    return _strip(fmt_fixed(value, _significant_decimals(value)))


def fmt_value_against(value: float, limit: float | None, decimals: int | None) -> str:
    """:func:`fmt_value`, with digits added (up to four) while rounding would put the value on
    the other side of ``limit`` (75.3 against 75 is "75.3", not "75")."""
    text = fmt_value(value, decimals)
    if limit is None:
        return text
    base = decimals if decimals is not None else _significant_decimals(value)
    extra = 0
    while (float(text) > limit) != (value > limit) and extra < 4:
        extra += 1
        text = fmt_fixed(value, base + extra)
        if decimals is None:
            text = _strip(text)
    return text


def fmt_limit(limit: float) -> str:
    """A limit as the standard states it (no float noise, no trailing zeros): 0.00005, 40, 1.5."""
    return fmt_number(limit, 6)


def fmt_multiple(value: float, limit: float) -> str:
    """超标倍数 (value − limit) / limit with two decimals, GB/T 8170 rounding."""
    return fmt_fixed(exceedance_multiple(value, limit), 2)


def fmt_percent(percent: float) -> str:
    """A rate in percent with one decimal: ``75.0 %``."""
    return f"{fmt_fixed(percent, 1)} %"


def fmt_time(at: datetime) -> str:
    """Beijing wall time, minutes: ``2026-11-22 09:00``."""
    return at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


def exceedance_multiple(value: float, limit: float) -> float:
    """超标倍数 = (value − limit) / limit (the usual definition in Chinese enforcement texts)."""
    return (value - limit) / limit


def water_class(raw: str | float | None) -> int | None:
    """GB 3838 class index 1..6 from 4, 4.0, "IV", "Ⅳ", "Ⅳ类", "劣V", "劣Ⅴ类"; None if unreadable."""
    if raw is None:
        return None
    if isinstance(raw, float | int):
        n = float(raw)
        return int(n) if n.is_integer() and 1 <= n <= 6 else None
    text = raw.strip().removesuffix("类").strip()
    if text.startswith("劣"):
        return 6
    for i, (zh, en) in enumerate(WATER_CLASSES[:5], start=1):
        if text in (zh, en):
            return i
    try:
        return water_class(float(text))
    except ValueError:
        return None


def water_class_name(index: int) -> tuple[str, str]:
    """(Ⅳ类, class IV) — (劣Ⅴ类, worse than class V) for 6."""
    zh, en = WATER_CLASSES[index - 1]
    return f"{zh}类", ("worse than class V" if index == 6 else f"class {en}")


def default_unit(kind: str, factor: str) -> str:
    """The canonical unit (rules.factors) of ``factor`` for an alert of ``kind``; "" if unknown."""
    alert_kind = _KINDS.get(kind)
    for table in _UNIT_TABLES.get(alert_kind, ()) if alert_kind is not None else ():
        if factor in table:
            return table[factor]
    return ""


def display_fields(kind: str, factor: str, detail: Mapping[str, str]) -> dict[str, str]:
    """Template fields that follow from an evaluation's catalogue ``detail`` (names, unit,
    averaging period, standard, limit name); ``alerts.rules`` puts them into the annotations.
    Only keys with a value are returned."""
    out = {
        key: str(detail[key])
        for key in (
            "source_name",
            "outlet_name",
            "enterprise_name",
            "locality_name",
            "standard",
            "zone_class",
            "normal_kw",
            "production_kw",
        )
        if detail.get(key)
    }
    unit = detail.get("unit") or default_unit(kind, factor)
    if unit:
        out["unit"] = unit
    period = PERIODS.get(detail.get("period", ""))
    if period is not None:
        out["basis"], out["basis_en"] = period
    grade = _GRADE_LIMIT_NAMES.get(_roman(detail.get("area_grade", "")))
    if grade is not None and kind == AlertKind.AMBIENT_EXCEEDANCE:
        out["limit_name"], out["limit_name_en"] = grade
    return out


def _roman(grade: str) -> str:
    return {"1": "I", "2": "II", "一": "I", "二": "II"}.get(grade.strip(), grade.strip().upper())


# ---------------------------------------------------------------- pieces of a text


def _unit_code(kind: AlertKind, f: _Fields) -> str:
    return f.opt("unit") or default_unit(kind.value, f.opt("factor"))


def _unit(code: str) -> str:
    return UNIT_DISPLAY.get(code, code)


def _unit_en(code: str) -> str:
    return UNIT_DISPLAY_EN.get(code) or _unit(code)


def _with_unit(number: str, unit: str) -> str:
    return f"{number} {unit}" if unit else number


def _join(a: str, b: str) -> str:
    """Two Chinese phrases: a space only next to Latin letters or digits (PM2.5 24 小时平均,
    氮氧化物小时均值)."""
    if not a or not b:
        return a or b
    return f"{a} {b}" if a[-1].isascii() or b[0].isascii() else a + b


def _locality(f: _Fields) -> tuple[str, str]:
    """The five localities by :data:`LOCALITY_NAMES` (the catalogue's ``name`` is bilingual,
    e.g. "潍坊市 Weifang"); any other by its ``locality_name`` (``_en``), else its id."""
    loc = f.opt("locality")
    known = LOCALITY_NAMES.get(loc)
    if known is not None:
        return known
    zh = f.opt("locality_name") or loc
    return zh, f.opt("locality_name_en") or zh


def _subject(f: _Fields) -> str:
    """Catalogue names first, the id second: "莱西市污水处理厂 10万吨/日 出水口 (e-lx-wwtp-w1)";
    the id alone when the catalogue names nothing."""
    source = f.opt("source")
    names: list[str] = []
    for key in ("enterprise_name", "source_name", "outlet_name"):
        name = f.opt(key)
        if name and name != source and not any(name in n for n in names):
            names.append(name)
    if not names:
        return source
    text = " ".join(names)
    return f"{text} ({source})" if source else text


def _factor(kind: AlertKind, f: _Fields) -> tuple[str, str]:
    factor = f.opt("factor")
    if factor in _NO_FACTOR:
        return "", ""
    if factor == "o3_8h" and (f.opt("basis") or f.opt("period")):
        factor = "o3"  # the period already says 8 小时
    zh, en = FACTOR_NAMES.get(factor, (factor, factor))
    if kind is AlertKind.DUST and factor != "dust":
        return f"扬尘 {zh}", f"site dust {en}"
    return zh, en


def _basis(kind: AlertKind, f: _Fields) -> tuple[str, str]:
    zh, en = f.opt("basis"), f.opt("basis_en")
    period = PERIODS.get(f.opt("period"))
    if period is not None:
        zh, en = zh or period[0], en or period[1]
    default = _BASIS.get(kind, ("", ""))
    return zh or default[0], en or (default[1] if not zh or zh == default[0] else zh)


def _standard(f: _Fields) -> tuple[str, str]:
    std = f.opt("standard")
    return (f"，限值依据 {std}", f", limit per {std}") if std else ("", "")


def _time_text(raw: str) -> str:
    """An ISO-8601 time in Beijing wall time; anything else as it is."""
    try:
        at = datetime.fromisoformat(raw)
    except ValueError:
        return raw
    return fmt_time(at) if at.tzinfo is not None else raw


# ---------------------------------------------------------------- bodies
#
# A body says what happened to what — names, numbers, units, the standard — without title,
# locality or time: render_alert adds those, and alerts.rules uses the body as the summary.
# ``cleared`` is true for a transition to resolved by the condition (not by hand).


def _exceedance(kind: AlertKind, f: _Fields, cleared: bool) -> tuple[str, str]:
    value, limit = f.num("value"), f.num("limit")
    if limit <= 0:
        raise _Missing("limit")
    code = _unit_code(kind, f)
    unit, unit_en = _unit(code), _unit_en(code)
    subj = _subject(f)
    fac_zh, fac_en = _factor(kind, f)
    basis_zh, basis_en = _basis(kind, f)
    name_zh = f.opt("limit_name") or _LIMIT_NAME[kind][0]
    name_en = f.opt("limit_name_en") or _LIMIT_NAME[kind][1]
    shown = fmt_value_against(value, limit, value_decimals(kind.value, f.opt("factor"), code))
    v, lim = _with_unit(shown, unit), _with_unit(fmt_limit(limit), unit)
    v_en, lim_en = _with_unit(shown, unit_en), _with_unit(fmt_limit(limit), unit_en)
    what_zh, what_en = _join(fac_zh, basis_zh), " ".join(p for p in (fac_en, basis_en) if p)
    if value > limit:
        times = fmt_multiple(float(shown), limit)
        zh = f"{subj} {what_zh} {v}，超过{name_zh} {lim} {times} 倍"
        en = f"{subj} {what_en} {v_en} exceeds {name_en} {lim_en} by {times}×"
    else:
        zh = f"{subj} {what_zh} {v}，未超过{name_zh} {lim}"
        en = f"{subj} {what_en} {v_en} is within {name_en} {lim_en}"
    std_zh, std_en = _standard(f)
    return zh + std_zh, en + std_en


def _noise(kind: AlertKind, f: _Fields, cleared: bool) -> tuple[str, str]:
    value, limit = f.num("value"), f.num("limit")
    unit = _unit(_unit_code(kind, f) or "dB(A)")
    subj = _subject(f)
    basis_zh, basis_en = _basis(kind, f)
    zone = f.opt("zone_class")
    shown = fmt_value_against(value, limit, 1)
    v, lim = _with_unit(shown, unit), _with_unit(fmt_limit(limit), unit)
    what_zh = f"{basis_zh}等效声级"
    what_en = " ".join(p for p in (basis_en, "Leq") if p)
    name_zh = f"{f'声环境功能区 {zone} 类' if zone else ''}{basis_zh}限值"
    zone_en = f"class {zone} acoustic-zone" if zone else ""
    name_en = " ".join(p for p in ("the", zone_en, basis_en, "limit") if p)
    if value > limit:
        over = _with_unit(fmt_fixed(float(shown) - limit, 1), unit)
        zh = f"{subj} {what_zh} {v}，超过{name_zh} {lim}，超标 {over}"
        en = f"{subj} {what_en} {v} exceeds {name_en} {lim} by {over}"
    else:
        zh = f"{subj} {what_zh} {v}，未超过{name_zh} {lim}"
        en = f"{subj} {what_en} {v} is within {name_en} {lim}"
    std_zh, std_en = _standard(f)
    return zh + std_zh, en + std_en


def _water_class(kind: AlertKind, f: _Fields, cleared: bool) -> tuple[str, str]:
    subj = _subject(f)
    observed = water_class(f.opt("observed_class") or None) or water_class(f.maybe("value"))
    target = water_class(f.opt("target_class") or None)
    if target is None and kind is AlertKind.WATER_CLASS:
        target = water_class(f.maybe("limit"))
    if target == 6:
        target = None  # no target: the section is only checked against 劣Ⅴ
    if observed is None:
        if kind is AlertKind.WATER_CLASS:
            raise _Missing("observed_class")
        observed = 5 if cleared else 6
    obs_zh, obs_en = water_class_name(observed)
    own_zh, own_en = _drinking(f)
    zh = f"{subj}{own_zh} 断面水质为{obs_zh}"
    en = f"{subj}{own_en} section water quality {obs_en}"
    if kind is AlertKind.WATER_WORSE_V:
        bad = observed >= 6
        if not bad:
            zh += "，已不再为劣Ⅴ类"
            en += ", no longer worse than class V"
        elif target is not None:
            tgt_zh, tgt_en = water_class_name(target)
            zh += f"（目标{tgt_zh}）"
            en += f" (target {tgt_en})"
    elif target is not None:
        tgt_zh, tgt_en = water_class_name(target)
        bad = observed > target
        zh += f"，未达到{tgt_zh}目标" if bad else f"，达到{tgt_zh}目标"
        en += f", target {tgt_en} not met" if bad else f", meets target {tgt_en}"
    else:
        bad = not cleared
    fac_zh, fac_en = _factor(kind, f)
    if bad and fac_zh:
        zh += f"（超标因子：{fac_zh}）"
        en += f" (failing item: {fac_en})"
    return zh, en


def _drinking(f: _Fields) -> tuple[str, str]:
    """The section's own drinking-water-source note."""
    if f.opt("drinking_water_source") == "1":
        return "（饮用水水源地）", " (drinking-water source)"
    return "", ""


def _at_risk(f: _Fields) -> tuple[str, str]:
    """The sections, and among them the drinking-water sources, downstream of the section."""
    down, drinking = f.opt("at_risk"), f.opt("drinking_at_risk")
    if not down:
        return "", ""
    zh = f"；下游受影响断面：{down}"
    en = f"; downstream at risk: {down.replace('、', ', ')}"
    if drinking:
        zh += f"，其中饮用水水源地：{drinking}"
        en += f"; drinking-water sources among them: {drinking.replace('、', ', ')}"
    return zh, en


def _water_change(kind: AlertKind, f: _Fields, cleared: bool) -> tuple[str, str]:
    value, limit, baseline = f.num("value"), f.num("limit"), f.num("baseline")
    code = _unit_code(kind, f)
    unit, unit_en = _unit(code), _unit_en(code)
    subj = _subject(f)
    own_zh, own_en = _drinking(f)
    fac_zh, fac_en = _factor(kind, f)
    drop = f.opt("direction") == "drop"
    shown = fmt_value_against(value, limit, None)
    v, v_en = _with_unit(shown, unit), _with_unit(shown, unit_en)
    b, b_en = (
        _with_unit(fmt_value(baseline, None), unit),
        _with_unit(fmt_value(baseline, None), unit_en),
    )
    lim, lim_en = (
        _with_unit(fmt_value(limit, None), unit),
        _with_unit(fmt_value(limit, None), unit_en),
    )
    jumped = (value <= limit) if drop else (value >= limit)
    if cleared and not jumped:
        zh = f"{subj}{own_zh} {fac_zh} {v}，已回到近 24 小时基线 {b} 附近"
        en = f"{subj}{own_en} {fac_en} {v_en} is back near its 24-hour baseline {b_en}"
        return zh, en
    word_zh, word_en = ("突降", "fell to") if drop else ("突增", "rose to")
    zh = f"{subj}{own_zh} {fac_zh} {word_zh}至 {v}，近 24 小时基线 {b}（突变阈值 {lim}）"
    en = f"{subj}{own_en} {fac_en} {word_en} {v_en} against its 24-hour baseline {b_en} (jump threshold {lim_en})"
    risk_zh, risk_en = _at_risk(f)
    return zh + risk_zh, en + risk_en


def _water_upstream(kind: AlertKind, f: _Fields, cleared: bool) -> tuple[str, str]:
    subj = _subject(f)
    own_zh, own_en = _drinking(f)
    observed = water_class(f.req("observed_class"))
    upstream = water_class(f.req("upstream_class"))
    if observed is None or upstream is None:
        raise _Missing("observed_class")
    up = f.opt("upstream_name") or f.opt("factor")
    obs_zh, obs_en = water_class_name(observed)
    up_zh, up_en = water_class_name(upstream)
    worse = observed - upstream
    zh = f"{subj}{own_zh} 断面水质为{obs_zh}，上游 {up} 为{up_zh}"
    en = f"{subj}{own_en} section water quality {obs_en}, upstream {up} {up_en}"
    limit = f.maybe("limit")
    if cleared or (limit is not None and worse <= limit):
        return zh + "，未明显劣于上游", en + ", not much worse than upstream"
    zh += f"，劣于上游 {worse} 个类别"
    en += f", {worse} classes worse than upstream"
    items = [i for i in f.opt("worsened").split(",") if i]
    if items:
        zh += "（变差指标：" + "、".join(FACTOR_NAMES.get(i, (i, i))[0] for i in items) + "）"
        en += " (worsened: " + ", ".join(FACTOR_NAMES.get(i, (i, i))[1] for i in items) + ")"
    risk_zh, risk_en = _at_risk(f)
    return zh + risk_zh, en + risk_en


def _bypass(_: AlertKind, f: _Fields, cleared: bool) -> tuple[str, str]:
    subj = _subject(f)
    value = f.maybe("value")
    is_open = value >= 1 if value is not None else not cleared
    if is_open:
        return f"{subj} 旁路开启", f"{subj} bypass opened"
    return f"{subj} 旁路已关闭", f"{subj} bypass closed"


def _vapour(_: AlertKind, f: _Fields, cleared: bool) -> tuple[str, str]:
    subj = _subject(f)
    value, working = f.maybe("value"), f.maybe("limit")
    ok = value == working if value is not None and working is not None else cleared
    if ok:
        return f"{subj} 油气回收装置恢复正常", f"{subj} vapour-recovery system working again"
    return f"{subj} 油气回收装置故障/停运", f"{subj} vapour-recovery system fault or shutdown"


def _electricity(kind: AlertKind, f: _Fields, cleared: bool) -> tuple[str, str]:
    subj = _subject(f)
    value = f.num("value")
    limit = f.maybe("limit")
    unit = _unit(_unit_code(kind, f) or "kW")
    v = _with_unit(fmt_value(value, None), unit)
    normal = f.maybe("normal_kw")
    production = f.maybe("production_kw")
    low = value < limit if limit is not None else not cleared
    if not low:
        zh = f"{subj} 治污设施用电 {v}，已恢复运行"
        en = f"{subj} pollution-control equipment draws {v}, running again"
        if normal is not None:
            n = _with_unit(fmt_value(normal, None), unit)
            zh += f"（正常 {n}）"
            en += f" (normal {n})"
        return zh, en
    if normal is not None:
        ref = _with_unit(fmt_value(normal, None), unit)
        zh, en = f"正常 {ref}", f"normal {ref}"
    elif limit is not None:
        ref = _with_unit(fmt_limit(limit), unit)
        zh, en = f"低于 {ref}", f"below {ref}"
    else:
        zh = en = ""
    run_zh, run_en = "生产设施在运行", "while production runs"
    if production is not None:
        p = _with_unit(fmt_value(production, None), unit)
        run_zh += f"（生产用电 {p}）"
        run_en += f" (production draws {p})"
    zh = "，".join(p for p in (f"{subj} 治污设施用电 {v}", zh, run_zh) if p)
    en = f"{subj} pollution-control equipment draws {v}" + (f" ({en})" if en else "")
    return zh, f"{en} {run_en}"


def _offline(_: AlertKind, f: _Fields, cleared: bool) -> tuple[str, str]:
    subj = _subject(f)
    if cleared:
        return f"{subj} 数据恢复上报", f"{subj} reporting again"
    expected = f.opt("expected")
    minutes = f.maybe("expected")
    if minutes is not None:
        zh, en = (
            f"{subj} 超过 {fmt_number(minutes)} 分钟无数据",
            f"{subj} no data for more than {fmt_number(minutes)} min",
        )
    elif expected:
        zh, en = f"{subj} 超过 {expected} 无数据", f"{subj} no data for more than {expected}"
    else:
        zh, en = f"{subj} 监测数据中断", f"{subj} stopped reporting"
    last = f.opt("last_seen")
    if last:
        zh += f"，最后数据 {_time_text(last)}"
        en += f", last data {_time_text(last)}"
    return zh, en


def _suspect(kind: AlertKind, f: _Fields, cleared: bool) -> tuple[str, str]:
    subj = _subject(f)
    fac_zh, fac_en = _factor(kind, f)
    what_zh, what_en = _join(subj, fac_zh), " ".join(p for p in (subj, fac_en) if p)
    if cleared:
        return f"{what_zh} 数据恢复正常", f"{what_en}: values back to normal"
    count = f.req("count")
    if kind is AlertKind.ZERO_VALUE:
        return f"{what_zh} 连续 {count} 个数据为零", f"{what_en}: {count} consecutive zero values"
    code = f.opt("unit")
    shown = fmt_value(f.num("value"), value_decimals("", "", code))
    return (
        f"{what_zh} 连续 {count} 个数据恒定为 {_with_unit(shown, _unit(code))}",
        f"{what_en}: {count} consecutive identical values {_with_unit(shown, _unit_en(code))}",
    )


def _low_rate(kind: AlertKind, f: _Fields, cleared: bool) -> tuple[str, str]:
    subj = _subject(f)
    rate = f.maybe("rate")
    if rate is None:
        rate = f.num("value") * 100
    threshold = f.maybe("threshold")
    if threshold is None and f.maybe("limit") is not None:
        threshold = f.num("limit") * 100
    factor = f.opt("factor")
    name_zh, name_en = (
        FACTOR_NAMES[factor]
        if factor in ("transmission_rate", "valid_rate")
        else ("数据传输有效率", "valid-data transmission rate")
    )
    zh, en = f"{subj} {name_zh} {fmt_percent(rate)}", f"{subj} {name_en} {fmt_percent(rate)}"
    if threshold is not None:
        thr = f"{fmt_number(threshold)} %"
        below = rate < threshold
        zh += f"，低于 {thr}" if below else f"，达到 {thr}"
        en += f", below {thr}" if below else f", meets {thr}"
    return zh, en


def _pipeline(_: AlertKind, f: _Fields, cleared: bool) -> tuple[str, str]:
    """A component of envwatch (alerts/pipeline.py): what it is, what holds, what is held back
    and the component's own reason (the endpoint's status and message)."""
    component = f.opt("component") or f.req("source")
    condition = f.opt("condition") or f.opt("factor")
    kind = component_kind(component)
    name_zh, name_en = COMPONENT_NAMES.get(kind, (kind, kind))
    subject = component.split("@", 1)[0].split(":", 1)[-1] if ":" in component else ""
    where = component.split("@", 1)[1] if "@" in component else ""
    who_zh = " ".join(p for p in (name_zh, subject) if p) + (f"（{where}）" if where else "")
    who_en = " ".join(p for p in (name_en, subject) if p) + (f" ({where})" if where else "")
    texts = CONDITIONS.get((kind, condition))
    if cleared:
        done = texts[1] if texts else ("恢复正常", "back to normal")
        return f"{who_zh} {done[0]}", f"{who_en} {done[1]}"
    what_zh, what_en = texts[0] if texts else (f"{condition} 异常", f"{condition} failing")
    zh, en = f"{who_zh} {what_zh}", f"{who_en} {what_en}"
    count = f.maybe("count")
    if count:
        zh += f"，涉及 {fmt_number(count)} 条"
        en += f", {fmt_number(count)} held back"
    reason = f.opt("reason")
    if reason:
        zh += f"；原因：{reason}"
        en += f"; reason: {reason}"
    return zh, en


def _progress(_: AlertKind, f: _Fields, cleared: bool) -> tuple[str, str]:
    status = f.req("progress")
    st_zh, st_en = _PROGRESS_STATUS.get(status, (status, status))
    indicator = f.req("indicator")
    zh = f"{indicator} 目标进度{st_zh}"
    en = f"{indicator}: progress {st_en}"
    if f.opt("value") and f.opt("target"):
        now = f.maybe("value")
        shown = fmt_value(now, None) if now is not None else f.opt("value")
        zh += f"（当前 {shown}，目标 {f.opt('target')}）"
        en += f" (now {shown}, target {f.opt('target')})"
    return zh, en


def _noncompliance(kind: AlertKind, f: _Fields, cleared: bool) -> tuple[str, str]:
    subj = _subject(f)
    fac_zh, fac_en = _factor(kind, f)
    lvl = f.opt("level")
    lvl_zh, lvl_en = LEVEL_NAMES.get(lvl, (lvl, lvl))
    cut, required = f.num("cut"), f.num("required")
    cut_text, req_text = fmt_percent(cut), f"{fmt_number(required)} %"
    during_zh = f"{lvl_zh}预警期间" if lvl_zh else "预警期间"
    during_en = f"during the {lvl_en} warning" if lvl_en else "during the warning"
    if cut >= required:
        zh = (
            f"{subj} {during_zh} {fac_zh} 较预警前基线下降 {cut_text}，达到不少于 {req_text} 的要求"
        )
        en = (
            f"{subj} {during_en} cut {fac_en} by {cut_text} against its pre-warning baseline; "
            f"at least {req_text} required"
        )
        return zh, en
    zh = f"{subj} {during_zh} {fac_zh} 较预警前基线仅下降 {cut_text}，应不少于 {req_text}"
    en = (
        f"{subj} {during_en} cut {fac_en} by only {cut_text} "
        f"against its pre-warning baseline; at least {req_text} required"
    )
    return zh, en


_BODIES: dict[AlertKind, Callable[[AlertKind, _Fields, bool], tuple[str, str]]] = {
    AlertKind.AMBIENT_EXCEEDANCE: _exceedance,
    AlertKind.PERMIT_EXCEEDANCE: _exceedance,
    AlertKind.EFFLUENT_EXCEEDANCE: _exceedance,
    AlertKind.DUSTFALL: _exceedance,
    AlertKind.DUST: _exceedance,
    AlertKind.NOISE: _noise,
    AlertKind.WATER_CLASS: _water_class,
    AlertKind.WATER_WORSE_V: _water_class,
    AlertKind.BYPASS_OPEN: _bypass,
    AlertKind.VAPOUR_RECOVERY: _vapour,
    AlertKind.ELECTRICITY: _electricity,
    AlertKind.OFFLINE: _offline,
    AlertKind.CONSTANT_VALUE: _suspect,
    AlertKind.ZERO_VALUE: _suspect,
    AlertKind.LOW_DATA_RATE: _low_rate,
    AlertKind.PLAN_PROGRESS: _progress,
    AlertKind.WARNING_NONCOMPLIANCE: _noncompliance,
    AlertKind.PIPELINE: _pipeline,
    AlertKind.WATER_SUDDEN_CHANGE: _water_change,
    AlertKind.WATER_UPSTREAM_WORSE: _water_upstream,
}

#: Title per transition reason (alerts.model.Reason) or state that overrides the kind's title.
_STATE_TITLES: dict[str, tuple[str, str]] = {
    "escalated": ("升级·未确认", "Escalated, unacknowledged"),
    "acknowledged": ("已确认", "Acknowledged"),
    "unacknowledged": ("取消确认", "Acknowledgement withdrawn"),
    "assigned": ("已指派", "Assigned"),
    "unassigned": ("取消指派", "Unassigned"),
    "manually_resolved": ("人工关闭", "Resolved by hand"),
    "flapping_started": ("频繁波动", "Flapping"),
    "resolved": ("恢复", "Resolved"),
}

#: Reasons of a resolved transition that do not mean the condition ended.
_NOT_CLEARED: Final[frozenset[str]] = frozenset({"manually_resolved", "rule_removed"})


def _title(state: str, reason: str) -> tuple[str, str] | None:
    return _STATE_TITLES.get(reason) or _STATE_TITLES.get(state)


def alert_kind(labels: Mapping[str, str], annotations: Mapping[str, str]) -> AlertKind | None:
    """The template for an alert: ``template`` annotation, else ``rule_kind``, else ``rule`` label."""
    candidates = (
        annotations.get("template", ""),
        labels.get("rule_kind", ""),
        labels.get("rule", ""),
    )
    for candidate in candidates:
        kind = _KINDS.get(candidate) or _KINDS.get(candidate.split(".", 1)[0])
        if kind is not None:
            return kind
    return None


_KINDS: Final[dict[str, AlertKind]] = {k.value: k for k in AlertKind}


def describe(
    labels: Mapping[str, str], annotations: Mapping[str, str], *, cleared: bool = False
) -> tuple[str, str]:
    """(zh, en) of what an alert is about — names then ids, numbers with units, the standard —
    without title, locality or time; ``alerts.rules`` writes it as the ``summary``. Never raises:
    with fields missing it names the source, factor and numbers it has."""
    f = _Fields(labels, annotations)
    kind = alert_kind(labels, annotations)
    if kind is not None:
        try:
            return _BODIES[kind](kind, f, cleared)
        except _Missing:
            pass
    return _partial(kind, f)


def _partial(kind: AlertKind | None, f: _Fields) -> tuple[str, str]:
    """Subject, factor, period, value and limit as far as they are known."""
    k = kind or AlertKind.AMBIENT_EXCEEDANCE
    fac_zh, fac_en = _factor(k, f)
    basis_zh, basis_en = (f.opt("basis"), f.opt("basis_en")) if kind is None else _basis(k, f)
    subj = _subject(f)
    zh = " ".join(p for p in (subj, _join(fac_zh, basis_zh)) if p)
    en = " ".join(p for p in (subj, fac_en, basis_en) if p)
    code = f.opt("unit")
    value, limit = f.maybe("value"), f.maybe("limit")
    if value is not None:
        shown = fmt_value(value, value_decimals(k.value, f.opt("factor"), code))
        zh = " ".join(p for p in (zh, _with_unit(shown, _unit(code))) if p)
        en = " ".join(p for p in (en, _with_unit(shown, _unit_en(code))) if p)
    if limit is not None:
        zh += f"（限值 {_with_unit(fmt_limit(limit), _unit(code))}）"
        en += f" (limit {_with_unit(fmt_limit(limit), _unit_en(code))})"
    return zh, en


def render_alert(
    state: str,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    at: datetime,
    reason: str = "",
) -> Texts:
    """Texts of an alert transition (``state``: firing / resolved; ``reason`` e.g. escalated)."""
    f = _Fields(labels, annotations)
    when = fmt_time(at)
    kind = alert_kind(labels, annotations)
    if kind is not None:
        cleared = state in RESOLVED_STATES and reason not in _NOT_CLEARED
        try:
            body_zh, body_en = _BODIES[kind](kind, f, cleared)
        except _Missing:
            pass
        else:
            title_zh, title_en = _title(state, reason) or _TITLES[kind]
            loc_zh, loc_en = _locality(f)
            zh = " ".join(p for p in (loc_zh, body_zh) if p)
            en = " ".join(p for p in (loc_en, body_en) if p)
            return Texts(
                zh=f"【{title_zh}】{zh}（{when}）", en=f"[{title_en}] {en} ({when} Beijing time)"
            )
    return _generic(state, reason, f, when)


def _generic(state: str, reason: str, f: _Fields, when: str) -> Texts:
    loc_zh, loc_en = _locality(f)
    subj = _subject(f)
    what = f.opt("summary") or f.opt("rule") or "告警"
    what_en = f.opt("summary_en") or f.opt("summary") or f.opt("rule") or "alert"
    if subj and subj not in what:
        what = f"{subj} {what}"
    if subj and subj not in what_en:
        what_en = f"{subj} {what_en}"
    title_zh, title_en = _title(state, reason) or ("告警", "Alert")
    zh = " ".join(p for p in (loc_zh, what) if p)
    en = " ".join(p for p in (loc_en, what_en) if p)
    return Texts(zh=f"【{title_zh}】{zh}（{when}）", en=f"[{title_en}] {en} ({when} Beijing time)")


# ---------------------------------------------------------------- warnings


class WarningChange(StrEnum):
    """What happened to a locality's warning."""

    ISSUE = "issue"
    UPGRADE = "upgrade"
    DOWNGRADE = "downgrade"
    LIFT = "lift"


_CHANGE_WORDS: dict[WarningChange, tuple[str, str]] = {
    WarningChange.ISSUE: ("发布", "issued"),
    WarningChange.UPGRADE: ("升级为", "raised to"),
    WarningChange.DOWNGRADE: ("降级为", "lowered to"),
    WarningChange.LIFT: ("解除", "lifted"),
}

_LEVEL_ORDER = ("blue", "yellow", "orange", "red")


_REASON_CHANGES: dict[str, WarningChange] = {
    "warning_issued": WarningChange.ISSUE,
    "warning_upgraded": WarningChange.UPGRADE,
    "warning_downgraded": WarningChange.DOWNGRADE,
    "warning_lifted": WarningChange.LIFT,
}


def warning_change(
    state: str, level: str | None, previous_level: str | None, reason: str = ""
) -> WarningChange:
    """Classify a warning transition from its reason (alerts.model.Reason), else its state and
    the levels before and after."""
    if reason in _REASON_CHANGES:
        return _REASON_CHANGES[reason]
    if state in RESOLVED_STATES or state == "lift" or not level or level == "none":
        return WarningChange.LIFT
    if state in {c.value for c in WarningChange}:
        return WarningChange(state)
    if not previous_level or previous_level == "none":
        return WarningChange.ISSUE
    order = {name: i for i, name in enumerate(_LEVEL_ORDER)}
    if order.get(level, 0) >= order.get(previous_level, 0):
        return WarningChange.UPGRADE
    return WarningChange.DOWNGRADE


def _reductions(trigger: Mapping[str, Any]) -> tuple[str, str]:
    raw = trigger.get("reductions") or {}
    if not isinstance(raw, Mapping) or not raw:
        return "", ""
    parts_zh, parts_en = [], []
    for factor, ratio in raw.items():
        try:
            pct = fmt_number(float(ratio) * 100 if float(ratio) <= 1 else float(ratio))
        except (TypeError, ValueError):
            continue
        name_zh, name_en = FACTOR_NAMES.get(str(factor), (str(factor), str(factor)))
        parts_zh.append(f"{name_zh} ≥{pct}%")
        parts_en.append(f"{name_en} ≥{pct}%")
    if not parts_zh:
        return "", ""
    return "减排要求：" + "、".join(parts_zh), "required cuts: " + ", ".join(parts_en)


def _enterprise_lines(trigger: Mapping[str, Any], limit: int) -> tuple[list[str], list[str], int]:
    raw = trigger.get("enterprises") or []
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        return [], [], 0
    zh: list[str] = []
    en: list[str] = []
    for item in raw[:limit]:
        if not isinstance(item, Mapping):
            continue
        name = str(item.get("name") or item.get("enterprise_id") or item.get("id") or "?")
        grade = str(item.get("grade") or item.get("performance_grade") or "")
        measures = item.get("measures") or []
        if isinstance(measures, str):
            measures = [measures]
        text = "；".join(str(m) for m in measures) if isinstance(measures, Sequence) else ""
        grade_zh = f"（{grade}级）" if grade else ""
        grade_en = f" (grade {grade})" if grade else ""
        zh.append(f"{name}{grade_zh}：{text}" if text else f"{name}{grade_zh}")
        en.append(f"{name}{grade_en}: {text}" if text else f"{name}{grade_en}")
    return zh, en, len(raw)


def render_warning(
    state: str,
    level: str | None,
    previous_level: str | None,
    locality_labels: Mapping[str, str],
    at: datetime,
    trigger: Mapping[str, Any] | None = None,
    *,
    reason: str = "",
    max_enterprises: int = 5,
) -> Texts:
    """Texts of a heavy-pollution warning change, with reductions and measures when given.

    ``trigger`` (``rules.warnings.EmergencyTrigger.to_dict()``) may hold ``reductions``
    ({factor: ratio 0–1 or percent}), ``enterprises`` ([{enterprise_id, name,
    performance_grade, measures}]) and ``previous_level``; only the first ``max_enterprises`` are listed in the text (the
    webhook body carries the whole trigger).
    """
    f = _Fields(locality_labels, {})
    loc_zh, loc_en = _locality(f)
    if trigger and not previous_level and trigger.get("previous_level"):
        previous_level = str(trigger["previous_level"])
    change = warning_change(state, level, previous_level, reason)
    shown = previous_level if change is WarningChange.LIFT else level
    if shown == "none":
        shown = None
    lvl_zh, lvl_en = LEVEL_NAMES.get(shown or "", (shown or "", shown or ""))
    word_zh, word_en = _CHANGE_WORDS[change]
    when = fmt_time(at)
    title_zh = "重污染天气预警解除" if change is WarningChange.LIFT else "重污染天气预警"
    title_en = (
        "Heavy-pollution warning lifted"
        if change is WarningChange.LIFT
        else "Heavy-pollution warning"
    )
    if change is WarningChange.LIFT:
        zh = f"【{title_zh}】{loc_zh} {word_zh}{lvl_zh}预警（{when}）"
        lvl = f"{lvl_en} " if lvl_en else ""
        en = f"[{title_en}] {loc_en}: {lvl}warning {word_en} ({when} Beijing time)"
        return Texts(zh=zh, en=en)
    zh = f"【{title_zh}】{loc_zh} {word_zh}{lvl_zh}预警（{when}）"
    en = f"[{title_en}] {loc_en}: warning {word_en} {lvl_en} ({when} Beijing time)"
    if trigger:
        red_zh, red_en = _reductions(trigger)
        if red_zh:
            zh += f"；{red_zh}"
            en += f"; {red_en}"
        lines_zh, lines_en, total = _enterprise_lines(trigger, max_enterprises)
        if total:
            zh += f"；涉及企业 {total} 家"
            en += f"; {total} enterprise(s) concerned"
            if lines_zh:
                zh += "：" + "｜".join(lines_zh)
                en += ": " + " | ".join(lines_en)
            if total > len(lines_zh):
                zh += f"｜等 {total} 家"
                en += f" | … {total} in all"
    return Texts(zh=zh, en=en)


def render_duty(
    state: str, reason: str, duty: Mapping[str, Any], locality_labels: Mapping[str, str]
) -> Texts:
    """An enterprise's own duties under a warning change (one ``warning_duty`` transition):
    the level, its performance grade, each measure of its 一厂一策 list for the level with the
    list's reduction percentages, and the cuts required of it. The measures are the list's own
    words (Chinese) in both texts."""
    f = _Fields(locality_labels, {})
    loc_zh, loc_en = _locality(f)
    level = str(duty.get("level") or "none")
    previous = str(duty.get("previous_level") or "none")
    change = warning_change(state, level, previous, reason)
    name = str(duty.get("name") or duty.get("enterprise_id") or "?")
    grade = str(duty.get("performance_grade") or "")
    grade_zh = f"（绩效分级 {grade} 级）" if grade else ""
    grade_en = f" (performance grade {grade})" if grade else ""
    when = fmt_time(_parse_time(duty.get("at")))
    if change is WarningChange.LIFT:
        lvl_zh, lvl_en = LEVEL_NAMES.get(previous, (previous, previous))
        return Texts(
            zh=f"【重污染天气预警解除】{loc_zh} {lvl_zh}预警已解除（{when}）。{name}{grade_zh}"
            "的应急减排措施可结束，恢复正常生产前请做好记录。",
            en=f"[Heavy-pollution warning lifted] {loc_en}: the {lvl_en} warning is lifted "
            f"({when} Beijing time). {name}{grade_en} may end its emergency measures.",
        )
    lvl_zh, lvl_en = LEVEL_NAMES.get(level, (level, level))
    word_zh, word_en = _CHANGE_WORDS[change]
    measures = [str(m) for m in duty.get("measures") or ()]
    cuts = list(duty.get("measure_reductions_pct") or ())
    lines_zh: list[str] = []
    lines_en: list[str] = []
    for i, text in enumerate(measures):
        pct = cuts[i] if i < len(cuts) and isinstance(cuts[i], Mapping) else {}
        zh_pct = "、".join(f"{_factor_zh(k)}减排{fmt_number(float(v))}%" for k, v in pct.items())
        en_pct = ", ".join(f"{_factor_en(k)} −{fmt_number(float(v))} %" for k, v in pct.items())
        lines_zh.append(f"{i + 1}. {text}" + (f"（{zh_pct}）" if zh_pct else ""))
        lines_en.append(f"{i + 1}. {text}" + (f" ({en_pct})" if en_pct else ""))
    required = duty.get("reductions") or {}
    req_zh = "、".join(
        f"{_factor_zh(k)}≥{fmt_number(float(v) * 100)}%" for k, v in required.items()
    )
    req_en = ", ".join(
        f"{_factor_en(k)} ≥ {fmt_number(float(v) * 100)} %" for k, v in required.items()
    )
    zh = (
        f"【重污染天气{lvl_zh}预警】{loc_zh} {word_zh}{lvl_zh}预警（{when}）。"
        f"{name}{grade_zh}须立即执行{lvl_zh}预警应急减排措施（一厂一策）："
    )
    en = (
        f"[Heavy-pollution {lvl_en} warning] {loc_en}: warning {word_en} {lvl_en} "
        f"({when} Beijing time). {name}{grade_en} must now apply its emergency measures "
        f"for {lvl_en}:"
    )
    if lines_zh:
        zh += "\n" + "\n".join(lines_zh)
        en += "\n" + "\n".join(lines_en)
    else:
        zh += "清单未列出本级措施，请按应急预案执行并报告。"
        en += " the list names no measure for this level: follow the plan and report."
    if req_zh:
        zh += f"\n减排要求：{req_zh}（对照预警前排放水平）"
        en += f"\nRequired cuts: {req_en} (against the pre-warning emissions)"
    return Texts(zh=zh, en=en)


def _factor_zh(name: str) -> str:
    return FACTOR_NAMES.get(name, (name, name))[0] if name != "power_kw" else "用电量"


def _factor_en(name: str) -> str:
    return FACTOR_NAMES.get(name, (name, name))[1] if name != "power_kw" else "electricity"


def _parse_time(raw: object) -> datetime:
    try:
        at = datetime.fromisoformat(str(raw))
    except ValueError:
        at = datetime(1970, 1, 1, tzinfo=ZoneInfo("UTC"))
    return at if at.tzinfo is not None else at.replace(tzinfo=ZoneInfo("UTC"))


#: Columns of the emergency responders' measures list (:func:`trigger_csv`).
TRIGGER_CSV_COLUMNS: Final = (
    "enterprise_id",
    "name",
    "performance_grade",
    "level",
    "measure",
    "so2_pct",
    "nox_pct",
    "pm_pct",
    "vocs_pct",
)


def trigger_csv(trigger: Mapping[str, Any]) -> str:
    """The whole measures list of a warning change as CSV (RFC 4180, one row per measure, an
    enterprise without a measure for the level on a row of its own), then one ``TOTAL`` row per
    pollutant: the city-wide cut required and the enterprises' mean required cut."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(TRIGGER_CSV_COLUMNS)
    level = str(trigger.get("level") or "")
    for ent in trigger.get("enterprises") or ():
        if not isinstance(ent, Mapping):
            continue
        head = [ent.get("enterprise_id", ""), ent.get("name", ""), ent.get("performance_grade", "")]
        measures = list(ent.get("measures") or ()) or [""]
        cuts = list(ent.get("measure_reductions_pct") or ())
        for i, text in enumerate(measures):
            pct = cuts[i] if i < len(cuts) and isinstance(cuts[i], Mapping) else {}
            w.writerow(
                [*head, level, text] + [_pct_cell(pct.get(p)) for p in ("so2", "nox", "pm", "vocs")]
            )
    for pollutant, total in dict(trigger.get("totals") or {}).items():
        if not isinstance(total, Mapping):
            continue
        city = total.get("city_target")
        mean = total.get("mean_required_cut")
        w.writerow(
            [
                "TOTAL",
                pollutant,
                f"enterprises={total.get('enterprises', 0)}",
                level,
                "city-wide target "
                + ("-" if city is None else f"{fmt_number(float(city) * 100)}%")
                + "; mean required "
                + ("-" if mean is None else f"{fmt_number(float(mean) * 100)}%"),
                "",
                "",
                "",
                "",
            ]
        )
    return buf.getvalue()


def _pct_cell(value: object) -> str:
    return "" if not isinstance(value, int | float) else fmt_number(float(value))


def trigger_of(transition: object) -> Mapping[str, Any] | None:
    """The emergency trigger of a warning transition: a ``trigger`` attribute, else the
    ``trigger_json`` annotation that ``alerts.engine`` writes; None when absent or unreadable."""
    found = _as_mapping(getattr(transition, "trigger", None))
    if found is not None:
        return found
    annotations = getattr(transition, "annotations", None) or {}
    raw = annotations.get("trigger_json") if isinstance(annotations, Mapping) else None
    if not raw:
        return None
    try:
        parsed = json.loads(raw)
    except ValueError:
        return None
    return parsed if isinstance(parsed, Mapping) else None


def _as_mapping(value: object) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        return value
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        dumped = dump(mode="json")
        return dumped if isinstance(dumped, Mapping) else None
    return None


def _plain(value: object) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


def console_url(external_url: str, fingerprint: str) -> str:
    """The alert's console page, ``{external_url}/console/alerts/{fingerprint}`` (docs/console.md);
    "" when ``external_url`` (``AlertsSettings.external_url``) or the fingerprint is empty."""
    base = external_url.strip().rstrip("/")
    if not base or not fingerprint:
        return ""
    return f"{base}/console/alerts/{fingerprint}"


def with_link(texts: Texts, url: str) -> Texts:
    """``texts`` with the console link on a line of its own (unchanged when ``url`` is "")."""
    if not url:
        return texts
    return Texts(zh=f"{texts.zh}\n详情：{url}", en=f"{texts.en}\nDetails: {url}")


def render(transition: TransitionLike, *, external_url: str = "") -> Texts:
    """Texts for any transition (alert or warning); reads optional fields when present.

    ``value`` / ``limit`` attributes of the transition fill the template fields of the same name
    when the annotations do not carry them; a ``previous_level`` attribute or annotation names the
    level a lifted warning had. With ``external_url`` (``AlertsSettings.external_url``) an alert's
    texts end with a link to its console page (:func:`console_url`); a warning has no such page.
    """
    texts = _render(transition)
    if _transition_kind(transition) is not NotificationKind.ALERT:
        return texts
    return with_link(texts, console_url(external_url, transition.fingerprint))


def _render(transition: TransitionLike) -> Texts:
    state = _plain(transition.state) or ""
    reason = _plain(getattr(transition, "reason", None)) or ""
    labels = dict(transition.labels)
    annotations = dict(transition.annotations)
    for name in ("locality", "source"):
        attr = _plain(getattr(transition, name, None))
        if attr and name not in labels:
            labels[name] = attr
    if _transition_kind(transition) is NotificationKind.DUTY:
        raw = annotations.get("duty_json", "")
        try:
            duty = json.loads(raw) if raw else {}
        except ValueError:
            duty = {}
        return render_duty(state, reason, duty if isinstance(duty, Mapping) else {}, labels)
    if _transition_kind(transition) is NotificationKind.WARNING:
        previous = _plain(getattr(transition, "previous_level", None)) or annotations.get(
            "previous_level"
        )
        return render_warning(
            state,
            _plain(getattr(transition, "level", None)),
            previous,
            labels,
            transition.at,
            trigger_of(transition),
            reason=reason,
        )
    for name in ("value", "limit"):
        attr = getattr(transition, name, None)
        if isinstance(attr, int | float) and name not in annotations:
            annotations[name] = repr(float(attr))
    return render_alert(state, labels, annotations, transition.at, reason)
