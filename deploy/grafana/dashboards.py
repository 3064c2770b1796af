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
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final, TypeVar

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import geomap, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

from alerts.model import IDENTITY_LABELS, AlertState
from deploy.grafana.flux import (
    BUCKET_VAR,
    DATASOURCE_REF,
    DATASOURCE_VAR,
    LOCALITY_VAR,
    FluxQuery,
    catalogue_rows,
    query,
)
from rules.aqi import LEVELS
from rules.catalog import load_catalog
from rules.catalog.model import Catalog
from rules.catalog.vocabulary import TargetOrigin

OUT_DIR: Final = Path(__file__).resolve().parent / "dashboards"
#: The catalogue the dashboards take coordinates and plan citations from (export time).
CONFIG_DIR: Final = Path(__file__).resolve().parents[1] / "config"
FOLDER_UID: Final = "envwatch"
FOLDER_TITLE: Final = "envwatch 生态环境监测"
TAGS: Final = ["envwatch"]

P = TypeVar("P", stat.Panel, table.Panel, timeseries.Panel, statetimeline.Panel, geomap.Panel)

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


#: English halves of the panel titles first written in Chinese only (titles are Chinese + English).
_TITLE_EN: Final[dict[str, str]] = {
    "城市实时AQI": "City AQI now",
    "各站点实时AQI": "Station AQI now",
    "断面水质与目标": "Sections vs target",
    "超标企业": "Enterprises in exceedance",
    "实时AQI": "Hourly AQI",
    "分指数 IAQI": "per pollutant",
    "滑动平均": "Moving means",
    "日AQI": "Daily AQI",
    "优良天数": "Good days",
    "首要污染物与日均值": "Daily means",
    "劣Ⅴ类断面": "Sections worse than V",
    "未达目标断面": "Sections missing target",
    "断面数": "Sections reporting",
    "断面类别与目标": "Class and target",
    "水质类别变化": "Class over time",
    "主要污染物超标倍数": "Exceedance multiples",
    "小时折算浓度": "Hourly corrected concentrations",
    "超标值与许可限值": "Value vs permit limit",
    "超标记录": "Exceedances",
    "有效分钟数": "Valid minutes",
    "废水日均值": "Wastewater daily values",
    "传输率与有效率": "Transmission and valid rates",
    "传输率": "Transmission rate",
    "有效率": "Valid-data rate",
    "恒值与零值": "Constant and zero runs",
    "无效标记": "Invalid flags",
    "死信": "Dead letters",
    "系统组件": "envwatch components",
    "PM2.5 年均值(年初至今)": "mean, year to date",
    "优良天数比率": "Good-day ratio",
    "重污染天数": "Heavy-pollution days",
    "劣Ⅴ类断面比例": "Share worse than V",
    "PM2.5 逐日(年初至今)": "daily, year to date",
    "PM2.5 年均值与目标": "mean vs 2025 target",
    "断面达标比例": "Sections at target",
}


def _place(panel: P, title: str, description: str, flux: str | list[str], h: int, w: int) -> P:
    title = f"{title} {_TITLE_EN[title]}" if title in _TITLE_EN else title
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
    return _place(table.Panel().show_header(True), title, description, flux, h, w)


def _series(
    title: str, description: str, flux: str | list[str], h: int = 8, w: int = 12
) -> timeseries.Panel:
    tooltip = cb.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(cm.SortOrder.NONE)
    return _place(timeseries.Panel().tooltip(tooltip), title, description, flux, h, w)


def _timeline(
    title: str, description: str, flux: str | list[str], h: int = 8, w: int = 12
) -> statetimeline.Panel:
    panel = statetimeline.Panel().show_value(cm.VisibilityMode.AUTO).merge_values(True)
    return _place(panel, title, description, flux, h, w)


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


def with_console_url(d: Mapping[str, Any], url: str) -> dict[str, Any]:
    """A copy of a dashboard whose ``console`` variable defaults to ``url`` (the alerts service's
    ``ENVWATCH_ALERTS_EXTERNAL_URL``, set at provision time); dashboards without it unchanged."""
    out: dict[str, Any] = json.loads(json.dumps(d))
    for var in (out.get("templating") or {}).get("list") or []:
        if var.get("name") == CONSOLE_VAR:
            base = url.rstrip("/")
            var["query"] = base
            var["current"] = {"selected": True, "text": base, "value": base}
    return out


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


# ----------------------------------------------------------------------------- alerts, warnings

#: The columns that make one alert: alerts.model.IDENTITY_LABELS (its fingerprint) plus the
#: averaging period — the ``alert`` measurement's tags, ``none`` for an empty factor or period.
ALERT_IDENTITY: Final = ("locality", "rule", "source", "factor", "period")
assert set(IDENTITY_LABELS) <= set(ALERT_IDENTITY)
#: "Open" as the alerts API counts it (streams/api/view.py ``Filters``: pending + firing).
OPEN_STATES: Final = (AlertState.PENDING.value, AlertState.FIRING.value)
#: How far back the current-alerts and warning-in-force queries look for an alert's last
#: transition, whatever the dashboard's time range: envwatch's choice (an alert open longer
#: without any transition is not listed; the console lists it).
STATE_LOOKBACK: Final = "-30d"
#: Order of transitions sharing one event time: by state then reason, as strings — ``firing`` <
#: ``resolved`` (a resolution at the time of an escalation is the later), ``escalated`` <
#: ``severity_lowered``/``severity_raised`` (the severity change carries the severity in force).
TRANSITION_ORDER: Final = ("_time", "state", "reason")
_ALERT_FIELDS: Final = ("id", "reason", "summary", "value", "limit")
_ALERT_COLUMNS: Final = (*ALERT_IDENTITY, "level", "state", "_time", "summary", "value", "limit")


def _flux_list(names: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(f'"{n}"' for n in names) + "]"


def current_alerts_flux() -> str:
    """当前告警: the alerts whose LAST transition leaves them open.

    ``state`` and ``level`` are tags, so every state of an alert is its own series and ``last()``
    per series keeps an old firing row after the alert resolved. Instead: one row per transition
    (pivot on ``_time``), regroup by the alert's identity across state and level, order the
    transitions (:data:`TRANSITION_ORDER`), keep the last one, and list it when its state is open.
    """
    states = " or ".join(f'r.state == "{st}"' for st in OPEN_STATES)
    return query(
        "alert",
        _ALERT_FIELDS,
        start=STATE_LOOKBACK,
        then=f"""
        |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
        |> group(columns: {_flux_list(ALERT_IDENTITY)})
        |> sort(columns: {_flux_list(TRANSITION_ORDER)})
        |> last(column: "_time")
        |> filter(fn: (r) => {states})
        |> group()
        |> keep(columns: {_flux_list(_ALERT_COLUMNS)})
        |> sort(columns: ["_time"], desc: true)
        """,
    )


#: Heavy-pollution warning levels (rules.warnings.Level): 黄色/橙色/红色预警 are named by their
#: colour (GB/T 27962-2011 气象灾害预警信号 colours); ``none`` (lifted) green is envwatch's choice.
_WARNING_LEVELS: Final = (
    ("none", "无预警 none", "green"),
    ("yellow", "黄色预警 yellow", "yellow"),
    ("orange", "橙色预警 orange", "orange"),
    ("red", "红色预警 red", "red"),
)


def _warning_mappings() -> list[dm.ValueMapping]:
    opts = {v: dm.ValueMappingResult(text=t, color=c) for v, t, c in _WARNING_LEVELS}
    return [dm.ValueMap(options=opts)]


def warning_in_force_flux() -> str:
    """The warning level in force per rule set: the last change of each (locality, rule) across
    level and state; its time is "since when"; ``none`` = lifted."""
    return query(
        "warning",
        ["id", "summary"],
        start=STATE_LOOKBACK,
        then="""
        |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
        |> group(columns: ["locality", "rule"])
        |> sort(columns: ["_time", "state"])
        |> last(column: "_time")
        |> group()
        |> keep(columns: ["rule", "level", "state", "_time", "summary"])
        |> rename(columns: {_time: "since"})
        """,
    )


def _warning_panels() -> list[Any]:
    current = (
        _table(
            "预警级别 Warning in force",
            "Heavy-pollution-weather warning (重污染天气预警) in force per rule set: the level of "
            "the latest change (none = lifted), since when, and what changed.",
            warning_in_force_flux(),
            w=12,
        )
        .mappings(_warning_mappings())
        .override_by_name(
            "level",
            [
                dm.DynamicConfigValue(
                    id_val="custom.cellOptions", value={"type": "color-background"}
                )
            ],
        )
    )
    history = _timeline(
        "预警历史 Warning history",
        "Warning level over the dashboard's time range, one lane per rule set (each change "
        "of the warning measurement; a level set before the range starts shows from its "
        "first change in range).",
        query(
            "warning",
            ["id"],
            then="|> map(fn: (r) => ({_time: r._time, _value: r.level, rule: r.rule}))\n"
            '|> group(columns: ["rule"])\n|> sort(columns: ["_time"])',
        ),
        w=12,
    ).mappings(_warning_mappings())
    duties = _table(
        "企业应急减排告知 Enterprise duties told",
        "Enterprises told their own measures (一厂一策) at each warning change, newest first.",
        query(
            "warning_duty",
            ["summary", "notify"],
            then='|> pivot(rowKey: ["_time", "source", "level", "state"], columnKey: ["_field"], '
            'valueColumn: "_value")\n|> group()\n|> sort(columns: ["_time"], desc: true)',
        ),
        w=24,
    ).mappings(_warning_mappings())
    return [current, history, duties]


# ----------------------------------------------------------------------------- maps


def _stations(cat: Catalog) -> list[dict[str, str | float | None]]:
    return [
        {"locality": st.locality, "source": st.id, "name": st.name, "lat": st.lat, "lon": st.lon}
        for st in cat.stations
        if st.lat is not None and st.lon is not None
    ]


def _sections(cat: Catalog) -> list[dict[str, str | float | None]]:
    return [
        {"locality": se.locality, "source": se.id, "name": se.name, "lat": se.lat, "lon": se.lon}
        for se in cat.sections
        if se.lat is not None and se.lon is not None
    ]


def _join_on_source() -> dm.DataTransformerConfig:
    """Grafana's "Join by field" (outer): the catalogue rows (B) keep their place on the map
    when a source has no value yet (A)."""
    return dm.DataTransformerConfig(
        id_val="joinByField", options={"byField": "source", "mode": "outer"}
    )


def _markers(name: str, color_field: str) -> cb.MapLayerOptions:
    location = (
        cb.FrameGeometrySource()
        .mode(cm.FrameGeometrySourceMode.COORDS)
        .latitude("lat")
        .longitude("lon")
    )
    return (
        cb.MapLayerOptions()
        .type("markers")
        .name(name)
        .location(location)
        .tooltip(True)
        .config(
            {
                "showLegend": True,
                "style": {
                    "color": {"field": color_field, "fixed": "dark-green"},
                    "size": {"fixed": 8},
                    "text": {"field": "name", "mode": "field"},
                    "textConfig": {"fontSize": 11, "offsetY": -12},
                },
            }
        )
    )


def _map(title: str, description: str, flux: list[str], layer: cb.MapLayerOptions) -> geomap.Panel:
    view = geomap.MapViewConfig().id("fit").all_layers(True)
    basemap = cb.MapLayerOptions().type("osm-standard").name("basemap")
    panel = geomap.Panel().view(view).basemap(basemap).layers([layer])
    return _place(panel, title, description, flux, 10, 12).with_transformation(_join_on_source())


def station_map(cat: Catalog) -> geomap.Panel:
    """Stations at their catalogue coordinates, coloured by their latest hourly AQI."""
    latest = query(
        "aqi",
        ["aqi"],
        where={"source": "!city", "period": "hour"},
        then='|> last()\n|> group()\n|> keep(columns: ["source", "_value", "_time"])\n'
        '|> rename(columns: {_value: "aqi"})',
    )
    return _map(
        "站点AQI地图 Stations by AQI",
        "Air stations at their catalogue coordinates (deploy/config, written into the dashboard "
        "at export), coloured by the latest hourly AQI (HJ 633 level colours); grey: no AQI in range.",
        [latest, catalogue_rows(_stations(cat))],
        _markers("站点 stations", "aqi"),
    ).thresholds(aqi_thresholds())


#: Classes worse than the target → colour: 0 meets (green), 1 class worse (orange), ≥ 2 (red);
#: envwatch's choice (GB 3838 defines classes, not colours).
def _class_gap_thresholds() -> db.ThresholdsConfig:
    steps = [
        dm.Threshold(value=None, color="green"),
        dm.Threshold(value=1.0, color="orange"),
        dm.Threshold(value=2.0, color="red"),
    ]
    return db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(steps)


def section_map(cat: Catalog) -> geomap.Panel:
    """Sections at their catalogue coordinates, coloured by classes worse than their target."""
    latest = query(
        "water_class",
        ["classes_worse", "grade", "target"],
        where={"period": "day"},
        start="-7d",
        then=_LAST_BY_SOURCE,
    )
    return _map(
        "断面水质地图 Sections vs target",
        "Water sections at their catalogue coordinates, coloured by how many classes the latest "
        "daily class (GB 3838) is worse than the target: green meets, orange one class, red two "
        "or more; grey: no daily class in 7 days.",
        [latest, catalogue_rows(_sections(cat))],
        _markers("断面 sections", "classes_worse"),
    ).thresholds(_class_gap_thresholds())


# ----------------------------------------------------------------------------- 1 值班总览


def duty_overview(cat: Catalog) -> db.Dashboard:
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
    b = b.with_row(db.Row("地图 Map"))
    b = b.with_panel(station_map(cat)).with_panel(section_map(cat))
    b = b.with_row(db.Row("告警与预警 Alerts and warnings"))
    b = b.with_panel(
        _table(
            "当前告警 Current alerts",
            "Open alerts (pending or firing) and only those: the last transition of each alert "
            "(rule, source, factor, period) across state and level, looked up over 30 days. A "
            "row links to the alert's page in the alerts console (docs/console.md; base URL in "
            "the variable ${" + CONSOLE_VAR + "}).",
            current_alerts_flux(),
            h=10,
            w=24,
        ).data_links([console_link()])
    )
    for panel in _warning_panels():
        b = b.with_panel(panel)
    return b


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
    b = b.with_panel(
        _table(
            "空气质量预报 AQI forecasts",
            "The newest AQI forecast issue per forecast office: issuer, highest AQI expected and "
            "the days (date, AQI or range, primary pollutant) as issued (rules/forecast.py).",
            query(
                "forecast",
                ["issuer", "max_aqi", "days"],
                start="-7d",
                then=_LAST_BY_SOURCE,
            ),
            w=24,
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
    b = b.with_panel(
        _table(
            "水质突变 Sudden changes",
            "Samples in which a factor jumped above its limit: value, 24-h baseline (median "
            "outside a jump) and the jump limit (rules/water_events.py), newest first.",
            query(
                "water_change",
                where={"period": "sample"},
                field_regex="^jump_",
                then="|> filter(fn: (r) => r._value == true)\n|> group()\n"
                '|> keep(columns: ["_time", "source", "_field"])\n'
                '|> sort(columns: ["_time"], desc: true)',
            ),
            w=12,
        )
    )
    b = b.with_panel(
        _series(
            "突变因子与基线 Changes against baseline",
            "Each judged factor against its 24-h baseline and jump limit, per section and sample.",
            query(
                "water_change",
                where={"period": "sample"},
                field_regex="^(baseline_|limit_)?(nh3n|codmn|tp|do|cod)$",
                then='|> group(columns: ["_field", "source"])',
            ),
            w=12,
        )
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


#: plan_progress ``status`` (rules/progress.py) as the duty officer reads it.
_STATUS: Final = (
    ("on_track", "达标 met", "green"),
    ("at_risk", "有风险 at risk", "orange"),
    ("off_track", "未达标 missed", "red"),
    ("no_target", "无数值目标 no target", "text"),
    ("no_data", "无数据 no data", "text"),
)


def _status_mappings() -> list[dm.ValueMapping]:
    return [dm.ValueMap(options={v: dm.ValueMappingResult(text=t, color=c) for v, t, c in _STATUS})]


def plan_citations(cat: Catalog) -> list[dict[str, str | float | None]]:
    """Per indicator with a metric: the plan_progress ``indicator`` tag (metric#no,
    alerts.progress_live.indicator_key), the row as printed (plan file#lines) and where the
    target compared with is stated (the table row, the prose quote's line, or the override's
    provenance)."""
    out: list[dict[str, str | float | None]] = []
    for loc in cat.localities:
        for ind in loc.targets():
            if ind.metric is None:
                continue
            key = ind.metric.value if ind.no is None else f"{ind.metric.value}#{ind.no}"
            eff = ind.effective_target()
            cited = ind.source
            if eff is not None and eff.origin is TargetOrigin.TEXT and ind.text_target:
                cited = ind.text_target.source
            elif eff is not None and eff.origin is TargetOrigin.OVERRIDE and ind.override:
                cited = ind.override.provenance
            out.append(
                {
                    "locality": loc.id,
                    "indicator": key,
                    "plan": loc.plan.title,
                    "row": ind.source,
                    "target_cited": cited,
                }
            )
    return out


def plan_targets(cat: Catalog) -> db.Dashboard:
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
            "规划指标进展 Plan indicators",
            "Every indicator with a metric at the newest day's close: year-to-date value, "
            "projection, the 2025 target (as printed, and the number compared with), where the "
            "plan states it (file#line, from the catalogue) and status: 达标 met (on_track), "
            "有风险 at risk, 未达标 missed (off_track).",
            [
                tz
                + query(
                    "plan_progress",
                    [
                        "value",
                        "projection",
                        "target",
                        "target_printed",
                        "target_origin",
                        "status",
                        "indicator_name",
                    ],
                    start=_YTD,
                    then='|> last()\n|> pivot(rowKey: ["indicator"], columnKey: ["_field"], '
                    'valueColumn: "_value")\n|> group()\n|> keep(columns: ["indicator", '
                    '"indicator_name", "value", "projection", "target", "target_printed", '
                    '"target_origin", "status", "_time"])',
                ),
                catalogue_rows(plan_citations(cat)),
            ],
            h=10,
            w=24,
        )
        .mappings(_status_mappings())
        .with_transformation(
            dm.DataTransformerConfig(
                id_val="joinByField", options={"byField": "indicator", "mode": "outer"}
            )
        )
    )
    b = b.with_panel(
        _series(
            "各指标进展与目标线 Indicators vs 2025 targets",
            "Every indicator with a metric: its year-to-date value at each day's close and its "
            "2025 target as a line (plan_progress; units differ per indicator, see the table).",
            tz
            + query(
                "plan_progress",
                ["value", "target"],
                start=_YTD,
                then='|> group(columns: ["indicator", "_field"])',
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


# ----------------------------------------------------------------------------- 7 监测设备


def _on_off(one: str, zero: str, one_color: str, zero_color: str) -> list[dm.ValueMapping]:
    return [
        dm.ValueMap(
            options={
                "1": dm.ValueMappingResult(text=one, color=one_color),
                "0": dm.ValueMappingResult(text=zero, color=zero_color),
            }
        )
    ]


def monitors() -> db.Dashboard:
    """Other monitors the plans name (rules.factors.MONITOR, rules/evaluate/monitor.py)."""
    b = _board(
        "envwatch-monitors",
        "监测设备",
        "Other monitors the plans name: construction and road dust, noise, dustfall, vapour "
        "recovery at filling stations, bypass of treatment facilities, electricity of production "
        "lines and pollution-control equipment.",
        time_from="now-2d",
    )
    monitor = {"kind": "monitor"}
    b = b.with_panel(
        _series(
            "施工/道路扬尘 Construction and road dust",
            "Dust (TSP/PM10) at construction sites and roads per monitor (µg/m³); exceedances "
            "against the monitor's limit are in the table below.",
            query(
                "reading",
                ["dust", "pm10"],
                where=monitor,
                then='|> group(columns: ["_field", "source"])',
            ),
            w=12,
        ).unit("µg/m³")
    )
    b = b.with_panel(
        _series(
            "噪声 Noise",
            "Equivalent continuous sound level Leq per monitor, dB(A); judged against GB 3096-2008 "
            "表1 day/night limits of the site's zone class (exceedances below).",
            query("reading", ["noise_leq"], where=monitor, then='|> group(columns: ["source"])'),
            w=12,
        ).unit("dB")
    )
    b = b.with_panel(
        _series(
            "降尘 Dustfall",
            "Monthly mean dustfall per monitor, t/(month·km²) (the plans' 降尘量 targets, e.g. "
            "Liaocheng ETDZ ≤ 7).",
            query(
                "aggregate",
                ["dustfall"],
                where={"kind": "monitor", "period": "month"},
                start="-400d",
                then='|> group(columns: ["source"])',
            ),
            w=12,
        ).draw_style(cm.GraphDrawStyle.BARS)
    )
    b = b.with_panel(
        _timeline(
            "油气回收 Vapour recovery",
            "Vapour-recovery status per filling-station monitor: 1 = working, anything else a "
            "fault or a stop (rules/evaluate/monitor.py).",
            query(
                "reading", ["vapour_recovery"], where=monitor, then='|> group(columns: ["source"])'
            ),
            w=12,
        ).mappings(_on_off("正常 working", "故障/停运 fault", "green", "red"))
    )
    b = b.with_panel(
        _timeline(
            "旁路 Bypass",
            "Bypass of a treatment facility per monitor: 1 = open (every opening is reported), "
            "0 = closed.",
            query("reading", ["bypass_open"], where=monitor, then='|> group(columns: ["source"])'),
            w=12,
        ).mappings(_on_off("开启 open", "关闭 closed", "red", "green"))
    )
    b = b.with_panel(
        _series(
            "用电 Electricity",
            "Power per electricity monitor, kW: production lines and their pollution-control "
            "equipment (a treatment load far below normal while production runs is an alert).",
            query("reading", ["power_kw"], where=monitor, then='|> group(columns: ["source"])'),
            w=12,
        ).unit("kW")
    )
    return b.with_panel(
        _table(
            "监测超标 Monitor exceedances",
            "Every monitor value above its limit in the range (dust, noise day/night, dustfall, "
            "bypass openings): monitor, factor, period, value, limit and where the limit comes from.",
            query(
                "exceedance",
                ["value", "limit", "multiple", "standard"],
                where=monitor,
                then='|> pivot(rowKey: ["_time", "source", "factor", "period"], '
                'columnKey: ["_field"], valueColumn: "_value")\n|> group()\n'
                '|> sort(columns: ["_time"], desc: true)',
            ),
            w=24,
        )
    )


# ----------------------------------------------------------------------------- export

BUILDERS: Final[tuple[Callable[[Catalog], db.Dashboard], ...]] = (
    duty_overview,
    lambda _cat: air_quality(),
    lambda _cat: water_sections(),
    lambda _cat: emissions(),
    lambda _cat: data_quality(),
    plan_targets,
    lambda _cat: monitors(),
)


def to_dict(board: db.Dashboard) -> dict[str, Any]:
    """The dashboard's JSON model as plain data, panel ids numbered 1… in order."""
    data: dict[str, Any] = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    for i, panel in enumerate(data.get("panels") or [], 1):
        panel["id"] = i
    for var in (data.get("templating") or {}).get("list") or []:
        var.pop("id", None)  # the SDK puts the same all-zero UUID on every variable
    return data


def _lost(orig: Any, back: Any, path: str) -> Iterator[str]:
    if isinstance(orig, dict) and isinstance(back, dict):
        for k, v in orig.items():
            if k not in back:
                yield f"{path}/{k}: dropped by the model"
            else:
                yield from _lost(v, back[k], f"{path}/{k}")
    elif isinstance(orig, list) and isinstance(back, list) and len(orig) == len(back):
        for i, (a, b) in enumerate(zip(orig, back, strict=True)):
            yield from _lost(a, b, f"{path}[{i}]")
    elif orig != back:
        yield f"{path}: {orig!r} decoded as {back!r}"


def sdk_problems(d: Mapping[str, Any]) -> list[str]:
    """Validate a dashboard JSON model through the SDK's models: decode it with
    ``models.dashboard.Dashboard.from_json`` (panel options, field config and targets through the
    registered panel and datasource variants), encode it again, and report every key the models
    dropped or changed (the decoder may add defaults). A decoding error is a problem too."""
    register_default_plugins()
    try:
        back = json.loads(json.dumps(dm.Dashboard.from_json(dict(d)), cls=JSONEncoder))
    except (TypeError, KeyError, ValueError, AttributeError) as exc:
        return [f"the SDK cannot decode it: {exc.__class__.__name__}: {exc}"]
    return list(_lost(d, back, ""))


def all_dashboards(config: Path = CONFIG_DIR) -> dict[str, dict[str, Any]]:
    """uid → dashboard JSON model, for every dashboard; station and section coordinates and the
    plans' citations come from the catalogue at ``config``."""
    cat = load_catalog(config)
    out: dict[str, dict[str, Any]] = {}
    for build in BUILDERS:
        d = to_dict(build(cat))
        out[d["uid"]] = d
    return out


def render(d: dict[str, Any]) -> str:
    """The exact text written to disk (stable: sorted keys, UTF-8, trailing newline)."""
    return json.dumps(d, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def export(out_dir: Path = OUT_DIR, config: Path = CONFIG_DIR) -> list[Path]:
    """Write every dashboard to ``out_dir/<uid>.json``; return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for uid, d in all_dashboards(config).items():
        path = out_dir / f"{uid}.json"
        path.write_text(render(d), encoding="utf-8")
        paths.append(path)
    return paths


if __name__ == "__main__":  # pragma: no cover - thin command
    for p in export(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT_DIR):
        print(p)
