"""The wire form of evaluation points on ``evaluations`` and ``aggregates`` (the one contract
between the evaluate stage, the locality stage, the store and ``envwatch backtest``).

A record's value is a JSON array of points — all the points of one ``readings`` record (a sample
or an envelope of samples, merged per batch) or of one locality step — each ``{"measurement",
"tags", "fields", "time", "ns"}``; ``ns`` is the event time in nanoseconds (the InfluxDB
timestamp). A point's id (:attr:`rules.evaluate.Point.id`) is not sent: :func:`point_id` derives it.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from rules import evaluate as engine
from rules.forecast import issue_of
from streams.lineprotocol import ns


@functools.lru_cache(maxsize=100_000)
def _time_strings(t: datetime, _zone: object) -> tuple[str, int]:
    """(local ISO, ns) of a point's time, memoised: a batch's points share a few hours. Keyed
    with the zone too (``_zone``): equal instants in two zones are equal datetimes, but their
    ``time`` strings differ, and the locality stage compares those strings."""
    return t.isoformat(), ns(t)


def point_dict(p: engine.Point) -> dict[str, Any]:
    """A point as the wire carries it: measurement, tags, fields, time (ISO, with the offset it
    was made with) and ``ns`` (the InfluxDB timestamp). Its id is not sent — every consumer can
    derive it (:func:`point_id`) and none needs it on the hot path."""
    t = p.time
    iso, nanos = _time_strings(t, t.tzinfo)
    return {
        "measurement": p.measurement,
        "tags": p.tags,
        "fields": p.fields,
        "time": iso,
        "ns": nanos,
    }


def point_id(d: Mapping[str, Any]) -> str:
    """The id of a point in its wire form: :attr:`rules.evaluate.Point.id` (``measurement|sorted
    k=v tags|UTC ISO time``) — the same for a re-evaluation of the same statistic."""
    tags = ",".join(f"{k}={v}" for k, v in sorted(d["tags"].items()))
    utc = datetime.fromisoformat(d["time"]).astimezone(UTC).isoformat()
    return f"{d['measurement']}|{tags}|{utc}"


def points_bytes(points: Sequence[engine.Point]) -> bytes:
    """The wire value of ``evaluations`` and ``aggregates``: a JSON array of points — all the
    points of one sample (or one locality step) in one record, so the transport carries one
    message per sample, not one per point (architecture.md §8)."""
    return orjson.dumps([point_dict(p) for p in points])


#: a merged record stays well below Kafka's default message.max.bytes (1 MiB)
MERGED_MAX_BYTES = 256 * 1024


def merge_point_records(
    records: Sequence[tuple[str, bytes, bytes]], topics: Collection[str]
) -> list[tuple[str, bytes, bytes]]:
    """(topic, key, value) records with the point arrays bound for one of ``topics`` and one key
    merged into as few records as fit ``MERGED_MAX_BYTES``, in order; other records pass as
    they are. Every consumer handles a record as its points in order (``LocalityState.
    step_record`` relates exceedances to readings by source, factor and time, not by record),
    and one key's records stay in one partition in the same order, so merging changes nothing
    but the number of Kafka records (a Faust event costs more than the points it carries)."""
    out: list[tuple[str, bytes, bytes] | _Merged] = []
    newest: dict[tuple[str, bytes], _Merged] = {}
    for record in records:
        topic, key, value = record
        if topic not in topics or value[:1] != b"[" or value == b"[]":
            out.append(record)
            continue
        body = value[1:-1]  # "[a,b]" → "a,b": arrays join without decoding
        merged = newest.get((topic, key))
        if merged is None or merged.size + 1 + len(body) > MERGED_MAX_BYTES:
            merged = newest[(topic, key)] = _Merged(topic, key)
            out.append(merged)
        merged.add(body)
    return [r.record() if isinstance(r, _Merged) else r for r in out]


class _Merged:
    __slots__ = ("bodies", "key", "size", "topic")

    def __init__(self, topic: str, key: bytes) -> None:
        self.topic, self.key = topic, key
        self.bodies: list[bytes] = []
        self.size = 1  # "[" … "]" less the comma the first body does not need

    def add(self, body: bytes) -> None:
        self.bodies.append(body)
        self.size += len(body) + 1

    def record(self) -> tuple[str, bytes, bytes]:
        return self.topic, self.key, b"[" + b",".join(self.bodies) + b"]"


def decode_points(value: bytes) -> list[dict[str, Any]]:
    """An ``evaluations``/``aggregates`` value → its points (one object is accepted too)."""
    data = orjson.loads(value)
    return data if isinstance(data, list) else [data]


def decode_sample(value: bytes) -> engine.Sample:
    """Kafka ``readings`` value (ingest.schemas.Sample as JSON, written by the bridge) → engine.Sample."""
    return sample_of(orjson.loads(value))


def sample_of(d: Any) -> engine.Sample:
    """One decoded sample (a JSON object of ``readings``, alone or in an envelope) → engine.Sample.
    Raises ``KeyError``/``TypeError``/``ValueError``/``AttributeError`` on what is no sample."""
    if "days" in d:
        # an AQI forecast issue (rules/forecast.py): its time is the issue time
        return engine.Sample(
            kind=d["kind"],
            locality=d["locality"],
            source=d["source"],
            time=datetime.fromisoformat(d["time"]),
            interval="day",
            values={},
            forecast=issue_of(d.get("issuer"), d["days"]),
        )
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


def issue_bytes(sample: engine.Sample) -> bytes:
    """A forecast issue in the wire form of ``readings`` (what the bridge writes)."""
    issue = sample.forecast
    assert issue is not None
    return orjson.dumps(
        {
            "schema": 1,
            "kind": sample.kind,
            "locality": sample.locality,
            "source": sample.source,
            "time": sample.time.isoformat(),
            "issuer": issue.issuer,
            "days": [d.to_dict() for d in issue.days],
        }
    )


def for_store(p: engine.Point) -> bool:
    """Whether the store keeps a point: everything but the ``verdict`` points, which carry every
    judged value (within its limit too) to the locality stage only — the store keeps the
    exceedances (docs/evaluations.md)."""
    return p.measurement != "verdict"


def for_locality(p: engine.Point) -> bool:
    """The points the locality stage reads (alerts.locality): readings, explicit verdicts,
    per-sample water classes and sudden-change verdicts, daily data quality, outlets' hourly means."""
    m = p.measurement
    if m in ("reading", "verdict", "forecast"):
        return True
    if m == "emission_hour":
        # an enterprise's hourly emission rates: the warning-compliance check (alerts/compliance.py)
        return True
    if m == "water_class" or m == "water_change":
        return p.tags.get("period") == "sample"
    if m == "data_quality":
        return p.tags.get("period") == "day"
    return False
