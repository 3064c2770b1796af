"""What ``envwatch demo`` shows of the pipeline (issue 12): a pure state and its pictures.

* :class:`LiveState` — the duty officer's picture, updated by the demo's observers: every stored
  point as a wire dict (``Pipeline.observers``), every alert or warning transition
  (``Pipeline.transition_observers``), and the pipeline's counters. No I/O, no clock: the caller
  passes the wall-clock instant with the counters.
* :func:`render` — the live view of a state (a rich renderable, refreshed by ``rich.live.Live``;
  a test renders it to a string): per locality the latest city AQI in its HJ 633 colour and
  category, the heavy-pollution warning in force, the sources in exceedance, open alerts and
  offline monitors; the open alerts with their age in simulated time; throughput and lag; a
  progress bar of the simulated time.
* :class:`PlainLog` — ``--plain``: one line per event in event-time order, each city hour once
  with its final value.
* :func:`summary_lines` — the end summary: warning timeline per locality, alerts fired and
  resolved by rule, notifications per receiver, dead letters by reason, where the outputs are.

Texts are Chinese first with the English after it; localities and sources are named by their
catalogue names (:class:`Names`). Times are Beijing time.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.progress_bar import ProgressBar
from rich.style import Style
from rich.table import Table
from rich.text import Text

from alerts.model import AlertState, Reason, Transition, TransitionKind
from alerts.templates import FACTOR_NAMES, LEVEL_NAMES
from rules.aqi import LEVELS
from rules.beijing import BEIJING
from rules.plausibility import code_of

#: HJ 633-2012 附录A 表A.1 / HJ 633-2026 附录A: the colour of each AQI level (1–6) by name;
#: the RGB values are rules.aqi.LEVELS.
AQI_COLOUR_NAMES: Final[dict[int, str]] = {
    1: "绿色",
    2: "黄色",
    3: "橙色",
    4: "红色",
    5: "紫色",
    6: "褐红色",
}
#: Heavy-pollution warning levels drawn in the colour they are named after (the AQI palette's).
WARNING_COLOURS: Final[dict[str, str]] = {
    "blue": "#0000FF",
    "yellow": "#FFFF00",
    "orange": "#FF7E00",
    "red": "#FF0000",
}
WARNING_EVENTS: Final[dict[Reason, tuple[str, str]]] = {
    Reason.WARNING_ISSUED: ("发布", "issued"),
    Reason.WARNING_UPGRADED: ("升级", "upgraded"),
    Reason.WARNING_DOWNGRADED: ("降级", "downgraded"),
    Reason.WARNING_LIFTED: ("解除", "lifted"),
}
TIMELINE_HEADING: Final = "重污染天气预警 heavy-pollution warnings (Beijing time)"
#: Rule categories (alerts.rules.CATEGORY) shown as "in exceedance".
EXCEEDANCE: Final = "exceedance"
OFFLINE_RULE_KIND: Final = "offline"
#: How many sources a cell names before "+N".
CELL_NAMES: Final = 4
#: How many open alerts the live view lists.
ALERT_ROWS: Final = 10


def local(at: datetime, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return at.astimezone(BEIJING).strftime(fmt)


def age_text(delta: timedelta) -> str:
    """A simulated duration as people read it: ``40 min``, ``5 h``, ``2 d 3 h``."""
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h"
    return f"{hours // 24} d {hours % 24} h"


def aqi_style(level: int | None) -> Style:
    """The AQI level's HJ 633 colour as background, with a legible foreground."""
    if level is None:
        return Style(dim=True)
    row = LEVELS[level - 1]
    return Style(color="black" if level <= 3 else "white", bgcolor=row.color, bold=True)


def warning_style(level: str | None) -> Style:
    colour = WARNING_COLOURS.get(level or "")
    if colour is None:
        return Style()
    return Style(color="black" if level in ("yellow", "orange") else "white", bgcolor=colour)


def warning_name(level: str | None) -> str:
    """``橙色预警 orange``."""
    zh, en = LEVEL_NAMES.get(level or "", (level or "", level or ""))
    return f"{zh}预警 {en}"


def rule_title(t: Transition) -> str:
    """The rule's Chinese name: the prefix of its summary (alerts.rules writes
    ``空气质量超标：…``), else the rule id."""
    summary = str(t.annotations.get("summary", ""))
    head, sep, _ = summary.partition("：")
    return head if sep and head else t.labels.get("rule", "")


def _pad(text: str, width: int) -> str:
    """Left-justify to ``width`` terminal cells (CJK characters take two)."""
    return text + " " * max(0, width - cell_len(text))


@dataclass(frozen=True, slots=True)
class Names:
    """Display names from the catalogue: localities (in catalogue order), sources, receivers."""

    localities: Mapping[str, str] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict)
    receivers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_catalog(cls, catalog: Any) -> Names:
        if catalog is None:
            return cls()
        localities = {loc.id: str(loc.name) for loc in catalog.localities}
        sources: dict[str, str] = {}
        for st in catalog.stations:
            sources[st.id] = str(st.name)
        for sec in catalog.sections:
            sources[sec.id] = str(sec.name)
        receivers: dict[str, str] = {}
        for loc_id, name in localities.items():
            receivers[f"duty-{loc_id}"] = f"{name} 值班 duty officers"
            receivers[f"emergency-{loc_id}"] = f"{name} 应急 emergency responders"
        for ent in catalog.enterprises:
            receivers[f"enterprise-{ent.id}"] = str(ent.name)
            for out in ent.outlets:
                sources[out.id] = f"{ent.name} {out.name}"
        for mon in catalog.monitors:
            sources[mon.id] = str(mon.name)
        return cls(localities, sources, receivers)

    def locality(self, locality_id: str) -> str:
        return self.localities.get(locality_id, locality_id)

    def source(self, source_id: str, t: Transition | None = None) -> str:
        name = self.sources.get(source_id)
        if name is None and t is not None:
            name = t.annotations.get("source_name")
        return str(name) if name else source_id

    def receiver(self, receiver: str) -> str:
        return self.receivers.get(receiver, receiver)


@dataclass(frozen=True, slots=True)
class CityAqi:
    """A city hour as published (``aqi`` point ``source=city, period=hour``)."""

    at: datetime
    aqi: int | None
    level: int | None
    category: str
    primary: str

    @classmethod
    def from_point(cls, d: Mapping[str, Any]) -> CityAqi:
        f = d["fields"]
        aqi = f.get("aqi")
        level = f.get("level")
        return cls(
            at=datetime.fromisoformat(d["time"]),
            aqi=int(aqi) if isinstance(aqi, int | float) else None,
            level=int(level) if isinstance(level, int | float) else None,
            category=str(f.get("category") or ""),
            primary=str(f.get("primary") or ""),
        )

    def text(self) -> Text:
        """``265 重度污染 (紫色)`` with the value in its level's colour; ``NA`` when withheld."""
        if self.aqi is None or self.level is None:
            return Text("NA", style="dim")
        out = Text(f"{self.aqi:>3}", style=aqi_style(self.level))
        out.append(f" {self.category} ({AQI_COLOUR_NAMES[self.level]})")
        return out


def primary_text(primary: str) -> str:
    return ",".join(FACTOR_NAMES.get(p, (p, p))[0] for p in primary.split(",") if p)


@dataclass(slots=True)
class OpenAlert:
    """A firing alert: its newest transition, since when it fires, who acknowledged it."""

    transition: Transition
    since: datetime
    acknowledged_by: str | None = None


@dataclass(slots=True)
class LiveState:
    """Everything the live view and the summary show, kept up to date by the observers."""

    names: Names = field(default_factory=Names)
    scenario: str | None = None
    start: datetime | None = None  # simulated time span of the run
    end: datetime | None = None
    city: dict[str, CityAqi] = field(default_factory=dict)
    warnings: dict[str, Transition] = field(default_factory=dict)  # in force, per locality
    warning_log: list[Transition] = field(default_factory=list)
    open: dict[str, OpenAlert] = field(default_factory=dict)  # by fingerprint
    fired: Counter[str] = field(default_factory=Counter)  # by rule id
    resolved: Counter[str] = field(default_factory=Counter)
    rule_titles: dict[str, str] = field(default_factory=dict)
    sim_now: datetime | None = None  # the newest city hour
    played_to: datetime | None = None  # the simulated instant the player has reached
    stored: int = 0
    transitions: int = 0
    published: int = 0
    received: int = 0
    evaluated: int = 0
    dead_letters: int = 0
    _seen: set[str] = field(default_factory=set)
    _rate_window: list[tuple[float, int]] = field(default_factory=list)

    # ------------------------------------------------------------------ observers
    def observe_point(self, d: Mapping[str, Any]) -> None:
        """A stored point in its wire form (streams.wire)."""
        self.stored += 1
        if d.get("measurement") != "aqi":
            return
        tags = d["tags"]
        if tags.get("source") != "city" or tags.get("period") != "hour":
            return
        hour = CityAqi.from_point(d)
        locality = str(tags.get("locality", ""))
        current = self.city.get(locality)
        if current is None or hour.at >= current.at:  # a rewrite of the hour replaces it
            self.city[locality] = hour
        if self.sim_now is None or hour.at > self.sim_now:
            self.sim_now = hour.at

    def observe_transition(self, t: Transition) -> None:
        """An alert or warning transition (each id once: a redelivery changes nothing)."""
        if t.id in self._seen:
            return
        self._seen.add(t.id)
        self.transitions += 1
        if t.kind is TransitionKind.DUTY:
            return  # an enterprise's duties: the warning line names them
        if t.kind is TransitionKind.WARNING:
            self.warning_log.append(t)
            if t.state is AlertState.FIRING:
                self.warnings[t.locality] = t
            else:
                self.warnings.pop(t.locality, None)
            return
        rule = t.labels.get("rule", "")
        self.rule_titles.setdefault(rule, rule_title(t))
        held = self.open.get(t.fingerprint)
        if t.state is AlertState.FIRING:
            if held is None:
                self.open[t.fingerprint] = OpenAlert(t, since=t.at)
                self.fired[rule] += 1
            else:
                held.transition = t
            if t.reason is Reason.ACKNOWLEDGED:
                self.open[t.fingerprint].acknowledged_by = t.actor or "?"
        elif t.state is AlertState.RESOLVED and held is not None:
            del self.open[t.fingerprint]
            self.resolved[rule] += 1

    def pipeline(
        self,
        now: float,
        *,
        published: int,
        received: int,
        evaluated: int,
        dead_letters: int,
        played_to: datetime | None = None,
    ) -> None:
        """The pipeline's counters at wall-clock instant ``now`` (monotonic seconds)."""
        self.published, self.received = published, received
        self.evaluated, self.dead_letters = evaluated, dead_letters
        if played_to is not None:
            self.played_to = played_to
        self._rate_window.append((now, evaluated))
        while len(self._rate_window) > 2 and now - self._rate_window[0][0] > 5.0:
            self._rate_window.pop(0)

    # ------------------------------------------------------------------ derived
    @property
    def rate(self) -> float:
        """Samples evaluated per second over the last ~5 s."""
        if len(self._rate_window) < 2:
            return 0.0
        (t0, n0), (t1, n1) = self._rate_window[0], self._rate_window[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0

    @property
    def lag(self) -> int:
        """Samples published and not yet evaluated."""
        return max(0, self.published - self.evaluated)

    def localities(self) -> list[str]:
        """The catalogue's localities, then any other that sent data."""
        seen = dict.fromkeys(self.names.localities)
        for loc in (
            *self.city,
            *self.warnings,
            *(a.transition.locality for a in self.open.values()),
        ):
            seen.setdefault(loc, None)
        return list(seen)

    def open_alerts(self, locality: str | None = None) -> list[OpenAlert]:
        """Open alerts, newest first."""
        alerts = [
            a for a in self.open.values() if locality is None or a.transition.locality == locality
        ]
        return sorted(alerts, key=lambda a: (a.since, a.transition.source), reverse=True)

    def sources_where(self, locality: str, *, offline: bool) -> list[str]:
        """Names of the locality's sources with an open exceedance (or offline) alert."""
        out: dict[str, None] = {}
        for a in sorted(self.open.values(), key=lambda a: a.transition.source):
            t = a.transition
            if t.locality != locality:
                continue
            is_offline = t.labels.get("rule_kind") == OFFLINE_RULE_KIND
            if offline == is_offline and (offline or t.labels.get("category") == EXCEEDANCE):
                out[self.names.source(t.source, t)] = None
        return list(out)


# ---------------------------------------------------------------------------- live view


def _names_cell(names: Sequence[str]) -> Text:
    if not names:
        return Text("—", style="dim")
    shown = "\n".join(names[:CELL_NAMES])
    return Text(shown + (f"\n… +{len(names) - CELL_NAMES}" if len(names) > CELL_NAMES else ""))


def _warning_cell(t: Transition | None) -> Text:
    if t is None:
        return Text("无 none", style="dim")
    out = Text(f"■ {warning_name(t.level)}", style=warning_style(t.level))
    out.append(f"\n自 {local(t.at, '%m-%d %H:%M')}", style="dim")
    return out


def _progress(state: LiveState) -> RenderableType:
    if state.start is None or state.end is None:
        return Text("")
    span = (state.end - state.start).total_seconds()
    at = state.played_to or state.start
    done = min(span, max(0.0, (at - state.start).total_seconds()))
    days = span / 86400
    grid = Table.grid(padding=(0, 1))
    grid.add_column()
    grid.add_column()
    grid.add_row(
        ProgressBar(total=span, completed=done, width=40),
        Text(
            f"{100 * done / span:3.0f} %  模拟时间 simulated {local(at)} "
            f"(第 {min(int(done // 86400) + 1, max(1, round(days)))} / {days:g} 天 day)"
        ),
    )
    return grid


class _Fit:
    """A renderable built for the width it is drawn at: a long cell is cut to what is left,
    not every column squeezed alike (rich's last resort for a table too wide)."""

    def __init__(self, build: Callable[[int], RenderableType]) -> None:
        self.build = build

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.build(options.max_width)


def _alerts_table(state: LiveState, width: int) -> RenderableType:
    alerts = state.open_alerts()
    if not alerts:
        return Text("告警 open alerts: 无 none", style="dim")
    now = state.sim_now
    acked = any(a.acknowledged_by for a in alerts)
    table = Table(
        title=f"告警 open alerts ({len(alerts)})",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    where = max(cell_len(state.names.locality(a.transition.locality)) for a in alerts[:ALERT_ROWS])
    ack = max([8] + [cell_len(a.acknowledged_by or "") for a in alerts]) if acked else 0
    # since (11), age (up to 9), locality, ack, the alert: gaps and edges take 3 per column − 1
    columns = 5 if acked else 4
    used = 11 + 9 + max(13, where) + ack + 3 * columns - 1
    table.add_column("自 since", no_wrap=True)
    table.add_column("时长 age", justify="right", no_wrap=True)
    table.add_column("地区 locality", no_wrap=True)
    table.add_column(
        "告警 alert", overflow="ellipsis", no_wrap=True, max_width=max(20, width - used)
    )
    if acked:
        table.add_column("确认 ack", no_wrap=True)
    for a in alerts[:ALERT_ROWS]:
        t = a.transition
        row = [
            local(a.since, "%m-%d %H:%M"),
            age_text(now - a.since) if now is not None else "",
            state.names.locality(t.locality),
            str(t.annotations.get("summary") or rule_title(t)),
        ]
        if acked:
            row.append(a.acknowledged_by or "—")
        table.add_row(*row, style="bold" if t.severity.value == "critical" else None)
    if len(alerts) > ALERT_ROWS:
        table.caption = f"… +{len(alerts) - ALERT_ROWS} 条 more"
        table.caption_justify = "left"
    return table


def render(state: LiveState) -> RenderableType:
    """The live view of ``state`` (laid out for 150 columns; narrower cuts the names)."""
    title = Text("envwatch demo", style="bold")
    title.append(f" · {state.scenario or '基础数据流 base streams'}")
    if state.sim_now is not None:
        title.append(f" · 最新整点 latest hour {local(state.sim_now)} (北京时间 Beijing)")
    pipeline = Text(
        f"管道 pipeline: 发布 published {state.published:,} → 网桥 bridge received "
        f"{state.received:,} → 评估 worker evaluated {state.evaluated:,} · "
        f"{state.rate:,.0f} samples/s · 积压 lag {state.lag:,}\n"
        f"存储 stored {state.stored:,} points · 告警/预警变化 transitions {state.transitions:,} · "
        f"死信 dead letters {state.dead_letters:,}",
        style="dim",
    )
    return Group(
        title,
        _progress(state),
        _Fit(lambda width: _localities_table(state, width)),
        _Fit(lambda width: _alerts_table(state, width)),
        pipeline,
    )


def _localities_table(state: LiveState, width: int) -> RenderableType:
    """One row per locality."""
    localities = state.localities()
    names = max((cell_len(state.names.locality(loc)) for loc in localities), default=13)
    offline = {loc: state.sources_where(loc, offline=True) for loc in localities}
    offline_width = min(26, max([12] + [cell_len(n) for ns in offline.values() for n in ns]))
    # locality, AQI (21), warning (14), open (9), oldest (11), offline; gaps and edges 3 × 7 − 1
    used = max(13, names) + 21 + 14 + 9 + 11 + offline_width + 20
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_lines=False)
    table.add_column("地区 locality", no_wrap=True)
    table.add_column("城市AQI city AQI", no_wrap=True)
    table.add_column("预警 warning", no_wrap=True)
    table.add_column(
        "超标 in exceedance", no_wrap=True, overflow="ellipsis", max_width=max(18, width - used)
    )
    table.add_column("告警 open", justify="right", no_wrap=True)
    table.add_column("最久 oldest", justify="right", no_wrap=True)
    table.add_column("离线 offline", no_wrap=True, overflow="ellipsis", max_width=offline_width)
    for loc in localities:
        hour = state.city.get(loc)
        alerts = state.open_alerts(loc)
        oldest = min((a.since for a in alerts), default=None)
        aqi = Text("—", style="dim")
        if hour is not None:
            aqi = hour.text()
            if hour.primary:
                aqi.append(f"\n首要 {primary_text(hour.primary)}", style="dim")
        table.add_row(
            state.names.locality(loc),
            aqi,
            _warning_cell(state.warnings.get(loc)),
            _names_cell(state.sources_where(loc, offline=False)),
            str(len(alerts)),
            age_text(state.sim_now - oldest) if oldest and state.sim_now else "",
            _names_cell(offline[loc]),
        )
    return table


# ---------------------------------------------------------------------------- --plain

_HOUR, _DAY, _WARNING, _ALERT = range(4)
ALERT_STATES: Final[dict[tuple[AlertState, Reason | None], str]] = {
    (AlertState.FIRING, Reason.ESCALATED): "升级 escalated",
    (AlertState.FIRING, None): "触发 firing",
    (AlertState.RESOLVED, None): "恢复 resolved",
}


class PlainLog:
    """``--plain``: one line per event, in event-time order, each city hour once (its final
    value). Events are held until the newest city hour is ``hold`` past them — a city hour is
    rewritten as its stations arrive, a day's AQI comes with the next day's first hour, and a
    daily alert is stamped with the day it judges — then written in order; :meth:`flush`
    writes the rest at the end. A day's AQI is placed after that day's last hour."""

    def __init__(
        self, names: Names, emit: Callable[[Text], None], hold: timedelta = timedelta(hours=26)
    ) -> None:
        self.names = names
        self.emit = emit
        self.hold = hold
        self._pending: dict[tuple[str, ...], tuple[tuple[datetime, int, int, int], Text]] = {}
        self._done: set[tuple[str, ...]] = set()
        self._watermark: datetime | None = None
        self._seq = 0
        self._order = {loc: i for i, loc in enumerate(names.localities)}

    def _hold(self, key: tuple[str, ...], at: datetime, kind: int, loc: str, line: Text) -> None:
        if key in self._done:
            return  # written already: each event once
        held = self._pending.get(key)
        if held is None:
            self._seq += 1
            order = (at, kind, self._order.get(loc, len(self._order)), self._seq)
        else:
            order = held[0]
        self._pending[key] = (order, line)

    def observe_point(self, d: Mapping[str, Any]) -> None:
        if d.get("measurement") != "aqi":
            return
        tags = d["tags"]
        period = tags.get("period")
        if tags.get("source") != "city" or period not in ("hour", "day"):
            return
        hour = CityAqi.from_point(d)
        loc = str(tags.get("locality", ""))
        name = _pad(self.names.locality(loc), 34)
        if period == "hour":
            line = Text(f"{local(hour.at)}  城市AQI city AQI   {name} ")
            order_at = hour.at
            if self._watermark is None or hour.at > self._watermark:
                self._watermark = hour.at
            kind = _HOUR
        else:
            line = Text(f"{local(hour.at, '%Y-%m-%d')} 全天 日AQI daily AQI  {name} ")
            order_at = hour.at + timedelta(days=1)
            kind = _DAY
        line.append_text(hour.text())
        if hour.primary:
            line.append(f"  首要污染物 primary {primary_text(hour.primary)}")
        self._hold((period, loc, d["time"]), order_at, kind, loc, line)
        self._release()

    def observe_transition(self, t: Transition) -> None:
        if t.kind is TransitionKind.WARNING:
            zh, en = WARNING_EVENTS.get(t.reason, (t.reason.value, t.reason.value))
            line = Text(f"{local(t.at)}  ■ 预警 warning     {self.names.locality(t.locality)} ")
            if t.state is AlertState.FIRING:
                line.append(f"{zh} {warning_name(t.level)}", style=warning_style(t.level))
                line.append(f" ({en})")
            else:
                line.append(f"{zh} 重污染天气预警 ({en})")
            self._hold(("t", t.id), t.at, _WARNING, t.locality, line)
        elif t.notify:
            what = ALERT_STATES.get((t.state, t.reason)) or ALERT_STATES.get((t.state, None))
            if what is None:
                return
            line = Text(
                f"{local(t.at)}  告警 {_pad(what, 16)} {self.names.locality(t.locality)} "
                f"{t.annotations.get('summary') or rule_title(t)}",
                style="bold" if t.state is AlertState.FIRING else "",
            )
            self._hold(("t", t.id), t.at, _ALERT, t.locality, line)
        self._release()

    def _release(self, everything: bool = False) -> None:
        if self._watermark is None and not everything:
            return
        due = sorted(
            (
                (order, key)
                for key, (order, _line) in self._pending.items()
                if everything
                or (self._watermark is not None and order[0] <= self._watermark - self.hold)
            ),
        )
        for _order, key in due:
            _o, line = self._pending.pop(key)
            self._done.add(key)
            self.emit(line)

    def flush(self) -> None:
        """Write everything still held (the run is over)."""
        self._release(everything=True)


# ---------------------------------------------------------------------------- summary


def warning_timeline(transitions: Iterable[Transition], names: Names) -> list[str]:
    """The heavy-pollution warning timeline per locality, as the end summary prints it (the
    README shows it; tests/test_readme.py compares)."""
    per: dict[str, list[Transition]] = {}
    for t in transitions:
        if t.kind is TransitionKind.WARNING:
            per.setdefault(t.locality, []).append(t)
    lines = [TIMELINE_HEADING]
    order = list(names.localities) + sorted(set(per) - set(names.localities))
    for loc in order:
        if loc not in per:
            continue
        lines.append(f"  {names.locality(loc)}")
        for t in sorted(per[loc], key=lambda t: (t.at, t.id)):
            zh, en = WARNING_EVENTS.get(t.reason, (t.reason.value, t.reason.value))
            event = _pad(f"{zh} {en}", 16)
            level = warning_name(t.level) if t.state is AlertState.FIRING else ""
            lines.append(f"    {local(t.at)}  {event}{level}".rstrip())
    quiet = [names.locality(loc) for loc in names.localities if loc not in per]
    if quiet:
        lines.append(f"  无预警 no warning: {', '.join(quiet)}")
    return lines


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What the run did, beside the state: counts, deliveries, dead letters, the outputs."""

    published: int
    produced: int
    evaluated: int
    notifications: Mapping[str, int]  # receiver name → notifications delivered
    bad_signatures: int
    outbox_pending: int
    outbox_failed: int
    dead_letters: Mapping[tuple[str, str], int]  # (stage, reason) → count
    out_dir: Path
    alerts_log: Path
    lp_files: Sequence[Path]
    lp_lines: int
    kept: bool = True  # False: a temporary directory, removed when the demo ends


#: Variable parts of dead-letter reasons, so that one reason is one line of the summary.
_VARIABLE = (
    (re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+(?:[+-]\d\d:\d\d|Z)?"), "<time>"),
    (re.compile(r"'[^']*'"), "'…'"),
)


def reason_kind(reason: str) -> str:
    """A dead letter's reason without its particulars (times, quoted names); the evaluate
    stage's catalogue and physics checks by their code (``out of range``, ``wrong locality`` …,
    :data:`rules.plausibility.CODES`)."""
    code = code_of(reason)
    if code is not None:
        return code
    for pattern, replacement in _VARIABLE:
        reason = pattern.sub(replacement, reason)
    return reason


def summary_lines(state: LiveState, run: RunSummary) -> list[str]:
    """The end summary, line by line (plain text: it goes to logs and the README too)."""
    names = state.names
    lines = []
    span = ""
    if state.start is not None and state.end is not None:
        span = f", 模拟 simulated {local(state.start)} – {local(state.end)}"
    lines.append(f"── 汇总 summary ({state.scenario or '基础数据流 base streams'}{span}) ──")
    lines.append(
        f"样本 samples: published {run.published:,}, bridge produced {run.produced:,}, "
        f"worker evaluated {run.evaluated:,}; {state.stored:,} points stored, "
        f"{state.transitions:,} alert/warning transitions"
    )
    lines.append("")
    lines += warning_timeline(state.warning_log, names)
    lines.append("")
    rules = sorted(set(state.fired) | set(state.resolved))
    if rules:
        still = Counter(a.transition.labels.get("rule", "") for a in state.open.values())
        width = max(cell_len(f"{r} {state.rule_titles.get(r, '')}") for r in rules) + 2
        head = ("触发 fired", "恢复 resolved", "未恢复 open")
        lines.append(_pad("告警 alerts by rule", width + 2) + "  ".join(head))
        for r in rules:
            label = _pad(f"{r} {state.rule_titles.get(r, '')}", width)
            counts = (state.fired[r], state.resolved[r], still[r])
            lines.append(
                f"  {label}"
                + "  ".join(f"{n:>{cell_len(h)}}" for n, h in zip(counts, head, strict=True))
            )
    else:
        lines.append("告警 alerts: 无 none")
    lines.append("")
    delivered = sum(run.notifications.values())
    lines.append(
        f"通知 notifications delivered: {delivered:,} signed webhooks, verified by the receiver "
        f"({run.bad_signatures} bad signatures; outbox: {run.outbox_pending} pending, "
        f"{run.outbox_failed} refused or failed)"
    )
    receivers = sorted(run.notifications.items(), key=lambda kv: (-kv[1], kv[0]))
    if receivers:
        width = max(cell_len(f"{r} {names.receiver(r)}") for r, _ in receivers) + 2
        for receiver, n in receivers:
            lines.append(f"  {_pad(f'{receiver} {names.receiver(receiver)}', width)}{n:>6}")
    lines.append("")
    if run.dead_letters:
        lines.append(f"死信 dead letters by reason: {sum(run.dead_letters.values()):,}")
        for (stage, reason), n in sorted(run.dead_letters.items(), key=lambda kv: -kv[1]):
            lines.append(f"  {n:>6}  {stage}: {reason}")
    else:
        lines.append("死信 dead letters: 无 none")
    lines.append("")
    where = f"输出 outputs in {run.out_dir}"
    if not run.kept:
        where += " (temporary: removed when the demo ends; keep them with --out DIR)"
    lines.append(where)
    lines.append(f"  {run.alerts_log.name}: one JSON object per alert or warning transition")
    lines.append(
        "  notifications.jsonl: what each receiver accepted (an enterprise's duties under a "
        "warning with its measures)"
    )
    files = ", ".join(p.name for p in run.lp_files[:3]) + (" …" if len(run.lp_files) > 3 else "")
    lines.append(
        f"  *.lp: {len(run.lp_files)} file(s), {run.lp_lines:,} lines of line protocol ({files}): "
        "load with `influx write --file`, replay with `envwatch backtest DIR`"
    )
    return lines
