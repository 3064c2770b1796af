"""Plan-table cells exactly as printed: a number (with ≥/≤, ``[]`` brackets, % or a
qualifier), a word target (完成市分解任务, 全面消除 …) or a blank; footnote marks dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

#: Superscript footnote marks printed inside table cells (e.g. Zhifu ``[28.74] ¹``, 004…#L177).
_FOOTNOTES = str.maketrans("", "", "¹²³⁴⁵⁶⁷⁸⁹")
_NUMBER_CELL = re.compile(
    r"^(?P<cmp>[≥≤])?\s*(?P<open>\[)?\s*(?P<num>\d+(?:\.\d+)?)\s*(?P<close>\])?\s*(?P<pct>%)?"
    r"\s*(?:[(（](?P<qual>[^()（）]*)[)）])?$"
)


class CellKind(StrEnum):
    NUMBER = "number"  # a printed number (possibly with ≥/≤, [] or a qualifier)
    WORD = "word"  # a word target: 完成市分解任务, 全面消除, 稳中向好, 有效保障 …
    BLANK = "blank"  # the cell is empty in the source
    DASH = "dash"  # "-" or "—" printed
    PLACEHOLDER = "placeholder"  # "□" printed (Zhifu row 14, 004…#L184)


@dataclass(frozen=True, slots=True)
class Cell:
    """One table cell read from its printed text; ``printed`` is kept verbatim."""

    printed: str
    kind: CellKind
    number: float | None = None
    comparator: str | None = None  # "≥" or "≤" when printed
    cumulative: bool = False  # printed in [] — a five-year cumulative value
    qualifier: str | None = None  # e.g. "省控及以上" in "40 (省控及以上)" (001…#L164)
    percent: bool = False  # printed with a % sign ("100%")

    @property
    def word(self) -> str | None:
        """The word target without footnote marks (``完成市分解任务 ²`` → ``完成市分解任务``)."""
        if self.kind is CellKind.WORD:
            return self.printed.translate(_FOOTNOTES).strip()
        return None


def parse_cell(printed: str) -> Cell:
    """Read a printed table cell. Numbers become numbers; words stay words (statuses)."""
    text = printed.translate(_FOOTNOTES).strip()
    if text == "":
        return Cell(printed, CellKind.BLANK)
    if text in {"-", "—", "–", "--", "——"}:
        return Cell(printed, CellKind.DASH)
    if text == "□":
        return Cell(printed, CellKind.PLACEHOLDER)
    m = _NUMBER_CELL.match(text)
    if m is not None and bool(m["open"]) == bool(m["close"]):
        return Cell(
            printed,
            CellKind.NUMBER,
            number=float(m["num"]),
            comparator=m["cmp"],
            cumulative=bool(m["open"]),
            qualifier=m["qual"].strip() if m["qual"] else None,
            percent=bool(m["pct"]),
        )
    return Cell(printed, CellKind.WORD)
