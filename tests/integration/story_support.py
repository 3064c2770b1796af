"""Machinery of the story tests (tests/integration/test_stories.py): the simulated network played
over the real services, what people received, what the store holds, and the replay.

* :func:`published` — the reference catalogue's simulated network (deploy/config,
  ``ingest.simulators.specs_from_catalog``) for a scenario, in delivery order.
* :func:`run_live` — one live run: mosquitto → bridge → Tansu → in-process Faust worker
  (:class:`streams.runtime.Runtime`) → VictoriaMetrics, every catalogue receiver's webhook pointed
  at :class:`Receivers` (verifies each receiver's own HMAC secret, deduplicates on
  ``Idempotency-Key``, keeps every body). The deliveries are published with QoS 1 as fast as the
  pipeline takes them (the publisher's window of un-acknowledged messages, and the bridge's
  PUBACK only after Kafka acknowledged, make that the pipeline's pace). The run is *settled*
  when the worker has evaluated every published sample and nothing has moved for a while: no new
  aggregate, stored point or transition, and no notification left in the outbox.
* The store: the sink writes each batch to VictoriaMetrics through :class:`TeeWriter`, which
  also appends the batch's ``reading``/``alert``/``warning`` lines — exactly the lines
  VictoriaMetrics accepted, once they were accepted — to ``stored.lp``. Why a tee and not a read-
  back: VictoriaMetrics keeps only numeric fields, so a flagged value (stored as the string field
  ``invalid="nox:M"``), a forecast's ``issued`` time and an offline alert (strings only) would be
  lost, and the replay of the maintenance scenario would judge span gas as valid data. The file
  is what an InfluxDB store holds of those measurements.
* :func:`daily_ambient_story` — the expected GB 3095 daily exceedance alerts of the stations the
  scenario does not script, computed here from the published samples with the standard's own
  arithmetic (mean of the day's hourly values, ≥ 20 of them; GB 3095-2012 表1 limits by the
  station's area grade) and the ambient rule's documented lifecycle — never by the code under test.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import httpx
import orjson
from pydantic import SecretStr
from typer.testing import CliRunner

from alerts.notify.webhook import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify_signature,
)
from alerts.outbox import RowState
from alerts.settings import AlertsSettings, WebhookSettings
from ingest.simulators import simulate, specs_from_catalog
from ingest.simulators.model import Delivery, SourceSpec
from ingest.simulators.publish import MqttSink, play
from rules.catalog import load_catalog
from streams.catalog import CatalogView, receivers_from_catalog
from streams.embedded import KafkaBroker, MqttBroker, Victoria
from streams.runtime import Runtime
from streams.settings import Settings
from streams.sink import InfluxWriter, Sink, Spool

BEIJING = ZoneInfo("Asia/Shanghai")
REPO = Path(__file__).resolve().parents[2]
CATALOGUE = REPO / "deploy" / "config"
H = timedelta(hours=1)
DAY = timedelta(days=1)

#: Measurements the tee keeps: what the replay reads (``reading``) and what the alert checks read.
KEPT = ("reading", "alert", "warning")


# =============================================================================== what people see


class StoryDiscrepancy(AssertionError):
    """What the pipeline shows contradicts the story a scenario's script and the standards
    prescribe — raised only by the checks of a known, reported discrepancy, so that a test
    marked ``xfail(raises=StoryDiscrepancy)`` still fails on anything else."""


class Told(NamedTuple):
    """One alert transition as a person sees it (a notification, or its absence)."""

    at: datetime
    rule: str
    source: str
    factor: str
    period: str  # "" when the alert has no averaging period
    state: str  # firing | resolved
    reason: str

    def __repr__(self) -> str:  # readable assertion diffs: Beijing time
        return (
            f"Told({self.at.astimezone(BEIJING):%m-%d %H:%M}, {self.rule}, {self.source}, "
            f"{self.factor}, {self.period or '-'}, {self.state}, {self.reason})"
        )


def fired(rule: str, source: str, factor: str, period: str, at: datetime) -> Told:
    """Opened at once (every rule used here has ``for`` = 0: reason condition_met_no_wait)."""
    return Told(at, rule, source, factor, period, "firing", "condition_met_no_wait")


def escalated(rule: str, source: str, factor: str, period: str, at: datetime) -> Told:
    return Told(at, rule, source, factor, period, "firing", "escalated")


def resolved(rule: str, source: str, factor: str, period: str, at: datetime) -> Told:
    return Told(at, rule, source, factor, period, "resolved", "clear_condition_met")


def told_of(t: Mapping[str, Any]) -> Told:
    """A transition record (``alerts.model.Transition.to_dict``) as :class:`Told`."""
    labels = t["labels"]
    return Told(
        datetime.fromisoformat(t["at"]),
        labels.get("rule", ""),
        t["source"],
        labels.get("factor", ""),
        labels.get("period", ""),
        t["state"],
        t["reason"],
    )


class Warned(NamedTuple):
    """One heavy-pollution-warning transition: event time, reason, level."""

    at: datetime
    reason: str
    level: str

    def __repr__(self) -> str:
        return f"Warned({self.at.astimezone(BEIJING):%m-%d %H:%M}, {self.reason}, {self.level})"


def warned_of(t: Mapping[str, Any]) -> Warned:
    return Warned(datetime.fromisoformat(t["at"]), t["reason"], t["level"] or "")


# =============================================================================== published data


def catalogue_specs() -> list[SourceSpec]:
    return list(specs_from_catalog(load_catalog(CATALOGUE)))


def published(scenario: str | None, start: datetime, hours: float) -> list[Delivery]:
    """The catalogue's simulated network (seed 0) for ``scenario``, in delivery order."""
    return list(simulate(catalogue_specs(), start=start, hours=hours, seed=0, scenario=scenario))


def hourly_values(
    deliveries: Iterable[Delivery], kind: str = "air"
) -> dict[str, dict[datetime, dict[str, float]]]:
    """source → label → {factor: value} of the valid (flag N) values of ``kind`` sources; a
    sample delivered twice counts once."""
    out: dict[str, dict[datetime, dict[str, float]]] = defaultdict(dict)
    for d in deliveries:
        s = d.sample
        if s.kind.value != kind:
            continue
        out[s.source][s.time] = {
            f: v.value for f, v in s.values.items() if v.value is not None and v.flag.value == "N"
        }
    return out


# =============================================================================== GB 3095 oracle

#: GB 3095-2012 表1 (in force before 2026-03-01, every story runs in January 2026), µg/m³ (CO
#: mg/m³): 24-h average limits per area grade, and the 1-h limits.
DAILY_LIMITS_2012: Mapping[str, Mapping[str, float]] = {
    "I": {"pm25": 35.0, "pm10": 50.0, "so2": 50.0, "no2": 80.0, "co": 4.0},
    "II": {"pm25": 75.0, "pm10": 150.0, "so2": 150.0, "no2": 80.0, "co": 4.0},
}
HOURLY_LIMITS_2012: Mapping[str, Mapping[str, float]] = {
    "I": {"so2": 150.0, "no2": 200.0, "co": 10.0, "o3": 160.0},
    "II": {"so2": 500.0, "no2": 200.0, "co": 10.0, "o3": 200.0},
}
#: GB 3095-2012 表1 O3 daily maximum 8-h limit of grade I (grade II: 160).
O3_8H_LIMIT_GRADE_I = 100.0
#: The ambient rule (alerts/rules.py DEFAULT_RULES, docs/alerts.md §2): fires at once above the
#: limit, clears at ≤ 0.9 × limit (clear margin 10 %), one escalation 60 min after firing.
CLEAR_SHARE = 0.9
ESCALATE_AFTER = timedelta(minutes=60)
#: Flapping needs a weighted share ≥ 0.5 of condition changes over the last 21 observations
#: (weights 0.8 … 1.2, total 21): at most 8 changes can never reach it (8 × 1.2 / 21 = 0.46).
MAX_CHANGES_WITHOUT_FLAPPING = 8


def grades() -> dict[str, str]:
    """Air station → GB 3095 area grade from the catalogue (grade II unless it says I)."""
    return {
        s.source: ("I" if s.area_grade == "I" else "II")
        for s in catalogue_specs()
        if s.kind.value == "air"
    }


def day_of(label: datetime) -> datetime:
    """00:00 Beijing of the natural day an hourly label belongs to (label 00:00: the day before)."""
    local = (label - timedelta(seconds=1)).astimezone(BEIJING)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def daily_means(
    hours: Mapping[datetime, Mapping[str, float]], end: datetime
) -> dict[datetime, dict[str, float]]:
    """Day start → factor → mean of the day's hourly values, for every natural day the run
    completes (its last label, D+1 00:00, is ≤ ``end``) with ≥ 20 values (GB 3095 表4)."""
    by_day: dict[datetime, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for label, values in hours.items():
        for f, v in values.items():
            by_day[day_of(label)][f].append(v)
    return {
        d: {f: sum(vs) / len(vs) for f, vs in fs.items() if len(vs) >= 20}
        for d, fs in sorted(by_day.items())
        if d + DAY <= end
    }


def daily_ambient_story(
    deliveries: Sequence[Delivery], end: datetime, *, scripted: Iterable[tuple[str, str]] = ()
) -> list[Told]:
    """The daily ambient-exceedance alerts of every (station, factor) not in ``scripted``.

    Per station, factor and natural day: the mean of the day's hourly values against the 24-h
    limit of the station's grade — firing (stamped the day's 00:00, like the daily verdict) when
    above, escalated 60 min later, resolved on the first later day at ≤ 90 % of the limit; a
    day in between holds. Premises, asserted here so that a change of the simulator fails
    loudly instead of silently changing the story:

    * no hourly SO2/NO2/CO/O3 value above its GB 3095-2012 1-h limit (no hourly alert);
    * every hourly O3 value ≤ 100 µg/m³, so every 8-h mean is within the grade I limit 100 (and
      grade II's 160): no O3 8-h alert (winter: O3 is low);
    * no daily mean within 0.01 of a limit or of its clear threshold (the arithmetic of this
      oracle and the pipeline's cannot disagree on a side);
    * at most :data:`MAX_CHANGES_WITHOUT_FLAPPING` condition changes per alert (no flapping).
    """
    skip = set(scripted)
    grade = grades()
    story: list[Told] = []
    for source, hours in sorted(hourly_values(deliveries).items()):
        g = grade[source]
        for label, values in hours.items():
            for f, limit in HOURLY_LIMITS_2012[g].items():
                v = values.get(f)
                assert v is None or v <= limit, f"premise: {source} {f} {v} > 1-h {limit} {label}"
            o3 = values.get("o3")
            assert o3 is None or o3 <= O3_8H_LIMIT_GRADE_I, f"premise: {source} O3 {o3} {label}"
        days = daily_means(hours, end)
        for f, limit in DAILY_LIMITS_2012[g].items():
            if (source, f) in skip:
                continue
            firing = False
            changes = 0
            last: bool | None = None
            for day, means in days.items():
                mean = means.get(f)
                if mean is None:
                    continue
                for edge in (limit, CLEAR_SHARE * limit):
                    assert abs(mean - edge) > 0.01, f"premise: {source} {f} {day} {mean} ~ {edge}"
                breach = mean > limit
                clear = mean <= CLEAR_SHARE * limit
                if breach or clear:
                    changes += last is not None and last != breach
                    last = breach
                if breach and not firing:
                    firing = True
                    story.append(fired("ambient-exceedance", source, f, "24h", day))
                    story.append(
                        escalated("ambient-exceedance", source, f, "24h", day + ESCALATE_AFTER)
                    )
                elif clear and firing:
                    firing = False
                    story.append(resolved("ambient-exceedance", source, f, "24h", day))
            assert changes <= MAX_CHANGES_WITHOUT_FLAPPING, f"premise: {source} {f} flaps"
    return story


def still_firing(story: Iterable[Told]) -> set[tuple[str, str, str, str]]:
    """(rule, source, factor, period) of the alerts a story leaves firing at its end."""
    state: dict[tuple[str, str, str, str], str] = {}
    for t in sorted(story):
        state[(t.rule, t.source, t.factor, t.period)] = t.state
    return {k for k, s in state.items() if s == "firing"}


# =============================================================================== receivers


class Receivers:
    """Webhook endpoints ``/<receiver name>``, each verifying its own secret (401 otherwise),
    deduplicating on ``Idempotency-Key`` and keeping the first body of every key.

    A request whose body ends before its ``Content-Length`` was torn by a sender killed in the
    middle of it (kill -9): it is refused (400) and kept in ``torn``, not counted as a bad
    signature; the sender never saw a 2xx, so the key must arrive again in full."""

    def __init__(self, names: Iterable[str]) -> None:
        self.secrets = {n: f"story-secret-of-{n}" for n in names}
        self.accepted: dict[str, tuple[str, dict[str, Any]]] = {}
        self.raw: Counter[str] = Counter()
        self.bad: list[str] = []
        self.torn: list[str] = []
        self._lock = threading.Lock()
        receivers = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receivers._handle(self)

            def log_message(self, *_: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length", "0"))
        body = h.rfile.read(length)
        name = h.path.strip("/")
        key = h.headers.get(IDEMPOTENCY_HEADER, "")
        if len(body) < length:
            with self._lock:
                self.torn.append(f"{name} {key}")
            h.send_response(400)
            h.end_headers()
            return
        secret = self.secrets.get(name)
        ok = secret is not None and verify_signature(
            secret,
            h.headers.get(TIMESTAMP_HEADER, ""),
            body,
            h.headers.get(SIGNATURE_HEADER, ""),
            now=datetime.now(UTC),
        )
        with self._lock:
            if not ok:
                self.bad.append(f"{name} {key}")
            else:
                self.raw[key] += 1
                if key not in self.accepted:
                    self.accepted[key] = (name, orjson.loads(body))
        h.send_response(204 if ok else 401)
        h.end_headers()

    def webhooks(self) -> dict[str, WebhookSettings]:
        return {
            n: WebhookSettings(url=f"{self.url}/{n}", secret=SecretStr(s))
            for n, s in self.secrets.items()
        }

    def __enter__(self) -> Receivers:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class Delivered(NamedTuple):
    """One notification a receiver accepted: who, and the transition it tells of."""

    receiver: str
    kind: str  # alert | warning | warning_duty
    fingerprint: str
    state: str
    reason: str
    at: datetime
    locality: str
    enterprise: str  # the alert's enterprise label ("" when none)
    path_matches: bool  # the body names the receiver it was posted to


def delivered(receivers: Receivers) -> list[Delivered]:
    """One entry per transition told: a grouped notification (docs/routing.md §2: reason
    ``grouped`` or ``repeat``) counts once for each transition its ``told`` annotation lists."""
    out = []
    for path, body in receivers.accepted.values():
        ew = body["envwatch"]
        labels = body["alerts"][0]["labels"]
        if ew["reason"] in ("grouped", "repeat"):
            told = orjson.loads(body["commonAnnotations"].get("told", "[]"))
            out += [
                Delivered(
                    receiver=path,
                    kind=ew["kind"],
                    fingerprint=t["fingerprint"],
                    state=t["state"],
                    reason=t["reason"],
                    at=datetime.fromisoformat(t["at"]),
                    locality=ew["locality"],
                    enterprise=labels.get("enterprise", ""),
                    path_matches=body["receiver"] == path,
                )
                for t in told
            ]
            continue
        out.append(
            Delivered(
                receiver=path,
                kind=ew["kind"],
                fingerprint=body["alerts"][0]["fingerprint"],
                state=ew["state"],
                reason=ew["reason"],
                at=datetime.fromisoformat(ew["at"].replace("Z", "+00:00")),
                locality=ew["locality"],
                enterprise=labels.get("enterprise", ""),
                path_matches=body["receiver"] == path,
            )
        )
    return out


# =============================================================================== the store


class TeeWriter:
    """Writes a batch to VictoriaMetrics and, once it was accepted, appends its ``reading``,
    ``alert`` and ``warning`` lines to ``path`` (see the module docstring for why)."""

    def __init__(self, inner: InfluxWriter, path: Path) -> None:
        self.inner = inner
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8")

    def write(self, lines: Sequence[str]) -> None:
        self.inner.write(lines)  # raises when not accepted: the sink spools and retries
        kept = [ln for ln in lines if ln.startswith(KEPT) and ln.split(",", 1)[0] in KEPT]
        if kept:
            self._file.write("\n".join(kept) + "\n")
            self._file.flush()

    def close(self) -> None:
        self._file.close()
        self.inner.close()


class StoryLabel(httpx.HTTPTransport):
    """The project's :class:`InfluxWriter` as is, with VictoriaMetrics' ``extra_label`` query
    argument added to every write: each story's points carry ``story=<run>``, so stories that
    share the session's VictoriaMetrics (same sources, same January 2026 timestamps) stay apart.
    (VictoriaMetrics 1.79 does not turn the InfluxDB v2 ``bucket`` into a label.)"""

    def __init__(self, story: str) -> None:
        super().__init__()
        self.story = story

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_add_param("extra_label", f"story={self.story}")
        return super().handle_request(request)


class LpPoint(NamedTuple):
    measurement: str
    tags: dict[str, str]
    fields: str
    ns: int


def read_lp(path: Path, measurement: str) -> list[LpPoint]:
    """The points of one measurement in a line-protocol file (tags parsed; envwatch's tag
    values never contain escaped commas or spaces)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        series, _, rest = line.partition(" ")
        head = series.split(",")
        if head[0] != measurement:
            continue
        fields, _, stamp = rest.rpartition(" ")
        tags = dict(pair.split("=", 1) for pair in head[1:])
        out.append(LpPoint(head[0], tags, fields, int(stamp)))
    return out


def vm_alert_samples(vm: Victoria, story: str) -> Counter[tuple[tuple[str, str], ...]]:
    """VictoriaMetrics' ``alert_notify`` samples of one story: (sorted labels + ts) → count
    of writes (VictoriaMetrics keeps every write of a series at one timestamp)."""
    out: Counter[tuple[tuple[str, str], ...]] = Counter()
    for s in vm.export(f'{{__name__="alert_notify",story="{story}"}}'):
        metric = {str(k): str(v) for k, v in dict(s["metric"]).items()}  # type: ignore[call-overload]
        metric.pop("__name__", None)
        metric.pop("story", None)
        for ts in s["timestamps"]:  # type: ignore[attr-defined]
            out[(*sorted(metric.items()), ("ms", str(int(ts))))] += 1
    return out


def vm_max(vm: Victoria, story: str, name: str, **labels: str) -> float | None:
    """The largest value VictoriaMetrics holds for one series name of a story (a point
    re-emitted with growing counts, such as a day's data quality, keeps every write)."""
    match = ",".join(
        [f'__name__="{name}"', f'story="{story}"', *(f'{k}="{v}"' for k, v in labels.items())]
    )
    values = [float(v) for s in vm.export("{" + match + "}") for v in s["values"]]  # type: ignore[attr-defined]
    return max(values, default=None)


# =============================================================================== the live run


@dataclass
class LiveRun:
    name: str
    published: int
    wall_seconds: float
    #: every transition the notify stage logged (alerts.jsonl), in order
    transitions: list[dict[str, Any]]
    receivers: Receivers
    stored: Path  # the tee's line protocol (directory holding stored.lp)
    story: str  # the VictoriaMetrics label story=… of this run's points
    dead_letters: int
    outbox: dict[str, int] = field(default_factory=dict)

    @property
    def alerts(self) -> list[dict[str, Any]]:
        return [t for t in self.transitions if t["kind"] == "alert"]

    @property
    def warnings(self) -> list[dict[str, Any]]:
        return [t for t in self.transitions if t["kind"] == "warning"]

    @property
    def duties(self) -> list[dict[str, Any]]:
        """Enterprises told their duties under a warning change (``warning_duty``)."""
        return [t for t in self.transitions if t["kind"] == "warning_duty"]


_runs = itertools.count()


async def _settle(rt: Runtime, published: int, seen: Counter[str], within: float) -> None:
    """Until the worker evaluated every published sample, then until nothing moves for 3 s:
    aggregates, stored points, transitions, and no notification pending in the outbox or
    waiting in a group."""
    p = rt.pipeline
    assert p is not None
    deadline = time.monotonic() + within
    while p.counters["samples"] < published:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"the worker evaluated {p.counters['samples']} of {published} samples "
                f"within {within:.0f} s"
            )
        await asyncio.sleep(0.2)
    outbox = p.states.get("outbox")
    grouping = p.states.get("notify_grouping")  # groups waiting to be told (docs/routing.md)

    def snapshot() -> tuple[int, ...]:
        pending = 0 if outbox is None else outbox.counts()[RowState.PENDING]
        pending += 0 if grouping is None else grouping.waiting()
        return (p.counters["aggregates"], seen["stored"], seen["transitions"], pending)

    last, since = snapshot(), time.monotonic()
    while True:
        await asyncio.sleep(0.3)
        now = snapshot()
        if now != last:
            last, since = now, time.monotonic()
        elif now[3] == 0 and time.monotonic() - since >= 3.0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the pipeline did not settle within {within:.0f} s: {now}")


async def _publish(mqtt: MqttBroker, deliveries: Sequence[Delivery], client_id: str) -> int:
    """QoS 1, as fast as the broker acknowledges (window 200); returns when all are acked."""

    def run() -> int:
        sink = MqttSink(mqtt.host, mqtt.port, client_id=client_id, window=200)
        try:
            stats = play(deliveries, sink, start=deliveries[0].at, speed=0)
        finally:
            sink.close()
        return stats.sent

    return await asyncio.to_thread(run)


def run_live(
    name: str,
    deliveries: Sequence[Delivery],
    mqtt: MqttBroker,
    kafka: KafkaBroker,
    vm: Victoria,
    tmp: Path,
    *,
    within: float = 240.0,
) -> LiveRun:
    """Play ``deliveries`` through the live pipeline and wait until it settled."""
    prefix = f"story{next(_runs)}-{name}-"
    story = f"{name}-{time.time_ns()}"
    stored = tmp / "stored"
    settings = Settings(
        kafka=kafka.url,
        app_id=f"{prefix}app",
        topic_prefix=prefix,
        partitions=1,  # one input partition: the worker sees the delivery order
        session_timeout=6,
        rebalance_timeout=6,
        heartbeat_interval=1,
        mqtt_host=mqtt.host,
        mqtt_port=mqtt.port,
        mqtt_client_id=f"{prefix}bridge",
        mqtt_share_group=None,
        mqtt_topic="env/#",
        mqtt_session_expiry=0,  # nothing queues for this bridge after the test
        data_dir=tmp / "faust",
        spool_dir=tmp / "spool",
        sink_flush_interval=0.2,
        config_dir=CATALOGUE,
        outbox_path=tmp / "outbox.db",
        alerts_log=tmp / "alerts.jsonl",
        # the stories are dated January 2026: accept them however long after that the test runs
        max_past_days=365 * 100,
        influx_url=vm.url,
    )
    influx = InfluxWriter(vm.url, token=None, transport=StoryLabel(story))
    writer = TeeWriter(influx, stored / "stored.lp")
    sink = Sink(writer=writer, spool=Spool(settings.spool_dir))
    names = [r.name for r in receivers_from_catalog(CatalogView(CATALOGUE).catalog)]
    seen: Counter[str] = Counter()

    async def scenario(receivers: Receivers) -> tuple[int, int, dict[str, int]]:
        alerts = AlertsSettings(outbox_path=settings.outbox_path, webhooks=receivers.webhooks())
        async with Runtime(settings, sink=sink, alerts_settings=alerts) as rt:
            assert rt.pipeline is not None
            rt.pipeline.observers.append(lambda _e: seen.update(["stored"]))
            rt.pipeline.transition_observers.append(lambda _t: seen.update(["transitions"]))
            sent = await _publish(mqtt, deliveries, f"{prefix}simulator")
            await _settle(rt, sent, seen, within)
            outbox = rt.pipeline.states["outbox"].counts()
            return (
                sent,
                rt.pipeline.counters["dead_letters"],
                {k.value: v for k, v in outbox.items()},
            )

    started = time.monotonic()
    with Receivers(names) as receivers:
        sent, dead, outbox = asyncio.run(scenario(receivers))
    wall = time.monotonic() - started
    log = settings.alerts_log
    assert log is not None
    records = [orjson.loads(line) for line in log.read_bytes().splitlines()] if log.exists() else []
    # the transition as the worker built it, with its own decision whether to notify
    transitions = [{**r["transition"], "notify": r["notify"]} for r in records]
    return LiveRun(name, sent, wall, transitions, receivers, stored, story, dead, outbox)


# =============================================================================== checks


def expected_receivers(t: Mapping[str, Any]) -> set[str]:
    """docs/notifications.md §2, written out: the duty officer of the locality gets every alert
    and warning of it; an enterprise only alerts labelled with its own id, escalations excepted;
    emergency responders the warnings and water emergencies of their locality."""
    loc = t["locality"]
    if t["kind"] == "warning":
        return {f"duty-{loc}", f"emergency-{loc}"}
    if t["kind"] == "warning_duty":
        # an enterprise's own duties under the warning: that enterprise alone
        return {f"enterprise-{t['labels']['enterprise']}"}
    if t["reason"] == "escalated":
        # docs/routing.md §3: to the rule's escalation chain — the duty officer for the shipped
        # rules, which name none — never to an enterprise (issue 14)
        return {f"duty-{loc}"}
    out = {f"duty-{loc}"}
    enterprise = t["labels"].get("enterprise")
    if enterprise:
        out.add(f"enterprise-{enterprise}")
    if t["labels"].get("category") == "water_emergency":
        # water emergencies (sudden change, much worse than upstream): responders too (issue 15)
        out.add(f"emergency-{loc}")
    return out


def check_receivers(run: LiveRun) -> None:
    """Every notified transition reached exactly its receivers, each once, signed with the
    receiver's own secret; nobody got anything that is not theirs."""
    r = run.receivers
    assert r.bad == [], f"signatures that did not verify: {r.bad[:5]}"
    got = delivered(r)
    assert all(d.path_matches for d in got), "a body names another receiver than its endpoint"
    water = {
        t["fingerprint"]
        for t in run.transitions
        if t["kind"] == "alert" and t["labels"].get("category") == "water_emergency"
    }
    for d in got:
        if d.receiver.startswith("enterprise-"):
            assert d.kind in ("alert", "warning_duty"), f"{d.receiver} got a warning: {d}"
            assert d.receiver == f"enterprise-{d.enterprise}", f"not its own: {d}"
        elif d.receiver.startswith("emergency-"):
            assert d.kind == "warning" or d.fingerprint in water, f"{d.receiver} got an alert: {d}"
            assert d.receiver == f"emergency-{d.locality}", f"not its locality: {d}"
        else:
            assert d.receiver == f"duty-{d.locality}", f"not its locality: {d}"
    want = Counter(
        (name, t["fingerprint"], t["state"], t["reason"], datetime.fromisoformat(t["at"]))
        for t in run.transitions
        if t["notify"]
        for name in expected_receivers(t)
    )
    have = Counter((d.receiver, d.fingerprint, d.state, d.reason, d.at) for d in got)
    assert have == want, (
        f"missing {sorted(set(want) - set(have))[:5]}, extra {sorted(set(have) - set(want))[:5]}"
    )
    assert (run.outbox.get("pending", 0), run.outbox.get("dead", 0)) == (0, 0), run.outbox


def _notify(t: Mapping[str, Any]) -> bool:
    """docs/alerts.md §1: notified unless suppressed, when firing or resolving a told firing."""
    if t["kind"] in ("warning", "warning_duty"):
        return True
    if t["suppressed"]:
        return False
    return bool(t["state"] == "firing" or t["previous_state"] == "firing")


def notified(run: LiveRun) -> list[dict[str, Any]]:
    """The transitions people were told of; the worker's decision agrees with docs/alerts.md §1."""
    for t in run.transitions:
        assert t["notify"] == _notify(t), f"notify {t['notify']} for {told_of(t)!r}"
    return [t for t in run.transitions if t["notify"]]


def per_hour(run: LiveRun) -> tuple[Counter[datetime], Counter[tuple[str, datetime]]]:
    """Notifications (webhook deliveries) per event hour, and notified transitions per alert
    and event hour."""
    hours: Counter[datetime] = Counter()
    for d in delivered(run.receivers):
        hours[d.at.replace(minute=0, second=0, microsecond=0)] += 1
    per_alert: Counter[tuple[str, datetime]] = Counter()
    for t in notified(run):
        at = datetime.fromisoformat(t["at"]).replace(minute=0, second=0, microsecond=0)
        per_alert[(t["fingerprint"], at)] += 1
    return hours, per_alert


def check_no_storm(run: LiveRun, bound: int) -> None:
    """At most ``bound`` notifications per hour of event time, and at most 2 notified
    transitions of one alert in one hour (e.g. escalated and severity lowered at the same
    instant; firing and its escalation are 60 min apart)."""
    hours, per_alert = per_hour(run)
    worst = max(hours.values(), default=0)
    assert worst <= bound, (
        f"{worst} notifications in one event hour (bound {bound}): {hours.most_common(3)}"
    )
    assert max(per_alert.values(), default=0) <= 2, per_alert.most_common(3)


def check_readings_stored(run: LiveRun, deliveries: Sequence[Delivery]) -> None:
    """The store holds a ``reading`` point for every published sample (one series per source,
    at the sample's time), and nothing else (the maintenance story once lost a batch here)."""
    stored = {(p.tags["source"], p.ns) for p in read_lp(run.stored / "stored.lp", "reading")}
    published = {(d.sample.source, round(d.sample.time.timestamp() * 1e9)) for d in deliveries}
    if stored != published:

        def show(keys: set[tuple[str, int]]) -> list[str]:
            return [
                f"{s} {datetime.fromtimestamp(ns / 1e9, BEIJING):%m-%d %H:%M}"
                for s, ns in sorted(keys, key=lambda k: (k[1], k[0]))[:5]
            ]

        raise StoryDiscrepancy(
            f"{len(published - stored)} published samples have no stored reading (first: "
            f"{show(published - stored)}), {len(stored - published)} stored readings were not "
            f"published ({show(stored - published)})"
        )


def check_store(run: LiveRun, vm: Victoria) -> None:
    """One ``alert`` point per alert transition, its series told apart by the tags rule,
    source, factor and period (with state and level): no two transitions share a series and a
    timestamp. In the line protocol the store received (every transition; warnings too), and in
    VictoriaMetrics for every transition: each ``alert`` point carries the numeric ``notify``
    field (VictoriaMetrics drops a point whose fields are all strings — an offline alert's id,
    reason and summary — which InfluxDB keeps), so ``alert_notify`` has one sample per
    transition, 1 where people were told."""
    lp = read_lp(run.stored / "stored.lp", "alert")
    assert len(lp) == len(run.alerts), (len(lp), len(run.alerts))
    warnings = read_lp(run.stored / "stored.lp", "warning")
    assert len(warnings) == len(run.warnings), (len(warnings), len(run.warnings))

    def key(tags: Mapping[str, str], ns: int) -> tuple[tuple[str, str], ...]:
        return (*sorted(tags.items()), ("ms", str(ns // 1_000_000)))

    series = Counter(key(p.tags, p.ns) for p in lp)
    assert max(series.values(), default=1) == 1, series.most_common(2)
    want: Counter[tuple[tuple[str, str], ...]] = Counter()
    for t in run.alerts:
        labels = t["labels"]
        tags = {
            "kind": "alert",
            "locality": t["locality"],
            "source": t["source"],
            "rule": labels.get("rule", ""),
            "factor": labels.get("factor", "") or "none",
            "period": labels.get("period", "") or "none",
            "level": t["severity"],
            "state": t["state"],
        }
        ns = round(datetime.fromisoformat(t["at"]).timestamp() * 1e9)
        assert key(tags, ns) in series, f"no alert point for {told_of(t)!r}"
        want[key(tags, ns)] += 1
    deadline = time.monotonic() + 30
    while (got := vm_alert_samples(vm, run.story)) != want and time.monotonic() < deadline:
        time.sleep(0.5)
    assert got == want, (
        f"VictoriaMetrics: missing {sorted(set(want) - set(got))[:3]}, "
        f"extra {sorted(set(got) - set(want))[:3]}, written twice "
        f"{[k for k, n in got.items() if n > 1][:3]}"
    )


def backtest(run: LiveRun) -> list[dict[str, Any]]:
    """``envwatch backtest STORED --json --all`` on the stored readings (typer's CliRunner on
    the real command)."""
    from streams.cli._app import app

    result = CliRunner().invoke(
        app, ["backtest", str(run.stored), "--json", "--all", "--config", str(CATALOGUE)]
    )
    assert result.exit_code == 0, result.output[-2000:]
    return [orjson.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def check_backtest(run: LiveRun) -> None:
    """The replay of the stored readings tells the same story: identical transition ids."""
    replayed = backtest(run)
    live = Counter(t["id"] for t in run.transitions)
    again = Counter(r["id"] for r in replayed)
    by_id = {t["id"]: t for t in [*run.transitions, *replayed]}
    assert again == live, (
        f"live only: {[told_of(by_id[i]) for i in (live - again)][:5]}, "
        f"backtest only: {[told_of(by_id[i]) for i in (again - live)][:5]}"
    )
