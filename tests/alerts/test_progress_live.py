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


# --------------------------------------------------------------------------- dustfall, late days

WF = locality_context(CatalogView(CONFIG), "weifang")


def dustfall_verdicts(monitor: str, days_values: list[tuple[datetime, float]]) -> list[Any]:
    """Daily dustfall samples of ``monitor`` through the real evaluate step (rules.engine.step
    with the catalogue's context); what it forwards to the locality stage (streams.wire)."""
    from rules import evaluate as engine
    from streams.wire import for_locality, point_dict

    ctx = CatalogView(CONFIG).context(monitor)
    assert ctx is not None
    state = None
    out = []
    for at, v in days_values:
        sample = engine.Sample(
            kind="monitor",
            locality="weifang",
            source=monitor,
            time=at,
            interval="day",
            values={"dustfall": (v, "N")},
        )
        state, pts = engine.step(state, sample, ctx)
        out += [json.loads(json.dumps(point_dict(p))) for p in pts if for_locality(p)]
    return out


def wf_hour(at: datetime, pm25: float) -> dict[str, Any]:
    p = hour(at, pm25)
    p["tags"] = {"kind": "air", "locality": "weifang", "source": "aq-wf-01"}
    return p


def test_dustfall_monthly_means_reach_the_progress() -> None:
    """Weifang's 全市平均降尘量 ≤ 7 t/(month·km²) (001_15ef1b070f9ae15b.txt#L351). Worked out from
    the samples: mon-wf-dustfall-01 reports 6 and 8 in January (mean 7.0) and 10 on 1 February;
    mon-wf-dustfall-02 reports 4 in January and nothing in February. The locality's month = the
    mean of its monitors' monthly means: January (7.0 + 4.0)/2 = 5.5, February 10.0 (one
    monitor) → year to date (5.5 + 10)/2 = 7.75, the worst month (February, 10 > 7) decides the
    projection: off track."""
    st = LocalityState("weifang", default_rules())
    points = dustfall_verdicts(
        "mon-wf-dustfall-01",
        [(START + timedelta(days=1), 6.0), (START + timedelta(days=2), 8.0)],
    )
    points += dustfall_verdicts("mon-wf-dustfall-02", [(START + timedelta(days=3), 4.0)])
    points += dustfall_verdicts("mon-wf-dustfall-01", [(datetime(2026, 2, 1, 12, tzinfo=BJ), 10.0)])
    assert any(p["measurement"] == "verdict" and "dustfall" in p["fields"] for p in points)
    for p in points:
        st.step(p, WF)
    assert st.plan.dustfall_months(date(2026, 2, 1)) == {1: 5.5, 2: 10.0}
    # a restart keeps them
    back = LocalityState.from_dict(json.loads(json.dumps(st.to_dict())), default_rules())
    assert back.plan == st.plan
    # the day's close (1 Feb) serves them
    out = StepOutput()
    for h in range(1, 25):
        got = back.step(wf_hour(datetime(2026, 2, 1, tzinfo=BJ) + h * H, 30.0), WF)
        out.progress += got.progress
    [rec] = out.progress
    [dust] = [i for i in rec["indicators"] if i["metric"] == "dustfall_monthly_mean"]
    assert dust["value"] == 7.75
    assert dust["projection"] == 10.0
    assert dust["status"] == "off_track"
    assert dust["details"]["months"] == {"1": 5.5, "2": 10.0}  # JSON object keys
    import orjson

    assert orjson.loads(orjson.dumps(rec)) == rec  # what the locality stage sends


def test_dustfall_of_a_new_year_starts_afresh() -> None:
    t = PlanTracker()
    t.dustfall("m1", date(2026, 12, 1), 6.0)
    t.dustfall("m1", date(2027, 1, 1), 5.0)
    t.dustfall("m2", date(2026, 12, 1), 9.0)  # late data of the closed year: ignored
    assert t.dust == {"m1": {"2027-01": 5.0}}
    assert t.dustfall_months(date(2027, 1, 15)) == {1: 5.0}


def test_a_day_without_pm25_still_closes_and_a_late_correction_refreshes_the_newest_day() -> None:
    """1 Jan: PM2.5 30 all day. 2 Jan: the PM2.5 analyser is down from 11:00 (10 valid hours,
    < 20: no daily mean, GB 3095 表4) — the day still closes: the record is as of 2 Jan with one
    valid PM2.5 day. 3 Jan: PM2.5 60 → mean (30 + 60)/2 = 45.0. Then 1 Jan's hours are resent
    with PM2.5 90 (a late correction): 1 Jan's points are rewritten (mean as of 1 Jan = 90), and
    the record served is still as of 3 Jan, now (90 + 60)/2 = 75.0."""
    st = LocalityState("laixi", default_rules())
    out = StepOutput()
    for d, pm25 in ((0, 30.0), (1, 30.0), (2, 60.0)):
        for h in range(1, 25):
            p = hour(START + timedelta(days=d) + h * H, pm25)
            if d == 1 and h > 10:
                del p["fields"]["pm25"]
            got = st.step(p, CTX)
            out.progress += got.progress
    assert [r["as_of"] for r in out.progress] == ["2026-01-01", "2026-01-02", "2026-01-03"]
    assert [r["days"] for r in out.progress] == [1, 1, 2]

    def pm(rec: dict[str, Any]) -> Any:
        return next(i for i in rec["indicators"] if i["metric"] == "pm25_annual_mean")["value"]

    assert pm(out.progress[-1]) == 45.0
    late = StepOutput()
    for h in range(1, 25):
        got = st.step(hour(START + h * H, 90.0), CTX)
        late.points += got.points
        late.progress += got.progress
    assert {r["as_of"] for r in late.progress} == {"2026-01-03"}
    assert pm(late.progress[-1]) == 75.0
    history = [
        p
        for p in late.points
        if p.measurement == "plan_progress" and p.tags["metric"] == "pm25_annual_mean"
    ]
    assert {p.time: p.fields["value"] for p in history} == {
        datetime(2026, 1, 2, tzinfo=BJ): 90.0,
        datetime(2026, 1, 4, tzinfo=BJ): 75.0,
    }
