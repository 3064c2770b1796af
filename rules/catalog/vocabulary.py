"""The catalogue's vocabulary: id patterns and the enumerations its YAML uses (control levels,
area grades, water bodies, outlet and monitor kinds, zones, roles, indicator attributes and
metrics), and water classes as printed (I–V, Ⅰ–Ⅴ).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

#: A source id as MQTT topics carry it (same pattern as ``ingest.schemas.SourceId``).
SOURCE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
#: A locality id: lower-case ASCII slug used in MQTT topics (``env/{kind}/{locality}/…``).
LOCALITY_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
#: A citation of a plan line: ``003_021375295357aa36.txt#L107`` or a range ``#L128-L131``.
PLAN_REF_PATTERN = r"^\d{3}_[0-9a-f]{16}\.txt#L\d+(-L?\d+)?$"

SourceId = Annotated[str, Field(min_length=1, max_length=64, pattern=SOURCE_ID_PATTERN)]
LocalityId = Annotated[str, Field(min_length=1, max_length=64, pattern=LOCALITY_ID_PATTERN)]
PlanRef = Annotated[str, Field(pattern=PLAN_REF_PATTERN)]
NonEmpty = Annotated[str, Field(min_length=1)]


class ControlLevel(StrEnum):
    """Who assesses a station or section (控制级别), highest first."""

    NATIONAL = "国控"
    PROVINCIAL = "省控"
    CITY = "市控"
    DISTRICT = "区控"

    @property
    def rank(self) -> int:
        """0 for 国控 … 3 for 区控: smaller is higher."""
        return list(ControlLevel).index(self)

    def at_least(self, level: ControlLevel) -> bool:
        """True when this level is ``level`` or higher (e.g. 国控 is at least 省控)."""
        return self.rank <= level.rank


class AreaGrade(StrEnum):
    """Ambient-air functional area class (GB 3095-2012 §4.1 / GB 3095-2026: 一类区, 二类区)."""

    I = "I"  # noqa: E741 - the standard's own name
    II = "II"


class WaterBody(StrEnum):
    RIVER = "river"
    LAKE = "lake"  # lake or reservoir (湖库): GB 3838 表1 applies the lake TP/TN rows


class PerformanceGrade(StrEnum):
    """绩效分级 of an enterprise for heavy-pollution emergency cuts (环办大气函〔2020〕340号)."""

    A = "A"
    B = "B"
    C = "C"
    D = "D"
    LEADING = "引领性"


class OutletType(StrEnum):
    GAS = "gas"
    WASTEWATER = "wastewater"


class MonitorKind(StrEnum):
    """Other monitors the plans name (digests: seed-000 §3.3, seed-001 §3.5–3.7)."""

    CONSTRUCTION_DUST = "construction_dust"
    ROAD_DUST = "road_dust"
    DUSTFALL = "dustfall"
    NOISE = "noise"
    VAPOUR_RECOVERY = "vapour_recovery"
    BYPASS = "bypass"
    ELECTRICITY = "electricity"


class ZoneClass(StrEnum):
    """声环境功能区 class of GB 3096-2008 (its 表1 sets the day/night noise limits per class;
    ``rules.standards.gb3096``)."""

    C0 = "0"  # 康复疗养区等特别需要安静的区域
    C1 = "1"  # 居民住宅、医疗卫生、文化教育、科研设计、行政办公为主
    C2 = "2"  # 商业金融、集市贸易为主，或居住、商业、工业混杂
    C3 = "3"  # 工业生产、仓储物流为主
    C4A = "4a"  # 交通干线两侧: roads, urban rail (surface), inland waterways
    C4B = "4b"  # 交通干线两侧: railway trunk lines


class MonitorRole(StrEnum):
    """What an electricity (用电量) monitor of an enterprise measures (plans: 治污设施电量监控,
    e.g. 001_15ef1b070f9ae15b.txt#L695; 重污染应急重点企业电量监控, 000_d6d679181568297b.txt#L339)."""

    PRODUCTION = "production"  # a production line: tells whether the enterprise is producing
    TREATMENT = "treatment"  # pollution-control equipment (治污设施): must run while producing


class LocalityLevel(StrEnum):
    CITY = "city"  # 地级市
    COUNTY_CITY = "county_city"  # 县级市
    DISTRICT = "district"  # 市辖区
    DEVELOPMENT_ZONE = "development_zone"  # 经济技术开发区


class Attribute(StrEnum):
    """指标属性 as printed in the main-indicator tables."""

    BINDING = "约束性"
    EXPECTED = "预期性"


class Metric(StrEnum):
    """What a target measures, when envwatch can compute it from live data (rules.progress)."""

    PM25_ANNUAL_MEAN = "pm25_annual_mean"  # µg/m³, lower is better
    GOOD_DAY_RATIO = "good_day_ratio"  # %, higher is better
    GOOD_DAY_COUNT = "good_day_count"  # days (Liaocheng ETDZ reports a count, 000…#L37)
    SECTIONS_AT_LEAST_III = "sections_at_least_iii"  # % of sections at class I–III
    SECTIONS_WORSE_THAN_V = "sections_worse_than_v"  # % of sections at 劣V
    SECTION_COMPLIANCE = "section_compliance"  # % of sections meeting their target class
    HEAVY_POLLUTION_DAYS = "heavy_pollution_days"  # days with daily AQI > 200
    DUSTFALL_MONTHLY_MEAN = "dustfall_monthly_mean"  # t/(month·km²), lower is better


class TargetOrigin(StrEnum):
    """Where the number a progress comparison uses comes from."""

    TABLE = "table"  # the main-indicator table's 2025 cell
    TEXT = "text"  # the plan's prose, where it disagrees with the table
    OVERRIDE = "override"  # an operator-entered number (e.g. the allocated 分解任务 value)


_ROMAN = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5}
_ROMAN_UNICODE = {"Ⅰ": "I", "Ⅱ": "II", "Ⅲ": "III", "Ⅳ": "IV", "Ⅴ": "V"}


def parse_water_class(value: object) -> int:
    """A target class I–V (GB 3838-2002 §3) as an int 1–5; accepts ``III``, ``Ⅲ`` or ``3``."""
    if isinstance(value, bool):
        raise ValueError("a water class is I, II, III, IV or V")
    if isinstance(value, int):
        if 1 <= value <= 5:
            return value
        raise ValueError(f"target class {value} outside I–V")
    if isinstance(value, str):
        text = _ROMAN_UNICODE.get(value.strip(), value.strip().upper())
        if text in _ROMAN:
            return _ROMAN[text]
        raise ValueError(f"target class {value!r} outside I–V (劣V is not a target)")
    raise ValueError("a water class is I, II, III, IV or V")


ROMAN_OF = {v: k for k, v in _ROMAN.items()}
