"""``envwatch demo``: the whole pipeline on the embedded default, no Docker, no external servers.

It starts Tansu (Kafka protocol) and mosquitto (or amqtt when mosquitto is absent) on free
loopback ports, creates the topics, runs the MQTT→Kafka bridge and the Faust worker in this
process, publishes simulated station samples over MQTT, prints what comes out of the worker, and
on Ctrl-C or when ``--duration`` ends stops everything it started.
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
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import typer
from rich.console import Console

from streams.cli._app import app

BEIJING = ZoneInfo("Asia/Shanghai")
console = Console(highlight=False, soft_wrap=True)

#: A tiny illustrative network for the walking skeleton (example data, not the real network).
DEMO_STATIONS = [
    ("weifang", "aq-wf-demo-1"),
    ("tianqiao", "aq-tq-demo-1"),
    ("laixi", "aq-lx-demo-1"),
]


def demo_samples(start: datetime, hours: int) -> Iterator[dict[str, object]]:
    """Hourly air samples with a plausible winter daily cycle (deterministic, no randomness)."""
    for h in range(hours):
        at = start + timedelta(hours=h + 1)  # an hour labelled t is the mean over (t-1h, t]
        local_h = at.astimezone(BEIJING).hour
        cycle = 1 + 0.35 * math.cos((local_h - 7) / 24 * 2 * math.pi)  # morning peak
        for i, (locality, source) in enumerate(DEMO_STATIONS):
            base = 40 + 15 * i
            pm25 = round(base * cycle, 1)
            values = {
                "pm25": {"value": pm25, "flag": "N"},
                "pm10": {"value": round(pm25 * 1.6, 1), "flag": "N"},
                "so2": {"value": round(8 + 2 * cycle, 1), "flag": "N"},
                "no2": {"value": round(30 * cycle, 1), "flag": "N"},
                "co": {"value": round(0.6 * cycle, 2), "flag": "N"},
                "o3": {"value": round(60 / cycle, 1), "flag": "N"},
            }
            yield {
                "schema": 1,
                "kind": "air",
                "locality": locality,
                "source": source,
                "time": at.isoformat(),
                "interval": "hour",
                "values": values,
            }


def _print_evaluation(e: object) -> None:
    from streams.records import EvaluationRecord

    assert isinstance(e, EvaluationRecord)
    t = datetime.fromisoformat(e.time).astimezone(BEIJING).strftime("%m-%d %H:%M")
    values = "  ".join(f"{k}={v}" for k, v in e.fields.items())
    console.print(
        f"[dim]{t}[/] [bold]{e.measurement:<11}[/] {e.tags.get('locality', ''):<9} "
        f"{e.tags.get('source', ''):<14} {values}"
    )


@app.command()
def demo(
    duration: float = typer.Option(60.0, help="seconds to run (Ctrl-C stops earlier)"),
    out: Path | None = typer.Option(
        None, help="directory for the line-protocol output (default: a temp dir)"
    ),
    rate: float = typer.Option(2.0, help="simulated hours published per second"),
    quiet: bool = typer.Option(False, help="print only the summary"),
) -> None:
    """Run envwatch end to end on the embedded default and show what flows through it."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from streams import embedded

    with contextlib.ExitStack() as stack:
        out_dir = out or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="envwatch-demo-"))
        )
        out_dir.mkdir(parents=True, exist_ok=True)
        console.print("[bold]envwatch demo[/] — starting the embedded default …")
        kafka = stack.enter_context(embedded.tansu())
        mqtt = stack.enter_context(embedded.mqtt_broker())
        console.print(
            f"  Kafka protocol: Tansu on {kafka.bootstrap}   MQTT: {mqtt.implementation} on "
            f"{mqtt.host}:{mqtt.port}   output: {out_dir}"
        )
        state_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="envwatch-state-")))
        summary = asyncio.run(
            _run(kafka.url, mqtt.host, mqtt.port, out_dir, state_dir, duration, rate, quiet)
        )
    console.print(
        f"[bold]done[/]: published {summary['published']} samples, bridge produced "
        f"{summary['produced']}, worker stored {summary['stored']} points in {summary['files']} "
        f"line-protocol file(s); every process stopped."
    )


async def _run(
    kafka_url: str,
    mqtt_host: str,
    mqtt_port: int,
    out_dir: Path,
    state_dir: Path,
    duration: float,
    rate: float,
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
        mqtt_host=mqtt_host,
        mqtt_port=mqtt_port,
        spool_dir=out_dir,
        data_dir=state_dir / "faust",
        sink_flush_interval=0.5,
        config_dir=None,
    )
    stored = 0

    def observe(e: object) -> None:
        nonlocal stored
        stored += 1
        if not quiet:
            _print_evaluation(e)

    async with Runtime(settings) as rt:
        assert rt.pipeline is not None
        assert rt.bridge is not None
        rt.pipeline.observers.append(observe)
        published = await _publish_for(mqtt_host, mqtt_port, duration, rate, lambda: stored)
        produced = rt.bridge.counters.produced
        files = len(rt.pipeline.sink.spool.files())
    return {"published": published, "produced": produced, "stored": stored, "files": files}


async def _publish_for(
    mqtt_host: str, mqtt_port: int, duration: float, rate: float, stored: Callable[[], int]
) -> int:
    """Publish demo samples until the duration ends or Ctrl-C; wait for them to pass through."""
    from ingest.publisher import Publisher
    from ingest.schemas import Sample

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    publisher = Publisher(mqtt_host, mqtt_port, client_id="envwatch-demo-publisher")
    start = datetime(2026, 11, 1, tzinfo=BEIJING)
    samples = demo_samples(start, hours=10_000)
    halt = threading.Event()

    def publish_loop() -> None:
        t0 = time.monotonic()
        for n, body in enumerate(samples):
            if halt.is_set():
                break
            publisher.publish(Sample.model_validate(body))
            hour = n // len(DEMO_STATIONS)
            wait = t0 + (hour + 1) / rate - time.monotonic()
            if wait > 0 and (n + 1) % len(DEMO_STATIONS) == 0:
                halt.wait(wait)

    pub_thread = threading.Thread(target=publish_loop, name="demo-publisher", daemon=True)
    pub_thread.start()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), duration)
    halt.set()
    await asyncio.to_thread(pub_thread.join, 10)
    await asyncio.to_thread(publisher.close, 10)
    # let the last samples pass through the bridge and the worker
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and stored() < publisher.published:  # noqa: ASYNC110 - polls a counter of another task
        await asyncio.sleep(0.2)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(sig)
    return publisher.published
