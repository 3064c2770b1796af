"""A storm is one message per group, through a kill -9 of the worker (issue 14).

Real services: Tansu and ``envwatch worker`` as a separate process with the shipped catalogue
and one signed webhook per catalogue receiver pointing at the verifying, deduplicating
:class:`tests.integration.test_notify_delivery.Receiver`.

The scenario (Weifang's two gas outlets, deploy/config/weifang.yaml; samples hourly, O2 at each
outlet's reference so corrected = measured; normal values as in test_notify_delivery, all below
every permit limit): at DAY 03:00 *every* factor of both outlets exceeds its permit — WF1 NOx
200 > 150, SO2 80 > 50, PM 30 > 20; WF2 NOx 120 > 100, SO2 70 > 50, PM 15 > 10 — six
permit-exceedance alerts firing at once (for = 0), all in the duty officer's group
``{locality="weifang", rule="permit-exceedance"}`` and three in each enterprise's group
``{enterprise=…, rule="permit-exceedance"}`` (docs/routing.md). From 04:00 everything is
normal again; the 04:00 sample first moves the watermark to 04:00, where each alert is 60 min
unacknowledged (escalate_after 60 min [MEM], alerts/rules.py): six escalations, then the six
resolutions.

Expected (Alertmanager timers, defaults 30 s / 5 min / 4 h, on event time):

* first notification of each group at 03:00:30 (group_wait), listing its firing alerts: duty 6,
  each enterprise 3 — three messages, not twelve; nothing reaches anyone before: hours 01–03 are
  produced, then the worker is killed once the three are accepted (so the flush came from the
  worker's timer: no later transition existed), restarted, and 04:00 … 06:00 produced;
* the six escalations at 04:00, each its own message, to the escalation chain's receiver — the
  duty officer (the shipped rules name no chain) — never to an enterprise;
* the six resolutions, in each group at the next group_interval tick 03:00:30 + 12 × 5 min =
  04:00:30: duty one message (6 resolved), each enterprise one (3 resolved);
* 3 + 6 + 3 = 12 notifications, each key accepted once, nothing else (a flush repeated after the
  kill would carry the same id; a different one would be a duplicate message).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams import topics
from streams.embedded import KafkaBroker
from tests.integration.test_notify_delivery import (
    DAY,
    WF1,
    WF2,
    Receiver,
    secrets_for_catalogue,
    webhooks_json,
)
from tests.integration.worker_support import (
    WorkerProcess,
    produce,
    read_all,
    sample,
    wait_until,
    worker_env,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(200)]

STORM_HOUR = 3
WF1_STORM = {"nox": 200.0, "so2": 80.0, "pm": 30.0}
WF2_STORM = {"nox": 120.0, "so2": 70.0, "pm": 15.0}
DUTY, ENT1, ENT2 = "duty-weifang", "enterprise-e-wf-01", "enterprise-e-wf-02"


def samples(hours: range) -> list[dict[str, Any]]:
    out = []
    for h in hours:
        at = DAY + timedelta(hours=h)
        storm = h == STORM_HOUR
        wf1 = WF1_STORM if storm else {"nox": 80.0 + h, "so2": 20.0 + h % 7, "pm": 5.0 + h % 3}
        wf2 = WF2_STORM if storm else {"nox": 50.0 + h, "so2": 20.0 + h % 5, "pm": 4.0 + h % 4}
        out.append(sample("emission", "weifang", WF1, at, {**wf1, "o2": 3.5, "flow": 9000.0 + h}))
        out.append(sample("emission", "weifang", WF2, at, {**wf2, "o2": 9.0, "flow": 5000.0 + h}))
    return out


def summary(body: dict[str, Any]) -> tuple[str, str, str, int, str]:
    """(receiver, reason, status, alerts told of, event time HH:MM:SS) of one accepted body."""
    ew = body["envwatch"]
    ann = body["commonAnnotations"]
    told = len(orjson.loads(ann["told"])) if "told" in ann else 1
    at = ew["at"].replace("Z", "+00:00")
    local = datetime.fromisoformat(at).astimezone(DAY.tzinfo)
    return (body["path"], ew["reason"], body["status"], told, f"{local:%H:%M:%S}")


async def storm_on_alert_events(bootstrap: str, topic: str) -> bool:
    """The six firing transitions of the storm are on ``alert-events``."""
    records = await read_all(bootstrap, topic)
    return sum(b'"state":"firing"' in r[3] for r in records) >= 6


@pytest.mark.parametrize("kill", ["after_first_messages", "before_the_flush"])
def test_storm_is_one_message_per_group_through_a_kill(
    kafka_broker: KafkaBroker, topic_prefix: str, tmp_path: Path, kill: str
) -> None:
    """``after_first_messages``: the worker is killed once the groups' first messages are
    accepted (its timer flushed them). ``before_the_flush``: killed as soon as the storm's
    transitions are on ``alert-events`` — normally before the timer's quiet period (2 s) is
    over, so the groups are pending in the dead worker: the restarted one rebuilds them from
    its snapshot and the replay of ``alert-events`` and flushes them at the same due time. The
    outcome must be the same either way."""
    secrets = secrets_for_catalogue()
    receiver = Receiver(secrets)
    receiver.start()
    readings = topics.name(topics.READINGS, topic_prefix)
    env = worker_env(
        kafka_broker.url,
        topic_prefix,
        tmp_path,
        influx_url=None,
        ENVWATCH_OUTBOX_PATH=str(tmp_path / "outbox.db"),
        ENVWATCH_ALERTS_WEBHOOKS=webhooks_json(secrets, receiver.url),
    )
    worker = WorkerProcess(env, tmp_path / "worker.log")

    async def scenario() -> None:
        await topics.ensure_topics(kafka_broker.url, 1, topic_prefix)
        worker.start()
        await produce(kafka_broker.bootstrap, readings, samples(range(1, STORM_HOUR + 1)))
        if kill == "after_first_messages":
            # the three first notifications of the groups, flushed by the worker's timer
            await wait_until(lambda: len(receiver.accepted) >= 3, within=90, interval=0.2)
            await asyncio.sleep(3.0)  # nothing else may come: everything else waits for 04:00
            assert len(receiver.accepted) == 3
        else:
            events = topics.name(topics.ALERT_EVENTS, topic_prefix)
            deadline = asyncio.get_running_loop().time() + 90
            while not await storm_on_alert_events(kafka_broker.bootstrap, events):
                assert asyncio.get_running_loop().time() < deadline, "no storm on alert-events"
        worker.kill()
        print(f"killed ({kill}) with {len(receiver.accepted)} messages accepted")
        worker.start()
        await produce(kafka_broker.bootstrap, readings, samples(range(STORM_HOUR + 1, 7)))
        await wait_until(lambda: len(receiver.accepted) >= 12, within=90, interval=0.2)
        await asyncio.sleep(5.0)  # a duplicate or a stray message would arrive now

    try:
        asyncio.run(scenario())
    except AssertionError:
        print(worker.tail(80))
        print(sorted(summary(b) for b in receiver.accepted.values()))
        raise
    finally:
        worker.stop()
        receiver.stop()
    got = Counter(summary(b) for b in receiver.accepted.values())
    print(sorted(got.items()))
    assert receiver.bad == []
    assert got == Counter(
        {
            (DUTY, "grouped", "firing", 6, "03:00:30"): 1,
            (ENT1, "grouped", "firing", 3, "03:00:30"): 1,
            (ENT2, "grouped", "firing", 3, "03:00:30"): 1,
            (DUTY, "escalated", "firing", 1, "04:00:00"): 6,
            (DUTY, "grouped", "resolved", 6, "04:00:30"): 1,
            (ENT1, "grouped", "resolved", 3, "04:00:30"): 1,
            (ENT2, "grouped", "resolved", 3, "04:00:30"): 1,
        }
    )
    # every alert's resolution was delivered to the duty officer and to its own enterprise
    bodies = list(receiver.accepted.values())
    fired = {
        t["fingerprint"]
        for b in bodies
        if b["path"] == DUTY and b["envwatch"]["reason"] == "grouped" and b["status"] == "firing"
        for t in orjson.loads(b["commonAnnotations"]["told"])
    }
    for path in (DUTY, ENT1, ENT2):
        resolved = [
            t
            for b in bodies
            if b["path"] == path and b["status"] == "resolved"
            for t in orjson.loads(b["commonAnnotations"]["told"])
        ]
        assert {t["state"] for t in resolved} == {"resolved"}
        if path == DUTY:
            assert {t["fingerprint"] for t in resolved} == fired
    # each key once: a flush repeated after the kill carried the id it had before
    assert set(receiver.raw.values()) == {1}
