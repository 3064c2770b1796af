"""``envwatch demo``: the whole pipeline on the embedded default, no Docker, no external servers.

It starts Tansu (Kafka protocol) and mosquitto (or amqtt when mosquitto is absent) on free
loopback ports, creates the topics, runs the MQTT→Kafka bridge and the Faust worker in this
process, plays the simulated network of the reference catalogue (deploy/config) — optionally
with a scripted scenario — over MQTT at accelerated time, shows what the worker concludes, and
on Ctrl-C or when ``--duration`` ends stops everything it started and prints a summary.

What it shows (streams/live.py): on a terminal a live view refreshed four times a second — per
locality the city AQI in its HJ 633 colour, the heavy-pollution warning in force, the sources in
exceedance, open alerts and offline monitors, throughput and lag, the simulated time; with
``--plain`` (or when stdout is not a terminal) one line per event in event-time order; with
``--quiet`` only the summary. The summary: the warning timeline per locality, alerts fired and
resolved by rule, notifications delivered per receiver, dead letters by reason, the outputs.

Output (``--out DIR``): line-protocol files (``*.lp``, loadable with ``influx write --file``) and
``alerts.jsonl`` (one JSON object per alert or warning transition).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import math
import re
import signal
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from pydantic import SecretStr
from rich.console import Console
from rich.live import Live

from rules.beijing import BEIJING
from streams.cli._app import app
from streams.live import LiveState, Names, PlainLog, RunSummary, reason_kind, render, summary_lines

console = Console(highlight=False, soft_wrap=True)

#: Live view refreshes per second.
REFRESH_PER_SECOND = 4


@dataclass
class Player:
    """Where the simulator is: samples handed to MQTT and the simulated instant reached."""

    sent: int = 0
    played_to: datetime | None = None


@app.command()
def demo(
    duration: float = typer.Option(60.0, help="seconds to run (Ctrl-C stops earlier)"),
    out: Path | None = typer.Option(
        None, help="directory for *.lp and alerts.jsonl (default: a temp dir)"
    ),
    scenario: str | None = typer.Option(None, help="scripted scenario (envwatch simulate list)"),
    speed: float | None = typer.Option(
        None,
        help="simulated seconds per wall second (default: the scenario fits in 80 % of --duration)",
    ),
    start: str | None = typer.Option(
        None,
        help="ISO-8601 start of the simulated time with offset, on a whole hour "
        "(default: the scenario ends a day before today)",
    ),
    config: Path = typer.Option(Path("deploy/config"), help="catalogue directory"),
    seed: int = typer.Option(0, help="simulator seed"),
    plain: bool = typer.Option(
        False, help="one line per event, no live view (also when stdout is not a terminal)"
    ),
    quiet: bool = typer.Option(False, help="print only the summary"),
) -> None:
    """Run envwatch end to end on the embedded default and show what flows through it."""
    from ingest.simulators import SCENARIOS

    if scenario is not None and scenario not in SCENARIOS:
        console.print(f"[red]unknown scenario {scenario!r}[/]; known: {', '.join(SCENARIOS)}")
        raise typer.Exit(2)
    if duration <= 0:
        console.print("[red]--duration must be > 0[/]")
        raise typer.Exit(2)
    hours = float(SCENARIOS[scenario].hours) if scenario else max(24.0, duration)
    begin = _start(start, hours)
    if speed is None:
        speed = hours * 3600 / (duration * 0.8)
    mode = "quiet" if quiet else "plain" if plain or not console.is_terminal else "live"
    if mode == "live":  # log records above the live view, not through it
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(console=console, show_path=False)
        logging.basicConfig(
            level=logging.WARNING, format="%(name)s: %(message)s", handlers=[handler]
        )
    else:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from streams import embedded

    with contextlib.ExitStack() as stack:
        out_dir = out or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="envwatch-demo-"))
        )
        out_dir.mkdir(parents=True, exist_ok=True)
        state_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="envwatch-state-")))
        console.print("[bold]envwatch demo[/] — starting the embedded default …")
        try:
            kafka = stack.enter_context(embedded.tansu())
            mqtt = stack.enter_context(embedded.mqtt_broker())
        except embedded.ServiceError as exc:  # one line with the fix, not a traceback
            console.print(f"envwatch demo: {exc.summary}", style="red", markup=False)
            raise typer.Exit(1) from None
        console.print(
            f"  Kafka protocol: Tansu on {kafka.bootstrap}   MQTT: {mqtt.implementation} on "
            f"{mqtt.host}:{mqtt.port}\n  catalogue: {config}   scenario: {scenario or '(base streams)'}   "
            f"simulated from {begin.astimezone(BEIJING):%Y-%m-%d %H:%M} for {hours:g} h   "
            f"speed: {speed:,.0f}× ({speed / 3600:.1f} simulated h/s)   output: {out_dir}",
            markup=False,
        )
        state, run = asyncio.run(
            _run(
                kafka.url,
                mqtt,
                out_dir,
                state_dir,
                config,
                scenario,
                begin,
                hours,
                speed,
                seed,
                duration,
                mode,
            )
        )
        # the worker has stopped and its sink closed the last segment: read what it wrote
        run = replace(_with_outputs(run, out_dir), kept=out is not None)
        if out is not None:
            # one self-contained page of the run: AQI, warnings, alerts, data quality
            from streams.report import write_report

            report = write_report(out_dir, config=config)
            console.print(f"report: {report}", markup=False)
    # every service the demo started is stopped here (and a temporary output dir removed)
    console.print()
    for line in summary_lines(state, run):
        console.print(line, markup=False)
    console.print("every process the demo started is stopped.")


def _start(text: str | None, hours: float) -> datetime:
    """The simulated start: ``--start``, else whole days back so that the run ends yesterday."""
    from ingest.simulators import SimulatorError, check_start

    if text is None:
        today = datetime.now(BEIJING).replace(hour=0, minute=0, second=0, microsecond=0)
        return today - timedelta(days=math.ceil(hours / 24) + 1)
    try:
        begin = datetime.fromisoformat(text)
        check_start(begin)
    except (ValueError, SimulatorError) as exc:
        console.print(f"[red]--start {text!r}: {exc}[/] (e.g. 2026-11-19T00:00+08:00)")
        raise typer.Exit(2) from None
    return begin


async def _run(
    kafka_url: str,
    mqtt: Any,
    out_dir: Path,
    state_dir: Path,
    config: Path,
    scenario: str | None,
    begin: datetime,
    hours: float,
    speed: float,
    seed: int,
    duration: float,
    mode: str,
) -> tuple[LiveState, RunSummary]:
    from streams import gctune
    from streams.runtime import Runtime
    from streams.settings import Settings

    settings = Settings(
        kafka=kafka_url,
        app_id="envwatch-demo",
        partitions=1,
        session_timeout=6,
        rebalance_timeout=6,
        heartbeat_interval=1,
        mqtt_host=mqtt.host,
        mqtt_port=mqtt.port,
        spool_dir=out_dir,
        data_dir=state_dir / "faust",
        outbox_path=state_dir / "outbox.db",
        alerts_log=out_dir / "alerts.jsonl",
        sink_flush_interval=0.5,
        config_dir=config,
    )

    # every receiver of the catalogue (duty officers, emergency responders, enterprises) gets its
    # notifications by signed webhook on a local receiver that verifies and deduplicates them
    from alerts.settings import AlertsSettings, WebhookSettings
    from streams.catalog import CatalogView, receivers_from_catalog
    from streams.demo_receiver import DemoReceiver

    catalog = CatalogView(config).catalog
    state = LiveState(
        names=Names.from_catalog(catalog),
        scenario=scenario,
        start=begin,
        end=begin + timedelta(hours=hours),
    )
    plain = PlainLog(state.names, console.print) if mode == "plain" else None
    secret = _webhook_key()
    names = [r.name for r in receivers_from_catalog(catalog)]
    # and the escalation receivers the catalogue routes (chief-<locality> …: alert-rules chains)
    names += [n for n in catalog.routes() if n not in names]
    player = Player()
    # what every receiver accepted, one line each (the enterprises' duties with their measures)
    with (
        (out_dir / "notifications.jsonl").open("wb", buffering=0) as received,
        DemoReceiver(secret, log=received) as receiver,
    ):
        hooks = {
            n: WebhookSettings(url=f"{receiver.url}/{n}", secret=SecretStr(secret)) for n in names
        }
        alerts_settings = AlertsSettings(outbox_path=state_dir / "outbox.db", webhooks=hooks)
        from streams.api.serve import demo_principals, running_api, write_api_json

        tokens, auth = demo_principals(catalog)
        async with (
            Runtime(settings, alerts_settings=alerts_settings) as rt,
            # the alerts API on a free loopback port; its tokens only in out_dir/api.json (0600)
            running_api(kafka_url, auth, catalog=catalog) as api,
        ):
            write_api_json(out_dir / "api.json", api.url, tokens)
            assert rt.pipeline is not None
            assert rt.bridge is not None
            pipeline, bridge = rt.pipeline, rt.bridge
            gctune.tune(settings.gc_threshold)  # everything kept is built (streams/gctune.py)

            def update() -> None:
                state.pipeline(
                    time.monotonic(),
                    published=player.sent,
                    received=bridge.counters.received,
                    evaluated=pipeline.counters["samples"],
                    dead_letters=pipeline.counters["dead_letters"],
                    played_to=player.played_to,
                )

            pipeline.observers.append(state.observe_point)
            pipeline.transition_observers.append(state.observe_transition)
            if plain is not None:
                pipeline.observers.append(plain.observe_point)
                pipeline.transition_observers.append(plain.observe_transition)
            with _live(state, update, mode) as refresher:
                try:
                    published = await _play(
                        pipeline.catalog.catalog,
                        mqtt,
                        scenario,
                        begin,
                        hours,
                        speed,
                        seed,
                        duration,
                        player,
                    )
                    # let the last samples pass the bridge, the worker and the notifications
                    deadline = time.monotonic() + 15
                    while time.monotonic() < deadline and pipeline.counters["samples"] < published:  # noqa: ASYNC110 - polls another task's counter
                        await asyncio.sleep(0.2)
                    await _settle(pipeline.counters, "aggregates")  # the locality stage follows
                    outbox = pipeline.states.get("outbox")
                    counts = await _drain(outbox)
                finally:
                    refresher.cancel()
                update()
            if plain is not None:
                plain.flush()
            run = RunSummary(
                published=published,
                produced=bridge.counters.produced,
                evaluated=pipeline.counters["samples"],
                notifications=dict(receiver.by_receiver),
                bad_signatures=receiver.bad_signatures,
                outbox_pending=counts.get("pending", 0),
                # held (a receiver refused it: kept for `envwatch notify replay`) or dead
                outbox_failed=counts.get("dead", 0) + counts.get("held", 0),
                dead_letters={},
                out_dir=out_dir,
                alerts_log=out_dir / "alerts.jsonl",
                lp_files=(),
                lp_lines=0,
            )
        return state, run


def _webhook_key() -> str:
    """The key the demo's webhooks are signed with: ``ENVWATCH_DEMO_WEBHOOK_SECRET`` (or the
    file named by ``ENVWATCH_DEMO_WEBHOOK_SECRET_FILE``), else a random one for this run — never
    a constant in the code, never printed."""
    import os
    import secrets

    path = os.environ.get("ENVWATCH_DEMO_WEBHOOK_SECRET_FILE")
    if path:
        return Path(path).read_text(encoding="utf-8").removesuffix("\n")
    return os.environ.get("ENVWATCH_DEMO_WEBHOOK_SECRET") or secrets.token_urlsafe(32)


class _Refresher:
    def __init__(self, task: asyncio.Task[None] | None) -> None:
        self.task = task

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()


@contextlib.contextmanager
def _live(state: LiveState, update: Callable[[], None], mode: str) -> Iterator[_Refresher]:
    """The live view (mode ``live``), refreshed from the event loop — the thread the observers
    run on, so rendering never sees a half-updated state. Other modes only keep the counters."""
    if mode != "live":
        yield _Refresher(asyncio.create_task(_keep(update, 1.0, None)))
        return
    with Live(render(state), console=console, auto_refresh=False, transient=False) as live:

        def show() -> None:
            live.update(render(state), refresh=True)

        refresher = _Refresher(asyncio.create_task(_keep(update, 1 / REFRESH_PER_SECOND, show)))
        try:
            yield refresher
        finally:
            refresher.cancel()
            show()


async def _keep(update: Callable[[], None], every: float, show: Callable[[], None] | None) -> None:
    while True:
        update()
        if show is not None:
            show()
        await asyncio.sleep(every)


async def _settle(counters: Any, key: str, quiet_for: float = 3.0, limit: float = 60.0) -> None:
    """Wait until ``counters[key]`` has not moved for ``quiet_for`` s (at most ``limit`` s)."""
    deadline = time.monotonic() + limit
    last, since = counters[key], time.monotonic()
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        if counters[key] != last:
            last, since = counters[key], time.monotonic()
        elif time.monotonic() - since >= quiet_for:
            return


async def _drain(outbox: Any, limit: float = 15.0) -> dict[str, int]:
    """Wait (at most ``limit`` s) until the outbox has nothing pending; its counts by state."""
    if outbox is None:
        return {}
    deadline = time.monotonic() + limit
    while True:
        counts = {str(k.value): n for k, n in outbox.counts().items()}
        if counts.get("pending", 0) == 0 or time.monotonic() >= deadline:
            return counts
        await asyncio.sleep(0.3)


class _Tracked:
    """The MQTT sink, noting how far the simulator has got."""

    def __init__(self, sink: Any, player: Player) -> None:
        self.sink, self.player = sink, player

    def send(self, delivery: Any) -> None:
        self.sink.send(delivery)
        self.player.sent += 1
        self.player.played_to = delivery.at

    def close(self) -> None:
        self.sink.close()


async def _play(
    catalog: Any,
    mqtt: Any,
    scenario: str | None,
    begin: datetime,
    hours: float,
    speed: float,
    seed: int,
    duration: float,
    player: Player,
) -> int:
    """Publish the simulated network until it ends, the duration ends, or Ctrl-C."""
    from ingest.simulators import simulate, specs_from_catalog
    from ingest.simulators.publish import MqttSink, play

    specs = specs_from_catalog(catalog)
    deliveries = simulate(specs, start=begin, hours=hours, seed=seed, scenario=scenario)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    halt = threading.Event()
    sink = _Tracked(
        MqttSink(mqtt.host, mqtt.port, client_id="envwatch-demo-simulator", window=200), player
    )

    def until_halted() -> Any:
        for d in deliveries:
            if halt.is_set():
                return
            yield d

    def run() -> None:
        play(until_halted(), sink, start=begin, speed=speed, sleep=_interruptible(halt))

    runner = asyncio.ensure_future(asyncio.to_thread(run))
    waiter = asyncio.ensure_future(stop.wait())
    await asyncio.wait([runner, waiter], timeout=duration, return_when=asyncio.FIRST_COMPLETED)
    halt.set()
    await asyncio.wait([runner], timeout=15)
    waiter.cancel()
    await asyncio.to_thread(sink.close)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(sig)
    return player.sent


def _interruptible(halt: threading.Event) -> Callable[[float], None]:
    def sleep(seconds: float) -> None:
        halt.wait(seconds)

    return sleep


# ---------------------------------------------------------------------------- the outputs

#: a ``dead_letter`` line of the store (streams/agents/deadletter.py): its stage and reason
_DEAD_LETTER = re.compile(
    r'^dead_letter,stage=(?P<stage>(?:[^ ,\\]|\\.)*)\S* reason="(?P<reason>(?:[^"\\]|\\.)*)"'
)


def _lp_files(out_dir: Path) -> list[Path]:
    return sorted(p for pat in ("*.lp", "*.lp.gz") for p in out_dir.glob(pat))


def _lines(path: Path) -> Iterator[str]:
    opener: Any = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        yield from fh


def _with_outputs(run: RunSummary, out_dir: Path) -> RunSummary:
    """The run with what its output files hold: the line-protocol files, their line count and
    the dead letters by stage and reason (the store writes each as a ``dead_letter`` point)."""
    files = _lp_files(out_dir)
    dead: Counter[tuple[str, str]] = Counter()
    lines = 0
    for path in files:
        for line in _lines(path):
            lines += 1
            if line.startswith("dead_letter,"):
                m = _DEAD_LETTER.match(line)
                if m is None:
                    dead[("?", "unreadable dead_letter line")] += 1
                    continue
                reason = m["reason"].replace('\\"', '"').replace("\\\\", "\\")
                dead[(m["stage"].replace("\\", ""), reason_kind(reason))] += 1
    return replace(run, dead_letters=dict(dead), lp_files=files, lp_lines=lines)
