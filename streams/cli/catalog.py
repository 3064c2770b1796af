"""``envwatch config check`` and ``envwatch targets``: the monitoring catalogue and plan progress.

* ``envwatch config check [DIR] [--rules FILE]`` — load the catalogue (default
  ``deploy/config``) and the alert rules (``--rules``, else the directory's ``alert-rules.yaml``,
  checked against the catalogue); print every problem (file:line: field: reason) and exit 1, or a
  short summary and exit 0.
* ``envwatch targets [--locality X] [--year Y] [--json] [--config DIR] [--history FILE]`` —
  the plan targets with year-to-date progress. Without live data, daily values come from
  ``--history`` (CSV ``date,locality,pm25,aqi,edition``; empty cells = no valid value);
  without history every target shows its status ``no_data`` or ``no_target``.
"""

from __future__ import annotations

import csv
import json
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from alerts.progress_live import progress_dict
from rules.beijing import BEIJING
from rules.catalog import Catalog, load_catalog
from rules.errors import ConfigError
from rules.progress import AirYear, DailyAir, ProgressInputError, TargetProgress, locality_progress
from streams.cli._app import app

config_app = typer.Typer(
    help="The monitoring catalogue (deploy/config/*.yaml).", no_args_is_help=True
)
app.add_typer(config_app, name="config")

DEFAULT_DIR = Path("deploy/config")


@config_app.command("check")
def check(
    directory: Annotated[Path, typer.Argument(help="catalogue directory or file")] = DEFAULT_DIR,
    rules: Annotated[
        Path | None,
        typer.Option(
            "--rules",
            help="alert rules YAML to check (default: alert-rules.yaml in the directory)",
        ),
    ] = None,
) -> None:
    """Check the catalogue and the alert rules; print every problem with file, line, field and
    reason."""
    from streams.alert_rules import load_alert_rules_file, rules_file

    console = Console()
    problems: list[Any] = []
    cat: Catalog | None = None
    try:
        cat = load_catalog(directory)
    except ConfigError as exc:
        problems += exc.problems
    rules_path = rules_file(rules, directory)
    n_rules = 0
    if rules_path is not None:
        try:
            n_rules = len(load_alert_rules_file(rules_path, catalog=cat).rules)
        except ConfigError as exc:
            problems += exc.problems
    if problems or cat is None:
        for p in problems:
            console.print(str(p), markup=False, highlight=False, soft_wrap=True)
        console.print(
            f"{len(problems)} problem(s) in {directory}", style="bold red", soft_wrap=True
        )
        raise typer.Exit(1) from None
    items: list[Any] = [*cat.stations, *cat.sections, *cat.enterprises, *cat.monitors]
    examples = sum(1 for x in items if x.example)
    outlets = sum(len(e.outlets) for e in cat.enterprises)
    console.print(
        f"OK {directory}: {len(cat.localities)} localities "
        f"({sum(len(loc.indicators) for loc in cat.localities)} indicators), "
        f"{len(cat.stations)} air stations, {len(cat.sections)} water sections, "
        f"{len(cat.enterprises)} enterprises ({outlets} outlets), {len(cat.monitors)} monitors, "
        f"{len(cat.warning_rule_sets)} warning rule sets; {examples} items are examples; "
        + (
            f"{n_rules} alert rules in {rules_path}"
            if rules_path is not None
            else "built-in alert rules (no alert-rules.yaml)"
        ),
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def _read_history(path: Path, year: int) -> dict[str, AirYear]:
    """CSV ``date,locality,pm25,aqi,edition`` → one accumulator per locality (rows of ``year``)."""
    out: dict[str, AirYear] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"date", "locality", "pm25", "aqi", "edition"} - set(reader.fieldnames or [])
        if missing:
            raise typer.BadParameter(
                f"{path}: missing column(s) {', '.join(sorted(missing))}", param_hint="--history"
            )
        for n, row in enumerate(reader, start=2):
            try:
                day = date.fromisoformat(row["date"].strip())
                if day.year != year:
                    continue
                pm25 = float(row["pm25"]) if row["pm25"].strip() else None
                aqi = int(row["aqi"]) if row["aqi"].strip() else None
                edition = row["edition"].strip() or None
                out.setdefault(row["locality"].strip(), AirYear(year)).add(
                    DailyAir(day, pm25, aqi, edition)
                )
            except (ValueError, ProgressInputError) as exc:
                raise typer.BadParameter(f"{path}:{n}: {exc}", param_hint="--history") from None
    return out


_STYLE = {"on_track": "green", "at_risk": "yellow", "off_track": "red"}


@app.command()
def targets(
    locality: Annotated[str | None, typer.Option(help="one locality id, e.g. laixi")] = None,
    year: Annotated[
        int | None, typer.Option(help="calendar year (default: the current year)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    config: Annotated[Path, typer.Option(help="catalogue directory")] = DEFAULT_DIR,
    history: Annotated[
        Path | None, typer.Option(help="CSV date,locality,pm25,aqi,edition of daily values")
    ] = None,
    as_of: Annotated[str | None, typer.Option(help="last day counted (YYYY-MM-DD)")] = None,
    lang: Annotated[str, typer.Option(help="zh or en explanations")] = "zh",
    api: Annotated[
        str | None,
        typer.Option(
            "--api",
            envvar="ENVWATCH_API_URL",
            help="the alerts service: read the live year-to-date values from it",
        ),
    ] = None,
    token: Annotated[
        str,
        typer.Option(
            "--token",
            envvar="ENVWATCH_API_TOKEN",
            help="bearer token (prefer the env variable)",
            show_default=False,
        ),
    ] = "",
) -> None:
    """Plan targets with year-to-date progress (status and a one-line explanation).

    With the alerts service (``--api`` or ``ENVWATCH_API_URL``, token ``ENVWATCH_API_TOKEN``)
    the values are the live ones the locality stage computed at the newest closed day; with
    ``--history CSV`` they come from that file; else only the targets are shown."""
    try:
        cat: Catalog = load_catalog(config)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    if locality is not None and locality not in {loc.id for loc in cat.localities}:
        known = ", ".join(loc.id for loc in cat.localities)
        raise typer.BadParameter(
            f"unknown locality {locality!r} (known: {known})", param_hint="--locality"
        )
    if api and history is None:
        _live_targets(api, token, locality, as_json, lang)
        return
    today = datetime.now(BEIJING).date()  # CLI edge: the only clock read
    y = year if year is not None else today.year
    end = date.fromisoformat(as_of) if as_of else min(date(y, 12, 31), max(today, date(y, 1, 1)))
    hist = _read_history(history, y) if history is not None else {}
    rows: list[TargetProgress] = []
    for loc in cat.localities:
        if locality is not None and loc.id != locality:
            continue
        air = hist[loc.id].result(end) if loc.id in hist else None
        rows.extend(locality_progress(loc, air=air, sections=cat.sections_of(loc.id)))
    if as_json:
        typer.echo(json.dumps([progress_dict(r) for r in rows], ensure_ascii=False, indent=2))
        return
    _print_table(
        f"envwatch targets {y} (as of {end.isoformat()})", [progress_dict(r) for r in rows], lang
    )


def _live_targets(api: str, token: str, locality: str | None, as_json: bool, lang: str) -> None:
    """The live progress from the alerts service (GET /api/v1/progress)."""
    from streams.cli.alerts import request

    params = {"locality": locality} if locality else None
    records = request(api, token, "GET", "/api/v1/progress", params=params).get("items", [])
    rows = [row for rec in records for row in rec.get("indicators", [])]
    if as_json:
        typer.echo(json.dumps(records, ensure_ascii=False, indent=2))
        return
    if not records:
        typer.echo(
            "no live progress yet: no locality has closed a day (envwatch targets --history)"
        )
        return
    days = ", ".join(f"{r['locality']} {r['as_of']} ({r['days']} d)" for r in records)
    _print_table(f"envwatch targets, live (as of {days})", rows, lang)


def _print_table(title: str, rows: list[dict[str, Any]], lang: str) -> None:
    table = Table(title=title)
    for col in (
        "locality",
        "no",
        "indicator",
        "2020",
        "2025 (printed)",
        "target",
        "value",
        "projection",
        "status",
        "explanation",
    ):
        table.add_column(col, overflow="fold", no_wrap=col == "status")
    for r in rows:
        t = r["target"]
        table.add_row(
            r["locality"],
            "" if r["no"] is None else str(r["no"]),
            r["indicator"],
            "" if r["baseline_2020"] is None else f"{r['baseline_2020']:g}",
            r["target_printed"],
            "" if t is None else f"{t['comparator']}{t['value']:g} ({t['origin']})",
            "" if r["value"] is None else f"{r['value']:.1f}",
            "" if r["projection"] is None else f"{r['projection']:.1f}",
            f"[{_STYLE.get(r['status'], 'dim')}]{r['status']}[/]",
            r["explanation_zh"] if lang == "zh" else r["explanation_en"],
        )
    Console().print(table)
