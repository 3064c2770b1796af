"""Reading-level helpers shared by every evaluation (pure).

A sample's values arrive as ``{factor: {"value": float | None, "flag": "N"}}`` (ingest/schemas.py).
Only values flagged N (normal) or S (manual set value) count as valid data (HJ 212-2017 表8; issue
[B]: "HJ 212 flags N and S valid; F, M, D, C, T, B not valid").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

#: HJ 212-2017 表8 flags whose data are valid for statistics.
VALID_FLAGS: Final[frozenset[str]] = frozenset({"N", "S"})


def valid_values(values: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """The factors of a sample whose value is present and flagged valid, as floats."""
    out: dict[str, float] = {}
    for factor, v in values.items():
        value = v.get("value")
        if value is not None and v.get("flag", "N") in VALID_FLAGS:
            out[factor] = float(value)
    return out


def invalid_flags(values: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """The factors of a sample that carry a flag other than N/S, with that flag."""
    return {
        f: str(v.get("flag")) for f, v in values.items() if v.get("flag", "N") not in VALID_FLAGS
    }
