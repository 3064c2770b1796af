"""The monitoring catalogue: localities and their plan targets, stations, sections, enterprises,
monitors and notification routes.

The catalogue is configuration an operator reads and edits (YAML in ``deploy/config/``, one file
per locality plus shared files); this package holds its model (pure pydantic, frozen) and every
cross-reference check. ``docs/configuration.md`` describes the files.

Entry points:

* :func:`catalog_from_texts` — pure: ``{filename: yaml text}`` → :class:`Catalog`.
* :func:`load_catalog` — reads a directory of ``*.yaml`` files (or one file) and calls the
  former. **This is the one I/O exception in ``rules/``**: the I/O is limited to reading the
  files, in sorted order, so the result is deterministic and cheap to rebuild on reload. The
  alert rules (:data:`ALERT_RULES_FILES`) in the same directory are not catalogue and skipped.

Modules:

* :mod:`~rules.catalog.vocabulary` — id patterns and enumerations; water classes as printed.
* :mod:`~rules.catalog.cells` — plan-table cells as printed.
* :mod:`~rules.catalog.targets` — plan targets: indicators, prose targets, overrides.
* :mod:`~rules.catalog.routes` — notification routes and secret references.
* :mod:`~rules.catalog.model` — localities, sites, enterprises, monitors, :class:`Catalog`.
* :mod:`~rules.catalog.uscc` — 统一社会信用代码 checks (GB 32100-2015).
* :mod:`~rules.catalog.yamldoc` — the line-numbered YAML loader (also used by the alert rules).
* :mod:`~rules.catalog.checks` — cross-checks as small functions.
* :mod:`~rules.catalog.build` — :func:`catalog_from_texts` and :func:`load_catalog`.

PyYAML is used as a pure parser (text → nodes): nodes keep their line numbers, so every problem
names the file, the line, the field path and the reason. All problems are collected and raised
together as :class:`rules.errors.ConfigError`.

Domain values in the model cite their source (plan file and line, or standard and clause);
the plan digests are in ``/work/shared/docs/plans`` and the originals in ``/work/shared/seeds``.
"""

from __future__ import annotations

from rules.catalog.build import ALERT_RULES_FILES, catalog_from_texts, load_catalog
from rules.catalog.cells import Cell, CellKind, parse_cell
from rules.catalog.model import (
    AirStation,
    Catalog,
    Defaults,
    Enterprise,
    FactorLimit,
    Locality,
    Measure,
    Measures,
    Monitor,
    Outlet,
    ReferenceO2,
    WaterSection,
)
from rules.catalog.routes import (
    ESCALATION_KIND_PATTERN,
    RESERVED_KINDS,
    EscalationKind,
    LocalityRoutes,
    Route,
    SecretRef,
    inline_secret,
)
from rules.catalog.targets import EffectiveTarget, Indicator, Override, Plan, TextTarget
from rules.catalog.uscc import uscc_check_char, uscc_problem
from rules.catalog.vocabulary import (
    LOCALITY_ID_PATTERN,
    PLAN_REF_PATTERN,
    ROMAN_OF,
    SOURCE_ID_PATTERN,
    AreaGrade,
    Attribute,
    ControlLevel,
    LocalityLevel,
    Metric,
    MonitorKind,
    MonitorRole,
    OutletType,
    PerformanceGrade,
    TargetOrigin,
    WaterBody,
    ZoneClass,
    parse_water_class,
)
from rules.catalog.yamldoc import FieldPath, LocatedDoc, fmt_path, parse_located

__all__ = [
    "ALERT_RULES_FILES",
    "ESCALATION_KIND_PATTERN",
    "LOCALITY_ID_PATTERN",
    "PLAN_REF_PATTERN",
    "RESERVED_KINDS",
    "ROMAN_OF",
    "SOURCE_ID_PATTERN",
    "AirStation",
    "AreaGrade",
    "Attribute",
    "Catalog",
    "Cell",
    "CellKind",
    "ControlLevel",
    "Defaults",
    "EffectiveTarget",
    "Enterprise",
    "EscalationKind",
    "FactorLimit",
    "FieldPath",
    "Indicator",
    "Locality",
    "LocalityLevel",
    "LocalityRoutes",
    "LocatedDoc",
    "Measure",
    "Measures",
    "Metric",
    "Monitor",
    "MonitorKind",
    "MonitorRole",
    "Outlet",
    "OutletType",
    "Override",
    "PerformanceGrade",
    "Plan",
    "ReferenceO2",
    "Route",
    "SecretRef",
    "TargetOrigin",
    "TextTarget",
    "WaterBody",
    "WaterSection",
    "ZoneClass",
    "catalog_from_texts",
    "fmt_path",
    "inline_secret",
    "load_catalog",
    "parse_cell",
    "parse_located",
    "parse_water_class",
    "uscc_check_char",
    "uscc_problem",
]
