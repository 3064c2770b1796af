"""Issue 6 acceptance: a simulated day for a small network, through the real services.

One Beijing natural day, 2026-11-10 (after the 2026-03-01 switch, so HJ 633-2026 and the
GB 3095-2026 *transitional* limits apply, standards.md §0), published over MQTT (real mosquitto,
QoS1) → ingest bridge → Kafka (Tansu) → in-process Faust worker (evaluate, locality, store) →
influxdb-client → VictoriaMetrics, read back with its export API.

The network is a small catalogue written into the test's temp dir (locality ``simday``):

* two air stations (grade II area, GB 3095 二类区), 24 hourly samples each, labelled 01:00 … 24:00
  (= 00:00 of 2026-11-11, the last hour of the day, architecture.md §5); station B misses the
  hours labelled 03:00 and 04:00, station A's PM10 of 05:00 is flagged M (maintenance);
* one river section with target class III, sampled every 4 h (02:00, 06:00 … 22:00);
* one coal-boiler flue-gas outlet (reference O2 9 %, GB 13271-2014 表6) with hourly data and the
  GB 13271-2014 特别排放限值 as hourly permit limits.

Every expected value below is computed by hand from the standards' tables (standards.md §1.1
HJ 633-2026 表3, §2.1 GB 3095-2026 表1, §3.1 GB 3838-2002 表1, §5 GB 13271-2014 式(1)); the
arithmetic is written next to each assertion. Nothing expected is produced by the code under test.

VictoriaMetrics stores ``<measurement>_<field>`` per numeric/boolean field (booleans as 1/0) and
keeps *every* write of a series at one timestamp (InfluxDB would overwrite). Points the pipeline
legitimately writes more than once for one id — the city hour (once per station), the city day
(closed by station A's last hour, corrected by station B's), the water day and the data-quality
day (re-emitted with each sample) — are therefore checked twice: the values in the store are
exactly among the hand-computed successive answers, and the *last* record of that id on the
``evaluations`` topic (what InfluxDB keeps) carries the final hand-computed answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ingest.publisher import Publisher
from ingest.schemas import Sample
from streams.embedded import KafkaBroker, MqttBroker, Victoria
from streams.runtime import Runtime
from streams.settings import Settings
from tests.integration.worker_support import evaluations_by_id, read_all, sample

pytestmark = pytest.mark.integration

BEIJING = ZoneInfo("Asia/Shanghai")
DAY0 = datetime(2026, 11, 10, tzinfo=BEIJING)  # 00:00 Beijing: the time of every day point
LOCALITY = "simday"
STATION_A = "aq-simday-a"
STATION_B = "aq-simday-b"
SECTION = "ws-simday-1"
OUTLET = "e-simday-01-g1"
B_MISSING = (3, 4)  # station B sends nothing for the hours labelled 03:00 and 04:00
WATER_HOURS = (2, 6, 10, 14, 18, 22)  # every 4 h (standards.md §3.3: 6 values a day)

CATALOGUE = f"""\
# Test catalogue (docs/configuration.md format); every item is an invented example.
defaults:
  reference_o2:
    coal_boiler:
      value: 9
      source: "GB 13271-2014 表6 燃煤锅炉"
      confidence: STD
locality:
  id: {LOCALITY}
  name: 模拟市 Simulated city (example)
  level: city
  example: true
  plan:
    title: 潍坊市“十四五”生态环境保护规划
    date: "2022-01"
    status: in_force
    file: 001_15ef1b070f9ae15b.txt
    source: "001_15ef1b070f9ae15b.txt#L3-L5"
air_stations:
  - {{id: {STATION_A}, name: 模拟站 A (example), control: 市控, example: true}}
  - {{id: {STATION_B}, name: 模拟站 B (example), control: 市控, example: true}}
water_sections:
  - {{id: {SECTION}, name: 模拟断面 (example), river: 模拟河, control: 市控,
     target_class: III, example: true}}
enterprises:
  - id: e-simday-01
    uscc: "913702850EXAMPLE2C"
    name: 模拟热电有限公司 (example)
    industry: 热力生产和供应
    example: true
    outlets:
      - id: {OUTLET}
        name: 燃煤锅炉烟囱 (example)
        type: gas
        mn: "010000A8900016F0001A0001"
        source_type: coal_boiler
        limits:
          - {{factor: so2, limit: 200, unit: mg/m3, source: "GB 13271-2014 特别排放限值 燃煤锅炉"}}
          - {{factor: nox, limit: 200, unit: mg/m3, source: "GB 13271-2014 特别排放限值 燃煤锅炉"}}
          - {{factor: pm, limit: 30, unit: mg/m3, source: "GB 13271-2014 特别排放限值 燃煤锅炉"}}
"""


def label(hour: int) -> datetime:
    """The hour labelled ``hour`` of the day (1 … 24; 24 = 00:00 of the next day)."""
    return DAY0 + timedelta(hours=hour)


# --------------------------------------------------------------------------- the day's samples
#
# Air, both stations, every hour (µg/m³, CO mg/m³), integers so that the HJ 633-2026 4.2.2 input
# rounding (µg/m³ to integers, CO to 0.1 mg/m³) changes nothing:
#   pm10 70, so2 10, no2 30, co 0.5, o3 60; pm25 54 at A, 80 at B; A has o3 250 at 15:00,
#   and A's pm10 of the hour labelled 05:00 is flagged M (维护期间, HJ 212-2017 表8): invalid.
A_MAINTENANCE = 5


def air_values(station: str, hour: int) -> dict[str, float | tuple[float, str]]:
    o3 = 250.0 if (station == STATION_A and hour == 15) else 60.0
    pm25 = 54.0 if station == STATION_A else 80.0
    pm10: float | tuple[float, str] = 70.0
    if station == STATION_A and hour == A_MAINTENANCE:
        pm10 = (70.0, "M")
    return {"pm25": pm25, "pm10": pm10, "so2": 10.0, "no2": 30.0, "co": 0.5, "o3": o3}


# Water (mg/L): ph 7.5, do 7.0, codmn 3.0 everywhere; nh3n 0.4 and tp 0.08 except
# nh3n 1.2 at 10:00 and tp 0.25 at 14:00.
def water_values(hour: int) -> dict[str, float]:
    return {
        "temp": 12.0,
        "ph": 7.5,
        "do": 7.0,
        "codmn": 3.0,
        "nh3n": 1.2 if hour == 10 else 0.4,
        "tp": 0.25 if hour == 14 else 0.08,
    }


# Flue gas (mg/m³ measured, O2 %): o2 12 every hour; so2 120 except 165 at 10:00; nox 90; pm 15.
def gas_values(hour: int) -> dict[str, float]:
    return {
        "so2": 165.0 if hour == 10 else 120.0,
        "nox": 90.0,
        "pm": 15.0,
        "o2": 12.0,
        "flow": 50000.0,
    }


def day_samples() -> list[Sample]:
    """The day in publication order: hour by hour, A, B, the section, the outlet."""
    out: list[dict[str, Any]] = []
    for h in range(1, 25):
        at = label(h)
        out.append(sample("air", LOCALITY, STATION_A, at, air_values(STATION_A, h)))
        if h not in B_MISSING:
            out.append(sample("air", LOCALITY, STATION_B, at, air_values(STATION_B, h)))
        if h in WATER_HOURS:
            out.append(sample("water", LOCALITY, SECTION, at, water_values(h)))
        out.append(sample("emission", LOCALITY, OUTLET, at, gas_values(h)))
    return [Sample.model_validate(s) for s in out]


# --------------------------------------------------------------------------- reading back

Series = dict[tuple[str, frozenset[tuple[str, str]]], dict[int, list[float]]]


def read_store(vm: Victoria) -> Series:
    """Every stored value of the locality: (series name, labels) → {ms: [values, as written]}."""
    out: Series = {}
    for s in vm.export(f'{{locality="{LOCALITY}"}}'):
        metric = dict(s["metric"])  # type: ignore[call-overload]
        name = metric.pop("__name__")
        labels = frozenset((k, str(v)) for k, v in metric.items() if k != "db")
        by_ts = out.setdefault((name, labels), {})
        for ts, v in zip(s["timestamps"], s["values"], strict=True):  # type: ignore[call-overload]
            by_ts.setdefault(int(ts), []).append(float(v))
    return out


def series(store: Series, name: str, **labels: str) -> dict[int, list[float]]:
    """The one series called ``name`` whose labels include ``labels`` ({} when none)."""
    want = set(labels.items())
    found = [v for (n, ls), v in store.items() if n == name and want <= ls]
    assert len(found) <= 1, f"{name} {labels}: {len(found)} series match"
    return found[0] if found else {}


def values(store: Series, name: str, at: datetime, **labels: str) -> list[float]:
    return sorted(series(store, name, **labels).get(ms(at), []))


def assert_writes(got: list[float], final: float, successive: set[float]) -> None:
    """A point written several times: the final answer is stored, and nothing but the
    hand-computed successive answers (VictoriaMetrics keeps every write of a timestamp)."""
    assert final in got, (final, got)
    assert set(got) <= successive, (got, successive)


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def point_id(measurement: str, tags: Mapping[str, str], at: datetime) -> str:
    """rules.engine.Point.id spelled out: measurement|sorted tags|UTC ISO time."""
    text = ",".join(f"{k}={tags[k]}" for k in sorted(tags))
    return f"{measurement}|{text}|{at.astimezone(ZoneInfo('UTC')).isoformat()}"


def settings_for(
    mqtt: MqttBroker, kafka: KafkaBroker, vm: Victoria, prefix: str, tmp: Path
) -> Settings:
    config = tmp / "config"
    config.mkdir()
    (config / "simday.yaml").write_text(CATALOGUE, encoding="utf-8")
    return Settings(
        kafka=kafka.url,
        app_id=f"{prefix}app",
        topic_prefix=prefix,
        partitions=1,  # one partition: the day is evaluated in publication order
        session_timeout=6,
        rebalance_timeout=6,
        heartbeat_interval=1,
        mqtt_host=mqtt.host,
        mqtt_port=mqtt.port,
        mqtt_client_id=f"{prefix}bridge",
        mqtt_share_group=None,
        mqtt_topic=f"env/+/{LOCALITY}/#",
        data_dir=tmp / "faust",
        spool_dir=tmp / "spool",
        sink_flush_interval=0.2,
        config_dir=config,
        outbox_path=tmp / "outbox.db",
        # the day is a fixed date: accept it however long after 2026-11-10 the test runs
        max_past_days=365 * 100,
        influx_url=vm.url,
    )


async def wait_until(predicate: Any, within: float, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + within
    while True:
        got = await asyncio.to_thread(predicate)
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"the day's last points did not reach the store within {within}s")
        await asyncio.sleep(interval)


# --------------------------------------------------------------------------- the test


def test_a_simulated_day_gives_the_hand_computed_results_in_the_store(
    mqtt_broker: MqttBroker,
    kafka_broker: KafkaBroker,
    victoria: Victoria,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    settings = settings_for(mqtt_broker, kafka_broker, victoria, topic_prefix, tmp_path)
    samples = day_samples()
    # 24 A + 22 B + 6 water + 24 gas
    assert len(samples) == 76

    def day_complete() -> Series | None:
        """The last point of every source's last sample is stored (the store writes the
        ``evaluations`` topic in order, so everything before it is stored too)."""
        store = read_store(victoria)
        last = [
            # station A's and B's day (their hour labelled 24:00 closes it)
            values(store, "aqi_aqi", DAY0, source=STATION_A, period="day"),
            values(store, "aqi_aqi", DAY0, source=STATION_B, period="day"),
            # the section's 6th sample of the day
            [v for v in values(store, "data_quality_received", DAY0, source=SECTION) if v == 6],
            # the outlet's day (its hour labelled 24:00)
            values(store, "emission_day_so2", label(24), source=OUTLET),
            # the city day: closed by station A's hour labelled 24:00, corrected by B's
            len(values(store, "aqi_aqi", DAY0, source="city", period="day")) >= 2,
        ]
        return store if all(last) else None

    async def scenario() -> tuple[Series, dict[str, list[dict[str, Any]]]]:
        async with Runtime(settings):
            pub = Publisher(mqtt_broker.host, mqtt_broker.port, client_id=f"{topic_prefix}pub")
            try:
                for s in samples:
                    pub.publish(s)
            finally:
                pub.close()  # waits for every PUBACK (QoS1)
            store = await wait_until(day_complete, within=45)
        records = await read_all(kafka_broker.bootstrap, f"{topic_prefix}evaluations")
        return store, evaluations_by_id(records)

    store, by_id = asyncio.run(scenario())

    def last_fields(measurement: str, tags: Mapping[str, str], at: datetime) -> Mapping[str, Any]:
        """Fields of the last record of a point id on ``evaluations`` (what InfluxDB keeps)."""
        fields: Mapping[str, Any] = by_id[point_id(measurement, tags, at)][-1]["fields"]
        return fields

    a = {"source": STATION_A}
    b = {"source": STATION_B}

    # ------------------------------------------------------------------ station hourly AQI
    # HJ 633-2026 real-time AQI: the six 1-h values, PM on the daily breakpoints (表3), IAQI =
    # (IAQI_Hi − IAQI_Lo)/(BP_Hi − BP_Lo) × (C − BP_Lo) + IAQI_Lo, rounded UP (4.2.6).
    #   pm25 54: 35→50, 60→100: 50 + 50 × (54 − 35)/25 = 50 + 38 = 88
    #   pm25 80: 60→100, 115→150: 100 + 50 × (80 − 60)/55 = 118.18 → 119
    #   pm10 70: 50→50, 120→100: 50 + 50 × 20/70 = 64.29 → 65
    #   so2 1-h 10: 0→0, 150→50: 3.33 → 4;  no2 1-h 30: 0→0, 100→50: 15
    #   co 1-h 0.5: 0→0, 5→50: 5;  o3 1-h 60: 0→0, 160→50: 18.75 → 19
    #   o3 1-h 250: 200→100, 300→150: 100 + 50 × 50/100 = 125
    # A: AQI 88 every hour (primary PM2.5) but 125 at 15:00 (primary O3); B: 119.
    for h in (1, 10, 24):
        assert values(store, "aqi_aqi", label(h), period="hour", **a) == [88.0], h
        assert values(store, "aqi_aqi", label(h), period="hour", **b) == [119.0], h
    assert values(store, "aqi_aqi", label(15), period="hour", **a) == [125.0]
    assert values(store, "aqi_iaqi_o3", label(15), period="hour", **a) == [125.0]
    assert values(store, "aqi_iaqi_pm25", label(15), period="hour", **a) == [88.0]
    assert values(store, "aqi_iaqi_pm10", label(15), period="hour", **a) == [65.0]
    assert values(store, "aqi_aqi", label(15), period="hour", **b) == [119.0]
    # HJ 633-2026 5.3.1: A's PM10 of 05:00 is invalid (M); the AQI of the others is 88 ≤ 100,
    # so the AQI is not published (NA): published false, the computed 88 kept apart.
    assert values(store, "aqi_published", label(A_MAINTENANCE), period="hour", **a) == [0.0]
    assert values(store, "aqi_computed_aqi", label(A_MAINTENANCE), period="hour", **a) == [88.0]
    assert values(store, "aqi_aqi", label(A_MAINTENANCE), period="hour", **a) == []
    assert values(store, "aqi_published", label(6), period="hour", **a) == [1.0]
    # every other hour of A has its AQI, B's missing hours have none
    assert len(series(store, "aqi_aqi", period="hour", **a)) == 23
    hours_b = series(store, "aqi_aqi", period="hour", **b)
    assert len(hours_b) == 22
    assert ms(label(3)) not in hours_b
    assert ms(label(4)) not in hours_b

    # GB 3095-2026 表1 transitional grade II, 1-h O3 limit 200: A's 250 at 15:00 exceeds it,
    # multiple (250 − 200)/200 = 0.25; no other hourly exceedance (so2 10 < 500, no2 30 < 200,
    # co 0.5 < 10, o3 60 < 200).
    ex_o3 = {"source": STATION_A, "factor": "o3", "period": "hourly"}
    assert values(store, "exceedance_value", label(15), **ex_o3) == [250.0]
    assert values(store, "exceedance_limit", label(15), **ex_o3) == [200.0]
    assert values(store, "exceedance_multiple", label(15), **ex_o3) == [0.25]
    assert list(series(store, "exceedance_value", **ex_o3)) == [ms(label(15))]
    for src in (STATION_A, STATION_B):
        for f in ("so2", "no2", "co"):
            assert not series(store, "exceedance_value", source=src, factor=f, period="hourly")

    # A's O3 8-h moving mean at 15:00: hours 08:00…15:00 = (7 × 60 + 250)/8 = 83.75
    assert values(store, "aggregate_o3_8h", label(15), period="moving", **a) == [83.75]
    # PM2.5 24-h moving mean at 24:00: A 24 × 54 / 24 = 54; B 22 hours of 80 (≥ 20, 表4) = 80
    assert values(store, "aggregate_pm25_24h", label(24), period="moving", **a) == [54.0]
    assert values(store, "aggregate_pm25_24h", label(24), period="moving", **b) == [80.0]

    # ------------------------------------------------------------------ city hourly AQI
    # City value = per factor the mean of the stations' valid values, then the AQI.
    #   both stations: pm25 (54 + 80)/2 = 67 → 100 + 50 × 7/55 = 106.36 → 107
    #     (pm10/so2/no2/co as above: 65, 4, 15, 5; o3 60 → 19)  → city AQI 107
    #   15:00: pm25 67 → 107; o3 (250 + 60)/2 = 155 → 50 × 155/160 = 48.4 → 49 → AQI 107
    #   03:00 and 04:00: station A alone → 88
    # The city hour is written after each station's sample: after A alone first (88; at 15:00
    # A alone is 125), then with B (107).
    city_h = {"locality": LOCALITY, "source": "city", "period": "hour"}
    for h, first, final in ((10, 88.0, 107.0), (15, 125.0, 107.0), (24, 88.0, 107.0)):
        got = values(store, "aqi_aqi", label(h), **city_h)
        assert_writes(got, final, {first, final})
        assert last_fields("aqi", city_h, label(h))["aqi"] == final, h
        assert last_fields("aqi", city_h, label(h))["stations"] == 2
    # 05:00: A alone has no valid PM10 → city NA (5.3.1, as for A); with B's PM10 70 the city
    # means are those of every other hour → 107, the only AQI value written.
    assert values(store, "aqi_aqi", label(A_MAINTENANCE), **city_h) == [107.0]
    for h in B_MISSING:
        assert values(store, "aqi_aqi", label(h), **city_h) == [88.0], h
        assert values(store, "aqi_stations", label(h), **city_h) == [1.0], h

    # ------------------------------------------------------------------ station daily AQI
    # Daily means (GB 3095 表4: ≥ 20 hourly values): A 24 h, B 22 h.
    day_a = {"source": STATION_A, "period": "day", "kind": "air"}
    day_b = {"source": STATION_B, "period": "day", "kind": "air"}
    assert values(store, "aggregate_hours", DAY0, **day_a) == [24.0]
    assert values(store, "aggregate_hours", DAY0, **day_b) == [22.0]
    assert values(store, "aggregate_pm25", DAY0, **day_a) == [54.0]
    assert values(store, "aggregate_pm25", DAY0, **day_b) == [80.0]
    assert values(store, "aggregate_pm10", DAY0, **day_a) == [70.0]  # 23 valid hours of 70
    assert values(store, "aggregate_no2", DAY0, **day_b) == [30.0]
    # A's daily max 8-h O3: the 8-h windows ending 15:00 … 22:00 hold the 250 hour:
    # (7 × 60 + 250)/8 = 83.75; the daily maximum 1-h O3 is 250.
    assert values(store, "aggregate_o3_8h_max", DAY0, **day_a) == [83.75]
    assert values(store, "aggregate_o3_1h_max", DAY0, **day_a) == [250.0]
    assert values(store, "aggregate_o3_8h_max", DAY0, **day_b) == [60.0]
    # HJ 633-2026 daily AQI: daily means + O3 daily max 8-h (表3), no O3 1-h term.
    #   A: pm25 54 → 88; pm10 70 → 65; so2 24-h 10 (0→0, 50→50) → 10; no2 24-h 30 (0→0,
    #      40→50) → 37.5 → 38; co 24-h 0.5 (0→0, 2→50) → 12.5 → 13; o3 8-h 83.75 → 84 (4.2.2
    #      rounding) → 50 × 84/100 = 42.  Daily AQI 88 ≤ 100 → a good day (优良天).
    #   B: pm25 80 → 119 (others as A, o3 8-h 60 → 30).  Daily AQI 119 > 100 → not good.
    #   (The 250 µg/m³ O3 hour, AQI 125, does not make A's day worse: 2026 has no O3 1-h term.)
    assert values(store, "aqi_aqi", DAY0, period="day", **a) == [88.0]
    assert values(store, "aqi_good", DAY0, period="day", **a) == [1.0]
    assert values(store, "aqi_heavy", DAY0, period="day", **a) == [0.0]
    assert values(store, "aqi_iaqi_o3_8h", DAY0, period="day", **a) == [42.0]
    assert values(store, "aqi_aqi", DAY0, period="day", **b) == [119.0]
    assert values(store, "aqi_good", DAY0, period="day", **b) == [0.0]

    # GB 3095-2026 表1 transitional grade II, PM2.5 24-h limit 60: B's 80 exceeds it,
    # multiple (80 − 60)/60 = 0.3333 (4 decimals); A's 54 does not; PM10 70 < 120.
    ex_pm = {"source": STATION_B, "factor": "pm25", "period": "daily"}
    assert values(store, "exceedance_value", DAY0, **ex_pm) == [80.0]
    assert values(store, "exceedance_limit", DAY0, **ex_pm) == [60.0]
    assert values(store, "exceedance_multiple", DAY0, **ex_pm) == [0.3333]
    assert not series(store, "exceedance_value", source=STATION_A, factor="pm25", period="daily")
    assert not series(store, "exceedance_value", source=STATION_B, factor="pm10", period="daily")

    # ------------------------------------------------------------------ city daily AQI
    # The city's daily means are taken over the day's hours of the hourly city means (the
    # locality stage's reading of standards.md §2.5 "city values = arithmetic mean of the city's
    # valid stations" [MEM]). Reading it as the mean of the *stations' daily means* instead would
    # give pm25 (54 + 80)/2 = 67 → 107 here, because B misses two hours: the two readings differ
    # whenever stations miss different hours (reported; HJ 663's text was not available).
    # Mean over the day's hours of the hourly city means:
    #   pm25: 22 hours of 67 (both) + 2 hours of 54 (A alone) → (1474 + 108)/24 = 65.917
    #         → 66 (4.2.2) → 100 + 50 × 6/55 = 105.45 → 106
    #   o3 hourly city means: 60, except (250 + 60)/2 = 155 at 15:00; max 8-h
    #         = (7 × 60 + 155)/8 = 71.875 → 72 → 36
    #   pm10 65, so2 10, no2 38, co 13 as for the stations → city daily AQI 106, not good.
    # The hour labelled 24:00 of station A closes the city day first, B's hour corrects it:
    #   first: pm25 (21 × 67 + 3 × 54)/24 = 65.375 → 65 → 100 + 50 × 5/55 = 104.5 → 105
    city_d = {"locality": LOCALITY, "source": "city", "period": "day"}
    got = values(store, "aqi_aqi", DAY0, **city_d)
    assert_writes(got, 106.0, {105.0, 106.0})
    final_city = last_fields("aqi", city_d, DAY0)
    assert final_city["aqi"] == 106
    assert final_city["good"] is False
    assert final_city["pm25"] == pytest.approx(65.917, abs=1e-3)
    assert final_city["o3_8h"] == pytest.approx(71.875)

    # ------------------------------------------------------------------ water classes
    # GB 3838-2002 表1 (river), single-factor: the worst class of the items.
    #   ph 7.5 (6–9); do 7.0 ≥ 6 → II; codmn 3 ≤ 4 → II; nh3n 0.4 ≤ 0.5 → II; tp 0.08 ≤ 0.1 → II
    #   10:00: nh3n 1.2: > 1.0 (III), ≤ 1.5 → IV; multiple vs III (1.2 − 1.0)/1.0 = 0.2
    #   14:00: tp 0.25: > 0.2 (III), ≤ 0.3 → IV; multiple (0.25 − 0.2)/0.2 = 0.25
    sec = {"source": SECTION}
    grades = {
        h: values(store, "water_class_grade", label(h), period="sample", **sec) for h in WATER_HOURS
    }
    assert grades == {2: [2.0], 6: [2.0], 10: [4.0], 14: [4.0], 18: [2.0], 22: [2.0]}
    assert values(store, "water_class_multiple_nh3n", label(10), period="sample", **sec) == [0.2]
    assert values(store, "water_class_multiple_tp", label(14), period="sample", **sec) == [0.25]
    # against the target class III: IV misses it by one class
    assert values(store, "water_class_meets", label(10), period="sample", **sec) == [0.0]
    assert values(store, "water_class_classes_worse", label(10), period="sample", **sec) == [1.0]
    assert values(store, "water_class_meets", label(6), period="sample", **sec) == [1.0]
    # Day (环办〔2011〕22号: mean of the day's samples, then single-factor), re-emitted per sample:
    #   after 02:00, 06:00: II;  after 10:00: nh3n (0.4 + 0.4 + 1.2)/3 = 0.667 → III
    #   after 14:00: nh3n 2.4/4 = 0.6 III, tp (3 × 0.08 + 0.25)/4 = 0.1225 III → III
    #   final: nh3n (5 × 0.4 + 1.2)/6 = 0.533 → III; tp (5 × 0.08 + 0.25)/6 = 0.108 → III;
    #          do, codmn II → class III, meets the target III.
    got = values(store, "water_class_grade", DAY0, period="day", **sec)
    assert_writes(got, 3.0, {2.0, 3.0})
    water_day = last_fields("water_class", {"locality": LOCALITY, **sec, "period": "day"}, DAY0)
    assert (water_day["grade"], water_day["target"], water_day["meets"]) == (3, 3, True)
    assert water_day["classes_worse"] == 0

    # ------------------------------------------------------------------ flue-gas outlet
    # GB 13271-2014 式(1): C折 = C × (21 − 9)/(21 − 12) = C × 4/3 with O2 12 %, reference 9 %.
    #   so2 120 → 160 (< 200); at 10:00 so2 165 → 220 > 200 (special limit, coal boiler):
    #   the measured 165 is below the limit, the corrected value is not; multiple
    #   (220 − 200)/200 = 0.1.  nox 90 → 120 < 200; pm 15 → 20 < 30.
    out = {"source": OUTLET}
    assert values(store, "emission_hour_so2", label(10), **out) == [165.0]
    assert values(store, "emission_hour_so2_zs", label(10), **out) == [pytest.approx(220.0)]
    assert values(store, "emission_hour_so2_zs", label(9), **out) == [pytest.approx(160.0)]
    assert values(store, "emission_hour_nox_zs", label(9), **out) == [pytest.approx(120.0)]
    assert values(store, "emission_hour_pm_zs", label(9), **out) == [pytest.approx(20.0)]
    ex_so2 = {"source": OUTLET, "factor": "so2", "period": "hour", "kind": "emission"}
    assert values(store, "exceedance_value", label(10), **ex_so2) == [pytest.approx(220.0)]
    assert values(store, "exceedance_limit", label(10), **ex_so2) == [200.0]
    assert values(store, "exceedance_multiple", label(10), **ex_so2) == [pytest.approx(0.1)]
    assert values(store, "exceedance_corrected", label(10), **ex_so2) == [1.0]
    # the only exceedance of the outlet all day
    exceeded = [
        (n, t)
        for (n, ls), v in store.items()
        if n == "exceedance_value" and ("source", OUTLET) in ls
        for t in v
    ]
    assert exceeded == [("exceedance_value", ms(label(10)))]
    # Day (≥ 20 valid hourly means, HJ 212-2017 附录D), labelled by its end (00:00 next day):
    #   so2 (23 × 120 + 165)/24 = 2925/24 = 121.875; corrected × 4/3 = 162.5
    assert values(store, "emission_day_so2", label(24), **out) == [121.875]
    assert values(store, "emission_day_so2_zs", label(24), **out) == [pytest.approx(162.5)]
    assert values(store, "emission_day_valid_hours_so2", label(24), **out) == [24.0]

    # ------------------------------------------------------------------ data quality
    # 数据传输率 = received / expected (standards.md §8); hourly data: 86 400 / 3 600 = 24.
    #   B: 22 of 24 → 0.9167 (4 decimals); A: 24 of 24 → 1; the section: 4-hourly → 6 of 6.
    #   B's values are all valid: 数据有效率 22/22 = 1.
    # The day's point is re-emitted with every sample (received 1, 2, … 22 for B).
    dq_b = {"source": STATION_B, "period": "day"}
    got = values(store, "data_quality_transmission_rate", DAY0, **dq_b)
    assert_writes(got, 0.9167, {round(k / 24, 4) for k in range(1, 23)})
    final_b = last_fields("data_quality", {"kind": "air", "locality": LOCALITY, **dq_b}, DAY0)
    assert (final_b["expected"], final_b["received"]) == (24, 22)
    assert final_b["transmission_rate"] == 0.9167
    assert final_b["valid_rate"] == 1.0
    final_a = last_fields(
        "data_quality",
        {"kind": "air", "locality": LOCALITY, "source": STATION_A, "period": "day"},
        DAY0,
    )
    # A: 24 of 24 received, 23 with every value valid (05:00 has PM10 flagged M):
    # 数据有效率 = valid / received = 23/24 = 0.9583; one value flagged M.
    assert (final_a["received"], final_a["transmission_rate"]) == (24, 1.0)
    assert (final_a["valid"], final_a["valid_rate"], final_a["flag_M"]) == (23, 0.9583, 1)
    final_w = last_fields(
        "data_quality",
        {"kind": "water", "locality": LOCALITY, "source": SECTION, "period": "day"},
        DAY0,
    )
    assert (final_w["expected"], final_w["received"], final_w["transmission_rate"]) == (6, 6, 1.0)
