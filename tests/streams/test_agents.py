"""Agents under Faust's own test context (``agent.test_context()``: an in-memory channel, no broker).

The store agent turns evaluation records into line protocol in the sink's spool, and the notify
agent records every transition once in ``alerts.jsonl``. Both run exactly as in the worker; only
their input channel is Faust's in-memory test channel.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from alerts.model import AlertState, Reason, Severity, Transition, TransitionKind
from rules import evaluate as engine
from streams.app import build
from streams.settings import Settings
from streams.wire import points_bytes


def _pipeline(tmp_path: Path, agents: str) -> Any:
    settings = Settings(
        kafka="kafka://127.0.0.1:1",  # never contacted: the test context has no broker
        app_id="agents-test",
        agents=agents,
        config_dir=None,
        data_dir=tmp_path / "faust",
        spool_dir=tmp_path / "spool",
        alerts_log=tmp_path / "alerts.jsonl",
        outbox_path=None,
        sink_flush_interval=0.05,
        batch_within=0.05,
    )
    return build(settings)


async def _until(predicate: Any, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met")


def test_store_agent_writes_line_protocol_at_the_event_time(tmp_path: Path) -> None:
    p = _pipeline(tmp_path, "store")
    at = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)  # 09:00 Beijing
    point = engine.Point(
        "reading", {"kind": "air", "locality": "weifang", "source": "aq-1"}, {"pm25": 35.0}, at
    )

    async def run() -> None:
        async with p.app.agents["store"].test_context() as agent:
            await agent.put(points_bytes([point]))
            await _until(lambda: p.sink.written + p.sink.spooled >= 1)
        p.sink.close()

    asyncio.run(run())
    text = "".join(f.read_text() for f in sorted((tmp_path / "spool").glob("*.lp*")))
    # 2026-11-22T01:00:00Z = 1795309200 s since the epoch
    assert (
        text.strip()
        == "reading,kind=air,locality=weifang,source=aq-1 pm25=35.0 1795309200000000000"
    )


def test_store_agent_sets_aside_a_point_it_cannot_write_and_keeps_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A point without a field cannot be line protocol: it goes to the dead-letter topic with its
    reason, and the batch's other points are written (once, one bad point lost the batch)."""
    p = _pipeline(tmp_path, "store")
    at = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)
    good = engine.Point(
        "reading", {"kind": "air", "locality": "weifang", "source": "aq-1"}, {"pm25": 35.0}, at
    )
    empty = engine.Point("emission_hour", {"locality": "weifang", "source": "g1"}, {}, at)
    sent: list[tuple[str, bytes]] = []

    async def send(topic: str, key: Any, value: bytes, *_: Any) -> None:
        sent.append((topic, value))

    monkeypatch.setattr(p.app.producer, "send", send)

    async def run() -> None:
        async with p.app.agents["store"].test_context() as agent:
            await agent.put(points_bytes([empty, good]))
            await _until(lambda: p.sink.written + p.sink.spooled >= 1)
        p.sink.close()

    asyncio.run(run())
    text = "".join(f.read_text() for f in sorted((tmp_path / "spool").glob("*.lp*")))
    assert (
        text.strip()
        == "reading,kind=air,locality=weifang,source=aq-1 pm25=35.0 1795309200000000000"
    )
    [(topic, value)] = sent
    assert topic.endswith("dead-letter")
    dead = orjson.loads(value)
    assert dead["stage"] == "store"
    assert dead["reason"] == "ValueError: line for 'emission_hour' has no field"


def _transition(at: datetime) -> Transition:
    return Transition(
        id="t-1",
        kind=TransitionKind.ALERT,
        fingerprint="fp",
        labels={
            "rule": "ambient-exceedance",
            "source": "aq-1",
            "factor": "o3",
            "locality": "weifang",
        },
        annotations={"summary": "空气质量超标"},
        state=AlertState.FIRING,
        previous_state=AlertState.PENDING,
        reason=Reason(next(iter(Reason)).value),
        at=at,
        severity=Severity.WARNING,
        locality="weifang",
        source="aq-1",
        value=250.0,
        limit=200.0,
    )


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_notify_agent_logs_each_transition_once(tmp_path: Path) -> None:
    p = _pipeline(tmp_path, "notify")
    t = _transition(datetime(2026, 11, 22, 1, tzinfo=UTC))
    seen: list[Transition] = []
    p.transition_observers.append(seen.append)

    async def run() -> None:
        async with p.app.agents["notify"].test_context() as agent:
            await agent.put(orjson.dumps(t.to_dict()))
            await agent.put(orjson.dumps(t.to_dict()))  # redelivered after a restart
            await agent.put(b"not a transition")  # logged and skipped, never fatal
            await _until(lambda: len(seen) >= 2)

    asyncio.run(run())
    lines = (tmp_path / "alerts.jsonl").read_text().splitlines()
    assert len(lines) == 1
    record = orjson.loads(lines[0])
    assert (record["kind"], record["state"], record["locality"], record["source"]) == (
        "alert",
        "firing",
        "weifang",
        "aq-1",
    )
    assert record["at"] == "2026-11-22T01:00:00+00:00"


def test_deadletter_agent_counts_bad_input_as_points(tmp_path: Path) -> None:
    from streams.records import DeadLetter

    p = _pipeline(tmp_path, "deadletter")
    dl = DeadLetter.build(
        "bridge", "invalid sample: time: Field required", b"{}", origin="env/air/x/y"
    )

    async def run() -> None:
        async with p.app.agents["deadletter"].test_context() as agent:
            await agent.put(dl.to_bytes())
            await _until(lambda: p.counters["dead_letters"] >= 1)
        p.sink.close()

    asyncio.run(run())
    text = "".join(f.read_text() for f in sorted((tmp_path / "spool").glob("*.lp*")))
    assert text.startswith("dead_letter,stage=bridge ")
    assert 'reason="invalid sample: time: Field required"' in text
    assert 'origin="env/air/x/y"' in text
