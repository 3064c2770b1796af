"""The plans' progress at each day's close in the locality stage (alerts/progress_live.py).

Laixi (deploy/config/laixi.yaml): PM2.5 annual mean target and good-day ratio from the plan
(003_021375295357aa36.txt). One station reports every hour of 2026 from 1 Jan; its PM2.5 is a
constant per day, so the city's daily mean is that value (one station, every hour valid).
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from alerts.locality import LocalityState, StepOutput
from alerts.progress_live import MIN_DAYS_FOR_ALERTS, PlanTracker
from alerts.rules import default_rules
from rules.catalog import load_catalog
from streams.catalog import CatalogView, locality_context

BJ = ZoneInfo("Asia/Shanghai")
CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "config"
CTX = locality_context(CatalogView(CONFIG), "laixi")
H = timedelta(hours=1)
START = datetime(2026, 1, 1, tzinfo=BJ)


def hour(at: datetime, pm25: float) -> dict[str, Any]:
    return {
        "measurement": "reading",
        "tags": {"kind": "air", "locality": "laixi", "source": "aq-lx-01"},
        "fields": {"pm25": pm25, "pm10": 40.0, "so2": 8.0, "no2": 20.0, "co": 0.4, "o3": 40.0},
        "time": at.isoformat(),
    }


def run(st: LocalityState, days: range, pm25_of: Any) -> StepOutput:
    out = StepOutput()
    for d in days:
        for h in range(1, 25):
            got = st.step(hour(START + timedelta(days=d) + h * H, pm25_of(d)), CTX)
            out.points += got.points
            out.transitions += got.transitions
            out.progress += got.progress
    return out


def target_pm25() -> float:
    laixi = load_catalog(CONFIG).locality("laixi")
    [ind] = [i for i in laixi.targets() if i.metric == "pm25_annual_mean"]
    t = ind.effective_target()
    assert t is not None
    return float(t.value)


def test_each_day_close_writes_the_year_to_date_and_serves_it() -> None:
    st = LocalityState("laixi", default_rules())
    out = run(st, range(3), lambda d: (30.0, 60.0, 90.0)[d])
    assert [p["as_of"] for p in out.progress] == ["2026-01-01", "2026-01-02", "2026-01-03"]
    last = {i["metric"]: i for i in out.progress[-1]["indicators"]}
    assert last["pm25_annual_mean"]["value"] == 60.0
    assert last["pm25_annual_mean"]["target"]["value"] == target_pm25()
    # points: one per indicator per day, stamped 00:00 of the next day
    pts = [p for p in out.points if p.measurement == "plan_progress"]
    assert {p.time for p in pts} == {datetime(2026, 1, d, tzinfo=BJ) for d in (2, 3, 4)}
    # too few days for a plan-progress alert
    assert [t for t in out.transitions if t.labels.get("rule") == "plan-progress"] == []
    # the year-to-date inputs survive a restart
    back = LocalityState.from_dict(json.loads(json.dumps(st.to_dict())), default_rules())
    assert back.plan == st.plan


def test_an_indicator_off_track_alerts_after_a_quarter_and_clears_when_back() -> None:
    """PM2.5 at twice the target for 100 days: the projection (= the mean) misses the target by
    far more than 5 % → off_track, critical, once the year has 90 days of data (envwatch's
    choice); then clean days (5 µg/m³) bring the mean back under the target → resolved."""
    target = target_pm25()
    st = LocalityState("laixi", default_rules())
    dirty = run(st, range(100), lambda _d: 2 * target)
    alerts = [t for t in dirty.transitions if t.labels.get("rule") == "plan-progress"]
    pm = [t for t in alerts if t.labels["factor"].startswith("pm25_annual_mean")]
    assert [(t.state.value, t.severity.value) for t in pm][:1] == [("firing", "critical")]
    # it fires at the close of day 90 (the 90th day with data): 1 Apr 00:00
    assert pm[0].at == datetime(2026, 4, 1, tzinfo=BJ)
    # mean after n more clean days: (100·2T + 5n)/(100 + n) ≤ T once n ≥ 100T/(T − 5)
    clean = run(st, range(100, 300), lambda _d: 5.0)
    back = [
        t
        for t in clean.transitions
        if t.labels.get("rule") == "plan-progress"
        and t.labels["factor"].startswith("pm25_annual_mean")
    ]
    # on the way back it is first only at risk (within 5 % of the target: warning), then on
    # track (resolved)
    assert [(t.state.value, t.reason.value, t.severity.value) for t in back] == [
        ("firing", "severity_lowered", "warning"),
        ("resolved", "clear_condition_met", "warning"),
    ]
    n = -(-100 * target // (target - 5.0))  # the first n with the mean at or below the target
    assert back[1].at.date() == date(2026, 1, 1) + timedelta(days=100 + int(n))


def test_the_tracker_keeps_one_year() -> None:
    t = PlanTracker()
    t.day(date(2026, 12, 31), {"pm25": 40.0, "aqi": 57, "edition": "HJ 633-2026"})
    t.day(date(2027, 1, 1), {"pm25": 30.0, "aqi": 43, "edition": "HJ 633-2026"})
    assert list(t.days) == ["2027-01-01"]
    assert t.days_counted(2027) == 1
    assert MIN_DAYS_FOR_ALERTS == 90
