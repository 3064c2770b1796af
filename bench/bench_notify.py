"""Notifications/s through the outbox to a local webhook receiver, next to bare httpx POSTs.

All in one run against the same receiver (stdlib ThreadingHTTPServer on 127.0.0.1, answering
200 to everything), so the ratios say what the outbox, signing and bookkeeping cost on top of
HTTP itself (the receiver runs in a child process):

* bare      — httpx.AsyncClient POSTs of the same bodies, 16 in flight, no outbox, no signature
* outbox    — enqueue_many into the SQLite outbox, then the Dispatcher (16 in flight) signs,
              sends, marks sent
* enqueue   — enqueue_many alone (the producer's cost per notification)
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.queues
import tempfile
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from alerts.notification import Notification, NotificationKind, NotificationStatus, Texts
from alerts.notify.dispatcher import Dispatcher
from alerts.notify.webhook import WebhookNotifier, encode_body
from alerts.outbox import Outbox, RowState

CONCURRENCY = 16
T0 = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)


class _Handler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True  # answer at once (no 40 ms delayed-ACK stalls)
    protocol_version = "HTTP/1.1"  # keep-alive, as real receivers do

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the default 5 drops connections under 16 concurrent clients
    daemon_threads = True


def _notes(n: int, tag: str) -> list[Notification]:
    return [
        Notification(
            id=f"{tag}{i:028x}",
            receiver="ent-a",
            kind=NotificationKind.ALERT,
            status=NotificationStatus.FIRING,
            state="firing",
            fingerprint=f"fp{i}",
            labels={"rule": "permit_exceedance", "locality": "weifang", "enterprise": "e-1"},
            at=T0,
            starts_at=T0,
            texts=Texts(
                zh="【超标】潍坊市 xx 企业 1号排口 氮氧化物小时均值 132 mg/m³", en="[Exceedance]"
            ),
        )
        for i in range(n)
    ]


async def _bare(url: str, notes: list[Notification]) -> float:
    bodies = [encode_body(n) for n in notes]
    sem = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient() as client:

        async def post(body: bytes) -> None:
            async with sem:
                r = await client.post(
                    url, content=body, headers={"Content-Type": "application/json"}
                )
                r.raise_for_status()

        start = time.perf_counter()
        await asyncio.gather(*(post(b) for b in bodies))
        return time.perf_counter() - start


async def _outbox(url: str, notes: list[Notification], path: Path) -> tuple[float, float]:
    box = Outbox(path)
    start = time.perf_counter()
    box.enqueue_many(notes, datetime.now(UTC))
    enqueue = time.perf_counter() - start
    dispatcher = Dispatcher(
        box,
        {"ent-a": WebhookNotifier(url, "bench-secret")},
        concurrency=CONCURRENCY,
        per_receiver=CONCURRENCY,
        poll_interval=0.01,
    )
    async with asyncio.timeout(600):
        await dispatcher.run_until_idle()
    total = time.perf_counter() - start
    await dispatcher.aclose()
    assert box.counts()[RowState.SENT] == len(notes), box.counts()
    box.close()
    return enqueue, total


def _serve(ports: multiprocessing.queues.Queue[int]) -> None:
    server = _Server(("127.0.0.1", 0), _Handler)
    ports.put(server.server_address[1])
    server.serve_forever()


def main(quick: bool) -> None:
    n = 300 if quick else 3000
    # The receiver runs in its own process so that it does not share the GIL with the sender.
    ports: multiprocessing.queues.Queue[int] = multiprocessing.Queue()
    proc = multiprocessing.Process(target=_serve, args=(ports,), daemon=True)
    proc.start()
    url = f"http://127.0.0.1:{ports.get(timeout=30)}/hook"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(_bare(url, _notes(50, "w")))  # warm-up
            bare = asyncio.run(_bare(url, _notes(n, "b")))
            enqueue, total = asyncio.run(_outbox(url, _notes(n, "o"), Path(tmp) / "bench.db"))
    finally:
        proc.terminate()
        proc.join()
    print(f"notifications: {n}, {CONCURRENCY} in flight, one local receiver")
    print(f"  bare httpx POST          {n / bare:9.0f} /s")
    print(f"  outbox → signed webhook  {n / total:9.0f} /s   (enqueue + dispatch + mark sent)")
    print(f"  outbox enqueue only      {n / enqueue:9.0f} /s")
    print(f"  ratio outbox/bare        {bare / total:9.2f}")
