"""The monitoring catalogue: localities and their plan targets, stations, sections, enterprises.

The catalogue is configuration an operator reads and edits (YAML in ``deploy/config/``, one file
per locality plus shared files); this module holds its model (pure pydantic, frozen) and every
cross-reference check. ``docs/configuration.md`` describes the files.

Entry points:

* :func:`catalog_from_texts` — pure: ``{filename: yaml text}`` → :class:`Catalog`.
* :func:`load_catalog` — reads a directory of ``*.yaml`` files (or one file) and calls the
  former. **This is the one I/O exception in ``rules/``**: the contract names
  ``rules.config.load_catalog``; the I/O is limited to reading the files, in sorted order, so
  the result is deterministic and cheap to rebuild on reload.

PyYAML is used as a pure parser (text → nodes): nodes keep their line numbers, so every problem
names the file, the line, the field path and the reason. All problems are collected and raised
together as :class:`rules.errors.ConfigError`.

Domain values in the model cite their source (plan file and line, or standard and clause);
the plan digests are in ``/work/shared/docs/plans`` and the originals in ``/work/shared/seeds``.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from rules.emission import EffluentClass
from rules.errors import ConfigError, ConfigProblem
from rules.factors import AIR, EMISSION_GAS, EMISSION_WATER, MONITOR, WATER

# --------------------------------------------------------------------------- vocabulary

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


# --------------------------------------------------------------------------- printed cells

#: Superscript footnote marks printed inside table cells (e.g. Zhifu ``[28.74] ¹``, 004…#L177).
_FOOTNOTES = str.maketrans("", "", "¹²³⁴⁵⁶⁷⁸⁹")
_NUMBER_CELL = re.compile(
    r"^(?P<cmp>[≥≤])?\s*(?P<open>\[)?\s*(?P<num>\d+(?:\.\d+)?)\s*(?P<close>\])?\s*(?P<pct>%)?"
    r"\s*(?:[(（](?P<qual>[^()（）]*)[)）])?$"
)


class CellKind(StrEnum):
    NUMBER = "number"  # a printed number (possibly with ≥/≤, [] or a qualifier)
    WORD = "word"  # a word target: 完成市分解任务, 全面消除, 稳中向好, 有效保障 …
    BLANK = "blank"  # the cell is empty in the source
    DASH = "dash"  # "-" or "—" printed
    PLACEHOLDER = "placeholder"  # "□" printed (Zhifu row 14, 004…#L184)


@dataclass(frozen=True, slots=True)
class Cell:
    """One table cell read from its printed text; ``printed`` is kept verbatim."""

    printed: str
    kind: CellKind
    number: float | None = None
    comparator: str | None = None  # "≥" or "≤" when printed
    cumulative: bool = False  # printed in [] — a five-year cumulative value
    qualifier: str | None = None  # e.g. "省控及以上" in "40 (省控及以上)" (001…#L164)
    percent: bool = False  # printed with a % sign ("100%")

    @property
    def word(self) -> str | None:
        """The word target without footnote marks (``完成市分解任务 ²`` → ``完成市分解任务``)."""
        if self.kind is CellKind.WORD:
            return self.printed.translate(_FOOTNOTES).strip()
        return None


def parse_cell(printed: str) -> Cell:
    """Read a printed table cell. Numbers become numbers; words stay words (statuses)."""
    text = printed.translate(_FOOTNOTES).strip()
    if text == "":
        return Cell(printed, CellKind.BLANK)
    if text in {"-", "—", "–", "--", "——"}:
        return Cell(printed, CellKind.DASH)
    if text == "□":
        return Cell(printed, CellKind.PLACEHOLDER)
    m = _NUMBER_CELL.match(text)
    if m is not None and bool(m["open"]) == bool(m["close"]):
        return Cell(
            printed,
            CellKind.NUMBER,
            number=float(m["num"]),
            comparator=m["cmp"],
            cumulative=bool(m["open"]),
            qualifier=m["qual"].strip() if m["qual"] else None,
            percent=bool(m["pct"]),
        )
    return Cell(printed, CellKind.WORD)


# --------------------------------------------------------------------------- model


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)


class TextTarget(_Frozen):
    """A target the plan's prose states where the table says something else."""

    printed: NonEmpty  # verbatim quote, e.g. "实现年度PM2.5稳定达到38微克/立方米"
    value: float
    comparator: Literal["≤", "≥", "="] = "="
    source: PlanRef


class Override(_Frozen):
    """An operator-entered number for a word target (e.g. the allocated 分解任务 value)."""

    value: float
    comparator: Literal["≤", "≥", "="] = "="
    provenance: Annotated[str, Field(min_length=3)]  # document, number, date, or reasoning
    entered: date | None = None


@dataclass(frozen=True, slots=True)
class EffectiveTarget:
    """The number progress compares with, and where it comes from."""

    value: float
    comparator: str  # "≤", "≥" or "="
    origin: TargetOrigin
    printed: str  # the literal behind it (table cell, quote, or override provenance)


class Indicator(_Frozen):
    """One main-indicator row exactly as printed (or, for a plan without a table, a prose target)."""

    no: int | None = None  # row number as printed; None for prose targets
    category: NonEmpty  # 类别 / section heading, e.g. "环境治理"
    name: NonEmpty  # verbatim, including a trailing "*" (统计口径调整)
    unit: str | None = None
    value_2020: StrictStr  # verbatim printed cell; "" when blank
    target_2025: StrictStr  # verbatim printed cell; "" when blank
    attribute: Attribute | None = None  # None: not stated (prose targets)
    origin: Literal["table", "prose"] = "table"
    source: PlanRef
    metric: Metric | None = None
    section_scope: ControlLevel | None = None  # sections counted: this level and above
    deadline: str | None = None  # for prose targets ("2025", "end-2025", "standing")
    text_target: TextTarget | None = None
    text_value_2020: TextTarget | None = None  # where the text's 2020 value differs
    baseline_uses: TargetOrigin = TargetOrigin.TABLE  # TABLE or TEXT (which 2020 value is shown)
    override: Override | None = None
    progress_uses: TargetOrigin | None = None
    notes: str = ""

    @property
    def baseline(self) -> Cell:
        return parse_cell(self.value_2020)

    @property
    def target(self) -> Cell:
        return parse_cell(self.target_2025)

    @property
    def cumulative(self) -> bool:
        """Five-year cumulative marker: a value printed in [] (e.g. 001…#L175, note 001…#L191)."""
        return self.baseline.cumulative or self.target.cumulative

    @model_validator(mode="after")
    def _uses_exists(self) -> Indicator:
        uses = self.progress_uses
        if uses is TargetOrigin.TABLE and self.target.kind is not CellKind.NUMBER:
            raise ValueError(
                "progress_uses is 'table' but the 2025 cell is not a number "
                f"({self.target_2025!r}); add an override or a text_target"
            )
        if uses is TargetOrigin.TEXT and self.text_target is None:
            raise ValueError("progress_uses is 'text' but there is no text_target")
        if uses is TargetOrigin.OVERRIDE and self.override is None:
            raise ValueError("progress_uses is 'override' but there is no override")
        if self.baseline_uses is TargetOrigin.TEXT and self.text_value_2020 is None:
            raise ValueError("baseline_uses is 'text' but there is no text_value_2020")
        if self.baseline_uses is TargetOrigin.OVERRIDE:
            raise ValueError("baseline_uses is 'table' or 'text'")
        return self

    def baseline_value(self) -> float | None:
        """The 2020 value shown next to progress (table or text, per ``baseline_uses``)."""
        if self.baseline_uses is TargetOrigin.TEXT and self.text_value_2020 is not None:
            return self.text_value_2020.value
        cell = self.baseline
        return cell.number if cell.kind is CellKind.NUMBER and not cell.cumulative else None

    def effective_target(self) -> EffectiveTarget | None:
        """The target progress compares with: ``progress_uses`` if set, else override, table
        number, text — in that order. None when no number exists (a word target without
        override: the status is then ``no_target``)."""
        order = (
            [self.progress_uses]
            if self.progress_uses is not None
            else [TargetOrigin.OVERRIDE, TargetOrigin.TABLE, TargetOrigin.TEXT]
        )
        for origin in order:
            if origin is TargetOrigin.OVERRIDE and self.override is not None:
                o = self.override
                return EffectiveTarget(o.value, o.comparator, origin, o.provenance)
            if origin is TargetOrigin.TABLE and self.target.kind is CellKind.NUMBER:
                cell = self.target
                assert cell.number is not None
                return EffectiveTarget(cell.number, cell.comparator or "=", origin, cell.printed)
            if origin is TargetOrigin.TEXT and self.text_target is not None:
                t = self.text_target
                return EffectiveTarget(t.value, t.comparator, origin, t.printed)
        return None


class Plan(_Frozen):
    title: NonEmpty
    issuer: str | None = None
    number: str | None = None  # 文号, None when the plan prints none
    date: Annotated[str, Field(pattern=r"^\d{4}-\d{2}(-\d{2})?$")]  # as precise as printed
    status: Literal["in_force", "draft"]
    file: Annotated[str, Field(pattern=r"^\d{3}_[0-9a-f]{16}\.txt$")]
    source: PlanRef


class Locality(_Frozen):
    id: LocalityId
    name: NonEmpty  # Chinese name first, e.g. "潍坊市 Weifang"
    level: LocalityLevel
    parent: str | None = None  # e.g. "济南市" for a district
    plan: Plan
    warning_rule_set: str | None = None
    #: the locality's receivers and their channels (defined below, with Route)
    notify: LocalityRoutes = Field(default_factory=lambda: LocalityRoutes())
    indicators: tuple[Indicator, ...] = ()
    prose_targets: tuple[Indicator, ...] = ()
    example: bool = False

    def targets(self) -> tuple[Indicator, ...]:
        """Every target: the table rows then the prose targets."""
        return self.indicators + self.prose_targets


class _Sited(_Frozen):
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)


class AirStation(_Sited):
    id: SourceId
    name: NonEmpty
    locality: LocalityId
    control: ControlLevel
    area_grade: AreaGrade = AreaGrade.II
    factors: tuple[str, ...] = ("pm25", "pm10", "so2", "no2", "co", "o3")
    example: bool = False
    source: str | None = None

    @field_validator("factors")
    @classmethod
    def _air_factors(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return _known(v, AIR, "air")


class WaterSection(_Sited):
    id: SourceId
    name: NonEmpty
    river: str | None = None  # river, lake or reservoir name
    body: WaterBody = WaterBody.RIVER
    locality: LocalityId
    control: ControlLevel | None = None  # None: the plan does not state it
    target_class: int | None = None  # 1–5 (I–V); None when the plan gives no target
    upstream: tuple[str, ...] = ()
    downstream: tuple[str, ...] = ()
    drinking_water_source: bool = False
    compensation_town: str | None = None  # 生态补偿 assessed town (街镇)
    problem_factors: tuple[str, ...] = ()
    factors: tuple[str, ...] = ("temp", "ph", "do", "cond", "turb", "codmn", "nh3n", "tp", "tn")
    example: bool = False
    source: str | None = None

    @field_validator("target_class", mode="before")
    @classmethod
    def _class(cls, v: object) -> int | None:
        return None if v is None else parse_water_class(v)

    @field_validator("factors", "problem_factors")
    @classmethod
    def _water_factors(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return _known(v, WATER, "water")


class FactorLimit(_Frozen):
    """A permit limit for one factor at one outlet or monitor."""

    factor: NonEmpty
    limit: float | None = None
    unit: str | None = None
    basis: Literal["hour", "day", "month"] = "hour"
    source: str | None = None  # standard + clause, plan line, or "[MEM] operator default"

    @field_validator("limit")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("limit must be a finite number")
        if v is not None and v < 0:
            raise ValueError(f"negative limit {v}")
        return v

    @model_validator(mode="after")
    def _unit(self) -> FactorLimit:
        if self.limit is not None and not self.unit:
            raise ValueError(f"limit {self.limit} for {self.factor!r} has no unit")
        return self


class SecretRef(_Frozen):
    """Where a secret is kept — never the secret itself (the catalogue is shared and versioned).

    Exactly one of ``env`` (the name of an environment variable) or ``file`` (a file whose
    content, without a final newline, is the secret; relative to the catalogue directory).
    Resolved by the process that needs it (``streams.cli.gateway``), not here (rules/ is pure).
    """

    env: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | None = None
    file: NonEmpty | None = None

    @model_validator(mode="before")
    @classmethod
    def _reference_only(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            raise ValueError(
                "a secret is given by reference, never inline: {env: VAR} or {file: PATH}"
            )
        return data

    @model_validator(mode="after")
    def _one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env or file")
        return self

    def __str__(self) -> str:
        return f"env {self.env}" if self.env is not None else f"file {self.file}"


class Outlet(_Frozen):
    id: SourceId  # must start with "<enterprise id>-" (MQTT ACL: env/emission/+/e-…)
    name: NonEmpty
    type: OutletType
    mn: Annotated[str, Field(pattern=r"^[0-9A-Za-z]{1,24}$")]  # HJ 212-2017 表3: MN ≤ 24 chars
    #: the logger's HJ 212 access password (PW, HJ 212-2017 表3), by reference; the gateway
    #: refuses packets with another PW (docs/hj212.md). None: PW not checked
    password: SecretRef | None = None
    source_type: str | None = None  # key into defaults.reference_o2 (e.g. "gas_boiler")
    reference_o2: float | None = Field(default=None, ge=0, lt=21)
    limits: tuple[FactorLimit, ...] = ()
    standard: str | None = None
    #: a municipal wastewater treatment plant's outlet: the GB 18918-2002 表1 class it must meet
    #: (一级A, 一级B, 二级, 三级), judged on daily means; its day-basis ``limits`` are the
    #: stricter local limits (e.g. Laixi's COD ≤ 40, NH3-N ≤ 2, 003_021375295357aa36.txt#L114)
    effluent_class: EffluentClass | None = None
    #: the plant's build date (selects GB 18918-2002 表1's TP row: before or from 2006-01-01);
    #: unknown: the stricter row of plants built from 2006-01-01
    plant_built: date | None = None

    @model_validator(mode="after")
    def _vocabulary(self) -> Outlet:
        vocab = EMISSION_GAS if self.type is OutletType.GAS else EMISSION_WATER
        for lim in self.limits:
            if lim.factor not in vocab:
                raise ValueError(f"unknown {self.type.value} factor {lim.factor!r}")
            if lim.unit is not None and lim.unit != vocab[lim.factor]:
                raise ValueError(
                    f"unit {lim.unit!r} for {lim.factor!r}, canonical unit is "
                    f"{vocab[lim.factor]!r} (convert at the edge)"
                )
        if self.type is OutletType.WASTEWATER and (self.reference_o2 or self.source_type):
            raise ValueError("reference O2 applies to gas outlets only")
        if self.type is OutletType.GAS and (self.effluent_class or self.plant_built):
            raise ValueError("effluent_class and plant_built apply to wastewater outlets only")
        return self


class Measure(_Frozen):
    """One emission-reduction measure at a warning level (一厂一策)."""

    text: NonEmpty
    reduction_pct: dict[str, Annotated[float, Field(ge=0, le=100)]] = Field(default_factory=dict)


class Measures(_Frozen):
    yellow: tuple[Measure, ...] = ()
    orange: tuple[Measure, ...] = ()
    red: tuple[Measure, ...] = ()


#: query parameter names that carry a credential when they contain one of these (lower case):
#: ``access_token`` (DingTalk), ``key`` (WeCom), ``sign``/``timestamp`` of signed robots, API keys
_CREDENTIAL_PARAMS = ("token", "key", "secret", "sign", "pass", "pwd", "auth", "credential", "sig")
#: a receiver kind of an escalation chain (alerts/grouping.py: receiver ``<kind>-<locality>``)
ESCALATION_KIND_PATTERN = r"^[a-z][a-z0-9_]*$"
#: receiver kinds that are not escalation kinds of ``notify.escalation`` (they have their own key)
RESERVED_KINDS = frozenset({"duty", "emergency", "enterprise", "operator"})
_EMAIL = re.compile(r"^[^@\s:/]+@[^@\s:/]+\.[^@\s:/]+$")
_MQTT_ROOT = re.compile(r"^[^#+\s]+$")


def inline_secret(url: str) -> str | None:
    """Why an inline URL carries a secret, or None: userinfo (``https://u:p@h/``), or a query
    or fragment parameter whose name contains token, key, secret, sign, pass, pwd, auth,
    credential or sig (``access_token=``, ``key=``, ``apikey=``). The value is never quoted."""
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)", url)
    if m is not None and "@" in m.group(2):
        return "the URL carries a user name or password (userinfo)"
    _, _, rest = url.partition("?")
    rest = rest.replace("#", "&")
    if not rest and "#" in url:
        rest = url.split("#", 1)[1]
    for pair in rest.split("&"):
        name = pair.split("=", 1)[0].strip().lower()
        if name and any(word in name for word in _CREDENTIAL_PARAMS):
            return f"the URL carries a credential parameter {name!r}"
    return None


class Route(_Frozen):
    """One channel of a receiver (alerts/notify/routes.py builds it; docs/notifications.md §2).

    What is a secret, and therefore only by reference (``{env: VAR}`` / ``{file: PATH}``):

    * ``secret`` (a webhook's HMAC-SHA256 key, a DingTalk robot's signing secret) and ``server``
      (an e-mail route's SMTP server URL with its password) — always;
    * the ``target`` of ``dingtalk`` and ``wecom``: a robot's address *is* its credential
      (``access_token=`` / ``key=``);
    * a ``webhook`` target with userinfo or a credential-looking query parameter
      (:func:`inline_secret`).

    Inline and not secret: a webhook URL without them, an e-mail address, an MQTT topic root.
    """

    channel: Literal["webhook", "dingtalk", "wecom", "email", "mqtt"]
    #: URL (webhook), robot address (dingtalk/wecom, by reference), address (email), topic root
    #: (mqtt: ``<root>/enterprise/<id>/<fingerprint>``; default ``alerts``)
    target: NonEmpty | SecretRef | None = None
    secret: SecretRef | None = None
    server: SecretRef | None = None
    language: Literal["zh", "en"] = "zh"

    @field_validator("target")
    @classmethod
    def _no_inline_secret(cls, v: str | SecretRef | None) -> str | SecretRef | None:
        if isinstance(v, str):
            why = inline_secret(v)
            if why is not None:
                raise ValueError(
                    f"a secret inline: {why}; give the target by reference, "
                    "{env: VAR} or {file: PATH}"
                )
        return v

    @model_validator(mode="after")
    def _per_channel(self) -> Route:
        ch, t = self.channel, self.target
        if ch == "mqtt":
            if isinstance(t, SecretRef) or (t is not None and not _MQTT_ROOT.match(t)):
                raise ValueError("an mqtt target is a topic root without wildcards (e.g. alerts)")
            if self.secret is not None or self.server is not None:
                raise ValueError("an mqtt route takes no secret or server (broker from settings)")
            return self
        if t is None:
            raise ValueError(f"a {ch} route needs a target")
        if ch in {"dingtalk", "wecom"} and isinstance(t, str):
            raise ValueError(
                f"a secret inline: a {ch} robot's address is its credential; give the target "
                "by reference, {env: VAR} or {file: PATH}"
            )
        if ch == "webhook":
            if isinstance(t, str) and not t.startswith(("https://", "http://")):
                raise ValueError("a webhook target is an http(s) URL")
            if self.secret is None:
                raise ValueError(
                    "a webhook route needs secret: {env: VAR} or {file: PATH} (its HMAC key)"
                )
        if ch == "email":
            if isinstance(t, str) and not _EMAIL.match(t):
                raise ValueError("an email target is one address (name@domain)")
        elif self.server is not None:
            raise ValueError("server applies to email routes only")
        if ch in {"wecom", "email"} and self.secret is not None:
            raise ValueError(f"a {ch} route takes no secret")
        return self


EscalationKind = Annotated[str, Field(pattern=ESCALATION_KIND_PATTERN)]


class LocalityRoutes(_Frozen):
    """A locality's receivers (docs/notifications.md §2): ``duty-<id>``, ``emergency-<id>`` and
    one ``<kind>-<id>`` per escalation kind (``chief``, ``lead`` …: the kinds the alert rules'
    escalation chains name, alerts/grouping.py)."""

    duty: tuple[Route, ...] = ()
    emergency: tuple[Route, ...] = ()
    escalation: dict[EscalationKind, tuple[Route, ...]] = Field(default_factory=dict)

    @field_validator("escalation")
    @classmethod
    def _kinds(cls, v: dict[str, tuple[Route, ...]]) -> dict[str, tuple[Route, ...]]:
        reserved = sorted(set(v) & RESERVED_KINDS)
        if reserved:
            raise ValueError(f"{', '.join(reserved)} is not an escalation kind (its own key)")
        return v


class Enterprise(_Frozen):
    id: SourceId
    uscc: str  # 统一社会信用代码 (GB 32100-2015), 18 chars, check digit verified
    name: NonEmpty
    locality: LocalityId
    industry: NonEmpty
    grade: PerformanceGrade | None = None
    outlets: tuple[Outlet, ...] = ()
    measures: Measures = Measures()
    notify: tuple[Route, ...] = ()
    example: bool = False
    source: str | None = None

    @field_validator("uscc")
    @classmethod
    def _uscc(cls, v: str) -> str:
        reason = uscc_problem(v)
        if reason is not None:
            raise ValueError(reason)
        return v


class Monitor(_Sited):
    """Another monitor the plans name: dust, dustfall, noise, vapour recovery, bypass, electricity.

    Kind-specific fields (their presence is checked across the catalogue, see ``_cross_check``):

    * ``zone_class`` — noise monitors (required): the GB 3096-2008 声环境功能区 class of the
      site, which selects the 表1 day/night limits.
    * ``role`` — electricity monitors (required, with ``enterprise``): ``production`` (a
      production line) or ``treatment`` (pollution-control equipment).
    * ``normal_kw`` — treatment monitors (required, > 0): the equipment's normal load in kW, a
      local setting of the operator (no standard sets it).
    * ``running_kw`` — production monitors (required, > 0): above this load (kW) the production
      line counts as running; a local setting of the operator.
    """

    id: SourceId
    name: NonEmpty
    locality: LocalityId
    kind: MonitorKind
    factors: tuple[str, ...]
    enterprise: str | None = None  # bypass/electricity/vapour monitors belong to an enterprise
    limits: tuple[FactorLimit, ...] = ()
    zone_class: ZoneClass | None = None
    role: MonitorRole | None = None
    normal_kw: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    running_kw: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    example: bool = False
    source: str | None = None

    @field_validator("factors")
    @classmethod
    def _monitor_factors(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return _known(v, MONITOR, "monitor")

    @field_validator("zone_class", mode="before")
    @classmethod
    def _zone_class(cls, v: object) -> object:
        """``3`` and ``"3"`` are the same class; anything outside 0, 1, 2, 3, 4a, 4b is refused."""
        if v is None:
            return None
        text = str(v) if isinstance(v, int) and not isinstance(v, bool) else v
        if isinstance(text, str) and text in {z.value for z in ZoneClass}:
            return text
        choices = ", ".join(z.value for z in ZoneClass)
        raise ValueError(
            f"声环境功能区 class {v!r} is not one of {choices} (GB 3096-2008; 4 类 is 4a or 4b)"
        )


class ReferenceO2(_Frozen):
    value: float = Field(ge=0, lt=21)
    source: NonEmpty
    confidence: Literal["STD", "2+", "1", "MEM"]


class Defaults(_Frozen):
    """Shared defaults (``defaults.yaml``); [MEM] values are operator-overridable defaults."""

    reference_o2: dict[str, ReferenceO2] = Field(default_factory=dict)


def _known(values: Iterable[str], vocab: Mapping[str, str], kind: str) -> tuple[str, ...]:
    out = tuple(values)
    unknown = [f for f in out if f not in vocab]
    if unknown:
        raise ValueError(f"unknown {kind} factor(s): {', '.join(unknown)}")
    if len(set(out)) != len(out):
        raise ValueError("a factor is listed twice")
    return out


# --------------------------------------------------------------------------- USCC

_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100-2015 代码字符集 (no I O S V Z)
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def uscc_check_char(first17: str) -> str:
    """The GB 32100-2015 check character of the first 17 characters (weights 3^i mod 31)."""
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_CHARS[(31 - total % 31) % 31]


def uscc_problem(code: str) -> str | None:
    """Why ``code`` is not a valid 统一社会信用代码, or None when it is."""
    if len(code) != 18:
        return f"统一社会信用代码 must have 18 characters, got {len(code)}"
    bad = sorted({c for c in code if c not in _USCC_CHARS})
    if bad:
        return f"统一社会信用代码 contains characters outside GB 32100 set: {''.join(bad)}"
    if not code[2:8].isdigit():
        return "统一社会信用代码 characters 3–8 must be the administrative-division code (digits)"
    expected = uscc_check_char(code[:17])
    if code[17] != expected:
        return f"统一社会信用代码 check character is {code[17]!r}, expected {expected!r}"
    return None


# --------------------------------------------------------------------------- catalogue


class Catalog(_Frozen):
    """The whole catalogue, validated; build with :func:`catalog_from_texts` or :func:`load_catalog`."""

    localities: tuple[Locality, ...] = ()
    stations: tuple[AirStation, ...] = ()
    sections: tuple[WaterSection, ...] = ()
    enterprises: tuple[Enterprise, ...] = ()
    monitors: tuple[Monitor, ...] = ()
    defaults: Defaults = Defaults()
    warning_rule_sets: dict[str, Any] = Field(default_factory=dict)  # id → validated set or raw
    fingerprint: str = ""  # sha256 over the file names and texts it was built from

    _sources: dict[str, object] = PrivateAttr(default_factory=dict)
    _mns: dict[str, tuple[Enterprise, Outlet]] = PrivateAttr(default_factory=dict)
    _localities: dict[str, Locality] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        self._localities = {loc.id: loc for loc in self.localities}
        items: list[AirStation | WaterSection | Enterprise | Monitor] = [
            *self.stations,
            *self.sections,
            *self.enterprises,
            *self.monitors,
        ]
        for item in items:
            self._sources[item.id] = item
        for ent in self.enterprises:
            for out in ent.outlets:
                self._sources[out.id] = out
                self._mns[out.mn.upper()] = (ent, out)

    # lookups
    def locality(self, locality_id: str) -> Locality:
        return self._localities[locality_id]

    def source(self, source_id: str) -> object | None:
        """The station, section, enterprise, outlet or monitor with this source id."""
        return self._sources.get(source_id)

    def outlet_by_mn(self, mn: str) -> tuple[Enterprise, Outlet] | None:
        """The enterprise and outlet an HJ 212 MN belongs to (case-insensitive)."""
        return self._mns.get(mn.upper())

    def stations_of(self, locality_id: str) -> tuple[AirStation, ...]:
        return tuple(s for s in self.stations if s.locality == locality_id)

    def sections_of(self, locality_id: str) -> tuple[WaterSection, ...]:
        return tuple(s for s in self.sections if s.locality == locality_id)

    def enterprises_of(self, locality_id: str) -> tuple[Enterprise, ...]:
        return tuple(e for e in self.enterprises if e.locality == locality_id)

    def monitors_of(self, locality_id: str) -> tuple[Monitor, ...]:
        return tuple(m for m in self.monitors if m.locality == locality_id)

    def routes(self) -> dict[str, tuple[Route, ...]]:
        """Receiver name → its channels, as the catalogue routes them: ``duty-<locality>``,
        ``emergency-<locality>``, ``<kind>-<locality>`` per escalation kind and
        ``enterprise-<id>``; receivers without a route are left out."""
        out: dict[str, tuple[Route, ...]] = {}
        for loc in self.localities:
            if loc.notify.duty:
                out[f"duty-{loc.id}"] = loc.notify.duty
            if loc.notify.emergency:
                out[f"emergency-{loc.id}"] = loc.notify.emergency
            for kind, routes in loc.notify.escalation.items():
                if routes:
                    out[f"{kind}-{loc.id}"] = routes
        for ent in self.enterprises:
            if ent.notify:
                out[f"enterprise-{ent.id}"] = ent.notify
        return out

    def reference_o2(self, outlet: Outlet) -> float | None:
        """The outlet's reference O2 (%): its own value, else the default of its source type."""
        if outlet.reference_o2 is not None:
            return outlet.reference_o2
        if outlet.source_type is not None and outlet.source_type in self.defaults.reference_o2:
            return self.defaults.reference_o2[outlet.source_type].value
        return None


# --------------------------------------------------------------------------- YAML with lines

Path_ = tuple[str | int, ...]


def _fmt(path: Path_) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(document)"


class _Doc:
    """One parsed YAML file: plain data plus the line of every node (by field path)."""

    def __init__(self, file: str, problems: list[ConfigProblem]) -> None:
        self.file = file
        self.lines: dict[Path_, int] = {}
        self.problems = problems
        self.broken_ids: set[str] = set()
        self.broken_items: list[dict[str, Any]] = []  # raw items that failed validation

    def line(self, path: Path_) -> int | None:
        p = path
        while True:
            if p in self.lines:
                return self.lines[p]
            if not p:
                return None
            p = p[:-1]

    def problem(self, path: Path_, reason: str) -> None:
        self.problems.append(ConfigProblem(self.file, _fmt(path), reason, self.line(path)))

    def build(self, loader: Any, node: yaml.Node, path: Path_) -> Any:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            loader.flatten_mapping(node)
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                # keys are read as their text: YAML 1.1 would turn ``no:`` into False
                if not isinstance(key_node, yaml.ScalarNode):
                    self.problem(path, "a mapping key must be text")
                    continue
                key = str(key_node.value)
                if key in out:
                    self.lines[(*path, key)] = key_node.start_mark.line + 1
                    self.problem((*path, key), "duplicate key")
                    continue
                out[key] = self.build(loader, value_node, (*path, key))
                self.lines[(*path, key)] = key_node.start_mark.line + 1
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(loader, n, (*path, i)) for i, n in enumerate(node.value)]
        return loader.construct_object(node, deep=True)


#: libyaml's parser when present (same nodes and marks, several times faster), else pure Python.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _parse(file: str, text: str, problems: list[ConfigProblem]) -> tuple[_Doc, Any]:
    doc = _Doc(file, problems)
    loader = _LOADER(text)
    try:
        node = loader.get_single_node()
        data = None if node is None else doc.build(loader, node, ())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = str(getattr(exc, "problem", None) or exc)
        problems.append(ConfigProblem(file, "(document)", f"YAML syntax: {reason}", line))
        return doc, None
    finally:
        loader.dispose()
    return doc, data


# --------------------------------------------------------------------------- building

_LISTS: dict[str, type[_Frozen]] = {
    "air_stations": AirStation,
    "water_sections": WaterSection,
    "enterprises": Enterprise,
    "monitors": Monitor,
}
_TOP_KEYS = {"locality", "localities", "defaults", "warning_rule_sets", *_LISTS}


@dataclass(slots=True)
class _Located:
    obj: Any
    doc: _Doc
    path: Path_


def _validate(
    model: type[_Frozen], raw: Any, doc: _Doc, path: Path_, inherit: str | None
) -> _Located | None:
    if isinstance(raw, dict) and inherit is not None and "locality" in model.model_fields:
        raw = {"locality": inherit, **raw}
    try:
        return _Located(model.model_validate(raw), doc, path)
    except ValidationError as exc:
        if isinstance(raw, dict) and isinstance(raw.get("id"), str):
            doc.broken_ids.add(raw["id"])  # reported here; references to it don't cascade
        if isinstance(raw, dict):
            doc.broken_items.append(raw)
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not isinstance(p, str) or p[:1] != "[")
            # pydantic prefixes enum/literal choices and model-level errors; keep its message
            msg = err["msg"].removeprefix("Value error, ")
            doc.problem((*path, *loc), msg)
        return None


def catalog_from_texts(texts: Mapping[str, str]) -> Catalog:
    """Build and check the catalogue from ``{file name: YAML text}`` (pure).

    Raises :class:`ConfigError` listing every problem (file, line, field path, reason).
    """
    problems: list[ConfigProblem] = []
    localities: list[_Located] = []
    items: dict[str, list[_Located]] = {k: [] for k in _LISTS}
    defaults: list[_Located] = []
    rule_sets: dict[str, tuple[Any, _Doc, Path_]] = {}
    broken: set[str] = set()
    docs: list[_Doc] = []
    digest = hashlib.sha256()

    for file in sorted(texts):
        text = texts[file]
        digest.update(file.encode() + b"\0" + text.encode() + b"\0")
        doc, data = _parse(file, text, problems)
        docs.append(doc)
        if data is None:
            continue
        if not isinstance(data, dict):
            doc.problem((), "a catalogue file is a mapping of sections (locality, air_stations …)")
            continue
        for key in data:
            if key not in _TOP_KEYS:
                doc.problem(
                    (key,), f"unknown section; expected one of {', '.join(sorted(_TOP_KEYS))}"
                )
        inherit: str | None = None
        if "locality" in data:
            loc = _validate(Locality, data["locality"], doc, ("locality",), None)
            if loc is not None:
                localities.append(loc)
                inherit = loc.obj.id
            elif isinstance(data["locality"], dict) and isinstance(data["locality"].get("id"), str):
                inherit = data["locality"]["id"]
                broken.add(inherit)  # reported already; don't cascade "unknown locality"
        for i, raw in enumerate(_as_list(data.get("localities"), doc, ("localities",))):
            loc = _validate(Locality, raw, doc, ("localities", i), None)
            if loc is not None:
                localities.append(loc)
        for key, model in _LISTS.items():
            for i, raw in enumerate(_as_list(data.get(key), doc, (key,))):
                got = _validate(model, raw, doc, (key, i), inherit)
                if got is not None:
                    items[key].append(got)
        if "defaults" in data:
            got = _validate(Defaults, data["defaults"], doc, ("defaults",), None)
            if got is not None:
                defaults.append(got)
        _collect_rule_sets(data.get("warning_rule_sets"), doc, rule_sets)

    validated_sets = _check_rule_sets(rule_sets)
    _cross_check(localities, items, defaults, rule_sets, broken, docs)
    if problems:
        problems.sort(key=lambda p: (p.file, p.line or 0, p.field))
        raise ConfigError(problems)

    merged = Defaults()
    for d in defaults:
        merged = Defaults(reference_o2={**merged.reference_o2, **d.obj.reference_o2})
    return Catalog(
        localities=tuple(x.obj for x in localities),
        stations=tuple(x.obj for x in items["air_stations"]),
        sections=tuple(x.obj for x in items["water_sections"]),
        enterprises=tuple(x.obj for x in items["enterprises"]),
        monitors=tuple(x.obj for x in items["monitors"]),
        defaults=merged,
        warning_rule_sets=validated_sets,
        fingerprint=digest.hexdigest(),
    )


def _as_list(raw: Any, doc: _Doc, path: Path_) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        doc.problem(path, "must be a list")
        return []
    return raw


def _collect_rule_sets(raw: Any, doc: _Doc, out: dict[str, tuple[Any, _Doc, Path_]]) -> None:
    """Rule sets are a mapping ``{id: body}`` or a list of bodies with ``id``."""
    if raw is None:
        return
    entries: list[tuple[Any, Any, Path_]] = []
    if isinstance(raw, dict):
        entries = [(k, v, ("warning_rule_sets", k)) for k, v in raw.items()]
    elif isinstance(raw, list):
        for i, body in enumerate(raw):
            rid = body.get("id") if isinstance(body, dict) else None
            entries.append((rid, body, ("warning_rule_sets", i)))
    else:
        doc.problem(("warning_rule_sets",), "must be a mapping of id → rule set, or a list")
        return
    for rid, body, path in entries:
        if not isinstance(rid, str) or not rid:
            doc.problem(path, "a warning rule set needs a text id")
        elif rid in out:
            doc.problem(path, f"duplicate warning rule set id {rid!r} (also in {out[rid][1].file})")
        else:
            out[rid] = (body, doc, path)


def _check_rule_sets(rule_sets: dict[str, tuple[Any, _Doc, Path_]]) -> dict[str, Any]:
    """Validate with ``rules.warnings.WarningRuleSet`` when that module exists (owned by the
    alerts work; imported lazily so the catalogue works before it does)."""
    try:
        warnings_mod = importlib.import_module("rules.warnings")
    except ImportError:
        return {rid: body for rid, (body, _, _) in rule_sets.items()}
    model = getattr(warnings_mod, "WarningRuleSet", None)
    if model is None:
        return {rid: body for rid, (body, _, _) in rule_sets.items()}
    out: dict[str, Any] = {}
    for rid, (body, doc, path) in rule_sets.items():
        payload = body
        fields = getattr(model, "model_fields", {})
        if isinstance(body, dict) and "id" in fields and "id" not in body:
            payload = {"id": rid, **body}
        try:
            out[rid] = model.model_validate(payload)
        except ValidationError as exc:
            for err in exc.errors():
                doc.problem((*path, *err["loc"]), err["msg"].removeprefix("Value error, "))
        except (ValueError, TypeError) as exc:
            doc.problem(path, str(exc))
    return out


def _cross_check(
    localities: list[_Located],
    items: dict[str, list[_Located]],
    defaults: list[_Located],
    rule_sets: Mapping[str, object],
    broken_localities: set[str],
    docs: list[_Doc],
) -> None:
    def report(x: _Located, sub: Path_, reason: str) -> None:
        x.doc.problem((*x.path, *sub), reason)

    loc_ids: dict[str, _Located] = {}
    for x in localities:
        if x.obj.id in loc_ids:
            other = loc_ids[x.obj.id]
            report(x, ("id",), f"duplicate locality id {x.obj.id!r} (also in {other.doc.file})")
        else:
            loc_ids[x.obj.id] = x
        if x.obj.warning_rule_set is not None and x.obj.warning_rule_set not in rule_sets:
            known = ", ".join(sorted(rule_sets)) or "none loaded"
            report(
                x,
                ("warning_rule_set",),
                f"unknown warning rule set {x.obj.warning_rule_set!r} (known: {known})",
            )
        seen_no: set[int] = set()
        for i, ind in enumerate(x.obj.indicators):
            if ind.no is not None:
                if ind.no in seen_no:
                    report(x, ("indicators", i, "no"), f"row number {ind.no} used twice")
                seen_no.add(ind.no)

    # source ids are unique across every kind: they are MQTT topic segments
    ids: dict[str, tuple[_Located, Path_]] = {}

    def claim(source_id: str, x: _Located, sub: Path_) -> None:
        if source_id in ids:
            other, _ = ids[source_id]
            report(x, sub, f"duplicate id {source_id!r} (also in {other.doc.file})")
        else:
            ids[source_id] = (x, sub)

    all_items = [x for key in _LISTS for x in items[key]]
    for x in all_items:
        claim(x.obj.id, x, ("id",))
        if x.obj.locality not in loc_ids and x.obj.locality not in broken_localities:
            report(x, ("locality",), f"unknown locality {x.obj.locality!r}")

    broken_ids: set[str] = set()
    for x in (*localities, *all_items):
        broken_ids |= x.doc.broken_ids
    section_ids = {x.obj.id for x in items["water_sections"]} | broken_ids
    for x in items["water_sections"]:
        for key in ("upstream", "downstream"):
            for i, ref in enumerate(getattr(x.obj, key)):
                if ref == x.obj.id:
                    report(x, (key, i), "a section cannot be its own neighbour")
                elif ref not in section_ids:
                    report(x, (key, i), f"unknown {key} section {ref!r}")

    o2_keys: set[str] = set()
    for d in defaults:
        o2_keys |= set(d.obj.reference_o2)
    mns: dict[str, tuple[_Located, Path_]] = {}
    usccs: dict[str, _Located] = {}
    for x in items["enterprises"]:
        ent: Enterprise = x.obj
        if ent.uscc in usccs:
            report(x, ("uscc",), f"统一社会信用代码 also used by {usccs[ent.uscc].obj.id!r}")
        usccs.setdefault(ent.uscc, x)
        for j, out in enumerate(ent.outlets):
            sub: Path_ = ("outlets", j)
            claim(out.id, x, (*sub, "id"))
            if not out.id.startswith(ent.id + "-"):
                report(
                    x, (*sub, "id"), f"outlet id must start with the enterprise id {ent.id + '-'!r}"
                )
            key = out.mn.upper()
            if key in mns:
                other, other_sub = mns[key]
                report(
                    x,
                    (*sub, "mn"),
                    f"MN {out.mn!r} used twice (also {other.doc.file} {_fmt((*other.path, *other_sub))})",
                )
            else:
                mns[key] = (x, sub)
            if out.source_type is not None and out.source_type not in o2_keys:
                report(
                    x,
                    (*sub, "source_type"),
                    f"unknown source type {out.source_type!r} (not in defaults.reference_o2)",
                )
            if (
                out.type is OutletType.GAS
                and out.reference_o2 is None
                and out.source_type is None
                and any(lim.factor in {"so2", "nox", "pm"} for lim in out.limits)
            ):
                report(
                    x, sub, "gas outlet with concentration limits needs reference_o2 or source_type"
                )
        for level in ("yellow", "orange", "red"):
            for k, measure in enumerate(getattr(ent.measures, level)):
                vocab = {**EMISSION_GAS, **EMISSION_WATER, "vocs": "%"}
                for factor in measure.reduction_pct:
                    if factor not in vocab:
                        report(
                            x,
                            ("measures", level, k, "reduction_pct", factor),
                            f"unknown factor {factor!r}",
                        )

    ent_ids = {x.obj.id for x in items["enterprises"]} | broken_ids
    producing = {
        x.obj.enterprise
        for x in items["monitors"]
        if x.obj.kind is MonitorKind.ELECTRICITY and x.obj.role is MonitorRole.PRODUCTION
    }
    # an enterprise whose production monitor failed validation is reported there already
    producing |= {
        raw.get("enterprise")
        for doc in docs
        for raw in doc.broken_items
        if raw.get("kind") == MonitorKind.ELECTRICITY.value
        and raw.get("role") == MonitorRole.PRODUCTION.value
    }
    for x in items["monitors"]:
        mon: Monitor = x.obj
        if mon.enterprise is not None and mon.enterprise not in ent_ids:
            report(x, ("enterprise",), f"unknown enterprise {mon.enterprise!r}")
        for sub, reason in _monitor_kind_problems(mon):
            report(x, sub, reason)
        if (
            mon.kind is MonitorKind.ELECTRICITY
            and mon.role is MonitorRole.TREATMENT
            and mon.enterprise is not None
            and mon.enterprise not in producing
        ):
            report(
                x,
                ("role",),
                f"enterprise {mon.enterprise!r} has a treatment electricity monitor but no "
                "production monitor (kind electricity, role production) in the catalogue: "
                "whether the treatment must run is judged by the production line",
            )
        for j, lim in enumerate(mon.limits):
            if lim.factor not in mon.factors:
                report(
                    x,
                    ("limits", j, "factor"),
                    f"limit for {lim.factor!r}, which the monitor does not measure",
                )
            elif lim.unit is not None and lim.unit != MONITOR[lim.factor]:
                report(
                    x,
                    ("limits", j, "unit"),
                    f"unit {lim.unit!r}, canonical unit is {MONITOR[lim.factor]!r}",
                )


def _monitor_kind_problems(mon: Monitor) -> list[tuple[Path_, str]]:
    """The fields a monitor of its kind must have, and those it must not have."""
    out: list[tuple[Path_, str]] = []
    kind = mon.kind
    if kind is MonitorKind.NOISE and mon.zone_class is None:
        out.append(
            (
                ("zone_class",),
                "a noise monitor needs zone_class: its GB 3096-2008 声环境功能区 class "
                "(0, 1, 2, 3, 4a or 4b) selects the day/night limits",
            )
        )
    if kind is not MonitorKind.NOISE and mon.zone_class is not None:
        out.append((("zone_class",), "zone_class applies to noise monitors only"))
    if kind is MonitorKind.ELECTRICITY:
        if mon.role is None:
            out.append((("role",), "an electricity monitor needs role: production or treatment"))
        if mon.enterprise is None:
            out.append(
                (("enterprise",), "an electricity monitor needs the enterprise it belongs to")
            )
        if mon.role is MonitorRole.TREATMENT:
            if mon.normal_kw is None:
                out.append(
                    (
                        ("normal_kw",),
                        "a treatment electricity monitor needs normal_kw (> 0): the "
                        "pollution-control equipment's normal load in kW (a local setting)",
                    )
                )
            if mon.running_kw is not None:
                out.append((("running_kw",), "running_kw applies to production monitors"))
        if mon.role is MonitorRole.PRODUCTION:
            if mon.running_kw is None:
                out.append(
                    (
                        ("running_kw",),
                        "a production electricity monitor needs running_kw (> 0): the load "
                        "in kW above which the production line counts as running (a local "
                        "setting)",
                    )
                )
            if mon.normal_kw is not None:
                out.append((("normal_kw",), "normal_kw applies to treatment monitors"))
    else:
        for name in ("role", "normal_kw", "running_kw"):
            if getattr(mon, name) is not None:
                out.append(((name,), f"{name} applies to electricity monitors only"))
    return out


def load_catalog(path: str | Path) -> Catalog:
    """Read the catalogue from a directory of ``*.yaml``/``*.yml`` files or from one file.

    The only I/O in ``rules/`` (see the module docstring). Raises :class:`ConfigError`.
    """
    p = Path(path)
    if p.is_dir():
        files = sorted([*p.glob("*.yaml"), *p.glob("*.yml")])
        if not files:
            raise ConfigError([ConfigProblem(str(p), "(directory)", "no *.yaml files")])
    elif p.is_file():
        files = [p]
    else:
        raise ConfigError([ConfigProblem(str(p), "(path)", "no such file or directory")])
    texts: dict[str, str] = {}
    problems: list[ConfigProblem] = []
    for f in files:
        try:
            texts[f.name] = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(ConfigProblem(f.name, "(file)", f"cannot read: {exc}"))
    if problems:
        raise ConfigError(problems)
    return catalog_from_texts(texts)


__all__ = [
    "AirStation",
    "AreaGrade",
    "Attribute",
    "Catalog",
    "Cell",
    "CellKind",
    "ControlLevel",
    "Defaults",
    "EffectiveTarget",
    "Enterprise",
    "FactorLimit",
    "Indicator",
    "Locality",
    "LocalityLevel",
    "LocalityRoutes",
    "Measure",
    "Measures",
    "Metric",
    "Monitor",
    "MonitorKind",
    "MonitorRole",
    "Outlet",
    "OutletType",
    "Override",
    "PerformanceGrade",
    "Plan",
    "Route",
    "TargetOrigin",
    "TextTarget",
    "WaterBody",
    "WaterSection",
    "ZoneClass",
    "catalog_from_texts",
    "inline_secret",
    "load_catalog",
    "parse_cell",
    "parse_water_class",
    "uscc_check_char",
    "uscc_problem",
]
