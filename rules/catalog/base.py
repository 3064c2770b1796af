"""The frozen pydantic base of every catalogue model, and the factor-list check the models share."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)


def known_factors(values: Iterable[str], vocab: Mapping[str, str], kind: str) -> tuple[str, ...]:
    out = tuple(values)
    unknown = [f for f in out if f not in vocab]
    if unknown:
        raise ValueError(f"unknown {kind} factor(s): {', '.join(unknown)}")
    if len(set(out)) != len(out):
        raise ValueError("a factor is listed twice")
    return out
