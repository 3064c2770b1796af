"""The stream: every spec's samples from ``start`` for ``hours``, scenario applied, in delivery order.

:func:`simulate` is pure and lazy: the same arguments give the same deliveries, in the same
order, every time (ties in ``at`` are broken by source id). Labels follow architecture.md §5:
a sample's ``time`` is the END of its period, so the first hourly sample of a run starting at
08:00 is labelled 09:00. Periods are aligned on Beijing midnight (a 4-hourly section reports at
04:00, 08:00 …).

Forecasts are the exception to "delivered at its label": the sample of forecaster ``fc-L`` for
target day D is labelled with the END of D (D+1 00:00 Beijing, interval ``day``) and delivered at
20:00 Beijing on D−3 (HJ 633-2026: forecasts of at least the next 3 days, published by 20:00;
standards.md §1.5), or at ``start`` when that lies before the run.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Final

from rules.beijing import BEIJING
from rules.factors import Kind

from ingest.schemas import Sample
from ingest.simulators.errors import SimulatorError
from ingest.simulators.model import HOUR, Delivery, SourceSpec
from ingest.simulators.profiles import base_values
from ingest.simulators.scenarios import Scenario, make_scenario

#: A forecast for day D is issued at 20:00 on D−3: label (D+1 00:00) minus 76 h.
FORECAST_LEAD: Final = timedelta(days=3, hours=4)


def check_start(start: datetime) -> None:
    """Runs start on a whole hour with a timezone (hourly labels must land on the hour)."""
    if start.tzinfo is None or start.utcoffset() is None:
        raise SimulatorError(f"start {start!r} has no timezone")
    local = start.astimezone(BEIJING)
    if (local.minute, local.second, local.microsecond) != (0, 0, 0):
        raise SimulatorError(f"start {start.isoformat()} is not on a whole hour")


def label_times(spec: SourceSpec, start: datetime, end: datetime) -> Iterator[datetime]:
    """Labels of ``spec`` in (start, end], aligned on Beijing midnight, in Beijing time."""
    anchor = start.astimezone(BEIJING).replace(hour=0, minute=0, second=0, microsecond=0)
    steps = int((start - anchor) / spec.period) + 1
    t = anchor + steps * spec.period
    while t <= end:
        yield t
        t += spec.period


def _spec_stream(
    spec: SourceSpec, start: datetime, end: datetime, seed: int, scenario: Scenario | None
) -> Iterator[Delivery]:
    forecast = spec.kind is Kind.FORECAST
    last = end + FORECAST_LEAD if forecast else end
    for label in label_times(spec, start, last):
        at = max(start, label - FORECAST_LEAD) if forecast else label
        if at > end:
            break
        values = base_values(spec, label, seed)
        if scenario is not None:
            changed = scenario.override(spec, label, values)
            if changed is None:
                continue
            values = changed
        if not values:
            continue
        sample = Sample(
            kind=spec.kind,
            locality=spec.locality,
            source=spec.source,
            time=label,
            interval=spec.interval,
            values=values,
        )
        yield Delivery(at=at, sample=sample, note="forecast" if forecast else "")


def simulate(
    specs: Sequence[SourceSpec],
    *,
    start: datetime,
    hours: float,
    seed: int = 0,
    scenario: str | Scenario | None = None,
    target: str | None = None,
) -> Iterator[Delivery]:
    """Deliveries of ``specs`` over (start, start + hours], ordered by delivery time.

    ``scenario`` is a name from :data:`ingest.simulators.scenarios.SCENARIOS` (resolved against
    ``specs`` with ``target``), or an already built :class:`Scenario`.
    """
    check_start(start)
    if hours <= 0:
        raise SimulatorError(f"hours must be positive, got {hours}")
    end = start + timedelta(hours=hours)
    sc = (
        make_scenario(scenario, specs, start=start, seed=seed, target=target)
        if isinstance(scenario, str)
        else scenario
    )
    streams: list[Iterable[Delivery]] = [_spec_stream(s, start, end, seed, sc) for s in specs]
    merged: Iterator[Delivery] = heapq.merge(*streams, key=lambda d: (d.at, d.sample.source))
    if sc is not None:
        merged = sc.deliveries(merged)
    return merged


__all__ = ["FORECAST_LEAD", "HOUR", "check_start", "label_times", "simulate"]
