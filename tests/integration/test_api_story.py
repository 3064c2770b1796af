"""The alerts API on the real pipeline: Tansu, a real ``envwatch worker`` process, the API fed
only by the topics (streams/api/kafka.py), commands applied by the real locality stage.

Script (2026-11-10 Beijing, hourly samples, the arithmetic of test_fault_matrix.py: e-wf-01-g1
NOx permit 150, e-wf-02-g1 NOx permit 100; a breach fires at once (``condition_met_no_wait``),
escalates at the source's next sample 60 min later unless acknowledged, resolves at the first
value within the limit):

* hours 1–3: e-wf-01-g1 NOx 81, 82, **300** → its NOx alert fires at 03:00; e-wf-02-g1 normal;
* the Weifang duty token lists it; enterprise e-wf-01 sees it, e-wf-02 does not (its GET is the
  same 404 as an id that does not exist); e-wf-01 acknowledges it with a note → ``applied``;
* hours 4–5: e-wf-01-g1 NOx **260**, 85 → no escalation at 04:00 (acknowledged), resolved 05:00;
* duty declares a maintenance window for e-wf-02-g1 (until 10:00) → ``applied``;
* hours 6–7: e-wf-02-g1 NOx **150**, 57 → its alert fires at 06:00, escalates and resolves at
  07:00, every transition suppressed by the window (the history names it); no receiver is told;
* duty sets a weekly silence for e-wf-01-g1, Tuesdays 08:00–11:00 Beijing (2026-11-10 is a
  Tuesday); hours 8–13: e-wf-01-g1 NOx **300** at 09:00 and at 12:00 → the 09:00 episode (fired
  09:00, escalated and resolved 10:00) is suppressed by the silence, the 12:00 one (fired 12:00,
  escalated and resolved 13:00) is not;
* the API restarted reads the topics again and answers the same alert list.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from rules.catalog import load_catalog
from streams import topics
from streams.api.serve import demo_principals, running_api
from streams.api.settings import ApiSettings
from streams.embedded import KafkaBroker
from tests.integration.worker_support import (
    CATALOGUE,
    WorkerProcess,
    produce,
    until,
    worker_env,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BEIJING = ZoneInfo("Asia/Shanghai")
DAY = datetime(2026, 11, 10, tzinfo=BEIJING)
H = timedelta(hours=1)
WF1, WF2 = "e-wf-01-g1", "e-wf-02-g1"
NOX_WF1 = {3: 300.0, 4: 260.0, 9: 300.0, 12: 300.0}
NOX_WF2 = {6: 150.0}


def samples(hours: range) -> list[dict[str, Any]]:
    out = []
    for h in hours:
        at = DAY + h * H
        for src, nox, o2 in (
            (WF1, NOX_WF1.get(h, 80.0 + h), 3.5),
            (WF2, NOX_WF2.get(h, 50.0 + h), 9.0),
        ):
            values = {"nox": nox, "so2": 20.0 + h % 5, "pm": 4.0 + h % 3, "o2": o2}
            out.append(
                {
                    "schema": 1,
                    "kind": "emission",
                    "locality": "weifang",
                    "source": src,
                    "time": at.isoformat(),
                    "interval": "hour",
                    "values": {f: {"value": v, "flag": "N"} for f, v in values.items()},
                }
            )
    return out


def test_api_story(kafka_broker: KafkaBroker, topic_prefix: str, tmp_path: Path) -> None:
    asyncio.run(_story(kafka_broker, topic_prefix, tmp_path))


async def _story(kafka: KafkaBroker, prefix: str, tmp: Path) -> None:
    await topics.ensure_topics(kafka.url, 1, prefix)
    catalog = load_catalog(CATALOGUE)
    tokens, auth = demo_principals(catalog)
    readings = topics.name(topics.READINGS, prefix)
    worker = WorkerProcess(worker_env(kafka.url, prefix, tmp, influx_url=None), tmp / "w.log")
    worker.start()
    settings = ApiSettings(command_wait=20.0)
    try:
        await produce(kafka.bootstrap, readings, samples(range(1, 4)))
        async with (
            running_api(kafka.url, auth, prefix=prefix, catalog=catalog, settings=settings) as api,
            httpx.AsyncClient(base_url=api.url, timeout=30) as c,
        ):

            def h(who: str) -> dict[str, str]:
                return {"Authorization": f"Bearer {tokens[who]}"}

            async def alerts(who: str, **params: str) -> list[dict[str, Any]]:
                r = await c.get("/api/v1/alerts", headers=h(who), params=params)
                assert r.status_code == 200, r.text
                return list(r.json()["items"])

            async def wf1_firing() -> list[dict[str, Any]]:
                return [
                    a
                    for a in await alerts("duty:weifang")
                    if a["source"] == WF1 and a["factor"] == "nox"
                ]

            [a1] = await until(wf1_firing, 120)
            assert a1["state"] == "firing"
            assert a1["enterprise"] == "e-wf-01"
            assert datetime.fromisoformat(a1["fired_at"]) == DAY + 3 * H
            assert (await c.get("/readyz")).status_code == 200
            # isolation
            assert [a["id"] for a in await alerts("enterprise:e-wf-01")] == [a1["id"]]
            assert await alerts("enterprise:e-wf-02") == []
            other = await c.get(f"/api/v1/alerts/{a1['id']}", headers=h("enterprise:e-wf-02"))
            missing = await c.get(
                "/api/v1/alerts/0123456789abcdef", headers=h("enterprise:e-wf-02")
            )
            assert (other.status_code, other.content) == (missing.status_code, missing.content)
            assert other.status_code == 404
            assert [a["id"] for a in await alerts("duty:zhifu")] == []
            # ack by the enterprise itself
            r = await c.post(
                f"/api/v1/alerts/{a1['id']}/ack",
                headers=h("enterprise:e-wf-01"),
                json={"note": "已停炉检修"},
            )
            assert (r.status_code, r.json()["status"]) == (202, "applied"), r.text
            await produce(kafka.bootstrap, readings, samples(range(4, 6)))

            async def wf1_resolved() -> dict[str, Any] | None:
                r = await c.get(f"/api/v1/alerts/{a1['id']}", headers=h("admin"))
                assert r.status_code == 200, r.text
                a = r.json()
                return a if a["state"] == "resolved" else None

            done = await until(wf1_resolved, 120)
            assert [x["reason"] for x in done["history"]] == [
                "condition_met_no_wait",
                "acknowledged",
                "clear_condition_met",
            ]
            assert done["escalations"] == 0
            assert (done["acknowledged_by"], done["ack_note"]) == ("e-wf-01", "已停炉检修")
            assert datetime.fromisoformat(done["resolved_at"]) == DAY + 5 * H
            # maintenance for e-wf-02-g1 by the Weifang duty officer
            r = await c.post(
                "/api/v1/maintenance",
                headers=h("duty:weifang"),
                json={"source": WF2, "ends_at": (DAY + 10 * H).isoformat(), "note": "换滤袋"},
            )
            assert (r.status_code, r.json()["status"]) == (202, "applied"), r.text
            window = r.json()["silence"]
            await produce(kafka.bootstrap, readings, samples(range(6, 8)))

            async def wf2_done() -> list[dict[str, Any]]:
                return [
                    a
                    for a in await alerts("admin", state="resolved")
                    if a["source"] == WF2 and a["factor"] == "nox"
                ]

            [a2] = await until(wf2_done, 120)
            d2 = (await c.get(f"/api/v1/alerts/{a2['id']}", headers=h("enterprise:e-wf-02"))).json()
            # the 07:00 sample first escalates the unacknowledged alert (its reading reaches the
            # locality stage before the verdict) and then clears it (test_fault_matrix's probe)
            assert [
                (x["reason"], datetime.fromisoformat(x["at"]), x["suppressed_by"])
                for x in d2["history"]
            ] == [
                ("condition_met_no_wait", DAY + 6 * H, [window]),
                ("escalated", DAY + 7 * H, [window]),
                ("clear_condition_met", DAY + 7 * H, [window]),
            ]
            assert d2["receivers"] == []
            # while the acknowledged, unsuppressed alert of e-wf-01-g1 was told (its firing and
            # resolution) to the Weifang duty officer and the enterprise; e-wf-01 sees only its own

            async def told() -> list[str]:
                r = await c.get(f"/api/v1/alerts/{a1['id']}", headers=h("admin"))
                got = list(r.json()["receivers"])
                return got if {"duty-weifang", "enterprise-e-wf-01"} <= set(got) else []

            await until(told, 60)
            own = (
                await c.get(f"/api/v1/alerts/{a1['id']}", headers=h("enterprise:e-wf-01"))
            ).json()
            assert own["receivers"] == ["enterprise-e-wf-01"]
            # a weekly silence: Tuesdays 08:00-11:00 Beijing, from the scripted day on
            r = await c.post(
                "/api/v1/silences",
                headers=h("duty:weifang"),
                json={
                    "matchers": [{"name": "source", "op": "=", "value": WF1}],
                    "starts_at": DAY.isoformat(),
                    "recurrence": {
                        "every": "week",
                        "start": "08:00",
                        "end": "11:00",
                        "weekdays": ["tue"],
                    },
                    "comment": "周二例行检修",
                },
            )
            assert (r.status_code, r.json()["status"]) == (202, "applied"), r.text
            weekly = r.json()["silence"]
            await produce(kafka.bootstrap, readings, samples(range(8, 14)))

            async def wf1_second_done() -> list[dict[str, Any]]:
                r = await c.get(f"/api/v1/alerts/{a1['id']}", headers=h("duty:weifang"))
                hist = r.json()["history"]
                return hist if len(hist) >= 9 and r.json()["state"] == "resolved" else []

            hist = await until(wf1_second_done, 120)
            assert [
                (x["reason"], datetime.fromisoformat(x["at"]), x["suppressed_by"]) for x in hist[3:]
            ] == [
                ("condition_met_no_wait", DAY + 9 * H, [weekly]),
                ("escalated", DAY + 10 * H, [weekly]),
                ("clear_condition_met", DAY + 10 * H, [weekly]),
                ("condition_met_no_wait", DAY + 12 * H, []),
                ("escalated", DAY + 13 * H, []),
                ("clear_condition_met", DAY + 13 * H, []),
            ]
            # the worker's own health alerts (locality "pipeline") run on the wall clock: compare
            # the scripted locality's
            before = await alerts("admin", state="all", locality="weifang")
            assert {a["source"] for a in before} == {WF1, WF2}
        # restart: the same view from the topics
        async with (
            running_api(kafka.url, auth, prefix=prefix, catalog=catalog, settings=settings) as api2,
            httpx.AsyncClient(base_url=api2.url, timeout=30) as c2,
        ):

            async def ready() -> bool:
                return (await c2.get("/readyz")).status_code == 200

            await until(ready, 60)
            r = await c2.get(
                "/api/v1/alerts",
                headers={"Authorization": f"Bearer {tokens['admin']}"},
                params={"state": "all", "locality": "weifang"},
            )
            assert r.json()["items"] == before
    finally:
        worker.stop()
