"""The locality stage (alerts.locality) on the simulated winter episode, next to its neighbours.

One run, side by side, on the same records:

* the locality stage as it was before explicit verdicts and silence points (commit
  ``BASELINE_REV``, run from a temporary git worktree in a child process on the same input), so
  "no slower than before" is measured, not remembered;

* decode: ``orjson`` decoding of the ``aggregates`` records (what the agent does anyway);
* evaluate: ``rules.evaluate.step`` on the samples that produced those records (the stage before);
* locality per point (the reference path, issue 16's "before"): ``LocalityState.step`` on every
  decoded point, with the catalogue's contexts (warnings on), and again with no warning rule set
  — the difference is the warnings' share;
* locality per record (issue 16's "after"): ``LocalityState.step_record`` on the records the
  evaluate agent sends — the outputs of ``BATCH`` samples merged per locality
  (``streams.wire.merge_point_records``) — the city values once per record, not per reading;
* the same two on a dense stream: ``bench_worker``'s 200 stations of one locality, hourly
  (``STATIONS`` readings per city hour: what a province's worker sees).

Per point and per record are timed alternately, best of ``ROUNDS``, in this one run.

Input: the catalogue network (deploy/config) with the ``winter-episode`` scenario — ``--quick``:
weifang only over 72 h; full: every locality over the scenario's 288 h.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alerts.locality import LocalityContext, LocalityState
from alerts.rules import default_rules
from rules import evaluate as engine
from rules.beijing import BEIJING
from streams.topics import AGGREGATES as AGG

REPO = Path(__file__).resolve().parents[1]
#: the last commit before explicit verdicts and partition clocks (issue 11);
#: ``ENVWATCH_BENCH_BASELINE_REV`` compares with another commit
BASELINE_REV = os.environ.get("ENVWATCH_BENCH_BASELINE_REV", "60c8f24")
START = datetime(2026, 11, 9, tzinfo=BEIJING)
#: samples per evaluate batch whose outputs are merged into records (the worker's batch size in
#: records, one sample each: the smallest records the worker makes)
BATCH = 500
ROUNDS = 3


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def main(quick: bool) -> None:
    from ingest.simulators import simulate, specs_from_catalog
    from streams.catalog import CatalogView, locality_context
    from streams.cli.backtest import sample_bytes
    from streams.steps import EvaluateStep
    from streams.wire import decode_points, merge_point_records

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

    # evaluate (the stage before): the worker's own step, and the aggregates records it sends
    evaluate = EvaluateStep(view, max_future=timedelta(days=9999), max_past=timedelta(days=9999))
    partition: dict[str, Any] = {}
    records: list[bytes] = []
    per_sample: list[list[bytes]] = []
    wire = [sample_bytes(smp) for smp in samples]
    t = time.perf_counter()
    for i, (smp, value) in enumerate(zip(samples, wire, strict=True)):
        ts = round(smp.time.timestamp() * 1000)
        mine = [out for topic, _k, out in evaluate(partition, b"", value, i, ts) if topic == AGG]
        records += mine
        per_sample.append(mine)
    t_eval = time.perf_counter() - t
    n_samples = len(samples)

    t = time.perf_counter()
    decoded = [decode_points(r) for r in records]
    t_decode = time.perf_counter() - t
    points = [p for batch in decoded for p in batch]
    merged = _merge(per_sample, merge_point_records, decode_points)

    rules = default_rules()
    contexts = {loc: locality_context(view, loc) for loc in {x.locality for x in samples}}

    def run(
        ctxs: dict[str, LocalityContext],
        *,
        forecasts: bool = True,
        by_record: list[list[dict[str, Any]]] | None = None,
    ) -> tuple[float, int, int]:
        locs: dict[str, LocalityState] = {}
        transitions = warnings = 0
        if by_record is not None:
            chosen = by_record
        elif forecasts:
            chosen = [[p] for p in points]
        else:
            chosen = [[p] for p in points if p["tags"].get("kind") != "forecast"]
        started = time.perf_counter()
        for rec in chosen:
            loc = rec[0]["tags"]["locality"]
            st = locs.get(loc)
            if st is None:
                st = locs[loc] = LocalityState(loc, rules)
            if by_record is None:
                out = st.step(rec[0], ctxs[loc])  # the per-point path
            else:
                out = st.step_record(rec, ctxs[loc])
            transitions += len(out.transitions)
            warnings += sum(1 for tr in out.transitions if tr.kind.value == "warning")
        return time.perf_counter() - started, transitions, warnings

    t_loc = t_rec = float("inf")
    for _ in range(ROUNDS):  # alternately: the shared machine's noise hits both alike
        got, n_tr, n_warn = run(contexts)
        t_loc = min(t_loc, got)
        got, n_tr_rec, n_warn_rec = run(contexts, by_record=merged)
        t_rec = min(t_rec, got)
    t_nowarn, _, _ = run({k: replace(c, rule_set=None) for k, c in contexts.items()})
    # the baseline's evaluate step dead-lettered the forecasters (not in the catalogue), so its
    # locality stage never saw a forecast: the same input, for a like-for-like ratio
    t_nofc, _, _ = run(contexts, forecasts=False)

    n = len(points)
    print(
        f"winter-episode, {'weifang' if quick else 'all localities'}, {hours} h: "
        f"{n_samples} samples → {len(records)} aggregates records, {n} points; "
        f"{n_tr} transitions ({n_warn} warnings)"
    )
    print(f"  decode (orjson)        {_rate(n, t_decode):>12,.0f} points/s")
    print(f"  evaluate (rules.evaluate){_rate(n_samples, t_eval):>12,.0f} samples/s")
    print(
        f"  locality, warnings on  {_rate(n, t_loc):>12,.0f} points/s"
        f"  ({_rate(n_samples, t_loc):,.0f} samples/s)"
    )
    print(f"  locality, no warnings  {_rate(n, t_nowarn):>12,.0f} points/s")
    print(
        f"  locality per record    {_rate(n, t_rec):>12,.0f} points/s"
        f"  ({_rate(n_samples, t_rec):,.0f} samples/s; {len(merged)} records of {BATCH} samples'"
        f" points; {n_tr_rec} transitions ({n_warn_rec} warnings))"
    )
    print(
        f"RESULT locality_per_point_samples_per_s={_rate(n_samples, t_loc):.0f} "
        f"locality_per_record_samples_per_s={_rate(n_samples, t_rec):.0f} "
        f"ratio={t_loc / t_rec:.2f}"
    )
    _dense(quick)
    if not os.environ.get("ENVWATCH_BENCH_BASELINE_CHILD"):
        before = _baseline(quick)
        if before is not None:
            now = _rate(n_samples, t_loc)
            alike = _rate(n_samples, t_nofc)
            print(
                f"  locality before ({BASELINE_REV}) {before:>10,.0f} samples/s; "
                f"now {now:,.0f} samples/s: ratio now/before {now / before:.2f}; without the "
                f"forecasts the baseline never received {alike:,.0f}/s: ratio {alike / before:.2f}"
            )
    print(
        f"  ratios: locality/decode 1 : {t_loc / t_decode:.0f}; "
        f"locality time per sample = {t_loc / t_eval:.2f} × evaluate's; "
        f"warnings' share of the locality step {max(0.0, 1 - t_nowarn / t_loc):.0%}"
    )


def _merge(per_sample: list[list[bytes]], merge: Any, decode: Any) -> list[list[dict[str, Any]]]:
    """The aggregates records the evaluate agent sends: each batch's outputs merged per key."""
    out: list[list[dict[str, Any]]] = []
    for i in range(0, len(per_sample), BATCH):
        batch = [(AGG, _locality_of(v), v) for recs in per_sample[i : i + BATCH] for v in recs]
        out += [decode(v) for _t, _k, v in merge(batch, {AGG})]
    return out


def _locality_of(value: bytes) -> bytes:
    import orjson

    first = orjson.loads(value)[0]
    return str(first["tags"]["locality"]).encode()


def _dense(quick: bool) -> None:
    """bench_worker's stream: STATIONS stations of one locality, hourly — per point and per
    record (records of BATCH samples' points), best of ROUNDS each, alternately."""
    from bench.bench_worker import STATIONS, _records
    from streams.catalog import CatalogView, locality_context
    from streams.steps import EvaluateStep
    from streams.wire import decode_points, merge_point_records

    hours = 24 if quick else 72
    n = STATIONS * hours
    view = CatalogView(None)
    evaluate = EvaluateStep(view, max_future=timedelta(hours=1), max_past=timedelta(days=400))
    partition: dict[str, Any] = {}
    per_sample = [
        [v for topic, _k, v in evaluate(partition, key or b"", value, i, ts, 0) if topic == AGG]
        for i, (key, value, ts) in enumerate(_records(n, datetime(2026, 12, 1, tzinfo=UTC), [1]))
    ]
    single = [[p] for recs in per_sample for v in recs for p in decode_points(v)]
    merged = _merge(per_sample, merge_point_records, decode_points)
    ctx = locality_context(view, "weifang")
    rules = default_rules()
    best = {"point": float("inf"), "record": float("inf")}
    for _ in range(ROUNDS):
        for mode, recs in (("point", single), ("record", merged)):
            st = LocalityState("weifang", rules)
            t = time.perf_counter()
            if mode == "point":
                for rec in recs:
                    st.step(rec[0], ctx)
            else:
                for rec in recs:
                    st.step_record(rec, ctx)
            best[mode] = min(best[mode], time.perf_counter() - t)
    print(
        f"  dense stream ({STATIONS} stations of one locality, {hours} h, {n} samples): "
        f"per point {_rate(n, best['point']):,.0f} samples/s, "
        f"per record {_rate(n, best['record']):,.0f} samples/s "
        f"(ratio {best['point'] / best['record']:.2f})"
    )


def _baseline(quick: bool) -> float | None:
    """The locality stage's samples/s at ``BASELINE_REV`` on the same input, run in a child
    process from a temporary worktree (None, with the reason printed, where git cannot)."""
    with tempfile.TemporaryDirectory(prefix="envwatch-bench-") as tmp:
        tree = Path(tmp) / "tree"
        made = subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), BASELINE_REV],
            capture_output=True,
            text=True,
            check=False,
        )
        if made.returncode != 0:
            print(f"  (no baseline: git worktree {BASELINE_REV}: {made.stderr.strip()[:200]})")
            return None
        try:
            env = {**os.environ, "PYTHONPATH": str(tree), "ENVWATCH_BENCH_BASELINE_CHILD": "1"}
            args = [sys.executable, "-m", "bench", "locality"] + (["--quick"] if quick else [])
            run = subprocess.run(
                args, cwd=tree, env=env, capture_output=True, text=True, check=False
            )
            for line in run.stdout.splitlines():
                if "locality, warnings on" in line:
                    return float(line.split("(")[1].split()[0].replace(",", ""))
            print(f"  (no baseline: {run.stderr.strip()[-300:]})")
            return None
        finally:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)],
                capture_output=True,
                check=False,
            )
