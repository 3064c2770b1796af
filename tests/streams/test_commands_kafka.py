"""People's commands through the real worker: Tansu (Kafka protocol) and ``envwatch worker`` as
its own process with the shipped catalogue, topics under a per-test prefix.

The bypass monitor ``mon-wf-bypass-01`` (deploy/config/weifang.yaml, enterprise ``e-wf-02``)
opens at 09:00 Beijing on Tuesday 1 December 2026 (fires at once); the duty officer's
acknowledgement is produced to ``<prefix>aggregates`` keyed ``weifang`` (as the alerts service
does, streams.commands.encode_command) once the firing is on ``<prefix>alert-events``; then the
enterprise declares a maintenance window for the monitor 10:30–12:00 and an invalid command
arrives. Expected: the ack takes effect at 09:00 (the monitor's data time, not the 5 December
issue time), each result is on ``<prefix>alert-commands`` keyed ``weifang``, the monitor's
re-opening at 11:00 (after a close at 10:00) is suppressed by the window and names it, and the
invalid command is a dead letter with its reason.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from alerts.commands import Command, CommandResult, maintenance_id
from streams import topics
from streams.commands import encode_command
from streams.embedded import KafkaBroker
from tests.integration.worker_support import (
    BEIJING,
    WorkerProcess,
    produce,
    read_all,
    sample,
    settle,
    worker_env,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

TUE = datetime(2026, 12, 1, tzinfo=BEIJING)
H = timedelta(hours=1)
ISSUED = datetime(2026, 12, 5, 9, tzinfo=BEIJING)
BYPASS = "mon-wf-bypass-01"


def bypass(hour: int, is_open: int) -> dict[str, Any]:
    return sample("monitor", "weifang", BYPASS, TUE + hour * H, {"bypass_open": is_open})


def command(n: int, action: str, **kw: Any) -> Command:
    base = {
        "id": f"kafka-cmd-{n}",
        "action": action,
        "locality": "weifang",
        "actor": "值班员",
        "role": "duty",
        "issued_at": ISSUED,
    }
    return Command.model_validate({**base, **kw})


async def send(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for key, value in records:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


def test_commands_reach_the_locality_stage_and_come_back_on_alert_commands(
    kafka_broker: KafkaBroker, topic_prefix: str, tmp_path: Path
) -> None:
    prefix = topic_prefix
    readings = topics.name(topics.READINGS, prefix)
    aggregates = topics.name(topics.AGGREGATES, prefix)
    events_topic = topics.name(topics.ALERT_EVENTS, prefix)

    def bypass_events(records: list[Any]) -> list[dict[str, Any]]:
        out = [orjson.loads(r[3]) for r in records]
        return [e for e in out if e["labels"].get("rule") == "bypass-open"]

    async def scenario() -> tuple[list[Any], list[Any], list[Any]]:
        await topics.ensure_topics(kafka_broker.url, 1, prefix)
        env = worker_env(kafka_broker.url, prefix, tmp_path, influx_url=None)
        worker = WorkerProcess(env, tmp_path / "worker.log")
        worker.start()
        try:
            await produce(kafka_broker.bootstrap, readings, [bypass(9, 1)])

            async def seen(n: int) -> list[dict[str, Any]]:
                """Wait until the locality stage wrote ``n`` bypass transitions."""
                deadline = asyncio.get_running_loop().time() + 90
                while True:
                    got = bypass_events(await read_all(kafka_broker.bootstrap, events_topic))
                    if len(got) >= n:
                        return got
                    assert asyncio.get_running_loop().time() < deadline, f"{got} after 90 s"
                    await asyncio.sleep(0.5)

            fp = (await seen(1))[0]["fingerprint"]
            ack = command(1, "ack", fingerprint=fp, note="已通知企业")
            await send(kafka_broker.bootstrap, aggregates, [encode_command(ack)])
            await seen(2)
            await produce(kafka_broker.bootstrap, readings, [bypass(10, 0)])
            await seen(3)
            window = command(
                2,
                "maintenance_start",
                source=BYPASS,
                starts_at=TUE + 10.5 * H,
                ends_at=TUE + 12 * H,
                role="enterprise",
                enterprise="e-wf-02",
            )
            key, value = encode_command(window)
            bad = value.replace(b"maintenance_start", b"maintenance_forever")
            await send(kafka_broker.bootstrap, aggregates, [(key, value), (key, bad)])
            await produce(kafka_broker.bootstrap, readings, [bypass(11, 1)])
            results = await settle(
                kafka_broker.bootstrap, topics.name(topics.ALERT_COMMANDS, prefix), quiet=4
            )
            events = await settle(kafka_broker.bootstrap, events_topic, quiet=2)
            dead = await read_all(kafka_broker.bootstrap, topics.name(topics.DEAD_LETTER, prefix))
            return results, events, dead
        finally:
            worker.stop()

    results, events, dead = asyncio.run(scenario())
    assert {r[2] for r in results} == {b"weifang"}
    parsed = [CommandResult.from_bytes(r[3]) for r in results]
    assert [(r.id, r.status, r.at) for r in parsed] == [
        ("kafka-cmd-1", "applied", TUE + 9 * H),
        # after the 10:00 sample: the locality's watermark
        ("kafka-cmd-2", "applied", TUE + 10 * H),
    ]
    window_id = maintenance_id(BYPASS, "kafka-cmd-2")
    assert [s.id for s in parsed[1].silences] == [window_id]
    got = [
        (e["reason"], datetime.fromisoformat(e["at"]), e["actor"], e["suppressed_by"])
        for e in bypass_events(events)
    ]
    assert got == [
        ("condition_met_no_wait", TUE + 9 * H, None, []),
        ("acknowledged", TUE + 9 * H, "值班员", []),
        ("clear_condition_met", TUE + 10 * H, None, []),
        ("condition_met_no_wait", TUE + 11 * H, None, [window_id]),
    ]
    reasons = [orjson.loads(d[3])["reason"] for d in dead]
    assert [r for r in reasons if r.startswith("invalid command")], reasons
