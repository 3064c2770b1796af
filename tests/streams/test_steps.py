"""The worker's steps (streams/steps.py) together, as the agents and ``envwatch backtest`` run
them: clocks that cannot be fooled.

Offline is decided from the evaluate stage's partition clock (the newest event time of the
observations that flowed through the partition): a source of a partition that lags behind after a
backlog is not "silent" while its own partition catches up, an AQI forecast labelled days ahead
moves no clock, and a source that resumes resolves its alert whatever order records arrive in.
The reference catalogue (deploy/config) supplies the sources: Weifang's air stations aq-wf-01 …
aq-wf-03 report hourly, so they are offline after max(the offline rule's 120 min [MEM],
3 × 60 min) = 180 min of silence (alerts.engine.OFFLINE_INTERVALS), stamped last sample + 3 h.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from alerts.locality import LocalityState
from alerts.model import Transition
from alerts.rules import default_rules
from streams import topics
from streams.catalog import CatalogView
from streams.steps import CLOCK_KEY, EvaluateStep, LocalityStep

BJ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 12, 1, tzinfo=BJ)
H = timedelta(hours=1)
CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "config"
STATIONS = ("aq-wf-01", "aq-wf-02", "aq-wf-03")


@pytest.fixture(scope="module")
def view() -> CatalogView:
    return CatalogView(CONFIG)


def air(source: str, at: datetime) -> bytes:
    values = {
        f: {"value": v, "flag": "N"}
        for f, v in {
            "pm25": 40.0,
            "pm10": 70.0,
            "so2": 9.0,
            "no2": 30.0,
            "co": 0.6,
            "o3": 50.0,
        }.items()
    }
    return orjson.dumps(
        {
            "kind": "air",
            "locality": "weifang",
            "source": source,
            "time": at.isoformat(),
            "interval": "hour",
            "values": values,
        }
    )


def forecast(at: datetime, aqi: float) -> bytes:
    return orjson.dumps(
        {
            "kind": "forecast",
            "locality": "weifang",
            "source": "fc-weifang",
            "time": at.isoformat(),
            "interval": "day",
            "values": {"aqi": {"value": aqi, "flag": "N"}},
        }
    )


class Pipeline:
    """Evaluate partitions → locality step, in the order records are handed to it."""

    def __init__(self, view: CatalogView) -> None:
        self.evaluate = EvaluateStep(
            view, max_future=timedelta(days=9999), max_past=timedelta(days=9999)
        )
        self.locality = LocalityStep(view, default_rules())
        self.partitions: dict[int, dict[str, Any]] = {}
        self.state: LocalityState | None = None
        self.offset = 0

    def feed(
        self, partition: int, value: bytes, received: datetime | None = None
    ) -> list[Transition]:
        self.offset += 1
        sample_time = datetime.fromisoformat(orjson.loads(value)["time"])
        ts = round((received or sample_time).timestamp() * 1000)
        states = self.partitions.setdefault(partition, {})
        out: list[Transition] = []
        for topic, key, v in self.evaluate(states, b"k", value, self.offset, ts):
            assert topic != topics.DEAD_LETTER, v
            if topic == topics.AGGREGATES:
                self.state, results = self.locality(self.state, key, v, self.offset, ts)
                out += [
                    Transition.from_dict(orjson.loads(r))
                    for t, _k, r in results
                    if t == topics.ALERT_EVENTS
                ]
        return out


def offline(ts: list[Transition]) -> list[tuple[str, str, datetime]]:
    return [(t.source, t.state.value, t.at) for t in ts if t.labels.get("rule") == "offline"]


def test_a_station_is_offline_after_three_missed_hours_and_resumes(view: CatalogView) -> None:
    p = Pipeline(view)
    got: list[Transition] = []
    for h in range(1, 4):  # 01:00 … 03:00: all three report
        for s in STATIONS:
            got += p.feed(0, air(s, T0 + h * H))
    for h in range(4, 7):  # 04:00 … 06:00: aq-wf-03 silent, not yet 3 h
        for s in STATIONS[:2]:
            got += p.feed(0, air(s, T0 + h * H))
    assert offline(got) == []
    # the clock passes 06:00 + 10 min only with the 07:00 data: offline, stamped 03:00 + 3 h
    got = p.feed(0, air("aq-wf-01", T0 + 7 * H))
    assert offline(got) == [("aq-wf-03", "firing", T0 + 6 * H)]
    assert offline(p.feed(0, air("aq-wf-02", T0 + 7 * H))) == []  # others change nothing
    got = p.feed(0, air("aq-wf-03", T0 + 8 * H))
    assert [(s, st) for s, st, _ in offline(got)] == [("aq-wf-03", "resolved")]


def test_a_lagging_partition_makes_nobody_offline(view: CatalogView) -> None:
    """Partition 0 (aq-wf-01) is caught up to 12:00 while partition 1 (aq-wf-02, aq-wf-03) is
    still replaying a backlog from 01:00: each partition has its own clock, so neither the
    lagging stations nor the caught-up one are declared offline."""
    p = Pipeline(view)
    got: list[Transition] = []
    for h in range(1, 13):
        got += p.feed(0, air("aq-wf-01", T0 + h * H))
    for h in range(1, 13):
        for s in STATIONS[1:]:
            got += p.feed(1, air(s, T0 + h * H))
    assert offline(got) == []
    clock = p.partitions[1][CLOCK_KEY]
    assert clock["t"] == (T0 + 12 * H).timestamp()


def test_a_forecast_days_ahead_moves_no_clock(view: CatalogView) -> None:
    """A forecast for three days ahead (labelled with the end of its target day) neither moves
    the partition clock nor the locality's watermark; the stations reporting every hour stay
    online and the forecaster itself is never 'offline'."""
    p = Pipeline(view)
    got: list[Transition] = []
    for h in range(1, 3):
        for s in STATIONS:
            got += p.feed(0, air(s, T0 + h * H))
    got += p.feed(0, forecast(T0 + 4 * 24 * H, 180.0), received=T0 + 2 * H)
    for h in range(3, 30):
        for s in STATIONS:
            got += p.feed(0, air(s, T0 + h * H))
    assert offline(got) == []
    assert p.partitions[0][CLOCK_KEY]["t"] == (T0 + 29 * H).timestamp()
    assert p.state is not None
    assert p.state.watermark == T0 + 29 * H


def test_a_sample_ahead_of_its_receipt_cannot_push_the_clock(view: CatalogView) -> None:
    """A logger whose clock runs five hours ahead: its sample counts for the partition clock only
    up to its receipt time, so the other stations are not declared silent."""
    p = Pipeline(view)
    got: list[Transition] = []
    for h in range(1, 4):
        for s in STATIONS:
            got += p.feed(0, air(s, T0 + h * H))
    got += p.feed(0, air("aq-wf-01", T0 + 9 * H), received=T0 + 4 * H)
    assert offline(got) == []
    assert p.partitions[0][CLOCK_KEY]["t"] == (T0 + 4 * H).timestamp()


def test_a_wwtp_day_is_judged_against_gb18918_and_its_stricter_local_limits(
    view: CatalogView,
) -> None:
    """莱西市污水处理厂 10万吨/日 出水口 (e-lx-wwtp-w1): the catalogue gives GB 18918-2002 一级A and
    Laixi's stricter day limits COD ≤ 40, NH3-N ≤ 2 (003_021375295357aa36.txt#L114).

    A day of hourly samples with COD 35 (within 40 and 一级A's 50), NH3-N 1.0 (within 2) and
    TN 20 mg/L: GB 18918-2002 表1 一级A TN is 15, no local limit is stricter → the day's
    effluent verdict holds TN 20 against 15 and an effluent alert for TN opens, stamped with
    the end of the day (an outlet day is labelled with its end); COD and NH3-N are within."""
    p = Pipeline(view)
    got: list[Transition] = []
    for h in range(1, 25):
        value = orjson.dumps(
            {
                "kind": "emission",
                "locality": "laixi",
                "source": "e-lx-wwtp-w1",
                "time": (T0 + h * H).isoformat(),
                "interval": "hour",
                "values": {
                    f: {"value": v, "flag": "N"}
                    for f, v in {"cod": 35.0, "nh3n": 1.0, "tn": 20.0, "tp": 0.2, "ph": 7.2}.items()
                },
            }
        )
        got += p.feed(0, value)
    effluent = [
        (t.labels["factor"], t.state.value, t.at, t.value, t.limit)
        for t in got
        if t.labels.get("rule") == "effluent-exceedance"
    ]
    assert effluent == [("tn", "firing", T0 + 24 * H, 20.0, 15.0)]


def test_a_forecast_may_be_labelled_days_ahead_of_its_receipt(view: CatalogView) -> None:
    """A forecast of a day three days ahead (HJ 633-2026: forecasts of at least the next three
    days) is labelled with that day: it passes, where a sample of a monitor labelled a day ahead
    of its receipt is dead-lettered. Beyond FORECAST_HORIZON (10 days, envwatch's bound) a
    forecast is dead-lettered too."""
    step = EvaluateStep(view, max_future=timedelta(hours=1), max_past=timedelta(days=400))
    states: dict[str, Any] = {}
    received = round((T0 + 20 * H).timestamp() * 1000)

    def topics_of(value: bytes) -> list[str]:
        return [t for t, _k, _v in step(states, b"k", value, 1, received)]

    assert topics.DEAD_LETTER not in topics_of(forecast(T0 + 4 * 24 * H, 180.0))
    assert topics_of(forecast(T0 + 12 * 24 * H, 180.0)) == [topics.DEAD_LETTER]
    assert topics_of(air("aq-wf-01", T0 + 44 * H)) == [topics.DEAD_LETTER]
