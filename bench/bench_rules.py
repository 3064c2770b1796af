"""Rule-engine throughput: real-time AQI + hourly→daily aggregation, next to orjson parsing.

A *station-sample* is the six air factors of one station-hour. Measured side by side in one run,
on one core (single thread):

* ``parse``      orjson.loads of the MQTT-style JSON payload of each sample (the transport's floor)
* ``aqi``        rules.aqi.realtime_aqi per sample
* ``aggregate``  rules.airstats: day_slot + StationDay.add per sample, and at each station-day end
                 StationDay.result + rules.aqi.daily_aqi
* ``pipeline``   aqi + aggregate together (what a worker does per sample)

Goal (issue 3): pipeline ≥ 100 000 station-samples/s.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import orjson

from rules.airstats import StationDay, day_slot
from rules.aqi import daily_aqi, realtime_aqi
from rules.beijing import BEIJING

FACTORS = ("pm25", "pm10", "so2", "no2", "co", "o3")


def _samples(
    n: int, stations: int
) -> tuple[list[tuple[str, datetime, dict[str, float | None]]], list[bytes]]:
    rnd = random.Random(20260301)
    hours = n // stations
    start = datetime(2026, 1, 1, 1, tzinfo=BEIJING)  # 2012 edition until March, 2026 after
    out = []
    payloads = []
    for h in range(hours):
        at = start + timedelta(hours=h)
        for s in range(stations):
            v: dict[str, float | None] = {
                "pm25": round(rnd.uniform(5, 250), 1),
                "pm10": round(rnd.uniform(10, 400), 1),
                "so2": round(rnd.uniform(1, 120), 1),
                "no2": round(rnd.uniform(5, 150), 1),
                "co": round(rnd.uniform(0.2, 4.0), 2),
                "o3": round(rnd.uniform(5, 300), 1) if rnd.random() > 0.02 else None,
            }
            sid = f"aq-{s:04d}"
            out.append((sid, at, v))
            payloads.append(orjson.dumps({
                "schema": 1, "kind": "air", "locality": "weifang", "source": sid,
                "time": at.isoformat(), "interval": "hour",
                "values": {f: {"value": x, "flag": "N"} for f, x in v.items()},
            }))  # fmt: skip
    # the stream arrives in time order; a far-future edition switch is crossed in the middle
    return out, payloads


def _time(fn: Callable[[], object], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(quick: bool) -> None:
    n = 20_000 if quick else 200_000
    stations = 50
    samples, payloads = _samples(n, stations)
    n = len(samples)
    shift = datetime(2026, 3, 1, tzinfo=BEIJING)
    print(f"{n} station-samples, {stations} stations, {n // stations} hours from 2026-01-01 "
          f"(edition switch at {shift:%Y-%m-%d %H:%M} crossed: "
          f"{sum(1 for _, at, _ in samples if at >= shift)} samples on HJ 633-2026)")  # fmt: skip

    def parse() -> None:
        loads = orjson.loads
        for p in payloads:
            loads(p)

    def aqi() -> None:
        for _, at, v in samples:
            realtime_aqi(v, at=at)

    def aggregate(with_aqi: bool = False) -> None:
        agg = StationDay()
        states: dict[str, tuple[object, dict[str, list[float | None]]]] = {}
        for sid, at, v in samples:
            if with_aqi:
                realtime_aqi(v, at=at)
            day, slot = day_slot(at)
            cur = states.get(sid)
            if cur is None or cur[0] != day:
                if cur is not None:
                    r = agg.result(cur[1])
                    daily_aqi(r.means, day=cur[0])  # type: ignore[arg-type]
                cur = (day, agg.initialise())
                states[sid] = cur
            agg.add(cur[1], slot, v)

    def pipeline() -> None:
        aggregate(with_aqi=True)

    results = {
        "parse (orjson)": _time(parse),
        "aqi (realtime_aqi)": _time(aqi),
        "aggregate (day_slot+StationDay+daily_aqi)": _time(aggregate),
        "pipeline (aqi + aggregate)": _time(pipeline),
    }
    base = results["parse (orjson)"]
    print(f"{'step':44s} {'samples/s':>12s} {'µs/sample':>10s} {'× parse time':>13s}")
    for name, secs in results.items():
        print(f"{name:44s} {n / secs:12,.0f} {secs / n * 1e6:10.2f} {secs / base:13.2f}")
    pipe = results["pipeline (aqi + aggregate)"]
    share_aqi = results["aqi (realtime_aqi)"] / pipe
    print(f"pipeline: {n / pipe:,.0f} station-samples/s (goal 100,000: "
          f"{'met' if n / pipe >= 100_000 else 'NOT met'}); "
          f"AQI ≈ {share_aqi:.0%} of it, aggregation ≈ {results['aggregate (day_slot+StationDay+daily_aqi)'] / pipe:.0%}")  # fmt: skip
