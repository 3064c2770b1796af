"""The plans' progress, live, on the real pipeline: Tansu, a real ``envwatch worker`` process, the
alerts service fed by the topics, and ``envwatch targets`` as a person runs it — no CSV.

Script (Beijing time, 21–23 Nov 2026): Laixi's station aq-lx-01 reports every hour; its PM2.5 is
30 µg/m³ all of 21 Nov, 60 all of 22 Nov, 90 all of 23 Nov (PM10 40, the other factors low). Each
day closes with its hour labelled 00:00 of the next day. Worked out here from the script and the
standards, not by the code under test:

* city daily PM2.5 = the station's (one station): 30, 60, 90 → year-to-date mean **60.0** µg/m³
  over 3 valid days (the 2025 target comes from the plan, 003_021375295357aa36.txt);
* daily AQI (HJ 633-2026 表3, in force from 2026-03-01; PM2.5 24-h breakpoints 35/60/115):
  IAQI(30) = 50 × 30/35 = 42.9 → 43, IAQI(60) = 100, IAQI(90) = 100 + 50 × 30/55 = 127.3 → 128
  (PM10 40 → 40 is lower each day) → good days (AQI ≤ 100, 优良) 2 of 3: ratio **66.7 %**;
  heavy-pollution days (AQI > 200): **0**;
* water (GB 3838-2002 表1): on 22 Nov 10:00 section 早朝 (ws-lx-zaochao, target III) reports
  pH 7.5, DO 7.0 (II), CODMn 3.0 (II), COD 25 (IV: 20 < 25 ≤ 30), NH3-N 0.4 (II), TP 0.08 (II)
  → class IV, missing its target; 敬庄公路桥 (ws-lx-jingzhuang, target IV) the same with COD 12
  (I) → class II, meeting it. Of the 2 sections with a class: 达标率 (no. 5) 1/2 = **50 %**,
  Ⅲ类以上 1/2 = **50 %**, 劣Ⅴ 0/2 = **0 %** (003_021375295357aa36.txt#L152-L161, #L107);
* ``envwatch targets --locality laixi`` with ``ENVWATCH_API_URL`` and a duty token shows these
  values as of 23 Nov; another locality's duty officer gets nothing of Laixi's, an enterprise 403.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from rules.catalog import load_catalog
from streams import topics
from streams.api.serve import demo_principals, running_api
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
DAY0 = datetime(2026, 11, 21, tzinfo=BEIJING)
H = timedelta(hours=1)
PM25 = (30.0, 60.0, 90.0)


def samples() -> list[dict[str, Any]]:
    out = []
    for h in range(1, 3 * 24 + 1):  # labels 21 Nov 01:00 … 24 Nov 00:00
        at = DAY0 + h * H
        pm25 = PM25[(h - 1) // 24]
        values = {"pm25": pm25, "pm10": 40.0, "so2": 8.0, "no2": 20.0, "co": 0.4, "o3": 40.0}
        out.append(
            {
                "schema": 1,
                "kind": "air",
                "locality": "laixi",
                "source": "aq-lx-01",
                "time": at.isoformat(),
                "interval": "hour",
                "values": {f: {"value": v, "flag": "N"} for f, v in values.items()},
            }
        )
    for section, cod in (("ws-lx-zaochao", 25.0), ("ws-lx-jingzhuang", 12.0)):
        water = {"ph": 7.5, "do": 7.0, "codmn": 3.0, "cod": cod, "nh3n": 0.4, "tp": 0.08}
        out.append(
            {
                "schema": 1,
                "kind": "water",
                "locality": "laixi",
                "source": section,
                "time": (DAY0 + timedelta(days=1, hours=10)).isoformat(),
                "interval": "hour",
                "values": {f: {"value": v, "flag": "N"} for f, v in water.items()},
            }
        )
    # in time order: the classes are counted at the next day's close
    return sorted(out, key=lambda s: datetime.fromisoformat(s["time"]))


def test_targets_shows_live_year_to_date_values_from_the_alerts_service(
    kafka_broker: KafkaBroker, topic_prefix: str, tmp_path: Path
) -> None:
    catalog = load_catalog(CATALOGUE)
    tokens, auth = demo_principals(catalog)
    asyncio.run(_story(kafka_broker, topic_prefix, tmp_path, catalog, auth, tokens))


async def _story(
    kafka: KafkaBroker, prefix: str, tmp: Path, catalog: Any, auth: Any, tokens: dict[str, str]
) -> None:
    await topics.ensure_topics(kafka.url, 1, prefix)
    worker = WorkerProcess(worker_env(kafka.url, prefix, tmp, influx_url=None), tmp / "w.log")
    worker.start()
    try:
        await produce(kafka.bootstrap, topics.name(topics.READINGS, prefix), samples())
        async with (
            running_api(kafka.url, auth, prefix=prefix, catalog=catalog) as api,
            httpx.AsyncClient(base_url=api.url, timeout=30) as c,
        ):

            async def closed_23() -> bool:
                r = await c.get(
                    "/api/v1/progress",
                    params={"locality": "laixi"},
                    headers={"Authorization": f"Bearer {tokens['duty:laixi']}"},
                )
                assert r.status_code == 200, r.text
                items = r.json()["items"]
                return bool(items) and items[0]["as_of"] == "2026-11-23"

            await until(closed_23, 120)
            other = await c.get(
                "/api/v1/progress",
                params={"locality": "laixi"},
                headers={"Authorization": f"Bearer {tokens['duty:weifang']}"},
            )
            assert other.json()["items"] == []
            ent = await c.get(
                "/api/v1/progress",
                headers={"Authorization": f"Bearer {tokens['enterprise:e-lx-01']}"},
            )
            assert ent.status_code == 403
            # the person's command, as a separate process, reading the service
            env = {
                **os.environ,
                "ENVWATCH_API_URL": api.url,
                "ENVWATCH_API_TOKEN": tokens["duty:laixi"],
            }
            cli = str(Path(sys.executable).parent / "envwatch")
            got = await asyncio.to_thread(
                subprocess.run,
                [cli, "targets", "--locality", "laixi", "--json"],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert got.returncode == 0, got.stderr
            [record] = json.loads(got.stdout)
            assert (record["locality"], record["as_of"], record["days"]) == (
                "laixi",
                "2026-11-23",
                3,
            )
            by_metric = {i["metric"]: i for i in record["indicators"]}
            assert by_metric["pm25_annual_mean"]["value"] == pytest.approx(60.0)
            assert by_metric["pm25_annual_mean"]["target"] is not None  # the plan's 2025 target
            assert by_metric["good_day_ratio"]["value"] == pytest.approx(200 / 3)
            assert by_metric["heavy_pollution_days"]["value"] == 0
            # water progress from the sections' current classes
            assert by_metric["section_compliance"]["value"] == pytest.approx(50.0)
            assert by_metric["sections_at_least_iii"]["value"] == pytest.approx(50.0)
            assert by_metric["sections_worse_than_v"]["value"] == pytest.approx(0.0)
            assert by_metric["sections_worse_than_v"]["details"]["sections"] == 2
            # and the table a person reads names them with the values
            table = await asyncio.to_thread(
                subprocess.run,
                [cli, "targets", "--locality", "laixi", "--lang", "en"],
                env={**env, "COLUMNS": "200"},
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert table.returncode == 0, table.stderr
            assert "live" in table.stdout
            assert "60.0" in table.stdout
            assert "66.7" in table.stdout
            assert tokens["duty:laixi"] not in table.stdout + table.stderr  # never printed
    finally:
        worker.stop()
