"""A regional warning on the real pipeline: Tansu, a real ``envwatch worker`` process, the alerts
API fed by the topics, webhook receivers with their own secrets.

Script (Beijing time, 20 Nov 2026; rule set envwatch-default = 环办大气函〔2018〕875号, standards.md
§6.1 [2+]: yellow at AQI > 200 expected for 48 h, lift at AQI ≤ 150 expected for 36 h):

* hours 01:00–06:00: one station each in Weifang (aq-wf-01) and Laixi (aq-lx-01) report clean
  air (PM2.5 30 µg/m³);
* Weifang's forecast office forecasts daily AQI 250 for 21 and 22 Nov (48 h > 200) → Weifang
  issues **yellow** at its newest observation, 06:00, 18 h ahead of the episode (21 Nov 00:00);
  Laixi's forecasts 80, 80, 80 for 20–22 Nov: nothing;
* the province (an admin principal) issues a regional **orange** for Weifang and Laixi through
  ``POST /api/v1/regional-warnings`` → Weifang **upgraded** to orange and Laixi **issued**
  orange, both at 06:00 (their event time), reason ``regional_floor``;
* hours 07:00–08:00 clean; the province ends the regional warning (level ``none``) → Laixi is
  **lifted** at 08:00 (its own AQI ≤ 150 is expected for days); Weifang **stays orange** — its
  own forecasts still call for a warning, so neither the lift nor (before 24 h) a downgrade.

Who hears what: duty officers and emergency responders of each city get its warnings (the
responders with the whole measures list, also as CSV); every enterprise of each city gets its
own duties at each change of its city's level — Weifang's e-wf-01 and e-wf-02 yellow then
orange, Laixi's e-lx-01 and e-lx-wwtp orange then the lift — and nobody else's.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest
import yaml

from rules.catalog import load_catalog
from streams import topics
from streams.api.serve import demo_principals, running_api
from streams.api.settings import ApiSettings
from streams.catalog import CatalogView, receivers_from_catalog
from streams.embedded import KafkaBroker
from tests.integration.story_support import Receivers
from tests.integration.worker_support import (
    CATALOGUE,
    WorkerProcess,
    produce,
    until,
    worker_env,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BEIJING = ZoneInfo("Asia/Shanghai")
DAY = datetime(2026, 11, 20, tzinfo=BEIJING)
H = timedelta(hours=1)


def air(source: str, locality: str, at: datetime) -> dict[str, Any]:
    values = {"pm25": 30.0, "pm10": 50.0, "so2": 8.0, "no2": 25.0, "co": 0.5, "o3": 40.0}
    return {
        "schema": 1,
        "kind": "air",
        "locality": locality,
        "source": source,
        "time": at.isoformat(),
        "interval": "hour",
        "values": {f: {"value": v, "flag": "N"} for f, v in values.items()},
    }


def forecast(locality: str, day: datetime, aqi: float) -> dict[str, Any]:
    """A daily AQI forecast for ``day``, labelled with the end of that day."""
    return {
        "schema": 1,
        "kind": "forecast",
        "locality": locality,
        "source": f"fc-{locality}",
        "time": (day + 24 * H).isoformat(),
        "interval": "day",
        "values": {"aqi": {"value": aqi, "flag": "N"}},
    }


def hours(first: int, last: int) -> list[dict[str, Any]]:
    return [
        air(src, loc, DAY + h * H)
        for h in range(first, last + 1)
        for src, loc in (("aq-wf-01", "weifang"), ("aq-lx-01", "laixi"))
    ]


def test_a_regional_orange_raises_both_cities_and_its_end_lifts_only_the_clean_one(
    kafka_broker: KafkaBroker, topic_prefix: str, tmp_path: Path
) -> None:
    catalog = load_catalog(CATALOGUE)
    names = [r.name for r in receivers_from_catalog(CatalogView(CATALOGUE).catalog)]
    with Receivers(names) as receivers:
        asyncio.run(_story(kafka_broker, topic_prefix, tmp_path, catalog, receivers))
    _check_told(receivers)


async def _story(
    kafka: KafkaBroker, prefix: str, tmp: Path, catalog: Any, receivers: Receivers
) -> None:
    await topics.ensure_topics(kafka.url, 1, prefix)
    tokens, auth = demo_principals(catalog)
    readings = topics.name(topics.READINGS, prefix)
    env = worker_env(
        kafka.url,
        prefix,
        tmp,
        influx_url=None,
        ENVWATCH_OUTBOX_PATH=str(tmp / "outbox.db"),
        ENVWATCH_ALERTS_WEBHOOKS=orjson.dumps(
            {
                n: {"url": f"{receivers.url}/{n}", "secret": s, "timeout_seconds": 2}
                for n, s in receivers.secrets.items()
            }
        ).decode(),
        ENVWATCH_ALERTS_GROUPING__GROUP_WAIT_SECONDS="0",
        ENVWATCH_ALERTS_GROUPING__GROUP_INTERVAL_SECONDS="0",
    )
    worker = WorkerProcess(env, tmp / "worker.log")
    worker.start()
    try:
        await produce(kafka.bootstrap, readings, hours(1, 6))
        await produce(
            kafka.bootstrap,
            readings,
            [
                forecast("weifang", DAY + 24 * H, 250.0),
                forecast("weifang", DAY + 48 * H, 250.0),
                *(forecast("laixi", DAY + d * 24 * H, 80.0) for d in range(3)),
            ],
        )
        async with (
            running_api(
                kafka.url,
                auth,
                prefix=prefix,
                catalog=catalog,
                settings=ApiSettings(command_wait=20.0),
            ) as api,
            httpx.AsyncClient(base_url=api.url, timeout=30) as c,
        ):
            admin = {"Authorization": f"Bearer {tokens['admin']}"}

            async def warnings() -> dict[str, dict[str, Any]]:
                r = await c.get("/api/v1/warnings", headers=admin)
                assert r.status_code == 200, r.text
                # the API keeps one record per city: the level in force, or its lift
                items = r.json()["items"]
                assert len({w["locality"] for w in items}) == len(items), items
                return {w["locality"]: w for w in items if w["state"] == "firing"}

            async def yellow() -> bool:
                w = (await warnings()).get("weifang")
                return w is not None and w["level"] == "yellow"

            await until(yellow, 120)
            body = {
                "id": "sd-2026-11-20",
                "level": "orange",
                "area": ["weifang", "laixi"],
                "issuer": "山东省生态环境厅",
                "note": "区域重污染天气橙色预警",
            }
            # only the province's admin account may issue it; an unknown city is refused
            duty = {"Authorization": f"Bearer {tokens['duty:weifang']}"}
            refused = await c.post("/api/v1/regional-warnings", headers=duty, json=body)
            assert refused.status_code == 403
            bad = await c.post(
                "/api/v1/regional-warnings", headers=admin, json={**body, "area": ["atlantis"]}
            )
            assert bad.status_code == 422
            assert "atlantis" in bad.text
            r = await c.post("/api/v1/regional-warnings", headers=admin, json=body)
            assert (r.status_code, r.json()["status"]) == (202, "applied"), r.text
            assert len(r.json()["commands"]) == 2

            async def both_orange() -> bool:
                got = await warnings()
                return all(
                    got.get(loc, {}).get("level") == "orange" for loc in ("weifang", "laixi")
                )

            await until(both_orange, 30)
            await produce(kafka.bootstrap, readings, hours(7, 8))
            await asyncio.sleep(3.0)  # the hours reach the locality stage before the end
            r = await c.post(
                "/api/v1/regional-warnings", headers=admin, json={**body, "level": "none"}
            )
            assert (r.status_code, r.json()["status"]) == (202, "applied"), r.text

            async def laixi_lifted() -> bool:
                return "laixi" not in await warnings()

            await until(laixi_lifted, 30)
            assert (await warnings())["weifang"]["level"] == "orange"
            await asyncio.sleep(3.0)  # anything extra or misrouted would arrive now
            assert worker.alive()
    finally:
        worker.stop()


def _check_told(receivers: Receivers) -> None:
    assert receivers.bad == []
    got: dict[str, list[tuple[str, str, datetime, str]]] = {}
    bodies = {}
    for name, body in receivers.accepted.values():
        ew = body["envwatch"]
        at = datetime.fromisoformat(ew["at"].replace("Z", "+00:00"))
        got.setdefault(name, []).append((ew["kind"], ew["reason"], at, ew["level"] or "none"))
        bodies[(name, ew["kind"], ew["reason"], at)] = body
    for v in got.values():
        v.sort(key=lambda x: (x[2], x[0], x[1]))
    six, eight = DAY + 6 * H, DAY + 8 * H
    weifang = [
        ("issued", six, "yellow"),
        ("upgraded", six, "orange"),
    ]
    laixi = [("issued", six, "orange"), ("lifted", eight, "none")]

    def told(kind: str, story: list[tuple[str, datetime, str]]) -> list[Any]:
        return [(kind, f"warning_{r}", at, lv) for r, at, lv in story]

    want = {
        "duty-weifang": told("warning", weifang),
        "emergency-weifang": told("warning", weifang),
        "duty-laixi": told("warning", laixi),
        "emergency-laixi": told("warning", laixi),
        "enterprise-e-wf-01": told("warning_duty", weifang),
        "enterprise-e-wf-02": told("warning_duty", weifang),
        "enterprise-e-lx-01": told("warning_duty", laixi),
        "enterprise-e-lx-wwtp": told("warning_duty", laixi),
    }
    assert got == want
    # the regional raise names its reason; the lead time belongs to the forecast's own issue
    up = bodies[("duty-weifang", "warning", "warning_upgraded", six)]
    assert up["commonAnnotations"]["decision_reason"] == "regional_floor"
    first = bodies[("duty-weifang", "warning", "warning_issued", six)]
    assert float(first["commonAnnotations"]["lead_hours"]) == 18.0  # 06:00 → 21 Nov 00:00
    # e-lx-01's orange duties as its list states them (deploy/config/laixi.yaml)
    raw = yaml.safe_load((CATALOGUE / "laixi.yaml").read_text(encoding="utf-8"))
    [e_lx_01] = [e for e in raw["enterprises"] if e["id"] == "e-lx-01"]
    duty = bodies[("enterprise-e-lx-01", "warning_duty", "warning_issued", six)]["envwatch"]
    assert duty["duties"]["measures"] == [m["text"] for m in e_lx_01["measures"]["orange"]]
    assert duty["duties"]["reductions"] == {
        p: pct / 100 for p, pct in e_lx_01["measures"]["orange"][0]["reduction_pct"].items()
    }
    assert "限产40%" in duty["texts"]["zh"]
    # the responders' list as CSV: one row per measure of every Laixi enterprise, then totals
    csv_text = bodies[("emergency-laixi", "warning", "warning_issued", six)]["envwatch"][
        "trigger_csv"
    ]
    rows = csv_text.splitlines()
    assert rows[0].startswith("enterprise_id,name,performance_grade,level,measure")
    assert any(r.startswith("e-lx-01,") and "限产40%" in r for r in rows)
    assert sum(r.startswith("TOTAL,") for r in rows) == 4
