"""envwatch's Grafana dashboards as code (grafana-foundation-sdk), exported as JSON.

Six dashboards for the duty officer (值班员, architecture.md §1), every query in Flux (InfluxDB 2)
against the datasource variable ``${datasource}``, the bucket variable ``${bucket}`` and the
locality variable ``${locality}``; every measurement/field/tag they read is declared in
streams/schema.py (tests/deploy/test_dashboards.py checks the Flux text).

``python -m deploy.grafana.dashboards [DIR]`` or ``envwatch grafana export`` writes
``deploy/grafana/dashboards/<uid>.json``; the committed files must equal a fresh export
(a test compares them).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TypeVar

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import stat, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

from deploy.grafana.flux import (
    BUCKET_VAR,
    DATASOURCE_REF,
    DATASOURCE_VAR,
    LOCALITY_VAR,
    FluxQuery,
    query,
)
from rules.aqi import LEVELS

OUT_DIR: Final = Path(__file__).resolve().parent / "dashboards"
FOLDER_UID: Final = "envwatch"
FOLDER_TITLE: Final = "envwatch 生态环境监测"
TAGS: Final = ["envwatch"]

P = TypeVar("P", stat.Panel, table.Panel, timeseries.Panel)

# ----------------------------------------------------------------------------- shared pieces


def aqi_thresholds() -> db.ThresholdsConfig:
    """AQI level colours: HJ 633-2012 表2 + 附录A 表A.1 = HJ 633-2026 表1 + 附录A (rules.aqi.LEVELS):
    0–50 #00E400, 51–100 #FFFF00, 101–150 #FF7E00, 151–200 #FF0000, 201–300 #99004C, >300 #7E0023."""
    steps = [
        dm.Threshold(value=None if lv.lower == 0 else float(lv.lower), color=lv.color)
        for lv in LEVELS
    ]
    return db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(steps)


def _aqi_level_mappings() -> list[dm.ValueMapping]:
    opts = {
        str(lv.level): dm.ValueMappingResult(text=f"{lv.category} {lv.category_en}", color=lv.color)
        for lv in LEVELS
    }
    return [dm.ValueMap(options=opts)]


#: GB 3838-2002 classes 1–6 (6 = 劣V). Colours are envwatch's choice (GB 3838 defines none).
_WATER_CLASS: Final = (
    ("Ⅰ", "#1E90FF"),
    ("Ⅱ", "#00BFFF"),
    ("Ⅲ", "#00E400"),
    ("Ⅳ", "#FFFF00"),
    ("Ⅴ", "#FF7E00"),
    ("劣Ⅴ", "#FF0000"),
)


def _water_class_mappings() -> list[dm.ValueMapping]:
    opts = {
        str(i): dm.ValueMappingResult(text=label, color=color)
        for i, (label, color) in enumerate(_WATER_CLASS, 1)
    }
    return [dm.ValueMap(options=opts)]


def _bool_mappings(yes: str, no: str) -> list[dm.ValueMapping]:
    return [
        dm.ValueMap(
            options={
                "true": dm.ValueMappingResult(text=yes, color="green"),
                "false": dm.ValueMappingResult(text=no, color="red"),
            }
        )
    ]


def _ref() -> dm.DataSourceRef:
    return dm.DataSourceRef(type_val=DATASOURCE_REF["type"], uid=DATASOURCE_REF["uid"])


def _place(panel: P, title: str, description: str, flux: str | list[str], h: int, w: int) -> P:
    panel = panel.title(title).description(description).datasource(_ref()).height(h).span(w)
    for i, q in enumerate([flux] if isinstance(flux, str) else flux):
        panel = panel.with_target(FluxQuery(q, ref_id=chr(ord("A") + i)))
    return panel


def _stat(title: str, description: str, flux: str, h: int = 5, w: int = 6) -> stat.Panel:
    p = stat.Panel().reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    return _place(p, title, description, flux, h, w)


def _table(
    title: str, description: str, flux: str | list[str], h: int = 8, w: int = 12
) -> table.Panel:
    return _place(table.Panel(), title, description, flux, h, w)


def _series(
    title: str, description: str, flux: str | list[str], h: int = 8, w: int = 12
) -> timeseries.Panel:
    return _place(timeseries.Panel(), title, description, flux, h, w)


def _variables(board: db.Dashboard) -> db.Dashboard:
    ds = (
        db.DatasourceVariable(DATASOURCE_VAR)
        .label("数据源 datasource")
        .type("influxdb")
        .description("InfluxDB 2 datasource (Flux) holding the envwatch bucket")
    )
    bucket = (
        db.ConstantVariable(BUCKET_VAR)
        .label("bucket")
        .value("envwatch")
        .description("InfluxDB bucket envwatch writes (ENVWATCH_INFLUX_BUCKET)")
    )
    locality_q = (
        'import "influxdata/influxdb/schema"\n'
        f'schema.tagValues(bucket: "${{{BUCKET_VAR}}}", tag: "locality", '
        'predicate: (r) => r._measurement == "reading", start: -30d)'
    )
    locality = (
        db.QueryVariable(LOCALITY_VAR)
        .label("地区 locality")
        .description("locality id from the catalogue (deploy/config)")
        .datasource(_ref())
        .query(locality_q)
        .refresh(dm.VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
    )
    return board.with_variable(ds).with_variable(bucket).with_variable(locality)


#: Dashboard variable holding the alerts console's base URL (``ENVWATCH_ALERTS_EXTERNAL_URL``);
#: set it in Grafana or with ``?var-console=…``; the default is ``envwatch api``'s own default.
CONSOLE_VAR: Final = "console"
CONSOLE_DEFAULT: Final = "http://127.0.0.1:8090"

#: The alert table's columns that make up an alert's identity (``alerts.model.fingerprint``:
#: the ``alert`` measurement's tags, ``none`` standing for an empty factor or period).
CONSOLE_LINK_FIELDS: Final = ("locality", "rule", "source", "factor", "period")


def console_variable() -> db.TextBoxVariable:
    return (
        db.TextBoxVariable(CONSOLE_VAR)
        .label("告警控制台 console")
        .description("base URL of the alerts console (envwatch api; ENVWATCH_ALERTS_EXTERNAL_URL)")
        .default_value(CONSOLE_DEFAULT)
        .current(dm.VariableOption(text=CONSOLE_DEFAULT, value=CONSOLE_DEFAULT, selected=True))
    )


def console_link() -> db.DashboardLink:
    """The data link of an alert row: the console's ``/console/alerts/find``, which turns the
    row's identity tags into the fingerprint and redirects to ``/console/alerts/{fingerprint}``
    (the page every notification links to)."""
    query_string = "&".join(f"{n}=${{__data.fields.{n}}}" for n in CONSOLE_LINK_FIELDS)
    return (
        db.DashboardLink("告警详情 alert page")
        .url(f"${{{CONSOLE_VAR}}}/console/alerts/find?{query_string}")
        .target_blank(True)
    )


def _board(uid: str, title: str, description: str, *, time_from: str = "now-24h") -> db.Dashboard:
    board = (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .timezone("Asia/Shanghai")
        .time(time_from, "now")
        .refresh("1m")
        .editable()
    )
    return _variables(board)


_LAST_BY_SOURCE: Final = """
|> last()
|> pivot(rowKey: ["source"], columnKey: ["_field"], valueColumn: "_value")
|> group()
"""

# ----------------------------------------------------------------------------- 1 值班总览


def duty_overview() -> db.Dashboard:
    b = _board(
        "envwatch-duty",
        "值班总览",
        "Duty overview per locality: stations coloured by AQI level (HJ 633), city AQI, water "
        "sections against their target class, enterprises in exceedance, active alerts and "
        "heavy-pollution warnings.",
        time_from="now-6h",
    ).with_variable(console_variable())
    b = b.with_row(db.Row("空气 Air"))
    b = b.with_panel(
        _stat(
            "城市实时AQI",
            "City real-time AQI (mean of the stations' concentrations, then AQI; source = city).",
            query("aqi", ["aqi"], where={"source": "city", "period": "hour"}, then="|> last()"),
            w=6,
        )
        .thresholds(aqi_thresholds())
        .color_mode(cm.BigValueColorMode.BACKGROUND)
    )
    b = b.with_panel(
        _stat(
            "各站点实时AQI",
            "Real-time AQI of every station, coloured by AQI level (HJ 633 colours).",
            query(
                "aqi",
                ["aqi"],
                where={"source": "!city", "period": "hour"},
                then='|> last()\n|> group(columns: ["source"])',
            ),
            w=18,
        )
        .thresholds(aqi_thresholds())
        .color_mode(cm.BigValueColorMode.BACKGROUND)
        .text_mode(cm.BigValueTextMode.VALUE_AND_NAME)
    )
    b = b.with_row(db.Row("水 Water"))
    b = b.with_panel(
        _table(
            "断面水质与目标",
            "Water sections: today's class (daily means) against the target class; 劣V highlighted.",
            query(
                "water_class",
                ["grade", "target", "meets", "main_pollutants"],
                where={"period": "day"},
                then=_LAST_BY_SOURCE,
            ),
            w=12,
        ).mappings(_water_class_mappings())
    )
    b = b.with_panel(
        _table(
            "超标企业",
            "Enterprises in exceedance: latest exceedance per outlet and factor (O2-corrected where applicable).",
            query(
                "exceedance",
                ["value", "limit", "multiple"],
                where={"kind": "emission"},
                then='|> last()\n|> pivot(rowKey: ["source", "factor", "period"], columnKey: ["_field"], valueColumn: "_value")\n|> group()',
            ),
            w=12,
        )
    )
    b = b.with_row(db.Row("告警与预警 Alerts and warnings"))
    b = b.with_panel(
        _table(
            "当前告警",
            "Active alerts: the latest transition per rule and source whose state is firing. "
            "A row links to the alert's page in the alerts console (docs/console.md; base URL "
            "in the variable ${" + CONSOLE_VAR + "}).",
            query(
                "alert",
                ["summary", "value", "limit"],
                then='|> last()\n|> pivot(rowKey: ["rule", "source", "level", "state"], columnKey: ["_field"], valueColumn: "_value")\n'
                '|> group()\n|> filter(fn: (r) => r.state == "firing")',
            ),
            w=16,
        ).data_links([console_link()])
    )
    return b.with_panel(
        _table(
            "重污染天气预警",
            "Heavy-pollution-weather warning in force (重污染天气预警): latest change per rule set.",
            query(
                "warning",
                ["summary"],
                then='|> last()\n|> pivot(rowKey: ["rule", "level", "state"], columnKey: ["_field"], valueColumn: "_value")\n|> group()',
            ),
            w=8,
        )
    )


# ----------------------------------------------------------------------------- 2 空气质量


_IAQI: Final = ("iaqi_pm25", "iaqi_pm10", "iaqi_so2", "iaqi_no2", "iaqi_co", "iaqi_o3")


def air_quality() -> db.Dashboard:
    b = _board(
        "envwatch-air",
        "空气质量",
        "Air quality detail: hourly AQI per station, IAQI per pollutant, 24-h/8-h moving means, "
        "daily AQI and good days (优良天, daily AQI ≤ 100).",
        time_from="now-7d",
    )
    b = b.with_panel(
        _series(
            "实时AQI",
            "Real-time (hourly) AQI per station (HJ 633; PM on daily breakpoints, no O3-8h term).",
            query("aqi", ["aqi"], where={"period": "hour"}, then='|> group(columns: ["source"])'),
            w=24,
        ).thresholds(aqi_thresholds())
    )
    b = b.with_panel(
        _series(
            "分指数 IAQI",
            "Individual AQI (IAQI) of each pollutant, hourly, over all stations of the locality.",
            query(
                "aqi",
                _IAQI,
                where={"period": "hour"},
                then='|> group(columns: ["_field", "source"])',
            ),
            w=12,
        )
    )
    b = b.with_panel(
        _series(
            "滑动平均",
            "Moving means: PM2.5 and PM10 over 24 h (≥ 20 h, GB 3095 表4), O3 over 8 h (≥ 6 h).",
            query(
                "aggregate",
                ["pm25_24h", "pm10_24h", "o3_8h"],
                where={"period": "moving"},
                then='|> group(columns: ["_field", "source"])',
            ),
            w=12,
        ).unit("µg/m³")
    )
    b = b.with_panel(
        _series(
            "日AQI",
            "Daily AQI per station (daily means + daily maximum 8-h O3).",
            query(
                "aqi",
                ["aqi"],
                where={"period": "day"},
                start="-30d",
                then='|> group(columns: ["source"])',
            ),
            w=12,
        )
        .thresholds(aqi_thresholds())
        .draw_style(cm.GraphDrawStyle.BARS)
    )
    b = b.with_panel(
        _table(
            "优良天数",
            "Good days (优良天, daily AQI ≤ 100) and heavy days (重度及以上, AQI > 200) per station in the range.",
            query(
                "aqi",
                ["good", "heavy"],
                where={"period": "day"},
                start="-30d",
                then="|> map(fn: (r) => ({r with _value: if r._value then 1 else 0}))\n|> sum()\n"
                '|> pivot(rowKey: ["source"], columnKey: ["_field"], valueColumn: "_value")\n|> group()',
            ),
            w=12,
        )
    )
    return b.with_panel(
        _table(
            "首要污染物与日均值",
            "Daily means per station (µg/m³; CO mg/m³), maximum 8-h O3 and hours with data.",
            query(
                "aggregate",
                ["pm25", "pm10", "so2", "no2", "co", "o3_8h_max", "hours"],
                where={"period": "day"},
                start="-2d",
                then=_LAST_BY_SOURCE,
            ),
            w=24,
        )
    )


# ----------------------------------------------------------------------------- 3 水质断面


def water_sections() -> db.Dashboard:
    b = _board(
        "envwatch-water",
        "水质断面",
        "Water sections: GB 3838 class against the target class, 劣V sections, main pollutants "
        "with their exceedance multiples.",
        time_from="now-7d",
    )
    b = b.with_panel(
        _stat(
            "劣Ⅴ类断面",
            "Number of sections whose latest daily class is 劣V (worse than class V).",
            query(
                "water_class",
                ["worse_than_v"],
                where={"period": "day"},
                then="|> last()\n|> map(fn: (r) => ({r with _value: if r._value then 1 else 0}))\n|> group()\n|> sum()",
            ),
            w=8,
        )
    )
    b = b.with_panel(
        _stat(
            "未达目标断面",
            "Number of sections whose latest daily class is worse than their target class.",
            query(
                "water_class",
                ["meets"],
                where={"period": "day"},
                then="|> last()\n|> map(fn: (r) => ({r with _value: if r._value then 0 else 1}))\n|> group()\n|> sum()",
            ),
            w=8,
        )
    )
    b = b.with_panel(
        _stat(
            "断面数",
            "Sections reporting in the range.",
            query(
                "water_class",
                ["grade"],
                where={"period": "day"},
                then="|> last()\n|> group()\n|> count()",
            ),
            w=8,
        )
    )
    b = b.with_panel(
        _table(
            "断面类别与目标",
            "Latest daily class, target class, classes worse than target and main pollutants (主要污染指标).",
            query(
                "water_class",
                ["grade", "target", "classes_worse", "main_pollutants", "quality"],
                where={"period": "day"},
                then=_LAST_BY_SOURCE,
            ),
            w=24,
        ).mappings(_water_class_mappings())
    )
    b = b.with_panel(
        _series(
            "水质类别变化",
            "Class per sample (1 = Ⅰ … 6 = 劣Ⅴ), per section.",
            query(
                "water_class",
                ["grade"],
                where={"period": "sample"},
                then='|> group(columns: ["source"])',
            ),
            w=12,
        ).mappings(_water_class_mappings())
    )
    return b.with_panel(
        _series(
            "主要污染物超标倍数",
            "Exceedance multiples of the main pollutants against class Ⅲ-type limits, per sample.",
            query(
                "water_class",
                where={"period": "sample"},
                field_regex="^multiple_",
                then='|> group(columns: ["_field", "source"])',
            ),
            w=12,
        )
    )


# ----------------------------------------------------------------------------- 4 企业排放


def emissions() -> db.Dashboard:
    b = _board(
        "envwatch-emissions",
        "企业排放",
        "Enterprise emissions: hourly O2-corrected concentrations (折算) against the permit limit, "
        "exceedances, valid minutes (HJ 212 validity).",
        time_from="now-2d",
    )
    b = b.with_panel(
        _series(
            "小时折算浓度",
            "Hourly O2-corrected concentrations (mg/m³) per outlet: SO2, NOx, particulate matter.",
            query(
                "emission_hour",
                ["so2_zs", "nox_zs", "pm_zs"],
                then='|> group(columns: ["_field", "source"])',
            ),
            w=24,
        ).unit("mg/m³")
    )
    b = b.with_panel(
        _series(
            "超标值与许可限值",
            "Exceedances: the value judged against the permit limit (hourly, O2-corrected where applicable).",
            query(
                "exceedance",
                ["value", "limit"],
                where={"kind": "emission"},
                then='|> group(columns: ["_field", "source", "factor"])',
            ),
            w=12,
        ).draw_style(cm.GraphDrawStyle.POINTS)
    )
    b = b.with_panel(
        _table(
            "超标记录",
            "Every emission exceedance in the range: outlet, factor, value, limit, multiple and limit source.",
            query(
                "exceedance",
                ["value", "limit", "multiple", "standard", "corrected"],
                where={"kind": "emission"},
                then='|> pivot(rowKey: ["_time", "source", "factor", "period"], columnKey: ["_field"], valueColumn: "_value")\n|> group()\n|> sort(columns: ["_time"], desc: true)',
            ),
            w=12,
        )
    )
    b = b.with_panel(
        _series(
            "有效分钟数",
            "Valid minutes per hour (an hourly mean needs ≥ 45 valid minutes, HJ 212 附录D).",
            query(
                "emission_hour",
                ["valid_minutes_so2", "valid_minutes_nox", "valid_minutes_pm"],
                then='|> group(columns: ["_field", "source"])',
            ),
            w=12,
        )
    )
    return b.with_panel(
        _table(
            "废水日均值",
            "Wastewater outlets: latest daily values (mg/L; flow m³/h).",
            query(
                "emission_day",
                ["cod", "nh3n", "tp", "tn", "ph", "flow"],
                start="-7d",
                then=_LAST_BY_SOURCE,
            ),
            w=12,
        )
    )


# ----------------------------------------------------------------------------- 5 数据质量


def data_quality() -> db.Dashboard:
    b = _board(
        "envwatch-data-quality",
        "数据质量",
        "Data quality (数据真、准、全): transmission and valid-data rates per source and day, "
        "constant/zero-value runs, invalid flags, dead letters.",
        time_from="now-7d",
    )
    b = b.with_panel(
        _table(
            "传输率与有效率",
            "Per source, today: transmission rate (received / expected) and valid-data rate (valid / received).",
            query(
                "data_quality",
                ["transmission_rate", "valid_rate", "expected", "received", "last_seen"],
                where={"period": "day"},
                then=_LAST_BY_SOURCE,
            ),
            w=24,
        ).unit("percentunit")
    )
    b = b.with_panel(
        _series(
            "传输率",
            "Daily transmission rate per source.",
            query(
                "data_quality",
                ["transmission_rate"],
                where={"period": "day"},
                then='|> group(columns: ["source"])',
            ),
            w=12,
        ).unit("percentunit")
    )
    b = b.with_panel(
        _series(
            "有效率",
            "Daily valid-data rate per source.",
            query(
                "data_quality",
                ["valid_rate"],
                where={"period": "day"},
                then='|> group(columns: ["source"])',
            ),
            w=12,
        ).unit("percentunit")
    )
    b = b.with_panel(
        _table(
            "恒值与零值",
            "Constant-value and zero-value runs (数据恒值/零值, a fraud cue): longest run per source and factor in the range.",
            query(
                "data_quality",
                where={"period": "run"},
                field_regex="^(constant|zero)_",
                then='|> max()\n|> group()\n|> keep(columns: ["source", "kind", "_field", "_value"])',
            ),
            w=12,
        )
    )
    b = b.with_panel(
        _table(
            "无效标记",
            "Values with an invalid HJ 212 flag (F M D C T B) per source in the range.",
            query(
                "data_quality",
                where={"period": "day"},
                field_regex="^flag_",
                then='|> last()\n|> group()\n|> keep(columns: ["source", "kind", "_field", "_value"])',
            ),
            w=12,
        )
    )
    return b.with_panel(
        _table(
            "死信",
            "Dead letters (bad input set aside with its reason) per stage in the range.",
            query(
                "dead_letter",
                ["reason"],
                locality=False,
                then='|> group(columns: ["stage"])\n|> count()',
            ),
            w=24,
        )
    ).with_panel(
        _table(
            "系统组件",
            "envwatch's own components (alerts/pipeline.py): the newest health per component and "
            "condition — store write / rejected lines, receivers refusing notifications; "
            "problem = 1 opens an operator alert (docs/alerts.md §10).",
            query(
                "pipeline_health",
                ["problem", "count", "reason"],
                locality=False,
                then='|> last()\n|> pivot(rowKey: ["source", "condition"], columnKey: ["_field"], '
                'valueColumn: "_value")\n|> group()\n|> keep(columns: ["source", "condition", '
                '"problem", "count", "reason", "_time"])',
            ),
            w=24,
        )
    )


# ----------------------------------------------------------------------------- 6 规划目标


_YTD: Final = "date.truncate(t: now(), unit: 1y)"


def plan_targets() -> db.Dashboard:
    b = _board(
        "envwatch-plan",
        "规划目标与年度进展",
        "14th Five-Year plan targets against the year to date (Beijing calendar year): PM2.5 "
        "mean, good-day ratio, heavy days, sections at their target class, 劣V share.",
        time_from="now/y",
    )
    tz = 'import "date"\nimport "timezone"\noption location = timezone.location(name: "Asia/Shanghai")\n'
    b = b.with_panel(
        _stat(
            "PM2.5 年均值(年初至今)",
            "Year-to-date PM2.5: mean of the stations' daily means (µg/m³). Target: the panel "
            "'PM2.5 年均值与目标' (plan_progress).",
            tz
            + query(
                "aggregate",
                ["pm25"],
                where={"period": "day"},
                start=_YTD,
                then="|> group()\n|> mean()",
            ),
        ).unit("µg/m³")
    )
    b = b.with_panel(
        _stat(
            "优良天数比率",
            "Year-to-date share of good station-days (daily AQI ≤ 100).",
            tz
            + query(
                "aqi",
                ["good"],
                where={"period": "day"},
                start=_YTD,
                then="|> group()\n|> map(fn: (r) => ({r with _value: if r._value then 1.0 else 0.0}))\n|> mean()",
            ),
        ).unit("percentunit")
    )
    b = b.with_panel(
        _stat(
            "重污染天数",
            "Year-to-date heavy station-days (daily AQI > 200).",
            tz
            + query(
                "aqi",
                ["heavy"],
                where={"period": "day"},
                start=_YTD,
                then="|> group()\n|> map(fn: (r) => ({r with _value: if r._value then 1 else 0}))\n|> sum()",
            ),
        )
    )
    b = b.with_panel(
        _stat(
            "劣Ⅴ类断面比例",
            "Share of sections whose latest daily class is 劣V (plan target: 0).",
            tz
            + query(
                "water_class",
                ["worse_than_v"],
                where={"period": "day"},
                start=_YTD,
                then="|> last()\n|> group()\n|> map(fn: (r) => ({r with _value: if r._value then 1.0 else 0.0}))\n|> mean()",
            ),
        ).unit("percentunit")
    )
    b = b.with_panel(
        _series(
            "PM2.5 逐日(年初至今)",
            "Daily PM2.5 mean over the locality's stations, year to date.",
            tz
            + query(
                "aggregate",
                ["pm25"],
                where={"period": "day"},
                start=_YTD,
                then="|> group()\n|> aggregateWindow(every: 1d, fn: mean, createEmpty: false, location: location)",
            ),
            w=12,
        ).unit("µg/m³")
    )
    b = b.with_panel(
        _series(
            "PM2.5 年均值与目标",
            "The locality stage's year-to-date PM2.5 mean, its projection and the plan's 2025 "
            "target (plan_progress, one point per day's close; docs/alerts.md §6).",
            tz
            + query(
                "plan_progress",
                ["value", "projection", "target"],
                where={"metric": "pm25_annual_mean"},
                start=_YTD,
                then='|> group(columns: ["_field"])',
            ),
            w=12,
        ).unit("µg/m³")
    )
    b = b.with_panel(
        _table(
            "规划指标进展",
            "Every indicator with a metric at the newest day's close: year-to-date value, "
            "projection, 2025 target and status (on_track / at_risk / off_track / no_target).",
            tz
            + query(
                "plan_progress",
                ["value", "projection", "target", "status", "indicator_name"],
                start=_YTD,
                then='|> last()\n|> pivot(rowKey: ["indicator"], columnKey: ["_field"], '
                'valueColumn: "_value")\n|> group()\n|> keep(columns: ["indicator_name", '
                '"value", "projection", "target", "status", "_time"])',
            ),
            w=12,
        )
    )
    return b.with_panel(
        _series(
            "断面达标比例",
            "Share of sections meeting their target class, per day, year to date.",
            tz
            + query(
                "water_class",
                ["meets"],
                where={"period": "day"},
                start=_YTD,
                then="|> group()\n|> map(fn: (r) => ({r with _value: if r._value then 1.0 else 0.0}))\n|> aggregateWindow(every: 1d, fn: mean, createEmpty: false, location: location)",
            ),
            w=12,
        ).unit("percentunit")
    )


# ----------------------------------------------------------------------------- export

BUILDERS: Final[tuple[Callable[[], db.Dashboard], ...]] = (
    duty_overview,
    air_quality,
    water_sections,
    emissions,
    data_quality,
    plan_targets,
)


def to_dict(board: db.Dashboard) -> dict[str, Any]:
    """The dashboard's JSON model as plain data, panel ids numbered 1… in order."""
    data: dict[str, Any] = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    for i, panel in enumerate(data.get("panels") or [], 1):
        panel["id"] = i
    for var in (data.get("templating") or {}).get("list") or []:
        var.pop("id", None)  # the SDK puts the same all-zero UUID on every variable
    return data


def all_dashboards() -> dict[str, dict[str, Any]]:
    """uid → dashboard JSON model, for all six dashboards."""
    out: dict[str, dict[str, Any]] = {}
    for build in BUILDERS:
        d = to_dict(build())
        out[d["uid"]] = d
    return out


def render(d: dict[str, Any]) -> str:
    """The exact text written to disk (stable: sorted keys, UTF-8, trailing newline)."""
    return json.dumps(d, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def export(out_dir: Path = OUT_DIR) -> list[Path]:
    """Write every dashboard to ``out_dir/<uid>.json``; return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for uid, d in all_dashboards().items():
        path = out_dir / f"{uid}.json"
        path.write_text(render(d), encoding="utf-8")
        paths.append(path)
    return paths


if __name__ == "__main__":  # pragma: no cover - thin command
    for p in export(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT_DIR):
        print(p)
