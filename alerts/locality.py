"""The locality stage (pure): city values, heavy-pollution warnings and the alert engine of one locality.

The stream worker keys this stage by locality (Kafka topic ``aggregates``): every evaluation point
that matters for a locality's alerts — station concentrations, exceedances, water classes, data
quality, forecasts — arrives here in order, and :meth:`LocalityState.step` turns it into

* city points: real-time city AQI per hour (mean of the stations' valid concentrations, then AQI),
  the rolling 24-h AQI (mean over any consecutive 24 h, standards.md §6.1 "common rules") and the
  daily city AQI per Beijing natural day;
* warning decisions (:mod:`rules.warnings`, rule set from the catalogue) and their transitions;
* alert transitions from :class:`alerts.engine.Engine` (exceedances, water class, permit limits,
  bypass, constant/zero values, data rates, offline), with offline detection driven by the
  locality's watermark (the latest event time seen), never the clock.

Everything is event-time driven and deterministic; the state round-trips through ``to_dict`` /
``from_dict`` so the worker can checkpoint it and a restart resumes pending alerts and durations.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from rules.airstats import DailyO3Max8h
from rules.ambient import exceedance as ambient_exceedance
from rules.engine import (
    AIR_FACTORS,
    HOURLY_LIMITED,
    Point,
    city_hour_from_sums,
    epoch_hours,
    from_epoch_hours,
)
from rules.errors import RulesError
from rules.standards.gb3095 import Grade, Period
from rules.standards.hj633 import BEIJING
from rules.warnings import WarningInput, WarningRuleSet, WarningState
from rules.warnings import step as warning_step

from alerts.engine import Engine
from alerts.model import Transition
from alerts.rules import AlertRules, Evaluation
from rules import aqi as aqi_mod

#: Hours of city data kept: 24 for the rolling AQI plus the 48-h lateness horizon of rules.engine.
KEEP_HOURS: Final = 72
#: A city hour counts when at least one station reported it; a rolling 24-h AQI needs ≥ 20 of its
#: 24 hours (GB 3095 表4 daily validity, applied to the rolling window).
MIN_ROLLING_HOURS: Final = 20
_IGNORED_FOR_ALERTS: Final = frozenset({"temp", "humidity", "pressure", "flow", "velocity", "o2"})
#: Source kinds whose readings feed the per-sample rules (constant/zero values, liveness).
_SAMPLE_KINDS: Final = frozenset({"air", "water", "emission", "monitor"})


@dataclass(frozen=True, slots=True)
class LocalityContext:
    """What the catalogue says about a locality (built by the caller)."""

    locality: str
    rule_set: WarningRuleSet | None
    enterprises: Sequence[object] = ()
    #: source id → labels for routing/inhibition (enterprise, outlet, station, section)
    source_detail: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    stations: frozenset[str] = frozenset()


@dataclass
class StepOutput:
    points: list[Point] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)


def _t(s: str) -> datetime:
    return datetime.fromisoformat(s)


class LocalityState:
    """Mutable state of one locality; plain data through ``to_dict``/``from_dict``."""

    def __init__(self, locality: str, rules: AlertRules) -> None:
        self.locality = locality
        self.engine = Engine(rules)
        self.warning = WarningState(locality=locality)
        #: epoch hour → source → six concentrations (AIR_FACTORS order)
        self.city: dict[int, dict[str, list[float | None]]] = {}
        #: source → [day iso, transmission rate, valid rate] of the latest data-quality point
        self.quality: dict[str, list[Any]] = {}
        self.watermark: datetime | None = None
        self.days_done: list[str] = []
        self.current_day: str | None = None
        self.warned_hour = -1
        # derived, not persisted: per-hour city means (see _hour_means), per-sample factors
        self._means: dict[int, tuple[list[float], list[int]]] = {}
        self._latest_hour: int | None = None  # newest hour in ``city`` (derived when None)
        self._factors: frozenset[str] | None = frozenset()
        self._factors_of: AlertRules | None = None

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        return {
            "locality": self.locality,
            "engine": self.engine.to_dict(),
            "warning": self.warning.to_dict(),
            "city": {str(h): rows for h, rows in self.city.items()},
            "quality": self.quality,
            "watermark": None if self.watermark is None else self.watermark.isoformat(),
            "days_done": self.days_done,
            "current_day": self.current_day,
            "warned_hour": self.warned_hour,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], rules: AlertRules) -> LocalityState:
        st = cls(str(data["locality"]), rules)
        st.engine = Engine.from_dict(data["engine"], rules)
        st.warning = WarningState.from_dict(data["warning"])
        st.city = {int(h): dict(rows) for h, rows in dict(data.get("city") or {}).items()}
        st.quality = dict(data.get("quality") or {})
        wm = data.get("watermark")
        st.watermark = None if wm is None else _t(wm)
        st.days_done = list(data.get("days_done") or [])
        st.current_day = data.get("current_day")
        st.warned_hour = int(data.get("warned_hour", -1))
        return st

    # ------------------------------------------------------------------ the step
    def step_record(self, points: Sequence[Mapping[str, Any]], ctx: LocalityContext) -> StepOutput:
        """All the points one sample produced (one wire record), in order.

        Knowing the whole record lets the stage see which GB 3095 1-hour limits the sample did
        *not* exceed, so an ambient alert can clear (the engine writes exceedance points only when
        a limit is exceeded)."""
        exceeded = frozenset(
            (p["tags"].get("source", ""), p["tags"].get("factor", ""), p["time"])
            for p in points
            if p["measurement"] == "exceedance" and p["tags"].get("period") in ("hourly", "hour")
        )
        out = StepOutput()
        for p in points:
            one = self.step(p, ctx, exceeded=exceeded)
            out.points += one.points
            out.transitions += one.transitions
        return out

    def step(
        self,
        point: Mapping[str, Any],
        ctx: LocalityContext,
        *,
        exceeded: frozenset[tuple[str, str, str]] | None = None,
    ) -> StepOutput:
        """Process one evaluation point (as decoded from the wire) of this locality.

        ``exceeded``: (source, factor, time) of the hourly exceedances of the same record, when the
        caller knows the whole record (:meth:`step_record`); None: no clear observations."""
        out = StepOutput()
        m = point["measurement"]
        tags: Mapping[str, str] = point["tags"]
        fields: Mapping[str, Any] = point["fields"]
        at = _t(point["time"])
        source = tags.get("source", "")
        detail = dict(ctx.source_detail.get(source, {}))
        kind = tags.get("kind", "")

        if m == "reading":
            if kind == "air":
                self._city_input(source, at, fields, ctx, out)
                self._ambient_clear(out, source, at, fields, detail, exceeded)
            elif kind == "forecast":
                self._forecast(at, fields, ctx, out)
            seen = self.engine.sources.get(source)
            if kind in _SAMPLE_KINDS and (seen is None or at > seen.last_seen):
                # Only a sample newer than anything seen of the source counts: a redelivered
                # (duplicate) or late sample would lengthen a constant-value run or "resume" an
                # offline source with old data.
                self._samples(out, source, at, fields, detail)
        elif m == "exceedance":
            factor = tags.get("factor", "")
            value = _num(fields.get("value"))
            limit = _num(fields.get("limit"))
            if kind == "air":
                self._eval(out, "ambient", source, factor, value, at, limit, frozenset(), detail)
            elif kind == "emission":
                ev_kind = "effluent" if tags.get("period") == "day" else "permit"
                self._eval(out, ev_kind, source, factor, value, at, limit, frozenset(), detail)
            elif kind == "monitor":
                monitor_kind = {"bypass_open": "bypass", "dustfall": "dustfall"}.get(factor)
                if monitor_kind is not None:
                    self._eval(
                        out, monitor_kind, source, factor, value, at, limit, frozenset(), detail
                    )
        elif m == "emission_hour":
            self._permit_clear(out, source, at, fields, detail, exceeded)
        elif m == "water_class" and tags.get("period") == "sample":
            # no target class (the plan gives none): 6 (劣V) as the limit, so only the
            # worse-than-V rule can fire for the section
            target = _num(fields.get("target")) or 6.0
            grade = _num(fields.get("grade"))
            self._eval(out, "water_class", source, "class", grade, at, target, frozenset(), detail)
        elif m == "data_quality" and tags.get("period") == "day":
            self._quality(source, at, fields, detail, out)
        self._advance(at, out)
        return out

    # ------------------------------------------------------------------ pieces
    def _clears(
        self,
        source: str,
        at: datetime,
        exceeded: frozenset[tuple[str, str, str]] | None,
        candidates: Iterable[tuple[str, float | None]],
        rule_kind: str,
    ) -> list[tuple[str, float]]:
        """(factor, value) of the candidates that could clear an open ``rule_kind`` alert: a
        value in a record that carries no exceedance for that factor (rules.engine writes
        exceedance points only above a limit, so a value without one is within it)."""
        if exceeded is None:
            return []
        iso = at.isoformat()
        return [
            (f, v)
            for f, v in candidates
            if v is not None
            and (source, f, iso) not in exceeded
            and self.engine.has_alert(source, f, rule_kind)
        ]

    def _permit_clear(
        self,
        out: StepOutput,
        source: str,
        at: datetime,
        fields: Mapping[str, Any],
        detail: Mapping[str, str],
        exceeded: frozenset[tuple[str, str, str]] | None,
    ) -> None:
        """An outlet hour within its permit limit (O2-corrected where corrected) clears an open
        permit alert; the limits come with the outlet's routing detail (``limit_<factor>``)."""
        limits = {k[len("limit_") :]: float(v) for k, v in detail.items() if k.startswith("limit_")}
        values = ((f, _num(fields.get(f"{f}_zs", fields.get(f)))) for f in limits)
        for f, v in self._clears(source, at, exceeded, values, "permit_exceedance"):
            self._eval(out, "permit", source, f, v, at, limits[f], frozenset(), detail)

    def _ambient_clear(
        self,
        out: StepOutput,
        source: str,
        at: datetime,
        fields: Mapping[str, Any],
        detail: Mapping[str, str],
        exceeded: frozenset[tuple[str, str, str]] | None,
    ) -> None:
        """A station hour within its GB 3095 1-hour limit clears an open ambient alert."""
        grade = Grade.I if detail.get("area_grade") == "I" else Grade.II
        values = ((f, _num(fields.get(f))) for _i, f in HOURLY_LIMITED)  # (row, factor) pairs
        for f, v in self._clears(source, at, exceeded, values, "ambient_exceedance"):
            try:
                ex = ambient_exceedance(f, v, period=Period.HOURLY, at=at, grade=grade)
            except RulesError:
                continue
            if not ex.exceeded:
                self._eval(out, "ambient", source, f, v, at, ex.limit, frozenset(), detail)

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

    def _advance(self, at: datetime, out: StepOutput) -> None:
        if self.watermark is None or at > self.watermark:
            self.watermark = at
            out.transitions += self.engine.tick(at)

    def _quality(
        self,
        source: str,
        at: datetime,
        fields: Mapping[str, Any],
        detail: Mapping[str, str],
        out: StepOutput,
    ) -> None:
        """Judge a day's rates once the day is over (a later day's point arrived)."""
        day = at.astimezone(BEIJING).date().isoformat()
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
        if (at.minute, at.second, at.microsecond) != (0, 0, 0):
            return
        h = epoch_hours(at)
        row = [_num(fields.get(f)) for f in AIR_FACTORS]
        hour = self.city.setdefault(h, {})
        before = hour.get(source)
        if before == row:
            return  # duplicate: nothing changes
        hour[source] = row
        means = self._means.get(h)
        if before is None and means is not None:
            # a new station of the hour: add its values to the hour's sums, in station order
            # as _hour_means would (the same floats), instead of re-adding every station
            hour_sum, hour_n = means
            for i, v in enumerate(row):
                if v is not None:
                    hour_sum[i] += v
                    hour_n[i] += 1
        else:
            self._means.pop(h, None)  # a correction: recomputed from the rows when next needed
        sums = self._hour_means(h)
        assert sums is not None  # the hour holds this station's row
        p = city_hour_from_sums(sums[0], sums[1], len(hour), at, self.locality)
        # keep KEEP_HOURS hours before the newest (a sample older than that still gets its
        # city value above, then its hour goes)
        if self._latest_hour is None:
            self._latest_hour = max(self.city)
        if h > self._latest_hour:
            self._latest_hour = h
            for old in [k for k in self.city if k < h - KEEP_HOURS]:
                del self.city[old]
                self._means.pop(old, None)
        elif h < self._latest_hour - KEEP_HOURS:
            del self.city[h]
            self._means.pop(h, None)
        if p is not None:
            out.points.append(p)
        # The warning rules see an hour once it is complete: when the first station reports the
        # next hour (or a later one), the rolling 24-h AQI of the previous hour is final enough.
        roll_pts: tuple[tuple[datetime, int], ...] = ()
        if h > self.warned_hour:
            prev = h - 1 if self.warned_hour >= 0 else h
            rolling = self._rolling(prev)
            if rolling is not None:
                out.points.append(rolling)
                roll_pts = ((from_epoch_hours(prev), int(rolling.fields["aqi"])),)
            self.warned_hour = h
        # a city day closes when the hour labelled 00:00 (slot 23) or a later day arrives
        day_pts: list[tuple[date, int]] = []
        local_day = (at.astimezone(BEIJING) - timedelta(hours=1)).date()
        for d in self._days_to_close(local_day, at):
            daily = self._city_day(d)
            if daily is not None:
                out.points.append(daily)
                aqi_v = daily.fields.get("aqi")
                if isinstance(aqi_v, int):
                    day_pts.append((d, aqi_v))
        if roll_pts or day_pts:
            when = roll_pts[0][0] if roll_pts else at
            self._warn(
                WarningInput(rolling_aqi=roll_pts, observed_daily=tuple(day_pts)), when, ctx, out
            )

    def _days_to_close(self, day: date, at: datetime) -> list[date]:
        todo: list[date] = []
        local = at.astimezone(BEIJING)
        if local.hour == 0:
            todo.append(day)  # the hour labelled 24:00 completes the day
        elif day.isoformat() in self.days_done:
            todo.append(day)  # a late sample corrects a day already published
        prev = day - timedelta(days=1)
        new_day = self.current_day is not None and self.current_day < day.isoformat()
        if new_day and prev.isoformat() not in self.days_done:
            todo.append(prev)  # the first hour of a new day closes an uncompleted previous day
        if self.current_day is None or self.current_day < day.isoformat():
            self.current_day = day.isoformat()
        for d in todo:
            if d.isoformat() not in self.days_done:
                self.days_done.append(d.isoformat())
        del self.days_done[:-7]
        return sorted(set(todo))

    def _city_means(
        self, hours: Iterable[int]
    ) -> tuple[dict[str, float | None], list[float | None], int]:
        sums = [0.0] * 6
        counts = [0] * 6
        o3_hours: list[float | None] = []
        n = 0
        for h in hours:
            got = self._hour_means(h)
            if got is None:
                o3_hours.append(None)
                continue
            n += 1
            hour_sum, hour_n = got
            for i in range(6):
                if hour_n[i]:
                    sums[i] += hour_sum[i] / hour_n[i]
                    counts[i] += 1
            o3_hours.append(hour_sum[5] / hour_n[5] if hour_n[5] else None)
        means: dict[str, float | None] = {
            f: (sums[i] / counts[i] if counts[i] >= MIN_ROLLING_HOURS else None)
            for i, f in enumerate(AIR_FACTORS)
            if f != "o3"
        }
        return means, o3_hours, n

    def _hour_means(self, h: int) -> tuple[list[float], list[int]] | None:
        """(sums, counts) of the stations' valid values per factor in hour ``h`` (None: no
        station). Memoised until a station's row of that hour changes: the rolling window
        of every hour would otherwise re-add the same 24 hours."""
        got = self._means.get(h)
        if got is not None:
            return got
        rows = self.city.get(h)
        if not rows:
            return None
        hour_sum = [0.0] * 6
        hour_n = [0] * 6
        for row in rows.values():
            for i, v in enumerate(row):
                if v is not None:
                    hour_sum[i] += v
                    hour_n[i] += 1
        got = self._means[h] = (hour_sum, hour_n)
        return got

    def _rolling(self, h: int) -> Point | None:
        """AQI of the 24 h ending at hour ``h`` (any consecutive 24 h, may cross midnight)."""
        hours = range(h - 23, h + 1)
        means, o3_hours, n = self._city_means(hours)
        if n < MIN_ROLLING_HOURS:
            return None
        o3 = DailyO3Max8h().result(o3_hours).value
        means["o3_8h"] = o3
        means["o3_1h"] = max((v for v in o3_hours if v is not None), default=None)
        at = from_epoch_hours(h)
        result = aqi_mod.daily_aqi(means, day=at.astimezone(BEIJING).date())
        if result.aqi is None:
            return None
        return Point(
            "aqi",
            {"locality": self.locality, "source": "city", "period": "rolling24h"},
            {
                "aqi": result.aqi,
                "level": int(result.level or 0),
                "primary": ",".join(result.primary),
                "hours": n,
            },
            at,
        )

    def _city_day(self, d: date) -> Point | None:
        start = datetime(d.year, d.month, d.day, tzinfo=BEIJING)
        first = epoch_hours(start) + 1
        means, o3_hours, n = self._city_means(range(first, first + 24))
        if n == 0:
            return None
        means["o3_8h"] = DailyO3Max8h().result(o3_hours).value
        means["o3_1h"] = max((v for v in o3_hours if v is not None), default=None)
        result = aqi_mod.daily_aqi(means, day=d)
        fields: dict[str, float | int | str | bool] = {"hours": n, "edition": result.edition}
        if result.aqi is not None:
            fields.update(
                aqi=result.aqi,
                level=int(result.level or 0),
                category=result.category or "",
                primary=",".join(result.primary),
                good=result.aqi <= 100,  # 优良天 (HJ 633 levels 1–2)
                heavy=result.aqi > 200,  # 重度及以上
            )
        for f, v in means.items():
            if v is not None:
                fields[f] = round(v, 3)
        return Point(
            "aqi", {"locality": self.locality, "source": "city", "period": "day"}, fields, start
        )

    def _forecast(
        self, at: datetime, fields: Mapping[str, Any], ctx: LocalityContext, out: StepOutput
    ) -> None:
        value = _num(fields.get("aqi"))
        if value is None:
            return
        # a daily forecast is labelled with the END of its target day (00:00 of the next day)
        day = (at.astimezone(BEIJING) - timedelta(microseconds=1)).date()
        known = dict(self.warning.forecast)
        known[day] = int(value)
        forecast = tuple(sorted(known.items()))
        # the forecast is information available at its delivery; evaluate at the watermark
        now = self.watermark or at
        self._warn(WarningInput(forecast_daily=forecast), now, ctx, out)

    def _warn(
        self, inp: WarningInput, now: datetime, ctx: LocalityContext, out: StepOutput
    ) -> None:
        if ctx.rule_set is None:
            return
        if self.watermark is not None and now < self.watermark:
            now = self.watermark
        self.warning, decisions = warning_step(
            self.warning, inp, now, rule_set=ctx.rule_set, enterprises=ctx.enterprises
        )
        for d in decisions:
            out.transitions += self.engine.apply_warning(d)


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
        return Point("warning", tags, {"summary": summary, "id": t.id}, t.at.astimezone(UTC))
    tags = {
        "kind": t.kind.value,
        "locality": t.locality,
        "source": t.source,
        "rule": t.labels.get("rule", ""),
        "level": t.severity.value,
        "state": t.state.value,
    }
    fields: dict[str, float | int | str | bool] = {
        "id": t.id,
        "reason": t.reason.value,
        "summary": summary,
    }
    if t.value is not None:
        fields["value"] = float(t.value)
    if t.limit is not None:
        fields["limit"] = float(t.limit)
    return Point("alert", tags, fields, t.at.astimezone(UTC))
