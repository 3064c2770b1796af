"""A route added to the catalogue reaches its receiver after a reload, without a restart (issue 14).

Real services: Tansu and ``envwatch worker`` as a separate process, configured through ENVWATCH_*
variables, with a copy of the shipped catalogue (deploy/config) in which enterprise e-wf-01 has no
``notify:`` route. Its HMAC key is in the worker's environment from the start
(``ENVWATCH_SECRET_HOOK_E_WF_01``, the reference the shipped route names); the duty officer of
Weifang is an env override (``ENVWATCH_ALERTS_WEBHOOKS``) to the same local HTTP receiver, so the
test knows when the worker has handled the first part. Grouping timers 0 (each transition told at
once, as in test_fault_notify.py).

1. Hours 1–5 of the day of test_notify_delivery.py (e-wf-01's gas outlet: NOx 300 at 03:00 fires,
   escalated at 04:00, 85 at 05:00 resolves; e-wf-02's outlet stays within its limits until
   06:00). The duty officer is told of the firing and the resolution (the escalation goes to the
   rule's chain, docs/routing.md); enterprise-e-wf-01's two notifications are *held* — it has no
   channel — and the receiver's endpoint ``/enterprise-e-wf-01`` gets nothing.
2. The route is written into the catalogue copy's weifang.yaml. Within the poll interval
   (``ENVWATCH_CONFIG_POLL=1``) the worker reloads the catalogue, rebuilds its channels and sends
   the two held notifications to the new route (its configuration changed); the worker process is
   the same (no restart).
3. Hours 6–12: e-wf-01's outlet fires again at 10:00 (NOx 200) and resolves at 11:00 (91) — both
   reach ``/enterprise-e-wf-01`` at once; e-wf-02's alerts never do (its route is an e-mail
   address without an SMTP server: held).
"""

from __future__ import annotations

import asyncio
import shutil
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from streams import topics
from streams.embedded import KafkaBroker
from tests.integration.test_notify_delivery import DAY, WF1, Receiver, day_samples
from tests.integration.worker_support import (
    CATALOGUE,
    WorkerProcess,
    produce,
    wait_until,
    worker_env,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(170)]

ROUTE = (
    '- {channel: webhook, target: "https://example.invalid/hooks/e-wf-01", '
    "secret: {env: ENVWATCH_SECRET_HOOK_E_WF_01}}"
)
SECRETS = {"duty-weifang": "secret-of-duty", "enterprise-e-wf-01": "secret-of-e-wf-01"}


def hour_of(ew: dict[str, str]) -> int:
    """The hour label of a notification's event time (``DAY + h``)."""
    at = datetime.fromisoformat(ew["at"].replace("Z", "+00:00"))
    return round((at - DAY).total_seconds() / 3600)


def told(receiver: Receiver, endpoint: str) -> list[tuple[str, str, int]]:
    """(state, reason, hour label) of every notification of WF1's outlet ``endpoint``
    accepted, by hour; checks that nothing of another enterprise reached e-wf-01."""
    out = []
    for body in receiver.accepted.values():
        if body["path"] != endpoint:
            continue
        ew = body["envwatch"]
        if endpoint == "enterprise-e-wf-01":
            assert ew["source"] == WF1, "another enterprise's alert reached e-wf-01"
        elif ew["source"] != WF1:
            continue
        out.append((ew["state"], ew["reason"], hour_of(ew)))
    return sorted(out, key=lambda x: (x[2], x[0] == "resolved"))


def test_route_added_to_the_catalogue_reaches_its_receiver_without_a_restart(
    kafka_broker: KafkaBroker, topic_prefix: str, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    shutil.copytree(CATALOGUE, config)
    weifang = config / "weifang.yaml"
    shipped = weifang.read_text(encoding="utf-8")
    assert f"    notify:\n      {ROUTE}\n" in shipped
    weifang.write_text(shipped.replace(f"    notify:\n      {ROUTE}\n", "", 1), encoding="utf-8")

    receiver = Receiver(SECRETS)
    receiver.start()
    readings = topics.name(topics.READINGS, topic_prefix)
    env = worker_env(
        kafka_broker.url,
        topic_prefix,
        tmp_path,
        influx_url=None,
        ENVWATCH_CONFIG_DIR=str(config),
        ENVWATCH_CONFIG_POLL="1",
        ENVWATCH_OUTBOX_PATH=str(tmp_path / "outbox.db"),
        ENVWATCH_SECRET_HOOK_E_WF_01=SECRETS["enterprise-e-wf-01"],
        ENVWATCH_ALERTS_WEBHOOKS=orjson.dumps(
            {
                "duty-weifang": {
                    "url": f"{receiver.url}/duty-weifang",
                    "secret": SECRETS["duty-weifang"],
                    "timeout_seconds": 2,
                }
            }
        ).decode(),
        ENVWATCH_ALERTS_GROUPING__GROUP_WAIT_SECONDS="0",
        ENVWATCH_ALERTS_GROUPING__GROUP_INTERVAL_SECONDS="0",
    )
    worker = WorkerProcess(env, tmp_path / "worker.log")

    def duty_resolved(hour: int) -> bool:
        return ("resolved", "clear_condition_met", hour) in told(receiver, "duty-weifang")

    async def scenario() -> tuple[list[tuple[str, str, int]], int | None]:
        await topics.ensure_topics(kafka_broker.url, 1, topic_prefix)
        worker.start()
        await produce(kafka_broker.bootstrap, readings, day_samples(range(1, 6)))
        await wait_until(lambda: duty_resolved(5), within=60)
        await asyncio.sleep(3.0)  # e-wf-01's notifications are held meanwhile, not sent
        before = told(receiver, "enterprise-e-wf-01")
        pid = worker.popen.pid if worker.popen is not None else None

        # the operator adds the route (a real URL this time) to the catalogue file
        route = ROUTE.replace(
            "https://example.invalid/hooks/e-wf-01", f"{receiver.url}/enterprise-e-wf-01"
        )
        text = weifang.read_text(encoding="utf-8")
        anchor = (
            "      red: [{text: 锅炉负荷降至50%，停用备用锅炉, reduction_pct: {nox: 30, pm: 30}}]\n"
        )
        assert anchor in text
        weifang.write_text(
            text.replace(anchor, f"{anchor}    notify:\n      {route}\n", 1), encoding="utf-8"
        )
        await wait_until(lambda: len(told(receiver, "enterprise-e-wf-01")) >= 2, within=30)
        await produce(kafka_broker.bootstrap, readings, day_samples(range(6, 13)))
        await wait_until(lambda: len(told(receiver, "enterprise-e-wf-01")) >= 4, within=60)
        await wait_until(lambda: duty_resolved(11), within=30)
        await asyncio.sleep(2.0)  # anything extra would arrive now
        assert worker.alive()
        assert worker.popen is not None
        assert worker.popen.pid == pid, "the worker was restarted"
        return before, pid

    try:
        before, _pid = asyncio.run(scenario())
    except AssertionError:
        print(worker.tail(80))
        raise
    finally:
        worker.stop()
        receiver.stop()
    log = worker.tail(100_000)
    assert receiver.bad == [], "every signature verifies with the receiver's own secret"
    # before the reload the new receiver got nothing: its two notifications were held
    assert before == []
    assert "catalogue reloaded" in log
    assert "channels rebuilt after catalogue reload 1" in log
    # after it: the two held notifications, then the new alert and its resolution, each once
    assert told(receiver, "enterprise-e-wf-01") == [
        ("firing", "condition_met_no_wait", 3),
        ("resolved", "clear_condition_met", 5),
        ("firing", "condition_met_no_wait", 10),
        ("resolved", "clear_condition_met", 11),
    ]
    assert sum(1 for b in receiver.accepted.values() if b["path"] == "enterprise-e-wf-01") == 4
    # the secret never appears in the worker's log
    assert SECRETS["enterprise-e-wf-01"] not in log
