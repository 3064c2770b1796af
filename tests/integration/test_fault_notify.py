"""Fault matrix, notifications (issue 13): a lost worker, and a receiver that answers 400.

Real services: Tansu (the default 4 partitions) and ``envwatch worker`` processes configured only
through ENVWATCH_* variables, with the shipped catalogue (deploy/config) and one signed webhook per
catalogue receiver pointing at :class:`Receiver` (this process), which verifies every signature,
counts every request per ``Idempotency-Key`` and deduplicates on it, as docs/notifications.md §5
asks of a receiver.

Transitions are produced straight into ``alert-events`` (the workers run only the stages named
in ``ENVWATCH_AGENTS``), so what is measured is delivery alone. The scenario, by hand: each of the
five localities has :data:`SOURCES` stations that each fire and resolve once — 2 × 20 = 40
ambient alert transitions per locality, 200 in all. Routing (docs/notifications.md §2): an
ambient alert of a station (no enterprise label) goes to the duty officer of its locality and to
no one else, so the expected deliveries are the 200 (``duty-<locality>``, source, state) below.

* ``test_two_workers_kill_9_during_delivery``: two workers share the group; once each owns
  partitions of ``notifications``, the transitions are produced, and while the receiver is
  answering (0.2 s per request) the worker that owns the partition of three of the five duty
  receivers is killed -9. The survivor takes the partition over from the delivery ledger. Then
  the first 60 transitions are produced a second time (a re-emission after a restart, same ids).
  Measured: every expected notification accepted once; raw requests per key; every key sent
  twice was first sent before the kill, and there are at most 4 (``PER_RECEIVER``) per receiver
  of the killed worker: a send holds its slot until its ``sent`` record is in the ledger, so only
  those can have reached the receiver unrecorded — the window docs/notifications.md §4 states.
  Printed: how many were still unanswered at the kill, and how long before it the others were
  answered (the rest of the window: the ledger write).
* ``test_receiver_400_kept_alerted_and_replayed``: duty-weifang and duty-zhifu answer 400; their
  notifications are tried once each and held, the operator is alerted (the ``operator`` receiver
  gets the ``pipeline`` alert of ``receiver:duty-weifang``); ``envwatch notify replay --receiver
  duty-weifang`` after the fix delivers Weifang's exactly once (Zhifu's stay held); the operator
  alert resolves; then the worker restarts with a new secret for duty-zhifu (the receiver was
  reconfigured) and Zhifu's held notifications go out without a replay.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from alerts.model import AlertState, Reason, Severity, Transition, TransitionKind, fingerprint
from alerts.model import transition_id as make_transition_id
from alerts.notify.webhook import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify_signature,
)
from streams import topics
from streams.catalog import CatalogView, receivers_from_catalog
from streams.deliveries import read_ledger
from streams.embedded import KafkaBroker
from tests.integration.worker_support import BEIJING, CATALOGUE, REPO, WorkerProcess, worker_env

pytestmark = [pytest.mark.integration, pytest.mark.fault_matrix, pytest.mark.timeout(170)]

LOCALITIES = ("laixi", "liaocheng-etdz", "tianqiao", "weifang", "zhifu")  # deploy/config/*.yaml
SOURCES = 20  # stations per locality in this scenario
DAY = datetime(2026, 11, 10, tzinfo=BEIJING)
PARTITIONS = 4  # ENVWATCH_PARTITIONS' default (streams/settings.py)
#: these tests measure delivery alone: grouping (docs/routing.md §2) set to tell each transition
#: on its own at once (group_wait and group_interval 0), so every transition is one notification
#: with its own id, as the expectations below count them
NO_GROUPING = {
    "ENVWATCH_ALERTS_GROUPING__GROUP_WAIT_SECONDS": "0",
    "ENVWATCH_ALERTS_GROUPING__GROUP_INTERVAL_SECONDS": "0",
}


def transitions() -> list[Transition]:
    """Per locality, station i fires at DAY + i h and resolves an hour later."""
    out = []
    for loc in LOCALITIES:
        for i in range(SOURCES):
            source = f"aq-{loc}-fault-{i:02d}"
            labels = {
                "rule": "ambient-exceedance",
                "rule_kind": "ambient",
                "locality": loc,
                "source": source,
                "kind": "air",
                "factor": "pm25",
                "period": "24h",
            }
            fp = fingerprint(labels)
            for state, reason, hours in (
                (AlertState.FIRING, Reason.CONDITION_MET_NO_WAIT, i),
                (AlertState.RESOLVED, Reason.CLEAR_CONDITION_MET, i + 1),
            ):
                at = DAY + timedelta(hours=hours)
                out.append(
                    Transition(
                        id=make_transition_id(fp, state, reason, at),
                        kind=TransitionKind.ALERT,
                        fingerprint=fp,
                        labels=labels,
                        annotations={"summary": f"{source} PM2.5"},
                        state=state,
                        previous_state=None if state is AlertState.FIRING else AlertState.FIRING,
                        reason=reason,
                        at=at,
                        severity=Severity.WARNING,
                        locality=loc,
                        source=source,
                    )
                )
    return out


#: (receiver, source, state) of every expected delivery: one per transition, to its duty officer
EXPECTED = sorted((f"duty-{t.locality}", t.source, t.state.value) for t in transitions())  # 200


async def produce_transitions(bootstrap: str, topic: str, ts: list[Transition]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        for t in ts:  # keyed by locality, as the locality stage sends them
            await producer.send(topic, orjson.dumps(t.to_dict()), key=t.locality.encode())
        await producer.flush()
    finally:
        await producer.stop()


class Receiver:
    """Webhook endpoints ``/<receiver>``; verifies, counts raw requests, deduplicates by key.

    ``refuse``: receivers answered 400 (counted in ``refused``, not accepted). ``spans`` holds
    (key, handler start, handler end) in ``time.monotonic()`` of every verified request."""

    def __init__(self, secrets: dict[str, str], delay: float = 0.0) -> None:
        self.secrets = dict(secrets)
        self.delay = delay
        self.refuse: set[str] = set()
        self.raw: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.accepted: dict[str, dict[str, Any]] = {}
        self.spans: list[tuple[str, float, float]] = []
        self.bad: list[str] = []
        self.port = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver.handle(self)

            def log_message(self, *_: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        started = time.monotonic()
        body = h.rfile.read(int(h.headers.get("Content-Length", "0")))
        name = h.path.strip("/")
        key = h.headers.get(IDEMPOTENCY_HEADER, "")
        secret = self.secrets.get(name)
        ok = secret is not None and verify_signature(
            secret,
            h.headers.get(TIMESTAMP_HEADER, ""),
            body,
            h.headers.get(SIGNATURE_HEADER, ""),
            now=datetime.now(UTC),
        )
        if ok and name in self.refuse:
            with self._lock:
                self.refused[key] += 1
            self._answer(h, 400)
            return
        if not ok:
            with self._lock:
                self.bad.append(f"{name} {key}")
            self._answer(h, 401)
            return
        time.sleep(self.delay)
        with self._lock:
            self.raw[key] += 1
            self.accepted.setdefault(key, {"path": name, **orjson.loads(body)})
            self.spans.append((key, started, time.monotonic()))
        self._answer(h, 204)

    @staticmethod
    def _answer(h: BaseHTTPRequestHandler, status: int) -> None:
        try:
            h.send_response(status)
            h.end_headers()
        except OSError:  # the sender died meanwhile
            pass

    def delivered(self, prefix: str = "duty-") -> list[tuple[str, str, str]]:
        out = []
        for body in self.accepted.values():
            if body["path"].startswith(prefix):
                assert body["receiver"] == body["path"]
                out.append((body["path"], body["envwatch"]["source"], body["envwatch"]["state"]))
        return sorted(out)


def secrets_for_catalogue() -> dict[str, str]:
    names = [r.name for r in receivers_from_catalog(CatalogView(CATALOGUE).catalog)]
    return {n: f"secret-of-{n}" for n in names}


def webhooks_json(secrets: dict[str, str], url: str) -> str:
    return orjson.dumps(
        {n: {"url": f"{url}/{n}", "secret": s, "timeout_seconds": 3} for n, s in secrets.items()}
    ).decode()


def owned(log: Path, topic: str) -> set[int]:
    """The partitions of ``topic`` a worker owns now, from its own log lines."""
    mine: set[int] = set()
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return mine
    for line in text.splitlines():
        if m := re.search(rf"handed over partition\(s\) \[([\d, ]*)\] of {re.escape(topic)}", line):
            mine -= {int(x) for x in m.group(1).split(",") if x.strip()}
        elif m := re.search(rf"partition (\d+) of {re.escape(topic)} taken over", line):
            mine.add(int(m.group(1)))
    return mine


async def until(predicate: Any, within: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within} s")
        await asyncio.sleep(interval)


def partition_of(receiver: str) -> int:
    from aiokafka.partitioner import DefaultPartitioner

    parts = list(range(PARTITIONS))
    return int(DefaultPartitioner()(receiver.encode(), parts, parts))


# ---------------------------------------------------------------- kill -9 of one of two workers


def test_two_workers_kill_9_during_delivery(
    kafka_broker: KafkaBroker, topic_prefix: str, tmp_path: Path
) -> None:
    secrets = secrets_for_catalogue()
    receiver = Receiver(secrets, delay=0.2)
    receiver.start()
    notifications = topics.name(topics.NOTIFICATIONS, topic_prefix)
    alert_events = topics.name(topics.ALERT_EVENTS, topic_prefix)
    workers = []
    for name in ("a", "b"):
        env = worker_env(
            kafka_broker.url,
            topic_prefix,
            tmp_path / name,
            influx_url=None,
            partitions=PARTITIONS,
            ENVWATCH_AGENTS="notify",
            ENVWATCH_OUTBOX_PATH=str(tmp_path / name / "outbox.db"),
            ENVWATCH_ALERTS_WEBHOOKS=webhooks_json(secrets, receiver.url),
            **NO_GROUPING,
        )
        (tmp_path / name).mkdir()
        workers.append(WorkerProcess(env, tmp_path / f"worker-{name}.log"))
    ts = transitions()
    kill_at: list[float] = []
    victim_receivers: list[str] = []

    async def scenario() -> None:
        await topics.ensure_topics(kafka_broker.url, PARTITIONS, topic_prefix)
        for w in workers:
            w.start()
        # both in the group, the four partitions of notifications shared between them
        await until(
            lambda: (
                (a := owned(workers[0].log, notifications))
                and (b := owned(workers[1].log, notifications))
                and a | b == set(range(PARTITIONS))
                and not a & b
            ),
            60,
            "both workers own partitions of notifications",
            interval=0.3,
        )
        await produce_transitions(kafka_broker.bootstrap, alert_events, ts)
        await until(lambda: len(receiver.accepted) >= 50, 30, "50 deliveries")
        # the worker that owns the partition of three duty receivers (laixi, liaocheng-etdz,
        # weifang hash to the same one of 4) is killed while their sends are in flight
        busiest = Counter(partition_of(r) for r, *_ in EXPECTED).most_common(1)[0][0]
        victim = next(w for w in workers if busiest in owned(w.log, notifications))
        theirs = owned(victim.log, notifications)
        victim_receivers.extend({r for r, *_ in EXPECTED if partition_of(r) in theirs})
        victim.kill()  # SIGKILL, then waits until the process is gone
        # the instant it was gone: a request it began while the signal was on its way was
        # still sent by the victim
        kill_at.append(time.monotonic())
        # the locality stage re-emits the first 60 transitions (same ids) after its restart
        await produce_transitions(kafka_broker.bootstrap, alert_events, ts[:60])
        await until(lambda: len(receiver.accepted) >= len(EXPECTED), 60, "every delivery")
        await asyncio.sleep(3.0)  # a duplicate or a stray key would arrive now

    started = time.monotonic()
    try:
        asyncio.run(scenario())
    except AssertionError:
        for w in workers:
            print(w.tail(40))
        raise
    finally:
        for w in workers:
            w.stop()
        receiver.stop()
    kill = kill_at[0]
    first: dict[str, tuple[float, float]] = {}  # key → (start, end) of its first request
    for k, s, e in receiver.spans:
        first.setdefault(k, (s, e))
    strictly = {k for k, (s, e) in first.items() if s < kill < e}
    twice = {k: n for k, n in receiver.raw.items() if n > 1}
    answered_before = [kill - first[k][1] for k in twice if k not in strictly]
    # the window's bound: the victim's sends in flight, at most PER_RECEIVER (4, the default of
    # ENVWATCH_ALERTS_PER_RECEIVER) for each receiver of the partitions it owned
    bound = 4 * len(victim_receivers)
    print(
        f"{len(EXPECTED)} expected, {sum(receiver.raw.values())} raw requests, "
        f"{len(receiver.accepted)} keys accepted; requests unanswered at the kill: "
        f"{len(strictly)}; keys sent twice: {len(twice)} (bound {bound}: 4 × "
        f"{sorted(victim_receivers)}), of them unanswered at the kill "
        f"{len(set(twice) & strictly)}, the others answered "
        f"{', '.join(f'{d:.2f}' for d in sorted(answered_before)) or '-'} s before it; "
        f"run {time.monotonic() - started:.1f} s"
    )
    for k in sorted(twice, key=lambda k: receiver.accepted[k]["path"]):
        spans = [f"{s - kill:+.2f}…{e - kill:+.2f}" for key, s, e in receiver.spans if key == k]
        print(
            f"  sent twice: {receiver.accepted[k]['path']} {k[:8]} requests (s from the kill) {spans}"
        )
    assert receiver.bad == []
    # every expected notification, to its own receiver, exactly once after deduplication
    assert receiver.delivered() == EXPECTED
    assert len(receiver.accepted) == len(EXPECTED)
    # a second send only for a key first sent before the kill, at most the victim's slots
    assert all(first[k][0] < kill for k in twice)
    assert len(twice) <= bound
    assert max(receiver.raw.values()) <= 2
    # the re-emitted transitions were not sent again, and the ledger has every key sent
    ledger = asyncio.run(
        read_ledger(kafka_broker.bootstrap, topics.name(topics.NOTIFY_LEDGER, topic_prefix))
    )
    assert Counter(d["state"] for d in ledger.values()) == {"sent": len(EXPECTED)}


# ---------------------------------------------------------------- a receiver that answers 400


def envwatch(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "envwatch"), *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_receiver_400_kept_alerted_and_replayed(
    kafka_broker: KafkaBroker, topic_prefix: str, tmp_path: Path
) -> None:
    import os

    secrets = secrets_for_catalogue()
    receiver = Receiver(secrets)
    receiver.refuse = {"duty-weifang", "duty-zhifu"}
    receiver.start()
    alert_events = topics.name(topics.ALERT_EVENTS, topic_prefix)
    ledger_topic = topics.name(topics.NOTIFY_LEDGER, topic_prefix)
    env = worker_env(
        kafka_broker.url,
        topic_prefix,
        tmp_path,
        influx_url=None,
        partitions=PARTITIONS,
        ENVWATCH_AGENTS="locality,notify",
        ENVWATCH_OUTBOX_PATH=str(tmp_path / "outbox.db"),
        ENVWATCH_ALERTS_WEBHOOKS=webhooks_json(secrets, receiver.url),
        **NO_GROUPING,
    )
    worker = WorkerProcess(env, tmp_path / "worker.log")
    ts = transitions()
    per_locality = 2 * SOURCES
    cli_env = {**os.environ, **env}

    def held() -> Counter[str]:
        ledger = asyncio.run(read_ledger(kafka_broker.bootstrap, ledger_topic))
        return Counter(r for (_i, r), d in ledger.items() if d["state"] == "held")

    def operator(state: str) -> list[str]:
        return [
            b["envwatch"]["source"]
            for b in receiver.accepted.values()
            if b["path"] == "operator" and b["envwatch"]["state"] == state
        ]

    async def phase_refused() -> None:
        await topics.ensure_topics(kafka_broker.url, PARTITIONS, topic_prefix)
        worker.start()
        await produce_transitions(kafka_broker.bootstrap, alert_events, ts)
        await until(
            lambda: (
                len(receiver.delivered()) >= 3 * per_locality
                and sum(receiver.refused.values()) >= 2 * per_locality
            ),
            90,
            "three localities delivered, two refused",
        )
        await until(
            lambda: {"receiver:duty-weifang", "receiver:duty-zhifu"} <= set(operator("firing")),
            60,
            "the operator alerted about both receivers",
            interval=0.3,
        )

    try:
        asyncio.run(phase_refused())
        # each refused notification was tried once and kept: none dropped, none retried
        assert set(receiver.refused.values()) == {1}
        assert held() == {"duty-weifang": per_locality, "duty-zhifu": per_locality}
        assert all(
            not r.startswith(("duty-weifang", "duty-zhifu")) for r, *_ in receiver.delivered()
        )
        status = envwatch("notify", "status", env=cli_env)
        assert re.search(r"duty-weifang\s+0\s+0\s+40\s+0", status), status

        # the receiver is fixed; the operator replays Weifang's
        receiver.refuse = {"duty-zhifu"}
        out = envwatch("notify", "replay", "--receiver", "duty-weifang", env=cli_env)
        assert "40 held or dead notification(s)" in out, out

        async def phase_replayed() -> None:
            await until(
                lambda: len(receiver.delivered("duty-weifang")) >= per_locality,
                60,
                "Weifang's replayed",
            )
            await until(
                lambda: "receiver:duty-weifang" in operator("resolved"),
                60,
                "the operator alert about duty-weifang resolved",
                interval=0.3,
            )
            await asyncio.sleep(2.0)

        asyncio.run(phase_replayed())
        assert held() == {"duty-zhifu": per_locality}
        assert "receiver:duty-zhifu" not in operator("resolved")

        # Zhifu's receiver is reconfigured with a new secret; the worker restarts with it and
        # sends the held notifications again without a replay
        worker.stop()
        secrets["duty-zhifu"] = "a-new-secret-of-duty-zhifu"
        receiver.secrets["duty-zhifu"] = secrets["duty-zhifu"]
        receiver.refuse = set()
        worker.env["ENVWATCH_ALERTS_WEBHOOKS"] = webhooks_json(secrets, receiver.url)
        worker.start()

        async def phase_reconfigured() -> None:
            await until(
                lambda: len(receiver.delivered("duty-zhifu")) >= per_locality,
                60,
                "Zhifu's re-sent after the configuration change",
            )
            await asyncio.sleep(2.0)

        asyncio.run(phase_reconfigured())
    except AssertionError:
        print(worker.tail(60))
        raise
    finally:
        worker.stop()
        receiver.stop()
    assert receiver.bad == []
    # every expected notification, exactly once (raw requests accepted per key: 1)
    assert receiver.delivered() == EXPECTED
    duty = [k for k, b in receiver.accepted.items() if b["path"].startswith("duty-")]
    assert {receiver.raw[k] for k in duty} == {1}
    assert held() == {}
    assert "re-sent after a configuration change" in worker.tail(10_000)


# ---------------------------------------------------------------- a malformed secret at start-up


def test_worker_start_up_with_a_malformed_webhook_entry_shows_no_secret(
    kafka_broker: KafkaBroker, topic_prefix: str, tmp_path: Path
) -> None:
    import os

    secret, token = "S3cret-of-a-typo-ZQX", "tok-ZQX-4711"
    env = worker_env(
        kafka_broker.url,
        topic_prefix,
        tmp_path,
        influx_url=None,
        ENVWATCH_AGENTS="notify",
        ENVWATCH_OUTBOX_PATH=str(tmp_path / "outbox.db"),
        # "timeout" is not a field (timeout_seconds is): the entry is refused
        ENVWATCH_ALERTS_WEBHOOKS=orjson.dumps(
            {"duty-weifang": {"url": f"https://h/x?token={token}", "secret": secret, "timeout": 3}}
        ).decode(),
    )
    done = subprocess.run(
        [str(Path(sys.executable).parent / "envwatch"), "worker"],
        env={**os.environ, **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "webhooks.duty-weifang.timeout" in output  # the operator learns what is wrong
    assert secret not in output
    assert token not in output
