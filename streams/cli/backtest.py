"""``envwatch backtest``: replay a stored history and show what would have fired.

Two kinds of history:

* **Samples** — what the live worker consumes — replayed through the SAME pure path as the
  worker: ``rules.evaluate.step`` (context from the catalogue, ``streams.catalog.context_of``) →
  the points the evaluate agent forwards on ``aggregates`` (``streams.wire``:
  readings, exceedances, per-sample water classes, daily data quality; serialised and decoded as
  on the wire) → ``alerts.locality.LocalityState.step`` (context from
  ``streams.catalog.locality_context``) — city AQI, heavy-pollution warnings and every
  alert rule, offline detection by the locality's watermark. Accepted as

  - JSON lines (``.jsonl``/``.json``): the MQTT payloads (``ingest/schemas.py``) as
    ``envwatch simulate run --out FILE`` writes them, with or without ``--envelope`` (an
    envelope's ``at`` is when the sample was delivered: replayed then — a forecast at its issue
    time; a bare payload is replayed at its own time, a forecast therefore at its target day);
  - line protocol with measurement ``reading`` as the store holds it (``envwatch demo --out DIR``
    writes ``DIR/*.lp``; a directory argument reads every ``*.lp``, ``*.lp.gz`` and ``*.lp.open``
    in it). Flagged values are stored without their value (``invalid="pm25:D"``) and come back
    as flagged; the interval is ``day`` for sources the catalogue expects daily, else ``hour``.

  Samples of sources the catalogue does not know are skipped and counted, as the worker
  dead-letters them. Samples are replayed in event-time order (``--order file`` keeps the file's
  order, e.g. to replay a late/duplicated delivery).

* **Evaluations** (the former path, alert engine only, no warnings): CSV with a header; columns
  ``time`` (ISO-8601 with offset), ``kind`` (an ``alerts.rules.EvaluationKind``), ``locality``,
  ``source``, ``factor``, ``value``; optional ``limit``, ``flags`` and any of ``enterprise``,
  ``station``, ``section``, ``outlet``, ``status``; or line protocol with measurement
  ``evaluation`` (tags ``kind``, ``locality``, ``source``, ``factor`` …, fields ``value``,
  ``limit``, ``flags``). A line-protocol file without ``reading`` lines takes this path.

Output: a table of every transition someone would be told of (``--all``: every transition) with
its event time and the lead from the first sample of its source (warnings: of the locality),
then the heavy-pollution-warning timeline per locality; or ``--json``: one JSON object per line,
``alerts.model.Transition.to_dict()`` plus ``lead_seconds``. Bad lines are reported with line
number, field and reason, and skipped.
"""

from __future__ import annotations

import csv
import gzip
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from alerts.errors import AlertsError
from alerts.model import Transition
from alerts.rules import AlertRules, Evaluation, default_rules
from rules import evaluate as engine
from rules.beijing import BEIJING
from rules.errors import ConfigError, RulesError
from rules.forecast import issue_of
from streams.cli._app import app
from streams.wire import issue_bytes

if TYPE_CHECKING:
    from alerts.commands import Command, CommandResult
    from alerts.locality import LocalityState
    from rules.warnings import WarningRuleSet
    from streams.catalog import CatalogView


DETAIL_COLUMNS = ("enterprise", "station", "section", "outlet", "status")


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row that could not be read: where, which field, why."""

    line: int
    field: str
    reason: str
    file: str = ""


def _evaluation(fields: dict[str, str], line: int) -> Evaluation | BadRow:
    for name in ("time", "kind", "locality", "source", "factor"):
        if not fields.get(name):
            return BadRow(line, name, "missing")
    try:
        at = datetime.fromisoformat(fields["time"])
    except ValueError:
        return BadRow(line, "time", f"not ISO-8601: {fields['time']!r}")
    if at.tzinfo is None:
        return BadRow(line, "time", "no timezone offset")
    numbers: dict[str, float | None] = {}
    for name in ("value", "limit"):
        raw = fields.get(name, "")
        try:
            numbers[name] = float(raw) if raw not in ("", None) else None
        except ValueError:
            return BadRow(line, name, f"not a number: {raw!r}")
    flags = frozenset(f for f in (fields.get("flags") or "").replace(";", ",").split(",") if f)
    try:
        return Evaluation(
            kind=fields["kind"],
            locality=fields["locality"],
            source=fields["source"],
            factor=fields["factor"],
            value=numbers["value"],
            limit=numbers["limit"],
            time=at,
            flags=flags,
            detail={k: fields[k] for k in DETAIL_COLUMNS if fields.get(k)},
        )
    except AlertsError as exc:
        return BadRow(line, getattr(exc, "field", "row"), getattr(exc, "reason", str(exc)))


def read_csv(lines: Iterable[str]) -> Iterator[Evaluation | BadRow]:
    """Evaluations from CSV text (header first)."""
    reader = csv.DictReader(lines)
    for row in reader:
        yield _evaluation({k: (v or "").strip() for k, v in row.items() if k}, reader.line_num)


def _split_unescaped(text: str, sep: str) -> list[str]:
    out, cur, i = [], [], 0
    quoted = False
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            cur.append(text[i + 1])
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
        elif ch == sep and not quoted:
            out.append("".join(cur))
            cur = []
            i += 1
            continue
        cur.append(ch)
        i += 1
    out.append("".join(cur))
    return out


def read_line_protocol(
    lines: Iterable[str], measurement: str = "evaluation"
) -> Iterator[Evaluation | BadRow | None]:
    """Evaluations from line protocol; None for lines of other measurements (skipped)."""
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        parts = _split_unescaped(text, " ")
        if len(parts) != 3:
            yield BadRow(number, "line", "expected '<series> <fields> <timestamp>'")
            continue
        series, field_set, stamp = parts
        head = _split_unescaped(series, ",")
        if head[0] != measurement:
            yield None
            continue
        fields: dict[str, str] = {}
        for pair in head[1:] + _split_unescaped(field_set, ","):
            key, sep, value = pair.partition("=")
            if not sep:
                yield BadRow(number, pair, "expected key=value")
                break
            value = value.strip('"')
            if value.endswith("i") and value[:-1].lstrip("-").isdigit():
                value = value[:-1]
            fields[key] = value
        else:
            try:
                fields["time"] = datetime.fromtimestamp(int(stamp) / 1e9, tz=UTC).isoformat()
            except ValueError:
                yield BadRow(number, "timestamp", f"not an integer: {stamp!r}")
                continue
            yield _evaluation(fields, number)


# ---------------------------------------------------------------- samples (the live path)

#: (line number, sample, when the live worker received it: the sample's time, or for an AQI
#: forecast its ``issued`` time — the clock of the worker when it arrived)
Numbered = tuple[int, engine.Sample, datetime]


def _sample_of(payload: Any) -> engine.Sample:
    """An MQTT payload (dict) → rules.evaluate.Sample, validated as the bridge validates it."""
    from ingest.schemas import ForecastIssue
    from ingest.schemas import Sample as Payload

    if isinstance(payload, dict) and "days" in payload:
        issue = ForecastIssue.model_validate(payload)
        return engine.Sample(
            kind=issue.kind.value,
            locality=issue.locality,
            source=issue.source,
            time=issue.time,
            interval="day",
            values={},
            forecast=issue_of(
                issue.issuer, [d.model_dump(mode="json", exclude_none=True) for d in issue.days]
            ),
        )
    p = Payload.model_validate(payload)
    return engine.Sample(
        kind=p.kind.value,
        locality=p.locality,
        source=p.source,
        time=p.time,
        interval=p.interval.value,
        values={f: (v.value, v.flag.value) for f, v in p.values.items()},
    )


def read_samples_json(lines: Iterable[str]) -> Iterator[Numbered | BadRow]:
    """Samples from JSON lines: MQTT payloads, or ``--envelope`` records carrying one."""
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text:
            continue
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            yield BadRow(number, "line", f"not JSON: {exc}")
            continue
        received: datetime | None = None
        if isinstance(data, dict) and "payload" in data and "schema" not in data:
            # envelope: {"at", "topic", "note", "payload"}; "at" is when it was delivered (an
            # AQI forecast: its issue time, days before its label)
            try:
                received = datetime.fromisoformat(str(data.get("at")))
            except ValueError:
                received = None
            if received is not None and received.tzinfo is None:
                received = None
            data = data["payload"]
        try:
            sample = _sample_of(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(x) for x in err["loc"]) or "payload"
            yield BadRow(number, where, err["msg"])
            continue
        yield number, sample, received or sample.time


def _issue_line(number: int, head: list[str], field_set: str, stamp: str) -> Numbered | BadRow:
    """A stored ``forecast`` point back into the forecast issue it came from (its time is the
    issue time)."""
    tags = {k: v for k, _, v in (pair.partition("=") for pair in head[1:])}
    fields: dict[str, str] = {}
    for pair in _split_unescaped(field_set, ","):
        key, _, value = pair.partition("=")
        fields[key] = value
    missing = next((k for k in ("locality", "source") if not tags.get(k)), None)
    if missing is not None:
        return BadRow(number, missing, "missing tag")
    try:
        issuer = _lp_string(fields.get("issuer", ""))
        days = json.loads(_lp_string(fields.get("days", "")))
        at = _ns_time(stamp)
        issue = issue_of(issuer, days)
    except (ValueError, OverflowError, RulesError) as exc:
        return BadRow(number, "forecast", str(exc))
    sample = engine.Sample(
        kind="forecast",
        locality=tags["locality"],
        source=tags["source"],
        time=at,
        interval="day",
        values={},
        forecast=issue,
    )
    return number, sample, at


def _lp_string(raw: str) -> str:
    """A line-protocol string field's value (``_split_unescaped`` already removed the escapes)."""
    if len(raw) < 2 or not raw.startswith('"') or not raw.endswith('"'):
        raise ValueError(f"not a string field: {raw[:40]!r}")
    return raw[1:-1]


def _ns_time(stamp: str) -> datetime:
    secs, nanos = divmod(int(stamp), 1_000_000_000)
    return datetime.fromtimestamp(secs, tz=UTC) + timedelta(microseconds=nanos // 1000)


def read_readings(
    lines: Iterable[str], interval_of: Callable[[str, str], str]
) -> Iterator[Numbered | BadRow | None]:
    """Samples back from ``reading`` line protocol (None for other measurements).

    ``interval_of(source, kind)`` supplies the sample interval, which the store does not keep.
    Values stored only as flagged (``invalid="pm25:D,…"``) come back as (None, flag)."""
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        parts = _split_unescaped(text, " ")
        if len(parts) != 3:
            yield BadRow(number, "line", "expected '<series> <fields> <timestamp>'")
            continue
        series, field_set, stamp = parts
        head = _split_unescaped(series, ",")
        if head[0] == "forecast":
            yield _issue_line(number, head, field_set, stamp)
            continue
        if head[0] != "reading":
            yield None
            continue
        tags = {k: v for k, _, v in (pair.partition("=") for pair in head[1:])}
        missing = next((k for k in ("kind", "locality", "source") if not tags.get(k)), None)
        if missing is not None:
            yield BadRow(number, missing, "missing tag")
            continue
        values: dict[str, tuple[float | None, str]] = {}
        bad: BadRow | None = None
        issued: datetime | None = None
        for pair in _split_unescaped(field_set, ","):
            key, sep, value = pair.partition("=")
            if not sep:
                bad = BadRow(number, pair, "expected key=value")
                break
            if key == "issued":  # an AQI forecast's issue time (streams.steps)
                try:
                    issued = datetime.fromisoformat(value.strip('"'))
                except ValueError:
                    bad = BadRow(number, key, f"not an ISO-8601 time: {value!r}")
                    break
                continue
            if key == "invalid":
                for item in value.strip('"').split(","):
                    factor, _, flag = item.partition(":")
                    if factor:
                        values[factor] = (None, flag or "D")
                continue
            try:
                values[key] = (float(value[:-1] if value.endswith("i") else value), "N")
            except ValueError:
                bad = BadRow(number, key, f"not a number: {value!r}")
                break
        if bad is not None:
            yield bad
            continue
        try:
            at = _ns_time(stamp)
        except (ValueError, OverflowError):
            yield BadRow(number, "timestamp", f"not an integer: {stamp!r}")
            continue
        kind = tags["kind"]
        yield (
            number,
            engine.Sample(
                kind=kind,
                locality=tags["locality"],
                source=tags["source"],
                time=at,
                interval=interval_of(tags["source"], kind),
                values=values,
            ),
            issued or at,
        )


@dataclass
class PipelineReplay:
    """The live worker's two pure steps in one process, without Kafka: the SAME
    :class:`streams.steps.EvaluateStep` (one input partition; each sample in the wire form the
    bridge writes, received at its own event time) and :class:`streams.steps.LocalityStep` (its
    ``aggregates`` outputs, per locality). Dead letters are counted here instead of sent."""

    view: CatalogView
    rules: AlertRules
    rule_set: WarningRuleSet | None = None  # overrides the catalogue's choice per locality
    partition: dict[str, Any] = field(default_factory=dict)
    localities: dict[bytes, LocalityState] = field(default_factory=dict)
    unknown: Counter[str] = field(default_factory=Counter)
    rejected: list[BadRow] = field(default_factory=list)
    samples: int = 0
    forwarded: int = 0
    city_points: int = 0
    #: what became of each command fed (``--commands``), in order
    command_results: list[CommandResult] = field(default_factory=list)

    def __post_init__(self) -> None:
        from streams.steps import EvaluateStep, LocalityStep, with_rule_set

        self._evaluate = EvaluateStep(
            self.view, max_future=timedelta(days=36500), max_past=timedelta(days=36500)
        )
        adjust = None if self.rule_set is None else with_rule_set(self.rule_set)
        self._locality = LocalityStep(self.view, self.rules, context=adjust)

    def feed(self, line: int, sample: engine.Sample) -> list[Transition]:
        from streams import topics

        self.samples += 1
        ts_ms = round(sample.time.timestamp() * 1000)
        outputs = self._evaluate(
            self.partition, sample.source.encode(), sample_bytes(sample), line, ts_ms
        )
        out: list[Transition] = []
        for topic, key, value in outputs:
            if topic == topics.DEAD_LETTER:
                reason = str(orjson.loads(value).get("reason", ""))
                if reason.startswith("unknown source"):
                    self.unknown[sample.source] += 1  # the worker: dead letter "unknown source"
                else:
                    self.rejected.append(BadRow(line, "sample", reason))
                continue
            if topic != topics.AGGREGATES:
                continue
            self.forwarded += 1
            state, results = self._locality(self.localities.get(key), key, value, line, ts_ms)
            if state is not None:
                self.localities[key] = state
            for topic2, _key2, value2 in results:
                if topic2 == topics.ALERT_EVENTS:
                    out.append(Transition.from_dict(orjson.loads(value2)))
                elif topic2 == topics.DEAD_LETTER:
                    reason = str(orjson.loads(value2).get("reason", ""))
                    self.rejected.append(BadRow(line, "locality", reason))
                elif topic2 == topics.EVALUATIONS:
                    self.city_points += 1
        return out

    def command(self, line: int, cmd: Command) -> list[Transition]:
        """A person's command, on ``aggregates`` as the alerts service writes it
        (streams.commands), to the same locality step."""
        from alerts.commands import CommandResult
        from streams import topics
        from streams.commands import encode_command

        key, value = encode_command(cmd)
        ts_ms = round(cmd.issued_at.timestamp() * 1000)
        state, results = self._locality(self.localities.get(key), key, value, line, ts_ms)
        if state is not None:
            self.localities[key] = state
        out: list[Transition] = []
        for topic, _key, v in results:
            if topic == topics.ALERT_EVENTS:
                out.append(Transition.from_dict(orjson.loads(v)))
            elif topic == topics.ALERT_COMMANDS:
                self.command_results.append(CommandResult.from_bytes(v))
            elif topic == topics.DEAD_LETTER:
                reason = str(orjson.loads(v).get("reason", ""))
                self.rejected.append(BadRow(line, "command", reason))
        return out


#: a command of ``--commands`` and where it goes: (before the first sample whose replay time is
#: after this, line number, command)
PlacedCommand = tuple[datetime, int, "Command"]


def read_commands(lines: Iterable[str]) -> Iterator[PlacedCommand | BadRow]:
    """``--commands`` JSON lines: a :class:`alerts.commands.Command` (placed at its
    ``issued_at``, the wall clock at which the live worker received it, among the samples by
    their receipt) or a :class:`alerts.commands.CommandResult` record of ``alert-commands``
    (placed at its effective event time ``at``, where the live stage applied it)."""
    from alerts.commands import Command, CommandResult

    for number, raw in enumerate(lines, 1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        try:
            data = orjson.loads(text)
            if isinstance(data, dict) and "command" in data and "status" in data:
                result = CommandResult.model_validate(data)
                yield result.at, number, result.command
            else:
                cmd = Command.model_validate(data)
                yield cmd.issued_at, number, cmd
        except (orjson.JSONDecodeError, ValidationError) as exc:
            yield BadRow(number, "command", str(exc).splitlines()[0])


def sample_bytes(sample: engine.Sample) -> bytes:
    """A sample in the wire form of ``readings`` (what the bridge writes; streams.wire decodes it)."""
    if sample.forecast is not None:
        return issue_bytes(sample)
    return orjson.dumps(
        {
            "kind": sample.kind,
            "locality": sample.locality,
            "source": sample.source,
            "time": sample.time.isoformat(),
            "interval": sample.interval,
            "values": {f: {"value": v, "flag": flag} for f, (v, flag) in sample.values.items()},
        }
    )


def replay_samples(
    samples: Iterable[Numbered],
    replay: PipelineReplay,
    commands: Iterable[PlacedCommand] = (),
) -> tuple[list[tuple[Transition, float]], float]:
    """Feed samples in the given order; returns (transition, lead seconds) and elapsed s. The
    lead is measured from the first sample of the transition's source (warnings: locality).
    ``commands`` go in before the first sample replayed after their place (stable for ties:
    after every sample at that very time), the rest after the last sample."""
    first_seen: dict[str, datetime] = {}
    out: list[tuple[Transition, float]] = []
    pending = sorted(commands, key=lambda c: c[0])
    nxt = 0

    def lead_of(t: Transition) -> float:
        return (t.at - first_seen.get(t.source, t.at)).total_seconds()

    started = time.perf_counter()
    for line, sample, received in samples:
        while nxt < len(pending) and pending[nxt][0] < received:
            out += [(t, lead_of(t)) for t in replay.command(pending[nxt][1], pending[nxt][2])]
            nxt += 1
        first_seen.setdefault(sample.source, sample.time)
        first_seen.setdefault(sample.locality, sample.time)
        for t in replay.feed(line, sample):
            out.append((t, lead_of(t)))
    for _at, line, cmd in pending[nxt:]:
        out += [(t, lead_of(t)) for t in replay.command(line, cmd)]
    return out, time.perf_counter() - started


# ---------------------------------------------------------------- evaluations (alert engine only)


def _load_rules(rules_file: Path | None, config: Path | None = None) -> AlertRules:
    """The alert rules the worker would use (streams.alert_rules): ``--rules`` FILE, else the
    catalogue directory's alert-rules.yaml, else the built-in rules."""
    from streams.alert_rules import load_alert_rules_file
    from streams.alert_rules import rules_file as chosen_file

    path = chosen_file(rules_file, config)
    return default_rules() if path is None else load_alert_rules_file(path)


class EngineAdapter:
    """The one place the evaluations path touches the rule engine (``alerts.engine.Engine``)."""

    def __init__(self, rules: AlertRules) -> None:
        from alerts.engine import Engine

        self.engine = Engine(rules)

    def feed(self, ev: Evaluation) -> list[Transition]:
        out = self.engine.process(ev)
        out.extend(self.engine.tick(ev.time))
        return out


def run_backtest(
    evaluations: list[Evaluation], adapter: EngineAdapter
) -> tuple[list[tuple[Transition, float]], float]:
    """Feed evaluations in event-time order; returns (transition, lead seconds) and elapsed s."""
    evaluations.sort(key=lambda e: e.time)
    first_seen: dict[str, datetime] = {}
    out: list[tuple[Transition, float]] = []
    started = time.perf_counter()
    for ev in evaluations:
        first_seen.setdefault(ev.source, ev.time)
        for t in adapter.feed(ev):
            lead = (t.at - first_seen.get(t.source, t.at)).total_seconds()
            out.append((t, lead))
    return out, time.perf_counter() - started


# ---------------------------------------------------------------- the command

_LP_PATTERNS = ("*.lp", "*.lp.gz", "*.lp.open")
_WARNING_EVENT = {
    "warning_issued": "issued",
    "warning_upgraded": "upgraded",
    "warning_downgraded": "downgraded",
    "warning_lifted": "lifted",
}


def _lines(path: Path) -> Iterator[str]:
    if path.name.endswith(".gz"):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            yield from fh
    else:
        with path.open(encoding="utf-8", newline="") as fh:
            yield from fh


def _rule_set(view: CatalogView, wanted: str) -> WarningRuleSet:
    from rules.warnings import WarningRuleSet, load_rule_sets

    sets: dict[str, WarningRuleSet] = {}
    cat = view.catalog
    for k, v in dict(getattr(cat, "warning_rule_sets", None) or {}).items():
        sets[k] = v if isinstance(v, WarningRuleSet) else WarningRuleSet.model_validate(v)
    if not sets:
        import yaml

        from streams.embedded import REPO

        shipped = REPO / "deploy" / "config" / "warnings.yaml"
        sets = load_rule_sets(yaml.safe_load(shipped.read_text(encoding="utf-8")))
    if wanted not in sets:
        raise ValueError(f"unknown warning rule set {wanted!r}; known: {', '.join(sorted(sets))}")
    return sets[wanted]


def _interval_of(view: CatalogView) -> Callable[[str, str], str]:
    def interval(source: str, kind: str) -> str:
        if kind == "forecast":
            return "day"
        ctx = view.context(source)
        return "day" if ctx is not None and ctx.expected_interval_s == 86400 else "hour"

    return interval


def _local(at: datetime) -> str:
    return at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


def _print_results(
    title: str, results: list[tuple[Transition, float]], as_json: bool, samples_path: bool
) -> None:
    if as_json:
        for t, lead in results:
            record: dict[str, Any] = t.to_dict()
            record["lead_seconds"] = lead
            typer.echo(json.dumps(record, ensure_ascii=False))
        return
    out = Console(soft_wrap=True)
    table = Table(title=title)
    for col in ("at (Beijing)", "kind", "state", "reason", "locality", "source", "rule", "level"):
        table.add_column(col)
    table.add_column("value", justify="right")
    table.add_column("lead", justify="right")
    for t, lead in results:
        table.add_row(
            _local(t.at),
            t.kind.value,
            t.state.value,
            t.reason.value,
            t.locality,
            t.source,
            t.labels.get("rule", ""),
            t.level or t.severity.value,
            "" if t.value is None else f"{t.value:g}",
            f"{lead / 3600:.1f} h" if abs(lead) >= 3600 else f"{lead / 60:.0f} min",
        )
    out.print(table)
    warnings = [t for t, _ in results if t.kind.value == "warning"]
    if not samples_path:
        return
    if not warnings:
        out.print("no heavy-pollution warning would have been issued")
        return
    timeline = Table(title="heavy-pollution warnings (重污染天气预警) per locality")
    for col in ("locality", "at (Beijing)", "event", "level", "rule set", "summary"):
        timeline.add_column(col)
    for t in sorted(warnings, key=lambda t: (t.locality, t.at)):
        timeline.add_row(
            t.locality,
            _local(t.at),
            _WARNING_EVENT.get(t.reason.value, t.reason.value),
            t.level or "",
            str(t.annotations.get("rule_set", "")),
            str(t.annotations.get("summary", "")),
        )
    out.print(timeline)


@app.command()
def backtest(
    history: Annotated[
        Path,
        typer.Argument(
            help="history: samples (.jsonl, reading .lp, or a directory of .lp) or .csv"
        ),
    ],
    rules: Annotated[
        Path | None,
        typer.Option(
            "--rules",
            help="alert rules YAML to try (default: the catalogue's alert-rules.yaml, as the "
            "worker, else the built-in rules)",
        ),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="auto, jsonl, lp or csv")] = "auto",
    config: Annotated[
        Path, typer.Option("--config", help="catalogue directory (sources, warning rule sets)")
    ] = Path("deploy/config"),
    rule_set: Annotated[
        str | None,
        typer.Option(
            "--rule-set", help="warning rule set id for every locality (default: catalogue)"
        ),
    ] = None,
    order: Annotated[
        str, typer.Option("--order", help="time (event time) or file (as stored)")
    ] = "time",
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
    all_transitions: Annotated[
        bool, typer.Option("--all", help="also transitions nobody would be told of")
    ] = False,
    commands_file: Annotated[
        Path | None,
        typer.Option(
            "--commands",
            help="people's commands (JSON lines: alerts.commands.Command, or the CommandResult "
            "records of alert-commands) replayed with the samples",
        ),
    ] = None,
) -> None:
    """Replay a stored history through the worker's pure stages; print what would have fired."""
    console = Console(stderr=True, soft_wrap=True)
    if history.is_dir():
        files = sorted({p for pat in _LP_PATTERNS for p in history.glob(pat)})
        if not files:
            console.print(f"[red]no *.lp, *.lp.gz or *.lp.open files in {history}[/red]")
            raise typer.Exit(2)
    elif history.is_file():
        files = [history]
    else:
        console.print(f"[red]no such file: {history}[/red]")
        raise typer.Exit(2)
    suffix = history.name.lower()
    kind = fmt
    if fmt == "auto":
        kind = (
            "csv"
            if suffix.endswith(".csv")
            else "jsonl"
            if suffix.endswith((".jsonl", ".json"))
            else "lp"
        )
    if kind not in ("csv", "lp", "jsonl"):
        console.print(f"[red]--format must be auto, jsonl, lp or csv, not {fmt!r}[/red]")
        raise typer.Exit(2)
    if order not in ("time", "file"):
        console.print(f"[red]--order must be time or file, not {order!r}[/red]")
        raise typer.Exit(2)
    try:
        alert_rules = _load_rules(rules, config)
    except ConfigError as exc:
        for problem in exc.problems:  # file:line: field: reason, as `envwatch config check`
            console.print(str(problem), style="red", markup=False, highlight=False)
        console.print(f"[red]cannot load the alert rules: {len(exc.problems)} problem(s)[/red]")
        raise typer.Exit(2) from exc

    samples: list[Numbered] = []
    bad: list[BadRow] = []
    skipped = 0
    placed: list[PlacedCommand] = []
    if commands_file is not None:
        if kind == "csv":
            console.print("[red]--commands needs a history of samples (jsonl or lp)[/red]")
            raise typer.Exit(2)
        try:
            for row_c in read_commands(_lines(commands_file)):
                if isinstance(row_c, BadRow):
                    bad.append(replace(row_c, file=commands_file.name))
                else:
                    placed.append(row_c)
        except OSError as exc:
            console.print(f"[red]cannot read {commands_file}: {exc}[/red]")
            raise typer.Exit(2) from exc
    view: CatalogView | None = None
    if kind in ("jsonl", "lp"):
        from streams.catalog import CatalogView

        try:
            view = CatalogView(config)
        except (RulesError, OSError) as exc:
            console.print(f"[red]cannot load the catalogue {config}: {exc}[/red]")
            raise typer.Exit(2) from exc
        for path in files:
            rows: Iterable[Numbered | BadRow | None] = (
                read_samples_json(_lines(path))
                if kind == "jsonl"
                else read_readings(_lines(path), _interval_of(view))
            )
            for row in rows:
                if row is None:
                    skipped += 1
                elif isinstance(row, BadRow):
                    bad.append(replace(row, file=path.name))
                else:
                    samples.append(row)
    if kind == "lp" and not samples and not [b for b in bad if b.field != "command"]:
        kind = "evaluations"  # a line-protocol file of ``evaluation`` points: former path
        skipped = 0
        if commands_file is not None:
            console.print("[red]--commands needs a history of samples (jsonl or lp)[/red]")
            raise typer.Exit(2)

    if kind in ("jsonl", "lp"):
        assert view is not None
        try:
            chosen = _rule_set(view, rule_set) if rule_set is not None else None
        except ValueError as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from exc
        if order == "time":
            samples.sort(key=lambda s: s[2])  # stable: ties keep the stored order
        replay = PipelineReplay(view, alert_rules, chosen)
        results, elapsed = replay_samples(samples, replay, placed)
        bad += replay.rejected
        count = f"{len(samples)} samples ({replay.forwarded} points to the locality stage)"
        if commands_file is not None:
            done = replay.command_results
            applied = sum(1 for r in done if r.status == "applied")
            count += f", {len(placed)} commands ({applied} applied, {len(done) - applied} refused)"
            for r in done:
                if r.status == "refused":
                    console.print(
                        f"[yellow]command {r.id} ({r.command.action}): refused at "
                        f"{_local(r.at)}: {r.reason} {r.detail}[/yellow]"
                    )
    else:
        evaluations: list[Evaluation] = []
        for path in files:
            with path.open(encoding="utf-8", newline="") as fh:
                rows2 = list(read_csv(fh) if kind == "csv" else read_line_protocol(fh))
            bad += [replace(r, file=path.name) for r in rows2 if isinstance(r, BadRow)]
            evaluations += [r for r in rows2 if isinstance(r, Evaluation)]
            skipped += sum(1 for r in rows2 if r is None)
        results, elapsed = run_backtest(evaluations, EngineAdapter(alert_rules))
        count = f"{len(evaluations)} evaluations"
        replay = None
        n = len(evaluations)
    if not all_transitions:
        results = [(t, lead) for t, lead in results if t.notify]
    for b in bad:
        console.print(f"[yellow]{b.file or history.name}:{b.line}: {b.field}: {b.reason}[/yellow]")
    _print_results(f"backtest of {history.name}", results, as_json, replay is not None)
    if replay is not None:
        n = replay.samples
    rate = n / elapsed if elapsed > 0 else float("inf")
    unknown = ""
    if replay is not None and replay.unknown:
        unknown = (
            f", {sum(replay.unknown.values())} samples of {len(replay.unknown)} sources not in "
            f"the catalogue skipped ({', '.join(sorted(replay.unknown)[:5])}…)"
        )
    warnings = sum(1 for t, _ in results if t.kind.value == "warning")
    console.print(
        f"{count}, {len(results)} transitions ({warnings} warnings), {len(bad)} bad rows, "
        f"{skipped} other lines skipped{unknown}; replay time {elapsed:.3f} s "
        f"({rate:,.0f} {'samples' if replay is not None else 'evaluations'}/s)"
    )
