"""Plan targets: the main-indicator tables of the five plans as printed (:class:`Indicator`,
with the baseline and the 2025 target cells), prose targets that differ from the table
(:class:`TextTarget`), local overrides and the effective target of an indicator.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated, Literal

from pydantic import Field, StrictStr, model_validator

from rules.catalog.base import Frozen
from rules.catalog.cells import Cell, CellKind, parse_cell
from rules.catalog.vocabulary import (
    Attribute,
    ControlLevel,
    Metric,
    NonEmpty,
    PlanRef,
    TargetOrigin,
)


class TextTarget(Frozen):
    """A target the plan's prose states where the table says something else."""

    printed: NonEmpty  # verbatim quote, e.g. "实现年度PM2.5稳定达到38微克/立方米"
    value: float
    comparator: Literal["≤", "≥", "="] = "="
    source: PlanRef


class Override(Frozen):
    """An operator-entered number for a word target (e.g. the allocated 分解任务 value)."""

    value: float
    comparator: Literal["≤", "≥", "="] = "="
    provenance: Annotated[str, Field(min_length=3)]  # document, number, date, or reasoning
    entered: date | None = None


@dataclass(frozen=True, slots=True)
class EffectiveTarget:
    """The number progress compares with, and where it comes from."""

    value: float
    comparator: str  # "≤", "≥" or "="
    origin: TargetOrigin
    printed: str  # the literal behind it (table cell, quote, or override provenance)


class Indicator(Frozen):
    """One main-indicator row exactly as printed (or, for a plan without a table, a prose target)."""

    no: int | None = None  # row number as printed; None for prose targets
    category: NonEmpty  # 类别 / section heading, e.g. "环境治理"
    name: NonEmpty  # verbatim, including a trailing "*" (统计口径调整)
    unit: str | None = None
    value_2020: StrictStr  # verbatim printed cell; "" when blank
    target_2025: StrictStr  # verbatim printed cell; "" when blank
    attribute: Attribute | None = None  # None: not stated (prose targets)
    origin: Literal["table", "prose"] = "table"
    source: PlanRef
    metric: Metric | None = None
    section_scope: ControlLevel | None = None  # sections counted: this level and above
    deadline: str | None = None  # for prose targets ("2025", "end-2025", "standing")
    text_target: TextTarget | None = None
    text_value_2020: TextTarget | None = None  # where the text's 2020 value differs
    baseline_uses: TargetOrigin = TargetOrigin.TABLE  # TABLE or TEXT (which 2020 value is shown)
    override: Override | None = None
    progress_uses: TargetOrigin | None = None
    notes: str = ""

    @property
    def baseline(self) -> Cell:
        return parse_cell(self.value_2020)

    @property
    def target(self) -> Cell:
        return parse_cell(self.target_2025)

    @property
    def cumulative(self) -> bool:
        """Five-year cumulative marker: a value printed in [] (e.g. 001…#L175, note 001…#L191)."""
        return self.baseline.cumulative or self.target.cumulative

    @model_validator(mode="after")
    def _uses_exists(self) -> Indicator:
        uses = self.progress_uses
        if uses is TargetOrigin.TABLE and self.target.kind is not CellKind.NUMBER:
            raise ValueError(
                "progress_uses is 'table' but the 2025 cell is not a number "
                f"({self.target_2025!r}); add an override or a text_target"
            )
        if uses is TargetOrigin.TEXT and self.text_target is None:
            raise ValueError("progress_uses is 'text' but there is no text_target")
        if uses is TargetOrigin.OVERRIDE and self.override is None:
            raise ValueError("progress_uses is 'override' but there is no override")
        if self.baseline_uses is TargetOrigin.TEXT and self.text_value_2020 is None:
            raise ValueError("baseline_uses is 'text' but there is no text_value_2020")
        if self.baseline_uses is TargetOrigin.OVERRIDE:
            raise ValueError("baseline_uses is 'table' or 'text'")
        return self

    def baseline_value(self) -> float | None:
        """The 2020 value shown next to progress (table or text, per ``baseline_uses``)."""
        if self.baseline_uses is TargetOrigin.TEXT and self.text_value_2020 is not None:
            return self.text_value_2020.value
        cell = self.baseline
        return cell.number if cell.kind is CellKind.NUMBER and not cell.cumulative else None

    def effective_target(self) -> EffectiveTarget | None:
        """The target progress compares with: ``progress_uses`` if set, else override, table
        number, text — in that order. None when no number exists (a word target without
        override: the status is then ``no_target``)."""
        order = (
            [self.progress_uses]
            if self.progress_uses is not None
            else [TargetOrigin.OVERRIDE, TargetOrigin.TABLE, TargetOrigin.TEXT]
        )
        for origin in order:
            if origin is TargetOrigin.OVERRIDE and self.override is not None:
                o = self.override
                return EffectiveTarget(o.value, o.comparator, origin, o.provenance)
            if origin is TargetOrigin.TABLE and self.target.kind is CellKind.NUMBER:
                cell = self.target
                assert cell.number is not None
                return EffectiveTarget(cell.number, cell.comparator or "=", origin, cell.printed)
            if origin is TargetOrigin.TEXT and self.text_target is not None:
                t = self.text_target
                return EffectiveTarget(t.value, t.comparator, origin, t.printed)
        return None


class Plan(Frozen):
    title: NonEmpty
    issuer: str | None = None
    number: str | None = None  # 文号, None when the plan prints none
    date: Annotated[str, Field(pattern=r"^\d{4}-\d{2}(-\d{2})?$")]  # as precise as printed
    status: Literal["in_force", "draft"]
    file: Annotated[str, Field(pattern=r"^\d{3}_[0-9a-f]{16}\.txt$")]
    source: PlanRef
