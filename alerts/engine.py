"""The alert engine (pure): rules → lifecycle → silences / maintenance / inhibition → transitions.

The engine holds configuration (rules, silences, inhibit rules) and *state*; state is plain data
(:meth:`Engine.to_dict` / :meth:`Engine.from_dict`) so a Faust table can hold it and a restarted
worker resumes pending alerts, ``for`` durations, offline timers and escalations where they were.

Time is always passed in: :meth:`process` uses the evaluation's event time, :meth:`tick` the stream's
watermark. Call ``tick`` regularly (e.g. once per batch with the newest event time seen) for offline
detection, escalation and the catch-up after a silence ended.

Offline (no data): :meth:`silence` is told, explicitly, that a source has been silent while the data
flowing with it advanced; past the offline rule's threshold (or OFFLINE_INTERVALS × the source's
interval) the source gets a BREACH stamped ``last_seen + threshold``. Only data from that source
(DATA_RESUMED) or a person resolves it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from rules.warnings import DecisionKind, Level, WarningDecision

from alerts import lifecycle
from alerts.commands import (
    KEEP_COMMAND_IDS,
    Command,
    CommandResult,
    Refusal,
    is_maintenance,
    maintenance_silence,
    source_kind,
)
from alerts.errors import StateError, UnknownAlert
from alerts.inhibition import DEFAULT_INHIBIT_RULES, InhibitRule, inhibited_by
from alerts.lifecycle import Observation, StepOutcome
from alerts.model import (
    Alert,
    AlertState,
    Reason,
    Severity,
    Suppression,
    Transition,
    TransitionKind,
    fingerprint,
    transition_id,
)
from alerts.rules import (
    ROUTING_LABELS,
    AlertRule,
    AlertRules,
    Evaluation,
    EvaluationKind,
    breaches,
    evaluate,
)
from alerts.rules import offline_observation as _offline_obs
from alerts.silences import Silence, in_maintenance, matches_all, silenced_by
from alerts.templates import LOCALITY_NAMES

#: Resolved alerts (already told) are dropped from state after this long (keeps tables small).
RETAIN_RESOLVED: Final = timedelta(days=1)

WARNING_RULE: Final[str] = "heavy_pollution_warning"
#: The ``rule`` label of an enterprise's duties under a warning (TransitionKind.DUTY).
DUTY_RULE: Final[str] = "warning_duties"

_WARNING_SEVERITY: Final[dict[Level, Severity]] = {
    Level.NONE: Severity.INFO,
    Level.YELLOW: Severity.WARNING,
    Level.ORANGE: Severity.CRITICAL,
    Level.RED: Severity.CRITICAL,
}
_WARNING_REASON: Final[dict[DecisionKind, Reason]] = {
    DecisionKind.ISSUE: Reason.WARNING_ISSUED,
    DecisionKind.UPGRADE: Reason.WARNING_UPGRADED,
    DecisionKind.DOWNGRADE: Reason.WARNING_DOWNGRADED,
    DecisionKind.LIFT: Reason.WARNING_LIFTED,
}


#: What the engine keeps of a source's detail: its routing labels (an offline alert reaches the
#: enterprise whose outlet fell silent) and its names (the offline text names it).
_SOURCE_DETAIL: Final = frozenset(
    (*ROUTING_LABELS, "source_name", "outlet_name", "enterprise_name", "locality_name")
)

#: How long after the breach a resumed source's offline alert is stamped when the sample that
#: proves it alive is older than the breach (out-of-order delivery; envwatch's choice).
RESUME_AFTER: Final = timedelta(seconds=1)

#: A silence or maintenance window a command created is dropped from state this long after it
#: ended (envwatch's choice [MEM]: the API lists recent ones; the audit is on alert-commands).
RETAIN_SILENCES: Final = timedelta(days=1)

#: A person's transition that would share its id (fingerprint, state, reason, time) with an
#: earlier one of the alert — two assignments at one data time — is stamped this much later.
COMMAND_STEP: Final = timedelta(milliseconds=1)

#: At most this many (evaluation kind, factor) keys of the engine's applicable-rules cache (it
#: starts again past it: factors come from the data).
_APPLICABLE_CACHE: Final = 1024

#: A source that reports every N minutes is offline after this many missed intervals (at least
#: the rule's own threshold). envwatch default [MEM]: no national rule (standards.md §8).
OFFLINE_INTERVALS: Final = 3


@dataclass(frozen=True, slots=True)
class SourceState:
    """What the engine knows of one source (station, section, outlet)."""

    locality: str
    last_seen: datetime
    offline: bool = False
    maintenance: bool = False  # newest sample carried HJ 212 flag M or C
    #: the source's own reporting interval (minutes), from ``Evaluation.detail["interval_minutes"]``;
    #: a source is offline only after max(rule threshold, OFFLINE_INTERVALS × its interval), so a
    #: section sampled every 4 h or a daily dustfall gauge is not "offline" after 2 h.
    interval_minutes: float | None = None
    #: routing labels of the source (enterprise, outlet, station, section) from the last
    #: evaluation: an offline alert reaches the enterprise whose outlet fell silent
    detail: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "locality": self.locality,
            "last_seen": self.last_seen.isoformat(),
            "offline": self.offline,
            "maintenance": self.maintenance,
            "interval_minutes": self.interval_minutes,
            "detail": dict(self.detail),
        }


def _warning_labels(locality: str, level: Level, source: str) -> dict[str, str]:
    return {
        "rule": WARNING_RULE,
        "source": source,
        "factor": "aqi",
        "locality": locality,
        "kind": "warning",
        "rule_kind": WARNING_RULE,
        "category": "warning",
        "level": level.value,
    }


class Engine:
    """Stateful façade over the pure parts; every method takes event time, none reads a clock."""

    def __init__(
        self,
        rules: AlertRules,
        *,
        inhibit_rules: Iterable[InhibitRule] = DEFAULT_INHIBIT_RULES,
    ) -> None:
        self.rules = rules
        self.inhibit_rules: tuple[InhibitRule, ...] = tuple(inhibit_rules)
        self.alerts: dict[str, Alert] = {}
        # (source, factor, rule_kind) → fingerprints in ``alerts``: has_alert without a scan
        self._by_subject: dict[tuple[str, str, str, str], set[str]] = {}
        # source label → its fingerprints in ``alerts``, in the order of ``alerts`` (a dict as an
        # ordered set): tick(source=…) visits that source's alerts, not every alert
        self._by_source: dict[str, dict[str, None]] = {}
        # (evaluation kind, factor) → the rules of ``_applicable_of`` of that kind whose factors
        # admit the factor, with their kind's value: process() skips the rules that cannot apply
        self._applicable: dict[tuple[str, str], tuple[tuple[AlertRule, str], ...]] = {}
        self._applicable_of: AlertRules | None = None
        self.sources: dict[str, SourceState] = {}
        self.runs: dict[str, tuple[float, int]] = {}  # "source|factor" → (last value, run length)
        self.warnings: dict[str, Level] = {}  # locality → level in force
        self._inhibitors: dict[str, Mapping[str, str]] = {}
        #: silences and maintenance windows people created by command (checkpointed state), by id
        self.held_silences: dict[str, Silence] = {}
        #: ids of the newest KEEP_COMMAND_IDS commands applied or refused (idempotency)
        self.command_ids: dict[str, None] = {}
        self._all_silences: tuple[Silence, ...] = ()

    # ------------------------------------------------------------ configuration (hot reload)

    def _silences_changed(self) -> None:
        self._all_silences = tuple(self.held_silences.values())

    def all_silences(self) -> tuple[Silence, ...]:
        """Every silence and maintenance window in force or to come (people's commands)."""
        return self._all_silences

    def set_rules(self, rules: AlertRules, now: datetime) -> list[Transition]:
        """Swap the rule set; alerts of rules that no longer exist are closed (RULE_REMOVED)."""
        self.rules = rules
        out: list[Transition] = []
        for fp, alert in list(self.alerts.items()):
            if alert.labels.get("rule") in rules.by_id:
                continue
            _, ts = lifecycle.close(alert, now, Reason.RULE_REMOVED)
            out.extend(ts)
            self._drop(fp)
        return out

    def close_kind(self, kind: str, at: datetime, reason: Reason) -> list[Transition]:
        """Resolve every alert of the rule kind ``kind`` for ``reason`` — a condition that no
        longer applies (the warning-compliance alerts when the warning is lifted: nothing is
        required any more), not an observation of the subject."""
        out: list[Transition] = []
        for fp, alert in list(self.alerts.items()):
            if alert.labels.get("rule_kind") != kind:
                continue
            _, ts = lifecycle.close(alert, at, reason)
            out.extend(ts)
            self._drop(fp)
        return out

    # ------------------------------------------------------------ suppression

    def _is_inhibitor(self, labels: Mapping[str, str]) -> bool:
        return any(matches_all(r.source_matchers, labels) for r in self.inhibit_rules)

    def _suppression(
        self, labels: Mapping[str, str], fp: str, now: datetime
    ) -> tuple[tuple[Suppression, ...], tuple[str, ...]]:
        kinds: list[Suppression] = []
        by: list[str] = []
        if self._all_silences:
            ids = silenced_by(self._all_silences, labels, now)
            if ids:
                maint = [
                    i
                    for i in ids
                    if i in self.held_silences and is_maintenance(self.held_silences[i])
                ]
                if len(maint) < len(ids):
                    kinds.append(Suppression.SILENCED)
                if maint:
                    kinds.append(Suppression.MAINTENANCE)
                by.extend(ids)
        src = self.sources.get(labels.get("source", ""))
        if (
            src is not None
            and src.maintenance
            and labels.get("kind") != "warning"
            and Suppression.MAINTENANCE not in kinds
        ):
            kinds.append(Suppression.MAINTENANCE)
        if self._inhibitors:
            fps = inhibited_by(self.inhibit_rules, labels, fp, self._inhibitors.items())
            if fps:
                kinds.append(Suppression.INHIBITED)
                by.extend(fps)
        return tuple(kinds), tuple(by)

    @staticmethod
    def _subject(labels: Mapping[str, str]) -> tuple[str, str, str, str]:
        return (
            labels.get("source", ""),
            labels.get("factor", ""),
            labels.get("rule_kind", ""),
            labels.get("period", ""),
        )

    def has_alert(self, source: str, factor: str, rule_kind: str, period: str = "") -> bool:
        """Whether an alert (in any state still held) exists for this source, factor, kind of
        rule and averaging period — an index lookup, not a scan over every alert."""
        return bool(self._by_subject.get((source, factor, rule_kind, period)))

    def _drop(self, fp: str) -> None:
        alert = self.alerts.pop(fp)
        subject = self._subject(alert.labels)
        fps = self._by_subject.get(subject)
        if fps is not None:
            fps.discard(fp)
            if not fps:
                del self._by_subject[subject]
        self._unindex_source(alert.labels.get("source", ""), fp)
        self._inhibitors.pop(fp, None)

    def _unindex_source(self, source: str, fp: str) -> None:
        of_source = self._by_source.get(source)
        if of_source is not None:
            of_source.pop(fp, None)
            if not of_source:
                del self._by_source[source]

    def _store(self, alert: Alert | None) -> None:
        if alert is None:
            return
        fp = alert.fingerprint
        held = self.alerts.get(fp)
        self.alerts[fp] = alert
        self._by_subject.setdefault(self._subject(alert.labels), set()).add(fp)
        source = alert.labels.get("source", "")
        if held is None:  # a new key: last in ``alerts``, so last of its source
            self._by_source.setdefault(source, {})[fp] = None
        elif (was := held.labels.get("source", "")) != source:
            # never seen (the source is part of the identity): keep the index in step anyway,
            # in the order of ``alerts``, where the fingerprint kept its place
            self._unindex_source(was, fp)
            self._by_source[source] = {
                f: None for f, a in self.alerts.items() if a.labels.get("source", "") == source
            }
        if alert.state is AlertState.FIRING and self._is_inhibitor(alert.labels):
            self._inhibitors[fp] = alert.labels
        else:
            self._inhibitors.pop(fp, None)

    def _apply(self, rule: AlertRule, obs: Observation, now: datetime) -> tuple[Transition, ...]:
        fp = obs.fingerprint
        sup, by = self._suppression(obs.labels, fp, now)
        result = lifecycle.step(
            self.alerts.get(fp), obs, now, rule.policy, suppressed=sup, suppressed_by=by
        )
        if result.outcome is not StepOutcome.NO_ALERT:
            self._store(result.alert)
        return result.transitions

    # ------------------------------------------------------------ input

    def process(self, ev: Evaluation, now: datetime | None = None) -> list[Transition]:
        """Evaluate every applicable rule on one evaluation; return the transitions it caused."""
        now = ev.time if now is None or now < ev.time else now
        out: list[Transition] = []
        src = self.sources.get(ev.source)
        maintenance = bool(ev.flags) and in_maintenance(ev.flags)
        if (
            src is not None
            and ev.time == src.last_seen
            and not src.offline
            and src.maintenance == maintenance
        ):
            pass  # another evaluation of the newest sample: the source's state is unchanged
        elif src is None or ev.time >= src.last_seen:
            was_offline = src is not None and src.offline
            interval = ev.detail.get("interval_minutes") if ev.detail else None
            self.sources[ev.source] = SourceState(
                locality=ev.locality,
                last_seen=ev.time,
                offline=False,
                maintenance=maintenance,
                interval_minutes=float(interval) if interval else None,
                detail={k: v for k, v in (ev.detail or {}).items() if k in _SOURCE_DETAIL},
            )
            if was_offline:
                for rule in self.rules.offline_rules:
                    if rule.applies_to_source(ev.locality, ev.source):
                        obs = _offline_obs(
                            rule,
                            ev.locality,
                            ev.source,
                            ev.time,
                            breach=False,
                            detail=self.sources[ev.source].detail,
                        )
                        # A sample that arrives after the source was declared silent resolves
                        # the alert whatever its own time: stamped after the breach (an older
                        # or equal stamp would be a "late" or "duplicate" observation and change
                        # nothing) — one second after it when the sample itself is older.
                        held = self.alerts.get(obs.fingerprint)
                        if (
                            held is not None
                            and held.last_at is not None
                            and held.last_at >= ev.time
                        ):
                            obs = replace(obs, at=held.last_at + RESUME_AFTER)
                        out.extend(self._apply(rule, obs, max(now, obs.at)))
        run_length = 0
        if ev.kind == EvaluationKind.SAMPLE and ev.value is not None:
            key = f"{ev.source}|{ev.factor}"
            last = self.runs.get(key)
            run_length = last[1] + 1 if last is not None and last[0] == ev.value else 1
            self.runs[key] = (ev.value, run_length)
        period = ev.detail.get("period", "") if ev.detail else ""
        held_for = self._by_subject.get  # has_alert, without a call per rule
        applicable = (
            self._applicable.get((ev.kind, ev.factor))
            if self.rules is self._applicable_of
            else None
        )
        if applicable is None:
            applicable = self._applicable_rules(ev.kind, ev.factor)
        for rule, kind in applicable:
            if not held_for((ev.source, ev.factor, kind, period)) and not breaches(
                rule, ev, run_length=run_length
            ):
                continue  # no alert to update and none to open (the common case, by far)
            verdict = evaluate(rule, ev, run_length=run_length)
            if verdict is not None:
                out.extend(self._apply(rule, verdict, now))
        return out

    def _applicable_rules(self, kind: str, factor: str) -> tuple[tuple[AlertRule, str], ...]:
        """The rules of evaluation kind ``kind`` whose factors admit ``factor`` (in rule order),
        each with its kind's value — the others neither breach nor evaluate to anything
        (:meth:`AlertRule.applies`), held alert or not. Cached per rule set (``rules`` may be
        assigned directly) and per (kind, factor)."""
        rules = self.rules
        if rules is not self._applicable_of or len(self._applicable) >= _APPLICABLE_CACHE:
            self._applicable = {}
            self._applicable_of = rules
        key = (kind, factor)
        found = self._applicable.get(key)
        if found is None:
            found = self._applicable[key] = tuple(
                (r, r.kind.value)
                for r in rules.by_evaluation_kind.get(kind, ())
                if not r.factors or factor in r.factors
            )
        return found

    def silence(
        self,
        locality: str,
        source: str,
        last_seen: datetime,
        now: datetime,
        *,
        interval_minutes: float | None = None,
        detail: Mapping[str, str] | None = None,
    ) -> list[Transition]:
        """An explicit observation that ``source`` has sent nothing since ``last_seen`` while the
        data flowing with it reached ``now`` (the clock of its partition of the input, decided
        by the evaluate stage, so a lagging partition or locality cannot make a source look
        silent). The source is offline once silent for more than max(the offline rule's
        threshold, OFFLINE_INTERVALS × its reporting interval); the breach is stamped
        ``last_seen + that threshold``. Data from the source resolves it (:meth:`process`)."""
        src = self.sources.get(source)
        if src is None:
            src = SourceState(
                locality=locality,
                last_seen=last_seen,
                interval_minutes=interval_minutes,
                detail={k: v for k, v in (detail or {}).items() if k in _SOURCE_DETAIL},
            )
            self.sources[source] = src
        if src.offline:
            return []
        seen = max(src.last_seen, last_seen)
        interval = interval_minutes or src.interval_minutes
        out: list[Transition] = []
        for rule in self.rules.offline_rules:
            if not rule.applies_to_source(src.locality, source):
                continue
            silent = timedelta(minutes=rule.silent_after_minutes or 0)
            if interval:
                silent = max(silent, timedelta(minutes=interval * OFFLINE_INTERVALS))
            if now - seen <= silent:
                continue
            src = self.sources[source] = replace(
                src, last_seen=seen, offline=True, maintenance=False
            )
            obs = _offline_obs(
                rule,
                src.locality,
                source,
                seen + silent,
                breach=True,
                detail=src.detail,
                silent_minutes=silent.total_seconds() / 60,
                last_seen=seen,
            )
            out.extend(self._apply(rule, obs, max(now, obs.at)))
        return out

    def tick(
        self,
        now: datetime,
        *,
        clocks: Mapping[str, datetime] | None = None,
        source: str | None = None,
    ) -> list[Transition]:
        """Advance event time: escalation, catch-up after suppression, retention.

        ``clocks``: the event time each source's own data reached (its observations and silence
        statements, which arrive in order from its partition of the input). An alert of a
        source with a clock is judged at ``min(now, its clock)``, never at a ``now`` that other
        sources' data pushed ahead: a source whose partition lags behind after a backlog or a
        rebalance is not escalated for a time its own data has not reached (its next
        observation may clear the alert at that very time). ``source``: tick only that
        source's alerts (its clock advanced while ``now`` did not)."""
        out: list[Transition] = []
        if self.held_silences and source is None:
            old = [
                sid
                for sid, s in self.held_silences.items()
                if s.ends_at is not None and now - s.ends_at > RETAIN_SILENCES
            ]
            for sid in old:
                del self.held_silences[sid]
            if old:
                self._silences_changed()
        if source is None:
            todo = list(self.alerts.items())
        else:
            # only that source's alerts, in the order of ``alerts`` (the index keeps it)
            alerts = self.alerts
            todo = [(fp, alerts[fp]) for fp in self._by_source.get(source, ())]
        for fp, alert in todo:
            of = alert.labels.get("source", "")
            at = now
            if clocks is not None:
                clock = clocks.get(of)
                if clock is not None and clock < at:
                    at = clock
            if alert.state is AlertState.RESOLVED and alert.notified_state is not AlertState.FIRING:
                if alert.resolved_at is not None and now - alert.resolved_at > RETAIN_RESOLVED:
                    self._drop(fp)
                continue
            alert_rule = self.rules.by_id.get(alert.labels.get("rule", ""))
            if alert_rule is None:
                continue
            sup, by = self._suppression(alert.labels, fp, at)
            new, ts = lifecycle.tick(alert, at, alert_rule.policy, suppressed=sup, suppressed_by=by)
            if ts:
                self._store(new)
                out.extend(ts)
        return out

    # ------------------------------------------------------------ people

    def _get(self, fp: str, action: str) -> Alert:
        alert = self.alerts.get(fp)
        if alert is None:
            raise UnknownAlert(fp, action)
        return alert

    def acknowledge(
        self, fp: str, who: str, at: datetime, note: str | None = None
    ) -> list[Transition]:
        alert = self._get(fp, "acknowledge")
        sup, by = self._suppression(alert.labels, fp, at)
        new, ts = lifecycle.acknowledge(alert, who, at, note, suppressed=sup, suppressed_by=by)
        self._store(new)
        return list(ts)

    def assign(
        self, fp: str, assignee: str, by: str, at: datetime, note: str | None = None
    ) -> list[Transition]:
        alert = self._get(fp, "assign")
        sup, sby = self._suppression(alert.labels, fp, at)
        new, ts = lifecycle.assign(alert, assignee, by, at, note, suppressed=sup, suppressed_by=sby)
        self._store(new)
        return list(ts)

    def resolve(self, fp: str, who: str, at: datetime, note: str | None = None) -> list[Transition]:
        alert = self._get(fp, "resolve")
        sup, by = self._suppression(alert.labels, fp, at)
        new, ts = lifecycle.resolve(alert, who, at, note, suppressed=sup, suppressed_by=by)
        self._store(new)
        return list(ts)

    def unacknowledge(
        self, fp: str, who: str, at: datetime, note: str | None = None
    ) -> list[Transition]:
        alert = self._get(fp, "unacknowledge")
        sup, by = self._suppression(alert.labels, fp, at)
        new, ts = lifecycle.unacknowledge(alert, who, at, note, suppressed=sup, suppressed_by=by)
        self._store(new)
        return list(ts)

    def unassign(self, fp: str, by: str, at: datetime, note: str | None = None) -> list[Transition]:
        alert = self._get(fp, "unassign")
        sup, sby = self._suppression(alert.labels, fp, at)
        new, ts = lifecycle.unassign(alert, by, at, note, suppressed=sup, suppressed_by=sby)
        self._store(new)
        return list(ts)

    # ------------------------------------------------------------ people's commands

    def command(
        self,
        cmd: Command,
        *,
        locality: str,
        now: datetime | None,
        clocks: Mapping[str, datetime] | None = None,
        sources: Mapping[str, Mapping[str, str]] | None = None,
    ) -> tuple[CommandResult | None, list[Transition]]:
        """Apply or refuse one person's command (alerts.commands) of ``locality``.

        ``now``: the locality's watermark (None before any data); ``clocks``: each source's own
        clock; ``sources``: the locality's catalogued sources and their detail (routing labels),
        for maintenance windows — without it, the sources the engine has seen. The command takes
        effect at the alert's source clock, else ``now``, else its ``issued_at``; never before
        the alert's newest transition. A command id already applied or refused is a no-op:
        ``(None, [])``."""
        if not self.remember_command(cmd.id):
            return None, []
        base = now if now is not None else cmd.issued_at
        if cmd.locality != locality:
            return self._refused(cmd, base, Refusal.WRONG_LOCALITY, f"stage of {locality}"), []
        if cmd.fingerprint is not None and cmd.action in _ALERT_COMMANDS:
            return self._alert_command(cmd, base, clocks or {})
        known = sources if sources is not None else {s: v.detail for s, v in self.sources.items()}
        if cmd.action == "silence":
            return self._silence_command(cmd, base)
        if cmd.action == "unsilence":
            return self._unsilence_command(cmd, base, now, clocks, known)
        if cmd.action == "maintenance_start":
            return self._maintenance_start(cmd, base, known)
        return self._maintenance_end(cmd, base, now, clocks, known)

    def remember_command(self, command_id: str) -> bool:
        """Note a command id for idempotency; False when it was applied or refused before."""
        if command_id in self.command_ids:
            return False
        self.command_ids[command_id] = None
        while len(self.command_ids) > KEEP_COMMAND_IDS:
            del self.command_ids[next(iter(self.command_ids))]
        return True

    def refused(
        self, cmd: Command, at: datetime, reason: Refusal, detail: str = ""
    ) -> CommandResult:
        """The result of a command refused outside the engine (the locality's own commands)."""
        return self._refused(cmd, at, reason, detail)

    def applied(
        self, cmd: Command, at: datetime, transitions: Iterable[Transition] = ()
    ) -> CommandResult:
        """The result of a command applied outside the engine (the locality's own commands)."""
        return self._applied(cmd, at, transitions)

    def _refused(
        self, cmd: Command, at: datetime, reason: Refusal, detail: str = ""
    ) -> CommandResult:
        return CommandResult(
            command=cmd,
            status="refused",
            reason=reason,
            detail=detail,
            at=at,
            silences=self.all_silences(),
        )

    def _applied(
        self, cmd: Command, at: datetime, transitions: Iterable[Transition] = ()
    ) -> CommandResult:
        return CommandResult(
            command=cmd,
            status="applied",
            at=at,
            transitions=tuple(t.id for t in transitions),
            silences=self.all_silences(),
        )

    def _alert_command(
        self, cmd: Command, base: datetime, clocks: Mapping[str, datetime]
    ) -> tuple[CommandResult, list[Transition]]:
        fp = cmd.fingerprint or ""
        alert = self.alerts.get(fp)
        if alert is None:
            return self._refused(cmd, base, Refusal.UNKNOWN_ALERT, f"no alert {fp}"), []
        at = clocks.get(alert.source, base)
        newest = _newest(alert)
        if newest is not None and newest > at:
            at = newest
        if cmd.role == "enterprise" and alert.labels.get("enterprise") != cmd.enterprise:
            return self._refused(cmd, at, Refusal.OTHER_ENTERPRISE), []
        state, reason = _COMMAND_TRANSITION[cmd.action]
        refusal = _alert_refusal(cmd, alert, self.rules)
        if refusal is not None:
            return self._refused(cmd, at, *refusal), []
        at = _free_at(alert, state or alert.state, reason, at)
        note = cmd.note or None
        if cmd.action == "ack":
            ts = self.acknowledge(fp, cmd.actor, at, note)
        elif cmd.action == "unack":
            ts = self.unacknowledge(fp, cmd.actor, at, note)
        elif cmd.action == "assign":
            ts = self.assign(fp, cmd.assignee or "", cmd.actor, at, note)
        elif cmd.action == "unassign":
            ts = self.unassign(fp, cmd.actor, at, note)
        else:
            ts = self.resolve(fp, cmd.actor, at, note)
        return self._applied(cmd, at, ts), ts

    def _silence_command(
        self, cmd: Command, at: datetime
    ) -> tuple[CommandResult, list[Transition]]:
        s = cmd.silence
        assert s is not None  # validated by Command
        if is_maintenance(s):
            return self._refused(cmd, at, Refusal.RESERVED_ID, "a maintenance window's id"), []
        if s.id in self.held_silences:
            return self._refused(cmd, at, Refusal.SILENCE_EXISTS, s.id), []
        if cmd.role == "enterprise" and not _own_silence(s, cmd.enterprise):
            return self._refused(
                cmd, at, Refusal.OTHER_ENTERPRISE, f"needs the matcher enterprise={cmd.enterprise}"
            ), []
        self.held_silences[s.id] = s
        self._silences_changed()
        return self._applied(cmd, at), []

    def _expire(
        self,
        sids: Iterable[str],
        at: datetime,
        now: datetime | None,
        clocks: Mapping[str, datetime] | None,
    ) -> list[Transition]:
        """End silences at ``at`` (one that has not begun is dropped), then catch up."""
        for sid in sids:
            s = self.held_silences[sid]
            if s.starts_at >= at:
                del self.held_silences[sid]
            else:
                self.held_silences[sid] = s.model_copy(update={"ends_at": at})
        self._silences_changed()
        # what the silence hid is told now (Reason.SUPPRESSION_ENDED): each alert at its own
        # source's clock, so one whose data lags is caught up when its clock passes ``at``
        return self.tick(now if now is not None else at, clocks=clocks)

    def _unsilence_command(
        self,
        cmd: Command,
        at: datetime,
        now: datetime | None,
        clocks: Mapping[str, datetime] | None,
        known: Mapping[str, Mapping[str, str]],
    ) -> tuple[CommandResult, list[Transition]]:
        sid = cmd.silence_id or ""
        s = self.held_silences.get(sid)
        if s is None:
            return self._refused(cmd, at, Refusal.UNKNOWN_SILENCE, sid), []
        if cmd.role == "enterprise" and not (
            _own_silence(s, cmd.enterprise) or _own_window(s, cmd.enterprise, known)
        ):
            return self._refused(cmd, at, Refusal.OTHER_ENTERPRISE, sid), []
        if s.ends_at is not None and s.ends_at <= at:
            return self._refused(cmd, at, Refusal.SILENCE_ENDED, s.ends_at.isoformat()), []
        ts = self._expire([sid], at, now, clocks)
        return self._applied(cmd, at, ts), ts

    def _maintenance_start(
        self, cmd: Command, at: datetime, known: Mapping[str, Mapping[str, str]]
    ) -> tuple[CommandResult, list[Transition]]:
        source = cmd.source or ""
        detail = known.get(source)
        if detail is None:
            return self._refused(cmd, at, Refusal.UNKNOWN_SOURCE, source), []
        if source_kind(detail) not in ("outlet", "monitor"):
            return self._refused(
                cmd, at, Refusal.NOT_OUTLET_OR_MONITOR, f"{source} is a {source_kind(detail)}"
            ), []
        if cmd.role == "enterprise" and detail.get("enterprise") != cmd.enterprise:
            return self._refused(cmd, at, Refusal.OTHER_ENTERPRISE, source), []
        starts = cmd.starts_at if cmd.starts_at is not None else at
        if cmd.ends_at is None or cmd.ends_at <= starts:
            return self._refused(cmd, at, Refusal.WINDOW_ENDED, f"ends before {starts}"), []
        window = maintenance_silence(cmd, at)
        if window.id in self.held_silences:
            return self._refused(cmd, at, Refusal.SILENCE_EXISTS, window.id), []
        self.held_silences[window.id] = window
        self._silences_changed()
        return self._applied(cmd, at), []

    def _maintenance_end(
        self,
        cmd: Command,
        at: datetime,
        now: datetime | None,
        clocks: Mapping[str, datetime] | None,
        known: Mapping[str, Mapping[str, str]],
    ) -> tuple[CommandResult, list[Transition]]:
        if cmd.silence_id is not None:
            s = self.held_silences.get(cmd.silence_id)
            if (
                s is None
                or not is_maintenance(s)
                or (cmd.source is not None and _window_source(s) != cmd.source)
            ):
                return self._refused(cmd, at, Refusal.UNKNOWN_SILENCE, cmd.silence_id), []
            windows = [s]
        else:
            windows = [
                s
                for s in self.held_silences.values()
                if is_maintenance(s) and _window_source(s) == cmd.source
            ]
        if cmd.role == "enterprise" and not all(
            _own_window(s, cmd.enterprise, known) for s in windows
        ):
            return self._refused(cmd, at, Refusal.OTHER_ENTERPRISE), []
        live = [s.id for s in windows if s.ends_at is None or s.ends_at > at]
        if not live:
            if not windows:
                return self._refused(cmd, at, Refusal.UNKNOWN_SILENCE, cmd.source or ""), []
            return self._refused(cmd, at, Refusal.SILENCE_ENDED), []
        ts = self._expire(live, at, now, clocks)
        return self._applied(cmd, at, ts), ts

    # ------------------------------------------------------------ heavy-pollution warnings

    def apply_warning(self, decision: WarningDecision) -> list[Transition]:
        """Turn a warning decision into a ``kind=warning`` transition and update inhibition.

        HOLD produces nothing. Warnings are never silenced: they are emergencies."""
        if decision.kind is DecisionKind.HOLD:
            return []
        locality = decision.locality
        identity = _warning_labels(locality, decision.level, locality)
        fp = fingerprint(identity)
        lifted = decision.kind is DecisionKind.LIFT
        state = AlertState.RESOLVED if lifted else AlertState.FIRING
        previous = AlertState.FIRING if decision.previous_level is not Level.NONE else None
        reason = _WARNING_REASON[decision.kind]
        zh, en = LOCALITY_NAMES.get(locality, (locality, locality))
        annotations = {
            "summary": f"{zh} 重污染天气{decision.level.label_zh}"
            if not lifted
            else f"{zh} 解除重污染天气预警",
            "summary_en": f"{en}: heavy-pollution warning {decision.level.value}"
            if not lifted
            else f"{en}: heavy-pollution warning lifted",
            "rule_set": decision.rule_set_id,
            "decision_reason": decision.reason.value,
        }
        if decision.trigger is not None:
            annotations["trigger_json"] = json.dumps(
                decision.trigger.to_dict(), ensure_ascii=False, sort_keys=True
            )
        if decision.lead_hours is not None:
            annotations["lead_hours"] = repr(decision.lead_hours)
        t = Transition(
            id=transition_id(fp, state, reason, decision.at),
            kind=TransitionKind.WARNING,
            fingerprint=fp,
            labels=identity,
            annotations=annotations,
            state=state,
            previous_state=previous,
            reason=reason,
            at=decision.at,
            severity=_WARNING_SEVERITY[decision.level]
            if not lifted
            else _WARNING_SEVERITY[decision.previous_level],
            locality=locality,
            source=locality,
            level=decision.level.value,
        )
        self.warnings[locality] = decision.level
        if lifted:
            self._inhibitors.pop(fp, None)
            self.warnings.pop(locality, None)
        elif self._is_inhibitor(identity):
            self._inhibitors[fp] = identity
        else:
            self._inhibitors.pop(fp, None)
        return [t, *self._duties(decision, t)]

    def _duties(self, decision: WarningDecision, warning: Transition) -> list[Transition]:
        """Every enterprise of the locality is told its own duties for the new level (its
        grade, its 一厂一策 measures and the cuts its list requires), or that they end: one
        ``warning_duty`` transition per enterprise, labelled with its id so that only its own
        route matches (alerts/routing.py)."""
        trigger = decision.trigger
        if trigger is None:
            return []
        lifted = decision.kind is DecisionKind.LIFT
        out: list[Transition] = []
        for ent in trigger.enterprises:
            labels = {
                "rule": DUTY_RULE,
                "kind": TransitionKind.DUTY.value,
                "locality": decision.locality,
                "source": ent.enterprise_id,
                "enterprise": ent.enterprise_id,
                "category": "warning",
            }
            fp = fingerprint(labels)
            duty = {
                **ent.to_dict(),
                "locality": decision.locality,
                "level": decision.level.value,
                "previous_level": decision.previous_level.value,
                "rule_set": decision.rule_set_id,
                "at": warning.at.astimezone(UTC).isoformat(),
            }
            state = AlertState.RESOLVED if lifted else AlertState.FIRING
            out.append(
                Transition(
                    id=transition_id(fp, state, warning.reason, decision.at),
                    kind=TransitionKind.DUTY,
                    fingerprint=fp,
                    labels=labels,
                    annotations={
                        "summary": warning.annotations["summary"],
                        "summary_en": warning.annotations["summary_en"],
                        "enterprise_name": ent.name,
                        "warning_id": warning.id,
                        "duty_json": json.dumps(duty, ensure_ascii=False, sort_keys=True),
                    },
                    state=state,
                    previous_state=warning.previous_state,
                    reason=warning.reason,
                    at=decision.at,
                    severity=warning.severity,
                    locality=decision.locality,
                    source=ent.enterprise_id,
                    level=decision.level.value,
                )
            )
        return out

    # ------------------------------------------------------------ state

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "alerts": {fp: a.to_dict() for fp, a in self.alerts.items()},
            "sources": {s: v.to_dict() for s, v in self.sources.items()},
            "runs": {k: [v, n] for k, (v, n) in self.runs.items()},
            "warnings": {loc: lv.value for loc, lv in self.warnings.items()},
            "silences": [s.model_dump(mode="json") for s in self.held_silences.values()],
            "commands": list(self.command_ids),
        }

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        rules: AlertRules,
        *,
        inhibit_rules: Iterable[InhibitRule] = DEFAULT_INHIBIT_RULES,
    ) -> Engine:
        if data.get("version") != 1:
            raise StateError("version", f"unsupported state version {data.get('version')!r}")
        eng = cls(rules, inhibit_rules=inhibit_rules)
        try:
            for fp, raw in dict(data.get("alerts") or {}).items():
                alert = Alert.from_dict(raw)
                if alert.fingerprint != fp:
                    raise StateError(f"alerts.{fp}", "key does not match the fingerprint")
                eng._store(alert)
            for source, raw in dict(data.get("sources") or {}).items():
                eng.sources[source] = SourceState(
                    locality=str(raw["locality"]),
                    last_seen=datetime.fromisoformat(raw["last_seen"]),
                    offline=bool(raw.get("offline", False)),
                    maintenance=bool(raw.get("maintenance", False)),
                    interval_minutes=raw.get("interval_minutes"),
                    detail={str(k): str(v) for k, v in dict(raw.get("detail") or {}).items()},
                )
            for key, (value, n) in dict(data.get("runs") or {}).items():
                eng.runs[key] = (float(value), int(n))
            for loc, lv in dict(data.get("warnings") or {}).items():
                level = Level(lv)
                eng.warnings[loc] = level
                labels = _warning_labels(loc, level, loc)
                if eng._is_inhibitor(labels):
                    eng._inhibitors[fingerprint(labels)] = labels
            # state written before issue 14 has neither
            for raw in data.get("silences") or ():
                held = Silence.model_validate(raw)
                eng.held_silences[held.id] = held
            eng._silences_changed()
            eng.command_ids = {str(c): None for c in data.get("commands") or ()}
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError("engine", str(exc)) from exc
        return eng


# ---------------------------------------------------------------- commands (helpers)

_ALERT_COMMANDS: Final = frozenset({"ack", "unack", "assign", "unassign", "resolve"})

#: The transition each alert command emits: (state, None = the alert's own), reason.
_COMMAND_TRANSITION: Final[dict[str, tuple[AlertState | None, Reason]]] = {
    "ack": (AlertState.FIRING, Reason.ACKNOWLEDGED),
    "unack": (AlertState.FIRING, Reason.UNACKNOWLEDGED),
    "assign": (None, Reason.ASSIGNED),
    "unassign": (None, Reason.UNASSIGNED),
    "resolve": (AlertState.RESOLVED, Reason.MANUALLY_RESOLVED),
}


def _alert_refusal(cmd: Command, alert: Alert, rules: AlertRules) -> tuple[Refusal, str] | None:
    state = alert.state
    if cmd.action in ("ack", "unack") and state is not AlertState.FIRING:
        return Refusal.NOT_FIRING, f"alert is {state.value}"
    if cmd.action == "unack" and alert.acked_at is None:
        return Refusal.NOT_ACKNOWLEDGED, ""
    if cmd.action in ("assign", "unassign", "resolve") and state is AlertState.RESOLVED:
        return Refusal.ALERT_RESOLVED, ""
    if cmd.action == "unassign" and alert.assignee is None:
        return Refusal.NOT_ASSIGNED, ""
    if cmd.action == "resolve":
        rule = rules.by_id.get(alert.labels.get("rule", ""))
        if rule is None or not rule.manual_resolve:
            return Refusal.MANUAL_RESOLVE_NOT_ALLOWED, f"rule {alert.labels.get('rule', '')}"
    return None


def _newest(alert: Alert) -> datetime | None:
    """The newest time anything happened to the alert (its newest transition)."""
    times = [
        t
        for t in (
            alert.history[-1].at if alert.history else None,
            alert.fired_at,
            alert.resolved_at,
            alert.acked_at,
            alert.assigned_at,
        )
        if t is not None
    ]
    return max(times) if times else None


def _free_at(alert: Alert, state: AlertState, reason: Reason, at: datetime) -> datetime:
    """``at``, or a little later if the alert already had a transition with this id."""
    taken = {h.transition_id for h in alert.history}
    while transition_id(alert.fingerprint, state, reason, at) in taken:
        at += COMMAND_STEP
    return at


def _own_silence(s: Silence, enterprise: str | None) -> bool:
    """A silence an enterprise principal may hold: it matches only its own enterprise."""
    return enterprise is not None and any(
        m.name == "enterprise" and m.op.value == "=" and m.value == enterprise for m in s.matchers
    )


def _window_source(s: Silence) -> str | None:
    return next((m.value for m in s.matchers if m.name == "source"), None)


def _own_window(s: Silence, enterprise: str | None, known: Mapping[str, Mapping[str, str]]) -> bool:
    """A maintenance window of a source of ``enterprise``."""
    source = _window_source(s)
    return (
        is_maintenance(s)
        and source is not None
        and enterprise is not None
        and known.get(source, {}).get("enterprise") == enterprise
    )
