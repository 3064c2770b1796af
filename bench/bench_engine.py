"""Per-source evaluation step (rules.evaluate.step) throughput, next to orjson parsing.

Measured side by side in one run, on one core (single thread), for three kinds of sample:

* ``parse``  orjson.loads of the MQTT-style JSON payload of each sample (the transport's floor)
* ``step``   rules.evaluate.step on the decoded sample with the source's state (every evaluation on:
             reading, data quality, and for air the moving means, real-time AQI, GB 3095
             exceedances and at each day end daily means/AQI; water the class per sample and per
             day; emissions minute → hour with validity, O2 correction and permit limits)
* for air also ``realtime_aqi`` alone on the same concentrations (the floor of the AQI part)

Then where the time of an air step goes (cProfile, own time per function).
Goal (issue 16): an air step ≤ 20 µs (issue 6 [E]: ≥ 20 000 station-samples/s per worker
*including* Faust, so the pure step for an air station-hour must stay well under 50 µs).
"""

from __future__ import annotations

import cProfile
import io
import pstats
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import orjson

from rules import evaluate
from rules.aqi import realtime_aqi
from rules.beijing import BEIJING
from rules.emission import Basis, PermitLimit

START = datetime(2026, 1, 1, 1, tzinfo=BEIJING)  # HJ 633-2012 until March, 2026 after

Sample = evaluate.Sample


def _payload(s: Sample) -> bytes:
    return orjson.dumps(
        {
            "schema": 1,
            "kind": s.kind,
            "locality": s.locality,
            "source": s.source,
            "time": s.time.isoformat(),
            "interval": s.interval,
            "values": {f: {"value": v, "flag": fl} for f, (v, fl) in s.values.items()},
        }
    )


def air_samples(n: int, stations: int = 50) -> list[Sample]:
    rnd = random.Random(20260301)
    out = []
    for h in range(n // stations):
        at = START + timedelta(hours=h)
        for s in range(stations):
            vals: dict[str, tuple[float | None, str]] = {
                "pm25": (round(rnd.uniform(5, 250), 1), "N"),
                "pm10": (round(rnd.uniform(10, 400), 1), "N"),
                "so2": (round(rnd.uniform(1, 120), 1), "N"),
                "no2": (round(rnd.uniform(5, 150), 1), "N"),
                "co": (round(rnd.uniform(0.2, 4.0), 2), "N"),
                "o3": (round(rnd.uniform(5, 300), 1), "N" if rnd.random() > 0.02 else "D"),
            }
            out.append(Sample("air", "weifang", f"aq-{s:04d}", at, "hour", vals))
    return out


def water_samples(n: int, sections: int = 20) -> list[Sample]:
    rnd = random.Random(3838)
    out = []
    for k in range(n // sections):
        at = START + timedelta(hours=4 * k)
        for s in range(sections):
            vals = {
                "ph": (round(rnd.uniform(6.5, 8.5), 2), "N"),
                "do": (round(rnd.uniform(3, 9), 2), "N"),
                "codmn": (round(rnd.uniform(2, 8), 2), "N"),
                "nh3n": (round(rnd.uniform(0.1, 2.2), 3), "N"),
                "tp": (round(rnd.uniform(0.02, 0.4), 3), "N"),
                "temp": (round(rnd.uniform(2, 28), 1), "N"),
            }
            out.append(Sample("water", "weifang", f"sec-{s:03d}", at, "hour", vals))
    return out


def emission_samples(n: int, outlets: int = 10) -> list[Sample]:
    rnd = random.Random(13271)
    out = []
    for m in range(n // outlets):
        at = START + timedelta(minutes=m + 1)  # minute data labelled by their end
        for s in range(outlets):
            flag = "N" if rnd.random() > 0.03 else "M"
            vals = {
                "so2": (round(rnd.uniform(20, 140), 1), flag),
                "nox": (round(rnd.uniform(50, 200), 1), "N"),
                "pm": (round(rnd.uniform(2, 15), 2), "N"),
                "o2": (round(rnd.uniform(8, 13), 2), "N"),
                "flow": (round(rnd.uniform(8e4, 1.2e5), 0), "N"),
            }
            out.append(Sample("emission", "weifang", f"e-{s:03d}-g1", at, "min", vals))
    return out


def _emission_ctx() -> evaluate.SourceContext:
    limits = {
        f: PermitLimit(outlet="e", factor=f, upper=u, basis=Basis.HOUR, source="permit")
        for f, u in (("so2", 100.0), ("nox", 150.0), ("pm", 10.0))
    }
    return evaluate.SourceContext(limits=limits, reference_o2=9.0)  # GB 13271-2014 表6 coal


def _steps(samples: list[Sample], ctx: evaluate.SourceContext) -> Callable[[], Any]:
    def go() -> int:
        states: dict[str, evaluate.SourceState] = {}
        points = 0
        step = evaluate.step
        for s in samples:
            st, pts = step(states.get(s.source), s, ctx)
            states[s.source] = st
            points += len(pts)
        return points

    return go


def _parser(payloads: list[bytes]) -> Callable[[], object]:
    loads = orjson.loads
    return lambda: [loads(x) for x in payloads]


def _aqi_only(conc: list[dict[str, float | None]], times: list[datetime]) -> Callable[[], object]:
    return lambda: [realtime_aqi(c, at=t) for c, t in zip(conc, times, strict=True)]


def _time(fn: Callable[[], object], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _row(name: str, n: int, parse: float, step: float, points: int) -> None:
    print(
        f"  {name:9s} {n:>8,d}  parse {n / parse:>11,.0f}/s  step {n / step:>9,.0f}/s "
        f"({step / n * 1e6:6.1f} µs)  step/parse {step / parse:5.1f}×  points/sample "
        f"{points / n:4.2f}"
    )


def main(quick: bool) -> None:
    n_air = 10_000 if quick else 100_000
    n_water = 2_000 if quick else 20_000
    n_em = 6_000 if quick else 60_000
    kinds = [
        ("air", air_samples(n_air), evaluate.SourceContext()),
        ("water", water_samples(n_water), evaluate.SourceContext(target_class=3)),
        ("emission", emission_samples(n_em), _emission_ctx()),
    ]
    print("one core; best of 3; samples in time order, state per source in memory")
    air_step = 0.0
    air_aqi = 0.0
    for name, samples, ctx in kinds:
        payloads = [_payload(s) for s in samples]
        parse = _time(_parser(payloads))
        go = _steps(samples, ctx)
        points = int(go())
        step = _time(go)
        _row(name, len(samples), parse, step, points)
        if name == "air":
            air_step = step
            conc = [{f: v for f, (v, _fl) in s.values.items()} for s in samples]
            times = [s.time for s in samples]
            air_aqi = _time(_aqi_only(conc, times))
            n = len(samples)
            print(
                f"  air realtime_aqi alone {n / air_aqi:>9,.0f}/s ({air_aqi / n * 1e6:5.1f} µs): "
                f"{air_aqi / air_step:.0%} of an air step"
            )
    n = n_air
    per = air_step / n * 1e6
    print(
        f"goal (issue 16): air step ≤ 20 µs → {per:.1f} µs ({'met' if per <= 20.0 else 'NOT met'}); "
        f"{n / air_step / 20_000:.1f}× the 20 000/s worker goal"
    )
    # where the time goes (own time per function, one air pass)
    prof = cProfile.Profile()
    go = _steps(kinds[0][1][: n_air // 4], kinds[0][2])
    prof.runcall(go)
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf).sort_stats("tottime")
    total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]
    print("where an air step's time goes (cProfile own time, top 10):")
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:10]  # type: ignore[attr-defined]
    for (file, _line, func), (_cc, calls, tt, _ct, _callers) in rows:
        where = (
            f"{file.rsplit('/', 2)[-2]}/{file.rsplit('/', 1)[-1]}:{func}" if "/" in file else func
        )
        print(f"  {tt / total:6.1%}  {calls:>8,d} calls  {where}")
