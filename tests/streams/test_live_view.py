"""The demo's live view, ``--plain`` log and summary (streams/live.py), fed with what the worker
really produces: the winter-episode scenario of the reference catalogue (deploy/config) played
through the worker's pure steps (``streams.steps.EvaluateStep`` → ``LocalityStep``) as
tests/streams/test_steps.py does, each output point and transition handed to the observers the
demo installs.

The replay covers Weifang's air stations and its AQI forecaster only, from 2026-11-20 00:00 to
2026-11-28 06:00 Beijing (day 8 06:00 of the scenario), so every alert and warning in the view can
be derived by hand from the scenario's script (ingest/simulators/scenarios.py, docs/simulators.md):

* natural-day mean PM2.5 of every Weifang station, days 0–8: 55, 70, 95, 175, 210, 265, 320,
  290, 230 µg/m³ (exact: the hourly deviations sum to zero per day), PM10 = 1.25 × PM2.5;
* GB 3095 24-h limits (the 2026 edition's transitional limits, as the alert texts cite them):
  grade II PM2.5 60, PM10 120; grade I (aq-wf-04 峡山水库) PM2.5 35, PM10 50 µg/m³;
  so aq-wf-04 exceeds both from day 0 (55 > 35, 68.75 > 50) — since 11-20 00:00 (a daily alert
  is stamped with its day's 00:00); aq-wf-01…03 exceed PM2.5 from day 1 (70 > 60; day 0's
  55 is within) and PM10 from day 3 (218.75 > 120; day 2's 118.75 is within), and no day up to
  day 8 is back within: 8 open alerts, the oldest 8 d 6 h old at 11-28 06:00;
* heavy-pollution warning (rule set envwatch-default = mee-2018-875, docs/alerts.md §6): red is
  "> 200 for 96 h and > 300 for 48 h". By day 8 06:00 the observed rolling 24-h AQI has been
  above 200 since day 3 (PM2.5 24-h mean > 150 µg/m³ from about 16:30) and above 300 since day 5
  (mean > 250 from about 17:30): 110 h and 60 h, and the forecasts agree, so red is in force;
  no other locality has any data, hence no warning.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from rich.console import Console

from alerts.model import Transition
from alerts.rules import default_rules
from ingest.simulators import simulate, specs_from_catalog
from ingest.simulators.publish import payload_of
from rules.factors import Kind
from streams import topics
from streams.catalog import CatalogView
from streams.live import (
    LiveState,
    Names,
    PlainLog,
    RunSummary,
    reason_kind,
    render,
    summary_lines,
    warning_timeline,
)
from streams.steps import EvaluateStep, LocalityStep
from streams.wire import decode_points

pytestmark = pytest.mark.slow

BJ = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 11, 20, tzinfo=BJ)
STOP = START + timedelta(days=8, hours=6)  # 2026-11-28 06:00
CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "config"
LOCALITIES = (  # the catalogue's display names (deploy/config/*.yaml), in catalogue order
    "莱西市 Laixi",
    "聊城经济技术开发区 Liaocheng ETDZ",
    "济南市天桥区 Jinan Tianqiao",
    "潍坊市 Weifang",
    "烟台市芝罘区 Yantai Zhifu",
)
WEIFANG_STATIONS = (  # deploy/config/weifang.yaml
    "示例站 潍城区 (example)",
    "示例站 奎文区 (example)",
    "示例站 寒亭区 (example)",
    "示例站 峡山水库 (example)",
)
#: HJ 633 表1 (both editions): AQI level bounds, category and colour (附录A).
AQI_LEVELS = (
    (50, "优", "绿色"),
    (100, "良", "黄色"),
    (150, "轻度污染", "橙色"),
    (200, "中度污染", "红色"),
    (300, "重度污染", "紫色"),
    (10_000, "严重污染", "褐红色"),
)


class Replay:
    """The worker's two pure steps, their outputs handed to the demo's observers."""

    def __init__(self, view: CatalogView, state: LiveState, plain: PlainLog) -> None:
        self.evaluate = EvaluateStep(
            view, max_future=timedelta(days=9999), max_past=timedelta(days=9999)
        )
        self.locality = LocalityStep(view, default_rules())
        self.partition: dict[str, Any] = {}
        self.localities: dict[bytes, Any] = {}
        self.state, self.plain = state, plain
        self.city_hours: list[dict[str, Any]] = []

    def point(self, d: dict[str, Any]) -> None:
        self.state.observe_point(d)
        self.plain.observe_point(d)
        tags = d["tags"]
        if d["measurement"] == "aqi" and (tags.get("source"), tags.get("period")) == (
            "city",
            "hour",
        ):
            self.city_hours.append(d)

    def feed(self, offset: int, at: datetime, payload: bytes, key: bytes) -> None:
        ts = round(at.timestamp() * 1000)
        for topic, k, value in self.evaluate(self.partition, key, payload, offset, ts):
            assert topic != topics.DEAD_LETTER, value
            if topic == topics.EVALUATIONS:
                for d in decode_points(value):
                    self.point(d)
            elif topic == topics.AGGREGATES:
                state, outputs = self.locality(self.localities.get(k), k, value, offset, ts)
                self.localities[k] = state
                for topic2, _k2, value2 in outputs:
                    if topic2 == topics.EVALUATIONS:
                        for d in decode_points(value2):
                            self.point(d)
                    elif topic2 == topics.ALERT_EVENTS:
                        t = Transition.from_dict(orjson.loads(value2))
                        self.state.observe_transition(t)
                        self.plain.observe_transition(t)


@pytest.fixture(scope="module")
def run() -> tuple[LiveState, list[str], Replay]:
    view = CatalogView(CONFIG)
    specs = [
        s
        for s in specs_from_catalog(view.catalog)
        if s.locality == "weifang" and s.kind in (Kind.AIR, Kind.FORECAST)
    ]
    names = Names.from_catalog(view.catalog)
    state = LiveState(
        names=names, scenario="winter-episode", start=START, end=START + timedelta(hours=288)
    )
    lines: list[str] = []
    plain = PlainLog(names, lambda text: lines.append(text.plain))
    replay = Replay(view, state, plain)
    deliveries = simulate(specs, start=START, hours=288, seed=0, scenario="winter-episode")
    for offset, d in enumerate(deliveries):
        if d.at > STOP:
            break
        replay.feed(offset, d.at, payload_of(d.sample), d.sample.source.encode())
        state.played_to = d.at
    plain.flush()
    return state, lines, replay


def rendered(state: LiveState) -> str:
    console = Console(file=io.StringIO(), width=240, color_system=None)
    console.print(render(state))
    out = console.file.getvalue()
    assert isinstance(out, str)
    return out


def rows(text: str) -> dict[str, str]:
    """Each locality's row of the table (with its continuation lines)."""
    lines = text.splitlines()
    starts = [
        (i, name)
        for i, line in enumerate(lines)
        for name in LOCALITIES
        if line.startswith(f" {name} ")
    ]
    out: dict[str, str] = {}
    for (i, name), nxt in zip(starts, [*starts[1:], (len(lines), "")], strict=True):
        end = next((j for j in range(i + 1, nxt[0]) if not lines[j].strip()), nxt[0])
        out[name] = "\n".join(lines[i:end])
    return out


def category(aqi: int) -> tuple[str, str]:
    return next((c, colour) for top, c, colour in AQI_LEVELS if aqi <= top)


def test_one_row_per_locality_in_catalogue_order(run: tuple[LiveState, list[str], Replay]) -> None:
    state, _, _ = run
    table = rows(rendered(state))
    assert list(table) == list(LOCALITIES)


def test_weifang_row_shows_the_red_warning_its_aqi_and_the_stations_in_exceedance(
    run: tuple[LiveState, list[str], Replay],
) -> None:
    state, _, replay = run
    text = rendered(state)
    weifang = rows(text)["潍坊市 Weifang"]
    assert "■ 红色预警 red" in weifang
    # the latest city hour as published: 06:00, its value and its HJ 633 category and colour
    latest = replay.city_hours[-1]
    assert latest["time"] == "2026-11-28T06:00:00+08:00"
    aqi = latest["fields"]["aqi"]
    name, colour = category(aqi)
    assert f"{aqi} {name} ({colour})" in weifang
    assert "最新整点 latest hour 2026-11-28 06:00" in text
    for station in WEIFANG_STATIONS:
        assert station in weifang
    # 8 open alerts, the oldest (aq-wf-04, since 11-20 00:00) 8 d 6 h old
    first_line = weifang.splitlines()[0]
    assert " 8 " in first_line
    assert "8 d 6 h" in first_line


def test_other_localities_have_no_data_no_warning_no_alert(
    run: tuple[LiveState, list[str], Replay],
) -> None:
    state, _, _ = run
    table = rows(rendered(state))
    for name in LOCALITIES:
        if name == "潍坊市 Weifang":
            continue
        cells = table[name].split()
        assert "无" in cells, table[name]  # 无 none: no warning
        assert "0" in cells, table[name]  # no open alert


def test_open_alerts_listed_with_their_age_in_simulated_time(
    run: tuple[LiveState, list[str], Replay],
) -> None:
    state, _, _ = run
    text = rendered(state)
    assert "告警 open alerts (8)" in text
    listed = [line for line in text.splitlines() if "空气质量超标：" in line]
    assert len(listed) == 8
    got = sorted((line.split()[0], line.split()[2], line.split()[3]) for line in listed)
    # (since, age) per station and factor, from the daily means and limits in the docstring
    expected = sorted(
        [("11-20", "8", "d")] * 2  # aq-wf-04 PM2.5 and PM10: 11-20 00:00, 8 d 6 h
        + [("11-21", "7", "d")] * 3  # aq-wf-01…03 PM2.5: 11-21 00:00, 7 d 6 h
        + [("11-23", "5", "d")] * 3  # aq-wf-01…03 PM10: 11-23 00:00, 5 d 6 h
    )
    assert got == expected
    assert all("6 h" in line for line in listed)
    assert "(aq-wf-04) PM2.5 24 小时平均" in text


def test_progress_and_pipeline_counters(run: tuple[LiveState, list[str], Replay]) -> None:
    state, _, _ = run
    state.pipeline(100.0, published=900, received=880, evaluated=850, dead_letters=2)
    state.pipeline(102.0, published=1000, received=990, evaluated=950, dead_letters=2)
    text = rendered(state)
    # day 8 06:00 of 12 days: 8.25 / 12 = 69 %
    assert "69 %" in text
    assert "(第 9 / 12 天 day)" in text
    assert "评估 worker evaluated 950" in text
    assert "50 samples/s" in text  # (950 − 850) / 2 s
    assert "积压 lag 50" in text  # published − evaluated
    assert "死信 dead letters 2" in text


def test_plain_prints_each_city_hour_once_in_event_time_order(
    run: tuple[LiveState, list[str], Replay],
) -> None:
    _, lines, replay = run
    hours = [line for line in lines if "城市AQI city AQI" in line]
    # hours labelled 11-20 01:00 … 11-28 06:00: 8 × 24 + 6
    assert len(hours) == 198
    assert len({line[:16] for line in hours}) == 198
    # the value printed is the hour's final value (the last rewrite), an integer as published
    final = {d["time"][:16].replace("T", " "): d["fields"]["aqi"] for d in replay.city_hours}
    for line in hours:
        value = line.split("潍坊市 Weifang")[1].split()[0]
        assert value == str(final[line[:16]])
    times = [line[:16] for line in lines if line[:4] == "2026" and "全天" not in line]
    assert times == sorted(times)
    # a day's AQI after its last hour (labelled the next day's 00:00): days 11-20 … 11-27
    days = [line for line in lines if "日AQI daily AQI" in line]
    assert [d[:10] for d in days] == [f"2026-11-{d}" for d in range(20, 28)]
    for d in days:
        i = lines.index(d)
        next_midnight = (datetime.fromisoformat(d[:10]) + timedelta(days=1)).strftime("%Y-%m-%d")
        assert lines[i - 1].startswith(f"{next_midnight} 00:00"), lines[i - 1]


def test_plain_warning_lines(run: tuple[LiveState, list[str], Replay]) -> None:
    _, lines, _ = run
    warnings = [line for line in lines if "■ 预警 warning" in line]
    assert warnings, lines[:5]
    assert warnings[-1].endswith("升级 红色预警 red (upgraded)")
    assert all("潍坊市 Weifang" in w for w in warnings)


def test_warning_timeline_is_per_locality_with_beijing_times(
    run: tuple[LiveState, list[str], Replay],
) -> None:
    state, _, _ = run
    lines = warning_timeline(state.warning_log, state.names)
    assert lines[0] == "重污染天气预警 heavy-pollution warnings (Beijing time)"
    assert lines[1] == "  潍坊市 Weifang"
    assert lines[-2].startswith("    2026-11-")
    assert lines[-2].endswith("升级 upgraded   红色预警 red")
    assert lines[-1] == (
        "  无预警 no warning: 莱西市 Laixi, 聊城经济技术开发区 Liaocheng ETDZ, "
        "济南市天桥区 Jinan Tianqiao, 烟台市芝罘区 Yantai Zhifu"
    )


def test_summary_counts_rules_receivers_dead_letters_and_names_the_outputs(
    run: tuple[LiveState, list[str], Replay], tmp_path: Path
) -> None:
    state, _, _ = run
    summary = RunSummary(
        published=1000,
        produced=1000,
        evaluated=990,
        notifications={"duty-weifang": 12, "emergency-weifang": 3, "enterprise-e-wf-01": 1},
        bad_signatures=0,
        outbox_pending=0,
        outbox_failed=2,
        dead_letters={("evaluate", "time <time> is more than 1:00:00 after receipt"): 4},
        out_dir=tmp_path,
        alerts_log=tmp_path / "alerts.jsonl",
        lp_files=[tmp_path / "a.lp"],
        lp_lines=1234,
    )
    text = "\n".join(summary_lines(state, summary))
    # 8 alerts fired (4 stations × PM2.5 and PM10), none resolved, 8 open
    rule_line = next(line for line in text.splitlines() if "ambient-exceedance" in line)
    assert rule_line.split()[-3:] == ["8", "0", "8"]
    assert "空气质量超标" in rule_line
    assert "通知 notifications delivered: 16 signed webhooks" in text
    assert "outbox: 0 pending, 2 refused or failed)" in text
    assert "duty-weifang 潍坊市 Weifang 值班 duty officers" in text
    assert "enterprise-e-wf-01 示例热电有限公司 (example)" in text
    assert "死信 dead letters by reason: 4" in text
    assert "4  evaluate: time <time> is more than 1:00:00 after receipt" in text
    assert f"输出 outputs in {tmp_path}" in text
    assert "alerts.jsonl" in text
    assert "1,234 lines of line protocol (a.lp)" in text


def test_dead_letter_reasons_lose_their_particulars() -> None:
    assert (
        reason_kind("time 2026-12-04T00:00:00+08:00 is more than 1:00:00 after receipt")
        == "time <time> is more than 1:00:00 after receipt"
    )
    assert reason_kind("quoted 'aq-xx-09' name") == "quoted '…' name"
    # the evaluate stage's catalogue and physics checks: one line per check
    assert reason_kind("unknown source 'aq-xx-09' (not in the catalogue)") == "unknown source"
    assert (
        reason_kind("out of range: source 'aq-wf-01' pm25 '1.7e+308': outside [0, 20000] ug/m3")
        == "out of range"
    )
