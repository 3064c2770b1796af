"""The reference catalogue loads; broken copies of it report every problem with file, line,
field path and reason (issue 4 acceptance: ten different ways, all at once)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rules.catalog import (
    ALERT_RULES_FILES,
    Catalog,
    CellKind,
    ControlLevel,
    Outlet,
    OutletType,
    catalog_from_texts,
    load_catalog,
    parse_cell,
    uscc_problem,
)
from rules.errors import ConfigError, ConfigProblem

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "config"


def _texts() -> dict[str, str]:
    return {
        p.name: p.read_text(encoding="utf-8")
        for p in sorted(CONFIG.glob("*.yaml"))
        if p.name not in ALERT_RULES_FILES
    }


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(CONFIG)


def _line_of(text: str, snippet: str) -> int:
    """1-based line of ``snippet`` in ``text`` (the oracle for reported line numbers)."""
    index = text.index(snippet)
    return text.count("\n", 0, index) + 1


def _break(file: str, old: str, new: str) -> tuple[dict[str, str], int]:
    """Replace the first ``old`` by ``new``; return the texts and the line of the edit."""
    texts = _texts()
    assert texts[file].count(old) >= 1, f"{old!r} not in {file}"
    line = _line_of(texts[file], old)
    texts[file] = texts[file].replace(old, new, 1)
    return texts, line


def _problems(texts: dict[str, str]) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as info:
        catalog_from_texts(texts)
    return info.value.problems


# ------------------------------------------------------------------ the reference config


def test_reference_catalogue_loads_with_the_five_localities(catalog: Catalog) -> None:
    names = {loc.id: loc.name for loc in catalog.localities}
    assert set(names) == {"weifang", "tianqiao", "laixi", "zhifu", "liaocheng-etdz"}
    assert "潍坊市" in names["weifang"]
    assert "天桥区" in names["tianqiao"]
    assert "莱西市" in names["laixi"]
    assert "芝罘区" in names["zhifu"]
    assert "聊城经济技术开发区" in names["liaocheng-etdz"]


def test_invented_items_are_marked_example(catalog: Catalog) -> None:
    # Only the plan-named Laixi sections (L55, L107, L29, L424) are not examples.
    real = {s.id for s in catalog.sections if not s.example}
    assert real == {
        "ws-lx-zaochao",
        "ws-lx-jiangjiazhuang",
        "ws-lx-jingzhuang",
        "ws-lx-jiaoshuzhuang",
        "ws-lx-liujiadu",
        "ws-lx-nianzhitou",
        "ws-lx-cuoyang",
        "ws-lx-chanzhi",
    }
    assert all(s.example for s in catalog.stations)
    assert all(e.example for e in catalog.enterprises)
    assert all(m.example for m in catalog.monitors)


def test_laixi_named_sections_carry_the_plan_targets(catalog: Catalog) -> None:
    by_name = {s.name: s for s in catalog.sections_of("laixi")}
    # 003…#L107: 早朝、江家庄、刘家都桥 → Ⅲ类; 敬庄公路桥、教书庄 → IV类; 辇止头: none (L55)
    assert [by_name[n].target_class for n in ("早朝", "江家庄", "刘家都桥")] == [3, 3, 3]
    assert [by_name[n].target_class for n in ("敬庄公路桥", "教书庄")] == [4, 4]
    assert by_name["辇止头"].target_class is None
    # 003…#L55: COD exceeds at 早朝、江家庄、辇止头; fluoride at 敬庄公路桥、教书庄、刘家都
    assert by_name["辇止头"].problem_factors == ("cod",)
    assert by_name["敬庄公路桥"].problem_factors == ("fluoride",)


def test_laixi_wwtp_limits_from_the_plan(catalog: Catalog) -> None:
    # 003…#L114: 10万吨/日 一级A（加严）COD≤40mg/l、氨氮≤2mg/l
    found = catalog.outlet_by_mn("010000A8900016F000169F01")
    assert found is not None
    ent, outlet = found
    assert ent.id == "e-lx-wwtp"
    limits = {lim.factor: (lim.limit, lim.unit) for lim in outlet.limits}
    assert limits["cod"] == (40, "mg/L")
    assert limits["nh3n"] == (2, "mg/L")


def test_dustfall_limit_seven_in_liaocheng_and_weifang(catalog: Catalog) -> None:
    # 000…#L171 and 001…#L351: 平均降尘量不得高于7吨/月·平方公里
    for loc_id in ("liaocheng-etdz", "weifang"):
        targets = [
            t for t in catalog.locality(loc_id).targets() if t.metric == "dustfall_monthly_mean"
        ]
        assert len(targets) == 1
        eff = targets[0].effective_target()
        assert eff is not None
        assert (eff.value, eff.comparator) == (7, "≤")


def test_text_and_table_disagreement_is_kept_with_the_choice_marked(catalog: Catalog) -> None:
    laixi_pm = catalog.locality("laixi").indicators[0]
    assert laixi_pm.target_2025 == "完成省分解任务"  # the table, 003…#L130
    assert laixi_pm.text_target is not None
    assert laixi_pm.text_target.value == 38
    eff = laixi_pm.effective_target()
    assert eff is not None
    assert eff.origin == "text"
    assert eff.value == 38
    zhifu_good = catalog.locality("zhifu").indicators[1]
    assert zhifu_good.value_2020 == "85.5"  # table, 004…#L171
    assert zhifu_good.text_value_2020 is not None
    assert zhifu_good.text_value_2020.value == 86.6
    assert zhifu_good.baseline_value() == 85.5
    assert zhifu_good.effective_target() is None  # 完成市分解任务: no number until an override


def test_reference_o2_defaults_and_an_outlets_own_value(catalog: Catalog) -> None:
    # defaults.yaml: GB 13271-2014 表6 read in the standard (coal boilers 9 %, gas boilers 3.5 %);
    # the others are [MEM] operator defaults (waste incinerators 11 %, GB 18485-2014)
    ref = catalog.defaults.reference_o2
    assert (ref["coal_boiler"].value, ref["coal_boiler"].confidence) == (9, "STD")
    assert (ref["gas_boiler"].value, ref["gas_boiler"].confidence) == (3.5, "STD")
    assert (ref["waste_incinerator"].value, ref["waste_incinerator"].confidence) == (11, "MEM")
    # an outlet's own reference O2 overrides the default of its source type
    own = Outlet(
        id="e-x-01-g1",
        name="boiler stack",
        type=OutletType.GAS,
        mn="X0001",
        source_type="coal_boiler",
        reference_o2=6.0,
    )
    assert catalog.reference_o2(own) == 6.0
    assert catalog.reference_o2(own.model_copy(update={"reference_o2": None})) == 9.0


def test_lookups(catalog: Catalog) -> None:
    assert catalog.source("aq-wf-01") in catalog.stations_of("weifang")
    assert catalog.outlet_by_mn("no-such-mn") is None
    out = catalog.source("e-wf-01-g1")
    assert out is not None
    # gas_boiler → 3.5 % (GB 13271-2014 表6, defaults.yaml)
    assert catalog.reference_o2(out) == 3.5  # type: ignore[arg-type]
    assert {s.control for s in catalog.stations_of("weifang")} >= {ControlLevel.NATIONAL}
    assert len(catalog.enterprises_of("laixi")) == 2


def test_noise_monitors_carry_a_gb3096_zone_class(catalog: Catalog) -> None:
    zones = {m.id: m.zone_class for m in catalog.monitors if m.kind == "noise"}
    # 3 类 for the industrial development zone, 2 类 for the urban district (examples)
    assert zones == {"mon-lc-noise-01": "3", "mon-tq-noise-01": "2"}
    assert all(m.zone_class is None for m in catalog.monitors if m.kind != "noise")


def test_dust_monitors_have_hourly_limits_marked_as_local_settings(catalog: Catalog) -> None:
    dust = [m for m in catalog.monitors if m.kind in ("construction_dust", "road_dust")]
    assert {m.id for m in dust} == {
        "mon-lx-site-01",
        "mon-tq-site-01",
        "mon-wf-site-01",
        "mon-zf-site-01",
        "mon-lc-road-01",
        "mon-tq-road-01",
    }
    for m in dust:
        limits = {lim.factor: lim for lim in m.limits}
        assert set(limits) == set(m.factors), m.id  # every measured factor has its limit
        for lim in limits.values():
            assert (lim.limit, lim.unit, lim.basis) == (150, "ug/m3", "hour")
            assert lim.source is not None
            assert "local setting [MEM]" in lim.source
            assert "DB37/2373-2018 value not confirmed" in lim.source


def test_each_enterprise_with_electricity_monitors_has_a_production_treatment_pair(
    catalog: Catalog,
) -> None:
    pairs: dict[str, dict[str, tuple[str, float | None, float | None]]] = {}
    for m in catalog.monitors:
        if m.kind == "electricity":
            assert m.enterprise is not None
            assert m.role is not None
            pairs.setdefault(m.enterprise, {})[m.role.value] = (m.id, m.normal_kw, m.running_kw)
    assert pairs == {
        "e-lx-01": {
            "treatment": ("mon-lx-power-01", 250, None),
            "production": ("mon-lx-power-02", None, 300),
        },
        "e-lc-01": {
            "production": ("mon-lc-power-01", None, 300),
            "treatment": ("mon-lc-power-02", 180, None),
        },
        "e-wf-01": {
            "treatment": ("mon-wf-power-01", 400, None),
            "production": ("mon-wf-power-02", None, 300),
        },
    }


def test_zone_class_may_be_written_as_a_number() -> None:
    texts = _texts()
    texts["tianqiao.yaml"] = texts["tianqiao.yaml"].replace('zone_class: "2"}', "zone_class: 2}")
    cat = catalog_from_texts(texts)
    noise = cat.source("mon-tq-noise-01")
    assert getattr(noise, "zone_class", None) == "2"


def test_a_broken_production_monitor_does_not_cascade_to_its_treatment() -> None:
    texts, _ = _break(
        "weifang.yaml", "role: production, running_kw: 300}", "role: production, running_kw: -5}"
    )
    problems = _problems(texts)
    assert [p.field for p in problems] == ["monitors[6].running_kw"]


def test_loading_is_deterministic(catalog: Catalog) -> None:
    again = load_catalog(CONFIG)
    assert again == catalog
    assert again.fingerprint == catalog.fingerprint


# ------------------------------------------------------------------ ten+ ways to break it

BREAKAGES = [
    # (file, old, new, field, reason fragment)
    (
        "tianqiao.yaml",
        "{id: aq-tq-02, name:",
        "{id: aq-tq-02, locality: jinan, name:",
        "air_stations[1].locality",
        "unknown locality 'jinan'",
    ),
    (
        "tianqiao.yaml",
        "{id: aq-tq-02, name:",
        "{id: aq-tq-01, name:",
        "air_stations[1].id",
        "duplicate id 'aq-tq-01'",
    ),
    (
        "zhifu.yaml",
        'mn: "010000A8900016F000169B02"',
        'mn: "010000A8900016F000169B01"',
        "enterprises[1].outlets[0].mn",
        "used twice",
    ),
    (
        "laixi.yaml",
        "name: 早朝, river: 大沽河, target_class: III",
        "name: 早朝, river: 大沽河, target_class: VI",
        "water_sections[0].target_class",
        "outside I–V",
    ),
    (
        "weifang.yaml",
        "{factor: pm, limit: 20, unit: mg/m3,",
        "{factor: pm, limit: 20,",
        "enterprises[0].outlets[0].limits[0]",
        "has no unit",
    ),
    (
        "laixi.yaml",
        "{factor: cod, limit: 40, unit: mg/L",
        "{factor: cod, limit: -40, unit: mg/L",
        "enterprises[0].outlets[0].limits[0].limit",
        "negative limit",
    ),
    (
        "tianqiao.yaml",
        "upstream: [ws-tq-01]",
        "upstream: [ws-tq-99]",
        "water_sections[1].upstream[0]",
        "unknown upstream section 'ws-tq-99'",
    ),
    (
        "zhifu.yaml",
        "warning_rule_set: envwatch-default",
        "warning_rule_set: no-such-set",
        "locality.warning_rule_set",
        "unknown warning rule set 'no-such-set'",
    ),
    (
        "zhifu.yaml",
        '"913706020EXAMPLE1N"',
        '"913706020EXAMPLE1M"',
        "enterprises[0].uscc",
        "check character",
    ),
    (
        "weifang.yaml",
        'target_2025: "39.40"',
        "target_2025: 39.40",
        "locality.indicators[19].target_2025",
        "string",
    ),
    (
        "zhifu.yaml",
        "kind: construction_dust, factors: [dust, pm10]",
        "kind: construction_dust, factors: [dust, pm25]",
        "monitors[1].factors",
        "unknown monitor factor",
    ),
    (
        "laixi.yaml",
        "metric: pm25_annual_mean, progress_uses: text,",
        "metric: pm25_annual_mean, progress_uses: override,",
        "locality.indicators[0]",
        "no override",
    ),
    (
        "tianqiao.yaml",
        'source: "002_6d72280123f25383.txt#L68-L71"',
        'source: "plan line 68"',
        "locality.indicators[0].source",
        "pattern",
    ),
    ("weifang.yaml", "monitors:\n", "monitor:\n", "monitor", "unknown section"),
    (
        "liaocheng-etdz.yaml",
        "outlets:\n      - id: e-lc-01-g1",
        "outlets:\n      - id: e-lc-99-g1",
        "enterprises[0].outlets[0].id",
        "must start with the enterprise id",
    ),
    # issue 11: kind-specific monitor fields
    (
        "liaocheng-etdz.yaml",
        'zone_class: "3"}',
        "}",
        "monitors[5].zone_class",
        "a noise monitor needs zone_class",
    ),
    (
        "tianqiao.yaml",
        'zone_class: "2"}',
        'zone_class: "4"}',
        "monitors[2].zone_class",
        "is not one of 0, 1, 2, 3, 4a, 4b",
    ),
    (
        "laixi.yaml",
        "role: treatment, normal_kw: 250}",
        "normal_kw: 250}",
        "monitors[1].role",
        "an electricity monitor needs role",
    ),
    (
        "laixi.yaml",
        "role: treatment, normal_kw: 250}",
        "role: treatment}",
        "monitors[1].normal_kw",
        "needs normal_kw",
    ),
    (
        "weifang.yaml",
        "role: production, running_kw: 300}",
        "role: production}",
        "monitors[6].running_kw",
        "needs running_kw",
    ),
    (
        "laixi.yaml",
        "factors: [power_kw], enterprise: e-lx-01, example: true,\n     role: treatment",
        "factors: [power_kw], enterprise: e-lx-wwtp, example: true,\n     role: treatment",
        "monitors[1].role",
        "enterprise 'e-lx-wwtp' has a treatment electricity monitor but no production monitor",
    ),
    (
        "liaocheng-etdz.yaml",
        "role: treatment, normal_kw: 180}",
        "role: treatment, normal_kw: 0}",
        "monitors[4].normal_kw",
        "greater than 0",
    ),
    (
        "zhifu.yaml",
        "kind: construction_dust, factors: [dust, pm10], example: true,",
        "kind: construction_dust, factors: [dust, pm10], example: true, zone_class: 2,",
        "monitors[1].zone_class",
        "applies to noise monitors only",
    ),
    (
        "laixi.yaml",
        'mn: "010000A8900016F000169F03"\n        source_type: coal_boiler',
        'mn: "010000A8900016F000169F03"\n        source_type: coal_fired',
        "enterprises[1].outlets[0].source_type",
        "unknown source type 'coal_fired'",
    ),
]


@pytest.mark.parametrize(("file", "old", "new", "field", "reason"), BREAKAGES)
def test_each_breakage_names_file_line_field_and_reason(
    file: str, old: str, new: str, field: str, reason: str
) -> None:
    texts, line = _break(file, old, new)
    problems = _problems(texts)
    matching = [p for p in problems if p.file == file and p.field == field and reason in p.reason]
    assert matching, f"no problem {file} {field} {reason!r} in {[str(p) for p in problems]}"
    # the broken value sits on the line reported (or on a line of the same flow mapping)
    reported = matching[0].line
    assert reported is not None
    assert abs(reported - line) <= 1, (reported, line)
    assert f"{file}:{reported}" in str(matching[0])
    assert field in str(matching[0])


def test_all_problems_are_reported_at_once() -> None:
    # ten breakages that do not hide one another (a bad USCC would drop its enterprise, and
    # with it the MN clash; two edits of the same line cannot both apply)
    chosen = [BREAKAGES[i] for i in (1, 2, 3, 4, 5, 6, 7, 9, 10, 11)]
    texts = _texts()
    for file, old, new, _, _ in chosen:
        assert old in texts[file]
        texts[file] = texts[file].replace(old, new, 1)
    problems = _problems(texts)
    assert len(problems) >= 10
    for file, _, _, field, reason in chosen:
        assert any(p.file == file and p.field == field and reason in p.reason for p in problems), (
            field
        )


def test_yaml_syntax_error_names_file_and_line() -> None:
    texts = _texts()
    texts["zhifu.yaml"] = texts["zhifu.yaml"].replace("air_stations:\n", "air_stations: [\n", 1)
    problems = _problems(texts)
    assert any(p.file == "zhifu.yaml" and "YAML syntax" in p.reason and p.line for p in problems)


def test_duplicate_key_is_reported() -> None:
    texts = _texts()
    texts["tianqiao.yaml"] = texts["tianqiao.yaml"].replace(
        "  level: district\n", "  level: district\n  level: city\n", 1
    )
    problems = _problems(texts)
    assert any(p.field == "locality.level" and p.reason == "duplicate key" for p in problems)


# ------------------------------------------------------------------ values


@pytest.mark.parametrize(
    ("printed", "kind", "number", "cumulative", "qualifier"),
    [
        ("40 (省控及以上)", CellKind.NUMBER, 40.0, False, "省控及以上"),  # 001…#L164
        ("[28.74] ¹", CellKind.NUMBER, 28.74, True, None),  # 004…#L177
        ("完成市分解任务 ²", CellKind.WORD, None, False, None),  # 004…#L170
        ("全面消除", CellKind.WORD, None, False, None),
        ("", CellKind.BLANK, None, False, None),
        ("—", CellKind.DASH, None, False, None),
        ("□", CellKind.PLACEHOLDER, None, False, None),  # 004…#L184
        ("≥33", CellKind.NUMBER, 33.0, False, None),  # 004…#L192
        ("100%", CellKind.NUMBER, 100.0, False, None),
        ("年均下降3.2%", CellKind.WORD, None, False, None),  # 004…#L183: a rate, kept as words
    ],
)
def test_printed_cells(
    printed: str, kind: CellKind, number: float | None, cumulative: bool, qualifier: str | None
) -> None:
    cell = parse_cell(printed)
    assert (cell.kind, cell.number, cell.cumulative, cell.qualifier) == (
        kind,
        number,
        cumulative,
        qualifier,
    )
    assert cell.printed == printed


def test_uscc_validation() -> None:
    # 91350100M000100Y43 is the worked example widely quoted for GB 32100-2015
    assert uscc_problem("91350100M000100Y43") is None
    assert "check character" in (uscc_problem("91350100M000100Y44") or "")
    assert "18 characters" in (uscc_problem("91350100M000100Y4") or "")
    assert "outside" in (uscc_problem("91350100M000100I43") or "")  # I is not in the set
