"""Inhibition (pure), Alertmanager-style: a firing *source* alert mutes *target* alerts that share
the ``equal`` labels. An alert never inhibits itself.

Defaults (:data:`DEFAULT_INHIBIT_RULES`):

* a station/outlet that is offline inhibits its own exceedance and data-quality-value alerts
  (their values are stale or missing, the offline alert is the one to act on);
* a locality under a **red** heavy-pollution warning inhibits the per-station ambient AQI/exceedance
  alerts of that locality (the warning and its emergency measures are what people act on).
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
        id="offline-inhibits-exceedance",
        source_matchers=(_m("rule_kind", "offline"),),
        target_matchers=(_m("category", "exceedance|data_quality_value", MatchOp.RE),),
        equal=("source",),
        comment="a silent monitor's stale values say nothing; act on the offline alert",
    ),
    InhibitRule(
        id="red-warning-inhibits-station-aqi",
        source_matchers=(_m("kind", "warning"), _m("level", "red")),
        target_matchers=(_m("rule_kind", "ambient_exceedance"),),
        equal=("locality",),
        comment="under a red warning the per-station AQI alerts add nothing",
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
