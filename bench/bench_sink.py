"""Sink: line-protocol serialisation and writes to a real endpoint (VictoriaMetrics).

Side by side in one run:
* serialise N evaluation records to line protocol (envwatch) vs ``influxdb_client.Point`` objects;
* write the same lines to a real VictoriaMetrics through the sink's two writers:
  :class:`streams.sink.InfluxWriter` (a bare httpx POST) vs :class:`streams.sink.ClientWriter`
  (influxdb-client's synchronous write API, the default for InfluxDB 2), printed as a ratio.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from streams import embedded
from streams.agents.store import to_line
from streams.lineprotocol import ns
from streams.sink import ClientWriter, InfluxWriter, Writer


def _records(n: int) -> list[dict[str, Any]]:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    out: list[dict[str, Any]] = []
    for i in range(n):
        at = t0 + timedelta(hours=i // 50)
        fields = {
            "pm25": 35.0 + i % 7,
            "pm10": 61.0,
            "so2": 9.0,
            "no2": 30.0,
            "co": 0.6,
            "o3": 80.0,
        }
        tags = {"kind": "air", "locality": "weifang", "source": f"aq-{i % 50}"}
        out.append(
            {"measurement": "reading", "tags": tags, "fields": fields, "time": at, "ns": ns(at)}
        )
    return out


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def main(quick: bool) -> None:
    n = 20_000 if quick else 200_000
    records = _records(n)

    t = time.perf_counter()
    for r in records:
        to_line(r)
    ours = _rate(n, time.perf_counter() - t)

    from influxdb_client import Point

    t = time.perf_counter()
    for r in records:
        p = Point(r["measurement"])
        for k, v in r["tags"].items():
            p = p.tag(k, v)
        for k, v in r["fields"].items():
            p = p.field(k, v)
        p.time(r["time"]).to_line_protocol()
    points = _rate(n, time.perf_counter() - t)
    print(
        f"serialise  envwatch lines {ours:>12,.0f} lines/s | influxdb_client.Point {points:>10,.0f} lines/s"
    )
    print(f"           ratio envwatch/Point = {ours / points:.2f}x")

    try:
        cm = embedded.victoria_metrics()
        vm = cm.__enter__()
    except embedded.ServiceUnavailable as exc:
        print(f"write      skipped: {exc}")
        return
    try:
        _writes(vm.url, records, quick)
    finally:
        cm.__exit__(None, None, None)


def _writes(url: str, records: list[dict[str, Any]], quick: bool) -> None:
    """Lines/s through each writer, interleaved rounds, each round on series of its own.

    VictoriaMetrics pays for creating a series on its first write, so each writer writes to
    fresh series every round (tag ``run``), and the writers take turns, first and second
    alternately: neither profits from the other's series, a warmer endpoint or a quieter one.
    The median of the rounds is printed, and the CPU time each writer costs this process.
    """
    batch = 5000
    rounds = 2 if quick else 6
    writers: dict[str, Callable[[], Writer]] = {
        "httpx InfluxWriter": lambda: InfluxWriter(url, token=None),
        "influxdb-client ClientWriter": lambda: ClientWriter(url, token=None),
    }
    rates: dict[str, list[float]] = {name: [] for name in writers}
    cpu: dict[str, list[float]] = {name: [] for name in writers}
    for rnd in range(rounds):
        order = list(writers.items())
        if rnd % 2:  # whoever writes second meets VictoriaMetrics still merging the first's rows
            order.reverse()
        for k, (name, make) in enumerate(order):
            run = f"r{rnd}w{k}"
            lines = [to_line({**r, "tags": {**r["tags"], "run": run}}) for r in records]
            writer = make()
            try:
                t, c = time.perf_counter(), time.process_time()
                for i in range(0, len(lines), batch):
                    writer.write(lines[i : i + batch])
                rates[name].append(_rate(len(lines), time.perf_counter() - t))
                cpu[name].append((time.process_time() - c) / len(lines) * 1e6)
            finally:
                writer.close()
    med = {name: statistics.median(r) for name, r in rates.items()}
    httpx_rate, client_rate = med["httpx InfluxWriter"], med["influxdb-client ClientWriter"]
    print(
        f"write      httpx InfluxWriter {httpx_rate:>10,.0f} lines/s | influxdb-client "
        f"ClientWriter {client_rate:>10,.0f} lines/s (median of {rounds} alternating rounds, "
        f"{len(records)} lines in batches of {batch}, fresh series each, VictoriaMetrics on "
        "loopback)"
    )
    print(f"           ratio ClientWriter/InfluxWriter = {client_rate / httpx_rate:.2f}")
    # CPU time in this process per line: the writer's own cost, less disturbed by a busy machine
    # than the wall-clock rate (which includes VictoriaMetrics' work)
    cpu_httpx = statistics.median(cpu["httpx InfluxWriter"])
    cpu_client = statistics.median(cpu["influxdb-client ClientWriter"])
    print(
        f"           CPU in envwatch's process: InfluxWriter {cpu_httpx:.2f} µs/line | "
        f"ClientWriter {cpu_client:.2f} µs/line (ratio {cpu_client / cpu_httpx:.2f})"
    )
