"""Simulator throughput, next to the bare cost of the payload model, in one run.

* baseline: building the same number of ``ingest.schemas.Sample`` objects (validated, all factors)
  from ready-made values, then ``orjson`` of their ``model_dump`` — the least any producer of
  validated payloads pays;
* generate: ``ingest.simulators.simulate`` over the built-in network (50 sources), base streams
  and with the winter episode;
* dry-run: generate + ``JsonLinesSink`` into memory (what ``envwatch simulate run --dry-run`` does).

Prints samples/s and the ratio to the baseline. A simulated day of the default network is
1 010 messages, so any rate above ~1 000/s keeps up with ``--speed 86400``.
"""

from __future__ import annotations

import io
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import orjson

from ingest.schemas import Sample, Value
from ingest.simulators import default_specs, simulate
from ingest.simulators.publish import JsonLinesSink

START = datetime(2026, 12, 1, tzinfo=ZoneInfo("Asia/Shanghai"))


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def main(quick: bool) -> None:
    specs = default_specs()
    hours = 48 if quick else 24 * 14
    sum(1 for _ in simulate(specs, start=START, hours=6, seed=0))  # warm-up (first calls)
    t = time.perf_counter()
    base = list(simulate(specs, start=START, hours=hours, seed=1))
    t_gen = time.perf_counter() - t
    n = len(base)

    # baseline: the same payloads rebuilt from plain values
    plain = [
        (
            d.sample.kind,
            d.sample.locality,
            d.sample.source,
            d.sample.time,
            d.sample.interval,
            {f: v.value for f, v in d.sample.values.items()},
        )
        for d in base
    ]
    t = time.perf_counter()
    for kind, loc, src, at, interval, values in plain:
        s = Sample(
            kind=kind,
            locality=loc,
            source=src,
            time=at,
            interval=interval,
            values={f: Value(value=v) for f, v in values.items()},
        )
        orjson.dumps(s.model_dump(mode="json", by_alias=True))
    t_base = time.perf_counter() - t

    t = time.perf_counter()
    episode = sum(1 for _ in simulate(specs, start=START, hours=hours, seed=1, scenario="winter-episode"))  # fmt: skip
    t_ep = time.perf_counter() - t

    out = io.StringIO()
    sink = JsonLinesSink(out)
    t = time.perf_counter()
    for d in simulate(specs, start=START, hours=hours, seed=1):
        sink.send(d)
    t_dry = time.perf_counter() - t

    r_base = _rate(n, t_base)
    print(f"messages: {n} ({len(specs)} sources, {hours} simulated hours)")
    print(f"baseline Sample build + JSON   {r_base:10.0f} msg/s")
    for name, count, sec in (
        ("generate (base streams)", n, t_gen),
        ("generate (winter-episode)", episode, t_ep),
        ("generate + JSON lines", n, t_dry),
    ):
        r = _rate(count, sec)
        print(f"{name:<30} {r:10.0f} msg/s   ratio to baseline {r / r_base:5.2f}")
    sim_hours_per_s = _rate(n, t_dry) / (n / hours)
    print(f"dry-run keeps up with --speed up to ~{sim_hours_per_s * 3600:,.0f} (simulated s per s)")
