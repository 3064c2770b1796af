"""The locality stage (pure): city values, heavy-pollution warnings and the alert engine of one locality.

The stream worker keys this stage by locality (Kafka topic ``aggregates``): every point of the
evaluate stage that matters for a locality's alerts arrives here in order, and
:meth:`LocalityState.step` turns it into

* city points (:class:`rules.city.CityAir`): real-time city AQI per hour, the rolling 24-h AQI and
  the daily city AQI per Beijing natural day;
* warning decisions (:mod:`rules.warnings`, rule set from the catalogue) and their transitions;
* alert transitions from :class:`alerts.engine.Engine`.

**Explicit verdicts, never inferred silence.** Every alert is opened and closed by an explicit
observation: ``verdict`` points (every value judged against a limit — GB 3095 1-h/24-h/8-h,
permit hour/day, effluent day, bypass, dustfall month, noise day/night, site dust, vapour
recovery — within or exceeded, with its limit and standard), per-sample water classes, daily data
rates, the readings themselves (constant / zero values, electricity pairs), and ``silence`` points
(the evaluate stage's statement that a source has sent nothing while the data flowing with it
advanced). Nothing is concluded from the absence of a point.

**Clocks.** The locality's watermark (for escalation) is the newest event time of its
observations; AQI forecasts are not observations and never move it (their label is the future day
they describe). Its points come from several input partitions in any interleaving, so each source
also has its own clock (the newest event time of its own points, which arrive in order) and an
alert is escalated no further than its source's clock (:meth:`LocalityState._advance`). Offline is
decided from ``silence`` points only.

Everything is event-time driven and deterministic; the state round-trips through ``to_dict`` /
``from_dict`` so the worker can checkpoint it and a restart resumes pending alerts and durations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final

from rules.beijing import BEIJING, beijing_date, beijing_day
from rules.catalog import Locality, WaterSection
from rules.city import CityAir
from rules.evaluate import Point
from rules.forecast import days_from_json
from rules.warnings import Level, WarningInput, WarningRuleSet, WarningState
from rules.warnings import step as warning_step

from alerts.commands import MEASUREMENT as COMMAND
from alerts.commands import Command, CommandResult, Refusal, command_of
from alerts.compliance import POWER, CutWatch, emission_rates, enterprise_of
from alerts.engine import Engine
from alerts.model import Reason, Transition
from alerts.pipeline import KIND as PIPELINE_KIND
from alerts.pipeline import MEASUREMENT, health_detail
from alerts.progress_live import MIN_DAYS_FOR_ALERTS, PlanTracker, indicator_key, progress_dict
from alerts.rules import AlertRules, Evaluation, RuleKind
from alerts.water import UpstreamWatch, change_evaluations

_IGNORED_FOR_ALERTS: Final = frozenset({"temp", "humidity", "pressure", "flow", "velocity", "o2"})
#: Source kinds whose readings feed the per-sample rules (constant/zero values, liveness).
_SAMPLE_KINDS: Final = frozenset({"air", "water", "emission", "monitor"})
#: A verdict's evaluation kind and the rule kind it feeds, by (source kind, period) or, for other
#: monitors, by factor.
_VERDICT_KIND: Final[dict[tuple[str, str], tuple[str, str]]] = {
    ("air", "hourly"): ("ambient", "ambient_exceedance"),
    ("air", "24h"): ("ambient", "ambient_exceedance"),
    ("air", "8h"): ("ambient", "ambient_exceedance"),
    ("emission", "hour"): ("permit", "permit_exceedance"),
    ("emission", "day"): ("effluent", "effluent_exceedance"),
}
_MONITOR_KIND: Final[dict[str, tuple[str, str]]] = {
    "bypass_open": ("bypass", "bypass_open"),
    "dustfall": ("dustfall", "dustfall"),
    "noise_leq": ("noise", "noise"),
    "dust": ("dust", "dust"),
    "pm10": ("dust", "dust"),
    "vapour_recovery": ("vapour_recovery", "vapour_recovery"),
}
#: The pollution-control equipment counts as off or far below normal under this share of its
#: normal load while production runs (envwatch's choice [MEM]; no standard sets it).
ELECTRICITY_LOW_SHARE: Final = 0.5


@dataclass(frozen=True, slots=True)
class LocalityContext:
    """What the catalogue says about a locality (built by the caller)."""

    locality: str
    rule_set: WarningRuleSet | None
    enterprises: Sequence[object] = ()
    #: source id → labels for routing and texts (enterprise, outlet, station, section, names …)
    source_detail: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    stations: frozenset[str] = frozenset()
    #: electricity monitors: treatment monitor id → (production monitor id, normal kW of the
    #: treatment equipment, kW above which production counts as running)
    power_pairs: Mapping[str, tuple[str, float, float]] = field(default_factory=dict)
    #: production monitor id → the treatment monitors paired with it
    power_production: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: the catalogue's locality (its plan targets) and water sections: the plans' progress
    plan: Locality | None = None
    sections: tuple[WaterSection, ...] = ()


@dataclass
class StepOutput:
    points: list[Point] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    #: one per command point applied or refused (alerts.commands; a repeated id gives none)
    results: list[CommandResult] = field(default_factory=list)
    #: command points that are no valid command: (the point, why) — for the dead letters
    rejected: list[tuple[Mapping[str, Any], str]] = field(default_factory=list)
    #: the plans' progress at a day's close: {locality, as_of, indicators} (alerts/progress_live)
    progress: list[dict[str, Any]] = field(default_factory=list)


def _t(s: str) -> datetime:
    return datetime.fromisoformat(s)


class LocalityState:
    """Mutable state of one locality; plain data through ``to_dict``/``from_dict``."""

    def __init__(self, locality: str, rules: AlertRules) -> None:
        self.locality = locality
        self.engine = Engine(rules)
        self.warning = WarningState(locality=locality)
        #: enterprises' pre-warning baselines and their cuts during a warning (alerts/compliance.py)
        self.cuts = CutWatch()
        #: sections' recent samples for the upstream comparison (alerts/water.py)
        self.upstream = UpstreamWatch()
        #: regional warnings received (区域预警): id → [level, starts iso|None, ends iso|None,
        #: issuer]; the highest one in force at the watermark is the warning's floor
        self.regional: dict[str, list[Any]] = {}
        #: year-to-date inputs of the plans' progress (alerts/progress_live.py)
        self.plan = PlanTracker()
        self.air = CityAir(locality)
        #: source → [day iso, transmission rate, valid rate] of the latest data-quality point
        self.quality: dict[str, list[Any]] = {}
        #: electricity monitor → [time iso, kW] of its newest reading
        self.power: dict[str, list[Any]] = {}
        self.watermark: datetime | None = None
        #: source → the newest event time of its own points (observations, verdicts, silence
        #: statements): they come in order from the source's partition of the input, so an
        #: alert of the source is judged at this clock, not at the watermark other sources moved
        self.clocks: dict[str, datetime] = {}
        # derived, not persisted: per-sample factors
        self._factors: frozenset[str] | None = frozenset()
        self._factors_of: AlertRules | None = None

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        return {
            "locality": self.locality,
            "engine": self.engine.to_dict(),
            "warning": self.warning.to_dict(),
            "cuts": self.cuts.to_dict(),
            "upstream": self.upstream.to_dict(),
            "regional": self.regional,
            "plan": self.plan.to_dict(),
            **self.air.to_dict(),
            "quality": self.quality,
            "power": self.power,
            "watermark": None if self.watermark is None else self.watermark.isoformat(),
            "clocks": {s: t.isoformat() for s, t in self.clocks.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], rules: AlertRules) -> LocalityState:
        st = cls(str(data["locality"]), rules)
        st.engine = Engine.from_dict(data["engine"], rules)
        st.warning = WarningState.from_dict(data["warning"])
        st.cuts = CutWatch.from_dict(data.get("cuts"))
        st.upstream = UpstreamWatch.from_dict(data.get("upstream"))
        st.regional = {str(k): list(v) for k, v in dict(data.get("regional") or {}).items()}
        st.plan = PlanTracker.from_dict(data.get("plan"))
        st.air = CityAir.from_dict(st.locality, data)
        st.quality = dict(data.get("quality") or {})
        st.power = dict(data.get("power") or {})
        wm = data.get("watermark")
        st.watermark = None if wm is None else _t(wm)
        st.clocks = {str(s): _t(t) for s, t in (data.get("clocks") or {}).items()}
        return st

    # ------------------------------------------------------------------ rules
    def apply_rules(self, rules: AlertRules) -> list[Transition]:
        """Hand a (re)loaded rule set to the engine (``Engine.set_rules``): an edited rule keeps
        its alerts, a removed rule's alerts are closed (``rule_removed``) at this locality's
        watermark — the newest event time it has seen."""
        if self.watermark is None:
            self.engine.rules = rules  # nothing seen yet: no alert to close
            return []
        return self.engine.set_rules(rules, self.watermark)

    # ------------------------------------------------------------------ the step
    def step_record(self, points: Sequence[Mapping[str, Any]], ctx: LocalityContext) -> StepOutput:
        """All the points of one ``aggregates`` record, in order."""
        out = StepOutput()
        for p in points:
            one = self.step(p, ctx)
            out.points += one.points
            out.transitions += one.transitions
            if one.results:
                out.results += one.results
            if one.rejected:
                out.rejected += one.rejected
            if one.progress:
                out.progress += one.progress
        return out

    def step(self, point: Mapping[str, Any], ctx: LocalityContext) -> StepOutput:
        """Process one evaluation point (as decoded from the wire) of this locality."""
        out = StepOutput()
        m = point["measurement"]
        if m == COMMAND:
            self._command(point, ctx, out)
            return out
        tags: Mapping[str, str] = point["tags"]
        fields: Mapping[str, Any] = point["fields"]
        at = _t(point["time"])
        source = tags.get("source", "")
        kind = tags.get("kind", "")

        if kind == "forecast":
            # a forecast is no observation: it never moves the clock (its label is the future
            # day it describes) and has no data rate; its reading goes to the warning step only
            if m == "reading":
                self._forecast(at, fields, ctx, out)
            elif m == "forecast":
                self._forecast_issue(at, fields, ctx, out)
            return out
        if m == "reading":
            if kind == "air":
                self._city_input(source, at, fields, ctx, out)
            seen = self.engine.sources.get(source)
            if kind in _SAMPLE_KINDS and (seen is None or at > seen.last_seen):
                # Only a sample newer than anything seen of the source counts: a redelivered
                # (duplicate) or late sample would lengthen a constant-value run or "resume" an
                # offline source with old data.
                self._samples(out, source, at, fields, ctx.source_detail.get(source, {}))
            if kind == "water":
                self._upstream(out, source, at, fields, ctx)
            if kind == "monitor" and "power_kw" in fields:
                self._power(out, source, at, fields, ctx)
                if source in ctx.power_production:
                    kw = _num(fields.get(POWER))
                    if kw is not None:
                        self._cut(out, source, at, {POWER: kw}, ctx)
        elif m == "emission_hour":
            self._cut(out, source, at, emission_rates(fields), ctx)
        elif m == "verdict":
            self._verdict(out, source, kind, tags.get("period", ""), at, fields, ctx)
            if kind == "monitor" and tags.get("period") == "month" and "dustfall" in fields:
                # a dustfall monitor's monthly mean: the plans' dustfall progress
                self.plan.dustfall(source, beijing_date(at), _num(fields["dustfall"]))
        elif m == "water_class" and tags.get("period") == "sample":
            # no target class (the plan gives none): 6 (劣V) as the limit, so only the
            # worse-than-V rule can fire for the section
            target = _num(fields.get("target")) or 6.0
            grade = _num(fields.get("grade"))
            detail = ctx.source_detail.get(source, {})
            self._eval(out, "water_class", source, "class", grade, at, target, frozenset(), detail)
            self.plan.water(source, grade, point["time"])
        elif m == "water_change" and tags.get("period") == "sample":
            # each judged factor against the section's baseline: in a jump or not (alerts/water.py)
            detail = ctx.source_detail.get(source, {})
            for factor, value, limit, info in change_evaluations(fields):
                info = {**detail, **info}
                self._eval(out, "water_change", source, factor, value, at, limit, frozenset(), info)
        elif m == "data_quality" and tags.get("period") == "day":
            self._quality(source, at, fields, ctx.source_detail.get(source, {}), out)
        elif m == MEASUREMENT and kind == PIPELINE_KIND:
            # a component of envwatch itself (alerts/pipeline.py): problem 1 fires, 0 clears
            condition = tags.get("condition", "")
            problem = _num(fields.get("problem"))
            detail = health_detail(source, condition, fields)
            self._eval(out, PIPELINE_KIND, source, condition, problem, at, 0.0, frozenset(), detail)
        elif m == "silence":
            last = _t(str(fields["last_seen"]))
            interval = _num(fields.get("interval_minutes"))
            out.transitions += self.engine.silence(
                self.locality,
                source,
                last,
                at,
                interval_minutes=interval,
                detail=ctx.source_detail.get(source, {}),
            )
        self._advance(at, source, out)
        if self.regional or self.warning.regional is not Level.NONE:
            # a regional warning may begin or end as the locality's event time moves
            self._regional_floor(self.watermark or at, ctx, out)
        return out

    # ------------------------------------------------------------------ pieces
    def _regional_command(self, cmd: Command, ctx: LocalityContext, out: StepOutput) -> None:
        """A regional warning for an area that includes this locality (the cities' plans:
        按照区域预警信息，同步启动应急响应, e.g. 001_15ef1b070f9ae15b.txt): kept by its id; in force
        from ``starts_at`` (or at once) until ``ends_at`` or a command with level ``none``. The
        locality is raised to at least that level at once — with its own trigger, so its
        enterprises are told their duties — and lifted only when its own conditions allow too.
        It takes effect at the locality's event time (its watermark), like every command."""
        now = self.watermark if self.watermark is not None else cmd.issued_at
        if not self.engine.remember_command(cmd.id):
            return
        if cmd.locality != self.locality:
            out.results.append(
                self.engine.refused(cmd, now, Refusal.WRONG_LOCALITY, f"stage of {self.locality}")
            )
            return
        if cmd.regional_level == "none":
            self.regional.pop(cmd.regional_id or "", None)
        else:
            self.regional[cmd.regional_id or ""] = [
                cmd.regional_level,
                None if cmd.starts_at is None else cmd.starts_at.isoformat(),
                None if cmd.ends_at is None else cmd.ends_at.isoformat(),
                cmd.issuer,
            ]
        before = len(out.transitions)
        self._regional_floor(now, ctx, out)
        out.results.append(self.engine.applied(cmd, now, out.transitions[before:]))

    def regional_level(self, at: datetime) -> Level:
        """The highest regional warning in force at ``at``."""
        level = Level.NONE
        for lv, starts, ends, _ in self.regional.values():
            if starts is not None and _t(starts) > at:
                continue
            if ends is not None and _t(ends) <= at:
                continue
            if Level(lv).rank > level.rank:
                level = Level(lv)
        return level

    def _regional_floor(self, now: datetime, ctx: LocalityContext, out: StepOutput) -> None:
        """Feed the warning step a changed regional floor (a regional warning received, begun
        or ended by ``now``); ended entries are forgotten."""
        floor = self.regional_level(now)
        for rid, (_, _, ends, _) in list(self.regional.items()):
            if ends is not None and _t(ends) <= now:
                del self.regional[rid]
        if floor is not self.warning.regional:
            self._warn(WarningInput(regional_level=floor), now, ctx, out)

    def _command(self, point: Mapping[str, Any], ctx: LocalityContext, out: StepOutput) -> None:
        """A person's command (alerts.commands). It takes effect at the locality's event time
        (the alert's source clock, else the watermark — never the point's ``issued_at`` wall
        clock, which moves no clock here), so a replay applies it identically."""
        try:
            cmd = command_of(point)
        except ValueError as exc:
            out.rejected.append((point, f"invalid command: {exc}"))
            return
        if cmd.action == "regional_warning":
            self._regional_command(cmd, ctx, out)
            return
        result, transitions = self.engine.command(
            cmd,
            locality=self.locality,
            now=self.watermark,
            clocks=self.clocks,
            sources=ctx.source_detail or None,
        )
        if result is not None:
            out.results.append(result)
        out.transitions += transitions

    def _verdict(
        self,
        out: StepOutput,
        source: str,
        kind: str,
        period: str,
        at: datetime,
        fields: Mapping[str, Any],
        ctx: LocalityContext,
    ) -> None:
        """Every value a ``verdict`` point judged: an explicit observation for its alert, within
        the limit or not. A value within its limit for a subject without an alert changes
        nothing (the common case: skipped without building an evaluation)."""
        has_alert = self.engine.has_alert
        base: Mapping[str, str] | None = None
        for f, v in fields.items():
            if f.endswith(("_limit", "_standard")):
                continue
            limit = fields.get(f + "_limit")
            if not isinstance(v, (int, float)) or not isinstance(limit, (int, float)):
                continue
            kinds = _VERDICT_KIND.get((kind, period)) or (
                _MONITOR_KIND.get(f) if kind == "monitor" else None
            )
            if kinds is None:
                continue
            ev_kind, rule_kind = kinds
            within = v == limit if ev_kind == "vapour_recovery" else v <= limit
            if within and not has_alert(source, f, rule_kind, period):
                continue
            if base is None:
                base = ctx.source_detail.get(source, {})
            detail = {**base, "period": period, "standard": str(fields.get(f + "_standard", ""))}
            self._eval(out, ev_kind, source, f, float(v), at, float(limit), frozenset(), detail)

    def _upstream(
        self,
        out: StepOutput,
        source: str,
        at: datetime,
        fields: Mapping[str, Any],
        ctx: LocalityContext,
    ) -> None:
        """A section's sample against its upstream neighbours' at the same label, and its
        downstream neighbours' against it (alerts/water.py: judged when both have arrived)."""
        values = {f: float(v) for f, v in fields.items() if f != "invalid" and _num(v) is not None}
        for section, up, worse, info in self.upstream.add(source, at, values, ctx.source_detail):
            detail = {**ctx.source_detail.get(section, {}), **info}
            self._eval(
                out, "water_upstream", section, up, float(worse), at, None, frozenset(), detail
            )

    def _power(
        self,
        out: StepOutput,
        source: str,
        at: datetime,
        fields: Mapping[str, Any],
        ctx: LocalityContext,
    ) -> None:
        """Pollution-control equipment off or far below its normal load while production runs
        (the plans' 用电量监控 of enterprises, e.g. 000_d6d679181568297b.txt#L339): judged for
        every hour at which both monitors of a pair have reported."""
        kw = _num(fields.get("power_kw"))
        if kw is None:
            return
        iso = at.isoformat()
        known = self.power.get(source)
        if known is not None and known[0] > iso:
            return  # older than the newest reading of the monitor: late, changes nothing
        self.power[source] = [iso, kw]
        treatments = (
            (source,) if source in ctx.power_pairs else ctx.power_production.get(source, ())
        )
        for treatment in treatments:
            production, normal_kw, running_kw = ctx.power_pairs[treatment]
            got_t = self.power.get(treatment)
            got_p = self.power.get(production)
            if got_t is None or got_p is None or got_t[0] != iso or got_p[0] != iso:
                continue  # the pair's other reading of this time has not arrived yet
            running = float(got_p[1]) > running_kw
            detail = {
                **ctx.source_detail.get(treatment, {}),
                "period": "hour",
                "production_kw": repr(float(got_p[1])),
                "production_running": "1" if running else "0",
                "normal_kw": repr(normal_kw),
            }
            limit = normal_kw * ELECTRICITY_LOW_SHARE
            self._eval(
                out,
                "electricity",
                treatment,
                "power_kw",
                float(got_t[1]),
                at,
                limit,
                frozenset(),
                detail,
            )

    def _samples(
        self,
        out: StepOutput,
        source: str,
        at: datetime,
        fields: Mapping[str, Any],
        detail: Mapping[str, str],
    ) -> None:
        flags = _flags(fields.get("invalid"))
        wanted = self._sample_factors()
        numeric = False
        alive = False
        for f, v in fields.items():
            if f == "invalid" or not isinstance(v, (int, float)):
                continue
            numeric = True
            if f in _IGNORED_FOR_ALERTS:
                continue
            # The first value proves the source alive (offline, maintenance); after it only the
            # factors a per-sample rule reads are evaluated — the others could only update a
            # constant-value counter nobody reads (same transitions, half the work).
            if not alive or wanted is None or f in wanted:
                self._eval(out, "sample", source, f, float(v), at, None, flags, detail)
                alive = True
        if not numeric and flags:
            # a sample with only flagged values still proves the source is alive (and in
            # maintenance when flagged M/C)
            self._eval(out, "sample", source, "_flags", None, at, None, flags, detail)

    def _sample_factors(self) -> frozenset[str] | None:
        """Factors any per-sample rule (constant/zero values) reads; None: every factor."""
        rules = self.engine.rules
        if self._factors_of is not rules:
            wanted: set[str] = set()
            self._factors = frozenset()
            for rule in rules.by_evaluation_kind.get("sample", ()):
                if not rule.factors:
                    self._factors = None
                    break
                wanted |= rule.factors
            else:
                self._factors = frozenset(wanted)
            self._factors_of = rules
        return self._factors

    def _eval(
        self,
        out: StepOutput,
        kind: str,
        source: str,
        factor: str,
        value: float | None,
        at: datetime,
        limit: float | None,
        flags: frozenset[str],
        detail: Mapping[str, str],
    ) -> None:
        seen = self.engine.sources.get(source)
        if seen is not None and seen.offline and at <= seen.last_seen:
            return  # old data of a silent source (redelivery, late): it has not come back
        ev = Evaluation(
            kind=kind,
            locality=self.locality,
            source=source,
            factor=factor,
            value=value,
            time=at,
            limit=limit,
            flags=flags,
            detail=dict(detail),
        )
        out.transitions += self.engine.process(ev)

    def _advance(self, at: datetime, source: str, out: StepOutput) -> None:
        """Escalation and catch-up: the locality's alerts at the watermark (the newest event
        time of its observations), each alert of a source no further than that source's own
        clock (:meth:`alerts.engine.Engine.tick`) — so the points of several input partitions
        may interleave in any order and every alert is still judged on its own source's data."""
        moved = False
        if source:
            known = self.clocks.get(source)
            if known is None or at > known:
                self.clocks[source] = at
                moved = True
        if self.watermark is None or at > self.watermark:
            self.watermark = at
            out.transitions += self.engine.tick(at, clocks=self.clocks)
        elif moved:
            # a lagging source caught up to a time the watermark passed long ago
            out.transitions += self.engine.tick(self.watermark, clocks=self.clocks, source=source)

    def _quality(
        self,
        source: str,
        at: datetime,
        fields: Mapping[str, Any],
        detail: Mapping[str, str],
        out: StepOutput,
    ) -> None:
        """Judge a day's rates once the day is over (a later day's point arrived)."""
        day = beijing_date(at).isoformat()
        prev = self.quality.get(source)
        if prev is not None and prev[0] < day:
            end = datetime.fromisoformat(prev[0]).replace(tzinfo=BEIJING) + timedelta(days=1)
            self._eval(
                out,
                "data_rate",
                source,
                "transmission_rate",
                prev[1],
                end,
                0.9,
                frozenset(),
                detail,
            )
            self._eval(
                out, "data_rate", source, "valid_rate", prev[2], end, 0.9, frozenset(), detail
            )
        if prev is None or prev[0] <= day:
            self.quality[source] = [
                day,
                _num(fields.get("transmission_rate")),
                _num(fields.get("valid_rate")),
            ]

    def _city_input(
        self,
        source: str,
        at: datetime,
        fields: Mapping[str, Any],
        ctx: LocalityContext,
        out: StepOutput,
    ) -> None:
        got = self.air.hour(source, at, fields)
        out.points += got.points
        closed = [p for p in got.points if p.measurement == "aqi" and p.tags.get("period") == "day"]
        for p in closed:
            self.plan.day(beijing_date(p.time), p.fields)
        if closed:
            day = beijing_date(max(p.time for p in closed))
            newest = self.plan.newest_day()
            if newest is not None and newest > day:
                # a late correction of an earlier day: that day's points are rewritten, and the
                # newest day's figures (what the service serves, what the rule judges) change too
                self._progress(day, ctx, out, live=False)
                day = newest
            self._progress(day, ctx, out)
        if got.rolling or got.daily:
            when = got.rolling[0][0] if got.rolling else at
            self._warn(
                WarningInput(rolling_aqi=got.rolling, observed_daily=got.daily), when, ctx, out
            )

    def _forecast(
        self, at: datetime, fields: Mapping[str, Any], ctx: LocalityContext, out: StepOutput
    ) -> None:
        value = _num(fields.get("aqi"))
        if value is None:
            return
        # a daily forecast is labelled with the END of its target day (00:00 of the next day)
        day = beijing_day(at)
        known = dict(self.warning.forecast)
        known[day] = int(value)
        forecast = tuple(sorted(known.items()))
        # the forecast is information available at its delivery: judged at the locality's
        # watermark (the newest observation), or at its issue time before any observation
        now = self.watermark
        if now is None:
            issued = fields.get("issued")
            if not isinstance(issued, str):
                return
            now = _t(issued)
        self._warn(WarningInput(forecast_daily=forecast), now, ctx, out)

    def _progress(
        self, day: date, ctx: LocalityContext, out: StepOutput, *, live: bool = True
    ) -> None:
        """At a Beijing day's close: every indicator's progress as ``plan_progress`` points, one
        record for the alerts service, and — once the year has ``MIN_DAYS_FOR_ALERTS`` days of
        data — an explicit observation per indicator for the plan-progress rule. ``live=False``
        (an earlier day corrected by late data): its points only."""
        if ctx.plan is None:
            return
        rows = self.plan.close(day, ctx.plan, ctx.sections)
        if not rows:
            return
        at = datetime.combine(day + timedelta(days=1), time(0), BEIJING)
        judged = self.plan.days_counted(day.year) >= MIN_DAYS_FOR_ALERTS
        for r in rows:
            key = indicator_key(r)
            fields: dict[str, float | int | str | bool] = {
                "status": r.status.value,
                "indicator_name": r.indicator,
                "target_printed": r.target_printed,
            }
            if r.value is not None:
                fields["value"] = float(r.value)
            if r.projection is not None:
                fields["projection"] = float(r.projection)
            if r.target is not None:
                fields["target"] = float(r.target.value)
                fields["target_origin"] = r.target.origin.value
            tags = {"locality": self.locality, "indicator": key, "metric": r.metric.value}
            out.points.append(Point("plan_progress", tags, fields, at))
            status = _PROGRESS_STATUS.get(r.status.value)
            if live and judged and status is not None:
                detail = {
                    "status": status,
                    "indicator": key,
                    "indicator_name": r.indicator,
                    "target": r.target_printed,
                }
                value = None if r.value is None else float(r.value)
                self._eval(
                    out, "plan_progress", self.locality, key, value, at, None, frozenset(), detail
                )
        if not live:
            return
        out.progress.append(
            {
                "locality": self.locality,
                "as_of": day.isoformat(),
                "days": self.plan.days_counted(day.year),
                "indicators": [progress_dict(r) for r in rows],
            }
        )

    def _forecast_issue(
        self, issued: datetime, fields: Mapping[str, Any], ctx: LocalityContext, out: StepOutput
    ) -> None:
        """A forecast issue (rules/forecast.py): its days replace what was known of them (a
        range counts with its upper bound), judged when it was issued — or at the locality's
        newest observation when that is later. It moves no clock."""
        raw = fields.get("days")
        if not isinstance(raw, str):
            return
        known = dict(self.warning.forecast)
        for d in days_from_json(raw):
            known[d.day] = float(d.expected)
        now = issued if self.watermark is None or issued > self.watermark else self.watermark
        self._warn(WarningInput(forecast_daily=tuple(sorted(known.items()))), now, ctx, out)

    def _warn(
        self, inp: WarningInput, now: datetime, ctx: LocalityContext, out: StepOutput
    ) -> None:
        if ctx.rule_set is None:
            return
        if self.watermark is not None and now < self.watermark:
            now = self.watermark
        before = self.warning.level
        self.warning, decisions = warning_step(
            self.warning, inp, now, rule_set=ctx.rule_set, enterprises=ctx.enterprises
        )
        for d in decisions:
            out.transitions += self.engine.apply_warning(d)
        after = self.warning.level
        if before is Level.NONE and after is not Level.NONE:
            self.cuts.freeze(now)  # the pre-warning baselines of every enterprise
        elif before is not Level.NONE and after is Level.NONE:
            # nothing is required any more: every warning-compliance alert resolves with the lift
            self.cuts.lifted()
            out.transitions += self.engine.close_kind(
                RuleKind.WARNING_COMPLIANCE.value, now, Reason.WARNING_LIFTED
            )

    def _cut(
        self,
        out: StepOutput,
        source: str,
        at: datetime,
        values: Mapping[str, float],
        ctx: LocalityContext,
    ) -> None:
        """An enterprise's hourly emission rates or production kW (alerts/compliance.py): kept
        for the baseline while no warning is in force, checked against the required cut while
        one is."""
        if not values or ctx.rule_set is None:
            return
        detail = ctx.source_detail.get(source, {})
        enterprise = enterprise_of(ctx.enterprises, detail.get("enterprise", ""))
        if enterprise is None:
            return
        level = self.warning.level
        if level is Level.NONE:
            for factor, value in values.items():
                self.cuts.remember(source, factor, at, value)
            return
        since = self.warning.since
        if since is not None and at <= since:
            return  # the hour ended before the level took effect: judged by no level
        for factor, value in values.items():
            check = self.cuts.check(
                source, factor, at, value, level=level, rule_set=ctx.rule_set, enterprise=enterprise
            )
            if check is None or check.achieved_cut is None or check.required_cut is None:
                continue
            info = {
                **detail,
                "period": "hour",
                "level": level.value,
                "baseline": f"{check.baseline:.4g}",
                "current": f"{value:.4g}",
            }
            self._eval(
                out,
                "warning_compliance",
                source,
                factor,
                check.achieved_cut,
                at,
                check.required_cut,
                frozenset(),
                info,
            )


#: rules.progress statuses → the plan-progress rule's (alerts/rules.py); no_target and no_data
#: give no observation
_PROGRESS_STATUS: Final = {"on_track": "on_track", "at_risk": "at_risk", "off_track": "off_track"}


def _num(v: object) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def _flags(invalid: object) -> frozenset[str]:
    if not isinstance(invalid, str) or not invalid:
        return frozenset()
    return frozenset(part.split(":", 1)[1] for part in invalid.split(",") if ":" in part)


_WARNING_STATE: Final = {
    "warning_issued": "issued",
    "warning_upgraded": "upgraded",
    "warning_downgraded": "downgraded",
    "warning_lifted": "lifted",
}


def transition_point(t: Transition) -> Point:
    """A transition as a point: measurement ``warning`` for warnings, ``alert`` otherwise
    (schema in streams/schema.py and docs/influx-schema.md)."""
    summary = str(t.annotations.get("summary", ""))
    if t.kind.value == "warning":
        tags = {
            "kind": "warning",
            "locality": t.locality,
            "source": t.source,
            "rule": str(t.annotations.get("rule_set", "")),
            "level": t.level or "none",
            "state": _WARNING_STATE.get(t.reason.value, t.reason.value),
        }
        # ``notify`` is also the one non-string field: a store that keeps numbers only
        # (VictoriaMetrics) still holds a row for every transition
        fields_w: dict[str, float | int | str | bool] = {
            "summary": summary,
            "id": t.id,
            "notify": t.notify,
        }
        lead = t.annotations.get("lead_hours")
        if lead:
            fields_w["lead_hours"] = float(lead)
        return Point("warning", tags, fields_w, t.at.astimezone(UTC))
    if t.kind.value == "warning_duty":
        duty_tags = {
            "kind": "warning_duty",
            "locality": t.locality,
            "source": t.source,
            "level": t.level or "none",
            "state": _WARNING_STATE.get(t.reason.value, t.reason.value),
        }
        return Point(
            "warning_duty",
            duty_tags,
            {"summary": summary, "id": t.id, "notify": t.notify},
            t.at.astimezone(UTC),
        )
    # every label that makes the alert unique (rule, source, factor, averaging period) is a tag:
    # two alerts of one source at one time never share a series and overwrite each other
    tags = {
        "kind": t.kind.value,
        "locality": t.locality,
        "source": t.source,
        "rule": t.labels.get("rule", ""),
        "factor": t.labels.get("factor", "") or "none",
        "period": t.labels.get("period", "") or "none",
        "level": t.severity.value,
        "state": t.state.value,
    }
    fields: dict[str, float | int | str | bool] = {
        "id": t.id,
        "reason": t.reason.value,
        "summary": summary,
        "notify": t.notify,  # people were told (a number for stores that keep numbers only)
    }
    if t.value is not None:
        fields["value"] = float(t.value)
    if t.limit is not None:
        fields["limit"] = float(t.limit)
    return Point("alert", tags, fields, t.at.astimezone(UTC))
