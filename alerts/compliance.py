"""Emergency cuts checked (pure): did each enterprise cut as its list requires during a warning?

The plans ask for enforcement against enterprises that do not carry out their emergency
emission reductions (000_d6d679181568297b.txt#L141: 打击不落实应急减排措施) and name the
electricity monitoring of production and treatment lines as a means (电量监控,
000_d6d679181568297b.txt#L339). The locality stage (alerts/locality.py) keeps one
:class:`CutWatch` per locality and feeds it two kinds of hourly observation of an enterprise:

* an online-monitored gas outlet's hourly **emission rate** per pollutant (SO2, NOx, 颗粒物,
  VOCs as 非甲烷总烃): concentration × flue-gas flow in kg/h when the outlet reports its flow,
  else the concentration (a load cut shows mostly in the flow: comparing concentrations alone
  would miss it, so the catalogue should list ``flow`` for outlets with a list);
* a production-line electricity monitor's hourly **kW** (``power_kw``).

**Baseline** (the window is envwatch's choice [MEM]; no standard fixes it): the mean of the
values of the same Beijing clock hour among the hours that ended during the
:data:`BASELINE_HOURS` before the warning took effect (the hour ending at that instant excluded,
so the baseline does not depend on whether its value or the warning came first) — production follows a daily rhythm (day shift, night load), so an hour is compared with
the same hour of normal days, not with a whole-day mean. Values seen while a warning is in force
never enter a baseline; the history starts afresh after the lift.

**Check** (``rules.warnings.compare_with_baseline``): achieved cut = (baseline − now) / baseline
against the cut the enterprise's own list requires at the level (``rules.warnings.required_cut``).
Each hourly value during the warning is an explicit observation for the ``warning-compliance``
alert (value = achieved cut, limit = required cut): the rule's ``for_minutes`` is the time an
enterprise may stay below its cut before the alert fires; complying clears it, and so does the
lift (an observation with nothing required).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from rules.warnings import (
    BaselineMean,
    Compliance,
    ComplianceCheck,
    EnterpriseInput,
    Level,
    WarningRuleSet,
    compare_with_baseline,
    required_cut,
)

#: How far back the pre-warning baseline reaches: three days give up to three values of each
#: clock hour (envwatch's choice [MEM]).
BASELINE_HOURS: Final = 72
#: The pollutants a warning's cuts concern, by emission factor (rules.factors names).
CUT_FACTORS: Final = ("so2", "nox", "pm", "nmhc")
#: The factor of a production line's electricity.
POWER: Final = "power_kw"
_HOUR_S: Final = 3600
_SEP: Final = "\x1f"


def _epoch_hour(at: datetime) -> int:
    return int(at.timestamp() // _HOUR_S)


def _slot(epoch_hour: int) -> int:
    """The Beijing clock hour (0–23) of an epoch hour (UTC+8, no daylight saving since 1991)."""
    return (epoch_hour + 8) % 24


def emission_rates(fields: Mapping[str, Any]) -> dict[str, float]:
    """An outlet hour's observed quantity per cut pollutant: concentration (mg/m³) × flow
    (m³/h) / 10⁶ = kg/h when the hour has a flow, else the concentration itself."""
    flow = fields.get("flow")
    has_flow = isinstance(flow, int | float) and not isinstance(flow, bool) and flow > 0
    out: dict[str, float] = {}
    for f in CUT_FACTORS:
        v = fields.get(f)
        if isinstance(v, bool) or not isinstance(v, int | float):
            continue
        out[f] = float(v) * float(flow) / 1e6 if has_flow else float(v)  # type: ignore[arg-type]
    return out


@dataclass
class CutWatch:
    """One locality's histories and frozen baselines; plain data through ``to_dict``."""

    #: "source␟factor" → [[epoch hour, value], …] seen while no warning was in force
    history: dict[str, list[list[float]]] = field(default_factory=dict)
    #: "source␟factor" → {Beijing clock hour: baseline}, frozen when the warning took effect
    baselines: dict[str, dict[int, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "history": self.history,
            "baselines": {k: {str(s): v for s, v in b.items()} for k, b in self.baselines.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> CutWatch:
        data = data or {}
        return cls(
            history={
                str(k): [list(x) for x in v] for k, v in dict(data.get("history") or {}).items()
            },
            baselines={
                str(k): {int(s): float(v) for s, v in dict(b).items()}
                for k, b in dict(data.get("baselines") or {}).items()
            },
        )

    def remember(self, source: str, factor: str, at: datetime, value: float) -> None:
        """A value while no warning is in force: kept for the next warning's baseline."""
        hour = _epoch_hour(at)
        rows = self.history.setdefault(f"{source}{_SEP}{factor}", [])
        if rows and rows[-1][0] >= hour:
            rows[:] = [r for r in rows if r[0] != hour]  # a corrected hour replaces its value
            rows.append([hour, value])
            rows.sort()
        else:
            rows.append([hour, value])
        while rows and rows[0][0] <= hour - BASELINE_HOURS:
            del rows[0]

    def freeze(self, at: datetime) -> None:
        """The warning took effect at ``at``: each history's per-clock-hour means over the
        :data:`BASELINE_HOURS` before become the baselines."""
        end = at.timestamp() / _HOUR_S
        start = end - BASELINE_HOURS
        self.baselines = {}
        for key, rows in self.history.items():
            means: dict[int, BaselineMean] = {}
            for hour, value in rows:
                if start < hour < end:  # hours that ended before the warning took effect
                    slot = _slot(int(hour))
                    means[slot] = means.get(slot, BaselineMean.initialise()).add(value)
            got = {s: m.result() for s, m in means.items()}
            frozen = {s: v for s, v in got.items() if v is not None}
            if frozen:
                self.baselines[key] = frozen
        self.history = {}

    def lifted(self) -> None:
        """The warning is over: the baselines are forgotten; the history starts afresh."""
        self.baselines = {}
        self.history = {}

    def check(
        self,
        source: str,
        factor: str,
        at: datetime,
        value: float,
        *,
        level: Level,
        rule_set: WarningRuleSet,
        enterprise: object,
    ) -> ComplianceCheck | None:
        """A value during a warning, against the baseline of its clock hour and the cut the
        enterprise must achieve; None when no cut is required or no baseline is known."""
        baseline = self.baselines.get(f"{source}{_SEP}{factor}", {}).get(_slot(_epoch_hour(at)))
        required = required_cut(rule_set, level, factor, enterprise)
        ent_id = EnterpriseInput.from_any(enterprise).id
        result = compare_with_baseline(ent_id, factor, level, baseline, value, required)
        if result.decision in (Compliance.NOT_REQUIRED, Compliance.NO_BASELINE):
            return None
        return result


def enterprise_of(enterprises: Sequence[object], ident: str) -> object | None:
    """The locality context's entry of enterprise ``ident`` (None when unknown)."""
    for ent in enterprises:
        got = ent.get("id") if isinstance(ent, Mapping) else getattr(ent, "id", None)
        if got == ident:
            return ent
    return None


__all__ = [
    "BASELINE_HOURS",
    "CUT_FACTORS",
    "POWER",
    "CutWatch",
    "emission_rates",
    "enterprise_of",
]
