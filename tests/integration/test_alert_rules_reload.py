"""Alert rules as configuration, live (issue 14): an escalation chain set in alert-rules.yaml
reaches the section chief; an edit to the file reaches the running worker without a restart; a
broken edit is refused with file and line and changes nothing.

Real services: Tansu and ``envwatch worker`` as a separate process configured through ENVWATCH_*
variables, with the shipped catalogue (deploy/config) and its alert rules copied to a file named
by ``ENVWATCH_ALERT_RULES``, in which ``permit-exceedance`` escalates along ``[duty, chief]``.
Every Weifang receiver (duty officer, section chief, bureau lead, both enterprises) is an env
override (``ENVWATCH_ALERTS_WEBHOOKS``) to one local HTTP receiver with a secret each. Grouping
timers 0 (each transition told at once, as in test_route_reload.py).

The day of test_notify_delivery.py (deploy/config/weifang.yaml permit limits; each exceedance
escalates once, 60 min after it fired, when the outlet's next sample arrives):

1. Hours 1–5: e-wf-01's gas outlet (WF1) NOx 300 at 03:00 fires, escalated 04:00, resolves 05:00.
   The escalation reaches ``chief-weifang`` only — not the duty officer (told of the firing and
   the resolution), not the enterprise (told of its own firing and resolution).
2. A broken edit (``severity: loud``) is refused: the worker logs the file, line and field and
   keeps running the rules it has. Then the chain is edited to ``[duty, lead]``: logged as
   reloaded, same worker process.
3. Hours 6–12: WF2 NOx 150 at 06:00 (escalated 07:00), WF2 SO2 70 at 08:00 (escalated 09:00),
   WF1 NOx 200 at 10:00 (escalated 11:00) — each escalation reaches ``lead-weifang`` only; the
   chief hears nothing more.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import orjson
import pytest

from streams import topics
from streams.embedded import KafkaBroker
from tests.integration.test_notify_delivery import WF1, WF2, Receiver, day_samples
from tests.integration.worker_support import (
    CATALOGUE,
    WorkerProcess,
    produce,
    wait_until,
    worker_env,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(170)]

NAMES = (
    "duty-weifang",
    "chief-weifang",
    "lead-weifang",
    "enterprise-e-wf-01",
    "enterprise-e-wf-02",
)
SECRETS = {n: f"secret-of-{n}" for n in NAMES}
PERMIT = "permit-exceedance"
ESC = "escalated"
FIRE, CLEAR = ("firing", "condition_met_no_wait"), ("resolved", "clear_condition_met")


def with_chain(text: str, chain: str) -> str:
    """``text`` with ``escalation: chain`` added to permit-exceedance (its critical_ratio line)."""
    lines = text.splitlines(keepends=True)
    (i,) = [i for i, ln in enumerate(lines) if ln.startswith("    critical_ratio: 1.5")]
    return "".join([*lines[: i + 1], f"    escalation: {chain}\n", *lines[i + 1 :]])


def test_an_escalation_chain_from_the_rules_file_and_its_edit_reach_the_running_worker(
    kafka_broker: KafkaBroker, topic_prefix: str, tmp_path: Path
) -> None:
    shipped = (CATALOGUE / "alert-rules.yaml").read_text(encoding="utf-8")
    rules = tmp_path / "rules" / "alert-rules.yaml"
    rules.parent.mkdir()
    rules.write_text(with_chain(shipped, "[duty, chief]"), encoding="utf-8")
    config = tmp_path / "config"
    shutil.copytree(CATALOGUE, config)

    receiver = Receiver(SECRETS)
    receiver.start()
    readings = topics.name(topics.READINGS, topic_prefix)
    env = worker_env(
        kafka_broker.url,
        topic_prefix,
        tmp_path,
        influx_url=None,
        ENVWATCH_CONFIG_DIR=str(config),
        ENVWATCH_ALERT_RULES=str(rules),
        ENVWATCH_CONFIG_POLL="1",
        ENVWATCH_OUTBOX_PATH=str(tmp_path / "outbox.db"),
        ENVWATCH_ALERTS_WEBHOOKS=orjson.dumps(
            {
                n: {"url": f"{receiver.url}/{n}", "secret": s, "timeout_seconds": 2}
                for n, s in SECRETS.items()
            }
        ).decode(),
        ENVWATCH_ALERTS_GROUPING__GROUP_WAIT_SECONDS="0",
        ENVWATCH_ALERTS_GROUPING__GROUP_INTERVAL_SECONDS="0",
    )
    worker = WorkerProcess(env, tmp_path / "worker.log")

    def told(who: str) -> list[tuple[str, str, str, str, int]]:
        """(source, factor, state, reason, hour) of the permit alerts ``who`` accepted."""
        return [
            (src, factor, state, reason, hour)
            for path, src, rule, factor, state, reason, hour in receiver.delivered()
            if path == who and rule == PERMIT
        ]

    broken = with_chain(shipped, "[duty, lead]").replace(
        "    severity: critical\n", "    severity: loud\n", 1
    )

    async def scenario() -> int | None:
        await topics.ensure_topics(kafka_broker.url, 1, topic_prefix)
        worker.start()
        await produce(kafka_broker.bootstrap, readings, day_samples(range(1, 6)))
        await wait_until(lambda: (WF1, "nox", *CLEAR, 5) in told("duty-weifang"), within=60)
        await wait_until(lambda: told("chief-weifang") != [], within=10)
        pid = worker.popen.pid if worker.popen is not None else None

        rules.write_text(broken, encoding="utf-8")
        await wait_until(lambda: "alert rules reload rejected" in worker.tail(400), within=20)
        rules.write_text(with_chain(shipped, "[duty, lead]"), encoding="utf-8")
        await wait_until(lambda: "alert rules reloaded" in worker.tail(400), within=20)

        await produce(kafka_broker.bootstrap, readings, day_samples(range(6, 13)))
        await wait_until(lambda: len(told("lead-weifang")) >= 3, within=60)
        await wait_until(lambda: (WF1, "nox", *CLEAR, 11) in told("duty-weifang"), within=30)
        await asyncio.sleep(2.0)  # anything extra or misrouted would arrive now
        assert worker.alive()
        assert worker.popen is not None
        assert worker.popen.pid == pid, "the worker was restarted"
        return pid

    try:
        asyncio.run(scenario())
    except AssertionError:
        print(worker.tail(80))
        raise
    finally:
        worker.stop()
        receiver.stop()
    log = worker.tail(100_000)
    assert receiver.bad == [], "every signature verifies with the receiver's own secret"

    # 1. the chain of the file: the chief is told of the escalation, and of nothing else
    assert told("chief-weifang") == [(WF1, "nox", "firing", ESC, 4)]
    # 3. after the edit the lead gets the escalations, the chief nothing more
    assert told("lead-weifang") == sorted(
        [
            (WF1, "nox", "firing", ESC, 11),
            (WF2, "nox", "firing", ESC, 7),
            (WF2, "so2", "firing", ESC, 9),
        ]
    )
    # the first line (the duty officer) and the enterprises are never told of an escalation
    assert [
        t for n in NAMES for t in told(n) if t[3] == ESC and n[:4] not in ("chie", "lead")
    ] == []
    assert told("duty-weifang") == sorted(
        [
            (WF1, "nox", *FIRE, 3),
            (WF1, "nox", *CLEAR, 5),
            (WF1, "nox", *FIRE, 10),
            (WF1, "nox", *CLEAR, 11),
            (WF2, "nox", *FIRE, 6),
            (WF2, "nox", *CLEAR, 7),
            (WF2, "nox", *FIRE, 12),
            (WF2, "so2", *FIRE, 8),
            (WF2, "so2", *CLEAR, 9),
        ]
    )
    assert told("enterprise-e-wf-01") == sorted(
        [
            (WF1, "nox", *FIRE, 3),
            (WF1, "nox", *CLEAR, 5),
            (WF1, "nox", *FIRE, 10),
            (WF1, "nox", *CLEAR, 11),
        ]
    )
    assert {t[0] for t in told("enterprise-e-wf-02")} == {WF2}
    # 2. the broken edit named by file, line and field; the good one applied without a restart
    line = broken.splitlines().index("    severity: loud") + 1
    assert f"{rules}:{line}: rules[2].severity: " in log  # water-worse-than-v, the first critical
    assert "alert rules reloaded" in log
