"""Fault matrix, store: the endpoint answers 401, then 413, and refuses some lines with 400.

``envwatch worker`` (separate process, shipped catalogue, the default 4 partitions) writes to a
real VictoriaMetrics through a fault-injecting HTTP proxy in this test:

1. **401** for every request (a revoked token) until the operator alert ``store``/``write`` fired;
2. then **413** for any request of more than ``MAX_LINES`` lines (a proxy's body limit), for
   ``SIZE_PHASE_S`` seconds;
3. then everything passes — except the three **truly bad lines** (the ``reading`` lines of
   aq-wf-02 at hours 30–32), answered like InfluxDB 2 answers a field-type conflict: 400
   ``partial write: … dropped=1``, the request's other lines written. They stay refused until
   the operator "fixes" the cause (the proxy's ``fixed`` switch), as a content refusal would.

Checked: no line is lost (every point of every evaluation emitted is in VictoriaMetrics at the
end), the three bad lines and only they are in ``spool/rejected/`` with the endpoint's reason,
the operator's ``store`` alerts opened and cleared (``write`` after the 401/413 phases,
``rejected`` after the replay), ``envwatch sink replay`` before the fix writes nothing and
duplicates nothing, after the fix writes exactly the three lines, and a rerun sends nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from streams import embedded, topics
from streams.embedded import KafkaBroker
from streams.lineprotocol import ns
from streams.sink import Rejected, read_rejected
from tests.integration.worker_support import (
    BEIJING,
    REPO,
    WorkerProcess,
    evaluations_by_id,
    expected_points,
    produce,
    read_all,
    sample,
    settle,
    stored_points,
    wait_until,
    worker_env,
)

pytestmark = [pytest.mark.integration, pytest.mark.fault_matrix, pytest.mark.timeout(170)]

START = datetime(2026, 9, 1, tzinfo=BEIJING)
STATIONS = ("aq-wf-01", "aq-wf-02")
HOURS = 60
BAD_SOURCE = "aq-wf-02"
BAD_HOURS = (30, 31, 32)
MAX_LINES = 20
SIZE_PHASE_S = 6.0
INSTANCE = "fault-store"
STORE = f"store@{INSTANCE}"


def hour_samples(h: int) -> list[dict[str, object]]:
    at = START + timedelta(hours=h)
    return [
        sample("air", "weifang", s, at,
               {"pm25": 30.0 + h % 17 + i, "pm10": 70.0, "so2": 8.0, "no2": 25.0, "co": 0.6,
                "o3": 50.0 + h % 9})
        for i, s in enumerate(STATIONS)
    ]  # fmt: skip


BAD_NS = {str(ns(START + timedelta(hours=h))) for h in BAD_HOURS}


def is_bad(line: str) -> bool:
    return (
        line.startswith("reading,")
        and f"source={BAD_SOURCE}" in line
        and line.rsplit(" ", 1)[-1] in BAD_NS
    )


class FaultProxy:
    """InfluxDB's write endpoint in front of VictoriaMetrics, with the faults of the scenario."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.phase = "auth"  # auth → size → pass
        self.fixed = False
        self.counts: dict[int, int] = {}
        self.forwarded_bad: list[str] = []
        self.lock = threading.Lock()
        self.client = httpx.Client(timeout=10)
        self.server: ThreadingHTTPServer | None = None

    def answer(self, path_qs: str, body: bytes) -> tuple[int, bytes]:
        lines = [ln for ln in body.decode().split("\n") if ln]
        with self.lock:
            phase, fixed = self.phase, self.fixed
        if phase == "auth":
            return 401, b'{"code":"unauthorized","message":"unauthorized access"}'
        if phase == "size" and len(lines) > MAX_LINES:
            return 413, b'{"code":"request too large","message":"points batch is too large"}'
        bad = [] if fixed else [ln for ln in lines if is_bad(ln)]
        good = [ln for ln in lines if ln not in bad]
        if good:
            r = self.client.post(self.upstream + path_qs, content=("\n".join(good) + "\n").encode())
            if r.status_code >= 300:
                return r.status_code, r.content
        with self.lock:
            self.forwarded_bad += [ln for ln in good if is_bad(ln)]
        if bad:
            text = (
                f"partial write: unable to parse '{bad[0]}': field type conflict: input field "
                f'"pm25" on measurement "reading" is type float, already exists as type string '
                f"dropped={len(bad)}"
            )
            return 400, orjson.dumps({"code": "invalid", "message": text})
        return 204, b""

    @contextlib.contextmanager
    def running(self) -> Iterator[str]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length", "0"))
                status, data = proxy.answer(self.path, self.rfile.read(n))
                with proxy.lock:
                    proxy.counts[status] = proxy.counts.get(status, 0) + 1
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{self.server.server_address[1]}"
        finally:
            self.server.shutdown()
            self.server.server_close()
            self.client.close()


async def pipeline_transitions(bootstrap: str, topic: str) -> list[tuple[str, str, str]]:
    """(condition, state, source) of the operator's pipeline alerts on ``alert-events``, in order."""
    out = []
    for _p, _o, _k, value, _ts in sorted(await read_all(bootstrap, topic)):
        t = orjson.loads(value)
        labels = t.get("labels", {})
        if labels.get("rule") == "pipeline":
            out.append((labels.get("factor", ""), t["state"], labels.get("source", "")))
    return out


def replay_cli(spool: Path, url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ENVWATCH_INFLUX_URL": url}
    return subprocess.run(
        [str(Path(sys.executable).parent / "envwatch"), "sink", "replay", "--spool", str(spool)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def rejected_lines(spool: Path) -> list[tuple[str, int | None, str]]:
    store = Rejected(spool / "rejected")
    return [(r.line, r.status, r.reason) for p in store.files() for r in read_rejected(p)]


def test_store_401_413_400_loses_nothing_alerts_and_replays(
    kafka_broker: KafkaBroker, topic_prefix: str, tmp_path: Path
) -> None:
    prefix = topic_prefix
    spool = tmp_path / "spool"
    alert_events = topics.name(topics.ALERT_EVENTS, prefix)
    readings = topics.name(topics.READINGS, prefix)

    async def scenario() -> None:
        with embedded.victoria_metrics() as vm:
            proxy = FaultProxy(vm.url)
            with proxy.running() as url:
                await topics.ensure_topics(kafka_broker.url, 4, prefix)
                env = worker_env(
                    kafka_broker.url,
                    prefix,
                    tmp_path,
                    influx_url=url,
                    partitions=4,
                    ENVWATCH_SINK_HEALTH_INTERVAL="1",
                    ENVWATCH_SINK_INSTANCE=INSTANCE,
                )
                worker = WorkerProcess(env, tmp_path / "worker.log")
                worker.start()
                try:
                    await run(vm, proxy, url, worker)
                finally:
                    worker.stop()

    async def transitions() -> list[tuple[str, str, str]]:
        return await pipeline_transitions(kafka_broker.bootstrap, alert_events)

    async def wait_for(condition: str, state: str, within: float) -> None:
        deadline = time.monotonic() + within
        while (condition, state, STORE) not in await transitions():
            if time.monotonic() > deadline:
                raise AssertionError(f"no {state} {condition} alert within {within}s")
            await asyncio.sleep(0.5)

    async def run(vm: embedded.Victoria, proxy: FaultProxy, url: str, worker: Any) -> None:
        producing = asyncio.create_task(produce_hours())
        # 1. 401: the sink retries, spools, and the operator's write alert fires
        await wait_for("write", "firing", 60)
        assert worker.alive(), worker.tail()
        assert rejected_lines(spool) == []  # a 401 never rejects anything
        # 2. 413 for requests above MAX_LINES: the drainer splits the spooled batches
        with proxy.lock:
            proxy.phase = "size"
        await asyncio.sleep(SIZE_PHASE_S)
        # 3. everything passes but the three bad lines
        with proxy.lock:
            proxy.phase = "pass"
        await producing
        await wait_for("write", "resolved", 40)
        assert proxy.counts.get(413, 0) > 0, "the 413 phase saw no large request"

        records = await settle(kafka_broker.bootstrap, topics.name(topics.EVALUATIONS, prefix))
        expected = expected_points(evaluations_by_id(records))
        bad_points = {
            k for k in expected
            if k[0].startswith("reading_") and ("source", BAD_SOURCE) in k[1]
            and str(k[2] * 1_000_000) in BAD_NS
        }  # fmt: skip
        assert len(bad_points) == len(BAD_HOURS) * 6  # pm25 pm10 so2 no2 co o3 per bad line
        # every valid point is stored; the bad lines' points are not (yet)
        await wait_until(lambda: expected - bad_points <= set(stored_points(vm)), within=40)
        stored = await asyncio.to_thread(stored_points, vm)
        assert not bad_points & set(stored)

        # the three bad lines, each once, each with the endpoint's reason
        kept = rejected_lines(spool)
        assert sorted(line for line, _s, _r in kept) == sorted(f for f in _bad_lines_from(records))
        assert all(s == 400 and "field type conflict" in r for _l, s, r in kept)
        await wait_for("rejected", "firing", 20)

        # replay before the fix: still refused, nothing duplicated in rejected/
        before = replay_cli(spool, url)
        assert before.returncode == 1, before.stdout + before.stderr
        assert "total: 0 written, 3 still refused, 0 not tried" in before.stdout
        assert "field type conflict" in before.stdout
        assert sorted(rejected_lines(spool)) == sorted(kept)

        # the operator fixed the cause: replay writes exactly the three lines
        with proxy.lock:
            proxy.fixed = True
        after = replay_cli(spool, url)
        assert after.returncode == 0, after.stdout + after.stderr
        assert "total: 3 written, 0 still refused, 0 not tried" in after.stdout
        assert rejected_lines(spool) == []
        assert len(proxy.forwarded_bad) == 3
        again = replay_cli(spool, url)
        assert again.returncode == 0
        assert "nothing to replay" in again.stdout
        assert len(proxy.forwarded_bad) == 3  # nothing sent twice

        await wait_for("rejected", "resolved", 20)
        records = await settle(kafka_broker.bootstrap, topics.name(topics.EVALUATIONS, prefix))
        expected = expected_points(evaluations_by_id(records))
        await wait_until(lambda: expected <= set(stored_points(vm)), within=40)
        assert worker.alive(), worker.tail()
        # the operator's alerts: write fired then resolved, rejected fired then resolved
        # (the two conditions are separate alerts: their transitions may interleave)
        # (receivers' alerts of the same mechanism may be there too: only the store's count here)
        seen = [t for t in await transitions() if t[2] == STORE]
        assert [s for c, s, _src in seen if c == "write"] == ["firing", "resolved"]
        assert [s for c, s, _src in seen if c == "rejected"] == ["firing", "resolved"]
        # the spool is empty again
        assert not [p for p in spool.glob("*.lp*") if p.stat().st_size]

    async def produce_hours() -> None:
        for h in range(1, HOURS + 1):
            await produce(kafka_broker.bootstrap, readings, hour_samples(h))
            await asyncio.sleep(0.2)

    asyncio.run(scenario())


def _bad_lines_from(records: list[tuple[int, int, bytes, bytes, int]]) -> list[str]:
    """The bad lines as the store writes them, from the evaluations emitted (one per bad hour)."""
    from streams.agents.store import to_line

    out = []
    for points in evaluations_by_id(records).values():
        line = to_line(points[-1])
        if is_bad(line):
            out.append(line)
    return out
