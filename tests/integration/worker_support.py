"""Shared helpers of the worker acceptance tests (restart, outage, late data, simulated day).

* samples are built by hand (``air``/``water``/``emission`` helpers) and produced straight into the
  ``readings`` topic with aiokafka, keyed by source id like the bridge does, with the Kafka
  timestamp set to the sample's label + 5 min (the worker judges "too old/too new" against it);
* ``WorkerProcess`` runs ``envwatch worker`` as a separate process with ENVWATCH_* variables;
* ``stored_points`` reads VictoriaMetrics back as (series, labels, ms) keys, ``expected_points``
  maps evaluation records onto the same keys (VictoriaMetrics stores ``<measurement>_<field>``
  for numeric and boolean fields; strings are not stored).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.embedded import Victoria
from streams.wire import point_id

BEIJING = ZoneInfo("Asia/Shanghai")
REPO = Path(__file__).resolve().parents[2]
CATALOGUE = REPO / "deploy" / "config"

PointKey = tuple[str, frozenset[tuple[str, str]], int]


def sample(
    kind: str,
    locality: str,
    source: str,
    at: datetime,
    values: Mapping[str, float | tuple[float, str]],
    interval: str = "hour",
) -> dict[str, Any]:
    vals = {}
    for f, v in values.items():
        value, flag = v if isinstance(v, tuple) else (v, "N")
        vals[f] = {"value": value, "flag": flag}
    return {
        "schema": 1,
        "kind": kind,
        "locality": locality,
        "source": source,
        "time": at.isoformat(),
        "interval": interval,
        "values": vals,
    }


async def produce(
    bootstrap: str,
    topic: str,
    samples: Iterable[Mapping[str, Any]],
    received: Sequence[datetime] | None = None,
) -> int:
    """Produce samples keyed by source; Kafka timestamp = ``received[i]`` or label + 5 min."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    n = 0
    try:
        for i, s in enumerate(samples):
            at = received[i] if received is not None else None
            received_at = at or datetime.fromisoformat(s["time"]) + timedelta(minutes=5)
            await producer.send(
                topic,
                orjson.dumps(s),
                key=s["source"].encode(),
                timestamp_ms=int(received_at.timestamp() * 1000),
            )
            n += 1
        await producer.flush()
    finally:
        await producer.stop()
    return n


Record = tuple[int, int, bytes, bytes, int]


async def read_all(bootstrap: str, topic: str) -> list[Record]:
    """Every record of ``topic`` (partition, offset, key, value, timestamp ms), up to the end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    out: list[Record] = []
    try:
        parts = consumer.partitions_for_topic(topic)
        if not parts:
            await consumer.force_metadata_update()
            parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        # Tansu's ListOffsets(latest) can be below the true end (it was 48 for 90 records
        # produced in batches); the fetch response's high watermark is right, so read until
        # the position reaches it and a poll brings nothing new.
        ends = await consumer.end_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        position = dict.fromkeys(tps, 0)
        deadline = time.monotonic() + 60
        quiet = 0
        while quiet < 2 and time.monotonic() < deadline:
            batch = await consumer.getmany(*tps, timeout_ms=300)
            for tp, msgs in batch.items():
                for m in msgs:
                    out.append((tp.partition, m.offset, m.key or b"", m.value, m.timestamp))
                    position[tp] = m.offset + 1
            behind = any(position[tp] < max(ends[tp], consumer.highwater(tp) or 0) for tp in tps)
            quiet = 0 if batch or behind else quiet + 1
    finally:
        await consumer.stop()
    return out


def evaluations_by_id(records: Sequence[Record]) -> dict[str, list[dict[str, Any]]]:
    """Evaluation records grouped by id, each group in emission order (one key → one partition)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for _p, _o, _k, v, _ts in sorted(records, key=lambda r: (r[0], r[1])):
        data = orjson.loads(v)  # a JSON array of points per record (one sample's points)
        for d in data if isinstance(data, list) else [data]:
            groups.setdefault(point_id(d), []).append(d)
    return groups


def point_keys(evaluation: Mapping[str, Any]) -> set[PointKey]:
    """Where VictoriaMetrics stores an evaluation: one series per numeric/boolean field."""
    labels = frozenset((k, str(v)) for k, v in evaluation["tags"].items() if v != "")
    ms = evaluation["ns"] // 1_000_000
    return {
        (f"{evaluation['measurement']}_{f}", labels, ms)
        for f, v in evaluation["fields"].items()
        if isinstance(v, int | float) and v is not None
    }


def expected_points(groups: Mapping[str, list[dict[str, Any]]]) -> set[PointKey]:
    out: set[PointKey] = set()
    for records in groups.values():
        out |= point_keys(records[-1])
    return out


def stored_points(vm: Victoria, selector: str = '{__name__!=""}') -> dict[PointKey, float]:
    """Every stored sample as (series, labels, ms) → value (the last one for a duplicate)."""
    out: dict[PointKey, float] = {}
    for s in vm.export(selector):
        metric = dict(s["metric"])  # type: ignore[call-overload]
        name = metric.pop("__name__")
        labels = frozenset((k, str(v)) for k, v in metric.items() if k != "db")
        for ts, value in zip(s["timestamps"], s["values"], strict=True):  # type: ignore[call-overload]
            out[(name, labels, int(ts))] = float(value)
    return out


def value_of(
    stored: Mapping[PointKey, float], name: str, at: datetime, **labels: str
) -> float | None:
    ms = int(at.timestamp() * 1000)
    want = set(labels.items())
    for (n, ls, t), v in stored.items():
        if n == name and t == ms and want <= set(ls):
            return v
    return None


async def wait_until(predicate: Callable[[], Any], within: float, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + within
    while True:
        result = await asyncio.to_thread(predicate)
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(interval)


async def until(fn: Callable[[], Awaitable[Any]], within: float = 60.0) -> Any:
    """Await ``fn()`` every 0.5 s until it returns something truthy (AssertionError after
    ``within`` seconds)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        got = await fn()
        if got:
            return got
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.5)


def worker_env(
    kafka_url: str,
    prefix: str,
    tmp: Path,
    *,
    influx_url: str | None,
    partitions: int = 1,
    **extra: str,
) -> dict[str, str]:
    env = {
        "ENVWATCH_KAFKA": kafka_url,
        "ENVWATCH_APP_ID": f"{prefix}app",
        "ENVWATCH_TOPIC_PREFIX": prefix,
        "ENVWATCH_PARTITIONS": str(partitions),
        "ENVWATCH_SESSION_TIMEOUT": "6",
        "ENVWATCH_REBALANCE_TIMEOUT": "6",
        "ENVWATCH_HEARTBEAT_INTERVAL": "1",
        "ENVWATCH_DATA_DIR": str(tmp / "faust"),
        "ENVWATCH_SPOOL_DIR": str(tmp / "spool"),
        "ENVWATCH_SINK_FLUSH_INTERVAL": "0.2",
        "ENVWATCH_CONFIG_DIR": str(CATALOGUE),
    }
    if influx_url:
        env["ENVWATCH_INFLUX_URL"] = influx_url
    env.update(extra)
    return env


class WorkerProcess:
    """``envwatch worker`` in its own process group; ``kill()`` is a SIGKILL (kill -9)."""

    def __init__(self, env: Mapping[str, str], log: Path) -> None:
        self.env = {**os.environ, **env}
        self.log = log
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                [str(Path(sys.executable).parent / "envwatch"), "worker", "--log-level", "info"],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=REPO,
                start_new_session=True,
            )

    def kill(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(20)
        except subprocess.TimeoutExpired:
            self.kill()

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


async def settle(
    bootstrap: str, topic: str, *, quiet: float = 4.0, within: float = 90.0
) -> list[Record]:
    """Read ``topic`` until its record count has not changed for ``quiet`` seconds."""
    deadline = time.monotonic() + within
    last: list[Record] = []
    stable_since = time.monotonic()
    while time.monotonic() < deadline:
        now = await read_all(bootstrap, topic)
        if len(now) != len(last) or not now:
            last, stable_since = now, time.monotonic()
        elif time.monotonic() - stable_since >= quiet:
            return now
        await asyncio.sleep(0.5)
    raise AssertionError(f"{topic} still growing after {within}s")
