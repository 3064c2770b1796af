"""The catalogue model: localities, air stations, water sections, enterprises with their
outlets and 一厂一策 measures, monitors, defaults, and :class:`Catalog`, the validated whole with
its lookups.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from rules.catalog.base import Frozen, known_factors
from rules.catalog.routes import LocalityRoutes, Route, SecretRef
from rules.catalog.targets import Indicator, Plan
from rules.catalog.uscc import uscc_problem
from rules.catalog.vocabulary import (
    AreaGrade,
    ControlLevel,
    LocalityId,
    LocalityLevel,
    MonitorKind,
    MonitorRole,
    NonEmpty,
    OutletType,
    PerformanceGrade,
    SourceId,
    WaterBody,
    ZoneClass,
    parse_water_class,
)
from rules.emission import EffluentClass
from rules.factors import AIR, EMISSION_GAS, EMISSION_WATER, MONITOR, WATER


class Locality(Frozen):
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


class _Sited(Frozen):
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
        return known_factors(v, AIR, "air")


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
        return known_factors(v, WATER, "water")


class FactorLimit(Frozen):
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


class Outlet(Frozen):
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


class Measure(Frozen):
    """One emission-reduction measure at a warning level (一厂一策)."""

    text: NonEmpty
    reduction_pct: dict[str, Annotated[float, Field(ge=0, le=100)]] = Field(default_factory=dict)


class Measures(Frozen):
    yellow: tuple[Measure, ...] = ()
    orange: tuple[Measure, ...] = ()
    red: tuple[Measure, ...] = ()


#: query parameter names that carry a credential when they contain one of these (lower case):
#: ``access_token`` (DingTalk), ``key`` (WeCom), ``sign``/``timestamp`` of signed robots, API keys


class Enterprise(Frozen):
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

    Kind-specific fields (their presence is checked across the catalogue, see ``cross_check``):

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
        return known_factors(v, MONITOR, "monitor")

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


class ReferenceO2(Frozen):
    value: float = Field(ge=0, lt=21)
    source: NonEmpty
    confidence: Literal["STD", "2+", "1", "MEM"]


class Defaults(Frozen):
    """Shared defaults (``defaults.yaml``); [MEM] values are operator-overridable defaults."""

    reference_o2: dict[str, ReferenceO2] = Field(default_factory=dict)


class Catalog(Frozen):
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


LIST_SECTIONS: dict[str, type[Frozen]] = {
    "air_stations": AirStation,
    "water_sections": WaterSection,
    "enterprises": Enterprise,
    "monitors": Monitor,
}
