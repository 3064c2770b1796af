"""Alert lifecycle and warning steps per second, next to a bare dict-update baseline (one run).

* baseline: per observation, one ``dict[fingerprint] = (value, time)`` update — the least any
  stateful alerting can do;
* lifecycle: ``alerts.lifecycle.step`` on pre-built observations (mostly no-transition steps, as in
  real streams, plus regular breach/clear changes);
* engine: ``alerts.engine.Engine.process`` on evaluations (rules + suppression + lifecycle);
* warnings: ``rules.warnings.step`` per locality-hour with the national rule set.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from alerts import lifecycle
from alerts.engine import Engine
from alerts.lifecycle import LifecyclePolicy, Observation, ObservationStatus
from alerts.model import Alert
from alerts.rules import Evaluation, default_rules
from rules.warnings import WarningInput, WarningState, load_rule_sets
from rules.warnings import step as warning_step

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def main(quick: bool) -> None:
    n = 20_000 if quick else 200_000
    sources = 500
    # each source changes state every 50 of its own samples
    values = [120.0 if (i // (sources * 50)) % 2 == 0 else 60.0 for i in range(n)]

    # baseline: bare dict update
    table: dict[str, tuple[float, datetime]] = {}
    keys = [f"src-{i % sources}" for i in range(n)]
    times = [T0 + timedelta(seconds=i) for i in range(n)]
    t = time.perf_counter()
    for i in range(n):
        table[keys[i]] = (values[i], times[i])
    base = _rate(n, time.perf_counter() - t)

    # lifecycle steps on pre-built observations
    obs = [
        Observation(
            labels={"rule": "r", "source": keys[i], "factor": "so2", "locality": "weifang"},
            at=times[i],
            status=ObservationStatus.BREACH if values[i] > 100 else ObservationStatus.CLEAR,
            value=values[i],
            limit=100.0,
        )
        for i in range(n)
    ]
    policy = LifecyclePolicy(for_duration=timedelta(minutes=1))
    alerts: dict[str, Alert | None] = {}
    transitions = 0
    t = time.perf_counter()
    for o in obs:
        res = lifecycle.step(alerts.get(o.fingerprint), o, o.at, policy)
        alerts[o.fingerprint] = res.alert
        transitions += len(res.transitions)
    life = _rate(n, time.perf_counter() - t)

    # engine on evaluations
    eng = Engine(default_rules())
    evs = [
        Evaluation(
            kind="permit",
            locality="weifang",
            source=keys[i],
            factor="so2",
            value=values[i],
            limit=100.0,
            time=times[i],
        )
        for i in range(n)
    ]
    t = time.perf_counter()
    for e in evs:
        eng.process(e)
    engine_rate = _rate(n, time.perf_counter() - t)

    # warnings: one step per locality-hour
    cfg = Path(__file__).resolve().parents[1] / "deploy" / "config" / "warnings.yaml"
    rs = load_rule_sets(yaml.safe_load(cfg.read_text(encoding="utf-8")))["mee-2018-875"]
    hours = 500 if quick else 3000
    st = WarningState("weifang")
    aqi = [250.0 if (h // 150) % 2 == 0 else 100.0 for h in range(hours)]
    t = time.perf_counter()
    for h in range(hours):
        now = T0 + timedelta(hours=h + 1)
        st, _ = warning_step(st, WarningInput(rolling_aqi=((now, aqi[h]),)), now, rule_set=rs)
    warn = _rate(hours, time.perf_counter() - t)

    print(f"observations: {n:,} over {sources} fingerprints, {transitions:,} transitions")
    print(f"baseline dict update      {base:>12,.0f} /s")
    print(f"lifecycle.step            {life:>12,.0f} /s   ratio to baseline 1:{base / life:,.1f}")
    print(
        f"Engine.process            {engine_rate:>12,.0f} /s   ratio to baseline 1:{base / engine_rate:,.1f}"
    )
    print(f"warnings.step (per hour)  {warn:>12,.0f} /s   (1 step per locality-hour)")
    print(f"goal: rule engine >= 100k samples/s/core → lifecycle at {life / 100_000:.2f}× goal")
