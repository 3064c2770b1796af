"""The wire form of evaluation points (streams.agents.evaluate) against the domain's own ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson

from rules import evaluate as engine
from streams.agents.evaluate import MERGEABLE
from streams.wire import (
    MERGED_MAX_BYTES,
    decode_points,
    decode_sample,
    merge_point_records,
    point_dict,
    point_id,
    points_bytes,
)

BEIJING = ZoneInfo("Asia/Shanghai")


def _points() -> list[engine.Point]:
    state = None
    out: list[engine.Point] = []
    t0 = datetime(2026, 2, 28, 1, tzinfo=BEIJING)
    for h in range(30):  # crosses the HJ 633 edition switch at 2026-03-01 00:00 Beijing
        vals = dict.fromkeys(("pm25", "pm10", "so2", "no2", "o3"), (30.0 + h, "N"))
        vals["co"] = (0.8, "N")
        s = engine.Sample("air", "weifang", "aq-1", t0 + timedelta(hours=h), "hour", vals)
        state, pts = engine.step(state, s, engine.SourceContext())
        out += pts
    return out


def test_wire_id_is_the_domain_id_and_time_round_trips() -> None:
    points = _points()
    assert len(points) > 60
    decoded = decode_points(points_bytes(points))
    assert [point_id(d) for d in decoded] == [p.id for p in points]
    assert all("id" not in d for d in decoded)  # derivable: not sent
    for d, p in zip(decoded, points, strict=True):
        assert datetime.fromisoformat(d["time"]) == p.time
        # nanoseconds since the epoch of the event time: the InfluxDB timestamp
        assert d["ns"] == int((p.time - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * 10**9
        assert d["measurement"] == p.measurement
        assert d["tags"] == dict(p.tags)


def test_one_point_object_is_accepted_as_well_as_an_array() -> None:
    p = _points()[0]
    assert decode_points(orjson.dumps(point_dict(p))) == decode_points(points_bytes([p]))


def test_decode_sample_reads_the_bridge_payload() -> None:
    body = {
        "schema": 1,
        "kind": "air",
        "locality": "weifang",
        "source": "aq-1",
        "time": "2026-11-22T09:00:00+08:00",
        "interval": "hour",
        "values": {"pm25": {"value": 35.0, "flag": "N"}, "so2": {"value": None, "flag": "D"}},
    }
    s = decode_sample(orjson.dumps(body))
    assert s.time == datetime(2026, 11, 22, 1, tzinfo=UTC)
    assert s.values == {"pm25": (35.0, "N"), "so2": (None, "D")}


def test_equal_instants_in_two_zones_keep_their_own_time_string() -> None:
    """08:00 in Beijing and 00:00 UTC are the same instant (equal datetimes); each point must
    still carry the offset it was made with — the locality stage matches readings to
    exceedances by that string."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from rules.evaluate import Point

    bj = datetime(2026, 6, 1, 8, tzinfo=ZoneInfo("Asia/Shanghai"))
    utc = datetime(2026, 6, 1, 0, tzinfo=UTC)
    assert bj == utc
    first = decode_points(points_bytes([Point("reading", {"source": "a"}, {"v": 1.0}, bj)]))
    second = decode_points(points_bytes([Point("reading", {"source": "a"}, {"v": 1.0}, utc)]))
    assert first[0]["time"] == "2026-06-01T08:00:00+08:00"
    assert second[0]["time"] == "2026-06-01T00:00:00+00:00"
    assert point_id(first[0]) == point_id(second[0])  # the id is the instant in UTC


def test_merge_point_records_joins_a_keys_point_arrays_in_order() -> None:
    outs = [
        ("evaluations", b"weifang", b'[{"a":1},{"a":2}]'),
        ("aggregates", b"weifang", b'[{"a":1}]'),
        ("dead-letter", b"x", b'{"reason":"bad"}'),
        ("evaluations", b"laixi", b'[{"b":1}]'),
        ("evaluations", b"weifang", b'[{"a":3}]'),
        ("aggregates", b"weifang", b'[{"a":3}]'),
    ]
    assert merge_point_records(outs, MERGEABLE) == [
        ("evaluations", b"weifang", b'[{"a":1},{"a":2},{"a":3}]'),
        ("aggregates", b"weifang", b'[{"a":1},{"a":3}]'),
        ("dead-letter", b"x", b'{"reason":"bad"}'),
        ("evaluations", b"laixi", b'[{"b":1}]'),
    ]


def test_merge_point_records_starts_a_new_record_at_the_size_limit() -> None:
    point = b'{"p":"' + b"x" * 1000 + b'"}'  # 1 008 bytes
    per_record = (MERGED_MAX_BYTES - 2) // (len(point) + 1)  # "[" p "," p ... "]"
    outs = [("evaluations", b"k", b"[" + point + b"]") for _ in range(per_record + 3)]
    merged = merge_point_records(outs, MERGEABLE)
    assert [len(v) <= MERGED_MAX_BYTES for _, _, v in merged] == [True, True]
    assert merged[1][2] == b"[" + b",".join([point] * 3) + b"]"
