"""Value objects of the simulators: what a simulated source is, what is delivered, and when.

* :class:`SourceSpec` — one simulated source (station, section, outlet, monitor, forecaster).
* :class:`Delivery` — one message: the :class:`~ingest.schemas.Sample` and the simulated instant it
  is handed to the transport (``at``). ``at`` is never earlier than the sample's label except for
  forecasts, whose label is the *future* day they describe.
* :class:`SimClock` — the mapping between simulated time and a wall clock running ``speed`` times
  slower; pure: the wall reading is passed in.
* :func:`rng_for` — the deterministic random source: a fresh :class:`Rng` per
  (seed, key parts), so every value depends only on the seed and *what* it is, never on the order
  in which values are generated. Two runs with the same seed give identical streams, and a
  scenario that changes one source leaves every other source's values untouched.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from rules.beijing import BEIJING
from rules.factors import BY_KIND, Kind

from ingest.schemas import Interval, Sample, Value
from ingest.simulators.errors import SpecError

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
    ``area_grade`` is an air station's GB 3095 area grade (``I``/``II``, "" when unknown) and
    ``lake`` marks a lake or reservoir section (GB 3838 lake TP/TN rows); the base models ignore
    both, scenarios that keep values within limits use them.
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
    area_grade: str = ""
    lake: bool = False

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


class Rng:
    """A small deterministic generator (splitmix64) with the three draws the models use.

    Seeding ``random.Random`` costs more than all the draws a sample needs; splitmix64 state is
    one integer. Quality is ample for simulated noise (it passes BigCrush as a 64-bit mixer).
    """

    __slots__ = ("_spare", "_state")
    _MASK = (1 << 64) - 1

    def __init__(self, state: int) -> None:
        self._state = state & self._MASK
        self._spare: float | None = None

    def _next(self) -> int:
        self._state = (self._state + 0x9E3779B97F4A7C15) & self._MASK
        z = self._state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & self._MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & self._MASK
        return z ^ (z >> 31)

    def random(self) -> float:
        """Uniform in [0, 1)."""
        return (self._next() >> 11) * (1.0 / (1 << 53))

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.random()

    def gauss(self, mu: float, sigma: float) -> float:
        """Normal draw (Box–Muller, the second value kept for the next call)."""
        if self._spare is not None:
            z, self._spare = self._spare, None
            return mu + sigma * z
        u1 = 1.0 - self.random()  # (0, 1]
        u2 = self.random()
        r = math.sqrt(-2.0 * math.log(u1))
        self._spare = r * math.sin(2 * math.pi * u2)
        return mu + sigma * r * math.cos(2 * math.pi * u2)


def rng_for(seed: int, *parts: object) -> Rng:
    """A generator determined by ``seed`` and ``parts`` only (stable across runs and
    processes: blake2b, unlike ``hash()`` of a str, is not salted per process)."""
    text = "|".join([str(seed), *(str(p) for p in parts)])
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return Rng(int.from_bytes(digest, "big"))


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
