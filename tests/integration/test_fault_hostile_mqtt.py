"""Fault matrix, hostile MQTT corpus (issue 13): forged and impossible samples through
the real pipeline change no statistic, and each is dead-lettered with its reason.

Real services: mosquitto → ``ingest.bridge`` → Tansu (**4 partitions**, the default) → in-process
worker (:class:`streams.runtime.Runtime`, every stage) → VictoriaMetrics, with a local verifying
webhook receiver per catalogue receiver (story_support). The valid data is the reference
catalogue's simulated base network (deploy/config, seed 0) for the first 6 hours of 2026-01-05
Beijing: city AQI every hour for five localities, the water sections' first samples at 04:00
(five are simulated worse than their target class, so ``water-class-target`` fires).

The pipeline runs twice on the same brokers (separate topic prefixes, VictoriaMetrics labels):
the valid samples alone, then the same samples in the same order with the hostile corpus
interleaved. The corpus, each item with the dead letter it must give (stage, reason code):

* ``aq-wf-01`` (a Weifang station) published under Laixi with PM2.5 500 at 03:00 and 04:00 →
  2 × evaluate ``wrong locality`` (accepted, it would set Laixi's city AQI to ≥ 400);
* ``aq-wf-01`` under the invented locality ``atlantis`` → evaluate ``wrong locality``;
* the invented ``aq-at-01`` under ``atlantis`` and the invented ``aq-wf-99`` under Weifang →
  2 × evaluate ``unknown source``;
* water values (COD 80, NH3-N 9: 劣V) on the air station ``aq-wf-02`` → evaluate ``wrong kind``;
* PM2.5 1.7e308 on aq-wf-01, CO 1e12 on aq-wf-02, SO2 −5 (a negative concentration) on
  aq-wf-03, each alone in its sample → 3 × evaluate ``out of range``;
* SO2 on aq-lx-03 (its catalogue entry measures PM2.5, PM10 and O3 only) and COD on the gas
  outlet e-wf-01-g1 → 2 × evaluate ``foreign factor``;
* an AQI forecast of 450 for ``atlantis`` → evaluate ``unknown locality``;
* PM2.5 ``NaN``, ``Infinity`` and ``1e400`` (JSON has no such numbers; Python's json writes the
  first two) → 3 × bridge ``invalid sample … value must be a finite number``.

Expected: 12 evaluate and 3 bridge dead letters, each stored as a ``dead_letter`` point with its
reason (the deadletter stage); and every statistic identical to the run without the corpus —
the final value of every stored point (readings, city AQI, aggregates, exceedances, water
classes, emission hours, data quality, alerts, warnings; keyed by measurement, tags and time),
the alert transitions by id, and the notifications each receiver got. The baseline itself has
no dead letter.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from alerts.settings import AlertsSettings
from ingest.publisher import Publisher
from ingest.schemas import topic_for
from rules import plausibility as pl
from streams.catalog import CatalogView, receivers_from_catalog
from streams.embedded import KafkaBroker, MqttBroker, Victoria
from streams.runtime import Runtime
from streams.settings import Settings
from streams.sink import InfluxWriter, Sink, Spool
from tests.integration.story_support import (
    CATALOGUE,
    Receivers,
    StoryLabel,
    _settle,
    delivered,
    published,
)

pytestmark = [pytest.mark.integration, pytest.mark.fault_matrix, pytest.mark.timeout(240)]

BEIJING = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 1, 5, tzinfo=BEIJING)
HOURS = 6
H = timedelta(hours=1)
PARTITIONS = 4

Item = tuple[str, bytes]  # (MQTT topic, payload)


def payload(kind: str, locality: str, source: str, at: datetime, values: dict[str, Any]) -> Item:
    body = {
        "schema": 1,
        "kind": kind,
        "locality": locality,
        "source": source,
        "time": at.isoformat(),
        "interval": "day" if kind == "forecast" else "hour",
        "values": {f: {"value": v, "flag": "N"} for f, v in values.items()},
    }
    return f"env/{kind}/{locality}/{source}", orjson.dumps(body)


def raw_number(token: str, at: datetime) -> Item:
    """A sample whose PM2.5 is a bare JSON token (NaN, Infinity, 1e400)."""
    body = (
        '{"schema":1,"kind":"air","locality":"weifang","source":"aq-wf-01",'
        f'"time":"{at.isoformat()}","interval":"hour",'
        f'"values":{{"pm25":{{"value":{token},"flag":"N"}}}}}}'
    )
    return "env/air/weifang/aq-wf-01", body.encode()


AIR = {"pm25": 500.0, "pm10": 600.0, "so2": 20.0, "no2": 60.0, "co": 2.0, "o3": 40.0}


def corpus() -> list[tuple[Item, str, str]]:
    """(item, stage, reason code or text) — the module docstring's list."""
    t3, t4, t5 = START + 3 * H, START + 4 * H, START + 5 * H
    bridge = (
        "invalid sample: values.pm25.value: Value error, value must be a finite number (1 error(s))"
    )
    return [
        (payload("air", "laixi", "aq-wf-01", t3, AIR), "evaluate", pl.WRONG_LOCALITY),
        (payload("air", "laixi", "aq-wf-01", t4, AIR), "evaluate", pl.WRONG_LOCALITY),
        (payload("air", "atlantis", "aq-wf-01", t3, AIR), "evaluate", pl.WRONG_LOCALITY),
        (payload("air", "atlantis", "aq-at-01", t3, AIR), "evaluate", pl.UNKNOWN_SOURCE),
        (payload("air", "weifang", "aq-wf-99", t3, AIR), "evaluate", pl.UNKNOWN_SOURCE),
        (
            payload("water", "weifang", "aq-wf-02", t4, {"cod": 80.0, "nh3n": 9.0}),
            "evaluate",
            pl.WRONG_KIND,
        ),
        (payload("air", "weifang", "aq-wf-01", t5, {"pm25": 1.7e308}), "evaluate", pl.OUT_OF_RANGE),
        (payload("air", "weifang", "aq-wf-02", t5, {"co": 1e12}), "evaluate", pl.OUT_OF_RANGE),
        (payload("air", "weifang", "aq-wf-03", t5, {"so2": -5.0}), "evaluate", pl.OUT_OF_RANGE),
        (payload("air", "laixi", "aq-lx-03", t5, {"so2": 9.0}), "evaluate", pl.FOREIGN_FACTOR),
        (
            payload("emission", "weifang", "e-wf-01-g1", t5, {"cod": 500.0}),
            "evaluate",
            pl.FOREIGN_FACTOR,
        ),
        (
            payload("forecast", "atlantis", "fc-atlantis", START + 72 * H, {"aqi": 450.0}),
            "evaluate",
            pl.UNKNOWN_LOCALITY,
        ),
        (raw_number("NaN", t4), "bridge", bridge),
        (raw_number("Infinity", t4), "bridge", bridge),
        (raw_number("1e400", t4), "bridge", bridge),
    ]


class AllTee:
    """Writes a batch to VictoriaMetrics and, once accepted, keeps every line in ``lines``."""

    def __init__(self, inner: InfluxWriter) -> None:
        self.inner = inner
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def write(self, lines: Sequence[str]) -> None:
        self.inner.write(lines)
        with self._lock:
            self.lines.extend(lines)

    def close(self) -> None:
        self.inner.close()


@dataclass
class Result:
    lines: list[str]
    transitions: list[dict[str, Any]]
    notified: Counter[tuple[str, str, str, str]]
    wall: float


_LINE = re.compile(r"^(?P<series>(?:[^ \\]|\\.)+) (?P<fields>.*) (?P<ns>\d+)$")
_REASON = re.compile(r'reason="((?:[^"\\]|\\.)*)"')


def final_points(lines: Sequence[str]) -> dict[tuple[str, int], str]:
    """(series, ns) → fields of the last write: what the store ends up holding. Left out: the
    dead letters (compared apart) and pipeline_health (stamped with the wall clock)."""
    out: dict[tuple[str, int], str] = {}
    for line in lines:
        m = _LINE.match(line)
        assert m is not None, line
        series = m["series"]
        if series.startswith(("dead_letter,", "pipeline_health,")):
            continue
        out[(series, int(m["ns"]))] = m["fields"]
    return out


def dead_letters(lines: Sequence[str]) -> Counter[tuple[str, str]]:
    """(stage, reason code — or the reason itself when it has none) of each dead_letter point."""
    out: Counter[tuple[str, str]] = Counter()
    for line in lines:
        if not line.startswith("dead_letter,"):
            continue
        stage = re.search(r"stage=([^, ]+)", line)
        reason = _REASON.search(line)
        assert stage is not None, line
        assert reason is not None, line
        text = reason[1].replace('\\"', '"').replace("\\\\", "\\")
        out[(stage[1], pl.code_of(text) or text)] += 1
    return out


def publish(mqtt: MqttBroker, items: Sequence[Item], client_id: str) -> None:
    pub = Publisher(mqtt.host, mqtt.port, client_id=client_id, inflight=200)
    try:
        for topic, body in items:
            pub.publish_raw(topic, body)
    finally:
        pub.close(60)


def run(
    name: str,
    items: Sequence[Item],
    evaluated: int,
    dead: int,
    services: tuple[MqttBroker, KafkaBroker, Victoria],
    tmp: Path,
) -> Result:
    """Publish ``items`` through the live pipeline; settled when the worker evaluated
    ``evaluated`` records, ``dead`` dead-letter points are stored and nothing moved for 3 s."""
    mqtt, kafka, vm = services
    prefix = f"hostile-{name}-{time.time_ns()}-"
    tmp.mkdir(parents=True, exist_ok=True)
    settings = Settings(
        kafka=kafka.url,
        app_id=f"{prefix}app",
        topic_prefix=prefix,
        partitions=PARTITIONS,
        session_timeout=6,
        rebalance_timeout=6,
        heartbeat_interval=1,
        mqtt_host=mqtt.host,
        mqtt_port=mqtt.port,
        mqtt_client_id=f"{prefix}bridge",
        mqtt_share_group=None,
        mqtt_topic="env/#",
        mqtt_session_expiry=0,
        data_dir=tmp / "faust",
        spool_dir=tmp / "spool",
        sink_flush_interval=0.2,
        config_dir=CATALOGUE,
        outbox_path=tmp / "outbox.db",
        alerts_log=tmp / "alerts.jsonl",
        max_past_days=365 * 100,  # January 2026 data, whenever the test runs
        influx_url=vm.url,
    )
    tee = AllTee(InfluxWriter(vm.url, token=None, transport=StoryLabel(prefix)))
    sink = Sink(writer=tee, spool=Spool(settings.spool_dir))
    names = [r.name for r in receivers_from_catalog(CatalogView(CATALOGUE).catalog)]
    seen: Counter[str] = Counter()

    async def scenario(receivers: Receivers) -> None:
        alerts = AlertsSettings(outbox_path=settings.outbox_path, webhooks=receivers.webhooks())
        async with Runtime(settings, sink=sink, alerts_settings=alerts) as rt:
            assert rt.pipeline is not None
            rt.pipeline.observers.append(lambda _e: seen.update(["stored"]))
            rt.pipeline.transition_observers.append(lambda _t: seen.update(["transitions"]))
            await asyncio.to_thread(publish, mqtt, items, f"{prefix}publisher")
            await _settle(rt, evaluated, seen, 120)
            deadline = time.monotonic() + 30
            while sum(dead_letters(tee.lines).values()) < dead:
                assert time.monotonic() < deadline, dead_letters(tee.lines)
                await asyncio.sleep(0.3)
            assert rt.pipeline.counters["samples"] == evaluated

    started = time.monotonic()
    with Receivers(names) as receivers:
        asyncio.run(scenario(receivers))
        notified = Counter(
            (d.receiver, d.fingerprint, d.state, d.at.isoformat()) for d in delivered(receivers)
        )
    wall = time.monotonic() - started
    log = settings.alerts_log
    assert log is not None
    records = [orjson.loads(x) for x in log.read_bytes().splitlines()] if log.exists() else []
    return Result(list(tee.lines), [r["transition"] for r in records], notified, wall)


def test_a_hostile_corpus_is_dead_lettered_and_changes_no_statistic(
    mqtt_broker: MqttBroker, kafka_broker: KafkaBroker, victoria: Victoria, tmp_path: Path
) -> None:
    services = (mqtt_broker, kafka_broker, victoria)
    valid = [
        (topic_for(d.sample), orjson.dumps(d.sample.model_dump(mode="json", by_alias=True)))
        for d in published(None, START, HOURS)
    ]
    bad = corpus()
    # every item interleaved at an even stride among the valid samples
    stride = len(valid) // (len(bad) + 1)
    mixed: list[Item] = []
    queue = list(bad)
    for i, item in enumerate(valid):
        if i and i % stride == 0 and queue:
            mixed.append(queue.pop(0)[0])
        mixed.append(item)
    mixed += [b[0] for b in queue]
    want_dead = Counter((stage, code) for _item, stage, code in bad)
    assert want_dead == {
        ("evaluate", pl.WRONG_LOCALITY): 3,
        ("evaluate", pl.UNKNOWN_SOURCE): 2,
        ("evaluate", pl.WRONG_KIND): 1,
        ("evaluate", pl.OUT_OF_RANGE): 3,
        ("evaluate", pl.FOREIGN_FACTOR): 2,
        ("evaluate", pl.UNKNOWN_LOCALITY): 1,
        (
            "bridge",
            "invalid sample: values.pm25.value: Value error, value must be a finite number (1 error(s))",
        ): 3,
    }
    to_evaluate = sum(1 for _i, stage, _c in bad if stage == "evaluate")

    clean = run("clean", valid, len(valid), 0, services, tmp_path / "clean")
    hostile = run(
        "hostile",
        mixed,
        len(valid) + to_evaluate,
        len(bad),
        services,
        tmp_path / "hostile",
    )
    print(f"wall: clean {clean.wall:.1f} s, hostile {hostile.wall:.1f} s, {len(valid)} samples")

    # every bad item dead-lettered with its reason, through the deadletter stage into the store
    assert dead_letters(clean.lines) == Counter()
    assert dead_letters(hostile.lines) == want_dead

    # there were statistics to forge: city AQI every hour, water-class alerts, notifications
    base = final_points(clean.lines)
    assert (
        sum(
            1
            for s, _ns in base
            if s.startswith("aqi,") and "source=city" in s and "period=hour" in s
        )
        >= 5 * HOURS
    )
    assert any(t["labels"].get("rule") == "water-class-target" for t in clean.transitions)
    assert clean.notified

    # and none changed: every stored point's final value, every transition, every notification
    got = final_points(hostile.lines)
    assert got.keys() == base.keys(), (
        f"only with the corpus: {sorted(got.keys() - base.keys())[:5]}, "
        f"only without: {sorted(base.keys() - got.keys())[:5]}"
    )
    changed = [k for k in base if got[k] != base[k]]
    assert changed == [], [(k, base[k], got[k]) for k in changed[:5]]
    assert Counter(t["id"] for t in hostile.transitions) == Counter(
        t["id"] for t in clean.transitions
    )
    assert hostile.notified == clean.notified
    # nothing stored under the forged identities
    assert not [s for s, _ns in got if "aq-wf-99" in s or "aq-at-01" in s or "atlantis" in s]
