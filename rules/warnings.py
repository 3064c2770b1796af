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

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rules.beijing import BEIJING, beijing_date
from rules.errors import InvalidReading

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


# ---------------------------------------------------------------- evaluation state and step


class DecisionKind(StrEnum):
    """What a warning step decided."""

    ISSUE = "issue"  # 发布预警
    UPGRADE = "upgrade"  # 升级
    DOWNGRADE = "downgrade"  # 降级
    LIFT = "lift"  # 解除
    HOLD = "hold"  # warning in force, no change


class DecisionReason(StrEnum):
    THRESHOLDS_MET = "thresholds_met"  # the level's conditions hold
    REGIONAL_FLOOR = "regional_floor"  # a received regional warning raised the level
    IMPROVEMENT_EXPECTED = "improvement_expected"  # AQI ≤ lift threshold for ≥ lift hours
    LOWER_LEVEL_SUSTAINED = "lower_level_sustained"  # lower target held downgrade_after_hours
    NO_CHANGE = "no_change"


_Point = tuple[datetime, float]
_DayPoint = tuple[date, float]


def _floor_hour(at: datetime) -> datetime:
    at = at.astimezone(UTC)
    return at.replace(minute=0, second=0, microsecond=0)


def _hour_label(at: datetime) -> datetime:
    """The label (end) of the hour containing ``at``: 08:00 exactly stays 08:00, 08:10 → 09:00."""
    floor = _floor_hour(at)
    return floor if floor == at.astimezone(UTC) else floor + HOUR


def _check_aqi(value: float, what: str) -> float:
    if isinstance(value, bool) or not math.isfinite(value) or not 0 <= value <= 500:
        raise InvalidReading("AQI must be a finite number within 0..500", factor=what, value=value)
    return float(value)


@dataclass(frozen=True, slots=True)
class WarningInput:
    """New information for one locality. Empty fields mean "nothing new"."""

    rolling_aqi: tuple[_Point, ...] = ()  # observed rolling 24-h AQI at hour labels (end of hour)
    observed_daily: tuple[_DayPoint, ...] = ()  # observed daily AQI per Beijing natural day
    forecast_daily: tuple[_DayPoint, ...] | None = None  # replaces the previous forecast
    regional_level: Level | None = None  # received regional warning; Level.NONE clears it


@dataclass(frozen=True, slots=True)
class WarningState:
    """Per-locality warning state: plain data (``to_dict``/``from_dict``) for a Faust table."""

    locality: str
    level: Level = Level.NONE
    since: datetime | None = None  # when the current level took effect
    lower_since: datetime | None = None  # when a lower target was first seen (downgrade timer)
    regional: Level = Level.NONE
    rolling: tuple[_Point, ...] = ()
    observed_daily: tuple[_DayPoint, ...] = ()
    forecast: tuple[_DayPoint, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "locality": self.locality,
            "level": self.level.value,
            "since": None if self.since is None else self.since.isoformat(),
            "lower_since": None if self.lower_since is None else self.lower_since.isoformat(),
            "regional": self.regional.value,
            "rolling": [[t.isoformat(), v] for t, v in self.rolling],
            "observed_daily": [[d.isoformat(), v] for d, v in self.observed_daily],
            "forecast": [[d.isoformat(), v] for d, v in self.forecast],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WarningState:
        def opt_time(key: str) -> datetime | None:
            raw = data.get(key)
            return None if raw is None else datetime.fromisoformat(raw)

        return cls(
            locality=str(data["locality"]),
            level=Level(data.get("level", "none")),
            since=opt_time("since"),
            lower_since=opt_time("lower_since"),
            regional=Level(data.get("regional", "none")),
            rolling=tuple(
                (datetime.fromisoformat(t), float(v)) for t, v in data.get("rolling", ())
            ),
            observed_daily=tuple(
                (date.fromisoformat(d), float(v)) for d, v in data.get("observed_daily", ())
            ),
            forecast=tuple((date.fromisoformat(d), float(v)) for d, v in data.get("forecast", ())),
        )


@dataclass(frozen=True, slots=True)
class EnterpriseInput:
    """What the warning needs of an enterprise (the catalogue's entries map onto this)."""

    id: str
    name: str = ""
    locality: str | None = None
    performance_grade: str = ""  # 绩效分级 A / B / C / D / 引领性
    measures: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # level → measures
    #: level → {pollutant or ``power_kw``: the cut the enterprise's own list requires, 0–1}
    required_reductions: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    #: level → per measure (parallel to ``measures``) its {pollutant: reduction %} from the list
    measure_reductions: Mapping[str, tuple[Mapping[str, float], ...]] = field(default_factory=dict)

    @classmethod
    def from_any(cls, obj: object) -> EnterpriseInput:
        """Accept this class, a mapping, or any object with the same attribute names."""
        if isinstance(obj, EnterpriseInput):
            return obj

        def get(name: str, default: Any = None) -> Any:
            if isinstance(obj, Mapping):
                return obj.get(name, default)
            return getattr(obj, name, default)

        ident = get("id")
        if not ident:
            raise InvalidReading("enterprise without id", factor="enterprise.id", value=obj)
        raw_measures = get("measures") or {}
        if not isinstance(raw_measures, Mapping):
            raw_measures = {
                lv.value: getattr(raw_measures, lv.value, ()) or () for lv in WARNING_LEVELS
            }
        measures = {str(k): tuple(str(m) for m in v or ()) for k, v in raw_measures.items()}
        grade = get("performance_grade", "") or ""
        cuts = get("measure_reductions", {}) or {}
        return cls(
            id=str(ident),
            name=str(get("name", "") or ""),
            locality=get("locality"),
            performance_grade=str(getattr(grade, "value", grade)),
            measures=measures,
            required_reductions=dict(get("required_reductions", {}) or {}),
            measure_reductions={
                str(k): tuple(dict(c) for c in v or ()) for k, v in dict(cuts).items()
            },
        )


@dataclass(frozen=True, slots=True)
class EnterpriseMeasures:
    """One enterprise's duties at a level: its 一厂一策 measures and the cuts its list requires."""

    enterprise_id: str
    name: str
    performance_grade: str
    measures: tuple[str, ...]
    #: per measure (parallel to ``measures``): {pollutant: reduction %} as the list states it
    measure_reductions: tuple[Mapping[str, float], ...] = ()
    #: {pollutant or ``power_kw``: required cut 0–1} of the enterprise at the level
    reductions: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "enterprise_id": self.enterprise_id,
            "name": self.name,
            "performance_grade": self.performance_grade,
            "measures": list(self.measures),
            "measure_reductions_pct": [dict(m) for m in self.measure_reductions],
            "reductions": dict(sorted(self.reductions.items())),
        }


def reduction_totals(
    reductions: Reductions | None, enterprises: Sequence[EnterpriseMeasures]
) -> dict[str, dict[str, Any]]:
    """Per pollutant: the rule set's city-wide cut for the level and what the enterprises' own
    lists add up to — how many enterprises must cut it and their mean required cut. The mean is
    unweighted: the catalogue holds no emission inventory to weight it by (envwatch's choice
    [MEM]); ``meets_city_target`` compares that mean with the city-wide cut."""
    out: dict[str, dict[str, Any]] = {}
    for pollutant in ("so2", "nox", "pm", "vocs"):
        city = None if reductions is None else float(getattr(reductions, pollutant))
        cuts = [e.reductions[pollutant] for e in enterprises if pollutant in e.reductions]
        mean = sum(cuts) / len(cuts) if cuts else None
        out[pollutant] = {
            "city_target": city,
            "enterprises": len(cuts),
            "mean_required_cut": None if mean is None else round(mean, 4),
            "meets_city_target": None if mean is None or city is None else mean >= city,
        }
    return out


@dataclass(frozen=True, slots=True)
class EmergencyTrigger:
    """The machine-readable trigger for emergency response (应急) on every level change."""

    locality: str
    level: Level
    previous_level: Level
    at: datetime
    rule_set_id: str
    reductions: Reductions | None  # None when lifted
    enterprises: tuple[EnterpriseMeasures, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "locality": self.locality,
            "level": self.level.value,
            "previous_level": self.previous_level.value,
            "at": self.at.astimezone(UTC).isoformat(),
            "rule_set": self.rule_set_id,
            "reductions": None if self.reductions is None else self.reductions.model_dump(),
            "enterprises": [e.to_dict() for e in self.enterprises],
            "totals": reduction_totals(self.reductions, self.enterprises),
        }


@dataclass(frozen=True, slots=True)
class WarningDecision:
    kind: DecisionKind
    reason: DecisionReason
    locality: str
    rule_set_id: str
    level: Level
    previous_level: Level
    at: datetime
    trigger: EmergencyTrigger | None = None
    #: issue / upgrade on the data: hours from the decision to the first hour of the episode
    #: that qualifies for the level (0 when it had begun) — the warning's lead time
    lead_hours: float | None = None


def emergency_trigger(
    rule_set: WarningRuleSet,
    locality: str,
    level: Level,
    previous_level: Level,
    at: datetime,
    enterprises: Iterable[object],
) -> EmergencyTrigger:
    """Level, required cuts and, for every enterprise of the locality, its measures for the level."""
    items: list[EnterpriseMeasures] = []
    for raw in enterprises:
        ent = EnterpriseInput.from_any(raw)
        if ent.locality is not None and ent.locality != locality:
            continue
        lv = level.value
        none = level is Level.NONE
        items.append(
            EnterpriseMeasures(
                ent.id,
                ent.name,
                ent.performance_grade,
                () if none else ent.measures.get(lv, ()),
                () if none else ent.measure_reductions.get(lv, ()),
                {} if none else dict(ent.required_reductions.get(lv, {})),
            )
        )
    items.sort(key=lambda e: e.enterprise_id)
    return EmergencyTrigger(
        locality=locality,
        level=level,
        previous_level=previous_level,
        at=at,
        rule_set_id=rule_set.id,
        reductions=rule_set.reductions.get(level),
        enterprises=tuple(items),
    )


class _Timeline:
    """Hourly AQI values from ``start`` (label) on, one list per basis, built lazily."""

    def __init__(self, state: WarningState, start: datetime, end: datetime, now: datetime) -> None:
        self.start = start
        self.n = int((end - start) / HOUR) + 1
        self.now = now
        self._state = state
        self._cache: dict[Basis, list[float | None]] = {}

    def index(self, label: datetime) -> int:
        return int((label - self.start) / HOUR)

    def values(self, basis: Basis) -> list[float | None]:
        cached = self._cache.get(basis)
        if cached is not None:
            return cached
        out: list[float | None] = [None] * self.n
        st = self._state
        if basis is not Basis.OBSERVED:
            self._fill_days(out, st.forecast, future_only=False)
        if basis is not Basis.FORECAST:
            self._fill_days(out, st.observed_daily, future_only=False)
            for label, value in st.rolling:
                i = self.index(label)
                if 0 <= i < self.n:
                    out[i] = value
        self._cache[basis] = out
        return out

    def _fill_days(
        self, out: list[float | None], days: Iterable[_DayPoint], future_only: bool
    ) -> None:
        for day, value in days:
            # hours ending in the Beijing natural day: labels day 01:00 … day+1 00:00
            first = datetime.combine(day, time(1), BEIJING).astimezone(UTC)
            i0 = self.index(first)
            for i in range(max(0, i0), min(self.n, i0 + 24)):
                out[i] = value


def _runs(values: Sequence[float | None], pred: Any) -> list[tuple[int, int]]:
    """Maximal runs [start, end] (inclusive indices) where pred(value) holds; gaps break runs."""
    runs: list[tuple[int, int]] = []
    start = -1
    for i, v in enumerate(values):
        if v is not None and pred(v):
            if start < 0:
                start = i
        elif start >= 0:
            runs.append((start, i - 1))
            start = -1
    if start >= 0:
        runs.append((start, len(values) - 1))
    return runs


def _group_holds(group: AllOf, tl: _Timeline, anchor: int) -> int | None:
    """The episode condition (lowest threshold) must be current; the others must hold inside it.
    Returns the timeline index where the qualifying episode starts (None: the group does not
    hold)."""
    conds = sorted(group.all_of, key=lambda c: (c.aqi_above, -c.for_hours))
    episode, others = conds[0], conds[1:]
    episodes = [
        (s, e)
        for s, e in _runs(tl.values(episode.basis), episode.exceeds)
        if e - s + 1 >= episode.for_hours and e >= anchor - 1
    ]
    for s, e in episodes:
        if all(
            any(
                e2 - s2 + 1 >= c.for_hours and s2 >= s and e2 <= e
                for s2, e2 in _runs(tl.values(c.basis)[s : e + 1], c.exceeds)
                for s2, e2 in [(s2 + s, e2 + s)]
            )
            for c in others
        ):
            return s
    return None


def _lift_holds(rule: LiftRule, tl: _Timeline, anchor: int) -> bool:
    """AQI ≤ the lift threshold for ≥ ``for_hours`` in a run that includes now and is not ended
    by a known worse value: a run of clean hours behind now followed by a forecast above the
    threshold says the pollution is coming back, not that improvement is expected (预警解除 is
    judged on the expected evolution, standards.md §6.1)."""
    values = tl.values(Basis.COMBINED)
    return any(
        e - s + 1 >= rule.for_hours
        and s <= anchor + 1
        and e >= anchor - 1
        and (e + 1 >= len(values) or values[e + 1] is None)
        for s, e in _runs(values, lambda v: v <= rule.aqi_at_most)
    )


def target_level(
    rule_set: WarningRuleSet, state: WarningState, now: datetime
) -> tuple[Level, bool]:
    """The level the data call for at ``now`` (without the regional floor), and whether the lift
    condition holds."""
    level, lift_ok, _ = _target(rule_set, state, now)
    return level, lift_ok


def _target(
    rule_set: WarningRuleSet, state: WarningState, now: datetime
) -> tuple[Level, bool, float | None]:
    """:func:`target_level` plus the lead time: hours from ``now`` to the first hour of the
    episode that qualifies for the level (0 when it has begun; None without a level)."""
    anchor_label = _floor_hour(now)
    start = anchor_label - rule_set.horizon_hours * HOUR
    end = anchor_label
    if state.forecast:
        last_day = max(d for d, _ in state.forecast)
        end = max(
            end, datetime.combine(last_day + timedelta(days=1), time(0), BEIJING).astimezone(UTC)
        )
    tl = _Timeline(state, start, end, now)
    anchor = tl.index(anchor_label)
    level = Level.NONE
    lead: float | None = None
    for lv in (Level.RED, Level.ORANGE, Level.YELLOW):
        starts = [
            s for g in rule_set.levels[lv].any_of if (s := _group_holds(g, tl, anchor)) is not None
        ]
        if starts:
            level = lv
            # index i is the hour labelled start + i·1 h, which began one hour earlier
            first_hour_begins = tl.start + (min(starts) - 1) * HOUR
            lead = max(0.0, (first_hour_begins - now) / HOUR)
            break
    return level, _lift_holds(rule_set.lift, tl, anchor), lead


def _merge(state: WarningState, inp: WarningInput, now: datetime, horizon: int) -> WarningState:
    keep_from = _floor_hour(now) - horizon * HOUR
    rolling = dict(state.rolling)
    for at, value in inp.rolling_aqi:
        if at.tzinfo is None:
            raise InvalidReading("timestamp without timezone", factor="rolling_aqi", value=at)
        rolling[_hour_label(at)] = _check_aqi(value, "rolling_aqi")
    daily = dict(state.observed_daily)
    for day, value in inp.observed_daily:
        daily[day] = _check_aqi(value, "observed_daily")
    forecast = state.forecast
    if inp.forecast_daily is not None:
        forecast = tuple(
            sorted((d, _check_aqi(v, "forecast_daily")) for d, v in inp.forecast_daily)
        )
    keep_day = beijing_date(keep_from) - timedelta(days=1)
    return replace(
        state,
        rolling=tuple(sorted((t, v) for t, v in rolling.items() if t >= keep_from)),
        observed_daily=tuple(sorted((d, v) for d, v in daily.items() if d >= keep_day)),
        forecast=forecast,
        regional=state.regional if inp.regional_level is None else inp.regional_level,
    )


def step(
    state: WarningState,
    inp: WarningInput,
    now: datetime,
    *,
    rule_set: WarningRuleSet,
    enterprises: Iterable[object] = (),
) -> tuple[WarningState, list[WarningDecision]]:
    """One warning evaluation for one locality at event time ``now`` (module docstring).

    Returns the new state and the decisions: one ISSUE / UPGRADE / DOWNGRADE / LIFT (each with its
    :class:`EmergencyTrigger`) or HOLD while a warning is in force; nothing when none is."""
    if now.tzinfo is None:
        raise InvalidReading("timestamp without timezone", factor="now", value=now)
    state = _merge(state, inp, now, rule_set.horizon_hours)
    computed, lift_ok, lead = _target(rule_set, state, now)
    target = max_level(computed, state.regional)
    current = state.level
    new = current
    kind = DecisionKind.HOLD
    reason = DecisionReason.NO_CHANGE
    lower_since = state.lower_since
    if target.rank > current.rank:
        new = target
        kind = DecisionKind.ISSUE if current is Level.NONE else DecisionKind.UPGRADE
        reason = (
            DecisionReason.REGIONAL_FLOOR
            if state.regional.rank > computed.rank
            else DecisionReason.THRESHOLDS_MET
        )
        lower_since = None
    elif current is not Level.NONE and target.rank < current.rank:
        if lift_ok:
            new = target
            kind = DecisionKind.LIFT if target is Level.NONE else DecisionKind.DOWNGRADE
            reason = (
                DecisionReason.REGIONAL_FLOOR
                if target is not Level.NONE and target is state.regional
                else DecisionReason.IMPROVEMENT_EXPECTED
            )
            lower_since = None
        else:
            lower = max_level(target, Level.YELLOW)
            if lower.rank < current.rank:
                lower_since = lower_since or now
                if now - lower_since >= timedelta(hours=rule_set.downgrade_after_hours):
                    new = lower
                    kind = DecisionKind.DOWNGRADE
                    reason = DecisionReason.LOWER_LEVEL_SUSTAINED
                    lower_since = None
            else:
                lower_since = None
    else:
        lower_since = None

    changed = new is not current
    state = replace(
        state,
        level=new,
        since=(None if new is Level.NONE else now) if changed else state.since,
        lower_since=lower_since,
    )
    if not changed and current is Level.NONE:
        return state, []
    trigger = (
        emergency_trigger(rule_set, state.locality, new, current, now, enterprises)
        if changed
        else None
    )
    decision = WarningDecision(
        kind=kind,
        reason=reason,
        locality=state.locality,
        rule_set_id=rule_set.id,
        level=new,
        previous_level=current,
        at=now,
        trigger=trigger,
        lead_hours=(
            round(lead, 2)
            if kind in (DecisionKind.ISSUE, DecisionKind.UPGRADE)
            and reason is DecisionReason.THRESHOLDS_MET
            and lead is not None
            else None
        ),
    )
    return state, [decision]


# ---------------------------------------------------------------- baseline comparison


class Compliance(StrEnum):
    COMPLIANT = "compliant"
    NON_COMPLIANT = "non_compliant"  # the cut is below the required reduction
    NO_BASELINE = "no_baseline"  # nothing to compare with (no pre-warning data, or zero)
    NOT_REQUIRED = "not_required"  # no reduction required for this factor at this level


@dataclass(frozen=True, slots=True)
class BaselineMean:
    """Mean of an enterprise factor before a warning: ``initialise / add / result`` (style #3)."""

    total: float = 0.0
    count: int = 0

    @staticmethod
    def initialise() -> BaselineMean:
        return BaselineMean()

    def add(self, value: float) -> BaselineMean:
        if not math.isfinite(value):
            raise InvalidReading("not a finite number", factor="baseline", value=value)
        return BaselineMean(self.total + value, self.count + 1)

    def result(self) -> float | None:
        return None if self.count == 0 else self.total / self.count


@dataclass(frozen=True, slots=True)
class ComplianceCheck:
    decision: Compliance
    enterprise_id: str
    factor: str
    level: Level
    baseline: float | None
    current: float
    achieved_cut: float | None  # (baseline − current) / baseline
    required_cut: float | None


def required_cut(
    rule_set: WarningRuleSet, level: Level, factor: str, enterprise: object | None = None
) -> float | None:
    """The cut required of an enterprise factor at a level.

    An enterprise with a list for the level (its 一厂一策 ``required_reductions[level]``) owes
    exactly what the list says: a pollutant the list does not name is not required of it.
    Without a list, the rule set's city-wide ratio for the pollutant (SO2/NOx/PM/VOCs) applies.
    Electricity (``power_kw``, the plans' 电量监控) has no ratio of its own: production must fall
    at least by the largest cut of the list (else of the rule set) — an envwatch proxy [MEM],
    overridable per enterprise with a ``power_kw`` entry.
    """
    if level is Level.NONE:
        return None
    if enterprise is not None:
        own = EnterpriseInput.from_any(enterprise).required_reductions.get(level.value, {})
        for key in (factor, _FACTOR_TO_POLLUTANT.get(factor)):
            if key is not None and key in own:
                return float(own[key])
        if own:
            return max(float(v) for v in own.values()) if factor == "power_kw" else None
    reductions = rule_set.reductions[level]
    if factor == "power_kw":
        return reductions.largest
    return reductions.for_factor(factor)


def compare_with_baseline(
    enterprise_id: str,
    factor: str,
    level: Level,
    baseline: float | None,
    current: float,
    required: float | None,
) -> ComplianceCheck:
    """During a warning: did the enterprise cut ``factor`` by at least ``required`` vs baseline?"""
    if not math.isfinite(current):
        raise InvalidReading("not a finite number", factor=factor, value=current)
    if required is None or required <= 0:
        return ComplianceCheck(
            Compliance.NOT_REQUIRED, enterprise_id, factor, level, baseline, current, None, required
        )
    if baseline is None or baseline <= 0:
        return ComplianceCheck(
            Compliance.NO_BASELINE, enterprise_id, factor, level, baseline, current, None, required
        )
    achieved = (baseline - current) / baseline
    decision = Compliance.COMPLIANT if achieved >= required else Compliance.NON_COMPLIANT
    return ComplianceCheck(
        decision, enterprise_id, factor, level, baseline, current, achieved, required
    )
