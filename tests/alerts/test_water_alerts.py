"""Water emergencies in the locality stage (alerts/water.py, alerts/locality.py), on the
shipped catalogue's weifang sections: 潍河上游 ws-wf-01 → 峡山水库 ws-wf-03 (drinking-water
source, reservoir, target II) → 潍河入海 ws-wf-02 (deploy/config/weifang.yaml).

Samples go through ``rules.engine.step`` (the evaluate stage) and the points it gives the
locality stage (``streams.wire.for_locality``) through :class:`LocalityState` — the two steps
the worker and the backtest run. Expected numbers are worked out in the comments.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from alerts.locality import LocalityContext, LocalityState
from alerts.model import Transition
from alerts.notification import NotificationKind
from alerts.routing import WATER_EMERGENCY as ROUTED
from alerts.routing import tree_from_receivers
from alerts.rules import WATER_EMERGENCY, default_rules
from rules import evaluate as engine
from streams.catalog import CatalogView, context_of, locality_context, receivers_from_catalog
from streams.wire import for_locality, point_dict

BJ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 1, 5, tzinfo=BJ)
H4 = timedelta(hours=4)
VIEW = CatalogView(Path(__file__).resolve().parents[2] / "deploy" / "config")
CTX = locality_context(VIEW, "weifang")
#: a river section at the base values of the simulator: class II/III items only
BASE = {"ph": 7.8, "do": 7.5, "codmn": 4.2, "cod": 16.0, "nh3n": 0.45, "tp": 0.12, "temp": 8.0}


def sample(source: str, at: datetime, **over: float) -> engine.Sample:
    values = {f: (v, "N") for f, v in {**BASE, **over}.items()}
    return engine.Sample("water", "weifang", source, at, "hour", values)


class Pipeline:
    """The evaluate stage per source and the weifang locality stage."""

    def __init__(self, ctx: LocalityContext = CTX) -> None:
        self.states: dict[str, Any] = {}
        self.loc = LocalityState("weifang", default_rules())
        self.ctx = ctx

    def feed(self, samples: Iterable[engine.Sample]) -> list[Transition]:
        out: list[Transition] = []
        for s in samples:
            sctx = context_of(VIEW.catalog, s.source)
            assert sctx is not None
            self.states[s.source], points = engine.step(self.states.get(s.source), s, sctx)
            for p in points:
                if for_locality(p):
                    out += self.loc.step(point_dict(p), self.ctx).transitions
        return out


def told(ts: Iterable[Transition], rule: str) -> list[tuple[datetime, str, str, str]]:
    return [
        (t.at.astimezone(BJ), t.source, t.labels["factor"], t.state.value)
        for t in ts
        if t.labels.get("rule") == rule
    ]


def test_catalogue_links_reach_the_texts() -> None:
    d = CTX.source_detail
    assert d["ws-wf-01"]["at_risk"] == (
        "示例断面 峡山水库 (example) (ws-wf-03)、示例断面 潍河入海 (example) (ws-wf-02)"
    )
    assert d["ws-wf-01"]["drinking_at_risk"] == "示例断面 峡山水库 (example) (ws-wf-03)"
    assert d["ws-wf-03"]["drinking_water_source"] == "1"
    assert d["ws-wf-03"]["lake"] == "1"
    assert d["ws-wf-03"]["upstream"] == "ws-wf-01"
    assert d["ws-wf-02"]["upstream"] == "ws-wf-03"
    assert "at_risk" not in d["ws-wf-02"]


def test_a_spill_fires_the_sudden_change_alert_naming_the_drinking_source_and_clears() -> None:
    """NH3-N at ws-wf-01: 0.45 × 3 (no baseline before the 4th sample), then 3.0 (baseline
    0.45, threshold max(0.9, 0.45 + 0.5) = 0.95 → jump), 5.0, 1.2 (excess (1.2 − 0.45)/0.5 =
    1.5: still a jump), 0.45 (excess 0: clear)."""
    p = Pipeline()
    series = (0.45, 0.45, 0.45, 3.0, 5.0, 1.2, 0.45)
    ts = p.feed(sample("ws-wf-01", T0 + (i + 1) * H4, nh3n=x) for i, x in enumerate(series))
    assert told(ts, "water-sudden-change") == [
        (T0 + 4 * H4, "ws-wf-01", "nh3n", "firing"),
        (T0 + 7 * H4, "ws-wf-01", "nh3n", "resolved"),
    ]
    fired = next(t for t in ts if t.labels.get("rule") == "water-sudden-change")
    assert fired.severity.value == "critical"
    assert fired.labels["category"] == WATER_EMERGENCY == ROUTED
    assert (fired.value, fired.limit) == (3.0, 0.95)
    zh = fired.annotations["summary"]
    assert zh.startswith("断面水质突变：示例断面 潍河上游 (example) (ws-wf-01) 氨氮 突增至 3 mg/L")
    assert "近 24 小时基线 0.45 mg/L（突变阈值 0.95 mg/L）" in zh
    assert "其中饮用水水源地：示例断面 峡山水库 (example) (ws-wf-03)" in zh
    assert (
        "drinking-water sources among them: 示例断面 峡山水库 (example) (ws-wf-03)"
        in (fired.annotations["summary_en"])
    )


def test_no_sudden_change_on_a_steady_section() -> None:
    p = Pipeline()
    ts = p.feed(
        sample("ws-wf-01", T0 + (i + 1) * H4, nh3n=0.45 * (1 + 0.05 * (-1) ** i)) for i in range(12)
    )
    assert told(ts, "water-sudden-change") == []


def _pairs(order: str) -> list[engine.Sample]:
    """ws-wf-03 (reservoir) below ws-wf-01 (river), both at the base values: class III each on
    the river TP column (TP 0.12 ≤ 0.2; like with like — on its own lake column the reservoir
    is class V). At +8 h ws-wf-03 has COD 35 mg/L (V: 30 < 35 ≤ 40) → 2 classes worse than
    upstream; at +12 h both at the base again."""
    up = [sample("ws-wf-01", T0 + i * H4) for i in (1, 2, 3)]
    down = [
        sample("ws-wf-03", T0 + H4),
        sample("ws-wf-03", T0 + 2 * H4, cod=35.0),
        sample("ws-wf-03", T0 + 3 * H4),
    ]
    if order == "up-first":
        return [*up, *down]
    if order == "down-first":
        return [*down, *up]
    return [s for pair in zip(down, up, strict=True) for s in pair]


@pytest.mark.parametrize("order", ["up-first", "down-first", "interleaved"])
def test_upstream_comparison_is_the_same_in_any_partition_order(order: str) -> None:
    p = Pipeline()
    ts = p.feed(_pairs(order))
    assert told(ts, "water-upstream-worse") == [
        (T0 + 2 * H4, "ws-wf-03", "ws-wf-01", "firing"),
        (T0 + 3 * H4, "ws-wf-03", "ws-wf-01", "resolved"),
    ]
    fired = next(t for t in ts if t.labels.get("rule") == "water-upstream-worse")
    assert fired.severity.value == "warning"  # 2 classes: critical from 3
    assert fired.annotations["summary"] == (
        "断面水质明显劣于上游：示例断面 峡山水库 (example) (ws-wf-03)（饮用水水源地） 断面水质为Ⅴ类，"
        "上游 示例断面 潍河上游 (example) (ws-wf-01) 为Ⅲ类，劣于上游 2 个类别（变差指标：化学需氧量）；"
        "下游受影响断面：示例断面 潍河入海 (example) (ws-wf-02)"
    )


def test_drinking_water_source_exceedances_are_critical() -> None:
    """ws-wf-03 (峡山水库, target II, drinking-water source) at the base: TP 0.12 mg/L is class
    V on the lake column (0.1 < TP ≤ 0.2) → water-class-target, critical; ws-wf-02 (target IV)
    with COD 35 (V) → water-class-target, warning."""
    p = Pipeline()
    ts = p.feed([sample("ws-wf-03", T0 + H4), sample("ws-wf-02", T0 + H4, cod=35.0)])
    got = {
        t.source: (t.severity.value, t.annotations["summary"])
        for t in ts
        if t.labels["rule"] == "water-class-target"
    }
    assert got["ws-wf-03"][0] == "critical"
    assert (
        "示例断面 峡山水库 (example) (ws-wf-03)（饮用水水源地） 断面水质为Ⅴ类" in got["ws-wf-03"][1]
    )
    assert got["ws-wf-02"][0] == "warning"


def test_emergency_responders_get_water_emergencies_enterprises_never() -> None:
    tree = tree_from_receivers(receivers_from_catalog(VIEW.catalog))
    p = Pipeline()
    series = (0.45, 0.45, 0.45, 3.0, 0.45)
    ts = p.feed(sample("ws-wf-01", T0 + (i + 1) * H4, nh3n=x) for i, x in enumerate(series))
    got: dict[str, list[str]] = {}
    for t in ts:
        got[t.labels["rule"]] = tree.receivers(t.labels, NotificationKind.ALERT)
    assert got["water-sudden-change"] == ["duty-weifang", "emergency-weifang"]
    # other water alerts stay with the duty officer
    assert got["water-worse-than-v"] == ["duty-weifang"]
    assert all(not r.startswith("enterprise-") for rs in got.values() for r in rs)
    # an enterprise's alert never reaches responders; a water emergency with a (forged)
    # enterprise label reaches that enterprise's receiver only through its own matcher
    ent = {"locality": "weifang", "enterprise": "e-wf-01", "category": "exceedance"}
    assert "emergency-weifang" not in tree.receivers(ent, NotificationKind.ALERT)


def test_state_round_trips_through_json() -> None:
    p = Pipeline()
    p.feed(_pairs("up-first")[:2])  # two upstream samples only: their pairs wait
    data = json.loads(json.dumps(p.loc.to_dict()))
    restored = LocalityState.from_dict(data, default_rules())
    assert restored.upstream.to_dict() == p.loc.upstream.to_dict()
    q = Pipeline()
    q.loc = restored
    q.states = p.states
    ts = q.feed(_pairs("up-first")[2:])
    assert told(ts, "water-upstream-worse")[0][3] == "firing"
