"""The wire form of evaluation points on ``evaluations`` and ``aggregates`` (the one contract
between the evaluate stage, the locality stage, the store and ``envwatch backtest``).

A record's value is a JSON array of points — all the points one sample produced (or one locality
step) — each ``{"id", "measurement", "tags", "fields", "time", "ns"}``. ``id`` is
:attr:`rules.engine.Point.id`; ``ns`` the event time in nanoseconds (the InfluxDB timestamp).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from rules import engine
from streams.lineprotocol import ns

#: memo of the per-time strings and per-tag-set text of point ids: a batch's points share a
#: few hours and a few thousand tag sets; cleared when large (the next uses rebuild them)
_TIMES: dict[tuple[datetime, object], tuple[str, str, int]] = {}
_TAG_TEXT: dict[tuple[tuple[str, str], ...], str] = {}
_MEMO_MAX = 100_000


def _time_strings(t: datetime) -> tuple[str, str, int]:
    # keyed with the zone too: equal instants in two zones are equal datetimes, but their
    # ``time`` strings differ (and the locality stage compares those strings)
    key = (t, t.tzinfo)
    got = _TIMES.get(key)
    if got is None:
        if len(_TIMES) >= _MEMO_MAX:
            _TIMES.clear()
        got = _TIMES[key] = (t.isoformat(), t.astimezone(UTC).isoformat(), ns(t))
    return got


def point_dict(p: engine.Point) -> dict[str, Any]:
    """A point as the wire carries it. ``id`` equals :attr:`rules.engine.Point.id` (a test holds
    them equal)."""
    iso, utc_iso, nanos = _time_strings(p.time)
    tags = p.tags
    items = tuple(tags.items())
    tag_text = _TAG_TEXT.get(items)
    if tag_text is None:
        if len(_TAG_TEXT) >= _MEMO_MAX:
            _TAG_TEXT.clear()
        tag_text = _TAG_TEXT[items] = ",".join(f"{k}={tags[k]}" for k in sorted(tags))
    return {
        "id": f"{p.measurement}|{tag_text}|{utc_iso}",
        "measurement": p.measurement,
        "tags": tags,
        "fields": p.fields,
        "time": iso,
        "ns": nanos,
    }


def points_bytes(points: Sequence[engine.Point]) -> bytes:
    """The wire value of ``evaluations`` and ``aggregates``: a JSON array of points — all the
    points of one sample (or one locality step) in one record, so the transport carries one
    message per sample, not one per point (architecture.md §8)."""
    return orjson.dumps([point_dict(p) for p in points])


def decode_points(value: bytes) -> list[dict[str, Any]]:
    """An ``evaluations``/``aggregates`` value → its points (one object is accepted too)."""
    data = orjson.loads(value)
    return data if isinstance(data, list) else [data]


def decode_sample(value: bytes) -> engine.Sample:
    """Kafka ``readings`` value (ingest.schemas.Sample as JSON, written by the bridge) → engine.Sample."""
    d = orjson.loads(value)
    vals = {
        f: (v.get("value"), v.get("flag", "N"))
        for f, v in d["values"].items()
        if isinstance(v, dict)
    }
    return engine.Sample(
        kind=d["kind"],
        locality=d["locality"],
        source=d["source"],
        time=datetime.fromisoformat(d["time"]),
        interval=d.get("interval", "hour"),
        values=vals,
    )


def for_locality(p: engine.Point) -> bool:
    m = p.measurement
    if m in ("reading", "exceedance", "emission_hour"):
        return True
    if m == "water_class":
        return p.tags.get("period") == "sample"
    if m == "data_quality":
        return p.tags.get("period") == "day"
    return False
