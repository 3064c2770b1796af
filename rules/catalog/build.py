"""Building the catalogue: :func:`catalog_from_texts` (pure: ``{file name: YAML text}`` →
:class:`rules.catalog.model.Catalog`) and :func:`load_catalog` (reads a directory or a file —
the one I/O exception in ``rules/``). Every problem of every file is collected and raised
together as :class:`rules.errors.ConfigError`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rules.catalog.base import Frozen
from rules.catalog.checks import check_rule_sets, collect_rule_sets, cross_check
from rules.catalog.model import LIST_SECTIONS, Catalog, Defaults, Locality
from rules.catalog.yamldoc import FieldPath, Located, LocatedDoc, parse_located
from rules.errors import ConfigError, ConfigProblem

#: Files of a catalogue directory that are not catalogue: the alert rules
#: (``alerts.rules.alert_rules_from_text``, docs/alert-rules.md) live next to it.
ALERT_RULES_FILES: frozenset[str] = frozenset({"alert-rules.yaml", "alert-rules.yml"})

_TOP_KEYS = {"locality", "localities", "defaults", "warning_rule_sets", *LIST_SECTIONS}


def _validate(
    model: type[Frozen], raw: Any, doc: LocatedDoc, path: FieldPath, inherit: str | None
) -> Located | None:
    if isinstance(raw, dict) and inherit is not None and "locality" in model.model_fields:
        raw = {"locality": inherit, **raw}
    try:
        return Located(model.model_validate(raw), doc, path)
    except ValidationError as exc:
        if isinstance(raw, dict) and isinstance(raw.get("id"), str):
            doc.broken_ids.add(raw["id"])  # reported here; references to it don't cascade
        if isinstance(raw, dict):
            doc.broken_items.append(raw)
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not isinstance(p, str) or p[:1] != "[")
            # pydantic prefixes enum/literal choices and model-level errors; keep its message
            msg = err["msg"].removeprefix("Value error, ")
            doc.problem((*path, *loc), msg)
        return None


def catalog_from_texts(texts: Mapping[str, str]) -> Catalog:
    """Build and check the catalogue from ``{file name: YAML text}`` (pure).

    Raises :class:`ConfigError` listing every problem (file, line, field path, reason).
    """
    problems: list[ConfigProblem] = []
    localities: list[Located] = []
    items: dict[str, list[Located]] = {k: [] for k in LIST_SECTIONS}
    defaults: list[Located] = []
    rule_sets: dict[str, tuple[Any, LocatedDoc, FieldPath]] = {}
    broken: set[str] = set()
    docs: list[LocatedDoc] = []
    digest = hashlib.sha256()

    for file in sorted(texts):
        text = texts[file]
        digest.update(file.encode() + b"\0" + text.encode() + b"\0")
        doc, data = parse_located(file, text, problems)
        docs.append(doc)
        if data is None:
            continue
        if not isinstance(data, dict):
            doc.problem((), "a catalogue file is a mapping of sections (locality, air_stations …)")
            continue
        for key in data:
            if key not in _TOP_KEYS:
                doc.problem(
                    (key,), f"unknown section; expected one of {', '.join(sorted(_TOP_KEYS))}"
                )
        inherit: str | None = None
        if "locality" in data:
            loc = _validate(Locality, data["locality"], doc, ("locality",), None)
            if loc is not None:
                localities.append(loc)
                inherit = loc.obj.id
            elif isinstance(data["locality"], dict) and isinstance(data["locality"].get("id"), str):
                inherit = data["locality"]["id"]
                broken.add(inherit)  # reported already; don't cascade "unknown locality"
        for i, raw in enumerate(_as_list(data.get("localities"), doc, ("localities",))):
            loc = _validate(Locality, raw, doc, ("localities", i), None)
            if loc is not None:
                localities.append(loc)
        for key, model in LIST_SECTIONS.items():
            for i, raw in enumerate(_as_list(data.get(key), doc, (key,))):
                got = _validate(model, raw, doc, (key, i), inherit)
                if got is not None:
                    items[key].append(got)
        if "defaults" in data:
            got = _validate(Defaults, data["defaults"], doc, ("defaults",), None)
            if got is not None:
                defaults.append(got)
        collect_rule_sets(data.get("warning_rule_sets"), doc, rule_sets)

    validated_sets = check_rule_sets(rule_sets)
    cross_check(localities, items, defaults, rule_sets, broken, docs)
    if problems:
        problems.sort(key=lambda p: (p.file, p.line or 0, p.field))
        raise ConfigError(problems)

    merged = Defaults()
    for d in defaults:
        merged = Defaults(reference_o2={**merged.reference_o2, **d.obj.reference_o2})
    return Catalog(
        localities=tuple(x.obj for x in localities),
        stations=tuple(x.obj for x in items["air_stations"]),
        sections=tuple(x.obj for x in items["water_sections"]),
        enterprises=tuple(x.obj for x in items["enterprises"]),
        monitors=tuple(x.obj for x in items["monitors"]),
        defaults=merged,
        warning_rule_sets=validated_sets,
        fingerprint=digest.hexdigest(),
    )


def _as_list(raw: Any, doc: LocatedDoc, path: FieldPath) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        doc.problem(path, "must be a list")
        return []
    return raw


def load_catalog(path: str | Path) -> Catalog:
    """Read the catalogue from a directory of ``*.yaml``/``*.yml`` files (but
    :data:`ALERT_RULES_FILES`) or from one file.

    The only I/O in ``rules/`` (see the module docstring). Raises :class:`ConfigError`.
    """
    p = Path(path)
    if p.is_dir():
        found = [*p.glob("*.yaml"), *p.glob("*.yml")]
        files = sorted(f for f in found if f.name not in ALERT_RULES_FILES)
        if not files:
            raise ConfigError([ConfigProblem(str(p), "(directory)", "no *.yaml files")])
    elif p.is_file():
        files = [p]
    else:
        raise ConfigError([ConfigProblem(str(p), "(path)", "no such file or directory")])
    texts: dict[str, str] = {}
    problems: list[ConfigProblem] = []
    for f in files:
        try:
            texts[f.name] = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(ConfigProblem(f.name, "(file)", f"cannot read: {exc}"))
    if problems:
        raise ConfigError(problems)
    return catalog_from_texts(texts)
