"""The evaluate stage refuses what the catalogue or physics rules out (streams.steps.EvaluateStep
→ rules.plausibility; docs/plausibility.md), through the same pure steps the worker and
``envwatch backtest`` run.

The invariance test feeds a day of valid Weifang and Laixi data (three Weifang stations, two Laixi
stations, a Weifang outlet) through EvaluateStep (2 partitions) → LocalityStep twice: alone, and
with a hostile corpus interleaved. Every output but the dead letters — points, aggregates, city
AQI, alert events — must be byte-identical, the evaluate states (per-source state and partition
clocks) equal, and the dead letters exactly the corpus's, by reason code (written below from the
corpus, item by item).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from alerts.locality import LocalityState
from alerts.rules import default_rules
from rules import plausibility as pl
from streams import topics
from streams.catalog import CatalogView
from streams.steps import EvaluateStep, LocalityStep

BJ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 12, 1, tzinfo=BJ)
H = timedelta(hours=1)
CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "config"


@pytest.fixture(scope="module")
def view() -> CatalogView:
    return CatalogView(CONFIG)


def rec(
    kind: str,
    locality: str,
    source: str,
    at: datetime,
    values: dict[str, Any],
    interval: str = "hour",
) -> bytes:
    return orjson.dumps(
        {
            "kind": kind,
            "locality": locality,
            "source": source,
            "time": at.isoformat(),
            "interval": interval,
            "values": {f: {"value": v, "flag": "N"} for f, v in values.items()},
        }
    )


def air_values(h: int, base: float) -> dict[str, float]:
    return {
        "pm25": base + h,
        "pm10": 2 * base + h,
        "so2": 9.0,
        "no2": 30.0,
        "co": 0.6,
        "o3": 40.0 + h,
    }


def valid_stream() -> list[bytes]:
    out = []
    for h in range(1, 25):
        at = T0 + h * H
        for i, s in enumerate(("aq-wf-01", "aq-wf-02", "aq-wf-03")):
            out.append(rec("air", "weifang", s, at, air_values(h, 60.0 + 5 * i)))
        for i, s in enumerate(("aq-lx-01", "aq-lx-02")):
            out.append(rec("air", "laixi", s, at, air_values(h, 30.0 + 5 * i)))
        # e-wf-01-g1 (weifang.yaml, gas): NOx above its permit limit for the afternoon
        nox = 400.0 if 13 <= h <= 16 else 80.0
        out.append(
            rec(
                "emission",
                "weifang",
                "e-wf-01-g1",
                at,
                {"so2": 20.0, "nox": nox, "pm": 5.0, "o2": 9.0, "flow": 1e5},
            )
        )
    return out


def corpus() -> list[tuple[bytes, str]]:
    """(record, the one reason code it must be dead-lettered with)."""
    at = T0 + 10 * H
    huge = air_values(10, 400.0) | {"pm25": 500.0}
    return [
        # a known Weifang station published under Laixi, then under an invented locality
        (rec("air", "laixi", "aq-wf-01", at, huge), pl.WRONG_LOCALITY),
        (rec("air", "atlantis", "aq-wf-01", at, huge), pl.WRONG_LOCALITY),
        # an invented source under an invented locality, and under a known one
        (rec("air", "atlantis", "aq-at-01", at, huge), pl.UNKNOWN_SOURCE),
        (rec("air", "weifang", "aq-wf-99", at, huge), pl.UNKNOWN_SOURCE),
        # water values (劣V) on an air station
        (rec("water", "weifang", "aq-wf-02", at, {"cod": 80.0, "nh3n": 9.0}), pl.WRONG_KIND),
        # impossible values, each alone in its sample (so the whole sample goes)
        (rec("air", "weifang", "aq-wf-01", T0 + 30 * H, {"pm25": 1.7e308}), pl.OUT_OF_RANGE),
        (rec("air", "weifang", "aq-wf-02", T0 + 30 * H, {"co": 1e12}), pl.OUT_OF_RANGE),
        (rec("air", "weifang", "aq-wf-03", T0 + 30 * H, {"so2": -5.0}), pl.OUT_OF_RANGE),
        (rec("air", "weifang", "aq-wf-03", T0 + 31 * H, {"pm10": "9"}), pl.NOT_A_NUMBER),
        # a wastewater factor on a gas outlet
        (
            rec("emission", "weifang", "e-wf-01-g1", T0 + 30 * H, {"cod": 500.0}),
            pl.FOREIGN_FACTOR,
        ),
        # a forecast for an invented locality
        (
            rec("forecast", "atlantis", "fc-atlantis", T0 + 48 * H, {"aqi": 300.0}, "day"),
            pl.UNKNOWN_LOCALITY,
        ),
    ]


class Run:
    def __init__(self, view: CatalogView) -> None:
        self.evaluate = EvaluateStep(
            view, max_future=timedelta(days=9999), max_past=timedelta(days=9999)
        )
        self.locality = LocalityStep(view, default_rules())
        self.partitions: dict[int, dict[str, Any]] = {0: {}, 1: {}}
        self.localities: dict[bytes, LocalityState | None] = {}
        self.outputs: list[tuple[str, bytes, bytes]] = []
        self.dead: list[str] = []

    def feed(self, value: bytes) -> None:
        d = orjson.loads(value)
        partition = sum(d["source"].encode()) % 2  # keyed by source, like the bridge
        ts = round(datetime.fromisoformat(d["time"]).timestamp() * 1000)
        for topic, key, v in self.evaluate(self.partitions[partition], b"k", value, 0, ts):
            if topic == topics.DEAD_LETTER:
                self.dead.append(orjson.loads(v)["reason"])
                continue
            self.outputs.append((topic, key, v))
            if topic == topics.AGGREGATES:
                st, results = self.locality(self.localities.get(key), key, v, 0, ts)
                self.localities[key] = st
                for r in results:
                    assert r[0] != topics.DEAD_LETTER, r
                    self.outputs.append(r)


def test_a_hostile_corpus_changes_no_output_and_every_item_is_dead_lettered(
    view: CatalogView,
) -> None:
    clean, hostile = Run(view), Run(view)
    valid = valid_stream()
    bad = corpus()
    for v in valid:
        clean.feed(v)
    every = max(1, len(valid) // len(bad))
    for i, v in enumerate(valid):
        if i % every == 0 and i // every < len(bad):
            hostile.feed(bad[i // every][0])
        hostile.feed(v)
    for v, _ in bad[len(valid) // every :]:
        hostile.feed(v)
    assert clean.dead == []
    # the valid run did compute city AQI and fire the NOx alert: there was something to forge
    assert any(t == topics.ALERT_EVENTS for t, _k, _v in clean.outputs)
    assert any(b'"city"' in v for t, _k, v in clean.outputs if t == topics.EVALUATIONS)
    assert hostile.outputs == clean.outputs
    assert hostile.partitions == clean.partitions
    assert Counter(pl.code_of(r) for r in hostile.dead) == Counter(code for _, code in bad)
    assert Counter(code for _, code in bad) == {
        pl.WRONG_LOCALITY: 2,
        pl.UNKNOWN_SOURCE: 2,
        pl.WRONG_KIND: 1,
        pl.OUT_OF_RANGE: 3,
        pl.NOT_A_NUMBER: 1,
        pl.FOREIGN_FACTOR: 1,
        pl.UNKNOWN_LOCALITY: 1,
    }


def test_one_bad_factor_is_dead_lettered_and_the_others_evaluated(view: CatalogView) -> None:
    step = EvaluateStep(view, max_future=timedelta(days=9999), max_past=timedelta(days=9999))
    states: dict[str, Any] = {}
    at = T0 + 5 * H
    value = rec("air", "weifang", "aq-wf-01", at, air_values(5, 60.0) | {"pm25": 1.7e308})
    out = step(states, b"aq-wf-01", value, 7, round(at.timestamp() * 1000))
    dead = [orjson.loads(v) for t, _k, v in out if t == topics.DEAD_LETTER]
    assert [(d["stage"], d["origin"]) for d in dead] == [("evaluate", "readings@7")]
    assert dead[0]["reason"].startswith("out of range: source 'aq-wf-01' pm25 '1.7e+308'")
    stored = [p for t, _k, v in out if t == topics.EVALUATIONS for p in orjson.loads(v)]
    reading = next(p for p in stored if p["measurement"] == "reading")
    assert "pm25" not in reading["fields"]
    assert reading["fields"]["pm10"] == 125.0
    assert "aq-wf-01" in states  # the rest of the sample was evaluated


def test_a_rejected_sample_moves_no_clock_and_no_state(view: CatalogView) -> None:
    step = EvaluateStep(view, max_future=timedelta(days=9999), max_past=timedelta(days=9999))
    states: dict[str, Any] = {}
    at = T0 + 5 * H
    value = rec("air", "laixi", "aq-wf-01", at, air_values(5, 60.0))
    out = step(states, b"aq-wf-01", value, 1, round(at.timestamp() * 1000))
    assert [t for t, _k, _v in out] == [topics.DEAD_LETTER]
    assert states == {}
