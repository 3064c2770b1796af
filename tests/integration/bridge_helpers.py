"""Helpers shared by the bridge's integration tests (real mosquitto + Tansu)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import orjson
from aiokafka import AIOKafkaConsumer

from streams import embedded

ENVWATCH = str(Path(sys.executable).parent / "envwatch")
BEIJING = ZoneInfo("Asia/Shanghai")
BASE = datetime(2026, 1, 15, 8, 0, tzinfo=BEIJING)  # seq n is the minute sample BASE + n min


def locality_of(prefix: str) -> str:
    """A locality id unique to the test, so its bridge subscribes only to its own topics."""
    return "".join(ch if ch.isalnum() else "-" for ch in prefix.lower()).strip("-")[:60]


def sample_payload(locality: str, source: str, seq: int) -> bytes:
    """A valid air minute sample whose pm25 value *is* its per-source sequence number."""
    return orjson.dumps(
        {
            "schema": 1,
            "kind": "air",
            "locality": locality,
            "source": source,
            "time": (BASE + timedelta(minutes=seq)).isoformat(),
            "interval": "min",
            "values": {"pm25": {"value": float(seq), "flag": "N"}},
        }
    )


def stream(sources: int, per_source: int) -> list[tuple[str, int]]:
    """(source, seq) interleaved round robin: s0#0, s1#0, …, s0#1, s1#1 …"""
    return [(f"src-{s:02d}", i) for i in range(per_source) for s in range(sources)]


@dataclass
class KafkaContents:
    """What a topic holds, per source, in partition-offset order."""

    by_source: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    records: list[dict[str, object]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.by_source.values())

    def unique(self) -> set[tuple[str, int]]:
        return {(s, seq) for s, seqs in self.by_source.items() for seq in seqs}


async def read_topic(
    bootstrap: str,
    topic: str,
    *,
    until: Callable[[KafkaContents], bool],
    within: float = 60.0,
    seq_of: Callable[[dict[str, object]], int] | None = None,
) -> KafkaContents:
    """Read ``topic`` from the beginning until ``until(contents)`` holds, then to its end; an
    envelope of ``readings`` counts as its samples, as the worker reads it."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    out = KafkaContents()

    def take(batch: dict[object, list[object]]) -> None:
        for msgs in batch.values():
            for m in msgs:
                data = orjson.loads(m.value)  # type: ignore[attr-defined]
                # a readings envelope (streams.records.is_envelope) carries several samples in order
                for d in data if isinstance(data, list) else [data]:
                    out.records.append(d)
                    if seq_of is not None:
                        out.by_source[str(d["source"])].append(seq_of(d))

    try:
        deadline = time.monotonic() + within
        while not until(out) and time.monotonic() < deadline:
            take(await consumer.getmany(timeout_ms=300, max_records=10_000))
        # drain whatever else is already there (late duplicates)
        while batch := await consumer.getmany(timeout_ms=500, max_records=10_000):
            take(batch)
    finally:
        await consumer.stop()
    return out


def pm25_seq(d: dict[str, object]) -> int:
    values = d["values"]
    assert isinstance(values, dict)
    return int(values["pm25"]["value"])


def first_occurrences_in_order(seqs: list[int]) -> bool:
    seen: set[int] = set()
    last = -1
    for s in seqs:
        if s in seen:
            continue
        if s < last:
            return False
        seen.add(s)
        last = s
    return True


class BridgeProcess:
    """``envwatch bridge`` as a child process, configured through ENVWATCH_* variables."""

    def __init__(self, env: dict[str, str], workdir: Path, name: str = "bridge") -> None:
        self.metrics_port = embedded.free_port()
        self.proc = embedded.Process(
            name,
            [ENVWATCH, "bridge", "--log-level", "info"],
            workdir,
            self.metrics_port,
            env={**env, "ENVWATCH_BRIDGE_METRICS_PORT": str(self.metrics_port)},
        )

    def start(self, timeout: float = 60.0) -> None:
        self.proc.start(timeout=timeout)  # returns once the metrics port answers
        deadline = time.monotonic() + timeout
        while self.metric("envwatch_bridge_mqtt_connected") != 1:
            if time.monotonic() > deadline:
                raise AssertionError(f"bridge did not connect:\n{self.proc.log_tail()}")
            time.sleep(0.1)

    def metric(self, name: str) -> float | None:
        try:
            text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2).text
        except httpx.HTTPError:
            return None
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None

    def kill9(self) -> None:
        assert self.proc.popen is not None
        os.killpg(self.proc.popen.pid, signal.SIGKILL)
        self.proc.popen.wait(10)

    def stop(self) -> None:
        self.proc.stop()


def bridge_env(
    mqtt: embedded.MqttBroker, kafka: embedded.KafkaBroker, prefix: str, **extra: str
) -> dict[str, str]:
    """ENVWATCH_* for a bridge that reads only this test's topics ``env/+/<locality>/+``."""
    return {
        "ENVWATCH_KAFKA": kafka.url,
        "ENVWATCH_MQTT_HOST": mqtt.host,
        "ENVWATCH_MQTT_PORT": str(mqtt.port),
        "ENVWATCH_TOPIC_PREFIX": prefix,
        "ENVWATCH_PARTITIONS": "4",
        "ENVWATCH_MQTT_CLIENT_ID": f"{prefix}bridge",
        "ENVWATCH_MQTT_SHARE_GROUP": f"{prefix}group",
        "ENVWATCH_MQTT_TOPIC": f"env/+/{locality_of(prefix)}/+",
        "ENVWATCH_MQTT_SESSION_EXPIRY": "600",
        "ENVWATCH_BRIDGE_STATS_INTERVAL": "1",
        **extra,
    }


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]
