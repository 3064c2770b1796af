"""The ``forty-days`` scenario: 960 h of the catalogue whose only limit breaches are the script's.

Every expectation is written here by hand from the script in docs/simulators.md and from the
limits of the catalogue (deploy/config) and the standards (GB 3095-2012 / GB 3095-2026 表1,
GB 3096-2008 表1, GB 3838-2002 表1, GB 13271-2014 式(1)); the breaches are computed from the
generated samples, never with envwatch's engine or the scenario's own constants.

Start 2026-01-25 00:00 Beijing (day 0): days 5–6 = 2026-01-30/31, days 10–11 = 2026-02-04/05,
the nights of days 15 and 16 start 2026-02-09 22:00 and 2026-02-10 22:00; the dustfall month is
January 2026 (days 0–6), February 2026 (days 7–34) follows and closes inside the run; GB 3095-2026
applies from 2026-03-01 (day 35).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from ingest.schemas import Sample
from ingest.simulators import (
    ScenarioError,
    default_specs,
    make_scenario,
    simulate,
    specs_from_catalog,
)
from rules.catalog import Catalog, load_catalog

BJ = ZoneInfo("Asia/Shanghai")
H = timedelta(hours=1)
START = datetime(2026, 1, 25, tzinfo=BJ)
REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "deploy" / "config"


def labels(a: int, b: int) -> set[datetime]:
    """Hourly labels in [start + a h, start + b h)."""
    return {START + k * H for k in range(a, b)}


def v(s: Sample, f: str) -> float:
    x = s.values[f].value
    assert x is not None
    return x


def sampled_day(s: Sample) -> date:
    """The Beijing day a sample belongs to: its label is the END of its period."""
    return (s.time - H).astimezone(BJ).date()


def day_of(index: int) -> date:
    return (START + timedelta(days=index)).date()


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(CONFIG)


@pytest.fixture(scope="module", params=[0, 7], ids=["seed0", "seed7"])
def history(request: pytest.FixtureRequest, catalog: Catalog) -> dict[str, list[Sample]]:
    specs = specs_from_catalog(catalog)
    ds = simulate(specs, start=START, hours=960, seed=request.param, scenario="forty-days")
    out: dict[str, list[Sample]] = defaultdict(list)
    for d in ds:
        out[d.sample.source].append(d.sample)
    for samples in out.values():
        samples.sort(key=lambda s: s.time)
    return out


def _monitors(catalog: Catalog, kind: str) -> list[str]:
    return [m.id for m in catalog.monitors if m.kind == kind]


# ------------------------------------------------------------------ shape of the run


def test_every_hourly_source_reports_960_samples(history: dict[str, list[Sample]]) -> None:
    site = history["mon-tq-site-01"]
    assert [s.time for s in site] == [START + k * H for k in range(1, 961)]
    assert [s.time for s in history["aq-wf-03"]][-1] == datetime(2026, 3, 6, tzinfo=BJ)
    # dustfall daily: days 0 … 39, labelled 2026-01-26 00:00 … 2026-03-06 00:00
    assert len(history["mon-wf-dustfall-01"]) == 40


# ------------------------------------------------------------------ the script, one by one


def test_bypass_open_exactly_for_labels_100_to_103_h(
    history: dict[str, list[Sample]], catalog: Catalog
) -> None:
    opened = {
        (src, s.time)
        for src in _monitors(catalog, "bypass")
        for s in history[src]
        if v(s, "bypass_open") != 0
    }
    # [start+100 h, start+104 h) = 2026-01-29 04:00 … 07:00
    assert opened == {("mon-wf-bypass-01", t) for t in labels(100, 104)}
    assert min(t for _, t in opened) == datetime(2026, 1, 29, 4, tzinfo=BJ)


def _daily_means(samples: Iterable[Sample], f: str) -> dict[date, float]:
    by_day: dict[date, list[float]] = defaultdict(list)
    for s in samples:
        if f in s.values:
            by_day[sampled_day(s)].append(v(s, f))
    return {d: sum(xs) / len(xs) for d, xs in by_day.items()}


def test_outlets_exceed_only_the_wwtp_cod_on_days_5_and_6(
    history: dict[str, list[Sample]], catalog: Catalog
) -> None:
    breaches: set[tuple[str, str, object]] = set()
    for ent in catalog.enterprises:
        for out in ent.outlets:
            ref = catalog.reference_o2(out)
            for lim in out.limits:
                if lim.limit is None:
                    continue
                samples = history[out.id]
                if lim.basis == "day":
                    for d, mean in _daily_means(samples, lim.factor).items():
                        if mean > lim.limit:
                            breaches.add((out.id, lim.factor, d))
                    continue
                for s in samples:
                    x = v(s, lim.factor)
                    if ref is not None and "o2" in s.values:
                        # GB 13271-2014 式(1): C折 = C × (21 − O2基准) / (21 − O2实测)
                        x = x * (21 - ref) / (21 - v(s, "o2"))
                    if x > lim.limit:
                        breaches.add((out.id, lim.factor, s.time))
    # e-lx-wwtp-w1 COD ≤ 40 mg/L (day), 003…#L114: days 5 and 6 = 2026-01-30 and 2026-01-31
    assert breaches == {("e-lx-wwtp-w1", "cod", date(2026, 1, 30)), ("e-lx-wwtp-w1", "cod", date(2026, 1, 31))}  # fmt: skip
    cod = history["e-lx-wwtp-w1"]
    high = {s.time for s in cod if v(s, "cod") > 40}
    # every hour of those days: labels 2026-01-30 01:00 … 2026-02-01 00:00 (start+121 … +168 h)
    assert high == labels(121, 169)
    means = _daily_means(cod, "cod")
    assert 76 <= means[date(2026, 1, 30)] <= 84  # 1.9–2.1 × 40
    assert max(m for d, m in means.items() if d not in {date(2026, 1, 30), date(2026, 1, 31)}) < 30


# GB 3095 表1 (standards.md §2.1), µg/m³ (CO mg/m³): (grade I, grade II) by edition.
# GB 3095-2012 until 2026-02-28 24:00, GB 3095-2026 过渡限值 from 2026-03-01 00:00.
DAILY_2012 = {"pm25": (35, 75), "pm10": (50, 150), "so2": (50, 150), "no2": (80, 80), "co": (4, 4)}
DAILY_2026 = {"pm25": (35, 60), "pm10": (50, 120), "so2": (50, 150), "no2": (80, 80), "co": (4, 4)}
HOURLY = {"so2": (150, 500), "no2": (200, 200), "co": (10, 10), "o3": (160, 200)}  # both
O3_8H = (100, 160)  # both editions


def _edition_daily(day: date) -> dict[str, tuple[int, int]]:
    return DAILY_2012 if day < date(2026, 3, 1) else DAILY_2026


def test_ambient_exceeds_only_at_aq_wf_03_on_days_10_and_11(
    history: dict[str, list[Sample]], catalog: Catalog
) -> None:
    breaches: set[tuple[str, str, str, object]] = set()
    for st in catalog.stations:
        g = 0 if st.area_grade == "I" else 1
        samples = history[st.id]
        for f in st.factors:
            if f in DAILY_2012:
                for d, mean in _daily_means(samples, f).items():
                    if mean > _edition_daily(d)[f][g]:
                        breaches.add((st.id, f, "24h", d))
            if f in HOURLY:
                for s in samples:
                    if v(s, f) > HOURLY[f][g]:
                        breaches.add((st.id, f, "1h", s.time))
        if "o3" in st.factors:
            o3 = [v(s, "o3") for s in samples]
            for i in range(8, len(o3) + 1):  # every 8 consecutive hours, across midnight too
                if sum(o3[i - 8 : i]) / 8 > O3_8H[g]:
                    breaches.add((st.id, "o3", "8h", samples[i - 1].time))
    days = (date(2026, 2, 4), date(2026, 2, 5))  # days 10 and 11
    assert breaches == {("aq-wf-03", f, "24h", d) for f in ("pm25", "pm10") for d in days}
    pm25 = _daily_means(history["aq-wf-03"], "pm25")
    pm10 = _daily_means(history["aq-wf-03"], "pm10")
    for d in days:
        assert pm25[d] == pytest.approx(140, abs=0.06)  # > 75 (2012) and > 60 (2026 过渡)
        assert pm10[d] == pytest.approx(175, abs=0.06)  # > 150 (2012) and > 120 (2026 过渡)


def test_the_city_stays_within_the_daily_limits(
    history: dict[str, list[Sample]], catalog: Catalog
) -> None:
    for loc in catalog.localities:
        stations = [st.id for st in catalog.stations_of(loc.id) if "pm25" in st.factors]
        if not stations:
            continue
        per_station = [_daily_means(history[st], "pm25") for st in stations]
        for d in per_station[0]:
            city = sum(m[d] for m in per_station) / len(per_station)
            assert city <= 60, (loc.id, d, city)  # the stricter GB 3095 grade II daily value
            if loc.id != "weifang" or d not in (date(2026, 2, 4), date(2026, 2, 5)):
                assert city <= 35, (loc.id, d, city)


def test_dustfall_high_in_january_within_the_limit_in_february(
    history: dict[str, list[Sample]], catalog: Catalog
) -> None:
    monthly: dict[tuple[str, int], list[float]] = defaultdict(list)
    for src in _monitors(catalog, "dustfall"):
        for s in history[src]:
            monthly[(src, sampled_day(s).month)].append(v(s, "dustfall"))
    jan = monthly[("mon-wf-dustfall-01", 1)]
    feb = monthly[("mon-wf-dustfall-01", 2)]
    assert len(jan) == 7  # days 0–6: 2026-01-25 … 31 (labels 01-26 00:00 … 02-01 00:00)
    assert len(feb) == 28  # days 7–34, closed by the sample labelled 2026-03-01 00:00 (day 35)
    assert min(jan) >= 10.45  # 11 ± 5 %, clearly above 7 t/(month·km²) (001…#L351)
    assert sum(feb) / len(feb) < 6
    assert max(feb) < 7
    over = {k for k, xs in monthly.items() if sum(xs) / len(xs) > 7}
    assert over == {("mon-wf-dustfall-01", 1)}


# GB 3096-2008 表1, dB(A): class → (昼间 06–22, 夜间 22–06)
NOISE = {"0": (50, 40), "1": (55, 45), "2": (60, 50), "3": (65, 55), "4a": (70, 55), "4b": (70, 60)}


def test_noise_exceeds_only_the_nights_of_days_15_and_16(
    history: dict[str, list[Sample]], catalog: Catalog
) -> None:
    breaches: set[tuple[str, datetime]] = set()
    for m in catalog.monitors:
        if m.kind != "noise":
            continue
        assert m.zone_class is not None
        day_limit, night_limit = NOISE[m.zone_class]
        for s in history[m.id]:
            start_hour = (s.time - H).astimezone(BJ).hour
            limit = day_limit if 6 <= start_hour < 22 else night_limit
            if v(s, "noise_leq") > limit:
                breaches.add((m.id, s.time))
    # night of day 15: labels 2026-02-09 23:00 … 02-10 06:00 = start+383 … +390 h;
    # night of day 16: labels 2026-02-10 23:00 … 02-11 06:00 = start+407 … +414 h
    assert breaches == {("mon-lc-noise-01", t) for t in labels(383, 391) | labels(407, 415)}
    lc = {s.time: v(s, "noise_leq") for s in history["mon-lc-noise-01"]}
    assert all(61 <= lc[t] <= 63 for t in labels(383, 391))  # 3 类 night 55 + 7 ± 1
    assert all(lc[t] < 65 for t in labels(391, 407))  # day 16's day hours: below 65


def test_dust_exceeds_only_the_tianqiao_site_for_labels_400_to_405_h(
    history: dict[str, list[Sample]], catalog: Catalog
) -> None:
    breaches: set[tuple[str, str, datetime]] = set()
    for m in catalog.monitors:
        if m.kind not in ("construction_dust", "road_dust"):
            continue
        for lim in m.limits:
            assert lim.limit is not None
            for s in history[m.id]:
                if v(s, lim.factor) > lim.limit:
                    breaches.add((m.id, lim.factor, s.time))
    # [start+400 h, start+406 h) = 2026-02-10 16:00 … 21:00, dust and PM10 both > 150
    assert breaches == {("mon-tq-site-01", f, t) for f in ("dust", "pm10") for t in labels(400, 406)}  # fmt: skip


def test_vapour_recovery_fault_only_for_labels_500_to_504_h(
    history: dict[str, list[Sample]], catalog: Catalog
) -> None:
    faults = {
        (src, s.time)
        for src in _monitors(catalog, "vapour_recovery")
        for s in history[src]
        if v(s, "vapour_recovery") != 1  # 1 = working (docs/configuration.md)
    }
    assert faults == {("mon-lc-vapour-01", t) for t in labels(500, 505)}


def test_treatment_off_while_production_runs_only_for_labels_600_to_605_h(
    history: dict[str, list[Sample]], catalog: Catalog
) -> None:
    power = [m for m in catalog.monitors if m.kind == "electricity"]
    off: set[tuple[str, datetime]] = set()
    for t in power:
        if t.role != "treatment":
            continue
        p = next(m for m in power if m.enterprise == t.enterprise and m.role == "production")
        assert t.normal_kw is not None
        assert p.running_kw is not None
        production = {s.time: v(s, "power_kw") for s in history[p.id]}
        for s in history[t.id]:
            running = production[s.time] > p.running_kw
            if running and v(s, "power_kw") < 0.5 * t.normal_kw:
                off.add((t.id, s.time))
            assert running, (p.id, s.time)  # production runs day and night (≥ ~393 kW > 300)
    # [start+600 h, start+606 h) = 2026-02-19 00:00 … 05:00; e-lc-01: treatment mon-lc-power-02
    assert off == {("mon-lc-power-02", t) for t in labels(600, 606)}
    lc = {s.time: v(s, "power_kw") for s in history["mon-lc-power-02"]}
    assert all(lc[t] <= 1.5 for t in labels(600, 606))
    assert all(x >= 0.9 * 180 for t, x in lc.items() if t not in labels(600, 606))


# GB 3838-2002 表1 class II (standards.md §3.1): every section meets any target II … V.
WATER_II = {"codmn": 4, "cod": 15, "bod5": 3, "nh3n": 0.5, "fluoride": 1.0}


def test_water_sections_stay_within_class_ii(
    history: dict[str, list[Sample]], catalog: Catalog
) -> None:
    for sec in catalog.sections:
        tp_limit = 0.025 if sec.body == "lake" else 0.1
        for s in history[sec.id]:
            for f, limit in WATER_II.items():
                if f in s.values:
                    assert v(s, f) <= limit, (sec.id, f, s.time)
            assert v(s, "tp") <= tp_limit, (sec.id, s.time)
            assert v(s, "do") >= 6, (sec.id, s.time)
            assert 6 <= v(s, "ph") <= 9


# ------------------------------------------------------------------ data-quality cues


def _longest_run(xs: list[float]) -> int:
    best = run = 0
    prev: float | None = None
    for x in xs:
        run = run + 1 if x == prev else 1
        prev = x
        best = max(best, run)
    return best


def test_no_constant_or_zero_runs_anywhere(history: dict[str, list[Sample]]) -> None:
    constant = ("so2", "nox", "pm", "cod", "nh3n", "pm25", "pm10")
    zero = ("so2", "nox", "pm", "cod", "nh3n", "flow")
    for src, samples in history.items():
        if samples[0].kind == "forecast":
            continue
        for f in set(constant) | set(zero):
            xs = [v(s, f) for s in samples if f in s.values]
            if not xs:
                continue
            if f in constant:
                assert _longest_run(xs) < 12, (src, f)
            if f in zero:
                zeros = best = 0
                for x in xs:
                    zeros = zeros + 1 if x == 0 else 0
                    best = max(best, zeros)
                assert best < 6, (src, f)


# ------------------------------------------------------------------ contract and CLI


def test_the_script_needs_a_midnight_start_and_the_catalogue(catalog: Catalog) -> None:
    specs = specs_from_catalog(catalog)
    with pytest.raises(ScenarioError, match="not a Beijing midnight"):
        list(simulate(specs, start=START + 3 * H, hours=24, scenario="forty-days"))
    zhifu = [s for s in specs if s.locality == "zhifu"]  # holds none of the scripted sources
    with pytest.raises(ScenarioError, match="none of its sources is simulated"):
        list(simulate(zhifu, start=START, hours=24, scenario="forty-days"))
    # the built-in network shares one id with the script (aq-wf-03): only that part applies
    builtin = make_scenario("forty-days", default_specs(), start=START).timeline()
    assert {e.subject for e in builtin} == {"aq-wf-03"}
    # a part of the catalogue (one locality) plays its part of the script
    weifang = [s for s in specs if s.locality == "weifang"]
    part = list(simulate(weifang, start=START, hours=110, scenario="forty-days"))
    opened = {d.sample.time for d in part if d.sample.values.get("bypass_open") and v(d.sample, "bypass_open") == 1}  # fmt: skip
    assert opened == labels(100, 104)
    events = make_scenario("forty-days", weifang, start=START).timeline()
    assert {e.subject for e in events} == {"mon-wf-bypass-01", "aq-wf-03", "mon-wf-dustfall-01"}
    with pytest.raises(ScenarioError, match="--target is refused"):
        list(simulate(specs, start=START, hours=24, scenario="forty-days", target="aq-wf-01"))


def test_cli_runs_it_on_deploy_config_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streams.cli import app

    monkeypatch.chdir(REPO)  # the default catalogue is deploy/config of the working directory
    runner = CliRunner()
    listed = runner.invoke(app, ["simulate", "list"])
    assert listed.exit_code == 0
    line = next(x for x in listed.output.splitlines() if x.startswith("forty-days"))
    assert "960 h" in line
    assert "mon-wf-bypass-01" in line
    assert "[start+600 h" in line
    out = tmp_path / "h.jsonl"
    args = ["simulate", "run", "--scenario", "forty-days", "--start", "2026-01-25T00:00+08:00",
            "--hours", "110", "--out", str(out)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    samples = [Sample.model_validate_json(x) for x in out.read_text().splitlines()]
    bypass = sorted(s.time for s in samples if s.source == "mon-wf-bypass-01" and v(s, "bypass_open") == 1)  # fmt: skip
    assert bypass == sorted(labels(100, 104))
    timeline = runner.invoke(app, ["simulate", "timeline", "forty-days", "--start", "2026-01-25T00:00+08:00"])  # fmt: skip
    assert timeline.exit_code == 0, timeline.output
    assert "2026-01" in timeline.output
    assert "mon-lc-power-02" in timeline.output
