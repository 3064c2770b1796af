"""Cross-checks of a catalogue, each a small function returning or recording problems: warning
rule sets (collected from every file, validated once), references between items (localities,
ids claimed once, MNs and 统一社会信用代码 unique, sections and stations of a locality), and
the fields each monitor kind must and must not have.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from rules.catalog.model import LIST_SECTIONS, Enterprise, Monitor
from rules.catalog.vocabulary import MonitorKind, MonitorRole, OutletType
from rules.catalog.yamldoc import FieldPath, Located, LocatedDoc, fmt_path
from rules.factors import EMISSION_GAS, EMISSION_WATER, MONITOR


def collect_rule_sets(
    raw: Any, doc: LocatedDoc, out: dict[str, tuple[Any, LocatedDoc, FieldPath]]
) -> None:
    """Rule sets are a mapping ``{id: body}`` or a list of bodies with ``id``."""
    if raw is None:
        return
    entries: list[tuple[Any, Any, FieldPath]] = []
    if isinstance(raw, dict):
        entries = [(k, v, ("warning_rule_sets", k)) for k, v in raw.items()]
    elif isinstance(raw, list):
        for i, body in enumerate(raw):
            rid = body.get("id") if isinstance(body, dict) else None
            entries.append((rid, body, ("warning_rule_sets", i)))
    else:
        doc.problem(("warning_rule_sets",), "must be a mapping of id → rule set, or a list")
        return
    for rid, body, path in entries:
        if not isinstance(rid, str) or not rid:
            doc.problem(path, "a warning rule set needs a text id")
        elif rid in out:
            doc.problem(path, f"duplicate warning rule set id {rid!r} (also in {out[rid][1].file})")
        else:
            out[rid] = (body, doc, path)


def check_rule_sets(rule_sets: dict[str, tuple[Any, LocatedDoc, FieldPath]]) -> dict[str, Any]:
    """Validate with ``rules.warnings.WarningRuleSet`` when that module exists (owned by the
    alerts work; imported lazily so the catalogue works before it does)."""
    try:
        warnings_mod = importlib.import_module("rules.warnings")
    except ImportError:
        return {rid: body for rid, (body, _, _) in rule_sets.items()}
    model = getattr(warnings_mod, "WarningRuleSet", None)
    if model is None:
        return {rid: body for rid, (body, _, _) in rule_sets.items()}
    out: dict[str, Any] = {}
    for rid, (body, doc, path) in rule_sets.items():
        payload = body
        fields = getattr(model, "model_fields", {})
        if isinstance(body, dict) and "id" in fields and "id" not in body:
            payload = {"id": rid, **body}
        try:
            out[rid] = model.model_validate(payload)
        except ValidationError as exc:
            for err in exc.errors():
                doc.problem((*path, *err["loc"]), err["msg"].removeprefix("Value error, "))
        except (ValueError, TypeError) as exc:
            doc.problem(path, str(exc))
    return out


def cross_check(
    localities: list[Located],
    items: dict[str, list[Located]],
    defaults: list[Located],
    rule_sets: Mapping[str, object],
    broken_localities: set[str],
    docs: list[LocatedDoc],
) -> None:
    def report(x: Located, sub: FieldPath, reason: str) -> None:
        x.doc.problem((*x.path, *sub), reason)

    loc_ids: dict[str, Located] = {}
    for x in localities:
        if x.obj.id in loc_ids:
            other = loc_ids[x.obj.id]
            report(x, ("id",), f"duplicate locality id {x.obj.id!r} (also in {other.doc.file})")
        else:
            loc_ids[x.obj.id] = x
        if x.obj.warning_rule_set is not None and x.obj.warning_rule_set not in rule_sets:
            known = ", ".join(sorted(rule_sets)) or "none loaded"
            report(
                x,
                ("warning_rule_set",),
                f"unknown warning rule set {x.obj.warning_rule_set!r} (known: {known})",
            )
        seen_no: set[int] = set()
        for i, ind in enumerate(x.obj.indicators):
            if ind.no is not None:
                if ind.no in seen_no:
                    report(x, ("indicators", i, "no"), f"row number {ind.no} used twice")
                seen_no.add(ind.no)

    # source ids are unique across every kind: they are MQTT topic segments
    ids: dict[str, tuple[Located, FieldPath]] = {}

    def claim(source_id: str, x: Located, sub: FieldPath) -> None:
        if source_id in ids:
            other, _ = ids[source_id]
            report(x, sub, f"duplicate id {source_id!r} (also in {other.doc.file})")
        else:
            ids[source_id] = (x, sub)

    all_items = [x for key in LIST_SECTIONS for x in items[key]]
    for x in all_items:
        claim(x.obj.id, x, ("id",))
        if x.obj.locality not in loc_ids and x.obj.locality not in broken_localities:
            report(x, ("locality",), f"unknown locality {x.obj.locality!r}")

    broken_ids: set[str] = set()
    for x in (*localities, *all_items):
        broken_ids |= x.doc.broken_ids
    section_ids = {x.obj.id for x in items["water_sections"]} | broken_ids
    for x in items["water_sections"]:
        for key in ("upstream", "downstream"):
            for i, ref in enumerate(getattr(x.obj, key)):
                if ref == x.obj.id:
                    report(x, (key, i), "a section cannot be its own neighbour")
                elif ref not in section_ids:
                    report(x, (key, i), f"unknown {key} section {ref!r}")

    o2_keys: set[str] = set()
    for d in defaults:
        o2_keys |= set(d.obj.reference_o2)
    mns: dict[str, tuple[Located, FieldPath]] = {}
    usccs: dict[str, Located] = {}
    for x in items["enterprises"]:
        ent: Enterprise = x.obj
        if ent.uscc in usccs:
            report(x, ("uscc",), f"统一社会信用代码 also used by {usccs[ent.uscc].obj.id!r}")
        usccs.setdefault(ent.uscc, x)
        for j, out in enumerate(ent.outlets):
            sub: FieldPath = ("outlets", j)
            claim(out.id, x, (*sub, "id"))
            if not out.id.startswith(ent.id + "-"):
                report(
                    x, (*sub, "id"), f"outlet id must start with the enterprise id {ent.id + '-'!r}"
                )
            key = out.mn.upper()
            if key in mns:
                other, other_sub = mns[key]
                report(
                    x,
                    (*sub, "mn"),
                    f"MN {out.mn!r} used twice (also {other.doc.file} {fmt_path((*other.path, *other_sub))})",
                )
            else:
                mns[key] = (x, sub)
            if out.source_type is not None and out.source_type not in o2_keys:
                report(
                    x,
                    (*sub, "source_type"),
                    f"unknown source type {out.source_type!r} (not in defaults.reference_o2)",
                )
            if (
                out.type is OutletType.GAS
                and out.reference_o2 is None
                and out.source_type is None
                and any(lim.factor in {"so2", "nox", "pm"} for lim in out.limits)
            ):
                report(
                    x, sub, "gas outlet with concentration limits needs reference_o2 or source_type"
                )
        for level in ("yellow", "orange", "red"):
            for k, measure in enumerate(getattr(ent.measures, level)):
                vocab = {**EMISSION_GAS, **EMISSION_WATER, "vocs": "%"}
                for factor in measure.reduction_pct:
                    if factor not in vocab:
                        report(
                            x,
                            ("measures", level, k, "reduction_pct", factor),
                            f"unknown factor {factor!r}",
                        )

    ent_ids = {x.obj.id for x in items["enterprises"]} | broken_ids
    producing = {
        x.obj.enterprise
        for x in items["monitors"]
        if x.obj.kind is MonitorKind.ELECTRICITY and x.obj.role is MonitorRole.PRODUCTION
    }
    # an enterprise whose production monitor failed validation is reported there already
    producing |= {
        raw.get("enterprise")
        for doc in docs
        for raw in doc.broken_items
        if raw.get("kind") == MonitorKind.ELECTRICITY.value
        and raw.get("role") == MonitorRole.PRODUCTION.value
    }
    for x in items["monitors"]:
        mon: Monitor = x.obj
        if mon.enterprise is not None and mon.enterprise not in ent_ids:
            report(x, ("enterprise",), f"unknown enterprise {mon.enterprise!r}")
        for sub, reason in _monitor_kind_problems(mon):
            report(x, sub, reason)
        if (
            mon.kind is MonitorKind.ELECTRICITY
            and mon.role is MonitorRole.TREATMENT
            and mon.enterprise is not None
            and mon.enterprise not in producing
        ):
            report(
                x,
                ("role",),
                f"enterprise {mon.enterprise!r} has a treatment electricity monitor but no "
                "production monitor (kind electricity, role production) in the catalogue: "
                "whether the treatment must run is judged by the production line",
            )
        for j, lim in enumerate(mon.limits):
            if lim.factor not in mon.factors:
                report(
                    x,
                    ("limits", j, "factor"),
                    f"limit for {lim.factor!r}, which the monitor does not measure",
                )
            elif lim.unit is not None and lim.unit != MONITOR[lim.factor]:
                report(
                    x,
                    ("limits", j, "unit"),
                    f"unit {lim.unit!r}, canonical unit is {MONITOR[lim.factor]!r}",
                )


def _monitor_kind_problems(mon: Monitor) -> list[tuple[FieldPath, str]]:
    """The fields a monitor of its kind must have, and those it must not have."""
    out: list[tuple[FieldPath, str]] = []
    kind = mon.kind
    if kind is MonitorKind.NOISE and mon.zone_class is None:
        out.append(
            (
                ("zone_class",),
                "a noise monitor needs zone_class: its GB 3096-2008 声环境功能区 class "
                "(0, 1, 2, 3, 4a or 4b) selects the day/night limits",
            )
        )
    if kind is not MonitorKind.NOISE and mon.zone_class is not None:
        out.append((("zone_class",), "zone_class applies to noise monitors only"))
    if kind is MonitorKind.ELECTRICITY:
        if mon.role is None:
            out.append((("role",), "an electricity monitor needs role: production or treatment"))
        if mon.enterprise is None:
            out.append(
                (("enterprise",), "an electricity monitor needs the enterprise it belongs to")
            )
        if mon.role is MonitorRole.TREATMENT:
            if mon.normal_kw is None:
                out.append(
                    (
                        ("normal_kw",),
                        "a treatment electricity monitor needs normal_kw (> 0): the "
                        "pollution-control equipment's normal load in kW (a local setting)",
                    )
                )
            if mon.running_kw is not None:
                out.append((("running_kw",), "running_kw applies to production monitors"))
        if mon.role is MonitorRole.PRODUCTION:
            if mon.running_kw is None:
                out.append(
                    (
                        ("running_kw",),
                        "a production electricity monitor needs running_kw (> 0): the load "
                        "in kW above which the production line counts as running (a local "
                        "setting)",
                    )
                )
            if mon.normal_kw is not None:
                out.append((("normal_kw",), "normal_kw applies to treatment monitors"))
    else:
        for name in ("role", "normal_kw", "running_kw"):
            if getattr(mon, name) is not None:
                out.append(((name,), f"{name} applies to electricity monitors only"))
    return out
