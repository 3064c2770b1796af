"""Stream worker: throughput with all evaluations on vs the same step in a plain loop; bare Faust;
sink; latency.

Side by side in one run, on embedded Tansu (and mosquitto/VictoriaMetrics when installed):

* **envelopes**: what the bridge really makes of a live stream — the same station samples
  published over MQTT at ``LIVE_RATE`` (5 000) and ``LOAD_RATE`` (20 000, the throughput goal:
  these sizes fill the worker's topic) samples/s through :class:`ingest.bridge.Bridge` (4
  partitions); the samples per ``readings`` record it produced (``Bridge.envelope_sizes``). How
  full an envelope gets depends on how many messages one read of the MQTT socket brings, so it
  grows with the load and varies from run to run.
  Without mosquitto, amqtt; without either, one sample per record (said so);
* **worker**: the real app (``streams.app.build``) in-process, reading a pre-filled ``readings``
  topic of N hourly station samples (6 pollutants each) in envelopes of the measured sizes,
  evaluating, emitting, storing (spool); rate = samples / (time of the last sample counted −
  time of the first). Twice: the ``evaluate`` stage alone (every evaluation on,
  ``ENVWATCH_AGENTS``) and every stage in one process (evaluate, locality, store, notify,
  dead-letter); the evaluate stage once more with Python's default garbage collector
  (streams/gctune.py: what tuning it changes). Each figure is measured in a fresh interpreter
  (``python -m bench.bench_worker …``): a worker process holds nothing but itself;
* **pure step**: the same records through :class:`streams.steps.EvaluateStep` and the output
  merge in a plain loop, no Kafka: evaluate / pure is what Kafka and Faust cost (goal ≥ 0.90);
* **bare**: a Faust app with one ``take_events`` agent that only counts records, on a copy of the
  same topic — stock Faust, and the same with envewatch's inline record delivery;
* **sink**: lines/s to VictoriaMetrics through ``streams.sink.InfluxWriter`` (httpx), the
  influxdb-client writer and a bare ``httpx.post``, each on its own *fresh* series;
* **latency**: single samples produced at 1 000/s, produce → the worker's store agent has written
  the reading (``pipeline.observers``), p50/p99 (publish → webhook is bench_latency.py).

Goals (issue 16): ``RESULT evaluate_samples_per_s`` ≥ 20 000, ``RESULT all_stages_samples_per_s``
≥ 10 000, evaluate / ``RESULT pure_step_samples_per_s`` ≥ 0.90.
"""

from __future__ import annotations

import asyncio
import logging
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from streams import embedded, gctune, topics
from streams.records import envelope_bytes
from streams.settings import Settings

STATIONS = 200
#: records per evaluate batch: the worker's own default (streams.settings.Settings.batch_size)
BATCH: int = Settings.model_fields["batch_size"].default
#: the live streams whose envelopes are measured: the throughput goal's rate (a loaded province,
#: whose envelopes fill the worker's topic) and the latency goal's (issue 16)
LOAD_RATE = 20_000
LIVE_RATE = 5_000
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


def _records(n: int, t0: datetime, sizes: list[int]) -> list[tuple[bytes | None, bytes, int]]:
    """(key, value, timestamp ms) of N samples in records of ``sizes`` samples (cycled): one
    sample alone keyed by its source, several in an envelope — as the bridge writes them."""
    out: list[tuple[bytes | None, bytes, int]] = []
    i, j = 0, 0
    while i < n:
        size = min(sizes[j % len(sizes)], n - i)
        j += 1
        chunk = [_sample(k, t0) for k in range(i, i + size)]
        # received 5 min after the hour of the chunk's last sample, as the bridge stamps it:
        # every sample is within the worker's plausibility window, none is dead-lettered
        last = i + size - 1
        at = t0 + timedelta(hours=last // STATIONS, minutes=5)
        ts = int(at.timestamp() * 1000)
        if size == 1:
            out.append((chunk[0][0], chunk[0][1], ts))
        else:
            out.append((None, envelope_bytes([v for _k, v in chunk]), ts))
        i += size
    return out


async def _fill(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes, int]]) -> None:
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=512 * 1024)
    await p.start()
    try:
        for key, value, ts in records:
            await p.send(topic, value, key=key, partition=0, timestamp_ms=ts)
        await p.flush()
    finally:
        await p.stop()


def _settings(kafka: Any, prefix: str, tmp: Path, **kw: Any) -> Any:
    return Settings(
        kafka=kafka.url, app_id=f"{prefix}app", topic_prefix=prefix, partitions=1,
        session_timeout=6, rebalance_timeout=6, heartbeat_interval=1,
        data_dir=tmp / "faust", spool_dir=tmp / "spool", config_dir=None,
        sink_flush_interval=0.2, outbox_path=tmp / "outbox.db", **kw,
    )  # fmt: skip


async def _run_worker(
    kafka: Any, records: list[tuple[bytes | None, bytes, int]], n: int, tmp: Path, agents: str,
    tag: str = "",
) -> float:  # fmt: skip
    from streams.app import build

    prefix = f"bw-worker-{agents.replace(',', '-')}{tag}-"
    s = _settings(kafka, prefix, tmp / prefix, agents=agents)
    await topics.ensure_topics(kafka.url, 1, prefix)
    await _fill(kafka.bootstrap, topics.name(topics.READINGS, prefix), records)
    p = build(s)
    first: float | None = None
    start_count = 0
    await p.app.start()
    started = time.perf_counter()
    try:
        deadline = time.monotonic() + 300
        while p.counters["samples"] < n and time.monotonic() < deadline:
            if first is None and p.counters["samples"]:
                first = time.perf_counter()
                start_count = p.counters["samples"]
            await asyncio.sleep(0.002)
        last = time.perf_counter()
        done = p.counters["samples"]
    finally:
        await p.app.stop()
        p.sink.close()
    # from the first batch counted to the last: the first batch's samples are not in the span
    return _span_rate(done, first, start_count, last, started)


def _span_rate(done: int, first: float | None, at_first: int, last: float, started: float) -> float:
    """Rate over the span from the first batch counted (``at_first`` done then) to the last; when
    one batch held everything (``--quick``), over the span since the app started instead (it
    includes the partition assignment: a lower bound)."""
    if first is not None and last > first and done > at_first:
        return (done - at_first) / (last - first)
    return done / (last - started) if last > started else 0.0


def _pure(records: list[tuple[bytes | None, bytes, int]], rounds: int = 3) -> float:
    """The evaluate stage's own work in a plain loop (no Kafka, no Faust): EvaluateStep over the
    records, then the output merge the agent does per batch (``BATCH`` records); best of
    ``rounds``, each from empty state."""
    from streams.agents.evaluate import MERGEABLE
    from streams.catalog import CatalogView
    from streams.steps import EvaluateStep
    from streams.wire import merge_point_records

    best = 0.0
    for _ in range(rounds):
        step = EvaluateStep(
            CatalogView(None), max_future=timedelta(seconds=3600), max_past=timedelta(days=400)
        )
        states: dict[str, Any] = {}
        t = time.perf_counter()
        batch: list[tuple[str, bytes, bytes]] = []
        for offset, (key, value, ts) in enumerate(records):
            batch += step(states, key or b"", value, offset, ts, 0)
            if offset % BATCH == BATCH - 1:
                merge_point_records(batch, MERGEABLE)
                batch = []
        merge_point_records(batch, MERGEABLE)
        best = max(best, step.samples / (time.perf_counter() - t))
    return best


async def _run_bare(
    kafka: Any, records: list[tuple[bytes | None, bytes, int]], tmp: Path, *, inline: bool
) -> float:
    """Records/s of a Faust app with one counting agent. ``inline``: with the worker's record
    delivery (streams.dispatch) and stream buffer — the same transport the worker has."""
    import faust

    from streams import dispatch
    from streams.app import STREAM_BUFFER

    name = "bw-bare-inline" if inline else "bw-bare"
    topic_name = f"{name}-readings"
    n = len(records)
    await topics.ensure_topics(kafka.url, 1, f"{name}-")
    await _fill(kafka.bootstrap, topic_name, records)
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
        async for events in stream.take_events(BATCH, within=0.05):
            count[0] += len(events)

    first: float | None = None
    start_count = 0
    await app.start()
    started = time.perf_counter()
    try:
        deadline = time.monotonic() + 300
        while count[0] < n and time.monotonic() < deadline:
            if first is None and count[0]:
                first = time.perf_counter()
                start_count = count[0]
            await asyncio.sleep(0.002)
        last = time.perf_counter()
    finally:
        await app.stop()
    return _span_rate(count[0], first, start_count, last, started)


def _envelope_sizes(kafka: Any, n: int, rate: int) -> tuple[list[int], str]:
    """Samples per ``readings`` record the bridge produced for N samples published at ``rate``/s
    (MQTT QoS1, 4 partitions), in a deterministic order; and what was measured."""
    from ingest.bridge import Bridge
    from ingest.publisher import Publisher

    try:
        cm = embedded.mosquitto()
        broker = cm.__enter__()
    except embedded.ServiceUnavailable:
        try:
            cm = embedded.amqtt_broker()
            broker = cm.__enter__()
        except embedded.ServiceUnavailable as exc:
            return [1], f"no MQTT broker ({exc}): one sample per record"
    try:
        settings = Settings(
            kafka=kafka.url, topic_prefix="bw-env-", partitions=4, mqtt_host=broker.host,
            mqtt_port=broker.port, mqtt_client_id="bw-env-bridge", mqtt_share_group=None,
            mqtt_topic="env/+/weifang/+", config_dir=None, bridge_stats_interval=3600,
        )  # fmt: skip
        t0 = datetime(2026, 6, 1, tzinfo=UTC)
        payloads = [_sample(i, t0) for i in range(n)]

        def publish() -> None:
            pub = Publisher(broker.host, broker.port, client_id="bw-env-pub")
            start = time.perf_counter()
            for i, (key, value) in enumerate(payloads):
                pub.publish_raw(f"env/air/weifang/{key.decode()}", value)
                delay = start + (i + 1) / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            pub.close(timeout=120)

        async def run() -> Counter[int]:
            bridge = Bridge(settings)
            ready = asyncio.Event()
            task = asyncio.create_task(bridge.run(ready=ready))
            await asyncio.wait_for(ready.wait(), 60)
            thread = threading.Thread(target=publish)
            thread.start()
            deadline = time.monotonic() + 120 + n / rate
            while bridge.counters.acked < n and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            await asyncio.to_thread(thread.join)
            bridge.stop()
            await task
            return bridge.envelope_sizes

        sizes = asyncio.run(run())
    finally:
        cm.__exit__(None, None, None)
    expanded = [k for k, c in sorted(sizes.items()) for _ in range(c)]
    random.Random(16).shuffle(expanded)
    records = sum(sizes.values())
    mean = sum(k * c for k, c in sizes.items()) / records if records else 0.0
    q = sorted(expanded)
    what = (
        f"{broker.implementation}, {n:,} samples at {rate:,}/s: {records:,} records, "
        f"{mean:.1f} samples per record (median {q[len(q) // 2]}, max {q[-1]})"
    )
    return expanded or [1], what


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


def _child(args: list[str]) -> None:
    """``python -m bench.bench_worker <what> <kafka port> <n> <sizes file> <gc gen0> <tmp>``: one
    measurement in a fresh process (a worker process starts with nothing else in it); prints
    its rate as the last line."""
    what, port, n, sizes_file, gen0, tmp = args
    logging.getLogger().setLevel(logging.WARNING)
    sizes = orjson.loads(Path(sizes_file).read_bytes())
    records = _records(int(n), datetime(2026, 6, 1, tzinfo=UTC), sizes)
    if int(gen0):
        gctune.tune(int(gen0))
    # the parent's Tansu, as this process reaches it (no process of its own to manage)
    kafka = embedded.KafkaBroker(int(port), None)  # type: ignore[arg-type]
    if what == "pure":
        rate = _pure(records)
    elif what in ("bare", "bare-inline"):
        rate = asyncio.run(_run_bare(kafka, records, Path(tmp), inline=what == "bare-inline"))
    else:
        tag = f"-gc{gen0}"
        rate = asyncio.run(_run_worker(kafka, records, int(n), Path(tmp), what, tag))
    print(f"{rate:.1f}")


def _measure(what: str, kafka: Any, n: int, sizes_file: Path, gen0: int, tmp: Path) -> float:
    """:func:`_child` in a fresh interpreter."""
    cmd = [sys.executable, "-m", "bench.bench_worker", what, str(kafka.port), str(n),
           str(sizes_file), str(gen0), str(tmp)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"bench worker {what}: {done.stderr[-2000:]}")
    return float(done.stdout.strip().splitlines()[-1])


def main(quick: bool) -> None:
    logging.getLogger().setLevel(logging.WARNING)
    n = 5_000 if quick else 40_000
    t0 = datetime(2026, 6, 1, tzinfo=UTC)
    gen0 = Settings.model_fields["gc_threshold"].default
    try:
        kcm = embedded.tansu()
        kafka = kcm.__enter__()
    except embedded.ServiceUnavailable as exc:
        print(f"worker     skipped: {exc}")
        return
    try:
        _, at_live = _envelope_sizes(kafka, 5_000 if quick else 20_000, LIVE_RATE)
        sizes, measured = _envelope_sizes(kafka, 5_000 if quick else 40_000, LOAD_RATE)
        print(f"envelopes  the bridge on a live stream: {at_live}", flush=True)
        print(f"           under the throughput goal's load: {measured} (used below)", flush=True)
        records = _records(n, t0, sizes)
        per_record = n / len(records)
        with tempfile.TemporaryDirectory(prefix="bench-worker-") as tmp:
            tdir = Path(tmp)
            sizes_file = tdir / "sizes.json"
            sizes_file.write_bytes(orjson.dumps(sizes))

            def measure(what: str, gc_gen0: int = gen0) -> float:
                return _measure(what, kafka, n, sizes_file, gc_gen0, tdir)

            pure = measure("pure")
            evaluate = measure("evaluate")
            every = measure(ALL_STAGES)
            pure_default = measure("pure", 0)
            evaluate_default = measure("evaluate", 0)
            bare = measure("bare", 0)
            bare_inline = measure("bare-inline", 0)
            print(
                f"worker     {n:,} station samples in {len(records):,} records "
                f"({per_record:.1f} per record, 1 partition); each figure from a fresh process"
            )
            print(
                f"           pure step {pure:>8,.0f} samples/s | evaluate stage {evaluate:>8,.0f} | "
                f"all stages in one process {every:>8,.0f}"
            )
            print(
                f"           ratio evaluate/pure = {evaluate / pure:.2f} (goal ≥ 0.90); evaluate "
                f"vs goal 20 000/s = {evaluate / 20_000:.2f}; all stages vs goal 10 000/s = "
                f"{every / 10_000:.2f}"
            )
            print(
                f"gc         Python's default collector: pure step {pure_default:>8,.0f} "
                f"samples/s, evaluate stage {evaluate_default:>8,.0f}; tuned (freeze, young "
                f"generation every {gen0:,}): ratio pure {pure / pure_default:.2f}, evaluate "
                f"{evaluate / evaluate_default:.2f}"
            )
            print(
                f"bare       Faust take_events {bare * per_record:>8,.0f} samples/s "
                f"({bare:,.0f} records/s) | with envwatch's inline delivery "
                f"{bare_inline * per_record:>8,.0f} samples/s ({bare_inline:,.0f} records/s)"
            )
            print(f"RESULT evaluate_samples_per_s={evaluate:.0f}")
            print(f"RESULT all_stages_samples_per_s={every:.0f}")
            print(f"RESULT pure_step_samples_per_s={pure:.0f}")
            p50, p99, got = asyncio.run(_latency(kafka, tdir, 1000, 3 if quick else 10))
            print(
                f"latency    produce → stored (sink write returned) at 1 000 samples/s: "
                f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms ({got} samples)"
            )
    finally:
        kcm.__exit__(None, None, None)
    _sink(10_000 if quick else 50_000)


if __name__ == "__main__":
    _child(sys.argv[1:])
