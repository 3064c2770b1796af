"""Alert rules declared as data (pydantic), and their evaluation into lifecycle observations.

The streams engineer maps the stream's records onto :class:`Evaluation` (one value of one source
at one event time, with the limit that applies when the stream knows it). :func:`evaluate` applies
one :class:`AlertRule` and returns an :class:`~alerts.lifecycle.Observation` — BREACH, CLEAR, BAND
(hysteresis band), NO_DATA (missing/invalid value) or MAINTENANCE (HJ 212 flag M/C) — or ``None``
when the rule does not apply.

Rules are hot-reloadable: :class:`AlertRules` is validated as a whole (:func:`load_alert_rules`) and
handed to ``Engine.set_rules``; alert state is keyed by fingerprint, which contains the rule id,
so an edited rule keeps its alerts and a removed rule's alerts are closed.

Which evaluation kind feeds which rule kind (``EVALUATION_KIND``):

=====================  ====================  ==================================================
rule kind              evaluation kind       condition (value vs limit)
=====================  ====================  ==================================================
ambient_exceedance     ambient               value > limit (GB 3095 limit chosen by the stream)
water_class            water_class           class index > target class index (1..6, 6 = 劣V)
water_worse_than_v     water_class           class index ≥ 6 (劣V, GB 3838-2002)
permit_exceedance      permit                O2-corrected hourly mean > permit limit
effluent_exceedance    effluent              daily mean > GB 18918-2002 表1 limit
dustfall               dustfall              monthly dustfall > limit (7 t/(month·km²))
bypass_open            bypass                bypass_open = 1
offline                (any, by the engine)  no data for ``silent_after_minutes``
constant_value         sample                the same value for ``samples`` samples in a row
zero_value             sample                zero for ``samples`` samples in a row
data_rate              data_rate             transmission or valid-data rate < 90 % over a day
plan_progress          plan_progress         detail.status at_risk (warning) / off_track (crit.)
warning_compliance     warning_compliance    achieved cut < required cut during a warning
pipeline               pipeline              problem = 1 (a component of envwatch itself:
                                             alerts/pipeline.py)
water_sudden_change    water_change          a factor of a section in a jump against its
                                             recent baseline (rules/water_events.py)
water_upstream_worse   water_upstream        classes worse than the upstream neighbour > limit
=====================  ====================  ==================================================

Water classes of a drinking-water source (``detail["drinking_water_source"] == "1"``) are judged
by ``water_class`` / ``water_worse_than_v`` as for any section, every breach critical.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cached_property
from typing import Any, Final

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from rules.beijing import BEIJING
from rules.catalog.yamldoc import parse_located
from rules.errors import ConfigError, ConfigProblem

from alerts.errors import InvalidEvaluation, RuleConfigError
from alerts.lifecycle import LifecyclePolicy, Observation, ObservationStatus
from alerts.model import Reason, Severity
from alerts.silences import in_maintenance
from alerts.templates import (
    WATER_CLASSES,
    describe,
    display_fields,
    fmt_limit,
    fmt_number,
    water_class,
)

#: HJ 212-2017 表8 flags whose values are valid for statistics: N normal, S manual value.
VALID_FLAGS: Final[frozenset[str]] = frozenset({"N", "S"})

#: Labels copied from ``Evaluation.detail`` onto alerts so routing can scope them (enterprise …).
ROUTING_LABELS: Final[tuple[str, ...]] = ("enterprise", "station", "section", "outlet")


class EvaluationKind(StrEnum):
    AMBIENT = "ambient"
    WATER_CLASS = "water_class"
    PERMIT = "permit"
    EFFLUENT = "effluent"
    DUSTFALL = "dustfall"
    BYPASS = "bypass"
    SAMPLE = "sample"
    DATA_RATE = "data_rate"
    PLAN_PROGRESS = "plan_progress"
    WARNING_COMPLIANCE = "warning_compliance"
    NOISE = "noise"
    DUST = "dust"
    VAPOUR_RECOVERY = "vapour_recovery"
    ELECTRICITY = "electricity"
    PIPELINE = "pipeline"  # envwatch's own components (alerts/pipeline.py)
    WATER_CHANGE = "water_change"  # a section's factor against its baseline (alerts/water.py)
    WATER_UPSTREAM = "water_upstream"  # a section against its upstream neighbour


class RuleKind(StrEnum):
    AMBIENT_EXCEEDANCE = "ambient_exceedance"
    WATER_CLASS = "water_class"
    WATER_WORSE_THAN_V = "water_worse_than_v"
    PERMIT_EXCEEDANCE = "permit_exceedance"
    EFFLUENT_EXCEEDANCE = "effluent_exceedance"
    DUSTFALL = "dustfall"
    BYPASS_OPEN = "bypass_open"
    OFFLINE = "offline"
    CONSTANT_VALUE = "constant_value"
    ZERO_VALUE = "zero_value"
    DATA_RATE = "data_rate"
    PLAN_PROGRESS = "plan_progress"
    WARNING_COMPLIANCE = "warning_compliance"
    NOISE = "noise"
    DUST = "dust"
    VAPOUR_RECOVERY = "vapour_recovery"
    ELECTRICITY = "electricity"
    PIPELINE = "pipeline"
    WATER_SUDDEN_CHANGE = "water_sudden_change"
    WATER_UPSTREAM_WORSE = "water_upstream_worse"


EVALUATION_KIND: Final[dict[RuleKind, EvaluationKind | None]] = {
    RuleKind.AMBIENT_EXCEEDANCE: EvaluationKind.AMBIENT,
    RuleKind.WATER_CLASS: EvaluationKind.WATER_CLASS,
    RuleKind.WATER_WORSE_THAN_V: EvaluationKind.WATER_CLASS,
    RuleKind.PERMIT_EXCEEDANCE: EvaluationKind.PERMIT,
    RuleKind.EFFLUENT_EXCEEDANCE: EvaluationKind.EFFLUENT,
    RuleKind.DUSTFALL: EvaluationKind.DUSTFALL,
    RuleKind.BYPASS_OPEN: EvaluationKind.BYPASS,
    RuleKind.OFFLINE: None,
    RuleKind.CONSTANT_VALUE: EvaluationKind.SAMPLE,
    RuleKind.ZERO_VALUE: EvaluationKind.SAMPLE,
    RuleKind.DATA_RATE: EvaluationKind.DATA_RATE,
    RuleKind.PLAN_PROGRESS: EvaluationKind.PLAN_PROGRESS,
    RuleKind.WARNING_COMPLIANCE: EvaluationKind.WARNING_COMPLIANCE,
    RuleKind.NOISE: EvaluationKind.NOISE,
    RuleKind.DUST: EvaluationKind.DUST,
    RuleKind.VAPOUR_RECOVERY: EvaluationKind.VAPOUR_RECOVERY,
    RuleKind.ELECTRICITY: EvaluationKind.ELECTRICITY,
    RuleKind.PIPELINE: EvaluationKind.PIPELINE,
    RuleKind.WATER_SUDDEN_CHANGE: EvaluationKind.WATER_CHANGE,
    RuleKind.WATER_UPSTREAM_WORSE: EvaluationKind.WATER_UPSTREAM,
}

#: The ``category`` of water emergencies, which emergency responders receive (alerts/routing.py).
WATER_EMERGENCY: Final = "water_emergency"

#: ``category`` label: what kind of problem (used by inhibition and routing).
CATEGORY: Final[dict[RuleKind, str]] = {
    RuleKind.AMBIENT_EXCEEDANCE: "exceedance",
    RuleKind.WATER_CLASS: "exceedance",
    RuleKind.WATER_WORSE_THAN_V: "exceedance",
    RuleKind.PERMIT_EXCEEDANCE: "exceedance",
    RuleKind.EFFLUENT_EXCEEDANCE: "exceedance",
    RuleKind.DUSTFALL: "exceedance",
    RuleKind.BYPASS_OPEN: "violation",
    RuleKind.OFFLINE: "data_quality",
    RuleKind.CONSTANT_VALUE: "data_quality_value",
    RuleKind.ZERO_VALUE: "data_quality_value",
    RuleKind.DATA_RATE: "data_quality",
    RuleKind.PLAN_PROGRESS: "plan",
    RuleKind.WARNING_COMPLIANCE: "warning_compliance",
    RuleKind.NOISE: "exceedance",
    RuleKind.DUST: "exceedance",
    RuleKind.VAPOUR_RECOVERY: "violation",
    RuleKind.ELECTRICITY: "violation",
    RuleKind.PIPELINE: "data_quality",  # data not stored / people not told: data quality
    # water emergencies: emergency responders receive them too (alerts/routing.py)
    RuleKind.WATER_SUDDEN_CHANGE: WATER_EMERGENCY,
    RuleKind.WATER_UPSTREAM_WORSE: WATER_EMERGENCY,
}

#: GB 3838-2002 classes I..V as 1..5; 劣V (worse than V) is 6.
WORSE_THAN_V: Final[int] = 6

_NAMES_ZH: Final[dict[RuleKind, str]] = {
    RuleKind.AMBIENT_EXCEEDANCE: "空气质量超标",
    RuleKind.WATER_CLASS: "断面水质未达目标",
    RuleKind.WATER_WORSE_THAN_V: "断面水质劣Ⅴ类",
    RuleKind.PERMIT_EXCEEDANCE: "排污许可超标",
    RuleKind.EFFLUENT_EXCEEDANCE: "污水处理厂出水超标",
    RuleKind.DUSTFALL: "降尘量超标",
    RuleKind.BYPASS_OPEN: "旁路开启",
    RuleKind.OFFLINE: "数据中断",  # also forecast feeds and gauges: not "监测设备"
    RuleKind.CONSTANT_VALUE: "数据恒值",
    RuleKind.ZERO_VALUE: "数据零值",
    RuleKind.DATA_RATE: "数据传输有效率不足",
    RuleKind.PLAN_PROGRESS: "规划目标进度预警",
    RuleKind.WARNING_COMPLIANCE: "应急减排未落实",
    RuleKind.NOISE: "噪声超标",
    RuleKind.DUST: "扬尘超标",
    RuleKind.VAPOUR_RECOVERY: "油气回收装置故障",
    RuleKind.ELECTRICITY: "治污设施停运或低负荷",
    RuleKind.PIPELINE: "系统运行异常",
    RuleKind.WATER_SUDDEN_CHANGE: "断面水质突变",
    RuleKind.WATER_UPSTREAM_WORSE: "断面水质明显劣于上游",
}


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One value of one source at one event time, as the stream hands it to the alert rules.

    ``value``/``limit`` by kind: see the module table. ``flags`` are HJ 212 data flags.
    ``detail`` carries extra strings (``status`` for plan progress; ``enterprise`` … for routing).
    """

    kind: str
    locality: str
    source: str
    factor: str
    value: float | None
    time: datetime
    limit: float | None = None
    flags: frozenset[str] = frozenset()
    detail: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in _EVALUATION_KINDS:
            raise InvalidEvaluation("kind", "unknown evaluation kind", self.kind)
        if self.time.tzinfo is None:
            raise InvalidEvaluation("time", "timestamp without timezone", self.time)
        if not self.source:
            raise InvalidEvaluation("source", "empty", self.source)
        if not self.locality:
            raise InvalidEvaluation("locality", "empty", self.locality)
        for name in ("value", "limit"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not math.isfinite(float(v))):
                raise InvalidEvaluation(name, "not a finite number", v)


_EVALUATION_KINDS: Final[frozenset[str]] = frozenset(k.value for k in EvaluationKind)

#: Labels envwatch sets on alerts (identity, scope, routing): a rule's ``route_labels`` may not.
RESERVED_LABELS: Final[frozenset[str]] = frozenset(
    {"rule", "source", "factor", "locality", "rule_kind", "category", "kind", "period"}
    | set(ROUTING_LABELS)
    | {"severity", "state", "alertname"}
)
#: Receiver kinds no escalation chain may name (alerts/grouping.py skips an enterprise; the
#: operator receives envwatch's own alerts only).
NEVER_ESCALATED_KINDS: Final[frozenset[str]] = frozenset({"enterprise", "operator"})
_ESCALATION_KIND: Final = re.compile(r"^[a-z][a-z0-9_]*$")
_LABEL_NAME: Final = re.compile(r"^[a-z][a-z0-9_]{0,31}$")

#: Rule kinds whose alerts no person may resolve by hand — envwatch's choice [MEM]: they close
#: only on the evidence that opened them (an offline source on its data, a data rate on the next
#: day's rate, plan progress on the plan's figures, a pipeline alert on its component's report).
NO_MANUAL_RESOLVE: Final[frozenset[str]] = frozenset(
    {"offline", "data_rate", "plan_progress", "pipeline"}
)


class AlertRule(BaseModel):
    """One alert rule. Every rule names its ``source`` clause (standard, plan file and line)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    name: str = Field(min_length=1)
    kind: RuleKind
    source: str = Field(min_length=1, description="clause this rule implements")
    severity: Severity = Severity.WARNING
    limit: float | None = Field(default=None, description="used when the evaluation has none")
    clear_margin: float = Field(
        default=0.0, ge=0, lt=1, description="hysteresis: clear only this fraction past the limit"
    )
    critical_ratio: float | None = Field(
        default=None, gt=1, description="value ≥ limit × ratio raises severity to critical"
    )
    for_minutes: float = Field(default=0, ge=0)
    escalate_after_minutes: float | None = Field(default=None, gt=0)
    max_escalations: int = Field(default=1, ge=1, le=10)
    samples: int | None = Field(default=None, ge=2, description="constant/zero: N in a row")
    silent_after_minutes: float | None = Field(default=None, gt=0, description="offline")
    factors: frozenset[str] = frozenset()  # empty: every factor
    localities: frozenset[str] = frozenset()  # empty: every locality
    sources: frozenset[str] = frozenset()  # empty: every source
    flap_window: int = Field(default=21, ge=2, le=62)
    flap_high: float = Field(default=0.5, gt=0, le=1)
    flap_low: float = Field(default=0.25, ge=0, lt=1)
    #: whether a person may resolve the alert by hand (command ``resolve``, alerts.commands).
    #: Default by kind (:data:`NO_MANUAL_RESOLVE`); alert-rules.yaml may set it per rule.
    manual_resolve: bool = True
    #: escalation chain: receiver kinds, entry ``n`` receives escalation ``n`` as
    #: ``<kind>-<locality>`` (entry 0 is the first line; alerts/grouping.py). Empty: every
    #: escalation goes to the duty officer. An enterprise is never escalated to.
    escalation: tuple[str, ...] = ()
    #: routing labels added to every alert of the rule (routes, silences, the API's filters);
    #: never one envwatch sets itself (:data:`RESERVED_LABELS`), never part of the identity.
    route_labels: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _manual_resolve_default(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "manual_resolve" not in data:
            kind = data.get("kind")
            kind = getattr(kind, "value", kind)
            return {**data, "manual_resolve": kind not in NO_MANUAL_RESOLVE}
        return data

    @field_validator("escalation")
    @classmethod
    def _chain(cls, chain: tuple[str, ...]) -> tuple[str, ...]:
        for kind in chain:
            if not _ESCALATION_KIND.match(kind):
                raise ValueError(f"{kind!r} is not a receiver kind (a-z, 0-9, _)")
            if kind in NEVER_ESCALATED_KINDS:
                raise ValueError(f"{kind!r} is never escalated to")
        return chain

    @field_validator("route_labels")
    @classmethod
    def _labels(cls, labels: dict[str, str]) -> dict[str, str]:
        for key, value in labels.items():
            if key in RESERVED_LABELS or not _LABEL_NAME.match(key):
                raise ValueError(
                    f"{key!r} is reserved or no label name "
                    f"(a-z, 0-9, _; not {', '.join(sorted(RESERVED_LABELS))})"
                )
            if not value or len(value) > 64:
                raise ValueError(f"{key}: 1 to 64 characters")
        return labels

    @model_validator(mode="after")
    def _kind_needs(self) -> AlertRule:
        if self.kind in (RuleKind.CONSTANT_VALUE, RuleKind.ZERO_VALUE) and self.samples is None:
            raise ValueError(f"{self.kind.value} rules need samples (N in a row)")
        if self.kind is RuleKind.OFFLINE and self.silent_after_minutes is None:
            raise ValueError("offline rules need silent_after_minutes")
        if self.flap_low >= self.flap_high:
            raise ValueError("flap_low must be below flap_high")
        return self

    @cached_property
    def policy(self) -> LifecyclePolicy:
        return LifecyclePolicy(
            for_duration=timedelta(minutes=self.for_minutes),
            escalate_after=None
            if self.escalate_after_minutes is None
            else timedelta(minutes=self.escalate_after_minutes),
            max_escalations=self.max_escalations,
            flap_window=self.flap_window,
            flap_high=self.flap_high,
            flap_low=self.flap_low,
        )

    @property
    def category(self) -> str:
        return CATEGORY[self.kind]

    def applies_to_source(self, locality: str, source: str) -> bool:
        return (not self.localities or locality in self.localities) and (
            not self.sources or source in self.sources
        )

    def applies(self, ev: Evaluation) -> bool:
        return (
            EVALUATION_KIND[self.kind] == ev.kind
            and (not self.factors or ev.factor in self.factors)
            and self.applies_to_source(ev.locality, ev.source)
        )

    def labels(
        self, locality: str, source: str, factor: str, detail: Mapping[str, str]
    ) -> dict[str, str]:
        out = {
            "rule": self.id,
            "source": source,
            "factor": factor,
            "locality": locality,
            "rule_kind": self.kind.value,
            "category": self.category,
            "kind": "alert",
        }
        for key in ROUTING_LABELS:
            if key in detail:
                out[key] = detail[key]
        if self.route_labels:
            out.update(self.route_labels)  # reserved names refused by the validator
        period = detail.get("period")
        if period:
            out["period"] = period  # part of the alert's identity (alerts.model.fingerprint)
        return out


class AlertRules(BaseModel):
    """A whole rule set (the unit of hot reload)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rules: tuple[AlertRule, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> AlertRules:
        seen: set[str] = set()
        for r in self.rules:
            if r.id in seen:
                raise ValueError(f"duplicate rule id {r.id!r}")
            seen.add(r.id)
        return self

    @cached_property
    def by_evaluation_kind(self) -> dict[str, tuple[AlertRule, ...]]:
        out: dict[str, list[AlertRule]] = {}
        for r in self.rules:
            ek = EVALUATION_KIND[r.kind]
            if ek is not None:
                out.setdefault(ek.value, []).append(r)
        return {k: tuple(v) for k, v in out.items()}

    @cached_property
    def by_id(self) -> dict[str, AlertRule]:
        return {r.id: r for r in self.rules}

    @cached_property
    def offline_rules(self) -> tuple[AlertRule, ...]:
        return tuple(r for r in self.rules if r.kind is RuleKind.OFFLINE)


def load_alert_rules(data: Mapping[str, Any]) -> AlertRules:
    """Validate ``{"rules": [...]}`` (e.g. a parsed YAML); errors name the field path."""
    try:
        return AlertRules.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "rules"
        raise RuleConfigError(where, first["msg"]) from exc


#: The one key of an alert-rules file (deploy/config/alert-rules.yaml, docs/alert-rules.md).
_FILE_KEYS: Final = frozenset({"rules"})


def alert_rules_from_text(file: str, text: str, *, catalog: Any = None) -> AlertRules:
    """Parse and validate an alert-rules YAML text (pure; the file is read at the edge,
    ``streams.alert_rules``). Raises :class:`rules.errors.ConfigError` listing every problem
    with file, line, field path and reason — the same form as the catalogue's.

    With a ``catalog`` (``rules.catalog.Catalog``; ``envwatch config check``) the rules are also
    checked against it: every locality and source a rule is scoped to exists, and every kind of
    an escalation chain other than ``duty`` has a ``notify.escalation`` route in each locality
    of the rule's scope (else those escalations would be held)."""
    problems: list[ConfigProblem] = []
    doc, data = parse_located(file, text, problems)
    if problems:
        raise ConfigError(problems)
    if not isinstance(data, dict):
        doc.problem((), "expected a mapping with the key rules")
        raise ConfigError(problems)
    for key in sorted(set(data) - _FILE_KEYS):
        doc.problem((key,), "unknown key (an alert-rules file has only rules)")
    raw = data.get("rules")
    if not isinstance(raw, list) or not raw:
        # an empty set would close every open alert (Engine.set_rules: rule_removed)
        doc.problem(("rules",), "expected a non-empty list of rules")
        raise ConfigError(problems)
    parsed: list[AlertRule] = []
    first_line: dict[str, int | None] = {}
    for i, item in enumerate(raw):
        try:
            rule = AlertRule.model_validate(item)
        except ValidationError as exc:
            for err in exc.errors():
                loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p[:1] == "["))
                doc.problem(("rules", i, *loc), err["msg"].removeprefix("Value error, "))
            continue
        if rule.id in first_line:
            doc.problem(
                ("rules", i, "id"),
                f"duplicate rule id {rule.id!r} (first at line {first_line[rule.id]})",
            )
            continue
        first_line[rule.id] = doc.line(("rules", i, "id"))
        parsed.append(rule)
        if catalog is not None:
            for path, reason in _catalogue_problems(rule, catalog):
                doc.problem(("rules", i, *path), reason)
    if problems:
        raise ConfigError(problems)
    return AlertRules(rules=tuple(parsed))


def _catalogue_problems(rule: AlertRule, catalog: Any) -> Iterator[tuple[tuple[str, ...], str]]:
    known = [loc.id for loc in catalog.localities]
    for loc in sorted(rule.localities - set(known)):
        yield ("localities",), f"unknown locality {loc!r} (the catalogue has {', '.join(known)})"
    for source in sorted(rule.sources):
        if catalog.source(source) is None:
            yield ("sources",), f"unknown source {source!r} (not in the catalogue)"
    routes = catalog.routes()
    scope = sorted(rule.localities & set(known)) if rule.localities else known
    for kind in dict.fromkeys(k for k in rule.escalation if k != "duty"):
        missing = [loc for loc in scope if f"{kind}-{loc}" not in routes]
        if missing:
            yield (
                ("escalation",),
                f"{kind!r} has no notify.escalation.{kind} route in {', '.join(missing)} "
                "(its escalations there would be held); scope the rule with localities or add "
                "the routes",
            )


#: Built-in rules, each with its source. Values marked [MEM] are operator defaults, overridable in
#: the catalogue (no standard gives them).
DEFAULT_RULES: Final[tuple[dict[str, Any], ...]] = (
    {
        "id": "ambient-exceedance",
        "name": "Ambient concentration above the GB 3095 limit",
        "kind": "ambient_exceedance",
        "source": "GB 3095-2012 表1 / GB 3095-2026 表1 (limit chosen by event time, standards.md §2.1)",
        "for_minutes": 0,
        "clear_margin": 0.1,  # [MEM] operator default hysteresis
        "escalate_after_minutes": 60,  # [MEM] operator default
    },
    {
        "id": "water-class-target",
        "name": "Section water class worse than its target",
        "kind": "water_class",
        "source": "GB 3838-2002 表1; plan targets e.g. 003_021375295357aa36.txt (Laixi sections)",
    },
    {
        "id": "water-worse-than-v",
        "name": "Section water class 劣V",
        "kind": "water_worse_than_v",
        "severity": "critical",
        "source": "GB 3838-2002 表1; 劣V eliminated: plans/README.md (all five plans)",
    },
    {
        "id": "permit-exceedance",
        "name": "Flue-gas hourly mean (O2-corrected) above the permit limit",
        "kind": "permit_exceedance",
        "source": "GB 13271-2014 式(1) O2 correction; hourly basis standards.md §8 [MEM]",
        "critical_ratio": 1.5,  # [MEM] operator default
        "escalate_after_minutes": 60,  # [MEM] operator default
    },
    {
        "id": "effluent-exceedance",
        "name": "WWTP effluent daily mean above GB 18918",
        "kind": "effluent_exceedance",
        "source": "GB 18918-2002 表1 (日均值)",
    },
    {
        "id": "dustfall",
        "name": "Dustfall above 7 t/(month·km²)",
        "kind": "dustfall",
        "limit": 7.0,  # 000_d6d679181568297b.txt#L171
        "source": "000_d6d679181568297b.txt#L171; 001_15ef1b070f9ae15b.txt#L351",
    },
    {
        "id": "bypass-open",
        "name": "Bypass opened",
        "kind": "bypass_open",
        "severity": "critical",
        "source": "plans: online monitoring of key polluters (plans/README.md, duties)",
    },
    {
        "id": "noise",
        "name": "Noise above the GB 3096-2008 limit of the functional zone",
        "kind": "noise",
        "clear_margin": 0.02,  # [MEM] clears ~1 dB(A) below the limit: no flapping at the limit
        "source": "GB 3096-2008 表1 (limit by 声环境功能区 class, 昼间 06–22 / 夜间 22–06); "
        "hourly Leq judged: envwatch's choice [MEM]",
    },
    {
        "id": "site-dust",
        "name": "Construction-site or road dust above its limit",
        "kind": "dust",
        "clear_margin": 0.1,  # [MEM] operator default hysteresis, as for ambient values
        "source": "limits from the catalogue (local settings, docs/configuration.md)",
    },
    {
        "id": "vapour-recovery",
        "name": "Vapour-recovery system not working",
        "kind": "vapour_recovery",
        "severity": "critical",
        "source": "000_d6d679181568297b.txt#L159 (油气回收在线监控); status 1 = working: envwatch's reading [MEM]",
    },
    {
        "id": "electricity",
        "name": "Pollution-control equipment off or far below normal while production runs",
        "kind": "electricity",
        "severity": "critical",
        "source": "000_d6d679181568297b.txt#L339 (用电量监控); below 50 % of the normal load: envwatch's choice [MEM]",
    },
    {
        "id": "offline",
        "name": "Monitor silent beyond its expected interval",
        "kind": "offline",
        "silent_after_minutes": 120,  # [MEM] platform-configurable, standards.md §8
        "source": "HJ 212-2017 RtdInterval/MinInterval; no national threshold (standards.md §8)",
    },
    {
        "id": "constant-value",
        "name": "Constant value for N samples",
        "kind": "constant_value",
        "samples": 12,  # [MEM] operator default
        "factors": ["so2", "nox", "pm", "cod", "nh3n", "pm25", "pm10"],
        "source": "MEE 现场监督检查 cues: 长期在某一固定值 (standards.md §8) [1]",
    },
    {
        "id": "zero-value",
        "name": "Zero value for N samples",
        "kind": "zero_value",
        "samples": 6,  # [MEM] operator default
        "factors": ["so2", "nox", "pm", "cod", "nh3n", "flow"],
        "source": "zero with normal operation = fault (standards.md §8) [1]",
    },
    {
        "id": "data-rate",
        "name": "Transmission or valid-data rate below 90 % over a day",
        "kind": "data_rate",
        "limit": 0.9,  # 数据传输有效率 ≥ 90 % (standards.md §8) [2+]
        "source": "数据传输有效率 ≥ 90 % (standards.md §8) [2+]",
    },
    {
        "id": "plan-progress",
        "name": "Plan target at risk or off track",
        "kind": "plan_progress",
        "source": "plan indicator tables (plans/README.md)",
    },
    {
        "id": "warning-compliance",
        "name": "Emergency cut not achieved during a heavy-pollution warning",
        "kind": "warning_compliance",
        "severity": "critical",
        # the hours an enterprise may stay below its cut after the level takes effect or
        # while it adjusts: three hourly values in a row (envwatch's choice [MEM])
        "for_minutes": 120,
        "source": "standards.md §6.1 reductions [2+]; 000_d6d679181568297b.txt#L141 (打击不落实应急减排措施)",
    },
    {
        "id": "water-sudden-change",
        "name": "Sudden change of a water factor at a section against its recent baseline",
        "kind": "water_sudden_change",
        "severity": "critical",
        "source": "issue 15 (water emergencies); jump ≥ max(2 × the median of the last 24 h, "
        "+ ½ × the GB 3838-2002 表1 class III limit), DO ≤ min(½ ×, − 2.5 mg/L), pH ± 1: "
        "envwatch's choice [MEM] (rules/water_events.py)",
    },
    {
        "id": "water-upstream-worse",
        "name": "Section much worse than its upstream neighbour",
        "kind": "water_upstream_worse",
        "limit": 1,  # [MEM] two or more GB 3838 classes worse than upstream fires
        "critical_ratio": 3,  # [MEM] three or more classes worse: critical
        "source": "GB 3838-2002 表1 classes of both sections at the same label (上下游断面对比, "
        "rules.water.compare_upstream); ≥ 2 classes worse: envwatch's choice [MEM]",
    },
    {
        "id": "pipeline",
        "name": "A component of envwatch cannot do its work",
        "kind": "pipeline",
        "source": "issue 13 (nothing rejected is forgotten): operator alert, fires at the first "
        "report of the problem and clears at the first report without it — envwatch's choice [MEM]",
    },
)


def default_rules() -> AlertRules:
    return load_alert_rules({"rules": list(DEFAULT_RULES)})


# ---------------------------------------------------------------- evaluation


def _status_above(value: float, limit: float, margin: float) -> ObservationStatus:
    if value > limit:
        return ObservationStatus.BREACH
    if value <= limit * (1.0 - margin):
        return ObservationStatus.CLEAR
    return ObservationStatus.BAND


def _status_below(value: float, limit: float, margin: float) -> ObservationStatus:
    if value < limit:
        return ObservationStatus.BREACH
    if value >= limit * (1.0 + margin):
        return ObservationStatus.CLEAR
    return ObservationStatus.BAND


_PLAN_STATUS: Final[dict[str, tuple[ObservationStatus, Severity | None]]] = {
    "at_risk": (ObservationStatus.BREACH, Severity.WARNING),
    "off_track": (ObservationStatus.BREACH, Severity.CRITICAL),
    "on_track": (ObservationStatus.CLEAR, None),
    "achieved": (ObservationStatus.CLEAR, None),
    "unknown": (ObservationStatus.NO_DATA, None),
}


def evaluate(rule: AlertRule, ev: Evaluation, *, run_length: int = 0) -> Observation | None:
    """Apply ``rule`` to ``ev``; ``run_length`` (constant/zero rules) is how many samples in a row
    had the same value, counted by the engine. Returns None when the rule does not apply."""
    if not rule.applies(ev):
        return None
    status, severity, limit = _verdict(rule, ev, run_length)
    return Observation(
        labels=rule.labels(ev.locality, ev.source, ev.factor, ev.detail),
        at=ev.time,
        status=status,
        severity=severity,
        annotations=_LazyAnnotations(rule, ev, limit, status is ObservationStatus.CLEAR),
        value=ev.value,
        limit=limit,
    )


def breaches(rule: AlertRule, ev: Evaluation, *, run_length: int = 0) -> bool:
    """Whether :func:`evaluate` gives a BREACH observation — without building it. Anything else
    changes nothing while no alert is held for the subject (``lifecycle.step`` of no alert and
    a clear, band, no-data or maintenance observation), which is the engine's fast path."""
    return rule.applies(ev) and _verdict(rule, ev, run_length)[0] is ObservationStatus.BREACH


def _verdict(
    rule: AlertRule, ev: Evaluation, run_length: int
) -> tuple[ObservationStatus, Severity, float | None]:
    """(status, severity, limit) of ``rule`` (which applies) for ``ev``."""
    severity = rule.severity
    status: ObservationStatus
    limit = ev.limit if ev.limit is not None else rule.limit
    value = ev.value
    if ev.flags and in_maintenance(ev.flags):
        status = ObservationStatus.MAINTENANCE
    elif ev.flags and not ev.flags <= VALID_FLAGS:
        status = ObservationStatus.NO_DATA
    elif rule.kind is RuleKind.PLAN_PROGRESS:
        raw = ev.detail.get("status", "")
        if raw not in _PLAN_STATUS:
            raise InvalidEvaluation("detail.status", f"expected one of {sorted(_PLAN_STATUS)}", raw)
        status, sev = _PLAN_STATUS[raw]
        severity = sev or severity
    elif value is None:
        status = ObservationStatus.NO_DATA
    elif rule.kind in (RuleKind.CONSTANT_VALUE, RuleKind.ZERO_VALUE):
        if rule.kind is RuleKind.ZERO_VALUE and value != 0:
            status = ObservationStatus.CLEAR
        else:
            n = rule.samples or 0
            status = ObservationStatus.BREACH if run_length >= n else ObservationStatus.CLEAR
        limit = float(rule.samples or 0)
    elif rule.kind is RuleKind.BYPASS_OPEN:
        status = ObservationStatus.BREACH if value >= 1 else ObservationStatus.CLEAR
    elif rule.kind is RuleKind.VAPOUR_RECOVERY:
        # the working status is the limit (1 = working); any other status is a fault or a stop
        working = limit if limit is not None else 1.0
        status = ObservationStatus.CLEAR if value == working else ObservationStatus.BREACH
        limit = working
    elif rule.kind is RuleKind.ELECTRICITY and ev.detail.get("production_running") == "0":
        status = ObservationStatus.CLEAR  # production stopped: its treatment may stop too
    elif rule.kind is RuleKind.WATER_WORSE_THAN_V:
        status = ObservationStatus.BREACH if value >= WORSE_THAN_V else ObservationStatus.CLEAR
        limit = float(WORSE_THAN_V)
        if status is ObservationStatus.BREACH and ev.detail.get("drinking_water_source") == "1":
            severity = Severity.CRITICAL  # a drinking-water source: every exceedance critical
    elif rule.kind is RuleKind.WATER_SUDDEN_CHANGE:
        # the evaluate stage's verdict, with its hysteresis (rules/water_events.py)
        jump = ev.detail.get("jump") == "1"
        status = ObservationStatus.BREACH if jump else ObservationStatus.CLEAR
    else:
        if limit is None:
            raise InvalidEvaluation("limit", f"rule {rule.id} needs a limit", None)
        if rule.kind in (RuleKind.DATA_RATE, RuleKind.WARNING_COMPLIANCE, RuleKind.ELECTRICITY):
            status = _status_below(value, limit, rule.clear_margin)
        elif rule.kind is RuleKind.WATER_CLASS:
            status = ObservationStatus.BREACH if value > limit else ObservationStatus.CLEAR
            if status is ObservationStatus.BREACH and ev.detail.get("drinking_water_source") == "1":
                severity = Severity.CRITICAL  # a drinking-water source: every exceedance critical
        else:
            status = _status_above(value, limit, rule.clear_margin)
            if (
                rule.critical_ratio is not None
                and status is ObservationStatus.BREACH
                and value >= limit * rule.critical_ratio
            ):
                severity = Severity.CRITICAL
    return status, severity, limit


class _LazyAnnotations(Mapping[str, str]):
    """:func:`_annotations`, built on first use. The lifecycle reads an observation's annotations
    only when the alert changes (a repeated breach of a firing alert, the common case, never
    does), so texts are written for transitions, not for every evaluation."""

    __slots__ = ("_args", "_data")

    def __init__(self, rule: AlertRule, ev: Evaluation, limit: float | None, cleared: bool) -> None:
        self._args = (rule, ev, limit, cleared)
        self._data: dict[str, str] | None = None

    def _built(self) -> dict[str, str]:
        if self._data is None:
            rule, ev, limit, cleared = self._args
            self._data = _annotations(rule, ev, limit, cleared=cleared)
        return self._data

    def __getitem__(self, key: str) -> str:
        return self._built()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._built())

    def __len__(self) -> int:
        return len(self._built())

    def __repr__(self) -> str:
        return repr(self._built())


#: ``detail`` keys of water emergencies copied to the annotations (alerts/water.py; texts in
#: alerts/templates.py).
WATER_EMERGENCY_FIELDS: Final = (
    "baseline",
    "direction",
    "at_risk",
    "drinking_at_risk",
    "drinking_water_source",
    "observed_class",
    "upstream_class",
    "upstream_name",
    "worsened",
)


def _annotations(
    rule: AlertRule, ev: Evaluation, limit: float | None, *, cleared: bool = False
) -> dict[str, str]:
    """The annotations every alert carries: ``summary`` / ``summary_en`` (catalogue names first,
    ids second, numbers rounded as the standards print them, the averaging period and the
    standard of the limit), ``rule_source``, and every field ``alerts.templates`` reads (its
    module docstring), taken from the evaluation and its catalogue ``detail``. A missing detail
    key never raises: the texts name the id instead. ``cleared``: the observation is a CLEAR."""
    kind = rule.kind
    detail = ev.detail
    fields = display_fields(kind.value, ev.factor, detail)
    value = ev.value
    if kind is RuleKind.WATER_CLASS or kind is RuleKind.WATER_WORSE_THAN_V:
        if detail.get("drinking_water_source") == "1":
            fields["drinking_water_source"] = "1"
        observed = water_class(value)
        if observed is not None:
            fields["observed_class"] = WATER_CLASSES[observed - 1][0]
        # the section's target (worse-than-V rules judge against 劣V, not the target)
        target = water_class(limit if kind is RuleKind.WATER_CLASS else ev.limit)
        if target is not None and target < WORSE_THAN_V:
            fields["target_class"] = WATER_CLASSES[target - 1][0]
    elif kind is RuleKind.CONSTANT_VALUE or kind is RuleKind.ZERO_VALUE:
        fields["count"] = str(rule.samples or 0)
    elif kind is RuleKind.WATER_SUDDEN_CHANGE or kind is RuleKind.WATER_UPSTREAM_WORSE:
        for key in WATER_EMERGENCY_FIELDS:
            if detail.get(key):
                fields[key] = detail[key]
    elif kind is RuleKind.DATA_RATE:
        if value is not None:
            fields["rate"] = fmt_number(value * 100, 6)  # percent
        if limit is not None:
            fields["threshold"] = fmt_number(limit * 100, 6)
    elif kind is RuleKind.PIPELINE:
        for key in ("component", "condition", "reason", "count", "locality_name_en"):
            if detail.get(key):
                fields[key] = detail[key]
    elif kind is RuleKind.PLAN_PROGRESS:
        fields["indicator"] = detail.get("indicator_name") or detail.get("indicator") or ev.factor
        if detail.get("status"):
            fields["progress"] = detail["status"]
        target_text = detail.get("target") or ("" if limit is None else fmt_limit(limit))
        if target_text:
            fields["target"] = target_text
    elif kind is RuleKind.WARNING_COMPLIANCE:
        if value is not None:
            fields["cut"] = fmt_number(value * 100, 6)  # achieved cut, percent
        if limit is not None:
            fields["required"] = fmt_number(limit * 100, 6)
        for key in ("level", "baseline"):
            if detail.get(key):
                fields[key] = detail[key]
    labels = {
        "rule_kind": kind.value,
        "source": ev.source,
        "factor": ev.factor,
        "locality": ev.locality,
        "period": detail.get("period", ""),
    }
    numbers = {
        name: repr(float(x)) for name, x in (("value", value), ("limit", limit)) if x is not None
    }
    zh, en = describe(labels, {**fields, **numbers}, cleared=cleared)
    return {
        "summary": f"{_NAMES_ZH.get(kind, rule.name)}：{zh}",
        "summary_en": f"{rule.name}: {en}",
        "rule_source": rule.source,
        **fields,
    }


def offline_observation(
    rule: AlertRule,
    locality: str,
    source: str,
    at: datetime,
    *,
    breach: bool,
    detail: Mapping[str, str] | None = None,
    silent_minutes: float | None = None,
    last_seen: datetime | None = None,
) -> Observation:
    """The offline rule's observation for a source: BREACH when it fell silent, CLEAR (reason
    DATA_RESUMED, set by the engine) when data came back. Nothing else ever clears it.

    ``silent_minutes`` is the threshold the engine applied (None: the rule's
    ``silent_after_minutes``), ``last_seen`` the source's newest data; both go into the texts."""
    labels = rule.labels(locality, source, "*", detail or {})
    minutes = silent_minutes if silent_minutes is not None else rule.silent_after_minutes or 0
    fields = display_fields(rule.kind.value, "*", detail or {})
    fields["expected"] = fmt_number(minutes, 6)
    if last_seen is not None:
        fields["last_seen"] = last_seen.astimezone(BEIJING).isoformat()
    zh, en = describe(labels, fields, cleared=not breach)
    return Observation(
        labels=labels,
        at=at,
        status=ObservationStatus.BREACH if breach else ObservationStatus.CLEAR,
        severity=rule.severity,
        annotations={
            "summary": f"{_NAMES_ZH.get(rule.kind, rule.name)}：{zh}",
            "summary_en": f"{rule.name}: {en}",
            "rule_source": rule.source,
            **fields,
        },
        clear_reason=None if breach else Reason.DATA_RESUMED,
    )
