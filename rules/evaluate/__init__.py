"""The per-source evaluation step (pure): one sample in, state updated, result points out.

``step(state, sample, ctx)`` is what the stream worker calls for every sample (streams/agents):
it never reads the clock — the sample's own time drives every window — and it is deterministic,
so a replay of the same samples from the same state (also from a JSON round trip of it) produces
the same points with the same ids (the store overwrites, receivers deduplicate).

State per source is typed (:class:`SourceState`: slotted dataclasses per kind and for data
quality, rules/evaluate/step.py) and serialises to plain JSON (orjson writes the dataclasses as
objects; :func:`load_state` or :func:`step` takes that form back). Hourly values
are retained for ``LATENESS_HOURS`` (a late sample inside that horizon re-evaluates its hour, its
moving means and its day, and the corrected points carry the same ids as the originals; older
samples raise :class:`~rules.errors.OutsideWindow` and go to the dead-letter topic).

Points (measurement → what it holds; tags are bounded sets only, architecture.md §4.4;
docs/evaluations.md says when each is emitted and with which id):

| measurement    | tags                                  | fields                                       |
|----------------|---------------------------------------|----------------------------------------------|
| reading        | kind, locality, source                | the valid values; ``invalid`` = "f:flag,…"   |
| aqi            | locality, source, period (hour/day)   | aqi, published, level, category, iaqi_*, …   |
| aggregate      | kind, locality, source, period        | moving means, daily means, dustfall month    |
| exceedance     | kind, locality, source, factor, period| value, limit, multiple, standard             |
| water_class    | locality, source, period              | grade, label, target, meets, main_pollutants |
| water_change   | locality, source, period (sample)     | <factor>, baseline_*, limit_*, jump_*        |
| emission_hour  | locality, source                      | <factor>, <factor>_zs (O2-corrected), valid  |
| emission_day   | locality, source                      | daily means, valid hours, GB 18918 class     |
| data_quality   | kind, locality, source, period        | expected, received, valid, rates, runs       |

Time (architecture.md §5): an hour labelled *t* is the mean over (t − 1 h, t]; a sample belongs to
the Beijing natural day of the instant just before its label, so the hour labelled 00:00 is the
last hour of the previous day. Asia/Shanghai has been UTC+8 without daylight saving since 1991
(IANA tz database), so from 1992 on days and slots are plain integer arithmetic on epoch hours
(rules/beijing.py).

Modules: ``common`` (values, constants, time and tag helpers), ``air``, ``water``, ``emission``,
``monitor`` (other monitors), ``quality`` (data quality of every source), ``step`` (the entry
point and the source state).
"""

from __future__ import annotations

from rules.evaluate.air import AirState, aqi_point
from rules.evaluate.common import (
    AIR_FACTORS,
    DEFAULT_CONSTANT_RUN,
    DUSTFALL_LIMIT,
    LATENESS_HOURS,
    STATE_VERSION,
    Point,
    Sample,
    SourceContext,
    city_tags,
    epoch_hours,
    from_epoch_hours,
)
from rules.evaluate.emission import EmissionState
from rules.evaluate.monitor import MonitorState
from rules.evaluate.quality import QualityDay, QualityState
from rules.evaluate.step import SourceState, load_state, step
from rules.evaluate.water import WaterState

__all__ = [
    "AIR_FACTORS",
    "DEFAULT_CONSTANT_RUN",
    "DUSTFALL_LIMIT",
    "LATENESS_HOURS",
    "STATE_VERSION",
    "AirState",
    "EmissionState",
    "MonitorState",
    "Point",
    "QualityDay",
    "QualityState",
    "Sample",
    "SourceContext",
    "SourceState",
    "WaterState",
    "aqi_point",
    "city_tags",
    "epoch_hours",
    "from_epoch_hours",
    "load_state",
    "step",
]
