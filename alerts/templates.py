"""Message texts for people (pure): Chinese (the default) and English, for every alert kind and
for heavy-pollution warning (重污染天气预警) changes.

Which template applies is named by the alert's ``template`` annotation or, failing that, its
``rule_kind`` label (set by ``alerts.rules.AlertRule.labels``) or its ``rule`` label, matched
against :class:`AlertKind`'s values (the rule kinds of ``alerts.rules.RuleKind``; a dotted name
such as ``permit_exceedance.nox`` matches by its first part). The fields a template reads come from
the annotations first, then the labels:

=====================  =====================================================================
field                  meaning
=====================  =====================================================================
``locality``           locality id (label); displayed via :data:`LOCALITY_NAMES` or the
                       ``locality_name`` annotation
``source_name``        station / section / enterprise display name (else the ``source`` label)
``outlet_name``        outlet (排口) name, enterprises only
``factor``             canonical factor name (rules.factors), displayed via :data:`FACTOR_NAMES`
``value``, ``limit``   numbers; ``unit`` canonical unit (``mg/m3`` → mg/m³)
``basis``              e.g. 小时均值 — defaults per kind; ``basis_en`` its English
``limit_name``         e.g. 许可限值 — defaults per kind; ``limit_name_en``
``observed_class``,    water classes (I … V, 劣V)
``target_class``
``count``              consecutive samples (constant / zero values)
``rate``, ``threshold`` percentages (data transmission-and-validity rate)
``last_seen``,         offline: the last sample time (ISO-8601) and the expected interval
``expected``
``indicator``,         plan progress: indicator name, status (at_risk / off_track), year-to-date
``progress``,          value and target
``target``
``baseline``,          non-compliance during a warning: pre-warning baseline, achieved and
``cut``, ``required``  required reduction (%)
=====================  =====================================================================

A template never raises on missing or malformed fields: it falls back to a generic text built
from the ``summary`` annotation (or the rule name), so a notification is always deliverable.
Times are shown in Beijing time (architecture.md §5).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from alerts.notification import RESOLVED_STATES, NotificationKind, Texts, TransitionLike
from alerts.notification import transition_kind as _transition_kind
from rules import factors

BEIJING = ZoneInfo("Asia/Shanghai")


class AlertKind(StrEnum):
    """The alert kinds with their own template (issue 7, "Rules that produce alerts")."""

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


#: Display names of the five localities (plans/README.md). Operators may add more through the
#: ``locality_name`` annotation.
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
    "dustfall": ("降尘量", "dustfall"),
    "dust": ("扬尘", "site dust"),
    "noise_leq": ("噪声", "noise"),
    "power_kw": ("用电负荷", "electric load"),
    "aqi": ("AQI", "AQI"),
}

UNIT_DISPLAY: dict[str, str] = {
    "mg/m3": "mg/m³",
    "ug/m3": "µg/m³",
    "m3/h": "m³/h",
    "t/(month*km2)": "t/(月·km²)",
    "degC": "℃",
    "1": "",
}

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
}

#: Default averaging basis and limit name per exceedance kind: (zh, en).
_BASIS: dict[AlertKind, tuple[str, str]] = {
    AlertKind.PERMIT_EXCEEDANCE: ("小时均值", "hourly mean"),  # issue 7: hourly average
    AlertKind.EFFLUENT_EXCEEDANCE: ("日均值", "daily mean"),  # GB 18918-2002 表1 "日均值"
    AlertKind.AMBIENT_EXCEEDANCE: ("浓度", "concentration"),
    AlertKind.DUSTFALL: ("月降尘量", "monthly dustfall"),
}
_LIMIT_NAME: dict[AlertKind, tuple[str, str]] = {
    AlertKind.PERMIT_EXCEEDANCE: ("许可限值", "the permit limit"),
    AlertKind.EFFLUENT_EXCEEDANCE: ("排放标准限值", "the discharge limit"),
    AlertKind.AMBIENT_EXCEEDANCE: ("标准限值", "the standard limit"),
    AlertKind.DUSTFALL: ("控制目标", "the target"),
}


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
        text = self.req(name)
        try:
            value = float(text)
        except ValueError as exc:
            raise _Missing(name) from exc
        if not math.isfinite(value):
            raise _Missing(name)
        return value


def fmt_number(value: float) -> str:
    """At most three decimals, trailing zeros dropped: 132.0 → "132", 0.125 → "0.125"."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def fmt_time(at: datetime) -> str:
    """Beijing wall time, minutes: ``2026-11-22 09:00``."""
    return at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


def exceedance_multiple(value: float, limit: float) -> float:
    """超标倍数 = (value − limit) / limit (the usual definition in Chinese enforcement texts)."""
    return (value - limit) / limit


def _unit(f: _Fields) -> str:
    raw = f.opt("unit")
    return UNIT_DISPLAY.get(raw, raw)


def _with_unit(number: str, unit: str) -> str:
    return f"{number} {unit}" if unit else number


def _locality(f: _Fields) -> tuple[str, str]:
    loc = f.opt("locality")
    zh = f.opt("locality_name") or LOCALITY_NAMES.get(loc, (loc, loc))[0]
    en = f.opt("locality_name_en") or LOCALITY_NAMES.get(loc, (loc, loc))[1]
    return zh, en


def _subject(f: _Fields) -> tuple[str, str]:
    """ "潍坊市 xx 企业 1号排口" — locality, source name, outlet name when there is one."""
    loc_zh, loc_en = _locality(f)
    who = [f.opt("source_name") or f.opt("source")]
    if f.opt("outlet_name"):
        who.append(f.opt("outlet_name"))
    names = " ".join(w for w in who if w)
    return " ".join(p for p in (loc_zh, names) if p), " ".join(p for p in (loc_en, names) if p)


def _factor(f: _Fields) -> tuple[str, str]:
    factor = f.opt("factor")
    return FACTOR_NAMES.get(factor, (factor, factor))


#: Where an exceedance's canonical unit is looked up when no ``unit`` annotation is given.
_UNIT_TABLES: dict[AlertKind, tuple[Mapping[str, str], ...]] = {
    AlertKind.AMBIENT_EXCEEDANCE: (factors.AIR,),
    AlertKind.PERMIT_EXCEEDANCE: (factors.EMISSION_GAS, factors.EMISSION_WATER),
    AlertKind.EFFLUENT_EXCEEDANCE: (factors.EMISSION_WATER,),
    AlertKind.DUSTFALL: (factors.MONITOR,),
}


def _exceedance(kind: AlertKind, f: _Fields, when: str) -> tuple[str, str]:
    value, limit = f.num("value"), f.num("limit")
    if limit <= 0:
        raise _Missing("limit")
    unit = _unit(f)
    if not unit:
        for table in _UNIT_TABLES[kind]:
            if f.opt("factor") in table:
                raw = table[f.opt("factor")]
                unit = UNIT_DISPLAY.get(raw, raw)
                break
    subj_zh, subj_en = _subject(f)
    fac_zh, fac_en = _factor(f)
    basis_zh = f.opt("basis") or _BASIS[kind][0]
    basis_en = f.opt("basis_en") or _BASIS[kind][1]
    lim_zh = f.opt("limit_name") or _LIMIT_NAME[kind][0]
    lim_en = f.opt("limit_name_en") or _LIMIT_NAME[kind][1]
    v, lim = _with_unit(fmt_number(value), unit), _with_unit(fmt_number(limit), unit)
    times = f"{exceedance_multiple(value, limit):.2f}"
    zh = f"{subj_zh} {fac_zh}{basis_zh} {v}，超过{lim_zh} {lim} {times} 倍（{when}）"
    en = f"{subj_en} {fac_en} {basis_en} {v} exceeds {lim_en} {lim} by {times}× ({when} Beijing time)"
    return zh, en


def _water_class(kind: AlertKind, f: _Fields, when: str) -> tuple[str, str]:
    subj_zh, subj_en = _subject(f)
    observed = f.req("observed_class") if kind is AlertKind.WATER_CLASS else "劣Ⅴ"
    observed_en = observed if kind is AlertKind.WATER_CLASS else "worse than V"
    target = f.opt("target_class")
    fac_zh, fac_en = _factor(f)
    zh = f"{subj_zh} 断面水质 {observed} 类"
    en = f"{subj_en} section water quality class {observed_en}"
    if target:
        zh += f"，目标 {target} 类"
        en += f", target class {target}"
    if fac_zh:
        zh += f"（超标因子：{fac_zh}）"
        en += f" (failing item: {fac_en})"
    return f"{zh}（{when}）", f"{en} ({when} Beijing time)"


def _bypass(_: AlertKind, f: _Fields, when: str) -> tuple[str, str]:
    subj_zh, subj_en = _subject(f)
    return f"{subj_zh} 旁路开启（{when}）", f"{subj_en} bypass opened ({when} Beijing time)"


def _offline(_: AlertKind, f: _Fields, when: str) -> tuple[str, str]:
    subj_zh, subj_en = _subject(f)
    zh, en = f"{subj_zh} 监测数据中断", f"{subj_en} stopped reporting"
    if f.opt("last_seen"):
        zh += f"，最后一条数据 {f.opt('last_seen')}"
        en += f", last sample {f.opt('last_seen')}"
    if f.opt("expected"):
        zh += f"，超过应上报间隔 {f.opt('expected')}"
        en += f", beyond the expected interval {f.opt('expected')}"
    return f"{zh}（{when}）", f"{en} ({when} Beijing time)"


def _suspect(kind: AlertKind, f: _Fields, when: str) -> tuple[str, str]:
    subj_zh, subj_en = _subject(f)
    fac_zh, fac_en = _factor(f)
    count = f.req("count")
    if kind is AlertKind.ZERO_VALUE:
        zh = f"{subj_zh} {fac_zh} 连续 {count} 个数据为零"
        en = f"{subj_en} {fac_en}: {count} consecutive zero values"
    else:
        value = _with_unit(fmt_number(f.num("value")), _unit(f))
        zh = f"{subj_zh} {fac_zh} 连续 {count} 个数据恒定为 {value}"
        en = f"{subj_en} {fac_en}: {count} consecutive identical values {value}"
    return f"{zh}（{when}）", f"{en} ({when} Beijing time)"


def _low_rate(_: AlertKind, f: _Fields, when: str) -> tuple[str, str]:
    subj_zh, subj_en = _subject(f)
    rate = fmt_number(f.num("rate"))
    zh = f"{subj_zh} 数据传输有效率 {rate}%"
    en = f"{subj_en} valid-data transmission rate {rate}%"
    if f.opt("threshold"):
        zh += f"，低于 {f.opt('threshold')}%"
        en += f", below {f.opt('threshold')}%"
    return f"{zh}（{when}）", f"{en} ({when} Beijing time)"


def _progress(_: AlertKind, f: _Fields, when: str) -> tuple[str, str]:
    loc_zh, loc_en = _locality(f)
    status = f.req("progress")
    st_zh, st_en = _PROGRESS_STATUS.get(status, (status, status))
    indicator = f.req("indicator")
    zh = f"{loc_zh} {indicator} 目标进度{st_zh}"
    en = f"{loc_en} {indicator}: progress {st_en}"
    if f.opt("value") and f.opt("target"):
        zh += f"（当前 {f.opt('value')}，目标 {f.opt('target')}）"
        en += f" (now {f.opt('value')}, target {f.opt('target')})"
    return f"{zh}（{when}）", f"{en} ({when} Beijing time)"


def _noncompliance(_: AlertKind, f: _Fields, when: str) -> tuple[str, str]:
    subj_zh, subj_en = _subject(f)
    fac_zh, fac_en = _factor(f)
    lvl = f.opt("level")
    lvl_zh, lvl_en = LEVEL_NAMES.get(lvl, (lvl, lvl))
    cut, required = fmt_number(f.num("cut")), fmt_number(f.num("required"))
    zh = f"{subj_zh} {lvl_zh}预警期间 {fac_zh} 较预警前基线仅下降 {cut}%，应不少于 {required}%"
    en = (
        f"{subj_en} during the {lvl_en} warning cut {fac_en} by only {cut}% "
        f"against its pre-warning baseline; at least {required}% required"
    )
    return f"{zh}（{when}）", f"{en} ({when} Beijing time)"


_BODIES: dict[AlertKind, Callable[[AlertKind, _Fields, str], tuple[str, str]]] = {
    AlertKind.AMBIENT_EXCEEDANCE: _exceedance,
    AlertKind.PERMIT_EXCEEDANCE: _exceedance,
    AlertKind.EFFLUENT_EXCEEDANCE: _exceedance,
    AlertKind.DUSTFALL: _exceedance,
    AlertKind.WATER_CLASS: _water_class,
    AlertKind.WATER_WORSE_V: _water_class,
    AlertKind.BYPASS_OPEN: _bypass,
    AlertKind.OFFLINE: _offline,
    AlertKind.CONSTANT_VALUE: _suspect,
    AlertKind.ZERO_VALUE: _suspect,
    AlertKind.LOW_DATA_RATE: _low_rate,
    AlertKind.PLAN_PROGRESS: _progress,
    AlertKind.WARNING_NONCOMPLIANCE: _noncompliance,
}

#: Title per transition reason (alerts.model.Reason) or state that overrides the kind's title.
_STATE_TITLES: dict[str, tuple[str, str]] = {
    "escalated": ("升级·未确认", "Escalated, unacknowledged"),
    "acknowledged": ("已确认", "Acknowledged"),
    "assigned": ("已指派", "Assigned"),
    "manually_resolved": ("人工关闭", "Resolved by hand"),
    "flapping_started": ("频繁波动", "Flapping"),
    "resolved": ("恢复", "Resolved"),
}


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
        for name in (candidate, candidate.split(".", 1)[0]):
            if name in AlertKind.__members__.values():
                return AlertKind(name)
    return None


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
        try:
            body_zh, body_en = _BODIES[kind](kind, f, when)
            title_zh, title_en = _title(state, reason) or _TITLES[kind]
            return Texts(zh=f"【{title_zh}】{body_zh}", en=f"[{title_en}] {body_en}")
        except _Missing:
            pass
    return _generic(state, reason, f, when)


def _generic(state: str, reason: str, f: _Fields, when: str) -> Texts:
    subj_zh, subj_en = _subject(f)
    what = f.opt("summary") or f.opt("rule") or "告警"
    what_en = f.opt("summary_en") or f.opt("summary") or f.opt("rule") or "alert"
    title_zh, title_en = _title(state, reason) or ("告警", "Alert")
    zh = f"【{title_zh}】{subj_zh} {what}（{when}）".replace("  ", " ")
    en = f"[{title_en}] {subj_en} {what_en} ({when} Beijing time)".replace("  ", " ")
    return Texts(zh=zh, en=en)


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


def render(transition: TransitionLike) -> Texts:
    """Texts for any transition (alert or warning); reads optional fields when present.

    ``value`` / ``limit`` attributes of the transition fill the template fields of the same name
    when the annotations do not carry them; a ``previous_level`` attribute or annotation names the
    level a lifted warning had.
    """
    state = _plain(transition.state) or ""
    reason = _plain(getattr(transition, "reason", None)) or ""
    labels = dict(transition.labels)
    annotations = dict(transition.annotations)
    for name in ("locality", "source"):
        attr = _plain(getattr(transition, name, None))
        if attr and name not in labels:
            labels[name] = attr
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
