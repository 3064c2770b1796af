"""Grouping and escalation chains of the notify stage (pure: no clock, no I/O).

**Grouping** follows Alertmanager's timers (peers.md §1.1; :class:`alerts.routing.GroupTiming`)
but runs on **event time** — the transitions' ``at`` — never on the wall clock, so a replay, a
backlog or a restarted worker forms the same groups and builds the same notification ids:

* every notify-worthy alert transition is added, for each receiver the route tree selects, to
  the group ``group_key(receiver, route.group_by, labels)``;
* a new group is *due* ``group_wait`` after its first transition; once it was notified, news is
  due at the next tick ``last + k · group_interval`` (k ≥ 1) not before the news; an unchanged
  group with firing alerts is due again ``repeat_interval`` after its last notification;
* a group of locality ``L`` is flushed at its due time ``D`` when the event clock of ``L`` (the
  latest ``at`` seen of that locality: one locality's transitions arrive in order, on one
  partition of ``alert-events``) reaches ``D`` — or, when no further transition of ``L`` arrives,
  by :meth:`Grouper.flush` called from the worker's timer (``streams/agents/notify.py``), which
  flushes at ``D`` as well, so the notification is the same either way;
* a flush with exactly one transition to tell sends that transition's own notification
  (:func:`alerts.notification.build_notification`: the id it had before grouping existed);
  with more, one grouped notification (:func:`grouped_notification`) whose id hashes the group
  key, ``D`` and the transitions it tells of; a group whose alerts all resolved before its first
  notification notifies nobody (as Alertmanager: nobody was told they fired).

Not grouped, sent at once (they are emergencies or go to other people):

* warnings (``kind=warning``: heavy-pollution warning triggers) and envwatch's own operator alerts
  (locality / rule ``pipeline``);
* escalations: an ``escalated`` transition (reason ``escalated``, note ``level n``,
  ``alerts/lifecycle.py``) goes to the receiver ``<kind>-<locality>`` of the ``n``-th entry of the
  rule's escalation chain (:func:`escalation_receiver`; entry 0 is the first line, told of the
  firing through the route tree), *not* to the original receivers; an enterprise never receives
  an escalation.

The group state is plain JSON (``dict``) so the worker checkpoints it with
``streams.state.CheckpointedState``; keys ``clock/<locality>`` and ``group/<group key>``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from alerts.model import Reason, Severity, Transition, TransitionKind
from alerts.notification import (
    RESOLVED_STATES,
    Notification,
    NotificationKind,
    NotificationStatus,
    Texts,
    build_notification,
)
from alerts.routing import ENTERPRISE_LABEL, LOCALITY_LABEL, GroupTiming, RouteTree, group_key

#: the pseudo-locality / rule of envwatch's own alerts (alerts/pipeline.py); never delayed
PIPELINE: Final = "pipeline"
#: the escalation chain of a rule that names none: the locality's duty officer is reminded, the
#: enterprise is not — envwatch's choice [MEM] (a chain naming receivers the catalogue lacks
#: would hold every escalation)
DEFAULT_CHAIN: Final[tuple[str, ...]] = ("duty",)
#: receiver kinds that never get an escalation (issue 14: the enterprise is not escalated to)
NEVER_ESCALATED: Final = frozenset({"enterprise"})
#: alerts listed in a grouped text; the rest are counted (envwatch's choice [MEM]: a chat robot
#: message stays readable; the webhook's ``grouped_alerts`` annotation lists every one)
MAX_LISTED: Final = 20

#: how long a transition id is remembered to ignore its second copy (the locality stage re-emits
#: what followed its last snapshot after a restart; at-least-once delivery repeats a batch):
#: one day of event time and at most :data:`SEEN_MAX` ids per locality — envwatch's choice [MEM]
SEEN_HORIZON: Final = timedelta(days=1)
SEEN_MAX: Final = 5000

_LEVEL = re.compile(r"level\s+(\d+)")
_CLOCK = "clock/"
_GROUP = "group/"
_SEEN = "seen/"

Render = Callable[[Transition], Texts]
ChainOf = Callable[[str], Sequence[str]]

#: A grouped notification's fingerprint starts with this (it names a group, not one alert).
GROUP_PREFIX: Final = "group-"


# ---------------------------------------------------------------- escalation chains


def escalation_level(t: Transition) -> int | None:
    """``n`` of an ``escalated`` transition (note ``level n``); None for any other transition."""
    if t.reason is not Reason.ESCALATED:
        return None
    m = _LEVEL.search(t.note or "")
    return int(m.group(1)) if m else 1


def escalation_receiver(chain: Sequence[str], level: int, locality: str) -> str | None:
    """The receiver of escalation ``level`` (≥ 1): ``<kind>-<locality>`` of ``chain[level]``
    (entry 0 is the first line), the chain's last entry once the level passes its end; None
    when that kind never receives escalations (an enterprise)."""
    kinds = [k for k in chain if k] or list(DEFAULT_CHAIN)
    kind = kinds[min(level, len(kinds) - 1)]
    if kind in NEVER_ESCALATED:
        return None
    return f"{kind}-{locality}"


def bypasses_grouping(t: Transition) -> bool:
    """Warnings, enterprises' duties under them and envwatch's operator alerts are emergencies:
    never delayed by grouping."""
    return (
        t.kind is not TransitionKind.ALERT
        or t.locality == PIPELINE
        or t.labels.get("rule") == PIPELINE
    )


# ---------------------------------------------------------------- time helpers


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def _time(raw: str) -> datetime:
    return datetime.fromisoformat(raw)


def _seconds(td: timedelta) -> float:
    return td.total_seconds()


def next_tick(last: datetime, interval: timedelta, at: datetime) -> datetime:
    """The first ``last + k · interval`` (k ≥ 1) not before ``at``; ``at`` when interval is 0."""
    if interval <= timedelta(0):
        return max(at, last)
    k = max(1, -(-(at - last) // interval))  # ceil
    return last + interval * k


# ---------------------------------------------------------------- grouped texts


def _status_of(state: str) -> NotificationStatus:
    return NotificationStatus.RESOLVED if state in RESOLVED_STATES else NotificationStatus.FIRING


def grouped_texts(
    listed: Sequence[tuple[NotificationStatus, Texts]],
    *,
    total_firing: int,
    total_resolved: int,
    repeat: bool = False,
) -> Texts:
    """The text of a grouped notification from the single-alert texts (``listed``: firing first,
    then resolved), Chinese first, with counts in the title; at most :data:`MAX_LISTED` lines."""
    total = total_firing + total_resolved
    if repeat:
        title_zh = f"【告警提醒】{total_firing} 条告警仍未恢复"
        title_en = f"[Reminder] {total_firing} alert(s) still firing"
    else:
        title_zh = f"【告警汇总】{total} 条告警（触发 {total_firing} 条，恢复 {total_resolved} 条）"
        title_en = (
            f"[Alert digest] {total} alert(s) ({total_firing} firing, {total_resolved} resolved)"
        )
    zh, en = [title_zh], [title_en]
    for i, (_status, texts) in enumerate(listed[:MAX_LISTED], start=1):
        zh.append(f"{i}. {texts.zh}")
        en.append(f"{i}. {texts.en}")
    rest = len(listed) - MAX_LISTED
    if rest > 0:
        zh.append(f"……另有 {rest} 条未列出")
        en.append(f"… and {rest} more")
    return Texts(zh="\n".join(zh), en="\n".join(en))


def grouped_id(key: str, at: datetime, told: Iterable[str]) -> str:
    """Deterministic id of a grouped notification: group key, flush time (UTC) and the ids of
    the transitions it tells of (``repeat`` for a reminder)."""
    raw = "\x1f".join((key, _iso(at), *sorted(told)))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]


def grouped_notification(
    group: Mapping[str, Any],
    at: datetime,
    members: Sequence[Transition],
    news: Sequence[Transition],
    render: Render,
    *,
    repeat: bool = False,
) -> Notification:
    """One notification for a whole group: ``members`` are the latest transition of each alert
    listed (firing first, then resolved), ``news`` every transition it tells of (annotation
    ``told``: fingerprint, source, rule, factor, period, state, reason, at — so a receiver, or a test, can account for each)."""
    firing = [t for t in members if t.state.value not in RESOLVED_STATES]
    resolved = [t for t in members if t.state.value in RESOLVED_STATES]
    ordered = firing + resolved
    listed = [(_status_of(t.state.value), render(t)) for t in ordered]
    texts = grouped_texts(
        listed, total_firing=len(firing), total_resolved=len(resolved), repeat=repeat
    )
    severity = max((t.severity for t in ordered), key=lambda s: s.rank, default=Severity.INFO)
    key = str(group["key"])
    alerts = [
        {
            "fingerprint": t.fingerprint,
            "status": _status_of(t.state.value).value,
            "state": t.state.value,
            "reason": t.reason.value,
            "source": t.source,
            "rule": t.labels.get("rule", ""),
            "at": _iso(t.at),
            "summary": t.annotations.get("summary", ""),
        }
        for t in ordered
    ]
    labels = {str(k): str(v) for k, v in dict(group["labels"]).items()}
    status = NotificationStatus.FIRING if firing else NotificationStatus.RESOLVED
    return Notification(
        id=grouped_id(key, at, ["repeat"] if repeat else [t.id for t in news]),
        receiver=str(group["receiver"]),
        kind=NotificationKind.ALERT,
        status=status,
        state=status.value,
        reason="repeat" if repeat else "grouped",
        fingerprint=GROUP_PREFIX + hashlib.sha256(key.encode("utf-8")).hexdigest()[:16],
        group_key=key,
        severity=severity.value,
        locality=str(group["locality"]),
        source="",
        labels=labels,
        annotations={
            "count": str(len(ordered)),
            "firing": str(len(firing)),
            "resolved": str(len(resolved)),
            "grouped_alerts": json.dumps(alerts, ensure_ascii=False, separators=(",", ":")),
            "told": json.dumps(
                [
                    {
                        "fingerprint": t.fingerprint,
                        "source": t.source,
                        "rule": t.labels.get("rule", ""),
                        "factor": t.labels.get("factor", ""),
                        "period": t.labels.get("period", ""),
                        "state": t.state.value,
                        "reason": t.reason.value,
                        "at": _iso(t.at),
                    }
                    for t in news
                ],
                separators=(",", ":"),
            ),
        },
        at=at,
        starts_at=min((t.at for t in ordered), default=at),
        ends_at=None if firing else at,
        texts=texts,
    )


# ---------------------------------------------------------------- the grouper


class Grouper:
    """Turns transitions into notifications, grouped per receiver (module docstring).

    ``tree`` gives the current route tree (hot reload), ``render`` the single-alert texts,
    ``chain_of(rule id)`` the rule's escalation chain (receiver kinds; empty: the default).
    ``states`` is one partition's plain-JSON state (``streams.state.CheckpointedState``)."""

    def __init__(
        self,
        tree: Callable[[], RouteTree],
        render: Render,
        chain_of: ChainOf = lambda _rule: (),
    ) -> None:
        self.tree = tree
        self.render = render
        self.chain_of = chain_of

    # -- input

    def on_transition(self, states: MutableMapping[str, Any], t: Transition) -> list[Notification]:
        """Advance the locality's event clock to ``t.at`` (flushing what is due by then), then
        route ``t``: at once (warnings, operator alerts, escalations) or into its groups."""
        out: list[Notification] = []
        if not self._first_time(states, t):
            return out  # a second copy: told (or grouped) already
        clock_key = _CLOCK + t.locality
        old = states.get(clock_key)
        clock = t.at if old is None else max(t.at, _time(old["at"]))
        states[clock_key] = {"at": _iso(clock)}
        out += self.flush(states, t.locality, clock)
        if not t.notify:
            return out
        kind = NotificationKind(t.kind.value)
        level = escalation_level(t)
        if level is not None:
            chain = self.chain_of(t.labels.get("rule", ""))
            receiver = escalation_receiver(chain, level, t.locality)
            if receiver is not None:
                out.append(build_notification(t, receiver, self.render(t)))
            return out
        matches = self.tree().match(t.labels, kind)
        if bypasses_grouping(t):
            texts = self.render(t)
            for m in matches:
                out.append(build_notification(t, m.receiver.name, texts))
            return out
        for m in matches:
            key = group_key(m.receiver.name, m.group_by, t.labels)
            self._add(states, key, m.receiver.name, m.group_by, m.timing, t)
        out += self.flush(states, t.locality, clock)
        return out

    @staticmethod
    def _first_time(states: MutableMapping[str, Any], t: Transition) -> bool:
        """Remember ``t.id``; False when it was seen (within :data:`SEEN_HORIZON`)."""
        # compact: 64 bits of the id → event time in epoch seconds (a snapshot record stays small)
        seen: dict[str, int] = states.setdefault(_SEEN + t.locality, {})
        key = t.id[:16]
        if key in seen:
            return False
        seen[key] = int(t.at.timestamp())
        if len(seen) > SEEN_MAX or len(seen) % 100 == 0:
            horizon = max(seen.values()) - int(SEEN_HORIZON.total_seconds())
            kept = sorted(((v, k) for k, v in seen.items() if v >= horizon), reverse=True)
            states[_SEEN + t.locality] = {k: v for v, k in kept[:SEEN_MAX]}
        return True

    def _add(
        self,
        states: MutableMapping[str, Any],
        key: str,
        receiver: str,
        group_by: Sequence[str],
        timing: GroupTiming,
        t: Transition,
    ) -> None:
        g = states.get(_GROUP + key)
        if g is None:
            g = {
                "key": key,
                "receiver": receiver,
                "locality": t.locality,
                "labels": {n: t.labels.get(n, "") for n in sorted(set(group_by))},
                "wait": _seconds(timing.group_wait),
                "interval": _seconds(timing.group_interval),
                "repeat": _seconds(timing.repeat_interval),
                "created_at": _iso(t.at),
                "last_flush_at": None,
                "due": _iso(t.at + timing.group_wait),
                "alerts": {},
                "news": [],
                "told": [],
            }
        elif not g["news"] and g["last_flush_at"] is not None:
            # first news since the last notification: due at the next group_interval tick
            due = next_tick(_time(g["last_flush_at"]), timedelta(seconds=g["interval"]), t.at)
            g["due"] = _iso(due)
        g["alerts"][t.fingerprint] = t.to_dict()
        g["news"].append(t.to_dict())
        states[_GROUP + key] = g

    # -- output

    def due_at(self, states: Mapping[str, Any], locality: str | None = None) -> list[datetime]:
        """Due times of the groups (of ``locality``), earliest first."""
        return sorted(
            _time(g["due"])
            for k, g in states.items()
            if k.startswith(_GROUP)
            and g.get("due")
            and (locality is None or g["locality"] == locality)
        )

    def pending(
        self, states: Mapping[str, Any], locality: str | None = None
    ) -> list[tuple[str, datetime, bool]]:
        """(group key, due, has news) of every group with a due time (of ``locality``)."""
        return sorted(
            (
                (str(g["key"]), _time(g["due"]), bool(g["news"]))
                for k, g in states.items()
                if k.startswith(_GROUP)
                and g.get("due")
                and (locality is None or g["locality"] == locality)
            ),
            key=lambda x: (x[1], x[0]),
        )

    def flush(
        self,
        states: MutableMapping[str, Any],
        locality: str | None,
        until: datetime,
        *,
        keys: Iterable[str] | None = None,
    ) -> list[Notification]:
        """Flush every group (of ``locality``; or only ``keys``) due at or before ``until``, each
        at its own due time, in due order."""
        wanted = None if keys is None else set(keys)
        out: list[Notification] = []
        for key, due, _news in self.pending(states, locality):
            if due > until or (wanted is not None and key not in wanted):
                continue
            out += self._flush_group(states, key, until)
        return out

    def _flush_group(
        self, states: MutableMapping[str, Any], key: str, until: datetime
    ) -> list[Notification]:
        g = states[_GROUP + key]
        due = _time(g["due"])
        news = [Transition.from_dict(d) for d in g["news"]]
        alerts = {fp: Transition.from_dict(d) for fp, d in g["alerts"].items()}
        firing = {fp for fp, t in alerts.items() if t.state.value not in RESOLVED_STATES}
        out: list[Notification] = []
        repeat = timedelta(seconds=g["repeat"])
        if news:
            first = g["last_flush_at"] is None
            if first and not firing:
                pass  # all resolved before anyone was told (Alertmanager)
            elif len(news) == 1:
                t = news[0]
                out.append(build_notification(t, g["receiver"], self.render(t), group_key=key))
            else:
                told = {t.fingerprint for t in news}
                members = [t for fp, t in sorted(alerts.items()) if fp in firing or fp in told]
                members.sort(key=lambda t: (t.at, t.fingerprint))
                out.append(grouped_notification(g, due, members, news, self.render))
            at = due
        else:
            # a reminder: one, at the latest repeat tick not after ``until`` (a backlog that
            # crosses several repeat intervals reminds once, not once per interval)
            last = _time(g["last_flush_at"])
            at = last + repeat * max(1, (until - last) // repeat) if repeat > timedelta(0) else due
            members = sorted((alerts[fp] for fp in firing), key=lambda t: (t.at, t.fingerprint))
            if members:
                out.append(grouped_notification(g, at, members, [], self.render, repeat=True))
        # told: resolved alerts leave the group, firing ones stay for reminders
        for fp in [fp for fp in alerts if fp not in firing]:
            del g["alerts"][fp]
        g["news"] = []
        g["told"] = sorted(firing)
        if not firing:
            del states[_GROUP + key]
            return out
        g["last_flush_at"] = _iso(at)
        g["due"] = _iso(at + repeat) if repeat > timedelta(0) else None
        return out


def group_locality(states: Mapping[str, Any], key: str) -> str | None:
    """The locality of group ``key`` (None when there is no such group)."""
    g = states.get(_GROUP + key)
    return None if g is None else str(g["locality"])


__all__ = [
    "DEFAULT_CHAIN",
    "ENTERPRISE_LABEL",
    "LOCALITY_LABEL",
    "MAX_LISTED",
    "Grouper",
    "bypasses_grouping",
    "escalation_level",
    "escalation_receiver",
    "group_locality",
    "grouped_id",
    "grouped_notification",
    "grouped_texts",
    "next_tick",
]
