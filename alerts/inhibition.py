"""Inhibition (pure), Alertmanager-style: a firing *source* alert mutes *target* alerts that share
the ``equal`` labels. An alert never inhibits itself.

Defaults (:data:`DEFAULT_INHIBIT_RULES`): a source that is offline inhibits only what its silence
makes meaningless — its own data-rate alert (the low transmission rate *is* the silence). Nothing
inhibits an exceedance: a source that reports resolves its offline alert, and a heavy-pollution
warning never hides a station's, outlet's or plant's exceedance (grouping several alerts into one
message is routing's job, not suppression).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from alerts.silences import Matcher, MatchOp, matches_all


class InhibitRule(BaseModel):
    """``source_matchers`` firing ⇒ alerts matching ``target_matchers`` with ``equal`` labels muted."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    source_matchers: tuple[Matcher, ...] = Field(min_length=1)
    target_matchers: tuple[Matcher, ...] = Field(min_length=1)
    equal: tuple[str, ...] = ()
    comment: str = ""

    def inhibits(self, source: Mapping[str, str], target: Mapping[str, str]) -> bool:
        return (
            matches_all(self.source_matchers, source)
            and matches_all(self.target_matchers, target)
            and all(source.get(k, "") == target.get(k, "") for k in self.equal)
        )


def _m(name: str, value: str, op: MatchOp = MatchOp.EQ) -> Matcher:
    return Matcher(name=name, op=op, value=value)


DEFAULT_INHIBIT_RULES: Final[tuple[InhibitRule, ...]] = (
    InhibitRule(
        id="offline-inhibits-data-rate",
        source_matchers=(_m("rule_kind", "offline"),),
        target_matchers=(_m("rule_kind", "data_rate"),),
        equal=("source",),
        comment="a silent monitor's low transmission rate is its silence: act on the offline alert",
    ),
)


def inhibited_by(
    rules: Iterable[InhibitRule],
    target: Mapping[str, str],
    target_fp: str,
    firing: Iterable[tuple[str, Mapping[str, str]]],
) -> list[str]:
    """Fingerprints of firing alerts that inhibit ``target`` (sorted; self excluded)."""
    # cheap rejections first: rules whose target side cannot match, then the equal labels
    applicable = [r for r in rules if matches_all(r.target_matchers, target)]
    if not applicable:
        return []
    hits: set[str] = set()
    for fp, labels in firing:
        if fp == target_fp:
            continue
        for r in applicable:
            if all(labels.get(k, "") == target.get(k, "") for k in r.equal) and matches_all(
                r.source_matchers, labels
            ):
                hits.add(fp)
                break
    return sorted(hits)
