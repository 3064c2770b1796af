"""Data flags (数据标记) of HJ 212-2017 表8, as the rule engine sees them.

``rules`` may not import ``ingest`` (architecture.md §3), so the flag vocabulary the rules need is
defined here; ``ingest.schemas`` re-exports it for the payload model.

Validity (issue 3, standards.md §4.6): only N (normal) and S (manually entered set value) are
valid for statistics and for exceedance judgement; every other flag makes the value invalid and is
counted by kind.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from rules.errors import InvalidReading


class Flag(StrEnum):
    """HJ 212-2017 表8 data flags."""

    N = "N"  # 仪器工作正常 (instrument normal)
    F = "F"  # 仪器停运 (instrument stopped)
    M = "M"  # 维护期间产生的数据 (data produced during maintenance)
    S = "S"  # 手工输入的设定值 (manually entered set value)
    D = "D"  # 仪器故障 (instrument fault)
    C = "C"  # 校准状态 (calibration)
    T = "T"  # 采样数值超过测量上限 (value above the measuring range)
    B = "B"  # 仪器与数采仪通讯异常 (analyser ↔ data logger communication fault)


#: Flags whose values count for statistics (HJ 212-2017 表8; issue 3: N and S valid).
VALID_FLAGS: Final[frozenset[Flag]] = frozenset({Flag.N, Flag.S})

#: Flags that make a value invalid, in the order of HJ 212-2017 表8.
INVALID_FLAGS: Final[tuple[Flag, ...]] = tuple(f for f in Flag if f not in VALID_FLAGS)


def is_valid(flag: Flag) -> bool:
    """True when a value with ``flag`` counts for statistics (N or S)."""
    return flag in VALID_FLAGS


def parse_flag(text: str | Flag) -> Flag:
    """The :class:`Flag` for a letter such as ``"N"``; a typed error for anything else.

    Raises:
        InvalidReading: ``factor="flag"``, when the letter is not one of HJ 212-2017 表8.
    """
    if isinstance(text, Flag):
        return text
    try:
        return Flag(text)
    except ValueError:
        raise InvalidReading(
            "not an HJ 212-2017 表8 data flag (N F M S D C T B)", factor="flag", value=text
        ) from None
