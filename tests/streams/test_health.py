"""streams.health.HealthReporter: a change of state is sent at once, anything else at most every
``repeat`` seconds, to the locality stage (``aggregates``) and the store (``evaluations``)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import orjson

from streams.health import HealthReporter


class Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, dict[str, Any]]] = []

    async def send(self, topic: str, key: bytes, value: bytes, *_rest: object) -> None:
        (point,) = orjson.loads(value)
        self.sent.append((topic, key, point))


def test_changes_at_once_repeats_at_most_every_repeat_seconds() -> None:
    producer = Producer()
    p: Any = SimpleNamespace(
        settings=SimpleNamespace(topic_prefix="x-"), app=SimpleNamespace(producer=producer)
    )
    now = [0.0]
    at = datetime(2026, 12, 3, 7, 0, tzinfo=UTC)
    r = HealthReporter(p, "store@h", repeat=600, clock=lambda: now[0], now=lambda: at)

    async def steps() -> list[bool]:
        out = [await r.update("write", problem=False)]  # first statement: sent
        now[0] = 5
        out.append(await r.update("write", problem=False))  # unchanged: not sent
        out.append(await r.update("write", problem=True, reason="401: x", count=7))  # change
        now[0] = 300
        out.append(await r.update("write", problem=True, reason="401: x", count=90))  # 295 s
        now[0] = 606
        out.append(await r.update("write", problem=True, reason="401: x", count=90))  # 601 s
        out.append(await r.update("rejected", problem=False))  # another condition: its own
        return out

    assert asyncio.run(steps()) == [True, False, True, False, True, True]
    topics = [t for t, _k, _p in producer.sent]
    assert topics == ["x-aggregates", "x-evaluations"] * 4
    assert {k for _t, k, _p in producer.sent} == {b"pipeline"}
    points = [pt for t, _k, pt in producer.sent if t == "x-aggregates"]
    assert [(pt["tags"]["condition"], pt["fields"]["problem"]) for pt in points] == [
        ("write", 0),
        ("write", 1),
        ("write", 1),
        ("rejected", 0),
    ]
    assert points[2]["fields"] == {"problem": 1, "count": 90, "reason": "401: x"}
    assert points[0]["tags"] == {
        "kind": "pipeline",
        "locality": "pipeline",
        "source": "store@h",
        "condition": "write",
    }
