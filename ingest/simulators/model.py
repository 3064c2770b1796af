"""Value objects of the simulators: what a simulated source is, what is delivered, and when.

* :class:`SourceSpec` — one simulated source (station, section, outlet, monitor, forecaster).
* :class:`Delivery` — one message: the :class:`~ingest.schemas.Sample` and the simulated instant it
  is handed to the transport (``at``). ``at`` is never earlier than the sample's label except for
  forecasts, whose label is the *future* day they describe.
* :class:`SimClock` — the mapping between simulated time and a wall clock running ``speed`` times
  slower; pure: the wall reading is passed in.
* :func:`rng_for` — the deterministic random source: a fresh :class:`random.Random` per
  (seed, key parts), so every value depends only on the seed and *what* it is, never on the order
  in which values are generated. Two runs with the same seed give identical streams, and a
  scenario that changes one source leaves every other source's values untouched.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from rules.factors import BY_KIND, Kind

from ingest.schemas import Interval, Sample, Value
from ingest.simulators.errors import SpecError

#: Beijing time: natural days, daily cycles and the HJ 212 clock (architecture.md §5).
BEIJING: Final = ZoneInfo("Asia/Shanghai")

HOUR: Final = timedelta(hours=1)
DAY: Final = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """One simulated source.

    ``baseline`` holds the typical level of each factor (for air: the *annual* mean, modulated
    by season and time of day; for water and outlets: the typical value). ``limits`` holds permit
    limits of an outlet (mg/m³ or mg/L), used to place the simulated level below them and by the
    exceedance scenarios. ``subtype`` picks the daily-cycle model (``gas``/``wastewater`` for
    outlets, ``dust``/``noise``/``power``/``dustfall``/``vapour``/``bypass`` for monitors).
    ``period`` is the spacing of samples; ``interval`` is the label carried in the payload.
    """

    kind: Kind
    locality: str
    source: str
    factors: tuple[str, ...]
    period: timedelta = HOUR
    interval: Interval = Interval.HOUR
    baseline: Mapping[str, float] = field(default_factory=dict)
    limits: Mapping[str, float] = field(default_factory=dict)
    subtype: str = ""
    name: str = ""
    enterprise: str | None = None
    mn: str | None = None
    o2_ref: float | None = None

    def __post_init__(self) -> None:
        if not self.factors:
            raise SpecError(self.source, "factors", "at least one factor is required")
        vocab = BY_KIND[self.kind]
        unknown = sorted(set(self.factors) - set(vocab))
        if unknown:
            raise SpecError(
                self.source,
                "factors",
                f"not in the {self.kind.value} vocabulary (rules.factors): {', '.join(unknown)}",
            )
        if self.period <= timedelta(0):
            raise SpecError(self.source, "period", "must be positive")
        if DAY % self.period and self.period % DAY:
            raise SpecError(self.source, "period", "must divide a day or be whole days")
        for name, value in {**self.baseline, **self.limits}.items():
            if value < 0:
                raise SpecError(self.source, f"baseline/limits.{name}", "must be >= 0")
        # Sample validates the ids; build a throw-away payload so a bad id fails here, with
        # the source named, instead of in the middle of a run.
        try:
            Sample(
                kind=self.kind,
                locality=self.locality,
                source=self.source,
                time=datetime(2026, 1, 1, tzinfo=BEIJING),
                values={self.factors[0]: Value(value=0.0)},
            )
        except ValueError as exc:
            raise SpecError(self.source, "source/locality", str(exc).splitlines()[0]) from exc


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message: ``sample`` handed to the transport at simulated instant ``at``.

    ``note`` says why a delivery is special (``late``, ``duplicate``, ``forecast``); empty for
    an ordinary on-time sample.
    """

    at: datetime
    sample: Sample
    note: str = ""


@dataclass(frozen=True, slots=True)
class SimClock:
    """Simulated time running ``speed`` times faster than a wall clock.

    ``wall_start`` is the wall reading (e.g. ``time.monotonic()``) that corresponds to the
    simulated instant ``start``. ``speed <= 0`` means "as fast as possible": every simulated
    instant is already due.
    """

    start: datetime
    speed: float
    wall_start: float

    def sim_at(self, wall: float) -> datetime:
        """The simulated instant at wall reading ``wall``."""
        if self.speed <= 0:
            return datetime.max.replace(tzinfo=self.start.tzinfo)
        return self.start + timedelta(seconds=(wall - self.wall_start) * self.speed)

    def wall_at(self, sim: datetime) -> float:
        """The wall reading at which simulated instant ``sim`` is due."""
        if self.speed <= 0:
            return self.wall_start
        return self.wall_start + (sim - self.start).total_seconds() / self.speed


def rng_for(seed: int, *parts: object) -> random.Random:
    """A :class:`random.Random` determined by ``seed`` and ``parts`` only (stable across runs;
    unlike ``hash()`` of a str, blake2b is not salted per process)."""
    text = "|".join([str(seed), *(str(p) for p in parts)])
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def local_day_and_hour(label: datetime, period: timedelta) -> tuple[datetime, int]:
    """The Beijing natural day (its 00:00) and hour slot (0–23) a sample labelled ``label``
    belongs to. A label is the END of its period (architecture.md §5), so the hour labelled
    01:00 is slot 0 of its day and the one labelled 24:00 (= next day 00:00) is slot 23."""
    inside = (label - min(period, HOUR)).astimezone(BEIJING)
    day = inside.replace(hour=0, minute=0, second=0, microsecond=0)
    return day, inside.hour


def day_index(label: datetime, start: datetime, period: timedelta = HOUR) -> int:
    """Index of the Beijing natural day of ``label`` counted from the day containing ``start``
    (day 0)."""
    day, _ = local_day_and_hour(label, period)
    start_day = start.astimezone(BEIJING).replace(hour=0, minute=0, second=0, microsecond=0)
    return (day.date() - start_day.date()).days
