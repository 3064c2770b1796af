"""rules/plausibility.py: the catalogue identity of a sample's source and the physical ranges of
its values (docs/plausibility.md).

Expected outcomes are written from the catalogue files (deploy/config/*.yaml) and the documented
rules, not read back from the module: e.g. aq-lx-03 lists ``factors: [pm25, pm10, o3]``
(laixi.yaml), 敬庄公路桥 ws-lx-jingzhuang has the problem factor fluoride, e-lc-01-g1 is a gas
outlet of the Liaocheng ETDZ enterprise e-lc-01.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ingest.simulators import default_specs, simulate, specs_from_catalog
from ingest.simulators.scenarios import SCENARIOS
from rules import plausibility as pl
from rules.catalog import load_catalog
from rules.evaluate import Sample
from rules.factors import BY_KIND, Kind

BJ = ZoneInfo("Asia/Shanghai")
T = datetime(2026, 12, 1, 8, tzinfo=BJ)
REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "deploy" / "config"
DOCS = REPO / "docs" / "plausibility.md"


@pytest.fixture(scope="module")
def catalog():  # type: ignore[no-untyped-def]
    return load_catalog(CONFIG)


def sample(
    source: str,
    values: Mapping[str, object],
    *,
    kind: str = "air",
    locality: str = "weifang",
) -> Sample:
    return Sample(
        kind=kind,
        locality=locality,
        source=source,
        time=T,
        interval="hour",
        values={f: (v, "N") for f, v in values.items()},  # type: ignore[misc]
    )


GOOD_AIR = {"pm25": 40.0, "pm10": 70.0, "so2": 9.0, "no2": 30.0, "co": 0.6, "o3": 50.0}


# ----------------------------------------------------------------------------- the ranges


def test_every_factor_of_every_vocabulary_has_a_range_with_a_source() -> None:
    for group, vocab in pl.VOCABULARY.items():
        ranges = pl.RANGES[group]
        assert set(ranges) == set(vocab), group
        for factor, r in ranges.items():
            assert r.unit == vocab[factor], (group, factor)  # the canonical unit
            assert r.low < r.high, (group, factor)
            assert math.isfinite(r.high), (group, factor)
            # every bound says where it comes from: physics, a standard, or [MEM]
            assert re.search(r"physics|\[MEM\]|HJ \d|GB \d|rules\.evaluate", r.source), r.source


def test_the_docs_table_is_the_code() -> None:
    text = DOCS.read_text(encoding="utf-8")
    begin = text.index("-->\n", text.index("<!-- ranges:begin")) + 4
    end = text.index("<!-- ranges:end -->")
    assert text[begin:end] == pl.ranges_markdown(), (
        "docs/plausibility.md: regenerate the table with rules.plausibility.ranges_markdown()"
    )


def test_flue_gas_bounds_are_the_pure_gas_at_the_standard_state() -> None:
    # M / 22.414 L/mol (273.15 K, 101.325 kPa), by hand: SO2 64.06 → 2.858 kg/m³,
    # NO2 46.01 → 2.053 kg/m³, CO 28.01 → 1.250 kg/m³
    gas = pl.RANGES[pl.GAS_GROUP]
    assert gas["so2"].high == 2_858_000
    assert gas["nox"].high == 2_053_000
    assert gas["co"].high == 1_250_000


def test_bounds_are_inclusive() -> None:
    # pH 0 and 14 are on the scale; AQI 500 is its top (HJ 633)
    water = sample("x", {"ph": 14.0, "do": 0.0}, kind="water")
    assert pl.screen(water, None).rejections == ()
    assert pl.screen(sample("x", {"aqi": 500.0}, kind="forecast"), None).rejections == ()
    got = pl.screen(sample("x", {"aqi": 501.0}, kind="forecast"), None)
    assert [r.code for r in got.rejections] == [pl.OUT_OF_RANGE]


# ----------------------------------------------------------------------------- the catalogue


def test_expected_from_the_catalogue(catalog) -> None:  # type: ignore[no-untyped-def]
    lx3 = pl.expected_of(catalog, "aq-lx-03")
    assert lx3 is not None
    assert (lx3.kind, lx3.locality, lx3.factors) == (
        "air",
        "laixi",
        frozenset({"pm25", "pm10", "o3"}),
    )
    wf1 = pl.expected_of(catalog, "aq-wf-01")
    assert wf1 is not None
    assert wf1.factors == {"pm25", "pm10", "so2", "no2", "co", "o3"}
    sec = pl.expected_of(catalog, "ws-lx-jingzhuang")
    assert sec is not None
    assert sec.kind == "water"
    assert "fluoride" in sec.factors
    out = pl.expected_of(catalog, "e-lc-01-g1")
    assert out is not None
    assert (out.kind, out.locality, out.group) == ("emission", "liaocheng-etdz", "emission_gas")
    assert "o2" in out.factors
    assert "cod" not in out.factors
    noise = pl.expected_of(catalog, "mon-lc-noise-01")
    assert noise is not None
    assert noise.factors == {"noise_leq"}
    assert pl.expected_of(catalog, "aq-xx-99") is None
    ent = pl.expected_of(catalog, "e-lc-01")  # an enterprise publishes nothing itself
    assert ent is not None
    assert ent.kind == ""


def test_a_known_station_under_another_locality_is_rejected_whole(catalog) -> None:  # type: ignore[no-untyped-def]
    exp = pl.expected_of(catalog, "aq-wf-01")
    for locality in ("laixi", "invented-town"):
        got = pl.screen(sample("aq-wf-01", {**GOOD_AIR, "pm25": 400.0}, locality=locality), exp)
        assert got.sample is None
        assert [(r.code, r.field, r.value) for r in got.rejections] == [
            (pl.WRONG_LOCALITY, "locality", locality)
        ]
        assert "'weifang'" in got.rejections[0].reason()


def test_water_values_on_an_air_station_are_wrong_kind(catalog) -> None:  # type: ignore[no-untyped-def]
    exp = pl.expected_of(catalog, "aq-wf-01")
    got = pl.screen(sample("aq-wf-01", {"cod": 80.0, "nh3n": 9.0}, kind="water"), exp)
    assert got.sample is None
    assert [(r.code, r.field, r.value) for r in got.rejections] == [
        (pl.WRONG_KIND, "kind", "water")
    ]
    ent = pl.expected_of(catalog, "e-lc-01")
    got = pl.screen(
        sample("e-lc-01", {"so2": 1.0}, kind="emission", locality="liaocheng-etdz"), ent
    )
    assert got.sample is None
    assert got.rejections[0].code == pl.WRONG_KIND


def test_a_foreign_factor_is_dropped_and_the_rest_kept(catalog) -> None:  # type: ignore[no-untyped-def]
    exp = pl.expected_of(catalog, "aq-lx-03")  # measures pm25, pm10, o3 only
    got = pl.screen(sample("aq-lx-03", GOOD_AIR, locality="laixi"), exp)
    assert got.sample is not None
    assert set(got.sample.values) == {"pm25", "pm10", "o3"}
    assert sorted((r.code, r.field) for r in got.rejections) == [
        (pl.FOREIGN_FACTOR, "co"),
        (pl.FOREIGN_FACTOR, "no2"),
        (pl.FOREIGN_FACTOR, "so2"),
    ]
    # a gas outlet does not measure COD (a wastewater factor of the same kind)
    out = pl.expected_of(catalog, "e-lc-01-g1")
    got = pl.screen(
        sample("e-lc-01-g1", {"cod": 50.0}, kind="emission", locality="liaocheng-etdz"), out
    )
    assert got.sample is None
    assert [r.code for r in got.rejections] == [pl.FOREIGN_FACTOR]


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (1.7e308, pl.OUT_OF_RANGE),
        (1e12, pl.OUT_OF_RANGE),
        (-3.0, pl.OUT_OF_RANGE),
        (math.nan, pl.NOT_FINITE),
        (math.inf, pl.NOT_FINITE),
        (-math.inf, pl.NOT_FINITE),
        ("35", pl.NOT_A_NUMBER),
        (True, pl.NOT_A_NUMBER),
    ],
)
def test_an_impossible_value_drops_its_factor(catalog, value: object, code: str) -> None:  # type: ignore[no-untyped-def]
    exp = pl.expected_of(catalog, "aq-wf-01")
    got = pl.screen(sample("aq-wf-01", {**GOOD_AIR, "pm25": value}), exp)
    assert got.sample is not None
    assert got.sample.values == {f: (v, "N") for f, v in GOOD_AIR.items() if f != "pm25"}
    assert [(r.code, r.source, r.field) for r in got.rejections] == [(code, "aq-wf-01", "pm25")]
    # alone, the factor takes the whole sample with it
    alone = pl.screen(sample("aq-wf-01", {"pm25": value}), exp)
    assert alone.sample is None
    assert [r.code for r in alone.rejections] == [code]


def test_co_1e12_is_out_of_range_in_air_and_in_flue_gas(catalog) -> None:  # type: ignore[no-untyped-def]
    air = pl.screen(sample("aq-wf-01", {"co": 1e12}), pl.expected_of(catalog, "aq-wf-01"))
    assert [r.code for r in air.rejections] == [pl.OUT_OF_RANGE]
    gas = pl.screen(
        sample("e-lc-01-g1", {"co": 1e12}, kind="emission", locality="liaocheng-etdz"),
        pl.expected_of(catalog, "e-lc-01-g1"),
    )
    assert [r.code for r in gas.rejections] == [pl.OUT_OF_RANGE]


def test_a_value_without_a_number_and_a_good_sample_pass_unchanged(catalog) -> None:  # type: ignore[no-untyped-def]
    exp = pl.expected_of(catalog, "aq-wf-01")
    s = sample("aq-wf-01", {**GOOD_AIR, "o3": None})
    got = pl.screen(s, exp)
    assert got.sample is s
    assert got.rejections == ()


def test_the_reason_names_source_field_value_and_why(catalog) -> None:  # type: ignore[no-untyped-def]
    got = pl.screen(sample("aq-wf-01", {"pm25": 1.7e308}), pl.expected_of(catalog, "aq-wf-01"))
    reason = got.rejections[0].reason()
    assert reason.startswith("out of range: source 'aq-wf-01' pm25 '1.7e+308': outside [0, 20000]")
    assert "ug/m3" in reason
    assert "[MEM]" in reason


def test_without_a_catalogue_only_the_values_are_checked() -> None:
    ok = pl.screen(sample("anything", GOOD_AIR, locality="anywhere"), None)
    assert ok.rejections == ()
    # an emission factor both outlet types have takes the wider range: 500 ℃ flue gas passes
    hot = pl.screen(sample("o", {"temp": 500.0}, kind="emission"), None)
    assert hot.rejections == ()
    bad = pl.screen(sample("o", {"so2": -1.0}, kind="emission"), None)
    assert [r.code for r in bad.rejections] == [pl.OUT_OF_RANGE]


def test_the_forecaster_takes_forecast_factors_under_its_locality() -> None:
    exp = pl.forecaster("fc-weifang", "weifang")
    assert exp.factors == set(BY_KIND[Kind.FORECAST])
    ok = pl.screen(sample("fc-weifang", {"aqi": 180.0, "pm25": 140.0}, kind="forecast"), exp)
    assert ok.rejections == ()


# ----------------------------------------------------------------------------- the simulators


@pytest.mark.parametrize("scenario", [None, *SCENARIOS])
def test_the_simulated_network_passes(catalog, scenario: str | None) -> None:  # type: ignore[no-untyped-def]
    """Every sample of every demo scenario (the reference catalogue's network, seed 0; the
    40 days too) is what the catalogue says and within range."""
    hours = 48 if scenario is None else SCENARIOS[scenario].hours
    start = datetime(2026, 11, 1, tzinfo=BJ)
    n = 0
    for d in simulate(specs_from_catalog(catalog), start=start, hours=hours, scenario=scenario):
        s = d.sample
        values = {f: (v.value, v.flag.value) for f, v in s.values.items()}
        smp = Sample(s.kind.value, s.locality, s.source, s.time, s.interval.value, values)
        exp = pl.expected_of(catalog, s.source)
        if exp is None:
            assert s.kind is Kind.FORECAST, s.source
            exp = pl.forecaster(s.source, s.locality)
        assert pl.screen(smp, exp).rejections == (), (scenario, s)
        n += 1
    assert n > 500


def test_the_default_network_passes_without_a_catalogue() -> None:
    start = datetime(2026, 11, 1, tzinfo=BJ)
    for d in simulate(default_specs(), start=start, hours=48):
        s = d.sample
        values = {f: (v.value, v.flag.value) for f, v in s.values.items()}
        smp = Sample(s.kind.value, s.locality, s.source, s.time, s.interval.value, values)
        assert pl.screen(smp, None).rejections == (), s
