"""Simulators: determinism, daily cycles, and the documented effect of every scenario.

Expected values are written here by hand from the standards' tables (HJ 633-2026 表3,
GB 3838-2002 表1, GB 13271-2014 表3/表6) and from the scenario timelines in
docs/simulators.md — never computed by the code under test.
"""

from __future__ import annotations

import io
import itertools
import json
import math
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from ingest import hj212
from ingest.schemas import Flag, Sample
from ingest.simulators import (
    Delivery,
    ScenarioError,
    SimClock,
    SimulatorError,
    SourceSpec,
    SpecError,
    default_specs,
    simulate,
    specs_from_catalog,
)
from ingest.simulators.publish import JsonLinesSink, hj212_packet, play
from rules.factors import Kind

BJ = ZoneInfo("Asia/Shanghai")
H = timedelta(hours=1)
WINTER = datetime(2026, 12, 1, tzinfo=BJ)  # a Tuesday in the heating season
SUMMER = datetime(2026, 7, 1, tzinfo=BJ)
SPECS = default_specs()
CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "config"


def run(scenario: str | None = None, *, start: datetime = WINTER, hours: float = 24, seed: int = 7, target: str | None = None) -> list[Delivery]:  # fmt: skip
    return list(
        simulate(SPECS, start=start, hours=hours, seed=seed, scenario=scenario, target=target)
    )


def by_source(ds: list[Delivery], source: str) -> list[Sample]:
    return [d.sample for d in ds if d.sample.source == source]


def value(s: Sample, factor: str) -> float:
    v = s.values[factor].value
    assert v is not None
    return v


def key(d: Delivery) -> tuple[str, str, str]:
    return (d.at.isoformat(), d.sample.source, d.sample.model_dump_json(by_alias=True))


# ----------------------------------------------------------------------------- determinism


def test_same_seed_gives_the_identical_stream_and_another_seed_does_not() -> None:
    a = [key(d) for d in run("winter-episode", hours=48)]
    b = [key(d) for d in run("winter-episode", hours=48)]
    c = [key(d) for d in run("winter-episode", hours=48, seed=8)]
    assert a == b
    assert a != c
    assert len(a) == len(c)  # same messages, other values


def test_stream_is_in_delivery_order_and_labels_are_period_ends() -> None:
    ds = run(hours=24)
    assert [d.at for d in ds] == sorted(d.at for d in ds)
    aq = by_source(ds, "aq-wf-01")
    # 24 hourly samples labelled 01:00 … 24:00 (END of each hour, architecture.md §5)
    assert [s.time for s in aq] == [WINTER + k * H for k in range(1, 25)]
    ws = by_source(ds, "ws-wf-01")
    # water every 4 h: 04:00, 08:00, …, 24:00
    assert [s.time for s in ws] == [WINTER + 4 * k * H for k in range(1, 7)]


def test_a_scenario_changes_only_its_target() -> None:
    base = {(d.sample.source, d.sample.time): d.sample for d in run(hours=12)}
    changed = {(d.sample.source, d.sample.time): d.sample for d in run("nox-exceedance", hours=12)}
    assert base.keys() == changed.keys()
    differing = {k[0] for k in base if base[k] != changed[k]}
    assert differing == {"e-lx-01-g1"}


# ----------------------------------------------------------------------------- daily cycles


def _mean_by_slot(samples: list[Sample], factor: str, hours: set[int]) -> float:
    xs = [value(s, factor) for s in samples if (s.time - H).astimezone(BJ).hour in hours]
    return sum(xs) / len(xs)


def test_winter_pm25_is_higher_at_night_and_morning_than_in_the_afternoon() -> None:
    air = [s for s in SPECS if s.kind is Kind.AIR]
    pm = [d.sample for d in simulate(air, start=WINTER, hours=14 * 24, seed=7)]
    night_morning = _mean_by_slot(pm, "pm25", {0, 1, 2, 3, 4, 5, 6, 7, 8})
    afternoon = _mean_by_slot(pm, "pm25", {13, 14, 15, 16})
    assert night_morning > 1.5 * afternoon


def test_summer_o3_peaks_in_the_afternoon() -> None:
    ds = run(start=SUMMER, hours=7 * 24)
    o3 = [d.sample for d in ds if d.sample.kind is Kind.AIR]
    afternoon = _mean_by_slot(o3, "o3", {14, 15})
    night = _mean_by_slot(o3, "o3", {2, 3, 4})
    assert afternoon > 3 * night
    # and the summer afternoon is far above the winter one
    winter = [d.sample for d in run(hours=7 * 24) if d.sample.kind is Kind.AIR]
    assert afternoon > 2 * _mean_by_slot(winter, "o3", {14, 15})


def test_water_do_cycles_day_and_night_and_quality_stays_stable() -> None:
    ds = run(start=SUMMER, hours=7 * 24)
    ws = by_source(ds, "ws-wf-01")
    # samples labelled 16:00 (slot 15, afternoon) vs 08:00 (slot 7, after dawn)
    afternoon = [value(s, "do") for s in ws if s.time.astimezone(BJ).hour == 16]
    morning = [value(s, "do") for s in ws if s.time.astimezone(BJ).hour == 8]
    assert min(afternoon) > max(morning)
    nh3n = [value(s, "nh3n") for s in ws]
    assert max(nh3n) <= 1.0  # GB 3838-2002 表1 class III: NH3-N ≤ 1.0 mg/L
    assert max(nh3n) / min(nh3n) < 1.5  # slow and stable


def test_noise_is_lower_at_night() -> None:
    ds = run(hours=3 * 24)
    noise = by_source(ds, "mon-wf-noise1")
    day = _mean_by_slot(noise, "noise_leq", set(range(6, 22)))  # 昼间 06:00–22:00
    night = _mean_by_slot(noise, "noise_leq", {22, 23, 0, 1, 2, 3, 4, 5})
    assert day - night > 8


def test_base_outlets_stay_below_their_permit_limits() -> None:
    ds = run(hours=7 * 24)
    for d in ds:
        s = d.sample
        if s.source.endswith("-g1"):
            # GB 13271-2014 表3 coal boiler: NOx 200, SO2 200, PM 30 mg/m³ at O2 9 % (表6);
            # corrected C × (21 − 9)/(21 − O2)
            corr = (21 - 9) / (21 - value(s, "o2"))
            assert value(s, "nox") * corr < 200
            assert value(s, "so2") * corr < 200
            assert value(s, "pm") * corr < 30
        if s.source.endswith("-w1"):
            assert value(s, "cod") < 50  # GB 18918-2002 表1 一级A COD 50 mg/L
            assert value(s, "nh3n") < 5


def test_base_streams_never_reach_a_daily_pm25_of_150() -> None:
    # 150 µg/m³ is IAQI 200 in HJ 633-2026 表3: no warning without a scenario.
    air = [s for s in SPECS if s.kind is Kind.AIR]
    ds = list(simulate(air, start=datetime(2027, 1, 1, tzinfo=BJ), hours=31 * 24, seed=7))
    days: dict[tuple[str, object], list[float]] = defaultdict(list)
    for d in ds:
        s = d.sample
        if s.kind is Kind.AIR:
            days[(s.locality, (s.time - H).astimezone(BJ).date())].append(value(s, "pm25"))
    assert len(days) == 5 * 31
    assert max(sum(v) / len(v) for v in days.values()) < 150


# ----------------------------------------------------------------------------- winter episode

# Documented daily means (docs/simulators.md) and the daily AQI computed by hand with
# HJ 633-2026 表3 PM2.5 日平均 breakpoints (0,0) (35,50) (60,100) (115,150) (150,200) (250,300)
# (350,400) and ceil (4.2.6):
#   55 → 50 + 50·20/25 = 90        70 → 100 + 50·10/55 = 109.1 → 110
#   95 → 100 + 50·35/55 = 131.8 → 132   175 → 200 + 100·25/100 = 225
#   210 → 260   265 → 315   320 → 370   290 → 340   230 → 280
#   100 → 100 + 50·40/55 = 136.4 → 137   60 → 100   45 → 50 + 50·10/25 = 70
EPISODE_MEANS = [55, 70, 95, 175, 210, 265, 320, 290, 230, 100, 60, 45]
EPISODE_AQI = [90, 110, 132, 225, 260, 315, 370, 340, 280, 137, 100, 70]
PM25_BP = [(0, 0), (35, 50), (60, 100), (115, 150), (150, 200), (250, 300), (350, 400), (500, 500)]
# HJ 633-2026 表3 PM10 日平均: 0/50/120/250/350/420/500/600 → IAQI 0/50/100/150/200/300/400/500
PM10_BP = [(0, 0), (50, 50), (120, 100), (250, 150), (350, 200), (420, 300), (500, 400), (600, 500)]


def iaqi(c: float, bps: list[tuple[int, int]]) -> int:
    c = round(c)
    for (c_lo, i_lo), (c_hi, i_hi) in itertools.pairwise(bps):
        if c <= c_hi:
            return math.ceil((i_hi - i_lo) * (c - c_lo) / (c_hi - c_lo) + i_lo - 1e-9)
    return 500


def _daily(samples: list[Sample], factor: str) -> dict[int, float]:
    per_day: dict[int, list[float]] = defaultdict(list)
    for s in samples:
        per_day[((s.time - H).astimezone(BJ).date() - WINTER.date()).days].append(value(s, factor))
    assert all(len(v) == 24 for v in per_day.values())
    return {d: sum(v) / 24 for d, v in per_day.items()}


@pytest.fixture(scope="module")
def episode() -> list[Delivery]:
    return run("winter-episode", hours=12 * 24)


def test_winter_episode_daily_means_and_aqi_are_the_documented_ones(
    episode: list[Delivery],
) -> None:
    stations = sorted({d.sample.source for d in episode if d.sample.source.startswith("aq-wf-")})
    assert stations == ["aq-wf-01", "aq-wf-02", "aq-wf-03"]
    for st in stations:
        samples = by_source(episode, st)
        pm25 = _daily(samples, "pm25")
        pm10 = _daily(samples, "pm10")
        assert list(pm25) == list(range(12))
        for d in range(12):
            assert pm25[d] == pytest.approx(EPISODE_MEANS[d], abs=0.1)
            aqi_pm25 = iaqi(pm25[d], PM25_BP)
            assert aqi_pm25 == EPISODE_AQI[d]
            assert iaqi(pm10[d], PM10_BP) < aqi_pm25  # PM2.5 is the primary pollutant
    daily = EPISODE_AQI
    assert [d for d in range(12) if daily[d] > 200] == [3, 4, 5, 6, 7, 8]
    assert [d for d in range(12) if daily[d] > 300] == [5, 6, 7]
    assert all(daily[d] <= 150 for d in (9, 10, 11))


def test_winter_episode_gives_yellow_orange_red_lifted_under_the_national_rule(
    episode: list[Delivery],
) -> None:
    # City daily AQI from the generated hours (mean of the stations' daily means), then the
    # 环办大气函〔2018〕875号 grading (standards.md §6.1) on natural days, written out here:
    # yellow > 200 for ≥ 2 d; orange > 200 ≥ 3 d and > 300 ≥ 1 d; red > 200 ≥ 4 d and
    # > 300 ≥ 2 d; lift when ≤ 150 for 36 h (checked at day granularity: 2 days).
    per_station = [
        _daily(by_source(episode, st), "pm25") for st in ("aq-wf-01", "aq-wf-02", "aq-wf-03")
    ]
    city = [iaqi(sum(p[d] for p in per_station) / 3, PM25_BP) for d in range(12)]
    level, changes = "none", []
    above200 = above300 = clean = 0
    for d, aqi in enumerate(city):
        above200 = above200 + 1 if aqi > 200 else 0
        above300 = above300 + 1 if aqi > 300 else 0
        clean = clean + 1 if aqi <= 150 else 0
        new = level
        if above200 >= 4 and above300 >= 2:
            new = "red"
        elif above200 >= 3 and above300 >= 1 and level != "red":
            new = "orange"
        elif above200 >= 2 and level == "none":
            new = "yellow"
        if level != "none" and clean >= 2:
            new = "lifted"
        if new != level:
            changes.append((d, new))
            level = new
    assert changes == [(4, "yellow"), (5, "orange"), (6, "red"), (10, "lifted")]


def test_winter_episode_forecasts_arrive_ahead_of_the_episode(episode: list[Delivery]) -> None:
    fc = [d for d in episode if d.sample.source == "fc-weifang"]
    assert all(d.sample.kind is Kind.FORECAST for d in fc)
    by_day = {((d.sample.time - timedelta(days=1)).date() - WINTER.date()).days: d for d in fc}
    for day in range(3, 9):
        d = by_day[day]
        day_start = WINTER + timedelta(days=day)
        # issued at 20:00 Beijing three days before: 52 h before the day begins
        assert d.at == day_start - timedelta(hours=52)
        assert value(d.sample, "aqi") == EPISODE_AQI[day]
        assert value(d.sample, "pm25") == EPISODE_MEANS[day]
    assert value(by_day[9].sample, "aqi") <= 150
    # other localities' forecasts stay below the warning threshold
    others = [d for d in episode if d.sample.kind is Kind.FORECAST and d.sample.locality != "weifang"]  # fmt: skip
    assert others
    assert max(value(d.sample, "aqi") for d in others) <= 200


def test_winter_episode_leaves_other_localities_alone(episode: list[Delivery]) -> None:
    base = {(d.sample.source, d.sample.time): d.sample for d in run(hours=12 * 24)}
    for d in episode:
        if d.sample.locality != "weifang":
            assert base[(d.sample.source, d.sample.time)] == d.sample


# ----------------------------------------------------------------------------- other scenarios


def test_river_fluoride_is_worse_than_v_in_the_documented_window() -> None:
    ds = run("river-fluoride", hours=72)
    ws = by_source(ds, "ws-lx-jingzhuang")
    assert len(ws) == 18  # every 4 h for 72 h
    for s in ws:
        h = (s.time - WINTER) / H
        f = value(s, "fluoride")
        if 24 <= h < 48:
            assert f > 1.5  # GB 3838-2002 表1: fluoride > 1.5 mg/L is 劣V
        elif 20 <= h < 24 or 48 <= h < 52:
            assert 1.0 < f <= 1.5  # class IV
        else:
            assert f <= 1.5
    assert sum(1 for s in ws if value(s, "fluoride") > 1.5) == 6  # labels 24, 28, …, 44 h


def test_nox_exceedance_two_hours_above_the_permit_limit_after_o2_correction() -> None:
    ds = run("nox-exceedance", hours=12)
    outlet = by_source(ds, "e-lx-01-g1")
    above = []
    for s in outlet:
        corrected = value(s, "nox") * (21 - 9) / (21 - value(s, "o2"))  # GB 13271-2014 式(1)
        if corrected > 200:  # GB 13271-2014 表3 NOx 200 mg/m³ (default limit)
            above.append(((s.time - WINTER) / H, value(s, "nox")))
    # 1.5 × 200 = 300 and 1.4 × 200 = 280 at the hours labelled start+7 h and start+8 h
    assert above == [(7, 300.0), (8, 280.0)]


def test_stuck_monitor_repeats_one_value_for_13_samples() -> None:
    ds = run("stuck-monitor", hours=24)
    dust = by_source(ds, "mon-lx-dust1")
    values = [value(s, "dust") for s in dust]  # labels 1 h … 24 h
    stuck = values[1:14]  # labels 2 h … 14 h
    assert len(set(stuck)) == 1
    assert values[0] != stuck[0]
    assert values[14] != stuck[0]


def test_offline_monitor_is_silent_for_six_hours() -> None:
    ds = run("offline", hours=24)
    labels = [(s.time - WINTER) / H for s in by_source(ds, "aq-lx-01")]
    assert labels == [1, 2, 3, *range(10, 25)]


def test_maintenance_flags_m_and_span_values() -> None:
    ds = run("maintenance", hours=12)
    for s in by_source(ds, "e-lx-01-g1"):
        h = (s.time - WINTER) / H
        flags = {v.flag for v in s.values.values()}
        if 3 <= h <= 6:
            assert flags == {Flag.M}
            assert value(s, "nox") == 240  # 1.2 × 200 (span gas), flagged M
        else:
            assert flags == {Flag.N}
            assert value(s, "nox") < 200


def test_late_and_duplicates_reorders_and_duplicates_but_loses_nothing() -> None:
    clean = run(hours=12)
    messy = run("late-and-duplicates", hours=12)
    payload = lambda d: d.sample.model_dump_json(by_alias=True)  # noqa: E731
    clean_count = Counter(payload(d) for d in clean)
    messy_count = Counter(payload(d) for d in messy)
    assert set(messy_count) == set(clean_count)  # same content, nothing lost, nothing new
    twice = {p for p, n in messy_count.items() if n == 2}
    assert all(n in (1, 2) for n in messy_count.values())
    wf = [d for d in messy if d.sample.locality == "weifang"]
    # weifang's deliveries in (start+2 h, start+5 h]: 3 air stations × 3 h, 1 section (label 4 h),
    # 1 gas + 1 wastewater outlet × 3 h, dust + noise + power × 3 h = 9 + 1 + 6 + 9 = 25
    assert len(twice) == 25
    late = [d for d in wf if d.note == "late"]
    assert len(late) == 25
    assert all(d.at == WINTER + timedelta(hours=5, minutes=10) > d.sample.time for d in late)
    times = [d.sample.time for d in wf if d.sample.source == "aq-wf-01"]
    assert times != sorted(times)  # delivered out of order
    # other localities keep their order
    other = [key(d) for d in messy if d.sample.locality != "weifang"]
    assert other == [key(d) for d in clean if d.sample.locality != "weifang"]


# ----------------------------------------------------------------------------- bad input


def test_bad_inputs_raise_typed_errors_naming_the_field() -> None:
    with pytest.raises(SpecError) as exc:
        SourceSpec(kind=Kind.AIR, locality="weifang", source="aq-x", factors=("pm25", "nox"))
    assert exc.value.field == "factors"
    assert "nox" in exc.value.reason
    with pytest.raises(SpecError) as exc:
        SourceSpec(kind=Kind.AIR, locality="Wei Fang", source="aq-x", factors=("pm25",))
    assert exc.value.source == "aq-x"
    with pytest.raises(SimulatorError):
        list(simulate(SPECS, start=datetime(2026, 12, 1), hours=1))
    with pytest.raises(SimulatorError):
        list(simulate(SPECS, start=WINTER + timedelta(minutes=30), hours=1))
    with pytest.raises(ScenarioError) as sc:
        run("volcano")
    assert "winter-episode" in sc.value.reason
    with pytest.raises(ScenarioError):
        run("river-fluoride", target="no-such-source")


# ----------------------------------------------------------------------------- pacing and sinks


def test_play_waits_by_simulated_time_divided_by_speed() -> None:
    ds = [d for d in run(hours=3) if d.sample.source == "aq-wf-01"]  # at +1 h, +2 h, +3 h
    now = [100.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    out = io.StringIO()
    stats = play(ds, JsonLinesSink(out), start=WINTER, speed=3600, monotonic=lambda: now[0], sleep=sleep)  # fmt: skip
    assert stats.sent == 3
    assert slept == pytest.approx([1.0, 1.0, 1.0])  # 3600 s simulated per 1 s
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [x["time"] for x in lines] == [
        "2026-12-01T01:00:00+08:00",
        "2026-12-01T02:00:00+08:00",
        "2026-12-01T03:00:00+08:00",
    ]
    assert lines[0]["schema"] == 1
    assert Sample.model_validate(lines[0]).source == "aq-wf-01"
    clock = SimClock(start=WINTER, speed=60, wall_start=10.0)
    assert clock.sim_at(11.0) == WINTER + timedelta(minutes=1)
    assert clock.wall_at(WINTER + timedelta(hours=1)) == 70.0


def test_hj212_packet_labels_the_start_of_the_hour() -> None:
    d = next(d for d in run("nox-exceedance", hours=8) if d.sample.source == "e-lx-01-g1" and d.sample.time == WINTER + 7 * H)  # fmt: skip
    packet = hj212_packet(d.sample, mn="8888LX00000001", wastewater=False, sent_at=d.at)
    p = hj212.parse(packet)
    assert (p.st, p.cn, p.mn) == ("31", "2061", "8888LX00000001")
    # label 07:00 (end) → DataTime 06:00 (start of the hour, HJ 212-2017 §6.6)
    assert p.cp["DataTime"] == "20261201060000"
    assert float(p.cp["a21002-Avg"]) == 300.0  # a21002 = NOx (HJ 212-2017 附录B)
    assert p.cp["a21002-Flag"] == "N"


# ----------------------------------------------------------------------------- catalogue


def test_specs_from_the_shipped_catalogue() -> None:
    if not (CONFIG / "weifang.yaml").exists():
        pytest.skip(f"no catalogue in {CONFIG}")
    from rules.catalog import load_catalog

    catalog = load_catalog(CONFIG)
    specs = {s.source: s for s in specs_from_catalog(catalog)}
    for st in catalog.stations:
        assert specs[st.id].kind is Kind.AIR
        assert specs[st.id].factors == st.factors
    for sec in catalog.sections:
        assert specs[sec.id].kind is Kind.WATER
    for ent in catalog.enterprises:
        for out in ent.outlets:
            spec = specs[out.id]
            assert spec.mn == out.mn
            assert spec.enterprise == ent.id
            for lim in out.limits:
                if lim.limit is not None:
                    assert spec.limits[lim.factor] == lim.limit
    localities = {st.locality for st in catalog.stations}
    assert {f"fc-{loc}" for loc in localities} <= set(specs)
    # and the whole catalogue simulates, with the episode on its first air locality
    ds = list(simulate(list(specs.values()), start=WINTER, hours=24, scenario="winter-episode"))
    assert ds
    assert {d.sample.source for d in ds} >= {st.id for st in catalog.stations}


def test_catalogue_monitors_follow_their_zone_class_and_role() -> None:
    from rules.catalog import load_catalog

    specs = {s.source: s for s in specs_from_catalog(load_catalog(CONFIG))}
    # GB 3096-2008 表1: 3 类 65/55, 2 类 60/50 dB(A); simulated 6 dB(A) below each
    assert dict(specs["mon-lc-noise-01"].baseline) == {"noise_leq": 59, "noise_leq_night": 49}
    assert dict(specs["mon-tq-noise-01"].baseline) == {"noise_leq": 54, "noise_leq_night": 44}
    # treatment: flat at normal_kw (deploy/config: e-lc-01 180 kW); production: base model
    assert specs["mon-lc-power-02"].subtype == "power-treatment"
    assert dict(specs["mon-lc-power-02"].baseline) == {"power_kw": 180}
    assert specs["mon-lc-power-01"].subtype == "power"
    assert dict(specs["mon-tq-site-01"].limits) == {"dust": 150, "pm10": 150}
    assert specs["aq-wf-04"].area_grade == "I"
    assert specs["aq-wf-03"].area_grade == "II"
    assert specs["ws-wf-03"].lake
    assert not specs["ws-wf-01"].lake
    week = list(simulate([specs[k] for k in ("mon-lc-noise-01", "mon-lc-power-01", "mon-lc-power-02")], start=WINTER, hours=7 * 24, seed=3))  # fmt: skip
    noise = by_source(week, "mon-lc-noise-01")
    day = [value(s, "noise_leq") for s in noise if 6 <= (s.time - H).astimezone(BJ).hour < 22]
    night = [value(s, "noise_leq") for s in noise if not 6 <= (s.time - H).astimezone(BJ).hour < 22]
    assert min(day) >= 56  # 59 ± 3 (bounded): below the day limit 65
    assert max(day) <= 62
    assert min(night) >= 46  # 49 ± 3: below the night limit 55
    assert max(night) <= 52
    treatment = [value(s, "power_kw") for s in by_source(week, "mon-lc-power-02")]
    assert min(treatment) >= 162  # 180 ± 10 %, day and night
    assert max(treatment) <= 198
    production = [value(s, "power_kw") for s in by_source(week, "mon-lc-power-01")]
    # 800 × WORK: 1.6/1.1 by day, 0.6/1.1 at night (± 10 %): always above running_kw 300
    assert min(production) >= 800 * 0.6 / 1.1 * 0.9 - 0.05


# ----------------------------------------------------------------------------- CLI


def test_cli_dry_run_prints_the_scenario_as_json_lines() -> None:
    from streams.cli import app

    runner = CliRunner()
    args = ["simulate", "run", "--scenario", "nox-exceedance", "--start", "2026-12-01T00:00+08:00", "--dry-run"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]
    samples = [Sample.model_validate(x) for x in lines]
    assert len(samples) == 510  # the 12-h default of nox-exceedance over the default network
    nox = {s.time.hour: s.values["nox"].value for s in samples if s.source == "e-lx-01-g1"}
    assert nox[7] == 300.0
    assert nox[8] == 280.0
    again = runner.invoke(app, args)
    assert again.stdout == result.stdout  # deterministic

    listed = runner.invoke(app, ["simulate", "list"])
    assert listed.exit_code == 0
    for name in ("winter-episode", "river-fluoride", "nox-exceedance", "stuck-monitor", "offline", "maintenance", "late-and-duplicates"):  # fmt: skip
        assert name in listed.stdout

    bad = runner.invoke(app, ["simulate", "run", "--scenario", "volcano", "--dry-run"])
    assert bad.exit_code == 2
    assert "unknown scenario" in bad.output
    naive = runner.invoke(app, ["simulate", "run", "--start", "2026-12-01T00:00", "--dry-run"])
    assert naive.exit_code == 2
    assert "offset" in naive.output
    both = runner.invoke(app, ["simulate", "run", "--dry-run", "--mqtt", "localhost:1883"])
    assert both.exit_code == 2


def test_cli_writes_a_file(tmp_path: Path) -> None:
    from streams.cli import app

    out = tmp_path / "stream.jsonl"
    args = ["simulate", "run", "--hours", "2", "--start", "2026-12-01T00:00+08:00", "--out", str(out), "--envelope"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    # 2 h of the default network: 15 stations × 2 + 5 sections × 0 (first label 04:00)
    # + 10 outlets × 2 + 15 monitors × 2 + 5 forecasters × 3 (days 0–2 issued at start) = 95
    assert len(rows) == 95
    assert rows[-1]["topic"] == "env/{kind}/{locality}/{source}".format(**rows[-1]["payload"])


# ----------------------------------------------------------------------------- MQTT


@pytest.mark.integration
def test_mqtt_sink_delivers_every_message_with_a_small_window(mqtt_broker) -> None:  # type: ignore[no-untyped-def]
    import threading

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from ingest.simulators.publish import MqttSink

    got: list[bytes] = []
    subscribed = threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="sim-test-sub")
    sub.on_connect = lambda c, *_: c.subscribe("env/#", qos=1)
    sub.on_subscribe = lambda *_: subscribed.set()
    sub.on_message = lambda _c, _u, m: got.append(m.payload)
    sub.connect(mqtt_broker.host, mqtt_broker.port)
    sub.loop_start()
    try:
        assert subscribed.wait(10)
        ds = run(hours=6)
        sink = MqttSink(mqtt_broker.host, mqtt_broker.port, client_id="sim-test-pub", window=5)
        stats = play(ds, sink, start=WINTER, speed=0)
        sink.close()
        assert sink.acked == stats.sent == len(ds)
        deadline = datetime.now(BJ) + timedelta(seconds=10)
        while len(got) < len(ds) and datetime.now(BJ) < deadline:
            threading.Event().wait(0.05)
        received = sorted(json.dumps(json.loads(p), sort_keys=True) for p in got)
        sent = [d.sample.model_dump(mode="json", by_alias=True) for d in ds]
        assert received == sorted(json.dumps(x, sort_keys=True) for x in sent)
    finally:
        sub.loop_stop()
        sub.disconnect()


# ----------------------------------------------------------------------------- HJ 212 to the gateway


def test_hj212_sink_through_the_real_gateway_gives_back_the_same_samples() -> None:
    import asyncio
    import threading

    from ingest.gateway import Gateway, MnTarget
    from ingest.simulators.publish import Hj212Sink

    outlets = {s.source: s for s in SPECS if s.mn is not None}
    targets = {s.mn: MnTarget(s.locality, s.source, Kind.EMISSION) for s in outlets.values()}
    published: list[tuple[str, bytes]] = []
    dead: list[object] = []

    async def publish(topic: str, payload: bytes) -> None:
        published.append((topic, payload))

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    gateway = Gateway(targets, publish, dead.append)
    asyncio.run_coroutine_threadsafe(gateway.start(), loop).result(10)
    host, port = gateway.address
    rest = io.StringIO()
    sink = Hj212Sink(
        host,
        port,
        {k: (s.mn, s.subtype == "wastewater") for k, s in outlets.items() if s.mn},
        fallback=JsonLinesSink(rest),
    )
    try:
        ds = run("nox-exceedance", hours=9)
        play(ds, sink, start=WINTER, speed=0)
    finally:
        sink.close()
        asyncio.run_coroutine_threadsafe(gateway.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
    sent = [d.sample for d in ds if d.sample.source in outlets]
    assert sink.sent == sink.acked == len(sent) == 10 * 9  # 10 outlets × 9 hours
    assert dead == []
    got = {(s.source, s.time): s for s in (Sample.model_validate_json(p) for _, p in published)}
    assert len(got) == len(sent)
    for s in sent:
        back = got[(s.source, s.time)]  # the gateway turned DataTime (start) back into the end
        assert back.kind is Kind.EMISSION
        for f, v in s.values.items():
            # flow goes through m³/s (gas) or L/s (water) and back: 6 significant digits
            assert back.values[f].value == pytest.approx(v.value, rel=1e-5)
            assert back.values[f].flag == v.flag
    nox = {(s.time - WINTER) / H: s.values["nox"].value for s in got.values() if s.source == "e-lx-01-g1"}  # fmt: skip
    assert nox[7] == 300.0
    assert nox[8] == 280.0
    assert rest.getvalue().count("\n") == len(ds) - len(sent)  # everything else to the fallback


@pytest.mark.parametrize("seed", [0, 1, 2026, 987654321])
def test_episode_means_and_scenario_windows_hold_for_any_seed(seed: int) -> None:
    wf_air = [s for s in SPECS if s.locality == "weifang" and s.kind is Kind.AIR]
    ds = list(simulate(wf_air, start=WINTER, hours=12 * 24, seed=seed, scenario="winter-episode"))
    for st in ("aq-wf-01", "aq-wf-02", "aq-wf-03"):
        pm25 = _daily(by_source(ds, st), "pm25")
        assert [iaqi(pm25[d], PM25_BP) for d in range(12)] == EPISODE_AQI
    section = [s for s in SPECS if s.source == "ws-lx-jingzhuang"]
    fl = list(simulate(section, start=WINTER, hours=72, seed=seed, scenario="river-fluoride"))
    worse = [(d.sample.time - WINTER) / H for d in fl if value(d.sample, "fluoride") > 1.5]
    assert worse == [24, 28, 32, 36, 40, 44]
