"""``envwatch demo``: the whole pipeline on the embedded default, no Docker, no external servers.

It starts Tansu (Kafka protocol) and mosquitto (or amqtt when mosquitto is absent) on free
loopback ports, creates the topics, runs the MQTT→Kafka bridge and the Faust worker in this
process, plays the simulated network of the reference catalogue (deploy/config) — optionally
with a scripted scenario — over MQTT at accelerated time, prints what the worker concludes, and
on Ctrl-C or when ``--duration`` ends stops everything it started.

Output (``--out DIR``): line-protocol files (``*.lp``, loadable with ``influx write --file``) and
``alerts.jsonl`` (one JSON object per alert or warning transition).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import typer
from pydantic import SecretStr
from rich.console import Console

from streams.cli._app import app

BEIJING = ZoneInfo("Asia/Shanghai")
console = Console(highlight=False, soft_wrap=True)

LEVEL_STYLE = {"yellow": "bold yellow", "orange": "bold dark_orange", "red": "bold red"}


def _print_evaluation(e: Any) -> None:
    """City AQI per hour (one compact line) and exceedances; the rest goes to the output files."""
    tags = e["tags"]
    t = datetime.fromisoformat(e["time"]).astimezone(BEIJING).strftime("%m-%d %H:%M")
    if (
        e["measurement"] == "aqi"
        and tags.get("source") == "city"
        and tags.get("period") in ("hour", "day")
    ):
        f = e["fields"]
        aqi = f.get("aqi", f.get("computed_aqi", "NA"))
        extra = f"  {f.get('category', '')} {f.get('primary', '')}".rstrip()
        label = "city AQI" if tags["period"] == "hour" else "DAILY AQI"
        style = "bold" if tags["period"] == "day" else "default"
        console.print(f"[dim]{t}[/] {label:<9} {tags['locality']:<15} [{style}]{aqi:>4}[/]{extra}")
    elif e["measurement"] == "exceedance":
        f = e["fields"]
        console.print(
            f"[dim]{t}[/] [magenta]exceedance[/] {tags.get('locality', ''):<15} {tags.get('source', ''):<22} "
            f"{tags.get('factor', '')}={f.get('value')} > {f.get('limit')} ({tags.get('period', '')})"
        )


def _print_transition(t: Any) -> None:
    at = t.at.astimezone(BEIJING).strftime("%m-%d %H:%M")
    if t.kind.value == "warning":
        style = LEVEL_STYLE.get(t.level or "", "bold green")
        what = "LIFTED" if t.state.value == "resolved" else f"{(t.level or '').upper()} warning"
        console.print(
            f"[dim]{at}[/] [{style}]■ {t.locality}: heavy-pollution {what}[/] ({t.reason.value})"
        )
    else:
        console.print(
            f"[dim]{at}[/] [cyan]alert {t.state.value:<8}[/] {t.locality:<15} {t.source:<22} "
            f"{t.labels.get('rule', '')} {t.annotations.get('summary', '')}"
        )


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
    config: Path = typer.Option(Path("deploy/config"), help="catalogue directory"),
    seed: int = typer.Option(0, help="simulator seed"),
    quiet: bool = typer.Option(False, help="print only the summary"),
) -> None:
    """Run envwatch end to end on the embedded default and show what flows through it."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from ingest.simulators import SCENARIOS

    if scenario is not None and scenario not in SCENARIOS:
        console.print(f"[red]unknown scenario {scenario!r}[/]; known: {', '.join(SCENARIOS)}")
        raise typer.Exit(2)
    if duration <= 0:
        console.print("[red]--duration must be > 0[/]")
        raise typer.Exit(2)
    hours = float(SCENARIOS[scenario].hours) if scenario else max(24.0, duration)
    if speed is None:
        speed = hours * 3600 / (duration * 0.8)
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
            f"speed: {speed:,.0f}× ({speed / 3600:.1f} simulated h/s)   output: {out_dir}"
        )
        summary = asyncio.run(
            _run(
                kafka.url,
                mqtt,
                out_dir,
                state_dir,
                config,
                scenario,
                hours,
                speed,
                seed,
                duration,
                quiet,
            )
        )
    console.print(
        f"[bold]done[/]: published {summary['published']} samples, bridge produced {summary['produced']}, "
        f"worker evaluated {summary['evaluated']} and stored {summary['stored']} points; "
        f"{summary['transitions']} alert/warning transitions in {out_dir / 'alerts.jsonl'}; "
        f"{summary['webhooks']} signed webhook notifications delivered "
        f"({summary['bad_signatures']} bad signatures); every process stopped."
    )


async def _run(
    kafka_url: str,
    mqtt: Any,
    out_dir: Path,
    state_dir: Path,
    config: Path,
    scenario: str | None,
    hours: float,
    speed: float,
    seed: int,
    duration: float,
    quiet: bool,
) -> dict[str, int]:
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
    counts = {"stored": 0, "transitions": 0}
    shown: dict[str, object] = {}

    def observe(e: Any) -> None:
        counts["stored"] += 1
        if quiet:
            return
        # a corrected point keeps its id: print it again only when its value changed
        value = e["fields"].get("aqi", e["fields"].get("value"))
        if shown.get(e["id"]) == value:
            return
        shown[e["id"]] = value
        _print_evaluation(e)

    def observe_transition(t: Any) -> None:
        counts["transitions"] += 1
        if not quiet and (t.kind.value == "warning" or t.notify):
            _print_transition(t)

    # every receiver of the catalogue (duty officers, emergency responders, enterprises) gets its
    # notifications by signed webhook on a local receiver that verifies and deduplicates them
    from alerts.settings import AlertsSettings, WebhookSettings
    from streams.catalog import CatalogView, receivers_from_catalog
    from streams.demo_receiver import DemoReceiver

    secret = "envwatch-demo-secret"
    names = [r.name for r in receivers_from_catalog(CatalogView(config).catalog)]
    with DemoReceiver(secret) as receiver:
        hooks = {
            n: WebhookSettings(url=f"{receiver.url}/{n}", secret=SecretStr(secret)) for n in names
        }
        alerts_settings = AlertsSettings(outbox_path=state_dir / "outbox.db", webhooks=hooks)
        async with Runtime(settings, alerts_settings=alerts_settings) as rt:
            assert rt.pipeline is not None
            assert rt.bridge is not None
            rt.pipeline.observers.append(observe)
            rt.pipeline.transition_observers.append(observe_transition)
            status = asyncio.create_task(_status(rt, counts, quiet))
            try:
                published = await _play(
                    rt.pipeline.catalog.catalog, mqtt, scenario, hours, speed, seed, duration
                )
            finally:
                status.cancel()
            # let the last samples pass through the bridge, the worker and the notifications
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and rt.pipeline.counters["samples"] < published:  # noqa: ASYNC110 - polls another task's counter
                await asyncio.sleep(0.2)
            await _settle(rt.pipeline.counters, "aggregates")  # the locality stage follows
            produced = rt.bridge.counters.produced
            evaluated = rt.pipeline.counters["samples"]
        return {
            "published": published,
            "produced": produced,
            "evaluated": evaluated,
            "webhooks": len(receiver.keys),
            "bad_signatures": receiver.bad_signatures,
            **counts,
        }


async def _status(rt: Any, counts: dict[str, int], quiet: bool, every: float = 5.0) -> None:
    """A progress line every few seconds: what the bridge and the worker have done so far."""
    while True:
        await asyncio.sleep(every)
        if quiet:
            continue
        c = rt.pipeline.counters
        console.print(
            f"[dim]… bridge received {rt.bridge.counters.received:,} readings · worker evaluated "
            f"{c['samples']:,} samples · {counts['stored']:,} points stored · "
            f"{counts['transitions']:,} alert/warning transitions[/]"
        )


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


async def _play(
    catalog: Any,
    mqtt: Any,
    scenario: str | None,
    hours: float,
    speed: float,
    seed: int,
    duration: float,
) -> int:
    """Publish the simulated network until it ends, the duration ends, or Ctrl-C."""
    from ingest.simulators import simulate, specs_from_catalog
    from ingest.simulators.publish import MqttSink, play

    specs = specs_from_catalog(catalog)
    today = datetime.now(BEIJING).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=math.ceil(hours / 24) + 1)
    deliveries = simulate(specs, start=start, hours=hours, seed=seed, scenario=scenario)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    halt = threading.Event()
    sink = MqttSink(mqtt.host, mqtt.port, client_id="envwatch-demo-simulator", window=200)
    sent = [0]

    def until_halted() -> Any:
        for d in deliveries:
            if halt.is_set():
                return
            sent[0] += 1
            yield d

    def run() -> None:
        play(until_halted(), sink, start=start, speed=speed, sleep=_interruptible(halt))

    player = asyncio.ensure_future(asyncio.to_thread(run))
    waiter = asyncio.ensure_future(stop.wait())
    await asyncio.wait([player, waiter], timeout=duration, return_when=asyncio.FIRST_COMPLETED)
    halt.set()
    await asyncio.wait([player], timeout=15)
    waiter.cancel()
    await asyncio.to_thread(sink.close)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(sig)
    return sent[0]


def _interruptible(halt: threading.Event) -> Callable[[float], None]:
    def sleep(seconds: float) -> None:
        halt.wait(seconds)

    return sleep
