"""Notifications exactly once per key through a kill -9 and a 5-minute receiver outage (issues 7, 13).

Real services: Tansu (Kafka protocol) and ``envwatch worker`` as a separate process, configured
only through ENVWATCH_* variables, with the shipped catalogue (deploy/config) and one signed
webhook per catalogue receiver (``ENVWATCH_ALERTS_WEBHOOKS``) pointing at :class:`Receiver`, an
HTTP server in this process that verifies every signature with the receiver's own secret,
deduplicates on ``Idempotency-Key`` and counts raw requests per key.

The scenario: Weifang's two gas outlets report one Beijing day of hourly samples straight into
``readings`` (aiokafka, keyed by source like the bridge). Hand-derived notifications
(:data:`EXPECTED`, the arithmetic is next to it): 24 alert transitions, each to ``duty-weifang``
and, except the 7 escalations, to the outlet's own enterprise — 41 notifications (issue 14: an
escalation goes to the rule's escalation chain — the duty officer for these rules, which name
none — never to the enterprise; docs/routing.md). Grouping (docs/routing.md) changes nothing
else here: a locality's transitions are at least an hour apart in event time, or in different
groups, or escalations (not grouped), so every group flush tells one transition and sends that
transition's own notification, id unchanged.

* ``test_kill_9_mid_delivery``: the worker is SIGKILLed by the receiver itself while it handles
  the k-th webhook request (k drawn from a seeded RNG, so the crash hits a send in flight), the
  rest of the day is produced while the worker is down, then the worker restarts on the same
  state topics and delivery ledger (issue 13: the outbox is the Kafka ledger, no local file).
* ``test_receiver_down_for_5_minutes``: the receiver is stopped (its port refuses connections)
  before anything is sent; the worker's dispatcher fails, is killed -9, and this process takes
  its partition over the way a worker does (it reads the partition of the delivery ledger into
  an ``alerts.outbox.MemoryOutbox`` and writes every change back), with a dispatcher clock
  running 15× faster than the wall clock, so 5 minutes of the dispatcher's time pass in 20 s;
  then the receiver starts again on the same port.

Afterwards: every expected notification was delivered, each key at most once after
deduplication (raw retries printed), every signature valid, every key ``sent`` in the delivery
ledger, and enterprise e-wf-01 saw nothing of e-wf-02 (and vice versa).
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr

from alerts.model import Reason, Transition
from alerts.notification import NotificationKind, notifications_for
from alerts.notify.dispatcher import Dispatcher, channels_from_settings
from alerts.notify.webhook import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify_signature,
)
from alerts.outbox import MemoryOutbox, OutboxItem, RowState, ledger_key
from alerts.routing import tree_from_receivers
from alerts.settings import AlertsSettings, RetrySettings, WebhookSettings
from alerts.templates import render
from streams import topics
from streams.catalog import CatalogView, receivers_from_catalog
from streams.deliveries import read_ledger, read_partition
from streams.embedded import KafkaBroker
from tests.integration.worker_support import (
    BEIJING,
    CATALOGUE,
    WorkerProcess,
    produce,
    sample,
    settle,
    wait_until,
    worker_env,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(170)]

DAY = datetime(2026, 11, 10, tzinfo=BEIJING)  # hours labelled DAY 01:00 … DAY+1 00:00
WF1, WF2 = "e-wf-01-g1", "e-wf-02-g1"  # deploy/config/weifang.yaml, enterprises e-wf-01/e-wf-02

# NOx (mg/m3) at the hours that differ from the normal 80 + h (WF1) / 50 + h (WF2)
NOX_WF1 = {3: 300.0, 4: 260.0, 10: 200.0, 17: 400.0, 18: 180.0}
NOX_WF2 = {6: 150.0, 12: 120.0, 20: 250.0}
SO2_WF2 = {8: 70.0}  # otherwise 20 + h % 5
WF2_SILENT = range(14, 18)  # WF2 sends nothing labelled 14:00 … 17:00


def day_samples(hours: range) -> list[dict[str, Any]]:
    """Both outlets' hourly samples; O2 at each outlet's reference so corrected = measured.

    Normal values vary every hour (the constant-value rule needs 12 equal samples) and stay
    below every permit limit: WF1 so2 ≤ 26 < 50, pm ≤ 7 < 20; WF2 so2 ≤ 24 < 50, pm ≤ 7 < 10.
    """
    out = []
    for h in hours:
        at = DAY + timedelta(hours=h)
        out.append(
            sample("emission", "weifang", WF1, at, {
                "nox": NOX_WF1.get(h, 80.0 + h), "so2": 20.0 + h % 7, "pm": 5.0 + h % 3,
                "o2": 3.5, "flow": 9000.0 + h,
            })
        )  # fmt: skip
        if h in WF2_SILENT:
            continue
        out.append(
            sample("emission", "weifang", WF2, at, {
                "nox": NOX_WF2.get(h, 50.0 + h), "so2": SO2_WF2.get(h, 20.0 + h % 5),
                "pm": 4.0 + h % 4, "o2": 9.0, "flow": 5000.0 + h,
            })
        )  # fmt: skip
    return out


# (source, rule, factor, state, reason, hour label) of every transition people are told of.
# WF1: gas boiler, reference O2 3.5 % (defaults.yaml, GB 13271-2014 表6), NOx permit 150
#   (weifang.yaml: GB 13271-2014 特别排放限值 燃气锅炉); O2 3.5 → corrected = measured.
#   critical at ≥ 1.5 × 150 = 225 (permit-exceedance critical_ratio, alerts/rules.py [MEM]);
#   the permit rule clears at ≤ the limit (clear_margin 0).
#   A sample's reading point moves the locality's watermark first (escalation is checked there),
#   then its emission_hour point (within the limit: clears) or its exceedance (breach).
#   h3 300 > 150, ≥ 225: fires at once (for = 0), critical; h4 = h3 + 60 min unacknowledged:
#   escalated (escalate_after 60 min [MEM]; 260 still a breach); h5 85 ≤ 150: resolved.
#   h10 200 > 150 (< 225): fires again; h11 escalated (60 min), then 91 ≤ 150: resolved.
#   h17 400: fires (critical); h18 escalated, then 180 > 150 but < 225: severity lowered;
#   h19 99: resolved.
# WF2: reference O2 9 % (weifang.yaml), NOx permit 100 (critical ≥ 150), SO2 permit 50
#   (critical ≥ 75). h6 NOx 150: fires critical; h7 escalated, then 57 ≤ 100: resolved.
#   h8 SO2 70 > 50: fires; h9 escalated, then 24: resolved. h12 NOx 120: fires; h13
#   escalated, then 63: resolved. Last sample h13, then silent: an hourly outlet is offline after
#   max(offline rule's 120 min [MEM], 3 missed intervals × 60 min) = 3 h → offline firing stamped
#   13:00 + 3 h = h16 (when WF1's h17 sample moves the watermark past it); the h18 sample →
#   offline resolved (data_resumed). h20 NOx 250: fires critical; h21 escalated, then 71: resolved.
EXPECTED_TRANSITIONS = [
    (WF1, "permit-exceedance", "nox", "firing", "condition_met_no_wait", 3),
    (WF1, "permit-exceedance", "nox", "firing", "escalated", 4),
    (WF1, "permit-exceedance", "nox", "resolved", "clear_condition_met", 5),
    (WF2, "permit-exceedance", "nox", "firing", "condition_met_no_wait", 6),
    (WF2, "permit-exceedance", "nox", "firing", "escalated", 7),
    (WF2, "permit-exceedance", "nox", "resolved", "clear_condition_met", 7),
    (WF2, "permit-exceedance", "so2", "firing", "condition_met_no_wait", 8),
    (WF2, "permit-exceedance", "so2", "firing", "escalated", 9),
    (WF2, "permit-exceedance", "so2", "resolved", "clear_condition_met", 9),
    (WF1, "permit-exceedance", "nox", "firing", "condition_met_no_wait", 10),
    (WF1, "permit-exceedance", "nox", "firing", "escalated", 11),
    (WF1, "permit-exceedance", "nox", "resolved", "clear_condition_met", 11),
    (WF2, "permit-exceedance", "nox", "firing", "condition_met_no_wait", 12),
    (WF2, "permit-exceedance", "nox", "firing", "escalated", 13),
    (WF2, "permit-exceedance", "nox", "resolved", "clear_condition_met", 13),
    (WF2, "offline", "*", "firing", "condition_met_no_wait", 16),
    (WF1, "permit-exceedance", "nox", "firing", "condition_met_no_wait", 17),
    (WF1, "permit-exceedance", "nox", "firing", "escalated", 18),
    (WF1, "permit-exceedance", "nox", "firing", "severity_lowered", 18),
    (WF2, "offline", "*", "resolved", "data_resumed", 18),
    (WF1, "permit-exceedance", "nox", "resolved", "clear_condition_met", 19),
    (WF2, "permit-exceedance", "nox", "firing", "condition_met_no_wait", 20),
    (WF2, "permit-exceedance", "nox", "firing", "escalated", 21),
    (WF2, "permit-exceedance", "nox", "resolved", "clear_condition_met", 21),
]
# routing (docs/notifications.md §2): the duty officer of Weifang gets everything of Weifang, an
# enterprise the alerts labelled with its own id — offline alerts included (the offline
# observation carries the outlet's routing labels) — except escalations, which go to the
# escalation chain only (docs/routing.md; default chain: the duty officer). 17 transitions × 2
# receivers + 7 escalations × 1 = 41.
ENTERPRISE = {WF1: "enterprise-e-wf-01", WF2: "enterprise-e-wf-02"}


def receivers_of(t: tuple[str, str, str, str, str, int]) -> tuple[str, ...]:
    return ("duty-weifang",) if t[4] == "escalated" else ("duty-weifang", ENTERPRISE[t[0]])


EXPECTED = sorted((receiver, *t) for t in EXPECTED_TRANSITIONS for receiver in receivers_of(t))
N = len(EXPECTED)  # 41
#: notifications caused by hours 1 … 12 (the first part produced before the kill): 5 escalations
#: to the duty officer, 8 other transitions to two receivers — 21
FIRST_PART = sum(len(receivers_of(t)) for t in EXPECTED_TRANSITIONS if t[5] <= 12)


# ---------------------------------------------------------------- the receiving side


class Receiver:
    """Webhook endpoints ``/<receiver name>``, each with its own secret; verifies, deduplicates.

    ``raw`` counts every request per idempotency key, ``accepted`` holds the first body of each
    key (what the receiving application would store), ``bad`` the requests whose signature did
    not verify (answered 401), ``aborted`` the requests cut off before their body was complete
    (a killed sender; nothing to verify or store). ``on_request(n, key)`` is called with the running request count after
    the key is stored and before the answer (the kill test crashes the sender there).
    """

    def __init__(self, secrets: dict[str, str], port: int = 0, delay: float = 0.0) -> None:
        self.secrets = secrets
        self.delay = delay
        self.port = port
        self.raw: Counter[str] = Counter()
        self.accepted: dict[str, dict[str, Any]] = {}
        self.bad: list[str] = []
        self.aborted = 0
        self.requests = 0
        self.on_request: Callable[[int, str], None] | None = None
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

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

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """A real outage: the listening socket is closed, connections are refused."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length", "0"))
        body = h.rfile.read(length)
        name = h.path.strip("/")
        if len(body) < length:  # the sender died in the middle of the request
            with self._lock:
                self.aborted += 1
            return
        key = h.headers.get(IDEMPOTENCY_HEADER, "")
        secret = self.secrets.get(name)
        ok = secret is not None and verify_signature(
            secret,
            h.headers.get(TIMESTAMP_HEADER, ""),
            body,
            h.headers.get(SIGNATURE_HEADER, ""),
            now=datetime.now(UTC),
        )
        with self._lock:
            self.requests += 1
            n = self.requests
            if not ok:
                self.bad.append(f"{name} {key}")
            else:
                self.raw[key] += 1
                if key not in self.accepted:
                    self.accepted[key] = {"path": name, **orjson.loads(body)}
        if ok and self.on_request is not None:
            self.on_request(n, key)
        if self.delay:
            time.sleep(self.delay)
        try:
            h.send_response(204 if ok else 401)
            h.end_headers()
        except OSError:  # the sender died meanwhile
            pass

    def delivered(self) -> list[tuple[str, str, str, str, str, str, int]]:
        """(receiver, source, rule, factor, state, reason, hour label) of every accepted key."""
        out = []
        for body in self.accepted.values():
            ew = body["envwatch"]
            labels = body["alerts"][0]["labels"]
            at = datetime.fromisoformat(ew["at"].replace("Z", "+00:00"))
            hour = round((at - DAY).total_seconds() / 3600)
            out.append(
                (body["path"], ew["source"], labels["rule"], labels.get("factor", ""),
                 ew["state"], ew["reason"], hour)
            )  # fmt: skip
            assert body["receiver"] == body["path"], "a notification reached another endpoint"
        return sorted(out)


def secrets_for_catalogue() -> dict[str, str]:
    """One secret per catalogue receiver (duty-, emergency-, enterprise-…)."""
    names = [r.name for r in receivers_from_catalog(CatalogView(CATALOGUE).catalog)]
    return {n: f"secret-of-{n}" for n in names}


def webhooks_json(secrets: dict[str, str], url: str) -> str:
    return orjson.dumps(
        {n: {"url": f"{url}/{n}", "secret": s, "timeout_seconds": 2} for n, s in secrets.items()}
    ).decode()


async def expected_from_alert_events(bootstrap: str, topic: str) -> set[tuple[str, str]]:
    """(notification id, receiver) of every transition on ``alert-events``, routed as the agent
    does — an escalation to the duty officer only (docs/routing.md), every flush of a group one
    transition (the module docstring) — : the delivered set must equal it (nothing lost,
    nothing extra)."""
    records = await settle(bootstrap, topic, quiet=3.0)
    tree = tree_from_receivers(receivers_from_catalog(CatalogView(CATALOGUE).catalog))
    out: set[tuple[str, str]] = set()
    for _p, _o, _k, value, _ts in records:
        t = Transition.from_dict(orjson.loads(value))
        receivers = tree.receivers(t.labels, NotificationKind(t.kind.value))
        if t.reason is Reason.ESCALATED:
            receivers = [f"duty-{t.locality}"]
        out |= {(n.id, n.receiver) for n in notifications_for(t, receivers, render)}
    return out


def ledger_states(bootstrap: str, prefix: str) -> Counter[str]:
    """How many (notification, receiver) the delivery ledger holds in each state."""
    ledger = asyncio.run(read_ledger(bootstrap, topics.name(topics.NOTIFY_LEDGER, prefix)))
    return Counter(str(d["state"]) for d in ledger.values())


def check_delivery(receiver: Receiver, from_topic: set[tuple[str, str]]) -> None:
    retried = {k: n for k, n in receiver.raw.items() if n > 1}
    print(
        f"receiver: {receiver.requests} raw requests, {len(receiver.accepted)} distinct keys, "
        f"{len(retried)} keys sent more than once {sorted(retried.values(), reverse=True)}, "
        f"{len(receiver.bad)} bad signatures, {receiver.aborted} requests cut off by the crash"
    )
    assert receiver.bad == [], "every signature verifies with the receiver's own secret"
    # the alert-events topic and the hand-derived list agree, and both were delivered
    assert len(from_topic) == len(EXPECTED) == 41
    assert {(k, b["path"]) for k, b in receiver.accepted.items()} == from_topic
    assert receiver.delivered() == EXPECTED
    # exactly once after deduplication: one accepted body per key, keys never shared
    assert len(receiver.accepted) == len(EXPECTED)
    # isolation: an enterprise's endpoint saw only its own outlet
    for r, source, *_ in receiver.delivered():
        if r.startswith("enterprise-"):
            assert ENTERPRISE[source] == r


# ---------------------------------------------------------------- the tests


@pytest.mark.parametrize("seed", [7, 2026])
def test_kill_9_mid_delivery(
    kafka_broker: KafkaBroker, topic_prefix: str, tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    kill_at = rng.randint(1, FIRST_PART)  # the k-th webhook request of the first part
    secrets = secrets_for_catalogue()
    receiver = Receiver(secrets, delay=0.05)
    receiver.start()
    readings = topics.name(topics.READINGS, topic_prefix)
    env = worker_env(
        kafka_broker.url,
        topic_prefix,
        tmp_path,
        influx_url=None,
        ENVWATCH_OUTBOX_PATH=str(tmp_path / "outbox.db"),
        ENVWATCH_ALERTS_WEBHOOKS=webhooks_json(secrets, receiver.url),
        ENVWATCH_ALERTS_LEASE_SECONDS="4",
        ENVWATCH_ALERTS_SEND_TIMEOUT_SECONDS="3",
    )
    worker = WorkerProcess(env, tmp_path / "worker.log")
    killed = threading.Event()
    killed_key: list[str] = []

    def crash(n: int, key: str) -> None:
        if n == kill_at and not killed.is_set():
            # the request is stored here, its answer never reaches the sender
            killed_key.append(key)
            worker.kill()
            killed.set()

    receiver.on_request = crash

    async def scenario() -> set[tuple[str, str]]:
        await topics.ensure_topics(kafka_broker.url, 1, topic_prefix)
        worker.start()
        await produce(kafka_broker.bootstrap, readings, day_samples(range(1, 13)))
        await wait_until(killed.is_set, within=60, interval=0.05)
        assert not worker.alive()
        # the rest of the day arrives while the worker is dead
        await produce(kafka_broker.bootstrap, readings, day_samples(range(13, 25)))
        worker.start()
        await wait_until(lambda: len(receiver.accepted) >= len(EXPECTED), within=90)
        await asyncio.sleep(3.0)  # anything extra (a duplicate, a stray key) would arrive now
        return await expected_from_alert_events(
            kafka_broker.bootstrap, topics.name(topics.ALERT_EVENTS, topic_prefix)
        )

    try:
        from_topic = asyncio.run(scenario())
    except AssertionError:
        print(worker.tail(60))
        print("missing:", sorted(set(EXPECTED) - set(receiver.delivered())))
        print("extra:", sorted(set(receiver.delivered()) - set(EXPECTED)))
        raise
    finally:
        worker.stop()
        receiver.stop()
    print(f"seed {seed}: worker killed during webhook request {kill_at} of {len(EXPECTED)}")
    check_delivery(receiver, from_topic)
    # the request cut off by the crash was delivered again after the restart, with the same key,
    # and the receiver accepted it once
    assert receiver.raw[killed_key[0]] >= 2, "the send cut off by the crash was not retried"
    assert ledger_states(kafka_broker.bootstrap, topic_prefix) == {"sent": N}
    # the restarted worker resumed from its checkpoints, it did not start from scratch
    assert worker.tail(10_000).count("restored") >= 2


OUTAGE = timedelta(minutes=5)
SPEED = 15.0  # dispatcher seconds per wall second: 5 min of the dispatcher's time in 20 s


class FastClock:
    """The dispatcher's clock: starts at the wall clock and runs ``SPEED`` times faster."""

    def __init__(self) -> None:
        self.start = datetime.now(UTC)
        self.mono = time.monotonic()

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=(time.monotonic() - self.mono) * SPEED)


def test_receiver_down_for_5_minutes(
    kafka_broker: KafkaBroker, topic_prefix: str, tmp_path: Path
) -> None:
    secrets = secrets_for_catalogue()
    receiver = Receiver(secrets)
    receiver.start()
    receiver.stop()  # the port is known and now refuses connections: the outage starts
    outage_started = datetime.now(UTC)
    readings = topics.name(topics.READINGS, topic_prefix)
    ledger_topic = topics.name(topics.NOTIFY_LEDGER, topic_prefix)
    # operator settings of the retry policy (alerts/settings.py): the defaults except the cap,
    # 60 s instead of 10 min, so the first retry after the outage comes within a minute
    retry: dict[str, float] = {
        "base_seconds": 5,
        "factor": 2,
        "cap_seconds": 60,
        "jitter": 0.2,
        "max_attempts": 30,
    }
    env = worker_env(
        kafka_broker.url,
        topic_prefix,
        tmp_path,
        influx_url=None,
        ENVWATCH_OUTBOX_PATH=str(tmp_path / "outbox.db"),
        ENVWATCH_ALERTS_WEBHOOKS=webhooks_json(secrets, receiver.url),
    )
    env.update({f"ENVWATCH_ALERTS_RETRY__{k.upper()}": str(v) for k, v in retry.items()})
    worker = WorkerProcess(env, tmp_path / "worker.log")

    def attempts() -> list[int]:
        ledger = asyncio.run(read_ledger(kafka_broker.bootstrap, ledger_topic))
        return [int(d["attempts"]) for d in ledger.values()]

    async def scenario() -> set[tuple[str, str]]:
        await topics.ensure_topics(kafka_broker.url, 1, topic_prefix)
        worker.start()
        await produce(kafka_broker.bootstrap, readings, day_samples(range(1, 25)))
        from_topic = await expected_from_alert_events(
            kafka_broker.bootstrap, topics.name(topics.ALERT_EVENTS, topic_prefix)
        )
        # every notification is in the ledger and the worker's dispatcher has tried each once
        await wait_until(lambda: len(a := attempts()) == N and min(a) >= 1, within=30)
        worker.kill()  # kill -9 the dispatcher in the middle of the outage

        # this process takes the partition over as a worker does: the ledger's rows, every
        # change written back; 5 min of its dispatcher's time pass with the receiver down
        settings = AlertsSettings(
            retry=RetrySettings(**retry),
            webhooks={
                n: WebhookSettings(url=f"{receiver.url}/{n}", secret=SecretStr(s))
                for n, s in secrets.items()
            },
        )
        box = MemoryOutbox(settings.retry.policy())
        for _key, value in await read_partition(kafka_broker.bootstrap, ledger_topic, 0):
            box.load(value, 0)
        assert box.counts()[RowState.PENDING] == N
        producer = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
        await producer.start()

        async def write_back(item: OutboxItem) -> None:
            key = (item.id, item.receiver)
            await producer.send_and_wait(
                ledger_topic, box.ledger_value(*key), key=ledger_key(*key), partition=0
            )

        clock = FastClock()
        dispatcher = Dispatcher(
            box,
            channels_from_settings(settings),
            concurrency=settings.concurrency,
            per_receiver=settings.per_receiver,
            lease=timedelta(seconds=settings.lease_seconds),
            send_timeout=settings.send_timeout_seconds,
            clock=clock,
            after=write_back,
        )
        stop = asyncio.Event()
        run = asyncio.create_task(dispatcher.run(stop))
        try:
            # wall seconds until the dispatcher's clock is 5 min past the receiver's stop
            await asyncio.sleep((OUTAGE - (clock() - outage_started)).total_seconds() / SPEED)
            assert clock() - outage_started >= OUTAGE
            during = [i.attempts for i in box.items()]
            assert receiver.requests == 0
            assert box.counts()[RowState.DEAD] == 0, "nothing dead-lettered during the outage"
            assert box.counts()[RowState.HELD] == 0, "a refused connection is not a refusal"
            receiver.start()  # the same port again: the outage is over
            await wait_until(lambda: len(receiver.accepted) >= N, within=30, interval=0.2)
            await asyncio.sleep(2.0)  # a duplicate would arrive now
        finally:
            stop.set()
            await run
            await dispatcher.aclose()
            await producer.stop()
        # Failed attempts per row in 5 min: retry n waits at most 1.2 × min(60, 5 × 2^(n−1)) s
        # (jitter 0.2): 6, 12, 24, 48, 72, 72 … → attempts at ≤ 0, 6, 18, 42, 90, 162, 234 s, plus
        # ≤ 7.5 s of polling each (0.5 s wall × 15): at least 5 failed attempts in 300 s.
        print(f"failed attempts per row at the end of the outage: {sorted(during)}")
        assert min(during) >= 5
        return from_topic

    try:
        from_topic = asyncio.run(scenario())
    except AssertionError:
        print(worker.tail(60))
        print("missing:", sorted(set(EXPECTED) - set(receiver.delivered())))
        print("extra:", sorted(set(receiver.delivered()) - set(EXPECTED)))
        raise
    finally:
        worker.stop()
        receiver.stop()
    check_delivery(receiver, from_topic)
    # the receiver was down while the sends failed: it saw each key exactly once
    assert set(receiver.raw.values()) == {1}
    assert ledger_states(kafka_broker.bootstrap, topic_prefix) == {"sent": N}
