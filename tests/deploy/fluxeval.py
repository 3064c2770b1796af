"""A small evaluator of the Flux pipeline stages the state panels use, over stored points.

InfluxDB (and so Flux) cannot run here and VictoriaMetrics does not speak Flux, so the tests read a
panel's Flux text from the exported dashboard and apply its stages, in order, to points parsed from
a demo's line-protocol output. Only the stages the state queries use are understood — ``from``,
``range``, ``filter`` (``r.x == "…"``/``!=`` joined by ``and``/``or``), ``pivot``, ``group``,
``sort``, ``last``, ``keep``, ``rename`` — and anything else raises, so a query changed beyond
this subset fails its test instead of being evaluated wrongly.

Semantics follow the Flux documentation: ``from`` yields one table per series (measurement, tag
set, field); ``pivot`` turns each table's fields into columns per row key and drops the field from
the group key; ``group`` regroups rows by the given columns keeping their order; ``sort`` is stable
and puts nulls first; ``last(column:)`` keeps each table's last row with a non-null ``column``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

Row = dict[str, Any]


@dataclass
class Table:
    key: tuple[str, ...]  # group key columns
    rows: list[Row]


# ----------------------------------------------------------------------------- line protocol


def _unescape(s: str) -> str:
    return re.sub(r"\\(.)", r"\1", s)


def _split(s: str, sep: str) -> list[str]:
    """Split on ``sep`` outside double quotes and not after a backslash."""
    out, cur, quoted, i = [], [], False, 0
    while i < len(s):
        ch = s[i]
        if ch == "\\" and i + 1 < len(s):
            cur.append(s[i : i + 2])
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    out.append("".join(cur))
    return out


def _value(raw: str) -> Any:
    if raw.startswith('"'):
        return raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if raw in ("true", "t", "T", "True", "TRUE"):
        return True
    if raw in ("false", "f", "F", "False", "FALSE"):
        return False
    if raw.endswith(("i", "u")):
        return int(raw[:-1])
    return float(raw)


def parse_line(line: str) -> tuple[str, dict[str, str], dict[str, Any], datetime]:
    """One line of line protocol: measurement, tags, fields, time (ns precision, UTC)."""
    series, fields_raw, stamp = _split(line, " ")
    head, *tag_parts = _split(series, ",")
    tags = dict(_unescape(p).split("=", 1) for p in tag_parts)
    fields: dict[str, Any] = {}
    for part in _split(fields_raw, ","):
        k, v = part.split("=", 1)
        fields[_unescape(k)] = _value(v)
    ns = int(stamp)
    at = datetime.fromtimestamp(ns // 1_000_000_000, UTC) + timedelta(
        microseconds=ns % 10**9 // 1000
    )
    return _unescape(head), tags, fields, at


def series_tables(lines: Iterable[str]) -> list[Table]:
    """``from(bucket:)``: one table per series (measurement, tags, field), rows in time order."""
    tables: dict[tuple[Any, ...], Table] = {}
    for line in lines:
        if not line.strip() or line.startswith("#"):
            continue
        m, tags, fields, at = parse_line(line)
        for f, v in fields.items():
            ident = (m, tuple(sorted(tags.items())), f)
            t = tables.get(ident)
            if t is None:
                key = ("_measurement", *sorted(tags), "_field")
                t = tables[ident] = Table(key, [])
            t.rows.append({"_measurement": m, **tags, "_field": f, "_value": v, "_time": at})
    for t in tables.values():
        t.rows.sort(key=lambda r: r["_time"])
    return list(tables.values())


# ----------------------------------------------------------------------------- stages

_STAGE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\((.*)\)\s*$", re.DOTALL)
_DURATION = re.compile(r"^-(\d+)([dhm])$")
_UNITS = {"d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}


def _columns(args: str, name: str) -> list[str]:
    m = re.search(rf"\b{name}\s*:\s*\[([^\]]*)\]", args)
    return re.findall(r'"([^"]+)"', m.group(1)) if m else []


def _string_arg(args: str, name: str, default: str) -> str:
    m = re.search(rf'\b{name}\s*:\s*"([^"]+)"', args)
    return m.group(1) if m else default


def _predicate(expr: str) -> Any:
    """``(r) => r.a == "x" and (r.b == "y" or r.b != "z")`` as a Python function of a row."""
    body = expr.split("=>", 1)[1].strip()
    tokens = re.findall(
        r'r\.[A-Za-z_][A-Za-z0-9_]*|r\["[^"]+"\]|"[^"]*"|==|!=|\(|\)|and|or|not|\S+', body
    )
    py: list[str] = []
    for tok in tokens:
        if tok.startswith(("r.", "r[")):
            name = tok[2:] if tok.startswith("r.") else tok[3:-2]
            py.append(f"row.get({name!r})")
        elif tok.startswith('"') or tok in ("==", "!=", "(", ")", "and", "or", "not"):
            py.append(tok)
        elif tok == "true":
            py.append("True")
        elif tok == "false":
            py.append("False")
        else:
            raise ValueError(f"filter token not understood: {tok!r} in {body!r}")
    code = compile(" ".join(py), "<flux filter>", "eval")

    def fn(row: Row) -> bool:
        return bool(eval(code, {"__builtins__": {}}, {"row": row}))  # only the tokens allowed above

    return fn


def _stages(text: str) -> list[tuple[str, str]]:
    body = "\n".join(ln for ln in text.splitlines() if not ln.strip().startswith("import "))
    out = []
    for part in body.split("|>"):
        m = _STAGE.match(part)
        if m is None:
            raise ValueError(f"stage not understood: {part.strip()!r}")
        out.append((m.group(1), m.group(2)))
    return out


def evaluate(
    text: str,
    lines: Iterable[str],
    *,
    variables: Mapping[str, str],
    now: datetime,
    time_range: tuple[datetime, datetime] | None = None,
) -> list[Row]:
    """Run the Flux ``text`` over line-protocol ``lines``; the rows of every output table in
    order. ``variables`` replaces ``${name}``; ``now`` is ``now()`` and the default range stop."""
    for name, value in variables.items():
        text = text.replace(f"${{{name}}}", value)
    start_default, stop_default = time_range or (now - timedelta(hours=6), now)
    tables: list[Table] = []
    for name, args in _stages(text):
        if name == "from":
            tables = series_tables(lines)
        elif name == "range":
            start_s = re.search(r"start\s*:\s*([^,]+)", args)
            assert start_s is not None
            raw = start_s.group(1).strip()
            d = _DURATION.match(raw)
            if d:
                start = now - int(d.group(1)) * _UNITS[d.group(2)]
            elif raw == "v.timeRangeStart":
                start = start_default
            else:
                raise ValueError(f"range start not understood: {raw!r}")
            stop = stop_default if "v.timeRangeStop" in args else now
            for t in tables:
                t.rows = [r for r in t.rows if start <= r["_time"] < stop]
        elif name == "filter":
            pred = _predicate(args.split("fn:", 1)[1])
            for t in tables:
                t.rows = [r for r in t.rows if pred(r)]
            tables = [t for t in tables if t.rows]
        elif name == "pivot":
            row_key = _columns(args, "rowKey")
            col_key = _columns(args, "columnKey")
            value_col = _string_arg(args, "valueColumn", "_value")
            merged: dict[tuple[Any, ...], Table] = {}
            for t in tables:
                key = tuple(c for c in t.key if c not in col_key)
                gk = tuple(t.rows[0].get(c) for c in key) if t.rows else ()
                out = merged.setdefault(gk, Table(key, []))
                index = {tuple(r.get(c) for c in row_key): r for r in out.rows}
                for r in t.rows:
                    rk = tuple(r.get(c) for c in row_key)
                    target = index.get(rk)
                    if target is None:
                        target = {c: r.get(c) for c in (*key, *row_key)}
                        index[rk] = target
                        out.rows.append(target)
                    target["_".join(str(r.get(c)) for c in col_key)] = r.get(value_col)
            tables = list(merged.values())
        elif name == "group":
            cols = tuple(_columns(args, "columns"))
            regrouped: dict[tuple[Any, ...], Table] = {}
            for t in tables:
                for r in t.rows:
                    gk = tuple(r.get(c) for c in cols)
                    regrouped.setdefault(gk, Table(cols, [])).rows.append(r)
            tables = list(regrouped.values())
        elif name == "sort":
            cols = tuple(_columns(args, "columns")) or ("_value",)
            desc = re.search(r"desc\s*:\s*true", args) is not None
            for t in tables:
                t.rows.sort(
                    key=lambda r: tuple((r.get(c) is not None, r.get(c) or 0) for c in cols),
                    reverse=desc,
                )
        elif name == "last":
            col = _string_arg(args, "column", "_value")
            for t in tables:
                kept = [r for r in t.rows if r.get(col) is not None]
                t.rows = kept[-1:]
            tables = [t for t in tables if t.rows]
        elif name == "keep":
            cols = tuple(_columns(args, "columns"))
            for t in tables:
                t.rows = [{c: r[c] for c in cols if c in r} for r in t.rows]
        elif name == "rename":
            pairs = dict(re.findall(r'([A-Za-z_][A-Za-z0-9_]*)\s*:\s*"([^"]+)"', args))
            for t in tables:
                t.rows = [{pairs.get(k, k): v for k, v in r.items()} for r in t.rows]
        else:
            raise ValueError(f"Flux function not supported by the evaluator: {name}")
    return [r for t in tables for r in t.rows]
