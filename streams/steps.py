"""The worker's two pure steps, in one place: the Faust agents and ``envwatch backtest`` both call
these and nothing else, so a replay tells the same story as the live pipeline.

* :class:`EvaluateStep` — one ``readings`` record (a sample as the bridge wrote it) of one input
  partition → outputs: the sample's points for the store (``evaluations``), the points the
  locality stage needs (``aggregates``, keyed by locality) and dead letters. It first screens
  the sample with :func:`rules.plausibility.screen` (catalogue identity: unknown source, wrong
  locality or kind, foreign factor; physical ranges): a refused sample or factor is
  dead-lettered with its reason and touches no state, clock or statistic (docs/plausibility.md).
  Then it runs :func:`rules.evaluate.step` per source and keeps the partition's **clock**: the newest event time
  of the observations that flowed through the partition (a sample's contribution capped at its
  receipt, so a logger whose clock runs ahead cannot push it). Whenever the clock crosses a
  ``CLOCK_STEP`` boundary, every source of the partition whose data is overdue gets a ``silence``
  point: an explicit statement that it has sent nothing since ``last_seen`` while the data flowing
  with it reached the clock. Offline is decided from those, so a partition or a locality lagging
  behind after a backlog never makes a source look silent (its own clock lags with it). AQI
  forecasts are no observations: they never move the clock; their reading carries the clock at
  receipt as ``issued``.
* :class:`LocalityStep` — one ``aggregates`` record → :meth:`alerts.locality.LocalityState.
  step_record` with the catalogue's locality context → city / alert / warning points for the
  store and transitions for ``alert-events``.

Both are deterministic functions of their input and state (no clock, no I/O), which the
checkpoint-and-replay of :mod:`streams.state` relies on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson

from alerts.locality import LocalityContext, LocalityState, transition_point
from alerts.rules import AlertRules
from rules import evaluate as engine
from rules import plausibility
from rules.errors import RulesError
from rules.forecast import check_issue
from streams import topics
from streams.catalog import DEFAULT_CONTEXT, CatalogView, locality_context
from streams.records import DeadLetter, is_envelope
from streams.wire import (
    decode_points,
    decode_sample,
    for_locality,
    for_store,
    point_dict,
    points_bytes,
    sample_of,
)

log = logging.getLogger(__name__)

#: An output of a step: (logical topic, key, value).
Output = tuple[str, bytes, bytes]

#: The partition's clock is checked for overdue sources each time it crosses a multiple of this
#: (event time). envwatch's choice [MEM]: an offline alert is at most this late.
CLOCK_STEP: Final = 600
#: A source is *overdue* (and gets ``silence`` points) once it missed two of its own intervals;
#: the alert rule decides when that is "offline" (alerts.engine.Engine.silence).
OVERDUE_INTERVALS: Final = 2
#: After this long without data a source gets no more silence points (its offline alert fired
#: long ago; envwatch's choice [MEM]).
SILENCE_HORIZON: Final = 7 * 86400
#: The partition's own entry in the evaluate stage's state (source ids never start with "~").
CLOCK_KEY: Final = "~clock"
#: How far ahead of its receipt an AQI forecast's target day may lie: HJ 633-2026 forecasts cover
#: at least the next 3 days (standards.md §1.5); 10 days is envwatch's bound [MEM].
FORECAST_HORIZON: Final = timedelta(days=10)
#: what a sample that cannot be decoded raises (streams.wire.sample_of)
_UNDECODABLE = (ValueError, KeyError, TypeError, AttributeError, RulesError)


def _received(ts_ms: int) -> datetime:
    """A record's Kafka timestamp (ms) as an aware datetime."""
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC)


def _source_key(item: Any) -> bytes:
    """The Kafka key of an undecodable sample's dead letter: its source id when it names one."""
    source = item.get("source") if isinstance(item, dict) else None
    return source.encode() if isinstance(source, str) else b""


#: Seconds between samples by the sample's interval, when the catalogue gives none.
INTERVAL_S: Final = {"rt": 30, "min": 60, "hour": 3600, "day": 86400}


class _Outputs:
    """What one ``readings`` record produced: dead letters as they come, and the point dicts of
    ``evaluations`` and ``aggregates`` gathered per (topic, locality) in order, serialised once
    per record (an envelope's samples share a few localities)."""

    __slots__ = ("dead", "points")

    def __init__(self) -> None:
        self.dead: list[Output] = []
        self.points: dict[tuple[str, bytes], list[dict[str, Any]]] = {}

    def add(self, topic: str, locality: bytes, dicts: list[dict[str, Any]]) -> None:
        have = self.points.get((topic, locality))
        if have is None:
            self.points[(topic, locality)] = dicts
        else:
            have += dicts

    def records(self) -> list[Output]:
        out = self.dead
        for (topic, key), dicts in self.points.items():
            for i in range(0, len(dicts), POINTS_PER_RECORD):
                out.append((topic, key, orjson.dumps(dicts[i : i + POINTS_PER_RECORD])))
        return out


#: Points per output record at most: an envelope's points for one locality are cut into records
#: of this many (about 250 bytes each: well below streams.wire.MERGED_MAX_BYTES). envwatch's choice.
POINTS_PER_RECORD: Final = 500


class EvaluateStep:
    """``step(states, key, value, offset, timestamp_ms[, partition]) -> outputs`` over one input
    partition's state (source id → :func:`rules.evaluate.step` state, plus :data:`CLOCK_KEY`).

    A ``readings`` value is one sample or an envelope of several (streams.records.is_envelope, what
    the bridge writes under load): an envelope's samples are judged one by one in their order,
    exactly as if each were a record of its own; a bad one is dead-lettered alone, with its origin
    ``readings/<partition>@<offset>#<index>``, and the rest proceeds."""

    def __init__(self, view: CatalogView, *, max_future: timedelta, max_past: timedelta) -> None:
        self.view = view
        self.max_future = max_future
        self.max_past = max_past
        #: samples judged so far (an envelope counts its samples): the worker's ``samples``
        self.samples = 0

    @staticmethod
    def _dead(key: bytes, value: bytes, origin: str, reason: str) -> list[Output]:
        dl = DeadLetter.build("evaluate", reason, value, origin=origin)
        return [(topics.DEAD_LETTER, key, dl.to_bytes())]

    def __call__(
        self,
        states: dict[str, Any],
        key: bytes,
        value: bytes,
        offset: int,
        ts_ms: int,
        partition: int | None = None,
    ) -> list[Output]:
        where = f"readings@{offset}" if partition is None else f"readings/{partition}@{offset}"
        out = _Outputs()
        if not is_envelope(value):
            self.samples += 1
            try:
                sample = decode_sample(value)
            except _UNDECODABLE as exc:
                return self._dead(key, value, where, f"undecodable sample: {exc}")
            self._sample(states, key, value, sample, where, ts_ms, _received(ts_ms), out)
            return out.records()
        try:
            items = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            self.samples += 1
            return self._dead(key, value, where, f"undecodable envelope: {exc}")
        self.samples += len(items)
        received = _received(ts_ms)  # one receipt for the whole envelope
        for index, item in enumerate(items):
            origin = f"{where}#{index}"
            try:
                sample = sample_of(item)
            except _UNDECODABLE as exc:
                raw = orjson.dumps(item)
                skey = _source_key(item)
                out.dead += self._dead(skey, raw, origin, f"undecodable sample: {exc}")
                continue
            self._sample(states, sample.source.encode(), item, sample, origin, ts_ms, received, out)
        return out.records()

    def _sample(
        self,
        states: dict[str, Any],
        key: bytes,
        raw: bytes | dict[str, Any],
        sample: engine.Sample,
        origin: str,
        ts_ms: int,
        received: datetime,
        out: _Outputs,
    ) -> None:
        """Judge one sample into ``out``. ``raw``: the sample as received — a record's bytes, or
        an envelope's decoded item (serialised again only for a dead letter)."""

        def dead(reason: str) -> None:
            payload = raw if isinstance(raw, bytes) else orjson.dumps(raw)
            out.dead += self._dead(key, payload, origin, reason)

        # "far in the future or past" is judged against the record's Kafka timestamp (set when the
        # bridge produced it, ``received``), never the worker's clock, so a replay decides the
        # same way.
        if sample.forecast is not None:
            self._issue(sample, received, dead, out)
            return
        forecast = sample.kind == "forecast"
        # an AQI forecast is labelled with the future day it describes: its label may lie up to
        # FORECAST_HORIZON ahead of its receipt (its issue)
        ahead = self.max_future + (FORECAST_HORIZON if forecast else timedelta(0))
        late = self._out_of_time("time", sample.time, received, ahead)
        if late is not None:
            dead(late)
            return
        view = self.view
        ctx = view.context(sample.source)
        expected = view.expected(sample.source)
        if ctx is None and forecast:
            # AQI forecasts (the input of heavy-pollution warnings) come from the forecast
            # office of a known locality, not from a catalogued monitor
            if not view.knows_locality(sample.locality):
                dead(
                    f"{plausibility.UNKNOWN_LOCALITY}: source {sample.source!r} locality "
                    f"{sample.locality!r}: not in the catalogue (AQI forecast)"
                )
                return
            ctx = DEFAULT_CONTEXT
            expected = plausibility.forecaster(sample.source, sample.locality)
        if ctx is None:
            dead(f"unknown source {sample.source!r} (not in the catalogue)")
            return
        # the catalogue's identity of the source and the values' physical ranges
        # (rules.plausibility, docs/plausibility.md): whatever is refused here is dead-lettered
        # and touches no state, no clock and no statistic
        screened = plausibility.screen(sample, expected)
        if screened.rejections:
            for r in screened.rejections:
                dead(r.reason())
            if screened.sample is None:
                return
            sample = screened.sample
        try:
            new, points = engine.step(states.get(sample.source), sample, ctx)
        except RulesError as exc:
            dead(f"{type(exc).__name__}: {exc}")
            return
        states[sample.source] = new
        clock: dict[str, Any] | None = states.get(CLOCK_KEY)
        if clock is None:
            clock = states[CLOCK_KEY] = {"t": None, "tick": None, "seen": {}}
        if forecast:
            points = _issued(points, clock["t"])
        else:
            # the silences first: one of them may be the sample's own source, silent since its
            # previous sample (a gap in its own data), and must be offline before this sample
            # resumes it
            for loc, pts in self._observe(clock, sample, ctx, ts_ms / 1000):
                out.add(topics.AGGREGATES, loc.encode(), [point_dict(p) for p in pts])
        if points:
            # Both are keyed by locality: the locality stage (city values, warnings, alerts)
            # needs a locality's points together, and the records of one batch then merge into
            # one (streams.wire.merge_point_records) — a Faust event costs more than its points.
            locality = sample.locality.encode()
            # each point is turned into its wire dict once, for both topics
            stored: list[dict[str, Any]] = []
            forward: list[dict[str, Any]] = []
            for p in points:
                d = point_dict(p)
                if for_store(p):
                    stored.append(d)
                if for_locality(p):
                    forward.append(d)
            if stored:
                out.add(topics.EVALUATIONS, locality, stored)
            if forward:
                out.add(topics.AGGREGATES, locality, forward)

    def _out_of_time(
        self, what: str, at: datetime, received: datetime, ahead: timedelta
    ) -> str | None:
        """Why ``at`` lies too far after (``ahead``) or before (``max_past``) its receipt."""
        if at - received > ahead:
            return f"{what} {at.isoformat()} is more than {ahead} after receipt"
        if received - at > self.max_past:
            return f"{what} {at.isoformat()} is more than {self.max_past.days} days before receipt"
        return None

    def _issue(
        self,
        sample: engine.Sample,
        received: datetime,
        dead: Callable[[str], None],
        out: _Outputs,
    ) -> None:
        """An AQI forecast issue (rules/forecast.py): its time is its issue time, judged against
        its receipt like any sample; its days must lie within the issue day + 10; its locality
        must be known. It moves no clock and keeps no state: one ``forecast`` point goes to the
        store and to the locality stage (the warning step)."""
        if sample.kind != "forecast":
            dead(f"kind {sample.kind!r}: only a forecast has days")
            return
        late = self._out_of_time("issue time", sample.time, received, self.max_future)
        if late is not None:
            dead(late)
            return
        if not self.view.knows_locality(sample.locality):
            dead(
                f"{plausibility.UNKNOWN_LOCALITY}: source {sample.source!r} locality "
                f"{sample.locality!r}: not in the catalogue (AQI forecast)"
            )
            return
        issue = sample.forecast
        assert issue is not None
        try:
            check_issue(issue, sample.time)
        except RulesError as exc:
            dead(f"{type(exc).__name__}: {exc}")
            return
        point = engine.Point(
            "forecast",
            {"kind": "forecast", "locality": sample.locality, "source": sample.source},
            {
                "issuer": issue.issuer,
                "days": issue.days_json(),
                "max_aqi": max(d.expected for d in issue.days),
            },
            sample.time,
        )
        d = point_dict(point)
        locality = sample.locality.encode()
        out.add(topics.EVALUATIONS, locality, [d])
        out.add(topics.AGGREGATES, locality, [d])

    def _observe(
        self,
        clock: dict[str, Any],
        sample: engine.Sample,
        ctx: engine.SourceContext,
        received: float,
    ) -> list[tuple[str, list[engine.Point]]]:
        """Advance the partition's clock with an observation; the silence points it causes.

        The clock moves before the sample's own source is marked seen: a gap in a source's own
        data is a silence too (a source alone on its partition — few sources over 4 partitions
        — has no other data to move the clock while it is silent; its next sample does, and
        declares the gap before resuming it)."""
        t = sample.time.timestamp()
        seen: dict[str, list[Any]] = clock["seen"]
        interval = ctx.expected_interval_s or INTERVAL_S.get(sample.interval, 3600)
        silences = self._tick(clock, seen, min(t, received))
        known = seen.get(sample.source)
        if known is None or t > known[0]:
            seen[sample.source] = [t, interval, sample.locality, sample.kind]
        return silences

    def _tick(
        self, clock: dict[str, Any], seen: dict[str, list[Any]], now: float
    ) -> list[tuple[str, list[engine.Point]]]:
        """Move the partition's clock to ``now``; at each CLOCK_STEP crossing, the silence
        points of the sources overdue then."""
        if clock["t"] is not None and now <= clock["t"]:
            return []
        clock["t"] = now
        tick = int(now // CLOCK_STEP)
        if clock["tick"] is None:
            clock["tick"] = tick
            return []
        if tick <= clock["tick"]:
            return []
        clock["tick"] = tick
        at = datetime.fromtimestamp(now, tz=UTC)
        by_locality: dict[str, list[engine.Point]] = {}
        for source, (last, every, locality, kind) in sorted(seen.items()):
            silent = now - last
            if silent <= OVERDUE_INTERVALS * every or silent > SILENCE_HORIZON:
                continue
            if self.view.context(source) is None:
                continue  # no longer in the catalogue
            by_locality.setdefault(locality, []).append(
                engine.Point(
                    "silence",
                    {"kind": kind, "locality": locality, "source": source},
                    {
                        "last_seen": datetime.fromtimestamp(last, tz=UTC).isoformat(),
                        "interval_minutes": every / 60,
                        "silent_minutes": round(silent / 60, 1),
                    },
                    at,
                )
            )
        return sorted(by_locality.items())


def _issued(points: list[engine.Point], clock: float | None) -> list[engine.Point]:
    """A forecast's reading, with the partition's clock at its receipt as its issue time."""
    if clock is None:
        return points
    issued = datetime.fromtimestamp(clock, tz=UTC).isoformat()
    return [
        p._replace(fields={**p.fields, "issued": issued}) if p.measurement == "reading" else p
        for p in points
    ]


class LocalityStep:
    """``step(state, key, value, offset, timestamp_ms) -> (state, outputs)`` of one locality."""

    def __init__(
        self,
        view: CatalogView,
        rules: AlertRules | Callable[[], AlertRules],
        *,
        context: Callable[[LocalityContext], LocalityContext] | None = None,
    ) -> None:
        self.view = view
        #: the current alert rules: fixed, or read at each record (streams.alert_rules.RulesView)
        self.rules_of: Callable[[], AlertRules] = rules if callable(rules) else _fixed(rules)
        self._adjust = context
        self._contexts: dict[str, LocalityContext] = {}
        self._reloads = -1

    @property
    def rules(self) -> AlertRules:
        return self.rules_of()

    def context(self, locality: str) -> LocalityContext:
        if self._reloads != self.view.reloads:
            self._contexts.clear()
            self._reloads = self.view.reloads
        ctx = self._contexts.get(locality)
        if ctx is None:
            ctx = locality_context(self.view, locality)
            if self._adjust is not None:
                ctx = self._adjust(ctx)
            self._contexts[locality] = ctx
        return ctx

    def __call__(
        self, state: LocalityState | None, key: bytes, value: bytes, offset: int, ts_ms: int
    ) -> tuple[LocalityState | None, list[Output]]:
        def dead(
            exc: Exception, st: LocalityState | None
        ) -> tuple[LocalityState | None, list[Output]]:
            dl = DeadLetter.build(
                "locality", f"{type(exc).__name__}: {exc}", value, origin=f"aggregates@{offset}"
            )
            return st, [(topics.DEAD_LETTER, key, dl.to_bytes())]

        try:
            points = decode_points(value)
            locality = points[0]["tags"]["locality"]
        except Exception as exc:  # bad input must not stop the locality stage
            return dead(exc, state)
        rules = self.rules_of()
        st = state if state is not None else LocalityState(locality, rules)
        # a reload, or state restored under another rule set, hands the current set over once
        changed = st.apply_rules(rules) if st.engine.rules is not rules else []
        try:
            result = st.step_record(points, self.context(locality))
        except Exception as exc:
            # The points before the failing one were applied: keep that state (a replay applies
            # them the same way) and set the record aside with the reason.
            return dead(exc, st)
        transitions = changed + result.transitions if changed else result.transitions
        emitted = list(result.points) + [transition_point(t) for t in transitions]
        outputs: list[Output] = []
        for point, reason in result.rejected:
            # a command that is no valid command: set aside with the reason, the rest applies
            dl = DeadLetter.build(
                "locality", reason, orjson.dumps([point]), origin=f"aggregates@{offset}"
            )
            outputs.append((topics.DEAD_LETTER, key, dl.to_bytes()))
        if emitted:
            outputs.append((topics.EVALUATIONS, key, points_bytes(emitted)))
        outputs += [(topics.ALERT_EVENTS, key, orjson.dumps(t.to_dict())) for t in transitions]
        # what became of each person's command (alerts.commands), after its transitions
        outputs += [(topics.ALERT_COMMANDS, key, r.to_bytes()) for r in result.results]
        # the plans' progress at a day's close, for the alerts service
        outputs += [(topics.PLAN_PROGRESS, key, orjson.dumps(p)) for p in result.progress]
        return st, outputs


def _fixed(rules: AlertRules) -> Callable[[], AlertRules]:
    return lambda: rules


def with_rule_set(rule_set: Any) -> Callable[[LocalityContext], LocalityContext]:
    """A context adjustment that applies one warning rule set to every locality (backtest)."""

    def adjust(ctx: LocalityContext) -> LocalityContext:
        return replace(ctx, rule_set=rule_set)

    return adjust
