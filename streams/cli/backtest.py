"""``envwatch backtest``: run the alert rules over a stored history and show what would have fired.

Input (``--format auto`` picks by file suffix: ``.csv`` → CSV, anything else → line protocol):

* **CSV** with a header; columns ``time`` (ISO-8601 with offset), ``kind`` (an
  ``alerts.rules.EvaluationKind``: ambient, permit, effluent, water_class, dustfall, bypass,
  sample, data_rate, plan_progress, warning_compliance), ``locality``, ``source``, ``factor``,
  ``value``; optional ``limit``, ``flags`` (HJ 212 flags, e.g. ``N`` or ``M``) and any of
  ``enterprise``, ``station``, ``section``, ``outlet``, ``status`` (copied to the evaluation's
  ``detail``, used for routing labels and plan progress).
* **InfluxDB line protocol**, measurement ``evaluation``: tags ``kind``, ``locality``,
  ``source``, ``factor`` (+ the optional detail tags), fields ``value``, ``limit``, ``flags``,
  timestamp in nanoseconds — e.g.
  ``evaluation,kind=permit,locality=weifang,source=e1:o1,factor=nox,enterprise=e1 value=132,limit=100 1795309200000000000``.
  Other measurements are skipped and counted.

Rows are sorted by event time (a stored history need not be ordered) and fed to the alert engine
one by one; after every row the engine's clock advances to that row's time (``tick``: offline
detection, escalation). Output: a table of every transition (or ``--json``: one JSON object per
line, ``alerts.model.Transition.to_dict()`` plus ``lead_seconds`` = transition time minus the
first sample of its source) and how long the run took. Bad rows are reported with line number,
field and reason, and skipped.

Heavy-pollution warnings are produced by ``rules.warnings`` from AQI series; this command runs the
alert rules only (see docs/notifications.md, "Backtest").
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from alerts.errors import AlertsError
from alerts.model import Transition
from alerts.rules import Evaluation, default_rules, load_alert_rules
from streams.cli._app import app

DETAIL_COLUMNS = ("enterprise", "station", "section", "outlet", "status")


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row that could not be read: where, which field, why."""

    line: int
    field: str
    reason: str


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


# ---------------------------------------------------------------- adapter to the alert engine


class EngineAdapter:
    """The one place this command touches the rule engine (``alerts.engine.Engine``)."""

    def __init__(self, rules_file: Path | None) -> None:
        from alerts.engine import Engine

        if rules_file is None:
            rules = default_rules()
        else:
            import yaml

            rules = load_alert_rules(yaml.safe_load(rules_file.read_text(encoding="utf-8")))
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


@app.command()
def backtest(
    history: Annotated[Path, typer.Argument(help="history file: .csv or line protocol")],
    rules: Annotated[
        Path | None, typer.Option("--rules", help="alert rules YAML (default: built-in rules)")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="auto, csv or lp")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
    all_transitions: Annotated[
        bool, typer.Option("--all", help="also transitions nobody would be told of")
    ] = False,
) -> None:
    """Run the alert rules over a stored history and print what would have fired, with timings."""
    console = Console(stderr=True, soft_wrap=True)
    if not history.is_file():
        console.print(f"[red]no such file: {history}[/red]")
        raise typer.Exit(2)
    kind = fmt if fmt != "auto" else ("csv" if history.suffix.lower() == ".csv" else "lp")
    if kind not in ("csv", "lp"):
        console.print(f"[red]--format must be auto, csv or lp, not {fmt!r}[/red]")
        raise typer.Exit(2)
    with history.open(encoding="utf-8", newline="") as fh:
        rows = list(read_csv(fh) if kind == "csv" else read_line_protocol(fh))
    bad = [r for r in rows if isinstance(r, BadRow)]
    evaluations = [r for r in rows if isinstance(r, Evaluation)]
    skipped = sum(1 for r in rows if r is None)
    try:
        adapter = EngineAdapter(rules)
    except (AlertsError, OSError, ValueError) as exc:
        console.print(f"[red]cannot load rules: {exc}[/red]")
        raise typer.Exit(2) from exc
    results, elapsed = run_backtest(evaluations, adapter)
    if not all_transitions:
        results = [(t, lead) for t, lead in results if t.notify]
    for b in bad:
        console.print(f"[yellow]{history}:{b.line}: {b.field}: {b.reason}[/yellow]")
    if as_json:
        for t, lead in results:
            record: dict[str, Any] = t.to_dict()
            record["lead_seconds"] = lead
            typer.echo(json.dumps(record, ensure_ascii=False))
    else:
        table = Table(title=f"backtest of {history.name}")
        for col in ("at", "kind", "state", "reason", "locality", "source", "rule", "level", "lead"):
            table.add_column(col)
        for t, lead in results:
            table.add_row(
                t.at.isoformat(),
                t.kind.value,
                t.state.value,
                t.reason.value,
                t.locality,
                t.source,
                t.labels.get("rule", ""),
                t.level or "",
                f"{lead / 60:.0f} min",
            )
        Console().print(table)
    rate = len(evaluations) / elapsed if elapsed > 0 else float("inf")
    console.print(
        f"{len(evaluations)} evaluations, {len(results)} transitions, {len(bad)} bad rows, "
        f"{skipped} other lines skipped; engine time {elapsed:.3f} s ({rate:,.0f} evaluations/s)"
    )
