"""The Grafana dashboards (deploy/grafana) against the sink's schema and Grafana's layout rules.

Grafana itself cannot be installed here, so the dashboards are checked as JSON models: every
panel's Flux reads only measurements/fields/tags declared in streams/schema.py (the checker
parses the Flux text); ids unique, panels inside the 24-column grid without overlaps, every
target on the ``${datasource}`` variable; the committed JSON equals a fresh export.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy.grafana import dashboards, flux
from streams import schema

BOARDS = dashboards.all_dashboards()
COMMITTED = Path(dashboards.OUT_DIR)


def _panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for p in board.get("panels") or []:
        yield p
        yield from p.get("panels") or []  # collapsed rows hold their panels


def _queried(board: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for p in _panels(board):
        for q in flux.targets_of(p):
            yield p.get("title", ""), q
    for var in board["templating"]["list"]:
        if var["type"] == "query":
            yield f"variable {var['name']}", var["query"]


def test_the_seven_dashboards_exist() -> None:
    assert set(BOARDS) == {
        "envwatch-monitors",
        "envwatch-duty",
        "envwatch-air",
        "envwatch-water",
        "envwatch-emissions",
        "envwatch-data-quality",
        "envwatch-plan",
    }
    assert BOARDS["envwatch-duty"]["title"] == "值班总览"


# ----------------------------------------------------------------------------- schema


@pytest.mark.parametrize("uid", sorted(BOARDS))
def test_every_query_reads_only_what_is_written(uid: str) -> None:
    problems = [f"{title}: {f}" for title, q in _queried(BOARDS[uid]) for f in flux.check_flux(q)]
    assert problems == []


@pytest.mark.parametrize("uid", sorted(BOARDS))
def test_every_data_panel_has_a_query_naming_a_measurement(uid: str) -> None:
    """Every query reads a measurement, except catalogue rows written into the dashboard
    (``array.from``, no bucket read), which only join a bucket query of the same panel."""
    for p in _panels(BOARDS[uid]):
        if p["type"] in ("row", "text"):
            continue
        qs = flux.targets_of(p)
        assert any("r._measurement ==" in q for q in qs), p["title"]
        for q in qs:
            if "r._measurement ==" not in q:
                assert "array.from(rows:" in q, p["title"]
                assert "from(bucket:" not in q, p["title"]


def _read_measurements(boards: dict[str, dict[str, Any]]) -> set[str]:
    read: set[str] = set()
    for board in boards.values():
        for _t, q in _queried(board):
            read |= {f.split('"')[1] for f in q.split("r._measurement == ")[1:]}
    return read


def _unpanelled(
    boards: dict[str, dict[str, Any]], known: dict[str, schema.Measurement]
) -> set[str]:
    written = {m.name for m in known.values() if m.status is schema.Status.WRITTEN}
    return written - _read_measurements(boards)


def test_every_measurement_the_sink_writes_has_a_panel() -> None:
    """The other direction of the schema check: a measurement written but shown nowhere."""
    assert _unpanelled(BOARDS, dict(schema.SCHEMA)) == set()


def test_a_new_measurement_without_a_panel_fails_the_coverage_check() -> None:
    known = dict(schema.SCHEMA)
    known["noise_day"] = schema.Measurement(
        name="noise_day",
        description="a measurement a writer starts to write",
        time="day",
        tags=(),
        fields=(schema.FieldSpec("leq", schema.FieldType.FLOAT, "dB(A)", "daily Leq"),),
        writer="a new writer",
    )
    assert _unpanelled(BOARDS, known) == {"noise_day"}


# ----------------------------------------------------------------------------- SDK models


@pytest.mark.parametrize("uid", sorted(BOARDS))
def test_every_dashboard_decodes_through_the_sdk_models_without_loss(uid: str) -> None:
    assert dashboards.sdk_problems(BOARDS[uid]) == []


def test_the_sdk_validation_catches_an_unknown_option_and_a_malformed_panel() -> None:
    board = json.loads(json.dumps(BOARDS["envwatch-air"]))
    board["panels"][0]["options"]["legned"] = {"showLegend": False}  # misspelt
    assert dashboards.sdk_problems(board) == ["/panels[0]/options/legned: dropped by the model"]
    board["panels"][0]["options"] = None
    (problem,) = dashboards.sdk_problems(board)
    assert problem.startswith("the SDK cannot decode it")


def test_the_dashboards_cover_the_measurements_the_duty_officer_needs() -> None:
    read = _read_measurements(BOARDS)
    assert {
        "aqi",
        "aggregate",
        "water_class",
        "exceedance",
        "emission_hour",
        "data_quality",
        "alert",
        "warning",
    } <= read


# The checker itself: a deliberately wrong panel must be caught.

WRONG_FIELD = """from(bucket: "${bucket}")
  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)
  |> filter(fn: (r) => r._measurement == "aqi")
  |> filter(fn: (r) => r._field == "pm25_mean")"""


def test_a_panel_querying_a_field_nothing_writes_fails_the_check() -> None:
    found = flux.check_flux(WRONG_FIELD)
    assert [(f.what, f.name) for f in found] == [("field", "pm25_mean")]


def test_a_wrong_panel_fed_through_the_dashboard_check_fails_it() -> None:
    """The same check the parametrized test applies, on a board with one wrong panel added."""
    board = json.loads(json.dumps(BOARDS["envwatch-air"]))
    board["panels"].append(
        {"type": "stat", "title": "wrong", "targets": [{"refId": "A", "query": WRONG_FIELD}]}
    )
    problems = [f"{t}: {f}" for t, q in _queried(board) for f in flux.check_flux(q)]
    assert problems == ["wrong: field 'pm25_mean': not written to ['aqi']"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a measurement nothing writes ("readings" is the Kafka topic, the measurement is "reading")
        (
            'from(bucket: "b") |> range(start: -1h) |> filter(fn: (r) => r._measurement == "readings")',
            [("measurement", "readings")],
        ),
        # a tag the measurement does not have (water_class has no kind tag)
        (
            'from(bucket: "b") |> range(start: -1h) |> filter(fn: (r) => r._measurement == "water_class" and r.kind == "water")',
            [("tag", "kind")],
        ),
        # a closed-set tag value outside the set (aqi periods are hour and day)
        (
            'from(bucket: "b") |> range(start: -1h) |> filter(fn: (r) => r._measurement == "aqi" and r.period == "daily")',
            [("tag value", "period=daily")],
        ),
        # a group column that is neither tag nor field
        (
            'from(bucket: "b") |> range(start: -1h) |> filter(fn: (r) => r._measurement == "aqi") |> group(columns: ["station"])',
            [("tag", "station")],
        ),
        # a field regex that matches no declared field
        (
            'from(bucket: "b") |> range(start: -1h) |> filter(fn: (r) => r._measurement == "aqi" and r._field =~ /^aqi_/)',
            [("regex", "^aqi_")],
        ),
        # no measurement at all
        (
            'from(bucket: "b") |> range(start: -1h) |> filter(fn: (r) => r._field == "aqi")',
            [("measurement", ""), ("field", "aqi")],
        ),
        # a field of another measurement (grade is water_class's)
        (
            'from(bucket: "b") |> range(start: -1h) |> filter(fn: (r) => r._measurement == "aqi" and r._field == "grade")',
            [("field", "grade")],
        ),
    ],
)
def test_the_checker_catches(text: str, expected: list[tuple[str, str]]) -> None:
    assert [(f.what, f.name) for f in flux.check_flux(text)] == expected


def test_the_checker_accepts_columns_a_query_creates() -> None:
    text = (
        WRONG_FIELD.replace("pm25_mean", "aqi")
        + '\n  |> map(fn: (r) => ({r with band: r._value / 50}))\n  |> group(columns: ["band"])'
    )
    assert flux.check_flux(text) == []


def test_a_schema_change_is_noticed_by_the_dashboards() -> None:
    """Drop a field from the schema: the dashboards that read it now fail the check."""
    reduced = dict(schema.SCHEMA)
    m = reduced["aqi"]
    reduced["aqi"] = schema.Measurement(
        name=m.name,
        description=m.description,
        time=m.time,
        tags=m.tags,
        writer=m.writer,
        fields=tuple(f for f in m.fields if f.name != "good"),
    )
    problems = [
        f
        for board in BOARDS.values()
        for _t, q in _queried(board)
        for f in flux.check_flux(q, reduced)
    ]
    assert {(f.what, f.name) for f in problems} == {("field", "good")}


# ----------------------------------------------------------------------------- structure


@pytest.mark.parametrize("uid", sorted(BOARDS))
def test_panel_ids_are_unique(uid: str) -> None:
    ids = [p["id"] for p in _panels(BOARDS[uid])]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("uid", sorted(BOARDS))
def test_panels_fit_the_grid_without_overlapping(uid: str) -> None:
    cells: dict[tuple[int, int], str] = {}
    for p in _panels(BOARDS[uid]):
        g = p["gridPos"]
        assert g["w"] > 0, p["title"]
        assert g["h"] > 0, p["title"]
        assert g["x"] >= 0, (p["title"], g)
        assert g["x"] + g["w"] <= 24, (p["title"], g)
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']} overlaps {cells[(x, y)]} at {(x, y)}"
                cells[(x, y)] = p["title"]


@pytest.mark.parametrize("uid", sorted(BOARDS))
def test_every_target_uses_the_datasource_variable(uid: str) -> None:
    board = BOARDS[uid]
    ds = [v for v in board["templating"]["list"] if v["type"] == "datasource"]
    assert [(v["name"], v["query"]) for v in ds] == [("datasource", "influxdb")]
    for p in _panels(board):
        if p["type"] == "row":
            continue
        assert p["datasource"] == {"type": "influxdb", "uid": "${datasource}"}, p["title"]
        for t in p["targets"]:
            assert t["datasource"] == {"type": "influxdb", "uid": "${datasource}"}, p["title"]


@pytest.mark.parametrize("uid", sorted(BOARDS))
def test_every_data_query_is_scoped_to_the_locality_variable(uid: str) -> None:
    names = {v["name"] for v in BOARDS[uid]["templating"]["list"]}
    assert {"datasource", "bucket", "locality"} <= names
    for title, q in _queried(BOARDS[uid]):
        if (
            title.startswith("variable") or '"dead_letter"' in q or '"pipeline_health"' in q
        ):  # dead letters often have no locality; envwatch's own health has none
            continue
        assert 'r.locality == "${locality}"' in q, title


@pytest.mark.parametrize("uid", sorted(BOARDS))
def test_titles_are_chinese_and_descriptions_english(uid: str) -> None:
    for p in _panels(BOARDS[uid]):
        if p["type"] == "row":
            continue
        assert any("\u4e00" <= ch <= "\u9fff" for ch in p["title"]), p["title"]
        # and English: at least one lower-case ASCII word after the Chinese
        assert re.search(r"[A-Za-z]*[a-z]{2,}", p["title"]), p["title"]
        # English descriptions (Chinese domain terms may follow in parentheses)
        assert p["description"][:1].isascii(), p["title"]
        assert p["description"][:1].isalpha(), p["title"]


def test_station_aqi_colours_are_the_hj633_colours() -> None:
    """HJ 633-2012 表2/附录A (= HJ 633-2026 表1/附录A): levels start at 0, 51, 101, 151, 201, 301
    with #00E400 #FFFF00 #FF7E00 #FF0000 #99004C #7E0023."""
    panel = next(
        p for p in _panels(BOARDS["envwatch-duty"]) if p["title"] == "各站点实时AQI Station AQI now"
    )
    hj633 = [
        (None, "#00E400"),
        (51, "#FFFF00"),
        (101, "#FF7E00"),
        (151, "#FF0000"),
        (201, "#99004C"),
        (301, "#7E0023"),
    ]
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [(s["value"], s["color"]) for s in steps] == hj633
    assert panel["options"]["colorMode"] == "background"
    geo = next(p for p in _panels(BOARDS["envwatch-duty"]) if p["type"] == "geomap")
    steps = geo["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [(s["value"], s["color"]) for s in steps] == hj633
    (layer,) = geo["options"]["layers"]
    assert layer["config"]["style"]["color"]["field"] == "aqi"


@pytest.mark.parametrize("uid", sorted(BOARDS))
def test_json_round_trips(uid: str) -> None:
    text = dashboards.render(BOARDS[uid])
    assert json.loads(text) == BOARDS[uid]


# ----------------------------------------------------------------------------- regeneration


def test_committed_json_equals_a_fresh_export(tmp_path: Path) -> None:
    """deploy/grafana/dashboards/*.json are what the code generates: run
    ``envwatch grafana export`` after changing deploy/grafana/dashboards.py."""
    written = dashboards.export(tmp_path)
    assert sorted(p.name for p in written) == sorted(p.name for p in COMMITTED.glob("*.json"))
    for p in written:
        assert (COMMITTED / p.name).read_text(encoding="utf-8") == p.read_text(encoding="utf-8"), (
            p.name
        )


def test_export_is_deterministic(tmp_path: Path) -> None:
    a = [p.read_bytes() for p in dashboards.export(tmp_path / "a")]
    b = [p.read_bytes() for p in dashboards.export(tmp_path / "b")]
    assert a == b


# ----------------------------------------------------------------------------- catalogue rows


def _catalogue_query(uid: str, title_start: str) -> str:
    (panel,) = [p for p in _panels(BOARDS[uid]) if p["title"].startswith(title_start)]
    (q,) = [q for q in flux.targets_of(panel) if "array.from(rows:" in q]
    assert [t["id"] for t in panel["transformations"]] == ["joinByField"]
    return q


def test_the_station_map_places_stations_at_their_catalogue_coordinates() -> None:
    """deploy/config/laixi.yaml: aq-lx-01 示例站 莱西市区 (example) at 36.889 N, 120.517 E."""
    q = _catalogue_query("envwatch-duty", "站点AQI地图")
    assert (
        '{locality: "laixi", source: "aq-lx-01", name: "示例站 莱西市区 (example)", '
        "lat: 36.889, lon: 120.517}"
    ) in q
    assert 'r.locality == "${locality}"' in q


def test_the_plan_table_cites_where_each_target_is_stated() -> None:
    """deploy/config/laixi.yaml indicator 1 (PM2.5): the row is printed at L128-L131, the target
    compared with (38, progress_uses: text) is stated in the prose at L107; the tag value is the
    one the locality stage writes (seen in a demo: indicator=pm25_annual_mean#1)."""
    q = _catalogue_query("envwatch-plan", "规划指标进展")
    assert (
        '{locality: "laixi", indicator: "pm25_annual_mean#1", '
        'plan: "莱西市“十四五”生态环境保护规划（征求意见稿）", '
        'row: "003_021375295357aa36.txt#L128-L131", '
        'target_cited: "003_021375295357aa36.txt#L107"}'
    ) in q


def test_plan_status_reads_met_at_risk_missed() -> None:
    (panel,) = [
        p for p in _panels(BOARDS["envwatch-plan"]) if p["title"].startswith("规划指标进展")
    ]
    options = panel["fieldConfig"]["defaults"]["mappings"][0]["options"]
    assert {
        k: (v["text"], v["color"])
        for k, v in options.items()
        if k.endswith("track") or k == "at_risk"
    } == {
        "on_track": ("达标 met", "green"),
        "at_risk": ("有风险 at risk", "orange"),
        "off_track": ("未达标 missed", "red"),
    }


def test_a_name_with_a_dollar_cannot_inject_a_variable() -> None:
    q = flux.catalogue_rows([{"locality": "x", "name": "a${locality}b"}])
    assert "${" not in q.replace('r.locality == "${locality}"', "")
