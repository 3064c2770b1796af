"""``DIR/report.html``: what a run left in its output directory, as one self-contained page.

:func:`write_report` reads what ``envwatch demo --out DIR`` (or any worker or backtest run that
writes the store's line protocol and the alerts log) leaves in a directory —

* ``*.lp`` / ``*.lp.gz`` / ``*.lp.open``: the stored points (docs/influx-schema.md); the report
  reads the city AQI (``aqi`` with ``source=city``, ``period=hour`` and ``period=day``), the
  daily data quality (``data_quality`` with ``period=day``) and the ``dead_letter`` points;
* ``alerts.jsonl``: one alert or warning transition per line (``alerts.model.Transition``: the
  worker's record with the transition under ``"transition"``, or a bare ``to_dict()``);
* ``notifications.jsonl`` (when present): one notification per line, keys ``receiver, id, at,
  state, summary``;

— and writes ``DIR/report.html``. Per locality (catalogue order, display names from the
catalogue): the hourly and daily city AQI in the HJ 633 level colours (``rules.aqi.LEVELS``) with
the heavy-pollution warning band over it (issued / upgraded / downgraded → lifted, in the
level's colour), and the alerts' firing intervals per source (firing → resolved; still open at
the end of the data: drawn to the end, dashed). Then tables of the warnings, the alerts and the
notifications, and the data quality: transmission and valid rates per source, worst first, dead
letters by stage and reason, and every line the report could not read (``file:line: reason``).
Times are Beijing time. Texts are Chinese with English labels.

**Plotting: static inline SVG written here, no library, no JavaScript.** The page is read by a
duty officer, mailed, archived and opened offline later: SVG drawn by the browser's own renderer
has no script to load or break, prints as vectors and keeps the file small (the winter episode:
~0.3 MB, half of it the charts, a third the alert table, where ECharts or Plotly alone would add 1–4 MB of
JavaScript that must run before anything shows). Hovering still tells the details: every
interval, day and warning carries an SVG ``<title>`` tooltip. What it gives up — zoom and pan —
matters little for runs of days to weeks, which fit the page's width at a few pixels per hour.
The AQI axis gives each HJ 633 level the same height (表1's ranges are 50 wide up to 200, then
100 and 200), so the levels a duty officer acts on stay apart even beside a 300+ episode.

The line-protocol reading reuses ``envwatch backtest``'s tokenizer (``_split_unescaped``,
``_ns_time``). Every line is checked for its shape (``<series> <fields> <timestamp>``); of the
measurements the report shows, the last version of each point (series and timestamp: the store
overwrites a point rewritten as data arrives) is parsed in full. Bad input loses nothing and
stops nothing: a line that cannot be read is skipped and listed in the report.

Pure except for reading the directory (and the catalogue) and writing the one file: no clock,
no network; the same directory gives the same bytes.
"""

from __future__ import annotations

import html
import math
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any, Final

import orjson

from alerts.errors import AlertsError
from alerts.model import AlertState, Transition, TransitionKind
from alerts.templates import PERIODS
from rules.aqi import LEVELS, AqiLevel
from rules.beijing import BEIJING
from rules.errors import RulesError
from streams.cli.backtest import _LP_PATTERNS, _ns_time, _split_unescaped
from streams.live import (
    AQI_COLOUR_NAMES,
    WARNING_COLOURS,
    WARNING_EVENTS,
    Names,
    reason_kind,
    rule_title,
    warning_name,
)

REPORT_NAME: Final = "report.html"
ALERTS_LOG: Final = "alerts.jsonl"
NOTIFICATIONS_LOG: Final = "notifications.jsonl"
HOUR: Final = timedelta(hours=1)
DAY: Final = timedelta(days=1)
#: Data rates below this are flagged (the ``data_rate`` alert rule's threshold, docs/alerts.md).
RATE_THRESHOLD: Final = 0.9
#: Unreadable lines listed one by one; beyond this only their number (all are counted).
PROBLEMS_LISTED: Final = 1000
#: Colours of the alert rules in the alert timeline (Tableau 10: apart from the AQI palette).
RULE_PALETTE: Final = (
    "#4E79A7",
    "#F28E2B",
    "#59A14F",
    "#B07AA1",
    "#76B7B2",
    "#E15759",
    "#EDC948",
    "#FF9DA7",
    "#9C755F",
    "#BAB0AC",
)

# ---------------------------------------------------------------------------- the data


@dataclass(frozen=True, slots=True)
class Problem:
    """A line the report could not read: ``file:line: reason`` (line 0: the whole file)."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return (
            f"{self.file}:{self.line}: {self.reason}"
            if self.line
            else f"{self.file}: {self.reason}"
        )


@dataclass(frozen=True, slots=True)
class CityAqi:
    """A city AQI point: an hour (labelled by its end) or a day (its 00:00 Beijing)."""

    at: datetime
    aqi: int | None
    level: int | None
    category: str
    primary: str


@dataclass(slots=True)
class Quality:
    """One source's daily data-quality points: day → (transmission rate, valid rate)."""

    locality: str
    kind: str
    days: dict[datetime, tuple[float | None, float | None]] = field(default_factory=dict)

    def mean(self, index: int) -> float | None:
        values = [v[index] for v in self.days.values() if v[index] is not None]
        return sum(v for v in values if v is not None) / len(values) if values else None

    def lowest(self, index: int) -> float | None:
        values = [v[index] for v in self.days.values() if v[index] is not None]
        return min(v for v in values if v is not None) if values else None


@dataclass(slots=True)
class RunData:
    """Everything the report shows, read from one output directory."""

    directory: Path
    hours: dict[str, dict[datetime, CityAqi]] = field(default_factory=dict)
    days: dict[str, dict[datetime, CityAqi]] = field(default_factory=dict)
    quality: dict[str, Quality] = field(default_factory=dict)  # by source id
    dead_letters: Counter[tuple[str, str]] = field(default_factory=Counter)
    transitions: list[Transition] = field(default_factory=list)
    notifications: list[dict[str, str]] | None = None  # None: no notifications.jsonl
    problems: list[Problem] = field(default_factory=list)
    lp_files: list[str] = field(default_factory=list)
    lp_lines: int = 0
    measurements: Counter[str] = field(default_factory=Counter)
    alerts_log: bool = False

    @property
    def empty(self) -> bool:
        return not (
            self.hours
            or self.days
            or self.quality
            or self.dead_letters
            or self.transitions
            or self.notifications
            or self.measurements
        )

    def span(self) -> tuple[datetime, datetime] | None:
        """The time the data covers: hours from their start, days to their end, transitions."""
        starts: list[datetime] = []
        ends: list[datetime] = []
        for series in self.hours.values():
            if series:
                starts.append(min(series) - HOUR)
                ends.append(max(series))
        for series in self.days.values():
            if series:
                starts.append(min(series))
                ends.append(max(series) + DAY)
        if self.transitions:
            starts.append(min(t.at for t in self.transitions))
            ends.append(max(t.at for t in self.transitions))
        if not starts:
            return None
        start, end = min(starts), max(ends)
        return start, max(end, start + HOUR)


# ---------------------------------------------------------------------------- reading


class _Bad(Exception):
    """A line that cannot be read, with the reason."""


def _text_lines(path: Path) -> Iterator[str]:
    """A file's lines; undecodable bytes become U+FFFD (the line is then reported, not lost).
    A ``.gz`` cut short (a segment being written, a partial copy) yields what it holds, then
    raises EOFError."""
    if not path.name.endswith(".gz"):
        with path.open(encoding="utf-8", errors="replace", newline="") as fh:
            yield from fh
        return
    z = zlib.decompressobj(16 + zlib.MAX_WBITS)
    pending = b""
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 16):
            while chunk:
                pending += z.decompress(chunk)
                chunk = b""
                if z.eof and z.unused_data:  # another gzip member follows
                    chunk = z.unused_data
                    z = zlib.decompressobj(16 + zlib.MAX_WBITS)
            *complete, pending = pending.split(b"\n")
            for raw in complete:
                yield raw.decode("utf-8", errors="replace") + "\n"
    if pending:
        yield pending.decode("utf-8", errors="replace")
    if not z.eof:
        raise EOFError("compressed file ended before the end-of-stream marker was reached")


def _field_value(key: str, raw: str) -> object:
    """A line-protocol field value by its written type: "string", 3i, 1.5, true."""
    if raw.startswith('"'):
        if len(raw) < 2 or not raw.endswith('"'):
            raise _Bad(f"field {key}: unterminated string")
        return raw[1:-1]
    if raw in ("t", "T", "true", "True", "TRUE"):
        return True
    if raw in ("f", "F", "false", "False", "FALSE"):
        return False
    try:
        if raw.endswith(("i", "u")):
            return int(raw[:-1])
        value = float(raw)
    except ValueError:
        raise _Bad(f"field {key}: not a value: {raw[:40]!r}") from None
    if not math.isfinite(value):
        raise _Bad(f"field {key}: not a finite number: {raw[:40]!r}")
    return value


def parse_line(text: str) -> tuple[str, dict[str, str], dict[str, object], datetime]:
    """One line of line protocol → (measurement, tags, typed fields, time); raises ValueError
    with the reason. Tokenised by ``envwatch backtest``'s reader."""
    try:
        return _parse(text)
    except _Bad as exc:
        raise ValueError(str(exc)) from None


def _parse(text: str) -> tuple[str, dict[str, str], dict[str, object], datetime]:
    parts = _split_unescaped(text, " ")
    if len(parts) != 3:
        raise _Bad("expected '<series> <fields> <timestamp>'")
    series, field_set, stamp = parts
    head = _split_unescaped(series, ",")
    measurement = head[0]
    if not measurement:
        raise _Bad("no measurement")
    tags: dict[str, str] = {}
    for pair in head[1:]:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise _Bad(f"tag {pair[:40]!r}: expected key=value")
        tags[key] = value
    fields: dict[str, object] = {}
    for pair in _split_unescaped(field_set, ","):
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise _Bad(f"field {pair[:40]!r}: expected key=value")
        fields[key] = _field_value(key, value)
    try:
        at = _ns_time(stamp)
    except (ValueError, OverflowError, OSError):
        raise _Bad(f"timestamp not an integer: {stamp[:40]!r}") from None
    return measurement, tags, fields, at


def _int(v: object) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and math.isfinite(v):
        return round(v)
    return None


def _rate(v: object) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v)


def _wanted(text: str) -> tuple[str, str] | None:
    """After a cheap check of its shape: the line's (series, timestamp) when the report shows
    its measurement (city AQI, daily data quality, dead letters), else None."""
    if "\ufffd" in text:
        raise _Bad("not UTF-8")
    rest, sep, stamp = text.rpartition(" ")
    if not sep or " " not in rest.strip():
        raise _Bad("expected '<series> <fields> <timestamp>'")
    if not stamp.lstrip("-").isdigit():
        raise _Bad(f"timestamp not an integer: {stamp[:40]!r}")
    series = text.split(" ", 1)[0]
    measurement = series.split(",", 1)[0]
    if (
        (measurement == "aqi" and "source=city" in series)
        or (measurement == "data_quality" and "period=day" in series)
        or measurement == "dead_letter"
    ):
        return series, stamp
    return None


def _read_point(data: RunData, text: str) -> None:
    """A line of a measurement the report shows, parsed in full."""
    measurement, tags, fields, at = _parse(text)
    if measurement == "aqi" and tags.get("source") == "city":
        locality, period = tags.get("locality", ""), tags.get("period", "")
        if not locality:
            raise _Bad("aqi: missing tag locality")
        if period not in ("hour", "day"):
            return  # rolling24h: the warning rules' input, not shown
        level = _int(fields.get("level"))
        point = CityAqi(
            at=at,
            aqi=_int(fields.get("aqi")),
            level=level if level is not None and 1 <= level <= len(LEVELS) else None,
            category=str(fields.get("category") or ""),
            primary=str(fields.get("primary") or ""),
        )
        target = data.hours if period == "hour" else data.days
        target.setdefault(locality, {})[at] = point
    elif measurement == "data_quality" and tags.get("period") == "day":
        source = tags.get("source", "")
        if not source:
            raise _Bad("data_quality: missing tag source")
        q = data.quality.get(source)
        if q is None:
            q = data.quality[source] = Quality(tags.get("locality", ""), tags.get("kind", ""))
        q.days[at] = (_rate(fields.get("transmission_rate")), _rate(fields.get("valid_rate")))
    elif measurement == "dead_letter":
        stage = tags.get("stage", "?") or "?"
        data.dead_letters[(stage, reason_kind(str(fields.get("reason", ""))))] += 1


def _read_store(data: RunData) -> None:
    """Every line gets a cheap check of its shape; of the lines the report shows, the last
    version of each point (series and timestamp: the store overwrites a point rewritten as
    data arrives, e.g. a city hour as stations report, a day's data quality with each sample)
    is parsed in full — a few thousand lines where a run writes tens of thousands."""
    files = sorted({p for pat in _LP_PATTERNS for p in data.directory.glob(pat) if p.is_file()})
    last: dict[tuple[str, str], tuple[str, int, str]] = {}
    for path in files:
        data.lp_files.append(path.name)
        number = 0
        try:
            for number, raw in enumerate(_text_lines(path), start=1):
                text = raw.strip()
                if not text or text.startswith("#"):
                    continue
                data.lp_lines += 1
                try:
                    key = _wanted(text)
                except _Bad as exc:
                    data.problems.append(Problem(path.name, number, str(exc)))
                    continue
                data.measurements[text.split(",", 1)[0].split(" ", 1)[0]] += 1
                if key is not None:
                    last.pop(key, None)  # re-inserted: points stay in the order last written
                    last[key] = (path.name, number, text)
        except (OSError, EOFError, zlib.error) as exc:  # a truncated .gz, an unreadable file
            data.problems.append(
                Problem(path.name, number + 1, f"unreadable from here: {type(exc).__name__}: {exc}")
            )
    for name, number, text in last.values():
        try:
            _read_point(data, text)
        except _Bad as exc:
            data.problems.append(Problem(name, number, str(exc)))
    data.problems.sort(key=lambda p: (p.file, p.line))


def _jsonl(path: Path, data: RunData) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        lines = list(_text_lines(path))
    except OSError as exc:
        data.problems.append(Problem(path.name, 0, f"unreadable: {exc}"))
        return
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text:
            continue
        if "\ufffd" in text:
            data.problems.append(Problem(path.name, number, "not UTF-8"))
            continue
        try:
            record = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            data.problems.append(Problem(path.name, number, f"not JSON: {exc}"))
            continue
        if not isinstance(record, dict):
            data.problems.append(Problem(path.name, number, "not a JSON object"))
            continue
        yield number, record


def _read_alerts(data: RunData) -> None:
    path = data.directory / ALERTS_LOG
    if not path.is_file():
        return
    data.alerts_log = True
    seen: set[str] = set()
    for number, record in _jsonl(path, data):
        inner = record.get("transition", record)
        try:
            if not isinstance(inner, dict):
                raise TypeError("'transition' is not an object")
            t = Transition.from_dict(inner)
            if t.at.tzinfo is None:
                raise ValueError("time without offset")
        except (AlertsError, KeyError, ValueError, TypeError, AttributeError) as exc:
            data.problems.append(Problem(path.name, number, f"not a transition: {exc}"))
            continue
        if t.id not in seen:  # the log holds each id once; a copied log may not
            seen.add(t.id)
            data.transitions.append(t)
    data.transitions.sort(key=lambda t: t.at)


def _read_notifications(data: RunData) -> None:
    path = data.directory / NOTIFICATIONS_LOG
    if not path.is_file():
        return
    data.notifications = []
    for _number, record in _jsonl(path, data):
        data.notifications.append(
            {k: "" if record.get(k) is None else str(record.get(k)) for k in _NOTIFICATION_KEYS}
        )


_NOTIFICATION_KEYS: Final = ("receiver", "id", "at", "state", "summary")


def read_run(out_dir: Path) -> RunData:
    """What ``out_dir`` holds (see the module docstring); never raises for bad content."""
    data = RunData(out_dir)
    if not out_dir.is_dir():
        data.problems.append(Problem(str(out_dir), 0, "not a directory"))
        return data
    _read_store(data)
    _read_alerts(data)
    _read_notifications(data)
    return data


# ---------------------------------------------------------------------------- derived


@dataclass(frozen=True, slots=True)
class Interval:
    """A firing alert or a warning in force: [start, end); ``open`` = still so at the end."""

    start: datetime
    end: datetime
    open: bool
    first: Transition
    last: Transition


def warning_intervals(
    transitions: Iterable[Transition], end: datetime
) -> dict[str, list[Interval]]:
    """Per locality the warnings in force: each issue/upgrade/downgrade starts an interval at its
    level, ending with the next change or the lift; one still in force runs to ``end``."""
    out: dict[str, list[Interval]] = {}
    current: dict[str, Transition] = {}
    for t in transitions:
        if t.kind is not TransitionKind.WARNING:
            continue
        held = current.pop(t.locality, None)
        if held is not None:
            out.setdefault(t.locality, []).append(Interval(held.at, t.at, False, held, t))
        if t.state is AlertState.FIRING:
            current[t.locality] = t
    for loc, held in current.items():
        out.setdefault(loc, []).append(Interval(held.at, max(end, held.at), True, held, held))
    return out


def alert_intervals(transitions: Iterable[Transition], end: datetime) -> list[Interval]:
    """Firing intervals of the alerts (firing → resolved, per fingerprint); an alert still
    firing at the end runs to ``end``. Pending alerts never fired: not drawn."""
    out: list[Interval] = []
    current: dict[str, tuple[Transition, Transition]] = {}
    for t in transitions:
        if t.kind is not TransitionKind.ALERT:
            continue
        held = current.get(t.fingerprint)
        if t.state is AlertState.FIRING:
            current[t.fingerprint] = (t, t) if held is None else (held[0], t)
        elif t.state is AlertState.RESOLVED and held is not None:
            del current[t.fingerprint]
            out.append(Interval(held[0].at, t.at, False, held[0], t))
    for first, last in current.values():
        out.append(Interval(first.at, max(end, first.at), True, first, last))
    return sorted(out, key=lambda i: (i.start, i.first.source))


def _names(config: Path, data: RunData) -> tuple[Names, str | None]:
    """Display names from the catalogue, completed from the transitions' annotations."""
    note: str | None = None
    from streams.catalog import CatalogView

    try:
        names = Names.from_catalog(CatalogView(config).catalog)
    except (RulesError, OSError, ValueError) as exc:  # without the catalogue: ids are shown
        names, note = Names(), f"{config}: {type(exc).__name__}: {exc}"
    localities, sources = dict(names.localities), dict(names.sources)
    for t in data.transitions:
        if t.locality not in localities and t.annotations.get("locality_name"):
            localities[t.locality] = str(t.annotations["locality_name"])
        if t.source not in sources and t.annotations.get("source_name"):
            sources[t.source] = str(t.annotations["source_name"])
    return Names(localities, sources, names.receivers), note


# ---------------------------------------------------------------------------- HTML helpers


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _local(at: datetime, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return at.astimezone(BEIJING).strftime(fmt)


def _level(aqi: int) -> AqiLevel:
    for row in LEVELS:
        if row.upper is None or aqi <= row.upper:
            return row
    return LEVELS[-1]


def _ink(level: int) -> str:
    """Legible text on an AQI level's colour."""
    return "#000" if level <= 3 else "#fff"


def _chip(p: CityAqi | None) -> str:
    if p is None:
        return '<span class="muted">—</span>'
    if p.aqi is None or p.level is None:
        return '<span class="chip na" title="未发布 withheld">NA</span>'
    row = LEVELS[p.level - 1]
    return (
        f'<span class="chip" style="background:{row.color};color:{_ink(p.level)}" '
        f'title="{_e(row.category_en)}">{p.aqi} {_e(row.category)}</span>'
    )


def _warning_chip(level: str | None) -> str:
    if not level or level not in WARNING_COLOURS:
        return '<span class="muted">无 none</span>'
    ink = "#000" if level in ("yellow", "orange") else "#fff"
    return (
        f'<span class="chip" style="background:{WARNING_COLOURS[level]};color:{ink}">'
        f"■ {_e(warning_name(level))}</span>"
    )


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.1f} %"


def _text_width(text: str, size: float) -> float:
    """Approximate drawn width: CJK glyphs are square, Latin about 0.6 em."""
    return sum(size if ord(ch) > 0x2E7F else 0.6 * size for ch in text)


def _fit(text: str, size: float, width: float) -> str:
    if _text_width(text, size) <= width:
        return text
    while text and _text_width(text + "…", size) > width:
        text = text[:-1]
    return text + "…"


@dataclass(frozen=True, slots=True)
class _Axis:
    """The shared time axis of every chart: Beijing time, [start, end) over [left, right]."""

    start: datetime
    end: datetime
    left: float
    right: float

    def x(self, at: datetime) -> float:
        span = (self.end - self.start).total_seconds()
        frac = (at - self.start).total_seconds() / span
        return self.left + max(0.0, min(1.0, frac)) * (self.right - self.left)

    def ticks(self) -> list[tuple[datetime, str, bool]]:
        """(instant, label, whether labelled) at a step that gives at most ~16 labels."""
        span = self.end - self.start
        steps = [HOUR * h for h in (1, 3, 6, 12)] + [DAY * d for d in (1, 2, 7, 14, 30)]
        step = next((s for s in steps if span / s <= 16), steps[-1])
        grid = step if step <= DAY else DAY
        if span / grid > 120:
            grid = step
        local_start = self.start.astimezone(BEIJING)
        t = local_start.replace(minute=0, second=0, microsecond=0)
        if grid >= DAY:
            t = t.replace(hour=0)
        elif t.hour % int(grid / HOUR):
            t = t.replace(hour=t.hour - t.hour % int(grid / HOUR))
        out: list[tuple[datetime, str, bool]] = []
        first_label: datetime | None = None
        while t <= self.end:
            if t >= self.start:
                if first_label is None:
                    first_label = t
                labelled = (t - first_label) % step == timedelta(0)
                if step >= DAY:
                    label = t.strftime("%m-%d")
                else:
                    label = t.strftime("%m-%d") if t.hour == 0 else t.strftime("%H:%M")
                out.append((t, label, labelled))
            t = (t.astimezone(UTC) + grid).astimezone(BEIJING)
        return out


#: The AQI axis: the level boundaries of HJ 633 表1, each level drawn the same height (the top
#: level, > 300, up to 500: values above are drawn at the top).
AQI_BOUNDS: Final = (0, 50, 100, 150, 200, 300, 500)
W: Final = 1160  # SVG user units; drawn at the page's width
LEFT: Final = 196  # the label column shared by the AQI chart and the alert timeline
RIGHT: Final = W - 20


def _svg_open(height: float, label: str, cls: str) -> str:
    return (
        f'<svg class="{cls}" viewBox="0 0 {W} {height:.0f}" width="100%" role="img" '
        f'aria-label="{_e(label)}" preserveAspectRatio="xMinYMin meet">'
    )


def _time_grid(axis: _Axis, top: float, bottom: float, labels_y: float | None) -> list[str]:
    out: list[str] = []
    for at, label, labelled in axis.ticks():
        x = axis.x(at)
        midnight = at.astimezone(BEIJING).hour == 0
        out.append(
            f'<line class="{"grid-day" if midnight else "grid"}" x1="{x:.1f}" y1="{top:.1f}" '
            f'x2="{x:.1f}" y2="{bottom:.1f}"/>'
        )
        if labels_y is not None and labelled:
            out.append(f'<text class="tick" x="{x:.1f}" y="{labels_y:.1f}">{_e(label)}</text>')
    return out


# ---------------------------------------------------------------------------- charts


def aqi_chart(
    hours: Mapping[datetime, CityAqi],
    days: Mapping[datetime, CityAqi],
    warnings: Sequence[Interval],
    axis: _Axis,
    ymax: int,
    title: str,
) -> str:
    """The city AQI of one locality: hourly bars in their level's colour, the daily AQI as a
    dark step line with its value, the warning band (and a tint) over the plot."""
    band_top, band_h = 6.0, 20.0
    top = band_top + band_h + 8
    plot_h = 190.0
    base = top + plot_h
    height = base + 26

    bounds = [b for b in AQI_BOUNDS if b <= ymax]
    step = plot_h / (len(bounds) - 1)

    def y(aqi: float) -> float:
        """Each AQI level gets the same height (HJ 633 表1's ranges are 50 wide up to 200)."""
        aqi = max(0.0, min(float(aqi), ymax))
        for i, (lo, hi) in enumerate(pairwise(bounds)):
            if aqi <= hi:
                return base - (i + (aqi - lo) / (hi - lo)) * step
        return base - plot_h

    out = [_svg_open(height, title, "aqi-chart")]
    out.append(
        f'<rect class="plot-bg" x="{axis.left:.1f}" y="{top:.1f}" '
        f'width="{axis.right - axis.left:.1f}" height="{plot_h:.1f}"/>'
    )
    # the y axis: a strip of the level colours, grid lines at the level boundaries
    lower = 0
    for row in LEVELS:
        upper = ymax if row.upper is None else min(row.upper, ymax)
        if lower >= ymax:
            break
        out.append(
            f'<rect x="{axis.left - 7:.1f}" y="{y(upper):.1f}" width="5" '
            f'height="{y(lower) - y(upper):.1f}" fill="{row.color}"><title>'
            f"{row.lower}–{row.upper or '500+'} {_e(row.category)} {_e(row.category_en)}"
            "</title></rect>"
        )
        lower = upper
    for value in bounds[1:]:
        out.append(
            f'<line class="grid-y" x1="{axis.left:.1f}" y1="{y(value):.1f}" '
            f'x2="{axis.right:.1f}" y2="{y(value):.1f}"/>'
            f'<text class="ylabel" x="{axis.left - 11:.1f}" y="{y(value) + 4:.1f}">{value}</text>'
        )
    out += _time_grid(axis, top, base, base + 17)
    # the warning band above the plot, and its tint over the plot
    out.append(
        f'<rect class="band-bg" x="{axis.left:.1f}" y="{band_top:.1f}" '
        f'width="{axis.right - axis.left:.1f}" height="{band_h:.1f}"/>'
        f'<text class="band-label" x="{axis.left - 11:.1f}" y="{band_top + 14:.1f}">'
        "预警 warning</text>"
    )
    for iv in warnings:
        wlevel = iv.first.level or ""
        colour = WARNING_COLOURS.get(wlevel, "#888")
        x0, x1 = axis.x(iv.start), axis.x(iv.end)
        ink = "#000" if wlevel in ("yellow", "orange") else "#fff"
        zh, en = WARNING_EVENTS.get(iv.first.reason, (iv.first.reason.value, ""))
        end_text = "仍在生效 in force at the end" if iv.open else f"至 until {_local(iv.end)}"
        tip = f"{warning_name(wlevel)} — {zh} {en} {_local(iv.start)}，{end_text}"
        out.append(
            f'<g class="warning-band" data-level="{_e(wlevel)}" data-open="{str(iv.open).lower()}">'
            f"<title>{_e(tip)}</title>"
            f'<rect class="warning-tint" x="{x0:.1f}" y="{top:.1f}" width="{max(x1 - x0, 1):.1f}" '
            f'height="{plot_h:.1f}" fill="{colour}"/>'
            f'<rect x="{x0:.1f}" y="{band_top:.1f}" width="{max(x1 - x0, 1):.1f}" '
            f'height="{band_h:.1f}" fill="{colour}"/>'
        )
        zh_name = warning_name(wlevel).split(" ")[0]
        label = next(
            (
                text
                for text in (warning_name(wlevel), zh_name, zh_name[:2])
                if _text_width(text, 12) + 8 <= x1 - x0
            ),
            "",
        )
        if label:
            out.append(
                f'<text class="band-text" x="{x0 + 5:.1f}" y="{band_top + 14:.1f}" '
                f'fill="{ink}">{_e(label)}</text>'
            )
        out.append("</g>")
    # hourly AQI: one path per level, a rectangle per hour (its label is the hour's end)
    paths: dict[int, list[str]] = {}
    withheld: list[str] = []
    for at, p in sorted(hours.items()):
        x0, x1 = axis.x(at - HOUR), axis.x(at)
        if p.aqi is None or p.level is None:
            withheld.append(f"M{x0:.1f} {base - 3:.1f}H{x1:.1f}V{base:.1f}H{x0:.1f}Z")
            continue
        paths.setdefault(p.level, []).append(
            f"M{x0:.1f} {y(p.aqi):.1f}H{x1:.1f}V{base:.1f}H{x0:.1f}Z"
        )
    for level, parts in sorted(paths.items()):
        row = LEVELS[level - 1]
        out.append(
            f'<path class="aqi-hour" data-level="{level}" fill="{row.color}" d="{"".join(parts)}">'
            f"<title>{_e(f'小时AQI hourly AQI: {row.category} {row.category_en}')}</title></path>"
        )
    if withheld:
        out.append(
            f'<path class="aqi-na" d="{"".join(withheld)}"><title>NA 未发布 withheld</title></path>'
        )
    # daily AQI: a step line (white halo under it) with the value in its level's colour
    segments = []
    for at, p in sorted(days.items()):
        if p.aqi is None:
            continue
        segments.append((axis.x(at), axis.x(at + DAY), y(p.aqi), at, p))
    if segments:
        d = "".join(f"M{x0:.1f} {yy:.1f}H{x1:.1f}" for x0, x1, yy, _, _ in segments)
        out.append(f'<path class="aqi-day-halo" d="{d}"/><path class="aqi-day" d="{d}"/>')
    for x0, x1, yy, at, p in segments:
        assert p.aqi is not None
        row = _level(p.aqi)
        tip = f"{_local(at, '%Y-%m-%d')} 日AQI daily AQI {p.aqi} {row.category} {row.category_en}"
        if p.primary:
            tip += f"，首要污染物 primary {p.primary.upper()}"
        label = str(p.aqi)
        w = _text_width(label, 11) + 8
        out.append(f'<g class="aqi-day-value"><title>{_e(tip)}</title>')
        out.append(
            f'<rect class="day-hit" x="{x0:.1f}" y="{yy - 6:.1f}" width="{x1 - x0:.1f}" '
            'height="12"/>'
        )
        if x1 - x0 >= w + 4:
            cx = (x0 + x1) / 2
            ty = max(top + 1, yy - 19)
            out.append(
                f'<rect x="{cx - w / 2:.1f}" y="{ty:.1f}" width="{w:.1f}" height="15" rx="3" '
                f'fill="{row.color}" stroke="#333" stroke-width="0.8"/>'
                f'<text class="day-text" x="{cx:.1f}" y="{ty + 11.5:.1f}" '
                f'fill="{_ink(row.level)}">{label}</text>'
            )
        out.append("</g>")
    # the label column
    out.append(
        f'<text class="chart-title" x="8" y="{top + 16:.1f}">城市 AQI</text>'
        f'<text class="chart-sub" x="8" y="{top + 32:.1f}">city AQI (HJ 633)</text>'
        f'<rect x="8" y="{top + 44:.1f}" width="14" height="9" fill="#FF7E00"/>'
        f'<text class="chart-sub" x="28" y="{top + 53:.1f}">小时 hourly</text>'
        f'<line class="aqi-day" x1="8" y1="{top + 66:.1f}" x2="22" y2="{top + 66:.1f}"/>'
        f'<text class="chart-sub" x="28" y="{top + 70:.1f}">日 daily</text>'
        f'<text class="chart-sub" x="8" y="{top + 92:.1f}">纵轴每级等高</text>'
        f'<text class="chart-sub" x="8" y="{top + 106:.1f}">y: one band per level</text>'
    )
    if not hours and not days:
        out.append(
            f'<text class="empty" x="{(axis.left + axis.right) / 2:.1f}" y="{top + plot_h / 2:.1f}">'
            "无城市 AQI 数据 no city AQI in the data</text>"
        )
    out.append("</svg>")
    return "".join(out)


def _lanes(intervals: Sequence[Interval]) -> list[int]:
    """Greedy lane per interval (sorted by start) so that overlapping ones sit apart."""
    ends: list[datetime] = []
    lanes: list[int] = []
    for iv in intervals:
        for i, end in enumerate(ends):
            if end <= iv.start:
                ends[i] = iv.end
                lanes.append(i)
                break
        else:
            ends.append(iv.end)
            lanes.append(len(ends) - 1)
    return lanes


def alert_chart(
    intervals: Sequence[Interval],
    axis: _Axis,
    names: Names,
    colours: Mapping[str, str],
    title: str,
) -> str:
    """The alerts of one locality: a row per source, a bar per firing interval in its rule's
    colour; one still firing at the end is dashed and runs to the end."""
    per: dict[str, list[Interval]] = {}
    for iv in intervals:
        per.setdefault(iv.first.source, []).append(iv)
    lane_h, gap, top = 11.0, 7.0, 4.0
    rows: list[tuple[str, list[Interval], list[int], float, float]] = []
    y = top
    for source, ivs in sorted(per.items(), key=lambda kv: (kv[1][0].start, kv[0])):
        lanes = _lanes(ivs)
        h = (max(lanes) + 1) * lane_h + gap
        rows.append((source, ivs, lanes, y, h))
        y += h
    bottom = max(y, top + 24)
    height = bottom + 22
    out = [_svg_open(height, title, "alert-chart")]
    out.append(
        f'<rect class="plot-bg" x="{axis.left:.1f}" y="{top:.1f}" '
        f'width="{axis.right - axis.left:.1f}" height="{bottom - top:.1f}"/>'
    )
    out += _time_grid(axis, top, bottom, bottom + 16)
    for i, (source, ivs, lanes, y0, h) in enumerate(rows):
        if i % 2:
            out.append(
                f'<rect class="row-alt" x="{axis.left:.1f}" y="{y0:.1f}" '
                f'width="{axis.right - axis.left:.1f}" height="{h:.1f}"/>'
            )
        name = names.source(source, ivs[0].first)
        label = name if name == source else f"{name} ({source})"
        out.append(
            f'<text class="row-label" x="{axis.left - 8:.1f}" y="{y0 + gap / 2 + 9:.1f}">'
            f"<title>{_e(label)}</title>{_e(_fit(name, 11, axis.left - 16))}</text>"
        )
        for iv, lane in zip(ivs, lanes, strict=True):
            rule = iv.first.labels.get("rule", "")
            x0, x1 = axis.x(iv.start), axis.x(iv.end)
            yy = y0 + gap / 2 + lane * lane_h
            end_text = (
                "未恢复 still firing at the end" if iv.open else f"恢复 resolved {_local(iv.end)}"
            )
            tip = (
                f"{rule_title(iv.first)} ({rule}) {label}\n"
                f"触发 firing {_local(iv.start)} → {end_text}\n"
                f"{iv.last.annotations.get('summary', '')}"
            )
            cls = "alert-bar open" if iv.open else "alert-bar"
            out.append(
                f'<rect class="{cls}" data-rule="{_e(rule)}" data-source="{_e(source)}" '
                f'x="{x0:.1f}" y="{yy:.1f}" width="{max(x1 - x0, 2):.1f}" height="{lane_h - 2:.1f}" '
                f'fill="{colours.get(rule, "#888")}"><title>{_e(tip)}</title></rect>'
            )
    if not rows:
        out.append(
            f'<text class="empty" x="{(axis.left + axis.right) / 2:.1f}" y="{top + 16:.1f}">'
            "无告警 no alert fired</text>"
        )
    out.append("</svg>")
    return "".join(out)


# ---------------------------------------------------------------------------- the page

_CSS: Final = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #eef1f4; color: #1d2733;
  font: 14px/1.45 "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei",
    "WenQuanYi Micro Hei", system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 0 16px 40px; }
header.top { background: #1d3557; color: #fff; padding: 18px 0 14px; margin-bottom: 16px; }
header.top > div { max-width: 1240px; margin: 0 auto; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 4px; font-weight: 600; }
header.top p { margin: 2px 0; color: #cfd8e3; font-size: 13px; }
nav { margin-top: 8px; font-size: 13px; }
nav a { color: #fff; margin-right: 14px; text-decoration: none; border-bottom: 1px dotted #9fb3c8; }
h2 { font-size: 18px; margin: 26px 0 10px; padding-bottom: 4px; border-bottom: 2px solid #1d3557; }
h3 { font-size: 16px; margin: 0; }
.card { background: #fff; border-radius: 8px; box-shadow: 0 1px 3px rgba(0,0,0,.12);
  padding: 12px 14px 10px; margin: 0 0 14px; }
.card-head { display: flex; flex-wrap: wrap; align-items: baseline; gap: 6px 16px; margin-bottom: 6px; }
.card-head .id { color: #6b7785; font-size: 12px; }
.facts { display: flex; flex-wrap: wrap; gap: 4px 16px; font-size: 13px; color: #36414d; }
.chip { display: inline-block; padding: 0 7px; border-radius: 4px; font-weight: 600;
  white-space: nowrap; border: 1px solid rgba(0,0,0,.25); }
.chip.na { background: #ddd; color: #555; }
.muted { color: #6b7785; }
.notice { background: #fff8e1; border-left: 5px solid #f0b400; padding: 12px 16px; border-radius: 4px;
  margin: 10px 0 16px; font-size: 15px; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 14px; font-size: 13px; align-items: center; }
.legend + .legend { margin-top: 6px; }
.legend .sw { display: inline-block; width: 14px; height: 14px; vertical-align: -2px;
  border: 1px solid rgba(0,0,0,.3); margin-right: 4px; }
.legend .sw.open { background: #fff; border: 1.5px dashed #1d2733; }
.sub-head { margin: 6px 0 2px; }
section > h3 { margin: 14px 0 6px; font-size: 15px; }
table { border-collapse: collapse; width: 100%; background: #fff; font-size: 13px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #e3e7ec; vertical-align: top; }
th { background: #e6ebf1; position: sticky; top: 0; font-weight: 600; }
tbody tr:nth-child(even) { background: #f7f9fb; }
td.num, th.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.time, td.nowrap { white-space: nowrap; font-variant-numeric: tabular-nums; }
table.overview td { white-space: nowrap; }
table.overview td:first-child { white-space: normal; min-width: 210px; }
td .sub { color: #6b7785; font-size: 12px; }
.state-firing { color: #b00020; font-weight: 600; }
.state-resolved { color: #2e7d32; font-weight: 600; }
.state-pending { color: #8a6d00; }
.bad { color: #b00020; font-weight: 600; }
.rate { display: inline-block; width: 64px; height: 9px; background: #e3e7ec; margin-left: 6px;
  vertical-align: 0; border-radius: 2px; overflow: hidden; }
.rate > span { display: block; height: 100%; background: #59A14F; }
.rate.low > span { background: #E15759; }
.tablewrap { max-height: 640px; overflow: auto; border: 1px solid #d5dbe2; border-radius: 6px; }
ul.problems { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px;
  background: #fff; padding: 8px 8px 8px 28px; border: 1px solid #d5dbe2; border-radius: 6px;
  max-height: 320px; overflow: auto; }
svg { display: block; font-size: 11px; }
svg .plot-bg { fill: #fafbfc; stroke: #c9d1da; stroke-width: 1; }
svg .grid { stroke: #e6eaee; stroke-width: 1; }
svg .grid-day { stroke: #cfd6dd; stroke-width: 1; }
svg .grid-y { stroke: #c9d1da; stroke-width: 1; stroke-dasharray: 3 3; }
svg .tick { fill: #4a5563; text-anchor: middle; font-size: 11px; }
svg .ylabel, svg .band-label, svg .row-label { fill: #36414d; text-anchor: end; font-size: 11px; }
svg .band-bg { fill: #eef0f2; stroke: #c9d1da; stroke-width: 1; }
svg .band-text { font-size: 12px; font-weight: 600; }
svg .warning-tint { opacity: .16; }
svg .aqi-hour { stroke: none; }
svg .aqi-na { fill: #9aa3ad; }
svg .aqi-day { fill: none; stroke: #1d2733; stroke-width: 2.2; }
svg .aqi-day-halo { fill: none; stroke: #fff; stroke-width: 5; opacity: .85; }
svg .day-hit { fill: transparent; }
svg .day-text { font-size: 11px; font-weight: 700; text-anchor: middle; }
svg .chart-title { font-size: 14px; font-weight: 700; fill: #1d2733; }
svg .chart-sub { font-size: 11px; fill: #4a5563; }
svg .row-alt { fill: #f0f3f6; }
svg .alert-bar { stroke: rgba(0,0,0,.35); stroke-width: .6; }
svg .alert-bar.open { stroke: #1d2733; stroke-width: 1.2; stroke-dasharray: 4 2; }
svg .empty { fill: #6b7785; text-anchor: middle; font-size: 13px; }
footer { color: #6b7785; font-size: 12px; margin-top: 28px; }
@media print { body { background: #fff; } .card { box-shadow: none; border: 1px solid #ccc; }
  .tablewrap { max-height: none; overflow: visible; } header.top { background: #fff; color: #000; } }
"""


def _table(head: Sequence[tuple[str, str]], rows: Iterable[Sequence[str]], cls: str) -> str:
    """A table; ``head`` is (html, css class) per column, each row holds html cells."""
    out = [f'<div class="tablewrap"><table class="{cls}"><thead><tr>']
    out += [f'<th class="{c}">{h}</th>' if c else f"<th>{h}</th>" for h, c in head]
    out.append("</tr></thead><tbody>")
    classes = [c for _, c in head]
    for row in rows:
        out.append("<tr>")
        out += [
            f'<td class="{c}">{v}</td>' if c else f"<td>{v}</td>"
            for v, c in zip(row, classes, strict=True)
        ]
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


_STATE: Final = {
    "firing": ("触发", "firing"),
    "resolved": ("恢复", "resolved"),
    "pending": ("待定", "pending"),
}


def _state_cell(state: str, reason: str = "") -> str:
    zh, en = _STATE.get(state, (state, ""))
    text = f'<span class="state-{_e(state)}">{_e(zh)} {_e(en)}</span>'
    return text + (f'<div class="sub">{_e(reason)}</div>' if reason else "")


def _source_cell(names: Names, source: str, t: Transition | None = None) -> str:
    name = names.source(source, t)
    if name == source:
        return _e(source)
    return f'{_e(name)} <span class="sub">({_e(source)})</span>'


def _rate_cell(v: float | None) -> str:
    if v is None:
        return "—"
    width = max(0.0, min(1.0, v)) * 100
    low = v < RATE_THRESHOLD
    return (
        f'<span class="{"bad" if low else ""}">{_pct(v)}</span>'
        f'<span class="rate{" low" if low else ""}"><span style="width:{width:.0f}%"></span></span>'
    )


def _localities(names: Names, data: RunData) -> list[str]:
    seen = dict.fromkeys(names.localities)
    for loc in (*data.hours, *data.days, *(t.locality for t in data.transitions)):
        seen.setdefault(loc, None)
    return list(seen)


@dataclass(frozen=True, slots=True)
class _Page:
    """What every section of the page draws from."""

    data: RunData
    names: Names
    span: tuple[datetime, datetime] | None
    warnings: Mapping[str, Sequence[Interval]]
    alerts: Sequence[Interval]
    alert_ts: Sequence[Transition]
    warning_ts: Sequence[Transition]
    localities: Sequence[str]
    rules: Sequence[str]
    colours: Mapping[str, str]
    titles: Mapping[str, str]

    @classmethod
    def of(cls, data: RunData, names: Names) -> _Page:
        span = data.span()
        end = span[1] if span is not None else datetime(1970, 1, 1, tzinfo=UTC)
        alert_ts = [t for t in data.transitions if t.kind is TransitionKind.ALERT]
        rules = sorted({t.labels.get("rule", "") for t in alert_ts})
        return cls(
            data=data,
            names=names,
            span=span,
            warnings=warning_intervals(data.transitions, end),
            alerts=alert_intervals(data.transitions, end),
            alert_ts=alert_ts,
            warning_ts=[t for t in data.transitions if t.kind is TransitionKind.WARNING],
            localities=_localities(names, data),
            rules=rules,
            colours={r: RULE_PALETTE[i % len(RULE_PALETTE)] for i, r in enumerate(rules)},
            titles={t.labels.get("rule", ""): rule_title(t) for t in alert_ts},
        )


def render(data: RunData, names: Names, *, title: str, config_note: str | None = None) -> str:
    """The report page of ``data`` (pure)."""
    page = _Page.of(data, names)
    out = [*_head(page, title), "<main>"]
    if data.empty:
        out.append(
            '<div class="notice" id="no-data"><b>无数据 no data</b> — '
            f"{_e(data.directory)} 中没有可读的线协议 (*.lp) 或告警记录 (alerts.jsonl)；"
            "it holds no readable line protocol (*.lp) and no alert log (alerts.jsonl).</div>"
        )
    if config_note:
        out.append(
            f'<div class="notice">未能读取目录 catalogue not read, ids shown instead: '
            f"{_e(config_note)}</div>"
        )
    out += _overview(page)
    out += _locality_cards(page)
    out += _warning_table(page)
    out += _alert_table(page)
    if data.notifications is not None:
        out += _notification_table(page, data.notifications)
    out += _quality(page)
    out.append(
        "<footer>envwatch report — 由 <code>envwatch report DIR</code> 生成 made from the "
        "directory's line protocol and alerts.jsonl; 时间均为北京时间 times are Beijing time; "
        "AQI 颜色依据 HJ 633 附录A colours per HJ 633 Annex A.</footer>"
    )
    out.append("</main></body></html>\n")
    return "".join(out)


def _head(page: _Page, title: str) -> list[str]:
    data, span = page.data, page.span
    out = [
        '<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="generator" content="envwatch report">',
        f"<title>{_e(title)}</title>",
        '<link rel="icon" href="data:,">',
        f"<style>{_CSS}</style></head><body>",
        '<header class="top"><div>',
        f"<h1>{_e(title)}</h1>",
        f"<p>目录 directory: <b>{_e(data.directory)}</b></p>",
    ]
    if span is not None:
        hours = (span[1] - span[0]) / HOUR
        out.append(
            f"<p>数据时段 data span (北京时间 Beijing time): {_local(span[0])} – "
            f"{_local(span[1])} ({hours:,.0f} h)</p>"
        )
    out.append(
        f"<p>{len(data.lp_files)} 个线协议文件 line-protocol files, {data.lp_lines:,} 行 lines; "
        f"{len(page.alert_ts):,} 条告警变化 alert transitions, {len(page.warning_ts):,} 条预警变化 "
        f"warning changes{'' if data.alerts_log else ' (no alerts.jsonl)'}</p>"
    )
    sections = [("overview", "总览 overview"), ("localities", "各地 localities")]
    sections += [("warnings", "预警 warnings"), ("alerts", "告警 alerts")]
    if data.notifications is not None:
        sections.append(("notifications", "通知 notifications"))
    sections.append(("quality", "数据质量 data quality"))
    out.append("<nav>" + "".join(f'<a href="#{a}">{_e(t)}</a>' for a, t in sections) + "</nav>")
    out.append("</div></header>")
    return out


def _legend(page: _Page) -> list[str]:
    out = ['<div class="card"><div class="legend"><b>AQI (HJ 633)</b>']
    for row in LEVELS:
        bounds = f"{row.lower}–{row.upper}" if row.upper is not None else f"&gt;{row.lower - 1}"
        out.append(
            f'<span><span class="sw" style="background:{row.color}"></span>{bounds} '
            f"{_e(row.category)} {_e(row.category_en)} ({_e(AQI_COLOUR_NAMES[row.level])})</span>"
        )
    out.append("</div><div class='legend'><b>重污染天气预警 warning</b>")
    for level in ("yellow", "orange", "red"):
        out.append(
            f'<span><span class="sw" style="background:{WARNING_COLOURS[level]}"></span>'
            f"{_e(warning_name(level))}</span>"
        )
    if page.rules:
        out.append("</div><div class='legend'><b>告警规则 alert rules</b>")
        for r in page.rules:
            out.append(
                f'<span><span class="sw" style="background:{page.colours[r]}"></span>'
                f"{_e(page.titles.get(r) or r)} <span class='muted'>{_e(r)}</span></span>"
            )
        out.append(
            "<span><span class='sw open'></span>虚线框 dashed = 结束时未恢复 still firing at "
            "the end</span>"
        )
    out.append("</div></div>")
    return out


_WARNING_ORDER: Final = {"blue": 0, "yellow": 1, "orange": 2, "red": 3}


def _overview(page: _Page) -> list[str]:
    data = page.data
    out = ['<section id="overview"><h2>总览 overview</h2>', *_legend(page)]
    rows = []
    for loc in page.localities:
        hours = data.hours.get(loc, {})
        latest = hours[max(hours)] if hours else None
        peak = max(
            (p for p in data.days.get(loc, {}).values() if p.aqi is not None),
            key=lambda p: p.aqi or 0,
            default=None,
        )
        ivs = page.warnings.get(loc, [])
        in_force = next((iv.first.level for iv in ivs if iv.open), None)
        highest = max(
            (iv.first.level or "" for iv in ivs),
            key=lambda lv: _WARNING_ORDER.get(lv, -1),
            default=None,
        )
        fired = [iv for iv in page.alerts if iv.first.locality == loc]
        still = sum(1 for iv in fired if iv.open)
        rates = [
            q.mean(0) for q in data.quality.values() if q.locality == loc and q.kind != "forecast"
        ]
        low = min((r for r in rates if r is not None), default=None)
        latest_at = (
            f' <span class="sub">{_local(latest.at, "%m-%d %H:%M")}</span>' if latest else ""
        )
        peak_at = f' <span class="sub">{_local(peak.at, "%m-%d")}</span>' if peak else ""
        rows.append(
            [
                f'<a href="#loc-{_e(loc)}">{_e(page.names.locality(loc))}</a> '
                f'<span class="sub">({_e(loc)})</span>',
                _chip(latest) + latest_at,
                _chip(peak) + peak_at,
                _warning_chip(in_force),
                _warning_chip(highest),
                str(len(fired)),
                f'<span class="{"bad" if still else ""}">{still}</span>',
                _rate_cell(low),
            ]
        )
    head = [
        ("地区 locality", ""),
        ("最新小时AQI latest hourly", ""),
        ("最高日AQI peak daily", ""),
        ("结束时预警 warning at the end", ""),
        ("最高预警 highest warning", ""),
        ("告警 alerts fired", "num"),
        ("未恢复 still firing", "num"),
        ("最低传输率 lowest transmission", ""),
    ]
    out += [_table(head, rows, "overview"), "</section>"]
    return out


def _locality_cards(page: _Page) -> list[str]:
    data, names = page.data, page.names
    out = ['<section id="localities"><h2>各地 localities</h2>']
    if page.span is None:
        out += ['<p class="muted">无时间序列 no time series to draw.</p>', "</section>"]
        return out
    axis = _Axis(page.span[0], page.span[1], float(LEFT), float(RIGHT))
    peak = max(
        (
            p.aqi
            for series in (*data.hours.values(), *data.days.values())
            for p in series.values()
            if p.aqi is not None
        ),
        default=0,
    )
    ymax = next((b for b in AQI_BOUNDS[4:] if peak <= b), AQI_BOUNDS[-1])
    for loc in page.localities:
        name = names.locality(loc)
        ivs = page.warnings.get(loc, [])
        alerts = [iv for iv in page.alerts if iv.first.locality == loc]
        out.append(f'<div class="card locality" id="loc-{_e(loc)}" data-locality="{_e(loc)}">')
        out.append(
            f'<div class="card-head"><h3>{_e(name)}</h3><span class="id">{_e(loc)}</span>'
            '<div class="facts">'
        )
        for iv in ivs:
            zh, _en = WARNING_EVENTS.get(iv.first.reason, (iv.first.reason.value, ""))
            until = "至结束 to the end" if iv.open else f"至 {_local(iv.end, '%m-%d %H:%M')}"
            out.append(
                f"<span>{_warning_chip(iv.first.level)} {_e(zh)} "
                f"{_local(iv.start, '%m-%d %H:%M')} {_e(until)}</span>"
            )
        if not ivs:
            out.append('<span class="muted">无重污染天气预警 no heavy-pollution warning</span>')
        out.append("</div></div>")
        out.append(
            aqi_chart(
                data.hours.get(loc, {}),
                data.days.get(loc, {}),
                ivs,
                axis,
                ymax,
                f"{name} 城市AQI city AQI",
            )
        )
        out.append(
            '<div class="facts sub-head"><b>告警时间线 alert timeline</b>'
            f"<span>{len(alerts)} 次触发 fired, "
            f"{sum(1 for iv in alerts if iv.open)} 未恢复 still firing at the end</span></div>"
        )
        out.append(alert_chart(alerts, axis, names, page.colours, f"{name} 告警 alerts"))
        out.append("</div>")
    out.append("</section>")
    return out


def _warning_table(page: _Page) -> list[str]:
    out = ['<section id="warnings"><h2>重污染天气预警 heavy-pollution warnings</h2>']
    if not page.warning_ts:
        return [*out, '<p class="muted">无预警 no warning was issued.</p>', "</section>"]
    rows = []
    for t in page.warning_ts:
        zh, en = WARNING_EVENTS.get(t.reason, (t.reason.value, ""))
        level = (
            _warning_chip(t.level)
            if t.state is AlertState.FIRING
            else '<span class="muted">—</span>'
        )
        rows.append(
            [
                _local(t.at),
                _e(page.names.locality(t.locality)),
                f"{_e(zh)} {_e(en)}",
                level,
                _e(t.annotations.get("rule_set", t.labels.get("rule", ""))),
                _e(t.annotations.get("summary", "")),
            ]
        )
    head = [
        ("时间 time (Beijing)", "time"),
        ("地区 locality", ""),
        ("变化 change", ""),
        ("级别 level", ""),
        ("规则集 rule set", ""),
        ("内容 summary", ""),
    ]
    return [*out, _table(head, rows, "warnings"), "</section>"]


def _alert_table(page: _Page) -> list[str]:
    out = [f'<section id="alerts"><h2>告警 alerts ({len(page.alert_ts):,})</h2>']
    if not page.alert_ts:
        return [*out, '<p class="muted">无告警 no alert transition.</p>', "</section>"]
    rows = []
    for t in page.alert_ts:
        rule = t.labels.get("rule", "")
        period = t.labels.get("period", "")
        pzh, pen = PERIODS.get(period, (period, ""))
        rows.append(
            [
                _local(t.at),
                _e(page.names.locality(t.locality)),
                _source_cell(page.names, t.source, t),
                f'{_e(page.titles.get(rule) or rule)}<div class="sub">{_e(rule)}</div>',
                f'{_e(pzh)}<div class="sub">{_e(pen)}</div>'
                if period
                else '<span class="muted">—</span>',
                _state_cell(t.state.value, t.reason.value),
                _e(t.annotations.get("summary", "")),
            ]
        )
    head = [
        ("时间 time (Beijing)", "time"),
        ("地区 locality", ""),
        ("监测点 source", ""),
        ("规则 rule", ""),
        ("时段 period", "nowrap"),
        ("状态 state", "nowrap"),
        ("内容 summary", ""),
    ]
    return [*out, _table(head, rows, "alerts"), "</section>"]


def _notification_table(page: _Page, notifications: Sequence[Mapping[str, str]]) -> list[str]:
    out = [f'<section id="notifications"><h2>通知 notifications ({len(notifications):,})</h2>']
    if not notifications:
        return [*out, '<p class="muted">无通知 no notification.</p>', "</section>"]
    rows = []
    for n in notifications:
        receiver = n["receiver"]
        shown = page.names.receiver(receiver)
        try:
            at = datetime.fromisoformat(n["at"])
            when = _local(at) if at.tzinfo is not None else _e(n["at"])
        except ValueError:
            when = _e(n["at"])
        rows.append(
            [
                _e(shown)
                + (f' <span class="sub">({_e(receiver)})</span>' if shown != receiver else ""),
                f'<span class="sub">{_e(n["id"])}</span>',
                when,
                _state_cell(n["state"]) if n["state"] else "—",
                _e(n["summary"]),
            ]
        )
    head = [
        ("接收方 receiver", ""),
        ("编号 id", ""),
        ("时间 time (Beijing)", "time"),
        ("状态 state", ""),
        ("内容 summary", ""),
    ]
    return [*out, _table(head, rows, "notifications"), "</section>"]


def _quality(page: _Page) -> list[str]:
    data, names = page.data, page.names
    out = [
        '<section id="quality"><h2>数据质量 data quality</h2>',
        "<h3>数据传输率与有效率 transmission and valid rates "
        "<span class='muted'>(日均 mean of the days, 最低 lowest day; 低于 below "
        f"{RATE_THRESHOLD:.0%} 标红 in red; 最差在前 worst first)</span></h3>",
    ]
    quality = [(s, q) for s, q in data.quality.items() if q.kind != "forecast"]

    def worst(item: tuple[str, Quality]) -> tuple[float, str, str]:
        s, q = item
        rates = [r for r in (q.mean(0), q.mean(1)) if r is not None]
        return (min(rates) if rates else 2.0, q.locality, s)

    quality.sort(key=worst)
    if quality:
        rows = [
            [
                _e(names.locality(q.locality)),
                _source_cell(names, s),
                _e(q.kind),
                str(len(q.days)),
                _rate_cell(q.mean(0)),
                _pct(q.lowest(0)),
                _rate_cell(q.mean(1)),
                _pct(q.lowest(1)),
            ]
            for s, q in quality
        ]
        head = [
            ("地区 locality", ""),
            ("监测点 source", ""),
            ("类型 kind", ""),
            ("天数 days", "num"),
            ("传输率 transmission", "nowrap"),
            ("最低 lowest", "num"),
            ("有效率 valid", "nowrap"),
            ("最低 lowest", "num"),
        ]
        out.append(_table(head, rows, "quality"))
    else:
        out.append('<p class="muted">无日数据质量 no daily data-quality points.</p>')
    out.append(f"<h3>死信 dead letters ({sum(data.dead_letters.values()):,})</h3>")
    if data.dead_letters:
        ordered = sorted(data.dead_letters.items(), key=lambda kv: (-kv[1], kv[0]))
        out.append(
            _table(
                [("数量 count", "num"), ("环节 stage", ""), ("原因 reason", "")],
                [[f"{n:,}", _e(stage), _e(reason)] for (stage, reason), n in ordered],
                "dead-letters",
            )
        )
    else:
        out.append(
            '<p class="muted">'
            + ("无 none." if data.lp_files else "无 none (no line protocol).")
            + "</p>"
        )
    out.append(f"<h3>无法读取的行 unreadable lines ({len(data.problems):,})</h3>")
    if data.problems:
        out.append('<ul class="problems">')
        out += [f"<li>{_e(p)}</li>" for p in data.problems[:PROBLEMS_LISTED]]
        if len(data.problems) > PROBLEMS_LISTED:
            out.append(f"<li>… {len(data.problems) - PROBLEMS_LISTED:,} more 其余未列出</li>")
        out.append("</ul>")
    else:
        out.append('<p class="muted">无 none: every line was read.</p>')
    if data.measurements:
        counts = ", ".join(f"{m} {n:,}" for m, n in sorted(data.measurements.items()))
        out.append(f'<p class="muted">线协议按测量 line protocol by measurement: {_e(counts)}</p>')
    out.append("</section>")
    return out


def write_report(
    out_dir: Path, *, config: Path = Path("deploy/config"), title: str | None = None
) -> Path:
    """Read ``out_dir`` (``*.lp``, ``alerts.jsonl``, ``notifications.jsonl``) and write
    ``out_dir/report.html``; returns its path. Bad input is listed in the report, never raised."""
    out_dir.mkdir(parents=True, exist_ok=True)
    data = read_run(out_dir)
    names, note = _names(config, data)
    page = render(
        data,
        names,
        title=title or f"envwatch 运行报告 run report — {out_dir.resolve().name}",
        config_note=note,
    )
    path = out_dir / REPORT_NAME
    tmp = out_dir / f".{REPORT_NAME}.tmp"
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path
