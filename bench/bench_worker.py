"""Stream worker: throughput with all evaluations on vs a bare Faust consumer; sink; latency.

Side by side in one run, on embedded Tansu (and VictoriaMetrics when installed):

* **worker**: the real app (``streams.app.build``) in-process, reading a pre-filled ``readings``
  topic of N hourly station samples (6 pollutants each), evaluating, emitting, storing (spool);
  rate = samples / (time of the last sample counted − time of the first). Twice: the
  ``evaluate`` stage alone (a worker process with every evaluation on, ``ENVWATCH_AGENTS``) and
  every stage in one process (evaluate, locality, store, notify, dead-letter);
* **bare**: a Faust app with one ``take_events`` agent that only counts, on a copy of the same
  topic — stock Faust, and the same with envwatch's inline record delivery (streams.dispatch),
  the transport the worker runs on. Goals (issue 6): worker ≥ 20 000 samples/s, ≥ 90 % of bare;
* **sink**: lines/s to VictoriaMetrics through ``streams.sink.InfluxWriter`` (httpx), the
  influxdb-client writer and a bare ``httpx.post``, each on its own *fresh* series (the first
  writer of a series pays its creation in VictoriaMetrics; comparing fresh with warm series is
  what once made the client look 4x slower);
* **latency**: samples produced at 1 000/s, produce → the worker's store agent has written the
  reading (``pipeline.observers``), p50/p99.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from streams import embedded, topics

STATIONS = 200
ALL_STAGES = "evaluate,locality,store,notify,deadletter"


def _sample(i: int, t0: datetime) -> tuple[bytes, bytes]:
    source = f"aq-b-{i % STATIONS:03d}"
    at = t0 + timedelta(hours=i // STATIONS)
    # every factor varies from hour to hour: a constant so2 or co at all 200 stations would keep
    # 400 constant-value alerts (alerts.rules) busy — a stuck network, not the normal stream
    h, st = divmod(i, STATIONS)
    v = {
        "pm25": 30.0 + i % 23, "pm10": 70.0 + i % 11, "so2": 8.0 + (st + h) % 3,
        "no2": 25.0 + (st + h) % 5, "co": 0.6 + 0.1 * ((st + h) % 4), "o3": 50.0 + i % 31,
    }  # fmt: skip
    d = {
        "schema": 1, "kind": "air", "locality": "weifang", "source": source,
        "time": at.isoformat(), "interval": "hour",
        "values": {f: {"value": x, "flag": "N"} for f, x in v.items()},
    }  # fmt: skip
    return source.encode(), orjson.dumps(d)


async def _fill(bootstrap: str, topic: str, n: int, t0: datetime) -> None:
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=512 * 1024)
    await p.start()
    try:
        for i in range(n):
            k, v = _sample(i, t0)
            # received 5 min after the hour it reports, as the bridge stamps it: every sample is
            # within the worker's plausibility window (max_future_s, max_past_days), none is
            # dead-lettered
            at = t0 + timedelta(hours=i // STATIONS, minutes=5)
            await p.send(topic, v, key=k, timestamp_ms=int(at.timestamp() * 1000))
        await p.flush()
    finally:
        await p.stop()


def _settings(kafka: Any, prefix: str, tmp: Path, **kw: Any) -> Any:
    from streams.settings import Settings

    return Settings(
        kafka=kafka.url, app_id=f"{prefix}app", topic_prefix=prefix, partitions=1,
        session_timeout=6, rebalance_timeout=6, heartbeat_interval=1,
        data_dir=tmp / "faust", spool_dir=tmp / "spool", config_dir=None,
        sink_flush_interval=0.2, outbox_path=tmp / "outbox.db", **kw,
    )  # fmt: skip


async def _run_worker(kafka: Any, n: int, tmp: Path, t0: datetime, agents: str) -> float:
    from streams.app import build

    prefix = f"bw-worker-{agents.replace(',', '-')}-"
    s = _settings(kafka, prefix, tmp / prefix, agents=agents)
    await topics.ensure_topics(kafka.url, 1, prefix)
    await _fill(kafka.bootstrap, topics.name(topics.READINGS, prefix), n, t0)
    p = build(s)
    first: float | None = None
    await p.app.start()
    try:
        deadline = time.monotonic() + 300
        while p.counters["samples"] < n and time.monotonic() < deadline:
            if first is None and p.counters["samples"]:
                first = time.perf_counter()
            await asyncio.sleep(0.005)
        last = time.perf_counter()
        done = p.counters["samples"]
    finally:
        await p.app.stop()
        p.sink.close()
    return (done - 0) / (last - (first or last)) if first else 0.0


async def _run_bare(kafka: Any, n: int, tmp: Path, t0: datetime, *, inline: bool) -> float:
    """A Faust app with one counting agent. ``inline``: with the worker's record delivery
    (streams.dispatch) and stream buffer — the same transport the worker has."""
    import faust

    from streams import dispatch
    from streams.app import STREAM_BUFFER

    name = "bw-bare-inline" if inline else "bw-bare"
    topic_name = f"{name}-readings"
    await topics.ensure_topics(kafka.url, 1, f"{name}-")
    await _fill(kafka.bootstrap, topic_name, n, t0)
    extra = {"stream_buffer_maxsize": STREAM_BUFFER} if inline else {}
    app = faust.App(
        name, broker=kafka.url, store="memory://", datadir=str(tmp / name),
        web_enabled=False, broker_session_timeout=6, broker_rebalance_timeout=6,
        broker_heartbeat_interval=1, consumer_auto_offset_reset="earliest", **extra,
    )  # fmt: skip
    if inline:
        dispatch.install(app)
    t = app.topic(topic_name, key_type=bytes, value_type=bytes,
                  key_serializer="raw", value_serializer="raw")  # fmt: skip
    count = [0]

    @app.agent(t, name="count")  # type: ignore[untyped-decorator]
    async def count_agent(stream: Any) -> None:
        async for events in stream.take_events(2000, within=0.05):
            count[0] += len(events)

    first: float | None = None
    await app.start()
    try:
        deadline = time.monotonic() + 300
        while count[0] < n and time.monotonic() < deadline:
            if first is None and count[0]:
                first = time.perf_counter()
            await asyncio.sleep(0.005)
        last = time.perf_counter()
    finally:
        await app.stop()
    return count[0] / (last - (first or last)) if first else 0.0


async def _latency(kafka: Any, tmp: Path, rate: int, seconds: float) -> tuple[float, float, int]:
    from streams.app import build

    prefix = "bw-lat-"
    s = _settings(kafka, prefix, tmp / "lat")
    await topics.ensure_topics(kafka.url, 1, prefix)
    p = build(s)
    sent: dict[str, float] = {}
    lat: list[float] = []

    def seen(e: dict[str, Any]) -> None:  # a point in its wire form (streams.wire)
        if e["measurement"] == "reading":
            key = f"{e['tags']['source']}|{e['ns']}"
            t = sent.pop(key, None)
            if t is not None:
                lat.append(time.perf_counter() - t)

    p.observers.append(seen)
    await p.app.start()
    prod = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, linger_ms=0)
    await prod.start()
    t0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=20)
    try:
        n = int(rate * seconds)
        start = time.perf_counter()
        for i in range(n):
            k, v = _sample(i, t0)
            d = orjson.loads(v)
            at_ns = int(datetime.fromisoformat(d["time"]).timestamp()) * 1_000_000_000
            sent[f"{d['source']}|{at_ns}"] = time.perf_counter()
            await prod.send(topics.name(topics.READINGS, prefix), v, key=k)
            delay = start + (i + 1) / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        deadline = time.monotonic() + 30
        while sent and time.monotonic() < deadline:  # noqa: ASYNC110 - polling a dict fed by a callback
            await asyncio.sleep(0.05)
    finally:
        await prod.stop()
        await p.app.stop()
        p.sink.close()
    lat.sort()
    p50 = statistics.median(lat) if lat else float("nan")
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan")
    return p50, p99, len(lat)


def _sink(n: int) -> None:
    import httpx

    from bench.bench_sink import _records
    from streams.agents.store import to_line
    from streams.sink import ClientWriter, InfluxWriter

    try:
        cm = embedded.victoria_metrics()
        vm = cm.__enter__()
    except embedded.ServiceUnavailable as exc:
        print(f"sink       skipped: {exc}")
        return
    try:
        recs = _records(3 * n)
        lines = [to_line(r) for r in recs]
        # three disjoint sets of series (different sources): every writer creates its own
        sets = [[ln.replace("source=aq-", f"source=w{j}-") for ln in lines[:n]] for j in range(3)]
        batch = 5000

        def rate(write: Any, ls: list[str]) -> float:
            t = time.perf_counter()
            for i in range(0, len(ls), batch):
                write(ls[i : i + batch])
            return len(ls) / (time.perf_counter() - t)

        ours = InfluxWriter(vm.url, token=None)
        client = ClientWriter(vm.url, token=None, org="envwatch", bucket="envwatch")
        http = httpx.Client()
        url = f"{vm.url}/api/v2/write?org=envwatch&bucket=envwatch&precision=ns"

        def bare(ls: list[str]) -> None:
            http.post(url, content=("\n".join(ls) + "\n").encode()).raise_for_status()

        r_ours = rate(ours.write, sets[0])
        r_client = rate(client.write, sets[1])
        r_bare = rate(bare, sets[2])
        print(
            f"sink       InfluxWriter {r_ours:>10,.0f} lines/s | influxdb-client {r_client:>10,.0f}"
            f" | bare httpx {r_bare:>10,.0f} (fresh series each, batches of {batch})"
        )
        print(
            f"           ratio InfluxWriter/bare = {r_ours / r_bare:.2f}, "
            f"client/bare = {r_client / r_bare:.2f}"
        )
        ours.close()
        client.close()
        http.close()
    finally:
        cm.__exit__(None, None, None)


def main(quick: bool) -> None:
    import logging

    logging.getLogger().setLevel(logging.WARNING)
    n = 5_000 if quick else 40_000
    t0 = datetime(2026, 6, 1, tzinfo=UTC)
    try:
        kcm = embedded.tansu()
        kafka = kcm.__enter__()
    except embedded.ServiceUnavailable as exc:
        print(f"worker     skipped: {exc}")
        return
    try:
        with tempfile.TemporaryDirectory(prefix="bench-worker-") as tmp:
            tdir = Path(tmp)
            bare = asyncio.run(_run_bare(kafka, n, tdir, t0, inline=False))
            bare_inline = asyncio.run(_run_bare(kafka, n, tdir, t0, inline=True))
            evaluate = asyncio.run(_run_worker(kafka, n, tdir, t0, "evaluate"))
            every = asyncio.run(_run_worker(kafka, n, tdir, t0, ALL_STAGES))
            print(
                f"worker     bare Faust take_events {bare:>8,.0f} events/s | the same with "
                f"envwatch's inline delivery {bare_inline:>8,.0f} ({n:,} station samples, 1 "
                "partition)"
            )
            print(
                f"           evaluate stage (every evaluation on) {evaluate:>8,.0f} samples/s | "
                f"all stages in one process {every:>8,.0f} samples/s"
            )
            print(
                f"           ratio evaluate/bare = {evaluate / bare:.2f} (goal ≥ 0.90), "
                f"evaluate/bare-inline = {evaluate / bare_inline:.2f}, all-stages/bare = "
                f"{every / bare:.2f}; evaluate vs goal 20 000/s = {evaluate / 20_000:.2f}"
            )
            p50, p99, got = asyncio.run(_latency(kafka, tdir, 1000, 3 if quick else 10))
            print(
                f"latency    produce → stored (sink write returned) at 1 000 samples/s: "
                f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms ({got} samples)"
            )
    finally:
        kcm.__exit__(None, None, None)
    _sink(10_000 if quick else 50_000)
