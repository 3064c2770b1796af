"""The locality stage (alerts.locality) on the simulated winter episode, next to its neighbours.

One run, side by side, on the same records:

* decode: ``orjson`` decoding of the ``aggregates`` records (what the agent does anyway);
* evaluate: ``rules.engine.step`` on the samples that produced those records (the stage before);
* locality: ``LocalityState.step`` on every decoded point, with the catalogue's contexts (warnings
  on), and again with no warning rule set — the difference is the warnings' share.

Input: the catalogue network (deploy/config) with the ``winter-episode`` scenario — ``--quick``:
weifang only over 72 h; full: every locality over the scenario's 288 h.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from alerts.locality import LocalityContext, LocalityState
from alerts.rules import default_rules
from rules import engine

REPO = Path(__file__).resolve().parents[1]
START = datetime(2026, 11, 9, tzinfo=ZoneInfo("Asia/Shanghai"))


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def main(quick: bool) -> None:
    from ingest.simulators import simulate, specs_from_catalog
    from streams.agents.locality import locality_context
    from streams.catalog import CatalogView
    from streams.wire import decode_points, for_locality, points_bytes

    view = CatalogView(REPO / "deploy" / "config")
    specs = specs_from_catalog(view.catalog)
    if quick:
        specs = [s for s in specs if s.locality == "weifang"]
    hours = 72 if quick else 288
    samples = []
    for d in simulate(specs, start=START, hours=hours, seed=0, scenario="winter-episode"):
        s = d.sample
        samples.append(
            engine.Sample(
                kind=s.kind.value,
                locality=s.locality,
                source=s.source,
                time=s.time,
                interval=s.interval.value,
                values={f: (v.value, v.flag.value) for f, v in s.values.items()},
            )
        )

    # evaluate (the stage before): rules.engine.step per sample, and the aggregates records
    states: dict[str, dict[str, Any] | None] = {}
    records: list[bytes] = []
    t = time.perf_counter()
    for smp in samples:
        ctx = view.context(smp.source)
        if ctx is None:
            continue  # forecasters are not in the catalogue: the worker dead-letters them
        st, pts = engine.step(states.get(smp.source), smp, ctx)
        states[smp.source] = st
        forward = [p for p in pts if for_locality(p)]
        if forward:
            records.append(points_bytes(forward))
    t_eval = time.perf_counter() - t
    n_samples = len(samples)

    t = time.perf_counter()
    decoded = [decode_points(r) for r in records]
    t_decode = time.perf_counter() - t
    points = [p for batch in decoded for p in batch]

    rules = default_rules()
    contexts = {loc: locality_context(view, loc) for loc in {x.locality for x in samples}}

    def run(ctxs: dict[str, LocalityContext]) -> tuple[float, int, int]:
        locs: dict[str, LocalityState] = {}
        transitions = warnings = 0
        started = time.perf_counter()
        for p in points:
            loc = p["tags"]["locality"]
            st = locs.get(loc)
            if st is None:
                st = locs[loc] = LocalityState(loc, rules)
            out = st.step(p, ctxs[loc])
            transitions += len(out.transitions)
            warnings += sum(1 for tr in out.transitions if tr.kind.value == "warning")
        return time.perf_counter() - started, transitions, warnings

    t_loc, n_tr, n_warn = run(contexts)
    t_nowarn, _, _ = run({k: replace(c, rule_set=None) for k, c in contexts.items()})

    n = len(points)
    print(
        f"winter-episode, {'weifang' if quick else 'all localities'}, {hours} h: "
        f"{n_samples} samples → {len(records)} aggregates records, {n} points; "
        f"{n_tr} transitions ({n_warn} warnings)"
    )
    print(f"  decode (orjson)        {_rate(n, t_decode):>12,.0f} points/s")
    print(f"  evaluate (rules.engine){_rate(n_samples, t_eval):>12,.0f} samples/s")
    print(
        f"  locality, warnings on  {_rate(n, t_loc):>12,.0f} points/s"
        f"  ({_rate(n_samples, t_loc):,.0f} samples/s)"
    )
    print(f"  locality, no warnings  {_rate(n, t_nowarn):>12,.0f} points/s")
    print(
        f"  ratios: locality/decode 1 : {t_loc / t_decode:.0f}; "
        f"locality time per sample = {t_loc / t_eval:.2f} × evaluate's; "
        f"warnings' share of the locality step {max(0.0, 1 - t_nowarn / t_loc):.0%}"
    )
