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


def point_dict(
    p: engine.Point, _times: dict[datetime, tuple[str, str, int]] | None = None
) -> dict[str, Any]:
    """A point as the wire carries it. ``id`` equals :attr:`rules.engine.Point.id` (a test holds
    them equal); the time strings are computed once per distinct time of a batch (``_times``)."""
    t = p.time
    cached = _times.get(t) if _times is not None else None
    if cached is None:
        cached = (t.isoformat(), t.astimezone(UTC).isoformat(), ns(t))
        if _times is not None:
            _times[t] = cached
    iso, utc_iso, nanos = cached
    tags = p.tags
    tag_text = ",".join(f"{k}={tags[k]}" for k in sorted(tags))
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
    times: dict[datetime, tuple[str, str, int]] = {}
    return orjson.dumps([point_dict(p, times) for p in points])


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
