"""InfluxDB line protocol, serialised by hand (architecture.md §4.4).

Pre-serialised lines written in synchronous batches are ~5x faster through influxdb-client than
its ``Point`` objects. Timestamps are the event's own time in nanoseconds, so a replay writes the
same series and timestamp again and InfluxDB overwrites instead of duplicating.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)

_MEAS = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n"})
_TAG = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n"})
_STR = str.maketrans({'"': r"\"", "\\": "\\\\", "\n": r"\n"})


def ns(at: datetime) -> int:
    """Nanoseconds since the epoch of an aware datetime (exact, no float rounding)."""
    if at.tzinfo is None:
        raise ValueError("naive datetime: envwatch uses timezone-aware datetimes only")
    return (at - _EPOCH) // _US * 1_000


def _field(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return f"{v}i"
    if isinstance(v, float):
        return repr(v)
    return '"' + str(v).translate(_STR) + '"'


@functools.lru_cache(maxsize=200_000)
def _tag(s: str) -> str:
    """A name or tag value escaped. Memoised: the same few thousand strings (sources, factors,
    measurement and field names) recur in every line; bounded, should an unbounded tag value
    (which the schema forbids, docs/influx-schema.md) ever come."""
    return s.translate(_TAG)


@functools.lru_cache(maxsize=200_000)
def _head(measurement: str, tags: tuple[tuple[str, object], ...]) -> str:
    """Measurement and tag set of a line (tags sorted, empty ones dropped), memoised per tag set:
    a source's points share a handful of them."""
    head = measurement.translate(_MEAS)
    for k, v in sorted(tags):
        if v != "":
            head += "," + _tag(k) + "=" + _tag(v if isinstance(v, str) else str(v))
    return head


@functools.lru_cache(maxsize=20_000)
def _key(name: str) -> str:
    """``name=`` of a field, escaped (memoised: field names are a small vocabulary)."""
    return _tag(name) + "="


def line(
    measurement: str,
    tags: Mapping[str, str],
    fields: Mapping[str, object],
    timestamp_ns: int,
) -> str:
    """One line of line protocol. Tags are sorted (InfluxDB's preferred order); empty tags dropped."""
    head = _head(measurement, tuple(tags.items()))
    body = ",".join(
        [
            _key(k) + (repr(v) if type(v) is float else f"{v}i" if type(v) is int else _field(v))
            for k, v in fields.items()
            if v is not None
        ]
    )
    if not body:
        raise ValueError(f"line for {measurement!r} has no field")
    return f"{head} {body} {timestamp_ns}"
