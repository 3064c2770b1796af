"""Signed webhooks through the outbox against a real local HTTP receiver (stdlib http.server).

The receiver below is what a real consumer should do: verify the signature over
"<timestamp>.<body>", then deduplicate on Idempotency-Key.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from alerts.notification import Notification, NotificationKind, NotificationStatus, Texts
from alerts.notify.base import NotifyError
from alerts.notify.dispatcher import Dispatcher
from alerts.notify.webhook import (
    WebhookNotifier,
    build_body,
    classify_status,
    encode_body,
    sign,
    verify_signature,
)
from alerts.outbox import Outbox, RetryPolicy, RowState

SECRET = "s3cret-for-ent-a"
T0 = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)
FAST = RetryPolicy(
    base=timedelta(milliseconds=50),
    factor=2.0,
    cap=timedelta(milliseconds=200),
    jitter=0.1,
    max_attempts=200,
    max_age=timedelta(hours=1),
)


class Receiver:
    """A webhook consumer: verifies signatures, deduplicates by Idempotency-Key."""

    def __init__(self, port: int = 0, secret: str = SECRET) -> None:
        self.secret = secret
        self.requests: Counter[str] = Counter()  # every POST per key
        self.accepted: dict[str, dict[str, object]] = {}  # first body per key
        self.bad_signatures = 0
        self.fail_next = 0  # answer 503 to this many requests
        self.status = 200  # then this
        self.delay = 0.0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.delay:
                    time.sleep(receiver.delay)
                ok = verify_signature(
                    receiver.secret,
                    self.headers["X-Envwatch-Timestamp"],
                    body,
                    self.headers["X-Envwatch-Signature"],
                    now=datetime.now(UTC),
                )
                key = self.headers["Idempotency-Key"]
                with receiver.lock:
                    if not ok:
                        receiver.bad_signatures += 1
                        code = 401
                    elif receiver.fail_next > 0:
                        receiver.fail_next -= 1
                        code = 503
                    else:
                        code = receiver.status
                        receiver.requests[key] += 1
                        if code == 200:
                            receiver.accepted.setdefault(key, json.loads(body))
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def note(
    i: int, receiver: str = "ent-a", kind: NotificationKind = NotificationKind.ALERT
) -> Notification:
    return Notification(
        id=f"{i:032x}",
        receiver=receiver,
        kind=kind,
        status=NotificationStatus.FIRING,
        state="firing",
        reason="for_elapsed",
        fingerprint=f"fp{i:04d}",
        severity="critical",
        level="orange" if kind is NotificationKind.WARNING else None,
        locality="weifang",
        source="e-wf-001:outlet-1",
        labels={"rule": "permit_exceedance", "enterprise": "e-wf-001", "locality": "weifang"},
        annotations={"unit": "mg/m3"},
        at=T0,
        starts_at=T0,
        texts=Texts(zh="【超标】潍坊市 测试", en="[Exceedance] Weifang test"),
        trigger={"reductions": {"so2": 0.2}} if kind is NotificationKind.WARNING else None,
    )


async def eventually(predicate: Callable[[], bool]) -> None:
    """Poll ``predicate`` every 20 ms (bounded by the caller's asyncio.timeout)."""
    for _ in itertools.count():
        if predicate():
            return
        await asyncio.sleep(0.02)


def run(coro: object) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


# ---------------------------------------------------------------- contract


def test_body_is_alertmanager_v4_plus_envwatch_fields() -> None:
    body = build_body(note(1, kind=NotificationKind.WARNING), "https://envwatch.example")
    assert body["version"] == "4"
    assert body["status"] == "firing"
    assert body["receiver"] == "ent-a"
    for key in ("groupKey", "groupLabels", "commonLabels", "commonAnnotations", "externalURL"):
        assert key in body
    (alert,) = body["alerts"]
    assert set(alert) == {
        "status",
        "labels",
        "annotations",
        "startsAt",
        "endsAt",
        "generatorURL",
        "fingerprint",
    }
    assert alert["startsAt"] == "2026-11-22T01:00:00Z"
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"  # firing, as Alertmanager writes it
    assert alert["generatorURL"] == "https://envwatch.example/console/alerts/fp0001"
    env = body["envwatch"]
    assert env["idempotencyKey"] == note(1).id
    assert env["kind"] == "warning"
    assert env["texts"] == {"zh": "【超标】潍坊市 测试", "en": "[Exceedance] Weifang test"}
    assert env["trigger"] == {"reductions": {"so2": 0.2}}


def test_signature_verifies_and_tampering_is_detected() -> None:
    body = encode_body(note(1))
    ts = "1795309200"  # 2026-11-22T01:00:00Z
    sig = sign(SECRET, ts, body)
    assert sig.startswith("sha256=")
    assert len(sig) == len("sha256=") + 64
    assert verify_signature(SECRET, ts, body, sig)
    assert not verify_signature(SECRET, ts, body.replace(b"weifang", b"laixi"), sig)
    assert not verify_signature(SECRET, "1795309201", body, sig)  # timestamp is signed too
    assert not verify_signature("other-secret", ts, body, sig)
    # freshness: 5 min tolerance around the receiver's clock
    assert verify_signature(SECRET, ts, body, sig, now=T0 + timedelta(minutes=5))
    assert not verify_signature(SECRET, ts, body, sig, now=T0 + timedelta(minutes=5, seconds=1))


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    body = b'{"a":1}'
    expected = hmac.new(b"k", b"123." + body, hashlib.sha256).hexdigest()
    assert sign("k", "123", body) == f"sha256={expected}"


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (200, None),
        (204, None),
        (400, False),
        (401, False),
        (404, False),
        (408, True),
        (429, True),
        (500, True),
        (503, True),
        (301, False),
    ],
)
def test_status_classification(status: int, retryable: bool | None) -> None:
    assert classify_status(status) is retryable


# ---------------------------------------------------------------- against the real receiver


def test_sent_request_carries_headers_the_receiver_verifies(receiver: Receiver) -> None:
    async def go() -> None:
        hook = WebhookNotifier(receiver.url, SECRET)
        await hook.send(note(7))
        await hook.aclose()

    run(go())
    assert receiver.bad_signatures == 0
    assert list(receiver.accepted) == [note(7).id]
    assert receiver.accepted[note(7).id]["envwatch"]["texts"]["zh"] == "【超标】潍坊市 测试"  # type: ignore[index]


def test_wrong_secret_is_refused_by_the_receiver_and_not_retried(receiver: Receiver) -> None:
    async def go() -> None:
        hook = WebhookNotifier(receiver.url, "not-the-secret")
        with pytest.raises(NotifyError) as caught:
            await hook.send(note(1))
        assert caught.value.status == 401
        assert caught.value.retryable is False
        await hook.aclose()

    run(go())
    assert receiver.bad_signatures == 1


def test_receiver_down_then_up_gets_everything_exactly_once(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    notes = [note(i) for i in range(30)]
    box = Outbox(tmp_path / "o.db", FAST)
    box.enqueue_many(notes, datetime.now(UTC))
    started: list[Receiver] = []

    async def go() -> None:
        hook = WebhookNotifier(url, SECRET, timeout=2.0)
        dispatcher = Dispatcher(
            box, {"ent-a": hook}, concurrency=8, per_receiver=8, poll_interval=0.05
        )
        stop = asyncio.Event()
        loop_task = asyncio.create_task(dispatcher.run(stop))
        await asyncio.sleep(0.6)  # receiver down: connection refused, retried with backoff
        assert dispatcher.stats.sent == 0
        assert dispatcher.stats.failed_retryable >= 30
        r = Receiver(port)
        started.append(r)
        r.fail_next = 10  # then it answers 503 ten times before it is healthy
        async with asyncio.timeout(20):
            await eventually(lambda: box.counts()[RowState.SENT] == 30)
        stop.set()
        await loop_task
        await dispatcher.aclose()

    try:
        run(go())
        r = started[0]
        assert set(r.accepted) == {n.id for n in notes}
        # 200 answered once per key: no key was delivered twice, none was lost
        assert all(count == 1 for count in r.requests.values())
        assert r.bad_signatures == 0
        assert box.counts() == {
            RowState.PENDING: 0, RowState.SENT: 30, RowState.HELD: 0, RowState.DEAD: 0
        }  # fmt: skip
    finally:
        for r in started:
            r.stop()
        box.close()


def test_4xx_is_held_after_one_attempt(receiver: Receiver, tmp_path: Path) -> None:
    # issue 13: kept (held) for envwatch notify replay, not dropped
    receiver.status = 400
    box = Outbox(tmp_path / "o.db", FAST)
    box.enqueue(note(1), datetime.now(UTC))

    async def go() -> None:
        dispatcher = Dispatcher(
            box, {"ent-a": WebhookNotifier(receiver.url, SECRET)}, poll_interval=0.05
        )
        async with asyncio.timeout(10):
            await dispatcher.run_until_idle()
        await dispatcher.aclose()

    run(go())
    assert sum(receiver.requests.values()) == 1
    (dead,) = box.dead_letters()
    assert dead.attempts == 1
    assert dead.state is RowState.HELD
    assert "HTTP 400" in (dead.last_error or "")
    box.close()


def test_429_is_retried(receiver: Receiver, tmp_path: Path) -> None:
    receiver.status = 429
    box = Outbox(tmp_path / "o.db", FAST)
    box.enqueue(note(1), datetime.now(UTC))

    async def go() -> None:
        dispatcher = Dispatcher(
            box, {"ent-a": WebhookNotifier(receiver.url, SECRET)}, poll_interval=0.05
        )
        stop = asyncio.Event()
        task = asyncio.create_task(dispatcher.run(stop))
        await asyncio.sleep(0.5)
        receiver.status = 200
        async with asyncio.timeout(10):
            await eventually(lambda: box.get(note(1).id, "ent-a").state is RowState.SENT)
        stop.set()
        await task
        await dispatcher.aclose()

    run(go())
    assert receiver.requests[note(1).id] >= 3  # 429s, then the 200
    assert list(receiver.accepted) == [note(1).id]
    box.close()


def test_timeout_is_retryable(receiver: Receiver) -> None:
    receiver.delay = 1.0

    async def go() -> None:
        hook = WebhookNotifier(receiver.url, SECRET, timeout=0.2)
        with pytest.raises(NotifyError) as caught:
            await hook.send(note(1))
        assert caught.value.retryable is True
        assert isinstance(caught.value.__cause__, Exception)
        await hook.aclose()

    run(go())


def test_a_slow_receiver_does_not_block_the_others(tmp_path: Path) -> None:
    slow, fast = Receiver(), Receiver()
    slow.delay = 0.5  # each request to the slow receiver takes 0.5 s
    box = Outbox(tmp_path / "o.db", FAST)
    now = datetime.now(UTC)
    # the slow receiver's rows are enqueued first, so they are due first
    box.enqueue_many([note(i, receiver="slow") for i in range(20)], now)
    box.enqueue_many([note(100 + i, receiver="fast") for i in range(20)], now)

    async def go() -> float:
        dispatcher = Dispatcher(
            box,
            {"slow": WebhookNotifier(slow.url, SECRET), "fast": WebhookNotifier(fast.url, SECRET)},
            concurrency=4,
            per_receiver=2,
            poll_interval=0.05,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(dispatcher.run(stop))
        begin = time.monotonic()
        async with asyncio.timeout(10):
            await eventually(lambda: len(fast.accepted) == 20)
        elapsed = time.monotonic() - begin
        stop.set()
        await task
        await dispatcher.aclose()
        return elapsed

    try:
        elapsed = asyncio.run(go())
        # The slow receiver alone needs 20 × 0.5 s / 2 parallel = 5 s; the fast one finished
        # long before that, while the slow one had at most a few done.
        assert elapsed < 2.5
        assert len(slow.accepted) < 20
    finally:
        slow.stop()
        fast.stop()
        box.close()


def test_receiver_without_channel_goes_to_dead_letter(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", FAST)
    box.enqueue(note(1, receiver="nobody"), datetime.now(UTC))

    async def go() -> None:
        dispatcher = Dispatcher(box, {}, poll_interval=0.05)
        async with asyncio.timeout(5):
            await dispatcher.run_until_idle()

    run(go())
    (dead,) = box.dead_letters()
    assert "no channel" in (dead.last_error or "")
    box.close()
