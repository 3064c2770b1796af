"""Sudden changes at a section and the river links (rules/water_events.py), hand-computed."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules import evaluate
from rules.water_events import (
    Change,
    downstream_of,
    judge,
    sudden_change,
    upstream_of,
)

T0 = int(datetime(2026, 1, 5, tzinfo=UTC).timestamp())
H4 = 4 * 3600


def run(series: list[dict[str, float]], *, lake: bool = False) -> list[list[Change]]:
    state: dict[str, Any] = {}
    return [sudden_change(state, T0 + i * H4, values, lake=lake) for i, values in enumerate(series)]


def test_no_baseline_before_three_samples_of_the_window() -> None:
    got = run([{"nh3n": 0.45}] * 4)
    assert [len(c) for c in got] == [0, 0, 0, 1]


def test_nh3n_jump_against_the_median_then_clear() -> None:
    # baseline median of 0.4, 0.5, 0.45 = 0.45; threshold max(2 × 0.45, 0.45 + ½ × 1.0 (III)) = 0.95
    series = [{"nh3n": x} for x in (0.4, 0.5, 0.45, 3.0, 5.0, 1.2, 0.5)]
    got = run(series)
    jump = got[3][0]
    assert (jump.baseline, jump.threshold, jump.direction) == (0.45, 0.95, "rise")
    assert jump.excess == pytest.approx((3.0 - 0.45) / 0.5)
    assert jump.jump
    # the jump samples are left out of the baseline: still 0.45 at the peak and after it
    assert [c[0].baseline for c in got[3:]] == [0.45, 0.45, 0.45, 0.45]
    assert [c[0].jump for c in got[3:]] == [True, True, True, False]


def test_hysteresis_holds_a_jump_above_half_its_size() -> None:
    # baseline 0.45, jump size 0.5: 0.75 is excess 0.6 — not a jump alone, held after one
    base = [{"nh3n": 0.45}] * 3
    assert [c[0].jump for c in run([*base, {"nh3n": 0.75}])[3:]] == [False]
    assert [c[0].jump for c in run([*base, {"nh3n": 2.0}, {"nh3n": 0.75}, {"nh3n": 0.65}])[3:]] == [
        True,
        True,
        False,
    ]


def test_cod_needs_both_the_ratio_and_the_step() -> None:
    # COD baseline 4: 2 × 4 = 8 but + ½ × 20 (III) = 14 decides
    c = judge("cod", 12.0, 4.0, lake=False, was_jump=False)
    assert c is not None
    assert c.threshold == 14.0
    assert not c.jump
    # COD baseline 30: + 10 = 40 but 2 × 30 = 60 decides
    c = judge("cod", 59.0, 30.0, lake=False, was_jump=False)
    assert c is not None
    assert c.threshold == 60.0
    assert not c.jump
    c = judge("cod", 60.5, 30.0, lake=False, was_jump=False)
    assert c is not None
    assert c.jump


def test_dissolved_oxygen_drops_and_ph_both_ways() -> None:
    # DO baseline 7: min(3.5, 7 − 2.5) = 3.5
    c = judge("do", 3.4, 7.0, lake=False, was_jump=False)
    assert c is not None
    assert (c.direction, c.threshold, c.jump) == ("drop", 3.5, True)
    c = judge("do", 12.0, 7.0, lake=False, was_jump=False)  # supersaturation is no spill
    assert c is not None
    assert not c.jump
    up = judge("ph", 9.0, 7.8, lake=False, was_jump=False)
    down = judge("ph", 6.5, 7.8, lake=False, was_jump=False)
    assert up is not None
    assert (up.direction, up.threshold, up.jump) == ("rise", 8.8, True)
    assert down is not None
    assert (down.direction, down.threshold, down.jump) == ("drop", 6.8, True)


def test_lake_tp_uses_the_lake_column_and_unclassed_factors_are_not_judged() -> None:
    # TP III: river 0.2, lake 0.05 → steps 0.1 / 0.025; baseline 0.02: 0.12 vs 0.045
    river = judge("tp", 0.1, 0.02, lake=False, was_jump=False)
    lake = judge("tp", 0.1, 0.02, lake=True, was_jump=False)
    assert river is not None
    assert not river.jump
    assert lake is not None
    assert lake.jump
    for f in ("temp", "cond", "turb", "chla", "fecal_coliform"):
        assert judge(f, 100.0, 1.0, lake=False, was_jump=False) is None


def test_window_is_24_hours_and_late_samples_use_their_own_window() -> None:
    state: dict[str, Any] = {}
    for i in range(3):
        sudden_change(state, T0 + i * H4, {"nh3n": 0.45}, lake=False)
    # 28 h after the last: nothing in [t − 24 h, t)
    assert sudden_change(state, T0 + 2 * H4 + 28 * 3600, {"nh3n": 3.0}, lake=False) == []
    # a late sample between them is judged against the three before it
    late = sudden_change(state, T0 + 3 * H4, {"nh3n": 3.0}, lake=False)
    assert [c.jump for c in late] == [True]
    # a re-delivery gets the same verdict
    again = sudden_change(state, T0 + 3 * H4, {"nh3n": 3.0}, lake=False)
    assert again == late


@given(
    noise=st.lists(st.floats(-0.1, 0.1), min_size=30, max_size=30),
    cycle=st.floats(0, 0.15),
)
def test_normal_variation_never_jumps(noise: list[float], cycle: float) -> None:
    """± 10 % around the base, DO ± 1.2 mg/L and pH ± 0.15 in a day (the simulator's cycle)."""
    series = []
    for i, n in enumerate(noise):
        phase = math.sin(2 * math.pi * i / 6)
        series.append(
            {
                "nh3n": 0.45 * (1 + n),
                "codmn": 4.2 * (1 + n),
                "tp": 0.12 * (1 - n),
                "do": 7.5 + 1.2 * phase,
                "ph": 7.8 + cycle * phase,
            }
        )
    assert not any(c.jump for changes in run(series) for c in changes)


def test_engine_writes_water_change_points() -> None:
    ctx = evaluate.SourceContext(target_class=3)
    state = None
    points = []
    for i, nh3n in enumerate((0.4, 0.5, 0.45, 3.0)):
        sample = evaluate.Sample(
            kind="water",
            locality="weifang",
            source="ws-x",
            time=datetime(2026, 1, 5, tzinfo=UTC) + timedelta(hours=4 * (i + 1)),
            interval="hour",
            values={"nh3n": (nh3n, "N"), "ph": (7.8, "N"), "temp": (10.0, "N")},
        )
        state, pts = evaluate.step(state, sample, ctx)
        points += [p for p in pts if p.measurement == "water_change"]
    assert len(points) == 1
    p = points[0]
    assert dict(p.tags) == {"locality": "weifang", "source": "ws-x", "period": "sample"}
    assert p.fields == {
        "nh3n": 3.0,
        "baseline_nh3n": 0.45,
        "limit_nh3n": 0.95,
        "jump_nh3n": True,
        "ph": 7.8,
        "baseline_ph": 7.8,
        "limit_ph": 8.8,
        "jump_ph": False,
    }


def test_links_are_read_both_ways_and_followed_transitively() -> None:
    # weifang (deploy/config): 潍河上游 → 峡山水库 → 潍河入海, written on either end
    links = [
        ("ws-wf-01", (), ("ws-wf-03",)),
        ("ws-wf-02", ("ws-wf-03",), ()),
        ("ws-wf-03", (), ("ws-wf-02",)),
    ]
    assert downstream_of(links)["ws-wf-01"] == ("ws-wf-03", "ws-wf-02")
    assert downstream_of(links)["ws-wf-02"] == ()
    assert upstream_of(links) == {
        "ws-wf-01": (),
        "ws-wf-02": ("ws-wf-03",),
        "ws-wf-03": ("ws-wf-01",),
    }
    # a loop ends the walk
    loop = [("a", (), ("b",)), ("b", (), ("a",))]
    assert downstream_of(loop) == {"a": ("b",), "b": ("a",)}
