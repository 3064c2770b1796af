"""``envwatch simulate``: deterministic simulated network streams and scripted scenarios.

    envwatch simulate list
    envwatch simulate timeline winter-episode --start 2026-12-01T00:00+08:00
    envwatch simulate run --scenario winter-episode --start 2026-12-01T00:00+08:00 \\
        --speed 8640 --mqtt 127.0.0.1:1883
    envwatch simulate run --hours 24 --dry-run            # JSON lines on stdout
    envwatch simulate run --scenario forty-days --out history.jsonl   # the catalogue, 960 h

The generators are pure (:mod:`ingest.simulators`); this module only reads the clock for the
default start and hands the deliveries to a sink. Scenario timelines: ``docs/simulators.md``.
"""

from __future__ import annotations

import math
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from ingest.publisher import MqttAuth
from ingest.simulators import (
    BEIJING,
    SCENARIOS,
    SimulatorError,
    SourceSpec,
    default_specs,
    make_scenario,
    simulate,
    specs_from_catalog,
)
from ingest.simulators.publish import Hj212Sink, JsonLinesSink, MqttSink, Sink, play
from streams.cli._app import app
from streams.settings import Settings

simulate_app = typer.Typer(
    help="Deterministic simulators of stations, sections, outlets and monitors, with scenarios.",
    no_args_is_help=True,
)
app.add_typer(simulate_app, name="simulate")

#: Pacing used for --mqtt/--hj212 when --speed is not given: one simulated hour per second.
DEFAULT_LIVE_SPEED = 3600.0
#: The catalogue a scenario that needs one (``forty-days``) simulates when --config is absent.
DEFAULT_CONFIG = Path("deploy/config")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


def _host_port(text: str, option: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise _fail(f"{option} expects HOST:PORT, got {text!r}")
    return host, int(port)


def _start(text: str | None, hours: float) -> datetime:
    if text is None:
        # Default: Beijing midnight, as many whole days back as the run lasts, so the whole
        # simulated period lies in the past (never future-dated samples).
        today = datetime.now(BEIJING).replace(hour=0, minute=0, second=0, microsecond=0)
        return today - timedelta(days=math.ceil(hours / 24))
    try:
        start = datetime.fromisoformat(text)
    except ValueError as exc:
        raise _fail(f"--start {text!r} is not an ISO-8601 time") from exc
    if start.tzinfo is None:
        raise _fail(f"--start {text!r} needs an offset, e.g. {text}+08:00")
    return start


def _config_for(scenario: str | None, config: Path | None) -> Path | None:
    """--config, or the default catalogue for a scenario scripted on the catalogue's sources."""
    cls = SCENARIOS.get(scenario) if scenario is not None else None
    if config is None and cls is not None and cls.needs_catalog:
        if not DEFAULT_CONFIG.is_dir():
            raise _fail(
                f"scenario {scenario!r} simulates the catalogue: give --config DIR "
                f"({DEFAULT_CONFIG} is not a directory here)"
            )
        return DEFAULT_CONFIG
    return config


def _specs(config: Path | None) -> list[SourceSpec]:
    if config is None:
        return default_specs()
    from rules.catalog import load_catalog  # the catalogue is only needed with --config
    from rules.errors import ConfigError

    try:
        catalog = load_catalog(config)
    except ConfigError as exc:
        raise _fail(str(exc)) from exc
    except OSError as exc:
        raise _fail(f"--config {config}: {exc}") from exc
    specs = specs_from_catalog(catalog)
    if not specs:
        raise _fail(f"--config {config}: the catalogue has no source to simulate")
    return specs


@simulate_app.command("list")
def list_scenarios() -> None:
    """The scripted scenarios, each with its default duration and what it does."""
    for name, cls in SCENARIOS.items():
        typer.echo(f"{name:<20} {cls.hours:>4} h  {cls.summary}")


@simulate_app.command("timeline")
def timeline(
    scenario: Annotated[str, typer.Argument(help="scenario name (see `simulate list`)")],
    start: Annotated[str | None, typer.Option(help="ISO-8601 start with offset")] = None,
    target: Annotated[str | None, typer.Option(help="source or locality to act on")] = None,
    seed: int = 0,
    config: Annotated[Path | None, typer.Option(help="catalogue directory")] = None,
) -> None:
    """Print a scenario's documented timeline for a given start."""
    cls = SCENARIOS.get(scenario)
    if cls is None:
        raise _fail(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    begin = _start(start, cls.hours)
    try:
        specs = _specs(_config_for(scenario, config))
        sc = make_scenario(scenario, specs, start=begin, seed=seed, target=target)
    except SimulatorError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"{scenario} from {sc.start.isoformat()} — target {sc.target}")
    for e in sc.timeline():
        until = f" → {e.end.isoformat()}" if e.end is not None else ""
        typer.echo(f"  {e.begin.isoformat()}{until}  {e.subject}: {e.effect}")


@simulate_app.command("run")
def run(
    scenario: Annotated[
        str | None, typer.Option(help="scenario name (see `simulate list`); none: base streams")
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(help="ISO-8601 start with offset, on a whole hour (default: days back)"),
    ] = None,
    hours: Annotated[
        float | None, typer.Option(help="simulated hours (default: the scenario's, else 24)")
    ] = None,
    speed: Annotated[
        float | None,
        typer.Option(help="simulated seconds per wall second; 0 = no waiting"),
    ] = None,
    seed: Annotated[int, typer.Option(help="random seed: same seed, same stream")] = 0,
    target: Annotated[str | None, typer.Option(help="source or locality to act on")] = None,
    mqtt: Annotated[str | None, typer.Option(help="publish to the MQTT broker HOST:PORT")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print JSON lines on stdout")] = False,
    out: Annotated[Path | None, typer.Option(help="write JSON lines to this file")] = None,
    hj212: Annotated[
        str | None, typer.Option(help="send outlets as HJ 212 packets to the gateway HOST:PORT")
    ] = None,
    envelope: Annotated[
        bool, typer.Option(help="JSON lines with at/topic/note around the payload")
    ] = False,
    window: Annotated[int, typer.Option(help="MQTT messages in flight at most")] = 100,
    config: Annotated[
        Path | None,
        typer.Option(help="catalogue directory (forty-days: default deploy/config)"),
    ] = None,
) -> None:
    """Generate the network's samples (and a scenario) and publish, print or write them."""
    sinks = [mqtt is not None, dry_run, out is not None].count(True)
    if sinks > 1 or (sinks == 0 and hj212 is None):
        raise _fail("choose one of --mqtt HOST:PORT, --dry-run, --out FILE (or only --hj212)")
    if scenario is not None and scenario not in SCENARIOS:
        raise _fail(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    mqtt_addr = _host_port(mqtt, "--mqtt") if mqtt is not None else None
    try:  # ENVWATCH_MQTT_USERNAME, _PASSWORD(_FILE), _TLS_CA_FILE, … (docs/mqtt.md §4)
        auth = Settings().mqtt_auth() if mqtt is not None else None
    except ValueError as exc:
        raise _fail(str(exc)) from None
    hj212_addr = _host_port(hj212, "--hj212") if hj212 is not None else None
    duration = hours if hours is not None else (SCENARIOS[scenario].hours if scenario else 24.0)
    begin = _start(start, duration)
    specs = _specs(_config_for(scenario, config))
    live = mqtt is not None or hj212 is not None
    pace = speed if speed is not None else (DEFAULT_LIVE_SPEED if live else 0.0)
    try:
        deliveries = simulate(
            specs, start=begin, hours=duration, seed=seed, scenario=scenario, target=target
        )
        sink: Sink | None = None
        handle: Any = None
        if mqtt_addr is not None:
            host, port = mqtt_addr
            sink = MqttSink(
                host,
                port,
                client_id=f"envwatch-sim-{seed}",
                window=window,
                auth=auth or MqttAuth(),
            )
        elif out is not None:
            handle = out.open("w", encoding="utf-8")
            sink = JsonLinesSink(handle, envelope=envelope)
        elif dry_run:
            sink = JsonLinesSink(sys.stdout, envelope=envelope)
        if hj212_addr is not None:
            host, port = hj212_addr
            outlets = {
                s.source: (s.mn, s.subtype == "wastewater") for s in specs if s.mn is not None
            }
            sink = Hj212Sink(host, port, outlets, fallback=sink)
        assert sink is not None  # guaranteed by the option check above
        try:
            stats = play(deliveries, sink, start=begin, speed=pace)
        finally:
            sink.close()
            if handle is not None:
                handle.close()
    except SimulatorError as exc:
        raise _fail(str(exc)) from exc
    skipped = getattr(sink, "skipped", 0)
    typer.echo(
        f"{f'{skipped} non-HJ 212 message(s) not sent; ' if skipped else ''}"
        f"simulated {stats.sent} message(s) from {begin.isoformat()} over {duration:g} h"
        f"{f' ({scenario})' if scenario else ''} in {stats.wall_seconds:.1f} s",
        err=True,
    )
