"""统一社会信用代码 (unified social credit code) checks, GB 32100-2015: character set,
administrative-division digits and the check character.
"""

from __future__ import annotations

_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100-2015 代码字符集 (no I O S V Z)
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def uscc_check_char(first17: str) -> str:
    """The GB 32100-2015 check character of the first 17 characters (weights 3^i mod 31)."""
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_CHARS[(31 - total % 31) % 31]


def uscc_problem(code: str) -> str | None:
    """Why ``code`` is not a valid 统一社会信用代码, or None when it is."""
    if len(code) != 18:
        return f"统一社会信用代码 must have 18 characters, got {len(code)}"
    bad = sorted({c for c in code if c not in _USCC_CHARS})
    if bad:
        return f"统一社会信用代码 contains characters outside GB 32100 set: {''.join(bad)}"
    if not code[2:8].isdigit():
        return "统一社会信用代码 characters 3–8 must be the administrative-division code (digits)"
    expected = uscc_check_char(code[:17])
    if code[17] != expected:
        return f"统一社会信用代码 check character is {code[17]!r}, expected {expected!r}"
    return None
