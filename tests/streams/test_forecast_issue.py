"""AQI forecasts as their own input (rules/forecast.py): one record per issue, its event time the
issue time, never dead-lettered for describing future days, never moving a clock — through the
bridge's validation, the evaluate stage, the locality stage's warning step and the backtest's
readers.

Rule set envwatch-default (= 环办大气函〔2018〕875号, standards.md §6.1 [2+]): yellow when AQI
> 200 is expected for 48 h.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from alerts.rules import default_rules
from ingest.bridge import normalise
from streams import topics
from streams.catalog import CatalogView
from streams.cli.backtest import PipelineReplay, read_readings
from streams.lineprotocol import line as lp_line
from streams.steps import CLOCK_KEY, EvaluateStep
from streams.wire import decode_points, decode_sample

BJ = ZoneInfo("Asia/Shanghai")
CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "config"
ISSUED = datetime(2026, 11, 20, 16, tzinfo=BJ)
TOPIC = "env/forecast/weifang/fc-weifang"


def issue(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schema": 1,
        "kind": "forecast",
        "locality": "weifang",
        "source": "fc-weifang",
        "time": ISSUED.isoformat(),
        "issuer": "潍坊市环境监测中心",
        "days": [
            {"date": "2026-11-21", "aqi": 160, "primary": "pm25"},
            {"date": "2026-11-22", "aqi_min": 200, "aqi_max": 260, "primary": "pm25"},
            {"date": "2026-11-23", "aqi": 240, "primary": "pm25"},
        ],
    }
    body.update(over)
    return body


def step() -> EvaluateStep:
    return EvaluateStep(
        CatalogView(CONFIG), max_future=timedelta(hours=1), max_past=timedelta(days=400)
    )


def evaluate(value: bytes, received: datetime = ISSUED) -> tuple[dict[str, Any], list[Any]]:
    states: dict[str, Any] = {}
    outs = step()(states, b"fc-weifang", value, 7, round(received.timestamp() * 1000))
    return states, outs


def test_the_bridge_validates_an_issue_and_names_what_is_wrong() -> None:
    key, canonical = normalise(TOPIC, orjson.dumps(issue()))
    assert key == b"fc-weifang"
    assert orjson.loads(canonical)["days"][1] == {
        "date": "2026-11-22",
        "aqi_min": 200,
        "aqi_max": 260,
        "primary": "pm25",
    }
    bad = {
        "days.0.aqi": issue(days=[{"date": "2026-11-21", "aqi": 600}]),
        "aqi_min exceeds aqi_max": issue(days=[{"date": "2026-11-21", "aqi_min": 3, "aqi_max": 2}]),
        "days[0].primary": issue(days=[{"date": "2026-11-21", "aqi": 90, "primary": "dust"}]),
        "issuer": issue(issuer=""),
        "days.0.wind": issue(days=[{"date": "2026-11-21", "aqi": 90, "wind": 3}]),
    }
    for expected, body in bad.items():
        with pytest.raises(ValueError, match="invalid forecast issue") as caught:
            normalise(TOPIC, orjson.dumps(body))
        assert expected in str(caught.value), caught.value
    with pytest.raises(ValueError, match="does not match the payload"):
        normalise("env/forecast/laixi/fc-weifang", orjson.dumps(issue()))


def test_an_issue_about_future_days_passes_and_moves_no_clock() -> None:
    _, canonical = normalise(TOPIC, orjson.dumps(issue()))
    states, outs = evaluate(canonical)
    assert CLOCK_KEY not in states  # no observation: the partition's clock is untouched
    assert states == {}
    assert [t for t, _, _ in outs] == [topics.EVALUATIONS, topics.AGGREGATES]
    [point] = decode_points(outs[1][2])
    assert point["measurement"] == "forecast"
    assert datetime.fromisoformat(point["time"]) == ISSUED  # stamped with its issue time
    assert point["fields"]["max_aqi"] == 260  # the range counts with its upper bound


@pytest.mark.parametrize(
    ("body", "received", "reason"),
    [
        # a day more than 10 days after the issue day
        (issue(days=[{"date": "2026-12-05", "aqi": 90}]), ISSUED, "days.date"),
        # a day before the issue day
        (issue(days=[{"date": "2026-11-19", "aqi": 90}]), ISSUED, "days.date"),
        # issued "in the future": the issue time more than an hour after its receipt
        (issue(), ISSUED - timedelta(hours=2), "issue time"),
        # a locality the catalogue does not have
        (issue(locality="atlantis"), ISSUED, "not in the catalogue"),
    ],
)
def test_a_bad_issue_is_dead_lettered_with_its_reason(
    body: dict[str, Any], received: datetime, reason: str
) -> None:
    states, outs = evaluate(orjson.dumps(body), received)
    assert [t for t, _, _ in outs] == [topics.DEAD_LETTER]
    assert reason in orjson.loads(outs[0][2])["reason"]
    assert states == {}


def test_yellow_is_issued_at_the_issue_time_from_the_forecast_alone() -> None:
    """21 Nov 160 (not > 200), 22 Nov 200–260 (counts as 260) and 23 Nov 240: AQI > 200 from
    22 Nov 00:00 for 48 h → yellow, decided at the issue time (20 Nov 16:00), 32 h ahead."""
    replay = PipelineReplay(CatalogView(CONFIG), default_rules())
    _, canonical = normalise(TOPIC, orjson.dumps(issue()))
    got = replay.feed(1, decode_sample(canonical))
    warnings = [t for t in got if t.kind.value == "warning"]
    assert [(t.reason.value, t.level, t.at) for t in warnings] == [
        ("warning_issued", "yellow", ISSUED)
    ]
    assert warnings[0].annotations["lead_hours"] == "32.0"
    # without the range's upper bound (a lower forecast for 22 Nov) nothing is issued
    calm = PipelineReplay(CatalogView(CONFIG), default_rules())
    days = [{"date": "2026-11-22", "aqi": 190}, {"date": "2026-11-23", "aqi": 240}]
    _, canonical = normalise(TOPIC, orjson.dumps(issue(days=days)))
    assert [t for t in calm.feed(1, decode_sample(canonical)) if t.kind.value == "warning"] == []


def test_the_stored_issue_replays_as_the_same_issue() -> None:
    _, canonical = normalise(TOPIC, orjson.dumps(issue()))
    _, outs = evaluate(canonical)
    [stored] = decode_points(outs[0][2])
    text = lp_line(stored["measurement"], stored["tags"], stored["fields"], stored["ns"])
    [got] = list(read_readings([text], lambda _s, _k: "hour"))
    assert isinstance(got, tuple), got
    number, sample, received = got
    assert (number, received) == (1, ISSUED)
    assert sample.forecast is not None
    assert sample.forecast.issuer == "潍坊市环境监测中心"
    assert [d.expected for d in sample.forecast.days] == [160, 260, 240]
