"""Water emergencies (pure): sudden changes at a section and the catalogue's river links.

**Sudden change (水质突变)** — :func:`sudden_change`, called by ``rules.evaluate.step`` for every
water sample with the section's per-source state. Per factor, the sample is compared with the
section's own recent **baseline**: the median of the factor's values in the samples labelled in
the :data:`WINDOW_HOURS` before it, leaving out the samples that were themselves part of a
jump (so a spill lasting several samples is still judged against the water before it). A factor
needs :data:`MIN_BASELINE` such values, else it is not judged (no field is written for it).

A **jump** is a change in the harmful direction of at least the larger of a relative and an
absolute amount:

* "≤" items of GB 3838-2002 表1 (COD, CODMn, NH3-N, TP, TN, metals …): value ≥ max(baseline ×
  :data:`RISE_RATIO`, baseline + ½ × the item's class III limit);
* dissolved oxygen: value ≤ min(baseline × :data:`DROP_RATIO`, baseline − ½ × the class III
  limit 5 mg/L);
* pH: |value − baseline| ≥ :data:`PH_STEP`.

The sample's **excess** is its change as a share of the jump's size (1 = exactly at the
threshold). A factor is in a jump when the excess is > 1, and stays in it while the excess is
> :data:`CLEAR_SHARE` (hysteresis: a value wavering around the threshold does not flap). Every
judged factor gets its verdict on every sample — in a jump or not — so an alert opened by a jump
is closed by the explicit verdict of the sample that is back near the baseline.

No standard known to envwatch sets these numbers: the window, the ratios, the half-class-III
steps, the pH step, the minimum baseline and the clear share are envwatch's choice [MEM], chosen
so that the
normal daily cycle of DO and pH and a ± 10 % drift never make a jump (tests/rules/
test_water_events.py), while a spill that doubles a pollutant does.

A level held for longer than the window becomes the section's new baseline: once every sample
of the window is part of the jump, the factor has no baseline; the samples after it form one.

**Links** — :func:`downstream_of` and :func:`upstream_of` read the catalogue's ``upstream`` /
``downstream`` links in both directions; :func:`downstream_of` follows them transitively (the
sections, and among them the drinking-water sources, at risk from a section).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from rules.water import Comparison, item_standard

#: The baseline window: samples labelled in [t − 24 h, t) (envwatch's choice [MEM]; six
#: samples of an automatic station reporting every 4 h, standards.md §3.3).
WINDOW_HOURS: Final = 24
#: Values a factor needs in the window to have a baseline (envwatch's choice [MEM]).
MIN_BASELINE: Final = 3
#: A rise to at least twice the baseline (envwatch's choice [MEM]).
RISE_RATIO: Final = 2.0
#: A fall of dissolved oxygen to at most half the baseline (envwatch's choice [MEM]).
DROP_RATIO: Final = 0.5
#: The absolute part of a jump as a share of the item's GB 3838-2002 表1 class III limit
#: (envwatch's choice [MEM]: half a class III limit is a change a section cannot make by itself).
STEP_SHARE: Final = 0.5
#: A change of pH by one unit either way (envwatch's choice [MEM]; GB 3838 allows 6–9).
PH_STEP: Final = 1.0
#: A factor in a jump stays in it while its excess is above this share (envwatch's choice [MEM]).
CLEAR_SHARE: Final = 0.5
#: Sample slots kept per section: the window plus the evaluate stage's lateness horizon
#: (rules.evaluate.LATENESS_HOURS = 48 h), so a late sample is judged against its own window.
KEEP_HOURS: Final = WINDOW_HOURS + 48

#: Water factors judged for sudden changes: GB 3838-2002 表1 items with limits (TN 第9项 too).
_CLASS_III: Final = 3


@dataclass(frozen=True, slots=True)
class Change:
    """One factor of one sample against the section's baseline."""

    factor: str
    value: float
    baseline: float
    #: the value at which the change is a jump (on the side of the change for pH)
    threshold: float
    #: "rise" or "drop"
    direction: str
    #: the change as a share of the jump's size (1 = at the threshold)
    excess: float
    #: whether the factor is in a jump at this sample (with hysteresis)
    jump: bool


def _median(values: list[float]) -> float:
    values = sorted(values)
    n = len(values)
    mid = n // 2
    return values[mid] if n % 2 else (values[mid - 1] + values[mid]) / 2


def judge(
    factor: str, value: float, baseline: float, *, lake: bool, was_jump: bool
) -> Change | None:
    """One factor's value against its baseline; None for a factor without a rule (no GB 3838
    limit: temperature, conductivity, turbidity, chlorophyll, fecal coliform)."""
    if factor == "ph":
        direction = "rise" if value >= baseline else "drop"
        threshold = baseline + PH_STEP if direction == "rise" else baseline - PH_STEP
        excess = abs(value - baseline) / PH_STEP
    else:
        std = item_standard(factor, lake=lake)
        if std is None or factor == "fecal_coliform":
            return None
        step = STEP_SHARE * std.limit(_CLASS_III)
        if std.comparison is Comparison.AT_LEAST:  # dissolved oxygen: a fall is harmful
            direction = "drop"
            threshold = min(baseline * DROP_RATIO, baseline - step)
            excess = (baseline - value) / (baseline - threshold)
        else:
            direction = "rise"
            threshold = max(baseline * RISE_RATIO, baseline + step)
            excess = (value - baseline) / (threshold - baseline)
    jump = excess > 1.0 or (was_jump and excess > CLEAR_SHARE)
    return Change(factor, value, baseline, threshold, direction, excess, jump)


def sudden_change(
    state: dict[str, Any], at_s: int, values: Mapping[str, float], *, lake: bool
) -> list[Change]:
    """Judge a sample labelled ``at_s`` (epoch seconds) of one section and file it in ``state``
    (a plain JSON-able dict, updated in place: ``{"<seconds>": {"v": values, "j": [factors in a
    jump]}}``). The verdicts depend only on the samples labelled before it, so a re-delivered
    sample gets the same verdicts, and a late one (inside :data:`KEEP_HOURS`) is judged against
    its own window; it does not re-judge the samples after it."""
    start = at_s - WINDOW_HOURS * 3600
    earlier = sorted((int(k), slot) for k, slot in state.items() if start <= int(k) < at_s)
    previous = earlier[-1][1] if earlier else None
    out: list[Change] = []
    for factor in sorted(values):
        base = [
            float(slot["v"][factor])
            for _, slot in earlier
            if factor in slot["v"] and factor not in slot["j"]
        ]
        if len(base) < MIN_BASELINE:
            continue
        value = values[factor]
        if not math.isfinite(value):
            continue
        was = previous is not None and factor in previous["j"]
        got = judge(factor, value, _median(base), lake=lake, was_jump=was)
        if got is not None:
            out.append(got)
    state[str(at_s)] = {"v": dict(values), "j": [c.factor for c in out if c.jump]}
    newest = max(int(k) for k in state)
    for k in [k for k in state if int(k) < newest - KEEP_HOURS * 3600]:
        del state[k]
    return out


# ----------------------------------------------------------------------------- links


def upstream_of(
    links: Iterable[tuple[str, Iterable[str], Iterable[str]]],
) -> dict[str, tuple[str, ...]]:
    """Each section's upstream neighbours from ``(id, upstream, downstream)`` triples: its own
    ``upstream`` list and every section whose ``downstream`` names it (sorted, unique)."""
    up: dict[str, set[str]] = {}
    for sid, ups, downs in links:
        up.setdefault(sid, set()).update(ups)
        for d in downs:
            up.setdefault(d, set()).add(sid)
    return {s: tuple(sorted(u - {s})) for s, u in up.items()}


def downstream_of(
    links: Iterable[tuple[str, Iterable[str], Iterable[str]]],
) -> dict[str, tuple[str, ...]]:
    """Every section downstream of each section, following the links transitively (nearest
    first, then by id; a loop in the links ends the walk)."""
    down: dict[str, set[str]] = {}
    for sid, ups, downs in links:
        down.setdefault(sid, set()).update(downs)
        for u in ups:
            down.setdefault(u, set()).add(sid)
    out: dict[str, tuple[str, ...]] = {}
    for start in down:
        seen: list[str] = []
        frontier = sorted(down[start])
        while frontier:
            nxt: list[str] = []
            for s in frontier:
                if s != start and s not in seen:
                    seen.append(s)
                    nxt += sorted(down.get(s, ()))
            frontier = nxt
        out[start] = tuple(seen)
    return out
