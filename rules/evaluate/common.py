"""What every source kind of the evaluation step shares: the values (samples, points, source
context), the configuration constants, epoch-hour helpers and the shared tag dicts.

Tags are bounded sets only (architecture.md §4.4); a tag dict is built once per series and shared
by every point of it (``Point.tags`` is a read-only Mapping, never mutated).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Final, NamedTuple

from rules.emission import EffluentClass, LocalLimit, PermitLimit
from rules.errors import OutsideWindow
from rules.forecast import ForecastIssue

__all__ = [
    "AIR_FACTORS",
    "DEFAULT_CONSTANT_RUN",
    "DEFAULT_PLANT_BUILT",
    "DUSTFALL_LIMIT",
    "KEEP_DAYS",
    "LATENESS_HOURS",
    "SIGNED_FACTORS",
    "STATE_VERSION",
    "STATUS_FACTORS",
    "Point",
    "Sample",
    "SourceContext",
    "SourceTags",
    "check_late",
    "city_tags",
    "epoch_hours",
    "exceedance_point",
    "from_epoch_hours",
    "hour_dt",
    "iso_utc",
    "judged",
    "point",
    "source_tags",
    "tags",
    "verdict_tags",
]

#: How far back a late sample may still correct its window (hours). A design choice of envwatch
#: (no standard sets it): HJ 633-2026 publishes a day's AQI by 12:00 the next day (standards.md
#: §1.5), so 48 h covers the publication deadline with margin.
LATENESS_HOURS: Final = 48

#: Consecutive identical (or zero) values that raise a data-quality flag. Default 6 samples:
#: standards.md §8 lists "长期在某一固定值上下小幅波动" as a fraud cue without a number, so the
#: count is configuration (``SourceContext.constant_run``), not a standard's value.
DEFAULT_CONSTANT_RUN: Final = 6

#: Dustfall (降尘量) monthly mean limit, t/(month·km²): "平均降尘量不得高于7吨/月·平方公里"
#: (000_d6d679181568297b.txt#L171, 001_15ef1b070f9ae15b.txt#L351). A plan target used as the
#: default; a monitor's own ``dustfall`` limit in the catalogue overrides it.
DUSTFALL_LIMIT: Final = 7.0

#: The version of the state layout (3: typed state, rules/evaluate/step.py); a state of another
#: version is discarded (started afresh).
STATE_VERSION: Final = 3

AIR_FACTORS: Final = ("pm25", "pm10", "so2", "no2", "co", "o3")
#: Factors that may be negative (temperatures, flue-gas static pressure); every other value < 0
#: is refused before any state changes, so a bad sample cannot poison a window.
SIGNED_FACTORS: Final = frozenset({"temp", "pressure"})
#: Status factors: 0/1 states, never a constant- or zero-value anomaly.
STATUS_FACTORS: Final = frozenset({"bypass_open", "vapour_recovery"})
#: Plants whose build date is unknown are judged on the stricter TP row of GB 18918-2002 表1
#: (built from 2006-01-01) — a conservative default, see docs/evaluations.md.
DEFAULT_PLANT_BUILT: Final = date(2006, 1, 1)
#: Days (and months, for dustfall) of day state kept behind the latest: LATENESS_HOURS spans 3 days.
KEEP_DAYS: Final = LATENESS_HOURS // 24 + 1

_HOUR: Final = timedelta(hours=1)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


# ----------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class Sample:
    """A validated sample (decoded from the wire by the caller)."""

    kind: str
    locality: str
    source: str
    time: datetime  # aware; label of the sample (end of period)
    interval: str  # rt | min | hour | day
    values: Mapping[str, tuple[float | None, str]]  # factor -> (value, flag)
    #: an AQI forecast issue (kind ``forecast``, ``time`` = its issue time; rules/forecast.py)
    forecast: ForecastIssue | None = None


class Point(NamedTuple):
    """One evaluation result: an InfluxDB point and a record for the alert engine (immutable).

    A NamedTuple rather than a frozen dataclass: several are built per sample on the hot path and
    a NamedTuple is several times cheaper to construct (bench/bench_engine.py).
    """

    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, float | int | str | bool]
    time: datetime

    @property
    def id(self) -> str:
        """Deterministic id: measurement, tags and time (a replay yields the same id)."""
        tags = ",".join(f"{k}={self.tags[k]}" for k in sorted(self.tags))
        return f"{self.measurement}|{tags}|{self.time.astimezone(UTC).isoformat()}"


@dataclass(frozen=True, slots=True)
class SourceContext:
    """What the catalogue says about a source (built by the caller from rules.catalog)."""

    area_grade: int = 2
    lake: bool = False
    target_class: int | None = None
    #: permit limits by factor (the outlet's FactorLimit entries)
    limits: Mapping[str, PermitLimit] = field(default_factory=dict)
    reference_o2: float | None = None
    wastewater: bool = False
    #: expected seconds between samples (for the transmission rate); None: from the interval
    expected_interval_s: int | None = None
    constant_run: int = DEFAULT_CONSTANT_RUN
    #: wastewater treatment plants: the GB 18918-2002 class the plant must meet (一级A …);
    #: None: no effluent-class evaluation
    effluent_class: EffluentClass | str | None = None
    #: build date of the plant (selects the GB 18918-2002 表1 TP row); None: DEFAULT_PLANT_BUILT
    plant_built: date | None = None
    #: stricter local effluent limits (e.g. 003_021375295357aa36.txt#L114 for Laixi)
    local_limits: Sequence[LocalLimit] = ()
    #: other monitors: the catalogue's monitor kind (construction_dust, road_dust, noise, …)
    monitor_kind: str | None = None
    #: noise monitors: the GB 3096-2008 声环境功能区 class ("0", "1", "2", "3", "4a", "4b")
    zone_class: str | None = None


#: ``point(Point, (measurement, tags, fields, time))`` builds a Point without the Python-level
#: ``Point.__new__`` a NamedTuple adds (a third cheaper; several points per sample on the hot path).
point: Final = tuple.__new__


def epoch_hours(at: datetime) -> int:
    """Whole hours since the Unix epoch (floor) of an aware instant."""
    return int((at - _EPOCH) // _HOUR)


def from_epoch_hours(h: int) -> datetime:
    """The UTC instant ``h`` whole hours after the Unix epoch."""
    return _EPOCH + h * _HOUR


# ----------------------------------------------------------------------------- time helpers


@lru_cache(maxsize=16384)
def hour_dt(h: int) -> datetime:
    """``from_epoch_hours(h)``, memoised: every station of a network labels the same hours."""
    return _EPOCH + h * _HOUR


@lru_cache(maxsize=16384)
def iso_utc(ts: float) -> str:
    """ISO-8601 UTC text of epoch seconds ``ts``, memoised (shared sample times)."""
    return (_EPOCH + timedelta(seconds=ts)).isoformat()


def check_late(last: int | None, at: int, horizon: int, sample: Sample) -> None:
    """Raise OutsideWindow when ``at`` lies more than ``horizon`` before the latest ``last``."""
    if last is not None and at < last - horizon:
        raise OutsideWindow(
            sample.source,
            sample.time,
            f"more than {LATENESS_HOURS} h before the latest sample of the source",
        )


# ----------------------------------------------------------------------------- tags


_TAGS_CACHE: dict[tuple[str, ...], dict[str, str]] = {}


def tags(*pairs: str) -> dict[str, str]:
    """Tags dict for alternating key/value strings, shared between points of the same series.

    Tag dicts are never mutated (``Point.tags`` is a read-only Mapping); sharing them saves
    building the same small dict for every sample. The cache is bounded by the catalogue (source
    ids × a few measurements) and cleared if it ever grows beyond that.
    """
    got = _TAGS_CACHE.get(pairs)
    if got is None:
        if len(_TAGS_CACHE) > 100_000:
            _TAGS_CACHE.clear()
        got = dict(zip(pairs[::2], pairs[1::2], strict=True))
        _TAGS_CACHE[pairs] = got
    return got


def verdict_tags(kind: str, loc: str, src: str, period: str) -> dict[str, str]:
    """Tags of a ``verdict`` point: every value judged against a limit in one averaging period
    of one source (wire-only: the locality stage's explicit within/exceeded observations)."""
    return tags("kind", kind, "locality", loc, "source", src, "period", period)


def judged(
    verdict: dict[str, float | int | str | bool], factor: str, value: float, limit: float, std: str
) -> None:
    verdict[factor] = value
    verdict[factor + "_limit"] = limit
    verdict[factor + "_standard"] = std


class SourceTags(NamedTuple):
    reading: dict[str, str]
    quality_run: dict[str, str]
    quality_day: dict[str, str]


@lru_cache(maxsize=100_000)
def source_tags(kind: str, loc: str, src: str) -> SourceTags:
    """The tag dicts every sample of a source uses (memoised per kind, locality, source)."""
    return SourceTags(
        tags("kind", kind, "locality", loc, "source", src),
        tags("kind", kind, "locality", loc, "source", src, "period", "run"),
        tags("kind", kind, "locality", loc, "source", src, "period", "day"),
    )


def exceedance_point(
    sample: Sample,
    factor: str,
    period: str,
    at: datetime,
    fields: dict[str, float | int | str | bool],
) -> Point:
    return Point(
        "exceedance",
        tags(
            "kind",
            sample.kind,
            "locality",
            sample.locality,
            "source",
            sample.source,
            "factor",
            factor,
            "period",
            period,
        ),
        fields,
        at,
    )


def city_tags(locality: str) -> dict[str, str]:
    """Tags of a locality's real-time city AQI point (rules.city)."""
    return tags("locality", locality, "source", "city", "period", "hour")
