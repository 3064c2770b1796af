"""Sink: line-protocol serialisation and writes to a real endpoint (VictoriaMetrics).

Side by side in one run:
* serialise N evaluation records to line protocol (envwatch) vs ``influxdb_client.Point`` objects;
* write the same lines through :class:`streams.sink.InfluxWriter` (influxdb-client, synchronous)
  vs a bare ``httpx.post`` of the same bytes to the same endpoint.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from streams import embedded
from streams.agents.store import to_line
from streams.lineprotocol import ns
from streams.sink import InfluxWriter


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
    lines = [to_line(r) for r in records]
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
        batch = 5000
        writer = InfluxWriter(vm.url, token=None, org="envwatch", bucket="envwatch")
        t = time.perf_counter()
        for i in range(0, n, batch):
            writer.write(lines[i : i + batch])
        client_rate = _rate(n, time.perf_counter() - t)
        writer.close()
        with httpx.Client() as http:
            t = time.perf_counter()
            for i in range(0, n, batch):
                body = "\n".join(lines[i : i + batch]).encode()
                http.post(
                    f"{vm.url}/api/v2/write?org=envwatch&bucket=envwatch&precision=ns", content=body
                )
            bare_rate = _rate(n, time.perf_counter() - t)
        print(
            f"write      influxdb-client {client_rate:>10,.0f} lines/s | bare httpx POST {bare_rate:>10,.0f} lines/s"
            f" (batches of {batch}, VictoriaMetrics on loopback)"
        )
        print(f"           ratio client/bare = {client_rate / bare_rate:.2f}")
    finally:
        cm.__exit__(None, None, None)
