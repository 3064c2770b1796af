"""Flux queries for the dashboards, and the check that they only read what envwatch writes.

:func:`query` builds every panel's Flux from schema names (streams/schema.py), and
:func:`check_flux` parses a Flux text back — ``r._measurement == "…"``, ``r._field == "…"``,
``r._field =~ /…/``, ``r.<tag> == "…"``, ``r["…"]`` and the column lists of ``group``/``keep``/
``pivot``/``drop`` — and reports every name the schema does not declare. The check reads the
text, not the builder's arguments, so a hand-written panel is checked exactly like a built one.

The InfluxDB datasource plugin has no builder in grafana-foundation-sdk; :class:`FluxQuery` is a
minimal ``Dataquery`` (refId, query, datasource) that the SDK's panel builders accept as a target.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants

from streams import schema

#: The dashboards' datasource variable; every panel and target refers to it.
DATASOURCE_VAR: Final = "datasource"
#: The bucket variable (a constant an operator may change when importing).
BUCKET_VAR: Final = "bucket"
LOCALITY_VAR: Final = "locality"

DATASOURCE_REF: Final[dict[str, str]] = {"type": "influxdb", "uid": f"${{{DATASOURCE_VAR}}}"}


class FluxDataquery(cogvariants.Dataquery):
    """A target of Grafana's InfluxDB datasource in Flux mode."""

    def __init__(self, ref_id: str, query: str) -> None:
        self.ref_id = ref_id
        self.query = query

    def to_json(self) -> dict[str, object]:
        return {"refId": self.ref_id, "query": self.query, "datasource": dict(DATASOURCE_REF)}


class FluxQuery(cogbuilder.Builder[FluxDataquery]):
    """Builder for :class:`FluxDataquery` (what ``panel.with_target`` expects)."""

    def __init__(self, query: str, ref_id: str = "A") -> None:
        self._internal = FluxDataquery(ref_id, query)

    def build(self) -> FluxDataquery:
        return self._internal


# ----------------------------------------------------------------------------- building


def query(
    measurement: str | Sequence[str],
    fields: Iterable[str] = (),
    *,
    where: Mapping[str, str] = {},
    locality: bool = True,
    start: str = "v.timeRangeStart",
    then: str = "",
    field_regex: str | None = None,
) -> str:
    """A Flux query over one bucket: range, measurement(s), locality variable, tag equalities,
    fields; ``then`` is appended as further pipeline stages (each starting with ``|>``)."""
    ms = [measurement] if isinstance(measurement, str) else list(measurement)
    lines = [
        f'from(bucket: "${{{BUCKET_VAR}}}")',
        f"  |> range(start: {start}, stop: v.timeRangeStop)",
        "  |> filter(fn: (r) => " + " or ".join(f'r._measurement == "{m}"' for m in ms) + ")",
    ]
    if locality:
        lines.append(f'  |> filter(fn: (r) => r.locality == "${{{LOCALITY_VAR}}}")')
    for tag, value in where.items():
        op = "!=" if value.startswith("!") else "=="
        lines.append(f'  |> filter(fn: (r) => r.{tag} {op} "{value.lstrip("!")}")')
    fs = list(fields)
    if fs:
        lines.append(
            "  |> filter(fn: (r) => " + " or ".join(f'r._field == "{f}"' for f in fs) + ")"
        )
    if field_regex is not None:
        lines.append(f"  |> filter(fn: (r) => r._field =~ /{field_regex}/)")
    body = "\n".join(lines)
    if then:
        body += "\n" + "\n".join("  " + ln.strip() for ln in then.strip().splitlines())
    return body


def _flux_literal(value: str | float | int | bool | None) -> str:
    """A Flux literal for a catalogue value (strings JSON-quoted; ``$`` dropped so neither
    Grafana's variable substitution nor Flux string interpolation can touch it)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(float(value))
    if value is None:
        return '""'
    return json.dumps(value.replace("$", ""), ensure_ascii=False)


def catalogue_rows(rows: Sequence[Mapping[str, str | float | int | bool | None]]) -> str:
    """A Flux query returning catalogue data written into the dashboard at export time
    (``array.from``): no bucket is read, so it needs no measurement; every row has the same keys
    and a ``locality`` key, scoped to the locality variable like every data query."""
    if not rows:
        rows = [{"locality": "", "source": ""}]
    keys = list(rows[0])
    if "locality" not in keys:
        raise ValueError("catalogue rows need a locality key")
    records = ",\n    ".join(
        "{" + ", ".join(f"{k}: {_flux_literal(r[k])}" for k in keys) + "}" for r in rows
    )
    return (
        'import "array"\n'
        f"array.from(rows: [\n    {records},\n])\n"
        f'  |> filter(fn: (r) => r.locality == "${{{LOCALITY_VAR}}}")'
    )


# ----------------------------------------------------------------------------- checking

_MEAS = re.compile(r'r\._measurement\s*(==|!=|=~)\s*("([^"]*)"|/([^/]*)/)')
_FIELD = re.compile(r'r\._field\s*(==|!=|=~|!~)\s*("([^"]*)"|/([^/]*)/)')
_ATTR = re.compile(r"\br\.([A-Za-z_][A-Za-z0-9_]*)")
_INDEX = re.compile(r'\br\["([^"]+)"\]')
_TAG_EQ = re.compile(r'\br\.([A-Za-z_][A-Za-z0-9_]*)\s*(==|!=)\s*"([^"]*)"')
_COLUMNS = re.compile(r"\b(columns|rowKey|columnKey)\s*:\s*\[([^\]]*)\]")
_COLUMN_ARG = re.compile(r'\b(column|valueColumn|tag)\s*:\s*"([^"]+)"')
_MAP_RECORD = re.compile(r"map\(fn:\s*\(r\)\s*=>\s*\(\{(.*?)\}\)\)", re.DOTALL)
_RECORD_KEY = re.compile(r"(?:^|,|with)\s*([A-Za-z_][A-Za-z0-9_]*)\s*:")
_ARRAY_ROWS = re.compile(r"array\.from\(rows:\s*\[(.*?)\]\)", re.DOTALL)
_VARIABLE = re.compile(r"\$\{[^}]+\}|\$[A-Za-z_]+")


@dataclass(frozen=True, slots=True)
class QueryFinding:
    """A name in a Flux query that nothing writes."""

    what: str  # measurement | field | tag | tag value | column | regex
    name: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.what} {self.name!r}" + (f": {self.detail}" if self.detail else "")


def _created_columns(text: str) -> set[str]:
    """Columns a query makes itself (``map`` record keys, ``set``/``rename``/``duplicate``)."""
    out: set[str] = set()
    for body in _MAP_RECORD.findall(text):
        out |= set(_RECORD_KEY.findall(body))
    out |= set(re.findall(r'\b(?:set|duplicate)\(\s*key:\s*"([^"]+)"', text))
    out |= set(re.findall(r'\bas:\s*"([^"]+)"', text))
    out |= set(re.findall(r'columns:\s*\{[^}]*?:\s*"([^"]+)"', text))  # rename(columns: {a: "b"})
    for rows in _ARRAY_ROWS.findall(text):  # array.from(rows: [{key: …}]): catalogue columns
        out |= set(re.findall(r"[{,]\s*([A-Za-z_][A-Za-z0-9_]*)\s*:", rows))
    return out


def check_flux(
    text: str, known: Mapping[str, schema.Measurement] = schema.SCHEMA
) -> list[QueryFinding]:
    """Every measurement, field, tag (and closed-set tag value) in ``text`` that ``known`` lacks.

    A query must name its measurement(s) with ``r._measurement == "…"`` (a query on
    ``array.from`` rows names none and is exempt when it reads no bucket). Field regexes must
    match at least one declared field of the queried measurements.
    """
    out: list[QueryFinding] = []
    measurements: list[str] = []
    named = _MEAS.findall(text)
    for _op, _lit, name, regex in named:
        if regex:
            out.append(
                QueryFinding("measurement", regex, "regex on _measurement cannot be checked")
            )
        elif name not in known:
            out.append(QueryFinding("measurement", name, "no writer declares it"))
        else:
            measurements.append(name)
    reads_bucket = "from(bucket:" in text
    if reads_bucket and not named and "schema.tagValues" not in text:
        out.append(
            QueryFinding(
                "measurement", "", "the query reads the bucket without naming a measurement"
            )
        )
    fields = schema.field_names(measurements, known)
    tags = schema.tag_names(measurements, known)
    if "schema.tagValues" in text and not measurements:
        tags = schema.tag_names(known, known)
    created = _created_columns(text)
    for _op, _lit, name, regex in _FIELD.findall(text):
        if regex:
            pattern = re.compile(regex)
            if not any(pattern.search(f) for f in fields):
                out.append(QueryFinding("regex", regex, f"matches no field of {measurements}"))
        elif name not in fields:
            out.append(QueryFinding("field", name, f"not written to {measurements}"))
    allowed = tags | fields | schema.FLUX_COLUMNS | created
    referenced = set(_ATTR.findall(text)) | set(_INDEX.findall(text))
    for kind, arg in _COLUMN_ARG.findall(text):
        if kind == "tag":
            if arg not in tags:
                out.append(
                    QueryFinding("tag", arg, f"not a tag of {measurements or 'any measurement'}")
                )
        else:
            referenced.add(arg)
    for _kw, cols in _COLUMNS.findall(text):
        referenced |= set(re.findall(r'"([^"]+)"', cols))
    for name in sorted(referenced - allowed):
        what = "column" if name.startswith("_") else "tag"
        out.append(QueryFinding(what, name, f"neither tag nor field of {measurements}"))
    for tag, _op, value in _TAG_EQ.findall(text):
        if tag.startswith("_") or _VARIABLE.search(value):
            continue
        closed = [
            spec.values
            for m in measurements
            if (spec := known[m].tag(tag)) is not None and spec.values is not None
        ]
        if closed and not any(value in vals for vals in closed):
            out.append(QueryFinding("tag value", f"{tag}={value}", "outside the declared set"))
    return out


def targets_of(panel: Mapping[str, Any]) -> list[str]:
    """The Flux texts of a panel's targets (panel JSON as exported)."""
    return [str(t.get("query", "")) for t in panel.get("targets") or []]
