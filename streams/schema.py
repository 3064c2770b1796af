"""The InfluxDB measurement schema envwatch writes, as data (docs/influx-schema.md in prose).

One :class:`Measurement` per measurement name: its tags (bounded sets only, architecture.md §4.4),
its fields (name, line-protocol type, unit) and what its timestamp means. Field names that depend
on a factor (``iaqi_pm25``, ``constant_so2`` …) are declared once as a template over a bounded
vocabulary (:class:`FieldSpec` with ``choices``), so the set of names a measurement can hold is
finite and checkable.

Who uses it:

* ``tests/streams/test_schema.py`` runs samples through :func:`rules.evaluate.step` and checks every
  emitted point with :func:`check_point` — the schema cannot drift from what the engine writes;
* ``deploy/grafana`` builds the dashboards' Flux queries from these names, and
  ``tests/deploy/test_dashboards.py`` fails when a panel queries a measurement, field or tag that
  is not declared here;
* ``docs/influx-schema.md`` mirrors this module (a test compares the two).

Measurements with :attr:`Status.PLANNED` are a contract for writers that do not exist yet (the
alert and warning transitions, architecture.md §4.4, and dead letters for the data-quality
dashboard, §6); nothing in ``rules.evaluate`` emits them.

Pure: stdlib and :mod:`rules.factors` only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from alerts.model import AlertState, Severity
from rules import factors
from rules.flags import Flag
from rules.warnings import Level


class FieldType(StrEnum):
    """Line-protocol field types (``1.5``, ``3i``, ``"text"``, ``true``)."""

    FLOAT = "float"
    INTEGER = "integer"
    STRING = "string"
    BOOLEAN = "boolean"


class Status(StrEnum):
    """Whether something in envwatch writes the measurement today."""

    WRITTEN = "written"  # emitted by rules.evaluate (checked by tests/streams/test_schema.py)
    PLANNED = "planned"  # a contract for a writer still to come


def type_of(value: object) -> FieldType:
    """The line-protocol type a Python value is serialised as (streams.lineprotocol._field)."""
    if isinstance(value, bool):
        return FieldType.BOOLEAN
    if isinstance(value, int):
        return FieldType.INTEGER
    if isinstance(value, float):
        return FieldType.FLOAT
    return FieldType.STRING


@dataclass(frozen=True, slots=True)
class TagSpec:
    """A tag key. ``values`` is the closed set of values, or None for a catalogue-bounded set
    (locality ids, source ids: bounded by the configuration, not by the code)."""

    name: str
    description: str
    values: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """A field, or a family of fields when ``name`` holds ``{x}`` and ``choices`` the values of x.

    ``type`` is the one line-protocol type the field is written with: a second type would be a
    field-type conflict in InfluxDB (the write of the whole batch is rejected).
    """

    name: str
    type: FieldType
    unit: str
    description: str
    choices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if ("{x}" in self.name) != bool(self.choices):
            raise ValueError(f"field {self.name!r}: a template needs choices and vice versa")

    def names(self) -> tuple[str, ...]:
        """Every concrete field name this spec declares."""
        if not self.choices:
            return (self.name,)
        return tuple(self.name.replace("{x}", c) for c in self.choices)


@dataclass(frozen=True, slots=True)
class Measurement:
    """One measurement: tags, fields, timestamp meaning, who writes it."""

    name: str
    description: str
    time: str
    tags: tuple[TagSpec, ...]
    fields: tuple[FieldSpec, ...]
    writer: str
    status: Status = Status.WRITTEN
    _by_field: dict[str, FieldSpec] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for spec in self.fields:
            for n in spec.names():
                if n in self._by_field:
                    raise ValueError(f"{self.name}: field {n!r} declared twice")
                self._by_field[n] = spec

    @property
    def tag_names(self) -> frozenset[str]:
        return frozenset(t.name for t in self.tags)

    def tag(self, name: str) -> TagSpec | None:
        return next((t for t in self.tags if t.name == name), None)

    def field_spec(self, name: str) -> FieldSpec | None:
        return self._by_field.get(name)

    def field_names(self) -> frozenset[str]:
        return frozenset(self._by_field)


# ----------------------------------------------------------------------------- vocabularies

_ALL_FACTORS: Final = tuple(
    sorted(
        {
            *factors.AIR,
            *factors.WATER,
            *factors.EMISSION_GAS,
            *factors.EMISSION_WATER,
            *factors.MONITOR,
            *factors.FORECAST,
        }
    )
)
_AIR: Final = tuple(factors.AIR)
_EMISSION: Final = tuple(sorted({*factors.EMISSION_GAS, *factors.EMISSION_WATER}))
#: Factors an O2 correction (折算) applies to in rules.evaluate.emission.
_CORRECTED: Final = ("so2", "nox", "pm", "co", "nmhc")
#: GB 3838-2002 表1 items the water classification may name as main pollutants.
_WATER: Final = tuple(factors.WATER)
_FLAGS: Final = tuple(f.value for f in Flag)
_INVALID_FLAGS: Final = tuple(f.value for f in Flag if f.value not in {"N", "S"})

KINDS: Final = tuple(k.value for k in factors.Kind)

_LOCALITY: Final = TagSpec("locality", "locality id from the catalogue (deploy/config/*.yaml)")
_SOURCE: Final = TagSpec(
    "source", "station, section, outlet or monitor id from the catalogue; 'city' for city values"
)


def _kind(*values: str) -> TagSpec:
    return TagSpec("kind", "source kind (rules.factors.Kind)", values or KINDS)


def _period(*values: str) -> TagSpec:
    return TagSpec("period", "which statistic the point holds", values)


# ----------------------------------------------------------------------------- measurements

_AQI_LEVELS: Final = ("1", "2", "3", "4", "5", "6")

MEASUREMENTS: Final[tuple[Measurement, ...]] = (
    Measurement(
        name="reading",
        description="every sample as received: the valid values (flag N or S) and the invalid flags",
        time="the sample's label (end of its period, UTC)",
        tags=(_kind(), _LOCALITY, _SOURCE),
        fields=(
            FieldSpec(
                "{x}",
                FieldType.FLOAT,
                "canonical unit of the factor (rules.factors)",
                "valid value of a factor",
                _ALL_FACTORS,
            ),
            FieldSpec(
                "invalid", FieldType.STRING, "", "invalid values as 'factor:flag,…' (HJ 212 flags)"
            ),
        ),
        writer="rules.evaluate.step (every sample)",
    ),
    Measurement(
        name="plan_progress",
        description="the plans' progress at a Beijing day's close (alerts/progress_live.py): one "
        "point per indicator of the locality that has a metric",
        time="00:00 Beijing of the day after the closed day",
        tags=(
            _LOCALITY,
            TagSpec(
                "indicator", "the indicator's metric and printed number, e.g. pm25_annual_mean#1"
            ),
            TagSpec("metric", "rules.catalog Metric"),
        ),
        fields=(
            FieldSpec("value", FieldType.FLOAT, "the indicator's unit", "year-to-date value"),
            FieldSpec(
                "projection", FieldType.FLOAT, "the indicator's unit", "projected to year end"
            ),
            FieldSpec("target", FieldType.FLOAT, "the indicator's unit", "the 2025 target"),
            FieldSpec("target_origin", FieldType.STRING, "", "where the target comes from"),
            FieldSpec(
                "status", FieldType.STRING, "", "on_track, at_risk, off_track, no_target, no_data"
            ),
            FieldSpec("indicator_name", FieldType.STRING, "", "the indicator's name as printed"),
            FieldSpec("target_printed", FieldType.STRING, "", "the 2025 cell as printed"),
        ),
        writer="alerts.locality.LocalityState (locality stage, at a day's close)",
    ),
    Measurement(
        name="forecast",
        description="an AQI forecast issue (rules/forecast.py): the daily AQI or range and the "
        "primary pollutant of each target day, as its forecast office issued it",
        time="the issue time",
        tags=(
            TagSpec("kind", "always forecast", ("forecast",)),
            _LOCALITY,
            TagSpec("source", "the forecast office's source id"),
        ),
        fields=(
            FieldSpec("issuer", FieldType.STRING, "", "who issued it"),
            FieldSpec(
                "days",
                FieldType.STRING,
                "",
                "JSON list of {date, aqi | aqi_min + aqi_max, primary}",
            ),
            FieldSpec(
                "max_aqi",
                FieldType.INTEGER,
                "1",
                "the highest AQI the issue expects (a range counts with its upper bound)",
            ),
        ),
        writer="streams.steps.EvaluateStep (a forecast issue)",
    ),
    Measurement(
        name="aqi",
        description="AQI (HJ 633) of a station or of the city: real-time hourly or daily",
        time="hour: the hour's label (end of the hour); day: 00:00 Beijing time of the day",
        tags=(_LOCALITY, _SOURCE, _period("hour", "day", "rolling24h")),
        fields=(
            FieldSpec("aqi", FieldType.INTEGER, "1", "AQI (absent when NA)"),
            FieldSpec("published", FieldType.BOOLEAN, "", "false when the AQI is NA (withheld)"),
            FieldSpec("level", FieldType.INTEGER, "1", "AQI level 1–6 (HJ 633 表2)"),
            FieldSpec("category", FieldType.STRING, "", "类别 in Chinese (优, 良 …)"),
            FieldSpec("category_en", FieldType.STRING, "", "category in English"),
            FieldSpec("color", FieldType.STRING, "", "HJ 633 colour of the level (#00E400 …)"),
            FieldSpec(
                "computed_aqi", FieldType.INTEGER, "1", "AQI computed although withheld (NA)"
            ),
            FieldSpec("edition", FieldType.STRING, "", "HJ 633 edition used (2012 or 2026)"),
            FieldSpec("primary", FieldType.STRING, "", "primary pollutants, comma separated"),
            FieldSpec(
                "iaqi_{x}",
                FieldType.INTEGER,
                "1",
                "individual AQI of a pollutant",
                (*_AIR, "o3_8h", "so2_24h", "pm25_24h", "pm10_24h", "o3_1h"),
            ),
            FieldSpec("missing", FieldType.STRING, "", "indicators missing (NA), comma separated"),
            FieldSpec("above_top", FieldType.STRING, "", "indicators above the top breakpoint"),
            FieldSpec("good", FieldType.BOOLEAN, "", "day only: 优良天 (daily AQI ≤ 100)"),
            FieldSpec("heavy", FieldType.BOOLEAN, "", "day only: 重度及以上 (daily AQI > 200)"),
            FieldSpec("stations", FieldType.INTEGER, "1", "city only: stations averaged"),
            FieldSpec("hours", FieldType.INTEGER, "1", "city day/rolling24h: hours with data"),
            FieldSpec("pm25", FieldType.FLOAT, "ug/m3", "city day: 24-h mean"),
            FieldSpec("pm10", FieldType.FLOAT, "ug/m3", "city day: 24-h mean"),
            FieldSpec("so2", FieldType.FLOAT, "ug/m3", "city day: 24-h mean"),
            FieldSpec("no2", FieldType.FLOAT, "ug/m3", "city day: 24-h mean"),
            FieldSpec("co", FieldType.FLOAT, "mg/m3", "city day: 24-h mean"),
            FieldSpec("o3_8h", FieldType.FLOAT, "ug/m3", "city day: daily maximum 8-h mean"),
            FieldSpec("o3_1h", FieldType.FLOAT, "ug/m3", "city day: daily maximum 1-h value"),
        ),
        writer=(
            "rules.evaluate.step (air, hourly and daily); alerts.locality (source=city: hour,"
            " rolling24h, day)"
        ),
    ),
    Measurement(
        name="aggregate",
        description="statistics: air moving means (period=moving), air station-day means (period=day), "
        "monthly mean dustfall of a monitor (kind=monitor, period=month)",
        time="moving: the hour the window ends with; day: 00:00 Beijing time of the day; "
        "month: 00:00 Beijing time of the 1st",
        tags=(_kind("air", "monitor"), _LOCALITY, _SOURCE, _period("moving", "day", "month")),
        fields=(
            FieldSpec("pm25_24h", FieldType.FLOAT, "ug/m3", "24-h moving mean of PM2.5 (≥ 20 h)"),
            FieldSpec("pm10_24h", FieldType.FLOAT, "ug/m3", "24-h moving mean of PM10 (≥ 20 h)"),
            FieldSpec("so2_24h", FieldType.FLOAT, "ug/m3", "24-h moving mean of SO2 (≥ 20 h)"),
            FieldSpec("o3_8h", FieldType.FLOAT, "ug/m3", "8-h moving mean of O3 (≥ 6 h)"),
            FieldSpec("hours", FieldType.INTEGER, "h", "day: hours with data"),
            FieldSpec("{x}", FieldType.FLOAT, "ug/m3 (co: mg/m3)", "day: daily mean", _AIR),
            FieldSpec("o3_8h_max", FieldType.FLOAT, "ug/m3", "day: maximum 8-h O3 mean"),
            FieldSpec("o3_1h_max", FieldType.FLOAT, "ug/m3", "day: maximum 1-h O3"),
            FieldSpec(
                "dustfall", FieldType.FLOAT, "t/(month*km2)", "month: mean dustfall (降尘量)"
            ),
            FieldSpec("samples", FieldType.INTEGER, "samples", "month: dustfall samples averaged"),
        ),
        writer="rules.evaluate.step (air; monitor dustfall)",
    ),
    Measurement(
        name="exceedance",
        description="a value above its limit (ambient GB 3095, permit limit, monitor limit, bypass)",
        time="the time of the value judged (hour label, day start, sample time)",
        tags=(
            _kind("air", "emission", "monitor"),
            _LOCALITY,
            _SOURCE,
            TagSpec("factor", "factor name (rules.factors)", _ALL_FACTORS),
            _period(
                "hourly",
                "daily",
                "max_8h",
                "hour",
                "day",
                "instant",
                "month",
                "day_time",
                "night_time",
            ),
        ),
        fields=(
            FieldSpec(
                "value",
                FieldType.FLOAT,
                "unit of the factor",
                "value judged (O2-corrected when corrected)",
            ),
            FieldSpec("limit", FieldType.FLOAT, "unit of the factor", "limit applied"),
            FieldSpec("multiple", FieldType.FLOAT, "1", "超标倍数 (value − limit) / limit"),
            FieldSpec("standard", FieldType.STRING, "", "edition or source of the limit"),
            FieldSpec("clause", FieldType.STRING, "", "air: clause/table of the limit"),
            FieldSpec("corrected", FieldType.BOOLEAN, "", "emission: value is O2-corrected (折算)"),
        ),
        writer="rules.evaluate.step (air GB 3095, emission permits and GB 18918, monitors)",
    ),
    Measurement(
        name="water_class",
        description="GB 3838 class of a section: per sample and from the day's means",
        time="sample: the sample's label; day: 00:00 Beijing time of the day",
        tags=(_LOCALITY, _SOURCE, _period("sample", "day")),
        fields=(
            FieldSpec("grade", FieldType.INTEGER, "1", "class 1–6 (6 = 劣V)"),
            FieldSpec("label", FieldType.STRING, "", "class label (I … 劣V)"),
            FieldSpec("quality", FieldType.STRING, "", "水质状况 (优/良好/轻度污染 …)"),
            FieldSpec("worse_than_v", FieldType.BOOLEAN, "", "劣V类"),
            FieldSpec("main_pollutants", FieldType.STRING, "", "主要污染指标, comma separated"),
            FieldSpec(
                "multiple_{x}",
                FieldType.FLOAT,
                "1",
                "exceedance multiple of a main pollutant",
                _WATER,
            ),
            FieldSpec("target", FieldType.INTEGER, "1", "target class 1–5 of the section"),
            FieldSpec("meets", FieldType.BOOLEAN, "", "class meets the target"),
            FieldSpec("classes_worse", FieldType.INTEGER, "1", "classes worse than the target"),
        ),
        writer="rules.evaluate.step (water)",
    ),
    Measurement(
        name="water_change",
        description="sudden change at a section: each judged factor against the median of its "
        "last 24 h of samples outside a jump (rules/water_events.py)",
        time="the sample's label",
        tags=(_LOCALITY, _SOURCE, _period("sample")),
        fields=(
            FieldSpec("{x}", FieldType.FLOAT, "unit of the factor", "value of the sample", _WATER),
            FieldSpec("baseline_{x}", FieldType.FLOAT, "unit of the factor", "baseline", _WATER),
            FieldSpec(
                "limit_{x}",
                FieldType.FLOAT,
                "unit of the factor",
                "value at which it jumps",
                _WATER,
            ),
            FieldSpec("jump_{x}", FieldType.BOOLEAN, "", "the factor is in a jump", _WATER),
        ),
        writer="rules.evaluate.step (water)",
    ),
    Measurement(
        name="emission_hour",
        description="enterprise outlet hourly values (given, or from minute data with HJ 212 validity)",
        time="end of the hour (envwatch labels an hour by its end)",
        tags=(_LOCALITY, _SOURCE),
        fields=(
            FieldSpec(
                "{x}",
                FieldType.FLOAT,
                "mg/m3, mg/L, m3/h, % (rules.factors)",
                "hourly value",
                _EMISSION,
            ),
            FieldSpec(
                "{x}_zs",
                FieldType.FLOAT,
                "mg/m3",
                "O2-corrected value (折算, HJ 212 -Zs)",
                _CORRECTED,
            ),
            FieldSpec(
                "valid_minutes_{x}",
                FieldType.INTEGER,
                "min",
                "valid minutes in the hour",
                _EMISSION,
            ),
            FieldSpec(
                "flag_{x}", FieldType.INTEGER, "1", "minutes with an invalid flag", _INVALID_FLAGS
            ),
        ),
        writer="rules.evaluate.step (emission)",
    ),
    Measurement(
        name="emission_day",
        description="enterprise outlet daily values: sent as daily data, or the mean of ≥ 20 valid "
        "hourly means of the Beijing day (HJ 212-2017 附录D); GB 18918 class of a treatment plant",
        time="the sample's label (daily data) or 00:00 Beijing time of the day",
        tags=(_LOCALITY, _SOURCE),
        fields=(
            FieldSpec(
                "{x}",
                FieldType.FLOAT,
                "mg/m3, mg/L, m3/h, % (rules.factors)",
                "daily value",
                _EMISSION,
            ),
            FieldSpec("{x}_zs", FieldType.FLOAT, "mg/m3", "O2-corrected value (折算)", _CORRECTED),
            FieldSpec(
                "valid_hours_{x}",
                FieldType.INTEGER,
                "h",
                "valid hourly means in the day",
                _EMISSION,
            ),
            FieldSpec(
                "effluent_required", FieldType.STRING, "", "GB 18918-2002 class the plant must meet"
            ),
            FieldSpec("effluent_class", FieldType.STRING, "", "class achieved (一级A … 劣三级)"),
            FieldSpec("effluent_meets", FieldType.BOOLEAN, "", "the required class is met"),
        ),
        writer="rules.evaluate.step (emission)",
    ),
    Measurement(
        name="data_quality",
        description="data quality: constant/zero runs (period=run) and daily rates (period=day)",
        time="run: the sample that extended the run; day: 00:00 Beijing time of the day",
        tags=(_kind(), _LOCALITY, _SOURCE, _period("run", "day")),
        fields=(
            FieldSpec(
                "constant_{x}",
                FieldType.INTEGER,
                "samples",
                "identical consecutive values",
                _ALL_FACTORS,
            ),
            FieldSpec(
                "zero_{x}", FieldType.INTEGER, "samples", "consecutive zero values", _ALL_FACTORS
            ),
            FieldSpec("expected", FieldType.INTEGER, "samples", "samples expected in the day"),
            FieldSpec("received", FieldType.INTEGER, "samples", "distinct samples received"),
            FieldSpec("valid", FieldType.INTEGER, "samples", "samples with every value valid"),
            FieldSpec(
                "transmission_rate", FieldType.FLOAT, "1 (0–1)", "数据传输率 received / expected"
            ),
            FieldSpec("valid_rate", FieldType.FLOAT, "1 (0–1)", "数据有效率 valid / received"),
            FieldSpec("last_seen", FieldType.STRING, "", "ISO-8601 UTC time of the latest sample"),
            FieldSpec(
                "flag_{x}",
                FieldType.INTEGER,
                "values",
                "values with this invalid flag",
                _INVALID_FLAGS,
            ),
        ),
        writer="rules.evaluate.step (every sample)",
    ),
    Measurement(
        name="alert",
        description="alert lifecycle transitions (pending, firing, resolved, acknowledged …)",
        time="the event time of the transition",
        tags=(
            TagSpec("kind", "transition kind (alerts.model.TransitionKind) or source kind"),
            _LOCALITY,
            _SOURCE,
            TagSpec("rule", "alert rule id (alerts.rules; bounded by the rule set)"),
            TagSpec(
                "factor",
                "factor of the alert (rules.factors; '*' for a whole source, 'none' for none)",
            ),
            TagSpec(
                "period",
                "averaging period of the alert (hourly, 24h, 8h, hour, day, month, instant, "
                "day_time, night_time; 'none' for none)",
            ),
            TagSpec("level", "severity (alerts.model.Severity)", tuple(s.value for s in Severity)),
            TagSpec(
                "state",
                "lifecycle state (alerts.model.AlertState)",
                tuple(s.value for s in AlertState),
            ),
        ),
        fields=(
            FieldSpec("value", FieldType.FLOAT, "unit of the factor", "value that triggered"),
            FieldSpec("limit", FieldType.FLOAT, "unit of the factor", "threshold"),
            FieldSpec("summary", FieldType.STRING, "", "text for people (Chinese)"),
            FieldSpec(
                "id", FieldType.STRING, "", "deterministic alert id (fingerprint + state + time)"
            ),
            FieldSpec("reason", FieldType.STRING, "", "why it changed (alerts.model.Reason)"),
            FieldSpec(
                "notify",
                FieldType.BOOLEAN,
                "",
                "people were told of this transition (not suppressed, firing or a resolve of a "
                "firing alert); the one non-string field, so stores that keep numbers only "
                "(VictoriaMetrics) hold a row for every transition",
            ),
        ),
        writer="alerts.locality.transition_point (locality stage)",
    ),
    Measurement(
        name="warning",
        description="heavy-pollution-weather warnings (重污染天气预警): issued, raised, lowered, lifted",
        time="the event time of the change",
        tags=(
            TagSpec("kind", "transition kind (alerts.model.TransitionKind)"),
            _LOCALITY,
            _SOURCE,
            TagSpec("rule", "warning rule set id (deploy/config/warnings.yaml)"),
            TagSpec(
                "level",
                "warning level (rules.warnings.Level; none = lifted)",
                tuple(v.value for v in Level),
            ),
            TagSpec(
                "state", "what changed (issued, upgraded, downgraded, lifted; set by the writer)"
            ),
        ),
        fields=(
            FieldSpec("value", FieldType.FLOAT, "1", "forecast/observed AQI that drove the change"),
            FieldSpec("limit", FieldType.FLOAT, "1", "threshold of the level"),
            FieldSpec("summary", FieldType.STRING, "", "text for people (Chinese)"),
            FieldSpec("id", FieldType.STRING, "", "deterministic id"),
            FieldSpec("notify", FieldType.BOOLEAN, "", "people were told (always for warnings)"),
            FieldSpec(
                "lead_hours",
                FieldType.FLOAT,
                "h",
                "issue or upgrade on the data: hours from the decision to the first hour of the "
                "qualifying episode (0 when it had begun)",
            ),
        ),
        writer="alerts.locality.transition_point (locality stage)",
    ),
    Measurement(
        name="warning_duty",
        description="an enterprise told its own duties (一厂一策 measures for the level) when a "
        "heavy-pollution warning is issued, changed or lifted: one point per enterprise and change",
        time="the event time of the warning change",
        tags=(
            TagSpec("kind", "always warning_duty", ("warning_duty",)),
            _LOCALITY,
            TagSpec("source", "the enterprise id"),
            TagSpec(
                "level",
                "warning level in force after the change (none = lifted)",
                tuple(v.value for v in Level),
            ),
            TagSpec("state", "what changed (issued, upgraded, downgraded, lifted)"),
        ),
        fields=(
            FieldSpec("summary", FieldType.STRING, "", "the warning's text for people (Chinese)"),
            FieldSpec("id", FieldType.STRING, "", "deterministic id"),
            FieldSpec("notify", FieldType.BOOLEAN, "", "the enterprise was told (always)"),
        ),
        writer="alerts.locality.transition_point (locality stage)",
    ),
    Measurement(
        name="dead_letter",
        description="bad input set aside with its reason (architecture.md §6): one point per dead letter",
        time="the dead-letter record's Kafka timestamp (offset folded into the sub-ms digits)",
        tags=(
            TagSpec(
                "stage",
                "where it failed (streams.records.DeadLetter.stage: gateway, bridge, evaluate …)",
            ),
        ),
        fields=(
            FieldSpec("reason", FieldType.STRING, "", "why (the DeadLetter reason)"),
            FieldSpec("origin", FieldType.STRING, "", "topic@offset or peer it came from"),
        ),
        writer="streams.agents.deadletter (the deadletter stage)",
    ),
    Measurement(
        name="pipeline_health",
        description="health of a component of envwatch itself (alerts/pipeline.py): one point "
        "per change of state, repeated at most every 10 min; the pipeline rule turns problem = 1 "
        "into an operator alert",
        time="the reporting process's clock when it stated the health",
        tags=(
            TagSpec("kind", "always pipeline", ("pipeline",)),
            TagSpec("locality", "always the pseudo-locality pipeline", ("pipeline",)),
            TagSpec("source", "component: store@<host>, receiver:<name> …"),
            TagSpec("condition", "what is checked: write, rejected (store), delivery (receiver) …"),
        ),
        fields=(
            FieldSpec("problem", FieldType.INTEGER, "1", "1 while the condition holds, else 0"),
            FieldSpec("count", FieldType.INTEGER, "1", "lines / notifications held back"),
            FieldSpec("reason", FieldType.STRING, "", "the component's reason (endpoint status)"),
        ),
        writer="streams.health.report (store agent; notify agent)",
    ),
)

SCHEMA: Final[Mapping[str, Measurement]] = {m.name: m for m in MEASUREMENTS}

#: Columns every Flux table has besides tags and fields.
FLUX_COLUMNS: Final = frozenset(
    {"_measurement", "_field", "_value", "_time", "_start", "_stop", "result", "table"}
)


# ----------------------------------------------------------------------------- checks


class Problem(StrEnum):
    UNKNOWN_MEASUREMENT = "unknown measurement"
    UNKNOWN_TAG = "undeclared tag"
    TAG_VALUE = "tag value outside the declared set"
    UNKNOWN_FIELD = "undeclared field"
    FIELD_TYPE = "field type differs from the declared type"
    NO_FIELD = "point without fields"


@dataclass(frozen=True, slots=True)
class Finding:
    """One mismatch between a point (or a query) and the schema."""

    problem: Problem
    measurement: str
    name: str = ""
    detail: str = ""

    def __str__(self) -> str:
        where = f"{self.measurement}.{self.name}" if self.name else self.measurement
        return f"{where}: {self.problem.value}" + (f" ({self.detail})" if self.detail else "")


def check_point(
    measurement: str,
    tags: Mapping[str, str],
    fields: Mapping[str, object],
    schema: Mapping[str, Measurement] = SCHEMA,
) -> list[Finding]:
    """Every way a point departs from the schema (empty list: the point conforms)."""
    m = schema.get(measurement)
    if m is None:
        return [Finding(Problem.UNKNOWN_MEASUREMENT, measurement)]
    out: list[Finding] = []
    for k, v in tags.items():
        spec = m.tag(k)
        if spec is None:
            out.append(Finding(Problem.UNKNOWN_TAG, measurement, k))
        elif spec.values is not None and v not in spec.values:
            out.append(Finding(Problem.TAG_VALUE, measurement, k, f"{v!r} not in {spec.values}"))
    if not fields:
        out.append(Finding(Problem.NO_FIELD, measurement))
    for k, value in fields.items():
        fs = m.field_spec(k)
        if fs is None:
            out.append(Finding(Problem.UNKNOWN_FIELD, measurement, k))
        elif type_of(value) is not fs.type:
            written = type_of(value)
            out.append(
                Finding(
                    Problem.FIELD_TYPE, measurement, k, f"{written} written, {fs.type} declared"
                )
            )
    return out


def field_names(
    measurements: Iterable[str], schema: Mapping[str, Measurement] = SCHEMA
) -> frozenset[str]:
    """Union of the declared field names of ``measurements`` (unknown names contribute nothing)."""
    out: set[str] = set()
    for name in measurements:
        m = schema.get(name)
        if m is not None:
            out |= m.field_names()
    return frozenset(out)


def tag_names(
    measurements: Iterable[str], schema: Mapping[str, Measurement] = SCHEMA
) -> frozenset[str]:
    out: set[str] = set()
    for name in measurements:
        m = schema.get(name)
        if m is not None:
            out |= m.tag_names
    return frozenset(out)


_IDENT: Final = re.compile(r"^[a-z][A-Za-z0-9_]*$")


def iter_problems_in_schema(schema: Mapping[str, Measurement] = SCHEMA) -> Iterator[str]:
    """Self-consistency: names are plain identifiers, no tag doubles as a field."""
    for m in schema.values():
        if not _IDENT.match(m.name):
            yield f"measurement name {m.name!r}"
        clash = m.tag_names & m.field_names()
        if clash:
            yield f"{m.name}: {sorted(clash)} are both tags and fields"
        for n in m.field_names() | m.tag_names:
            if not _IDENT.match(n):
                yield f"{m.name}: name {n!r}"


def markdown_section(m: Measurement) -> str:
    """The docs/influx-schema.md section of one measurement (``python -m streams.schema`` writes
    all of them, so the document cannot drift from the data)."""
    open_set = "open (bounded by the catalogue/rule set)"
    writer = f"Written by `{m.writer}`"
    if m.status is Status.PLANNED:
        writer += " — **planned**, nothing writes it yet"
    lines = [f"## `{m.name}`", "", f"{m.description}. {writer}.", "", f"*Timestamp:* {m.time}.", ""]
    lines += ["| tag | values |", "|---|---|"]
    for t in m.tags:
        values = ", ".join(f"`{v}`" for v in t.values) + " —" if t.values else f"{open_set}:"
        lines.append(f"| `{t.name}` | {values} {t.description} |")
    lines += ["", "| field | type | unit | meaning |", "|---|---|---|---|"]
    for f in m.fields:
        unit = f.unit or "—"
        meaning = f.description
        if f.choices:
            shown = (
                ", ".join(f.choices) if len(f.choices) <= 12 else f"{len(f.choices)} factor names"
            )
            meaning += f"; `{{x}}` ∈ {shown}"
        lines.append(f"| `{f.name}` | {f.type.value} | {unit} | {meaning} |")
    return "\n".join(lines) + "\n"


def write_markdown(path: str) -> None:
    """Replace the per-measurement sections of ``path`` (everything from the first ``## `` of a
    measurement on) with sections generated from :data:`MEASUREMENTS`."""
    from pathlib import Path

    p = Path(path)
    text = p.read_text(encoding="utf-8")
    head = text.split(f"## `{MEASUREMENTS[0].name}`", 1)[0]
    p.write_text(head + "\n".join(markdown_section(m) for m in MEASUREMENTS), encoding="utf-8")


if __name__ == "__main__":
    write_markdown("docs/influx-schema.md")
