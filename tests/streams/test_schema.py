"""The declared InfluxDB schema (streams/schema.py) against what rules.engine really writes.

Hand-built samples (air hours with an exceedance and constant runs, a water section, flue-gas
minute data with O2 correction and a permit exceedance, daily wastewater data, a monitor with a
bypass opening and dustfall) go through :func:`rules.engine.step`; every emitted point must use a
declared measurement, declared tags with values in their declared sets, and declared fields with
the declared line-protocol type (an int/float mix would be a field-type conflict in InfluxDB).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

from rules import evaluate as engine
from rules.emission import Basis, EffluentClass, PermitLimit
from streams import schema
from streams.schema import FieldSpec, FieldType, Measurement, Problem, Status, TagSpec, check_point
from streams.wire import for_store

DOCS = Path(__file__).resolve().parents[2] / "docs" / "influx-schema.md"
T0 = datetime(2024, 12, 31, 16, 0, tzinfo=UTC)  # 2025-01-01 00:00 Beijing time


def _sample(
    kind: str, source: str, at: datetime, interval: str, **values: float | tuple[float, str]
) -> engine.Sample:
    vals = {f: (v if isinstance(v, tuple) else (v, "N")) for f, v in values.items()}
    return engine.Sample(
        kind=kind, locality="weifang", source=source, time=at, interval=interval, values=vals
    )


def _run(samples: list[engine.Sample], ctx: engine.SourceContext) -> list[engine.Point]:
    state = None
    out: list[engine.Point] = []
    for s in samples:
        state, pts = engine.step(state, s, ctx)
        out += pts
    return out


def air_points() -> list[engine.Point]:
    """30 hours of one station: SO2 at 600 µg/m³ (above the GB 3095-2012 表1 grade-II 1-h limit
    of 500) in hour 3, PM2.5 constant at 40 (a constant run of 6 after 6 hours), one value
    flagged D (invalid). The 30 hours from 00:00 Beijing time cover the whole day of 1 January
    (24 hourly values, ≥ 20 needed by GB 3095 表4), so its daily AQI and means are emitted."""
    out = []
    for i in range(30):
        vals: dict[str, float | tuple[float, str]] = {
            "pm25": 40.0,
            "pm10": 70.0 + i,
            "so2": 600.0 if i == 3 else 10.0 + i,
            "no2": 30.0 + i,
            "co": 0.8,
            "o3": 60.0 + 2 * i,
        }
        if i == 5:
            vals["no2"] = (35.0, "D")
        out.append(_sample("air", "wf-air-1", T0 + timedelta(hours=i + 1), "hour", **vals))
    return _run(out, engine.SourceContext())


def water_points() -> list[engine.Point]:
    """Five samples of a section with target class III; NH3-N 2.5 mg/L is above the class V limit
    of 2.0 (GB 3838-2002 表1), i.e. 劣V, so class, target, 劣V and main pollutants are written;
    the fifth has NH3-N 6.0 mg/L, a jump against the baseline of the four before (≥ 2 × 2.5:
    rules/water_events.py), so ``water_change`` is written too (from the fourth sample on)."""
    ctx = engine.SourceContext(target_class=3)
    samples = [
        _sample(
            "water",
            "wf-sec-1",
            T0 + timedelta(hours=4 * i),
            "hour",
            ph=7.5,
            do=6.0,
            codmn=4.0,
            nh3n=6.0 if i == 5 else 2.5,
            tp=0.1,
            temp=12.0,
        )
        for i in range(1, 6)
    ]
    return _run(samples, ctx)


def flue_gas_points() -> list[engine.Point]:
    """Minute data of one flue-gas outlet over 70 minutes: SO2 120 mg/m³ at O2 12 % with a
    reference O2 of 9 % → corrected 120 × (21 − 9)/(21 − 12) = 160 mg/m³ > permit 100."""
    limits = {
        "so2": PermitLimit(
            outlet="wf-e1-g1", factor="so2", upper=100.0, basis=Basis.HOUR, source="permit"
        )
    }
    ctx = engine.SourceContext(limits=limits, reference_o2=9.0)
    samples = []
    for m in range(70):
        flag = "M" if m == 10 else "N"
        samples.append(
            _sample(
                "emission",
                "wf-e1-g1",
                T0 + timedelta(minutes=m + 1),
                "min",
                so2=(120.0, flag),
                o2=12.0,
                flow=5000.0,
                nox=80.0,
            )
        )
    return _run(samples, ctx)


def wastewater_points() -> list[engine.Point]:
    """Daily data of a wastewater outlet: COD 60 mg/L against a daily limit of 50."""
    limits = {
        "cod": PermitLimit(
            outlet="wf-e2-w1", factor="cod", upper=50.0, basis=Basis.DAY, source="GB 18918-2002 表1"
        )
    }
    ctx = engine.SourceContext(limits=limits, wastewater=True)
    return _run(
        [
            _sample(
                "emission", "wf-e2-w1", T0 + timedelta(days=1), "day", cod=60.0, nh3n=3.0, ph=7.2
            )
        ],
        ctx,
    )


def treatment_plant_points() -> list[engine.Point]:
    """A wastewater treatment plant (required class 一级A) reporting hourly for a whole Beijing
    day: COD 60 mg/L is above the 一级A daily limit of 50 (GB 18918-2002 表1), so the day carries
    valid hours, the effluent class fields and an exceedance."""
    ctx = engine.SourceContext(wastewater=True, effluent_class=EffluentClass.CLASS_1A)
    samples = [
        _sample(
            "emission",
            "wf-wwtp-1",
            T0 + timedelta(hours=i + 1),
            "hour",
            cod=60.0,
            nh3n=3.0,
            tp=0.3,
            ph=7.2,
        )
        for i in range(25)
    ]
    return _run(samples, ctx)


def monitor_points() -> list[engine.Point]:
    """A bypass opening (any opening is reported) and dustfall 9 against the plans' 7 t/(month·km²)
    (001_15ef1b070f9ae15b.txt#L351)."""
    limits = {
        "dustfall": PermitLimit(
            outlet="wf-m1", factor="dustfall", upper=7.0, source="001_15ef1b070f9ae15b.txt#L351"
        )
    }
    ctx = engine.SourceContext(limits=limits)
    return _run(
        [
            _sample(
                "monitor",
                "wf-m1",
                T0 + timedelta(hours=1),
                "hour",
                bypass_open=1.0,
                dustfall=9.0,
                noise_leq=55.0,
            )
        ],
        ctx,
    )


def city_points() -> list[engine.Point]:
    from rules.city import CityAir

    city = CityAir("weifang")
    points: list[engine.Point] = []
    for source, row in (
        ("a", [40.0, 70.0, 10.0, 30.0, 0.8, 60.0]),
        ("b", [50.0, 80.0, None, 20.0, 0.6, 70.0]),
    ):
        values = {f: v for f, v in zip(engine.AIR_FACTORS, row, strict=True) if v is not None}
        points += city.hour(source, T0, values).points
    assert points
    return points


def locality_points() -> list[engine.Point]:
    """The locality stage (alerts.locality) on four days of one station with PM2.5 at 260 µg/m³:
    daily AQI 310 under HJ 633-2012 (PM2.5 250 → 300, 350 → 400: 300 + 10 × 100/100 = 310), so the
    national rule set issues a warning and the GB 3095 daily exceedance fires an alert — which
    makes the stage write city ``aqi`` points, ``alert`` and ``warning`` points, and a
    ``warning_duty`` point for the locality's enterprise."""
    import yaml

    from alerts.locality import LocalityContext, LocalityState, transition_point
    from alerts.rules import default_rules
    from rules.warnings import WarningRuleSet, load_rule_sets

    raw = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "deploy" / "config" / "warnings.yaml").read_text()
    )
    sets: dict[str, WarningRuleSet] = load_rule_sets(raw)
    # one enterprise with a measure for each level: the warning tells it its duties
    enterprise = {
        "id": "e-1",
        "name": "甲企业",
        "locality": "weifang",
        "performance_grade": "B",
        "measures": {"yellow": ["限产10%"], "orange": ["限产20%"], "red": ["停产"]},
    }
    from rules.catalog import load_catalog

    # the catalogue's weifang with its plan targets: each day's close writes plan_progress
    plan = load_catalog(Path(__file__).resolve().parents[2] / "deploy" / "config").locality(
        "weifang"
    )
    ctx = LocalityContext(
        locality="weifang", rule_set=sets["mee-2018-875"], enterprises=[enterprise], plan=plan
    )
    state = LocalityState("weifang", default_rules())
    st = None
    out: list[engine.Point] = []
    for i in range(4 * 24 + 1):
        at = T0 + timedelta(hours=i + 1)
        sample = _sample(
            "air", "aq-1", at, "hour", pm25=260.0, pm10=300.0, so2=10.0, no2=40.0, co=1.0, o3=20.0
        )
        st, pts = engine.step(st, sample, engine.SourceContext())
        for p in pts:
            if p.measurement in ("reading", "exceedance"):
                wire = {
                    "measurement": p.measurement,
                    "tags": dict(p.tags),
                    "fields": dict(p.fields),
                    "time": p.time.isoformat(),
                }
                result = state.step(wire, ctx)
                out += result.points
                out += [transition_point(t) for t in result.transitions]
    return out


def dead_letter_points() -> list[engine.Point]:
    """What the deadletter stage writes for a dead letter of the evaluate stage."""
    from streams.agents.deadletter import dead_letter_point
    from streams.records import DeadLetter

    dl = DeadLetter.build("evaluate", "unknown source 'x'", b"{}", origin="readings@7")
    tags, fields, ns = dead_letter_point(dl.to_bytes(), 1_795_309_200_000, 7)
    return [engine.Point("dead_letter", tags, fields, datetime.fromtimestamp(ns / 1e9, tz=UTC))]


def pipeline_health_points() -> list[engine.Point]:
    """What a component reports about itself (streams.health; alerts/pipeline.py)."""
    from alerts.pipeline import health_point

    at = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)
    return [health_point("store@h", "write", problem=True, at=at, reason="401", count=3)]


def forecast_points() -> list[engine.Point]:
    """What the evaluate stage writes for an AQI forecast issue (streams.steps)."""
    from streams.catalog import CatalogView
    from streams.steps import EvaluateStep

    config = Path(__file__).resolve().parents[2] / "deploy" / "config"
    step = EvaluateStep(
        CatalogView(config), max_future=timedelta(hours=1), max_past=timedelta(days=400)
    )
    issued = datetime(2026, 11, 20, 16, tzinfo=ZoneInfo("Asia/Shanghai"))
    value = orjson.dumps(
        {
            "schema": 1,
            "kind": "forecast",
            "locality": "weifang",
            "source": "fc-weifang",
            "time": issued.isoformat(),
            "issuer": "潍坊市环境监测中心",
            "days": [
                {"date": "2026-11-21", "aqi": 180, "primary": "pm25"},
                {"date": "2026-11-22", "aqi_min": 200, "aqi_max": 250, "primary": "pm25"},
            ],
        }
    )
    outs = step({}, b"fc-weifang", value, 0, round(issued.timestamp() * 1000))
    return [
        engine.Point(d["measurement"], d["tags"], d["fields"], datetime.fromisoformat(d["time"]))
        for topic, _, body in outs
        if topic == "evaluations"
        for d in orjson.loads(body)
    ]


SOURCES = {
    "forecast": forecast_points,
    "dead_letter": dead_letter_points,
    "pipeline_health": pipeline_health_points,
    "locality": locality_points,
    "air": air_points,
    "water": water_points,
    "flue_gas": flue_gas_points,
    "wastewater": wastewater_points,
    "treatment_plant": treatment_plant_points,
    "monitor": monitor_points,
    "city": city_points,
}


@pytest.fixture(scope="module")
def emitted() -> dict[str, list[engine.Point]]:
    """What the store receives from each source (``verdict`` points go to the locality stage
    only: streams.wire.for_store)."""
    return {name: [p for p in build() if for_store(p)] for name, build in SOURCES.items()}


def _all(emitted: dict[str, list[engine.Point]]) -> Iterator[engine.Point]:
    for pts in emitted.values():
        yield from pts


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_every_emitted_point_is_declared(
    source: str, emitted: dict[str, list[engine.Point]]
) -> None:
    points = emitted[source]
    assert points, f"{source}: the hand-built samples produced no points"
    problems = [
        f"{p.measurement} @ {p.time}: {f}"
        for p in points
        for f in check_point(p.measurement, p.tags, p.fields)
    ]
    assert problems == []


def test_samples_reach_every_written_measurement(emitted: dict[str, list[engine.Point]]) -> None:
    """The samples above exercise every measurement the schema says rules.engine writes, so the
    check above is not vacuous for any of them."""
    seen = {p.measurement for p in _all(emitted)}
    written = {m.name for m in schema.MEASUREMENTS if m.status is Status.WRITTEN}
    assert written - seen == set()
    assert seen - written == set()


def test_samples_reach_the_interesting_fields(emitted: dict[str, list[engine.Point]]) -> None:
    """Fields the dashboards rely on are really emitted by these samples (and so type-checked)."""
    seen = {(p.measurement, f) for p in _all(emitted) for f in p.fields}
    for pair in [
        ("aqi", "aqi"),
        ("aqi", "level"),
        ("aqi", "color"),
        ("aqi", "iaqi_so2"),
        ("aqi", "good"),
        ("aqi", "stations"),
        ("aggregate", "pm25_24h"),
        ("aggregate", "o3_8h"),
        ("aggregate", "pm25"),
        ("exceedance", "multiple"),
        ("exceedance", "corrected"),
        ("exceedance", "clause"),
        ("water_class", "grade"),
        ("water_class", "target"),
        ("water_class", "meets"),
        ("water_class", "worse_than_v"),
        ("water_class", "main_pollutants"),
        ("emission_hour", "so2_zs"),
        ("emission_hour", "valid_minutes_so2"),
        ("emission_hour", "flag_M"),
        ("emission_day", "cod"),
        ("emission_day", "valid_hours_cod"),
        ("emission_day", "effluent_class"),
        ("emission_day", "effluent_meets"),
        ("aqi", "published"),
        ("aggregate", "dustfall"),
        ("data_quality", "constant_pm25"),
        ("data_quality", "transmission_rate"),
        ("data_quality", "valid_rate"),
        ("data_quality", "flag_D"),
        ("reading", "invalid"),
    ]:
        assert pair in seen, pair


def test_exceedance_values_are_the_hand_computed_ones(
    emitted: dict[str, list[engine.Point]],
) -> None:
    """The flue-gas exceedance carries the O2-corrected value: 120 × (21 − 9) / (21 − 12) = 160."""
    ex = [p for p in emitted["flue_gas"] if p.measurement == "exceedance"]
    assert ex
    assert ex[0].tags["factor"] == "so2"
    assert ex[0].fields["value"] == pytest.approx(160.0)
    assert ex[0].fields["limit"] == 100.0


# ----------------------------------------------------------------------------- the checker itself


def test_checker_reports_an_undeclared_field_tag_value_and_type() -> None:
    found = check_point(
        "aqi",
        {"locality": "weifang", "source": "s", "period": "week", "colour": "x"},
        {"aqi": 55.0, "iaqi_pm25": 40, "pm25_mean": 1.0},
    )
    assert {(f.problem, f.name) for f in found} == {
        (Problem.TAG_VALUE, "period"),  # period is hour or day
        (Problem.UNKNOWN_TAG, "colour"),
        (Problem.FIELD_TYPE, "aqi"),  # AQI is an integer; 55.0 would conflict in InfluxDB
        (Problem.UNKNOWN_FIELD, "pm25_mean"),
    }


def test_checker_reports_an_unknown_measurement() -> None:
    assert [f.problem for f in check_point("readings", {}, {"x": 1.0})] == [
        Problem.UNKNOWN_MEASUREMENT
    ]


def test_template_fields_expand_only_over_their_vocabulary() -> None:
    m = schema.SCHEMA["aqi"]
    assert m.field_spec("iaqi_pm25") is not None
    assert m.field_spec("iaqi_nox") is None  # NOx has no IAQI (HJ 633 表1 lists six pollutants)


def test_schema_is_self_consistent() -> None:
    assert list(schema.iter_problems_in_schema()) == []


def test_a_template_without_choices_is_refused() -> None:
    with pytest.raises(ValueError, match="template"):
        FieldSpec("iaqi_{x}", FieldType.INTEGER, "1", "no choices")


def test_a_field_declared_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        Measurement(
            name="m",
            description="",
            time="",
            tags=(TagSpec("t", ""),),
            writer="",
            fields=(
                FieldSpec("a", FieldType.FLOAT, "", ""),
                FieldSpec("{x}", FieldType.FLOAT, "", "", ("a",)),
            ),
        )


# ----------------------------------------------------------------------------- docs mirror the data


def _doc_sections() -> dict[str, str]:
    text = DOCS.read_text(encoding="utf-8")
    parts = re.split(r"^## `([a-z_]+)`", text, flags=re.MULTILINE)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def test_docs_describe_every_measurement_tag_and_field() -> None:
    """docs/influx-schema.md has a section per measurement naming each tag and field (templates
    as written in the schema, e.g. ``iaqi_{x}``) with its declared type."""
    sections = _doc_sections()
    assert set(sections) == set(schema.SCHEMA)
    for m in schema.MEASUREMENTS:
        body = sections[m.name]
        for t in m.tags:
            assert f"`{t.name}`" in body, (m.name, t.name)
        for f in m.fields:
            row = next((ln for ln in body.splitlines() if ln.startswith(f"| `{f.name}`")), None)
            assert row is not None, (m.name, f.name)
            assert f"| {f.type.value} |" in row, (m.name, f.name, row)
