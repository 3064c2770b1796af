"""Fault matrix, partition order (issue 13): a day's backlog on the default 4 ``readings``
partitions — nothing lost, nothing doubled, nothing false, with one worker and with two workers
and a kill -9.

Real services: mosquitto → ``envwatch bridge`` (a process) → Tansu (**4 partitions**, the
default) → ``envwatch worker`` processes configured only through ENVWATCH_* variables, with the
shipped catalogue (deploy/config) and one signed webhook per catalogue receiver pointing at
:class:`tests.integration.story_support.Receivers` (this process: verifies each receiver's own
secret, counts raw requests per ``Idempotency-Key``, keeps the first body of each key).

The backlog, by hand: 2026-01-06 (Beijing; GB 3095-2012 applies), published through MQTT in
event-time order **before any worker starts** (the bridge puts it into Kafka; the worker then
catches up a whole day):

* three flue-gas outlets with **minute** data (1,440 samples each; HJ 212-2017 分钟数据):
  e-wf-01-g1 and e-wf-02-g1 (Weifang), e-lx-01-g1 (Laixi); each minute's O2 equals the outlet's
  reference O2 (deploy/config/defaults.yaml gas_boiler 3.5 %, coal_boiler 9 %; e-wf-02-g1's own
  9 %), so the O2-corrected hourly mean equals the measured one (GB 13271-2014 式(1));
* five air stations with hourly data (24 samples each): aq-wf-01…03 (Weifang), aq-lx-01…02
  (Laixi), every value far below its GB 3095-2012 表1 limit except the scripted hours;
* every value varies from sample to sample (no constant-value or zero-value run) and no source
  ever pauses (no offline alert is due);
* :data:`EPISODES`, the scripted exceedances — among them the issue's critical NOx 400 mg/m³ of
  e-wf-01-g1 (permit 150).

Expected, from the script and the rules' documented lifecycle (alerts/rules.py DEFAULT_RULES:
``for`` 0, escalation once after 60 min unacknowledged, resolution on the first value back
within the limit): an episode breaching in the hours labelled *first* … *last* gives firing at
*first* (``condition_met_no_wait``, critical when the value is ≥ 1.5 × the permit limit),
escalated at *first* + 1 h (60 min unacknowledged when the source's own next data arrives — its
reading point reaches the locality stage before the verdict that may clear the alert, so an
episode of a single hour escalates too), resolved at *last* + 1 h — and each is told to the
locality's duty officer and, for an outlet, to its enterprise, to no one else
(docs/notifications.md §2). Nothing else: no offline alert, no alert of a healthy source,
no warning (the city AQI stays far below 200).

* ``test_backlog_one_worker_catches_up``: one worker catches the day up.
* ``test_backlog_two_workers_kill_9``: two workers in one group; once the backlog is being worked
  on (the first notification was accepted), the one owning more ``readings`` partitions is
  killed -9 and not restarted; the survivor takes its partitions over.
* ``test_issue_probe_two_outlets_one_worker``: the issue's probe (36 of 48 notifications on 4
  partitions): two hourly outlets, one silent for 4 hours — :data:`PROBE_TRANSITIONS`.

What these found, and the fixes (docs/alerts.md §5): an alert was escalated at the locality's
watermark, which other partitions' data may push far ahead — after a kill -9 a lagging source's
one-hour exceedance lost its escalation (or, the other way round, got one its own data never
reached); now each alert is judged at its own source's clock (alerts/locality.py,
``Engine.tick(clocks=)``). And a source alone on its partition never went offline: nothing moved
that partition's clock while it was silent; now a gap in a source's own data moves the clock
before the source is marked seen (streams/steps.py), so its next sample declares the silence
before resuming it. tests/streams/test_partition_order.py proves both without services, feeding
the locality stage the partitions in several orders.

The first two assert every expected transition on ``alert-events`` and nothing else of the two
localities (the third: of Weifang), every expected notification accepted by exactly its receivers, every alert resolved,
and compare with ``envwatch backtest`` of the same samples (the same transition ids). Raw
requests per key (a duplicate send) are checked last: without a kill exactly one each; with a
kill, a notification in flight may be sent a second time with the same ``Idempotency-Key``,
within the bound docs/notifications.md §4 states (:func:`check_sent_once`).
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import orjson
import pytest
from typer.testing import CliRunner

from ingest.publisher import Publisher
from streams import topics
from streams.catalog import CatalogView, receivers_from_catalog
from streams.embedded import KafkaBroker, MqttBroker
from tests.integration.bridge_helpers import BridgeProcess, bridge_env
from tests.integration.story_support import Receivers
from tests.integration.worker_support import CATALOGUE, WorkerProcess, read_all, worker_env

pytestmark = [pytest.mark.integration, pytest.mark.fault_matrix, pytest.mark.timeout(170)]

BEIJING = ZoneInfo("Asia/Shanghai")
DAY = datetime(2026, 1, 6, tzinfo=BEIJING)
MINUTE = timedelta(minutes=1)
H = timedelta(hours=1)
PARTITIONS = 4  # ENVWATCH_PARTITIONS' default (streams/settings.py)
LOCALITIES = ("weifang", "laixi")

#: outlet → (locality, enterprise, reference O2 %: deploy/config/defaults.yaml or the outlet's own)
OUTLETS: dict[str, tuple[str, str, float]] = {
    "e-wf-01-g1": ("weifang", "e-wf-01", 3.5),  # gas_boiler, GB 13271-2014 表6
    "e-wf-02-g1": ("weifang", "e-wf-02", 9.0),  # reference_o2: 9 on the outlet
    "e-lx-01-g1": ("laixi", "e-lx-01", 9.0),  # coal_boiler, GB 13271-2014 表6
}
STATIONS: dict[str, str] = {
    "aq-wf-01": "weifang",
    "aq-wf-02": "weifang",
    "aq-wf-03": "weifang",
    "aq-lx-01": "laixi",
    "aq-lx-02": "laixi",
}


@dataclass(frozen=True)
class Episode:
    """``source``'s ``factor`` at ``value`` in the hours labelled ``first`` … ``last`` (1…24)."""

    source: str
    factor: str
    value: float
    first: int
    last: int
    limit: float  # only documents the script: the code under test takes it from the catalogue
    critical: bool  # value ≥ 1.5 × permit limit (permit-exceedance critical_ratio [MEM])

    @property
    def locality(self) -> str:
        return OUTLETS[self.source][0] if self.source in OUTLETS else STATIONS[self.source]

    @property
    def enterprise(self) -> str:
        return OUTLETS[self.source][1] if self.source in OUTLETS else ""

    @property
    def rule(self) -> str:
        return "permit-exceedance" if self.source in OUTLETS else "ambient-exceedance"

    @property
    def period(self) -> str:
        return "hour" if self.source in OUTLETS else "hourly"


EPISODES: tuple[Episode, ...] = (
    # GB 13271-2014 特别排放限值 燃气锅炉 NOx 150 (deploy/config/weifang.yaml e-wf-01-g1)
    Episode("e-wf-01-g1", "nox", 400.0, 8, 9, 150.0, critical=True),
    Episode("e-wf-01-g1", "nox", 180.0, 18, 19, 150.0, critical=False),
    # DB37/2376-2019 SO2 50 (e-wf-02-g1, operator default in the catalogue)
    Episode("e-wf-02-g1", "so2", 70.0, 3, 5, 50.0, critical=False),
    # GB 3095-2012 表1 NO2 1-h 200 μg/m³
    Episode("aq-wf-02", "no2", 260.0, 10, 12, 200.0, critical=False),
    # GB 13271-2014 特别排放限值 燃煤锅炉 SO2 200, NOx 200 (deploy/config/laixi.yaml e-lx-01-g1)
    Episode("e-lx-01-g1", "so2", 260.0, 15, 16, 200.0, critical=False),
    Episode("e-lx-01-g1", "nox", 400.0, 5, 6, 200.0, critical=True),
    # GB 3095-2012 表1 SO2 1-h 500 μg/m³ (grade II)
    Episode("aq-lx-01", "so2", 550.0, 20, 21, 500.0, critical=False),
    # one hour only: firing for exactly the escalation delay when the source's next sample
    # arrives — its reading (first in its record) escalates, then its verdict clears, whatever
    # the order in which the partitions are worked on (lost after a kill before the fix)
    Episode("aq-wf-03", "no2", 250.0, 14, 14, 200.0, critical=False),
    # DB37/2376-2019 NOx 100 (e-wf-02-g1, operator default in the catalogue)
    Episode("e-wf-02-g1", "nox", 150.0, 20, 20, 100.0, critical=False),
)


class Told(NamedTuple):
    rule: str
    source: str
    factor: str
    period: str
    state: str
    reason: str
    at: datetime  # UTC


def expected_transitions() -> list[Told]:
    out = []
    for e in EPISODES:
        first = (DAY + e.first * H).astimezone(UTC)
        out.append(
            Told(e.rule, e.source, e.factor, e.period, "firing", "condition_met_no_wait", first)
        )
        out.append(Told(e.rule, e.source, e.factor, e.period, "firing", "escalated", first + H))
        end = (DAY + (e.last + 1) * H).astimezone(UTC)
        out.append(
            Told(e.rule, e.source, e.factor, e.period, "resolved", "clear_condition_met", end)
        )
    return sorted(out)


def expected_notifications() -> Counter[tuple[str, Told]]:
    """(receiver, transition): the duty officer of the locality, the enterprise of its outlet —
    not of an escalation (issue 14: the escalation chain, the duty officer for the shipped rules;
    docs/routing.md §3)."""
    by_source = {e.source: e for e in EPISODES}
    out: Counter[tuple[str, Told]] = Counter()
    for t in expected_transitions():
        e = by_source[t.source]
        out[(f"duty-{e.locality}", t)] += 1
        if e.enterprise and t.reason != "escalated":
            out[(f"enterprise-{e.enterprise}", t)] += 1
    return out


def _scripted(source: str, hour: int) -> dict[str, float]:
    return {e.factor: e.value for e in EPISODES if e.source == source and e.first <= hour <= e.last}


def backlog() -> list[dict[str, Any]]:
    """The day's samples in event-time order (the module docstring)."""
    out: list[dict[str, Any]] = []
    for m in range(1, 24 * 60 + 1):
        at = DAY + m * MINUTE
        hour = math.ceil(m / 60)  # the hour labelled ``hour`` is the mean over (hour − 1, hour]
        for source, (locality, _ent, o2) in OUTLETS.items():
            values = {
                "pm": 5.0 + (m % 3) * 0.5,
                "so2": 10.0 + (m % 5),
                "nox": 80.0 + (m % 7),
                "o2": o2,
                "flow": 20000.0 + (m % 11),
            }
            for f, v in _scripted(source, hour).items():
                values[f] = v + (m % 7) * 0.1
            out.append(_sample("emission", locality, source, at, "min", values))
        if m % 60 == 0:
            for source, locality in STATIONS.items():
                values = {
                    "pm25": 30.0 + hour % 5,
                    "pm10": 55.0 + hour % 7,
                    "so2": 8.0 + hour % 4,
                    "no2": 20.0 + hour % 6,
                    "co": 0.6 + 0.05 * (hour % 3),
                    "o3": 40.0 + hour % 8,
                }
                values.update(_scripted(source, hour))
                out.append(_sample("air", locality, source, at, "hour", values))
    return out


def _sample(
    kind: str, locality: str, source: str, at: datetime, interval: str, values: dict[str, float]
) -> dict[str, Any]:
    return {
        "schema": 1,
        "kind": kind,
        "locality": locality,
        "source": source,
        "time": at.isoformat(),
        "interval": interval,
        "values": {f: {"value": round(v, 3), "flag": "N"} for f, v in values.items()},
    }


# ------------------------------------------------------------------------------ machinery


def publish(mqtt: MqttBroker, samples: Sequence[dict[str, Any]], client_id: str) -> None:
    pub = Publisher(mqtt.host, mqtt.port, client_id=client_id, inflight=200)
    try:
        for s in samples:
            pub.publish_raw(f"env/{s['kind']}/{s['locality']}/{s['source']}", orjson.dumps(s))
    finally:
        pub.close(60)


def receiver_names() -> list[str]:
    return [r.name for r in receivers_from_catalog(CatalogView(CATALOGUE).catalog)]


def webhooks_json(receivers: Receivers) -> str:
    return orjson.dumps(
        {
            n: {"url": f"{receivers.url}/{n}", "secret": s, "timeout_seconds": 5}
            for n, s in receivers.secrets.items()
        }
    ).decode()


def told_of(t: dict[str, Any]) -> Told:
    labels = t["labels"]
    return Told(
        labels.get("rule", ""),
        t["source"],
        labels.get("factor", ""),
        labels.get("period", ""),
        t["state"],
        t["reason"],
        datetime.fromisoformat(t["at"].replace("Z", "+00:00")).astimezone(UTC),
    )


def notifications(receivers: Receivers) -> Counter[tuple[str, Told]]:
    """Accepted notifications (one per idempotency key) of the two localities; a grouped one
    (docs/routing.md §2) once for each transition its ``told`` annotation lists."""
    out: Counter[tuple[str, Told]] = Counter()
    for path, body in receivers.accepted.values():
        ew = body["envwatch"]
        if ew["locality"] not in LOCALITIES:
            continue
        if ew["reason"] in ("grouped", "repeat"):
            for t in orjson.loads(body["commonAnnotations"]["told"]):
                at = datetime.fromisoformat(t["at"]).astimezone(UTC)
                told = Told(
                    t["rule"], t["source"], t["factor"], t["period"], t["state"], t["reason"], at
                )
                out[(path, told)] += 1
            continue
        alert = body["alerts"][0]
        labels = alert["labels"]
        at = datetime.fromisoformat(ew["at"].replace("Z", "+00:00")).astimezone(UTC)
        told = Told(
            labels.get("rule", ew.get("kind", "")),
            ew["source"],
            labels.get("factor", ""),
            labels.get("period", ""),
            ew["state"],
            ew["reason"],
            at,
        )
        out[(path, told)] += 1
    return out


def receivers_of_key(receivers: Receivers) -> dict[str, str]:
    return {key: path for key, (path, _body) in receivers.accepted.items()}


@dataclass
class Live:
    transitions: list[dict[str, Any]]  # alert-events of the two localities (all records)
    receivers: Receivers
    catch_up: float  # seconds from the first worker start until the last expected notification
    killed: bool = False


def readings_owned(log: Path, topic: str) -> int:
    """How many ``readings`` partitions a worker was last assigned (Faust's assignment table)."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return 0
    got = 0
    for block in re.findall(rf"{re.escape(topic)}[^\n]*?\{{([\d, ]*)\}}", text):
        got = len([x for x in block.split(",") if x.strip()])
    return got


async def _until(predicate: Any, within: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within} s")
        await asyncio.sleep(interval)


def run_live(
    mqtt: MqttBroker,
    kafka: KafkaBroker,
    prefix: str,
    tmp: Path,
    receivers: Receivers,
    *,
    workers: int,
    kill: bool,
    samples: Sequence[dict[str, Any]] | None = None,
    missing: Callable[[], Sequence[object]] | None = None,
) -> Live:
    """The backlog through mosquitto → bridge → Kafka, then ``workers`` worker processes, until
    ``missing()`` (default: the expected notifications not accepted yet) is empty."""
    samples = backlog() if samples is None else samples
    if missing is None:
        want = expected_notifications()

        def missing() -> Sequence[object]:
            return sorted(want - notifications(receivers))

    benv = bridge_env(
        mqtt,
        kafka,
        prefix,
        ENVWATCH_MQTT_TOPIC="env/#",
        ENVWATCH_PARTITIONS=str(PARTITIONS),
    )
    bridge = BridgeProcess(benv, tmp)
    procs: list[WorkerProcess] = []
    for i in range(workers):
        wdir = tmp / f"w{i}"
        wdir.mkdir(parents=True)
        env = worker_env(
            kafka.url,
            prefix,
            wdir,
            influx_url=None,
            partitions=PARTITIONS,
            ENVWATCH_MAX_PAST_DAYS=str(365 * 100),  # 2026-01 data whenever the test runs
            ENVWATCH_OUTBOX_PATH=str(wdir / "outbox.db"),
            ENVWATCH_ALERTS_WEBHOOKS=webhooks_json(receivers),
        )
        procs.append(WorkerProcess(env, tmp / f"worker-{i}.log"))
    readings = topics.name(topics.READINGS, prefix)
    started = 0.0
    killed = False

    async def scenario() -> None:
        nonlocal started, killed
        await topics.ensure_topics(kafka.url, PARTITIONS, prefix)
        bridge.start()
        try:
            await asyncio.to_thread(publish, mqtt, samples, f"{prefix}logger")
            # the whole backlog in Kafka before any worker starts
            await _until(
                lambda: (bridge.metric("envwatch_bridge_produced_total") or 0) >= len(samples),
                60,
                f"the bridge produced {len(samples)} samples",
            )
        finally:
            bridge.stop()
        started = time.monotonic()
        for p in procs:
            p.start()
        if kill:
            await _until(
                lambda: sum(notifications(receivers).values()) >= 1,
                60,
                "a first notification",
                interval=0.05,
            )
            owned = [readings_owned(p.log, readings) for p in procs]
            victim = procs[owned.index(max(owned))]
            victim.kill()
            killed = True
            print(
                f"killed worker {procs.index(victim)} {time.monotonic() - started:.1f} s after "
                f"the start, {sum(notifications(receivers).values())} notification(s) accepted "
                f"(readings partitions owned {owned})"
            )
        await _until(
            lambda: not missing(),
            75,
            "every expected notification",
            interval=0.3,
        )

    try:
        asyncio.run(scenario())
        catch_up = time.monotonic() - started
        time.sleep(4.0)  # anything late, doubled or false would arrive now
    except AssertionError:
        for p in procs:
            print(f"--- {p.log.name}\n{p.tail(30)}")
        print(f"--- missing: {list(missing())[:10]}")
        raise
    finally:
        for p in procs:
            p.stop()
    events = asyncio.run(read_all(kafka.bootstrap, topics.name(topics.ALERT_EVENTS, prefix)))
    ts = [orjson.loads(v) for _p, _o, _k, v, _ts in events]
    mine = [t for t in ts if t.get("locality") in LOCALITIES]
    return Live(mine, receivers, catch_up, killed)


def backtest_ids(tmp: Path, samples: Sequence[dict[str, Any]] | None = None) -> Counter[str]:
    """``envwatch backtest`` of the same samples (typer's CliRunner on the real command)."""
    from streams.cli._app import app

    path = tmp / "backlog.jsonl"
    rows = backlog() if samples is None else samples
    path.write_bytes(b"".join(orjson.dumps(s) + b"\n" for s in rows))
    result = CliRunner().invoke(
        app, ["backtest", str(path), "--json", "--all", "--config", str(CATALOGUE)]
    )
    assert result.exit_code == 0, result.output[-2000:]
    rows = [orjson.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]
    return Counter(r["id"] for r in rows if r.get("locality") in LOCALITIES)


def check(live: Live, tmp: Path) -> None:
    want_t = expected_transitions()
    # alert-events: every expected transition, nothing else (a re-emission after a kill carries
    # the same id, so it is compared as a set of ids)
    by_id = {t["id"]: t for t in live.transitions}
    got_t = sorted(told_of(t) for t in by_id.values())
    assert got_t == want_t, (
        f"missing {sorted(set(want_t) - set(got_t))}, unexpected {sorted(set(got_t) - set(want_t))}"
    )
    assert not [t for t in by_id.values() if t["labels"].get("rule") == "offline"]
    fired = [
        t
        for t in by_id.values()
        if t["source"] == "e-wf-01-g1" and t["reason"] == "condition_met_no_wait"
    ]
    assert sorted((told_of(t).at.hour, t["severity"]) for t in fired) == [
        (0, "critical"),  # 08:00 Beijing: NOx 400 ≥ 1.5 × 150
        (10, "warning"),  # 18:00 Beijing: NOx 180
    ]
    # every alert clears: per fingerprint the last transition is a resolution
    last: dict[str, dict[str, Any]] = {}
    for t in sorted(by_id.values(), key=lambda t: t["at"]):
        last[t["fingerprint"]] = t
    assert {fp: t["state"] for fp, t in last.items()} == dict.fromkeys(last, "resolved")
    # healthy sources silent
    assert {t["source"] for t in by_id.values()} == {e.source for e in EPISODES}

    # notifications: each expected one accepted by exactly its receivers, nothing else
    want_n = expected_notifications()
    got_n = notifications(live.receivers)
    assert got_n == want_n, (
        f"missing {sorted(want_n - got_n)[:8]}, extra {sorted(got_n - want_n)[:8]}"
    )
    for receiver, told in got_n:
        if receiver.startswith("enterprise-"):
            assert receiver == f"enterprise-{OUTLETS[told.source][1]}"
    assert live.receivers.bad == []
    # a request torn by the kill was sent again in full to the same receiver
    resent = {f"{n} {k}" for k, (n, _body) in live.receivers.accepted.items()}
    assert set(live.receivers.torn) <= resent, "a request torn by the kill was never sent in full"

    # the replay tells the same story: the same transition ids
    again = backtest_ids(tmp)
    assert set(again) == set(by_id), (
        f"live only {[told_of(by_id[i]) for i in set(by_id) - set(again)]}, "
        f"backtest only {sorted(set(again) - set(by_id))}"
    )


def check_sent_once(live: Live) -> None:
    """Raw requests per idempotency key of the two localities.

    Without a kill: exactly one each. With a kill -9: a send that reached its receiver but whose
    outcome was not yet in the delivery ledger when its worker died is sent again by the new
    owner with the same ``Idempotency-Key`` (docs/notifications.md §4, "Exactly once, and its
    window": HTTP gives the sender no way to close it; the receiver honours the key, which
    :func:`check` already proves: each notification accepted once). So each such key reaches its
    receiver at most twice, and at most the sends the victim had in flight: 4 per receiver
    (ENVWATCH_ALERTS_PER_RECEIVER's default) and 16 in all (ENVWATCH_ALERTS_CONCURRENCY's).
    """
    paths = receivers_of_key(live.receivers)
    keys = {
        k
        for k, (_p, body) in live.receivers.accepted.items()
        if body["envwatch"]["locality"] in LOCALITIES
    }
    twice = {k: (paths[k], n) for k, n in live.receivers.raw.items() if k in keys and n > 1}
    if not live.killed:
        assert twice == {}
        return
    if twice:
        print(f"{len(twice)} key(s) sent twice across the kill: {sorted(twice.values())[:6]}")
    assert all(n == 2 for _path, n in twice.values()), twice
    per_receiver = Counter(path for path, _n in twice.values())
    assert all(n <= 4 for n in per_receiver.values()), per_receiver
    assert len(twice) <= 16, twice


# ------------------------------------------------------------------------------ the tests


def test_backlog_one_worker_catches_up(
    mqtt_broker: MqttBroker, kafka_broker: KafkaBroker, topic_prefix: str, tmp_path: Path
) -> None:
    with Receivers(receiver_names()) as receivers:
        live = run_live(
            mqtt_broker, kafka_broker, topic_prefix, tmp_path, receivers, workers=1, kill=False
        )
        print(
            f"{len(backlog())} samples caught up, {sum(expected_notifications().values())} "
            f"notifications in {live.catch_up:.1f} s"
        )
        check(live, tmp_path)
        check_sent_once(live)


def test_backlog_two_workers_kill_9(
    mqtt_broker: MqttBroker, kafka_broker: KafkaBroker, topic_prefix: str, tmp_path: Path
) -> None:
    with Receivers(receiver_names()) as receivers:
        live = run_live(
            mqtt_broker, kafka_broker, topic_prefix, tmp_path, receivers, workers=2, kill=True
        )
        print(f"caught up after the kill in {live.catch_up:.1f} s")
        assert live.killed
        check(live, tmp_path)
        check_sent_once(live)


# ------------------------------------------------------------------------------ the issue's probe

#: The issue's probe, on 4 partitions: Weifang's two gas outlets, one day of hourly samples
#: (the scenario of tests/integration/test_notify_delivery.py, whose 48 notifications are
#: hand-derived there; copied here so each test stands alone). e-wf-02-g1 sends nothing labelled
#: 14:00 … 17:00: alone on its partition, no other source's data moves that partition's clock.
PROBE_DAY = datetime(2026, 11, 10, tzinfo=BEIJING)
WF1, WF2 = "e-wf-01-g1", "e-wf-02-g1"
NOX_WF1 = {3: 300.0, 4: 260.0, 10: 200.0, 17: 400.0, 18: 180.0}
NOX_WF2 = {6: 150.0, 12: 120.0, 20: 250.0}
SO2_WF2 = {8: 70.0}
WF2_SILENT = range(14, 18)


def probe_samples() -> list[dict[str, Any]]:
    out = []
    for h in range(1, 25):
        at = PROBE_DAY + h * H
        wf1 = {"nox": NOX_WF1.get(h, 80.0 + h), "so2": 20.0 + h % 7, "pm": 5.0 + h % 3}
        out.append(_sample("emission", "weifang", WF1, at, "hour", {**wf1, "o2": 3.5}))
        if h in WF2_SILENT:
            continue
        wf2 = {"nox": NOX_WF2.get(h, 50.0 + h), "so2": SO2_WF2.get(h, 20.0 + h % 5)}
        out.append(
            _sample("emission", "weifang", WF2, at, "hour", {**wf2, "pm": 4.0 + h % 4, "o2": 9.0})
        )
    return out


#: (source, rule, factor, state, reason, hour label), the arithmetic in test_notify_delivery.py:
#: WF1 NOx permit 150 (critical ≥ 225), WF2 NOx 100 (critical ≥ 150) and SO2 50; an episode fires
#: at once, escalates 60 min later (the source's next sample), resolves at the first value within
#: the limit; WF2's last sample before the gap is 13:00 → offline after max(120 min, 3 × 60 min)
#: = 3 h, stamped 16:00; its 18:00 sample resumes it.
PROBE_TRANSITIONS = [
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


def probe_key(t: Told) -> tuple[str, str, str, str, str, int]:
    hour = round((t.at - PROBE_DAY).total_seconds() / 3600)
    return (t.source, t.rule, t.factor, t.state, t.reason, hour)


def test_issue_probe_two_outlets_one_worker(
    mqtt_broker: MqttBroker, kafka_broker: KafkaBroker, topic_prefix: str, tmp_path: Path
) -> None:
    """The issue's probe: 36 of 48 notifications on 4 partitions before the fixes. All now, each
    once, to duty-weifang and the outlet's own enterprise — escalations to duty-weifang only
    since issue 14 (41)."""
    samples = probe_samples()
    enterprise = {WF1: "enterprise-e-wf-01", WF2: "enterprise-e-wf-02"}
    # issue 14: an escalation goes to the escalation chain (the duty officer), never to the
    # enterprise (docs/routing.md §3): 17 transitions × 2 + 7 escalations × 1 = 41
    want_keys = Counter(
        (receiver, t)
        for t in PROBE_TRANSITIONS
        for receiver in (
            ("duty-weifang",) if t[4] == "escalated" else ("duty-weifang", enterprise[t[0]])
        )
    )
    assert sum(want_keys.values()) == 41

    with Receivers(receiver_names()) as receivers:

        def got_keys() -> Counter[tuple[str, tuple[str, str, str, str, str, int]]]:
            got: Counter[tuple[str, tuple[str, str, str, str, str, int]]] = Counter()
            for (r, t), n in notifications(receivers).items():
                got[(r, probe_key(t))] += n
            return got

        live = run_live(
            mqtt_broker,
            kafka_broker,
            topic_prefix,
            tmp_path,
            receivers,
            workers=1,
            kill=False,
            samples=samples,
            missing=lambda: sorted(want_keys - got_keys()),
        )
        got = got_keys()
        assert got == want_keys, (
            f"missing {sorted(want_keys - got)[:8]}, extra {sorted(got - want_keys)[:8]}"
        )
        by_id = {t["id"]: t for t in live.transitions}
        assert sorted(probe_key(told_of(t)) for t in by_id.values()) == sorted(PROBE_TRANSITIONS)
        assert set(backtest_ids(tmp_path, samples)) == set(by_id)
        check_sent_once(live)
