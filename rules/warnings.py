"""Heavy-pollution-weather warnings (重污染天气预警), pure.

Thresholds are **configuration** (``deploy/config/warnings.yaml``), never code: the current
Shandong thresholds (鲁政办字〔2024〕119号) were not obtained and the older ones are known only from
secondary sources (standards.md §6). A :class:`WarningRuleSet` names its source and says whether it
is confirmed.

How a locality's level is evaluated (docs/alerts.md has the long version):

* One hourly AQI timeline is built per locality. Hour ``t`` (label = end of the hour, architecture.md
  §5) takes, in order of preference: the observed rolling 24-h AQI at ``t`` ("daily AQI = mean over
  any consecutive 24 h, may cross midnight", standards.md §6.1 [2+]); else the observed daily AQI of
  the Beijing natural day that hour belongs to; else the forecast daily AQI of that day.
* A :class:`Condition` "AQI > X for ≥ N hours" holds when a run of consecutive hours with AQI > X,
  at least N long, is *current*: it reaches the newest observed hour or lies ahead of it in the
  forecast. Conditions are combined "and" within ``all_of`` and "or" across ``any_of``.
* The target level is the highest level whose definition holds, raised to the received regional
  level (a floor). Upgrades (and issues) happen at once; a lift needs the rule set's ``lift``
  condition (AQI ≤ 150 — 轻度污染 or better — expected for ≥ 36 h, standards.md §6.1 [1]); a
  downgrade needs the lower target to persist ``downgrade_after_hours``. Between the lowest warning
  threshold and the lift threshold the level holds: that band is the hysteresis.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from enum import StrEnum
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

BEIJING: Final = ZoneInfo("Asia/Shanghai")
HOUR: Final = timedelta(hours=1)


class Level(StrEnum):
    """Warning level; ``NONE`` means no warning in force."""

    NONE = "none"
    YELLOW = "yellow"  # 黄色预警 (Ⅲ级响应)
    ORANGE = "orange"  # 橙色预警 (Ⅱ级响应)
    RED = "red"  # 红色预警 (Ⅰ级响应)

    @property
    def rank(self) -> int:
        return _LEVEL_RANK[self]

    @property
    def label_zh(self) -> str:
        return _LEVEL_ZH[self]


_LEVEL_RANK: Final[dict[Level, int]] = {
    Level.NONE: 0,
    Level.YELLOW: 1,
    Level.ORANGE: 2,
    Level.RED: 3,
}
_LEVEL_ZH: Final[dict[Level, str]] = {
    Level.NONE: "无预警",
    Level.YELLOW: "黄色预警",
    Level.ORANGE: "橙色预警",
    Level.RED: "红色预警",
}
WARNING_LEVELS: Final[tuple[Level, Level, Level]] = (Level.YELLOW, Level.ORANGE, Level.RED)


def max_level(*levels: Level) -> Level:
    return max(levels, key=lambda lv: lv.rank)


class Basis(StrEnum):
    """Which part of the AQI timeline a condition looks at."""

    COMBINED = "combined"  # observed where available, forecast ahead (default)
    OBSERVED = "observed"  # rolling 24-h AQI and observed daily AQI only
    FORECAST = "forecast"  # forecast daily AQI only


_Frozen = ConfigDict(frozen=True, extra="forbid")


class Condition(BaseModel):
    """ "AQI > ``aqi_above`` for ≥ ``for_hours`` consecutive hours" (≥ when ``inclusive``)."""

    model_config = _Frozen

    aqi_above: float = Field(ge=0, le=500)
    for_hours: int = Field(ge=1, le=24 * 14)
    inclusive: bool = False  # True: AQI ≥ aqi_above ("AQI reaches 500")
    basis: Basis = Basis.COMBINED

    def exceeds(self, aqi: float) -> bool:
        return aqi >= self.aqi_above if self.inclusive else aqi > self.aqi_above


class AllOf(BaseModel):
    """Conditions that must all hold ("and")."""

    model_config = _Frozen

    all_of: list[Condition] = Field(min_length=1)


class LevelRule(BaseModel):
    """A level's definition: any one of the ``all_of`` groups ("or" of "and")."""

    model_config = _Frozen

    any_of: list[AllOf] = Field(min_length=1)
    source: str | None = None


class LiftRule(BaseModel):
    """Lift/downgrade when AQI ≤ ``aqi_at_most`` is observed/expected for ≥ ``for_hours``."""

    model_config = _Frozen

    aqi_at_most: float = Field(ge=0, le=500)
    for_hours: int = Field(ge=1, le=24 * 14)
    source: str


class Reductions(BaseModel):
    """Required city-wide emission cuts during a level, as fractions (0.1 = 10 %)."""

    model_config = _Frozen

    so2: float = Field(ge=0, le=1)
    nox: float = Field(ge=0, le=1)
    pm: float = Field(ge=0, le=1)
    vocs: float = Field(ge=0, le=1)

    def for_factor(self, factor: str) -> float | None:
        """The cut for an emission factor name (rules.factors), or None when not covered."""
        name = _FACTOR_TO_POLLUTANT.get(factor)
        return None if name is None else float(getattr(self, name))

    @property
    def largest(self) -> float:
        return max(self.so2, self.nox, self.pm, self.vocs)


#: rules.factors emission names → the pollutant groups the plans cut (SO2, NOx, 颗粒物, VOCs).
_FACTOR_TO_POLLUTANT: Final[dict[str, str]] = {
    "so2": "so2",
    "nox": "nox",
    "pm": "pm",
    "nmhc": "vocs",  # VOCs monitored online as 非甲烷总烃
}


class WarningRuleSet(BaseModel):
    """A named, selectable set of warning thresholds with its source (standards.md §6)."""

    model_config = _Frozen

    id: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    name: str = Field(min_length=1)
    source: str = Field(min_length=1)
    confirmed: bool
    confidence: Literal["STD", "2+", "1", "MEM"] | None = None
    default: bool = False
    notes: str = ""
    levels: dict[Level, LevelRule]
    lift: LiftRule
    downgrade_after_hours: int = Field(default=24, ge=1, le=24 * 14)
    reductions: dict[Level, Reductions]
    reductions_source: str = Field(min_length=1)

    @model_validator(mode="after")
    def _complete(self) -> WarningRuleSet:
        wanted = set(WARNING_LEVELS)
        if set(self.levels) != wanted:
            raise ValueError("levels must define exactly yellow, orange and red")
        if set(self.reductions) != wanted:
            raise ValueError("reductions must be given for exactly yellow, orange and red")
        lowest = min(c.aqi_above for g in self.levels[Level.YELLOW].any_of for c in g.all_of)
        if self.lift.aqi_at_most > lowest:
            raise ValueError(
                f"lift.aqi_at_most ({self.lift.aqi_at_most}) must not exceed the lowest yellow "
                f"threshold ({lowest}), or the warning would flap"
            )
        return self

    @property
    def horizon_hours(self) -> int:
        """How far back the timeline must reach to judge every condition."""
        hours = [
            c.for_hours for rule in self.levels.values() for g in rule.any_of for c in g.all_of
        ]
        return max([*hours, self.lift.for_hours]) + 24


def load_rule_sets(data: Mapping[str, Any]) -> dict[str, WarningRuleSet]:
    """Validate the ``warning_rule_sets:`` list of a parsed warnings.yaml into {id: rule set}.

    Raises pydantic's ``ValidationError`` (with field paths) on a bad entry and ``ValueError`` on
    duplicate ids or more than one default.
    """
    entries = data.get("warning_rule_sets")
    if not isinstance(entries, list):
        raise ValueError("warning_rule_sets: expected a list of rule sets")
    out: dict[str, WarningRuleSet] = {}
    for entry in entries:
        rs = WarningRuleSet.model_validate(entry)
        if rs.id in out:
            raise ValueError(f"warning_rule_sets: duplicate id {rs.id!r}")
        out[rs.id] = rs
    if sum(rs.default for rs in out.values()) > 1:
        raise ValueError("warning_rule_sets: more than one rule set marked default")
    return out


def default_rule_set(rule_sets: Mapping[str, WarningRuleSet]) -> WarningRuleSet:
    """The rule set marked ``default: true`` (ValueError when none is)."""
    for rs in rule_sets.values():
        if rs.default:
            return rs
    raise ValueError("warning_rule_sets: no rule set marked default")
