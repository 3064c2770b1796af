"""``streams.report``: the page made from a small hand-made output directory.

The directory holds one Beijing day (2026-11-24) of Weifang's city AQI — hours labelled 01:00 …
24:00 rising from 70 to 300 (良 … 重度污染), the day's AQI 180 — and an hour of Laixi; daily data
quality of three sources; a dead letter; a yellow warning issued at 10:00, raised to orange at
14:00 and lifted at 20:00; an ambient alert of station aq-wf-01 firing 08:00 – 12:00, one of
aq-wf-02 firing from 18:00 to the end, a pending one that never fired; and malformed lines.
The span drawn is the day (00:00 – 24:00), so times map to x = 196 + h / 24 × 944.
"""

from __future__ import annotations

import gzip
import re
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from alerts.model import Transition
from rules.aqi import aqi_level
from streams import report as rep
from streams.agents.notify import alerts_log_line
from streams.lineprotocol import line, ns
from streams.report import write_report

BJ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 24, tzinfo=BJ)
H = timedelta(hours=1)
CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "config"
LEFT, RIGHT = 196.0, 1140.0


def x_at(hours: float) -> float:
    return LEFT + hours / 24 * (RIGHT - LEFT)


# ---------------------------------------------------------------------------- the directory


def city(locality: str, at: datetime, aqi: int, period: str = "hour") -> str:
    row = aqi_level(aqi)
    return line(
        "aqi",
        {"locality": locality, "source": "city", "period": period},
        {
            "aqi": aqi,
            "published": True,
            "level": row.level,
            "category": row.category,
            "color": row.color,
            "primary": "pm25",
        },
        ns(at),
    )


def quality(locality: str, source: str, kind: str, transmission: float, valid: float) -> str:
    return line(
        "data_quality",
        {"kind": kind, "locality": locality, "source": source, "period": "day"},
        {"expected": 24, "transmission_rate": transmission, "valid_rate": valid},
        ns(T0),
    )


def transition(
    kind: str,
    source: str,
    state: str,
    reason: str,
    hour: int,
    *,
    rule: str = "ambient-exceedance",
    level: str | None = None,
    summary: str = "",
) -> dict[str, Any]:
    labels = {"rule": rule, "source": source, "factor": "pm25", "locality": "weifang"}
    if kind == "alert":
        labels["period"] = "24h"
    return {
        "id": f"{source}-{state}-{reason}-{hour}",
        "kind": kind,
        "fingerprint": f"fp-{source}",
        "labels": labels,
        "annotations": {"summary": summary, "rule_set": "envwatch-default"},
        "state": state,
        "previous_state": None,
        "reason": reason,
        "at": (T0 + hour * H).isoformat(),
        "severity": "warning",
        "locality": "weifang",
        "source": source,
        "level": level,
        "suppressed": [],
        "suppressed_by": [],
        "actor": None,
        "note": None,
        "value": None,
        "limit": None,
    }


def make_dir(tmp_path: Path) -> Path:
    out = tmp_path / "run"
    out.mkdir()
    lines = [city("weifang", T0 + H, 999)]  # rewritten below: the store keeps the last one
    lines += [city("weifang", T0 + h * H, 60 + 10 * h) for h in range(1, 25)]
    lines.append(city("weifang", T0, 180, period="day"))
    lines.append(city("laixi", T0 + 5 * H, 45))
    lines.append("this is not line protocol")  # line 28
    lines.append(
        "aqi,locality=weifang,period=hour,source=city aqi=12x 1795107600000000000"
    )  # line 29
    lines += [
        quality("weifang", "aq-wf-02", "air", 1.0, 0.95),
        quality("weifang", "aq-wf-01", "air", 0.5, 1.0),
        quality("weifang", "fc-weifang", "forecast", 1.0, 1.0),  # forecasts: no data rate
        line(
            "dead_letter",
            {"stage": "evaluate"},
            {"reason": "time 2026-11-25T09:00:00+08:00 is more than 1:00:00 after receipt"},
            ns(T0 + 3 * H),
        ),
    ]
    (out / "envwatch-0001.lp").write_text("\n".join(lines) + "\n", encoding="utf-8")
    records = [
        transition("alert", "aq-wf-01", "firing", "condition_met_no_wait", 8, summary="空气质量超标：PM2.5 超标"),
        transition("warning", "weifang", "firing", "warning_issued", 10, level="yellow",
                   rule="heavy_pollution_warning", summary="潍坊市 重污染天气黄色预警"),
        transition("alert", "aq-wf-01", "resolved", "clear_condition_met", 12),
        transition("warning", "weifang", "firing", "warning_upgraded", 14, level="orange",
                   rule="heavy_pollution_warning", summary="潍坊市 重污染天气橙色预警"),
        transition("alert", "aq-wf-03", "pending", "condition_met", 15),
        transition("alert", "aq-wf-02", "firing", "condition_met_no_wait", 18, summary="空气质量超标：仍超标"),
        transition("warning", "weifang", "resolved", "warning_lifted", 20, level="none",
                   rule="heavy_pollution_warning", summary="潍坊市 解除重污染天气预警"),
    ]  # fmt: skip
    text = b""
    for i, r in enumerate(records):
        # the worker's record (notify.alerts_log_line) and a bare Transition.to_dict() alike
        t = Transition.from_dict(r)
        text += alerts_log_line(t) if i % 2 else orjson.dumps(t.to_dict()) + b"\n"
    text += b"{oops\n"  # line 8
    (out / "alerts.jsonl").write_bytes(text)
    return out


# ---------------------------------------------------------------------------- the page


class Page(HTMLParser):
    """The elements (tag, attributes) and every table's rows of cell texts."""

    def __init__(self, source: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.tables: dict[str, list[list[str]]] = {}
        self.text: list[str] = []
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._in_body = False
        self.feed(source)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.elements.append((tag, a))
        if tag == "table":
            self._table = a.get("class", "")
            self.tables[self._table] = []
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._table is not None and self._in_body:
            self.tables[self._table].append([])
        elif tag == "td" and self._table is not None and self._in_body:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append(" ".join(" ".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table, self._in_body = None, False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [
            a
            for t, a in self.elements
            if t == tag
            and all(a.get(k.rstrip("_").replace("_", "-")) == v for k, v in attrs.items())
        ]


@pytest.fixture
def page(tmp_path: Path) -> Page:
    path = write_report(make_dir(tmp_path), config=CONFIG, title="测试 test")
    assert path == tmp_path / "run" / "report.html"
    return Page(path.read_text(encoding="utf-8"))


def test_one_row_and_one_card_per_locality_named_from_the_catalogue(page: Page) -> None:
    rows = page.tables["overview"]
    names = [r[0] for r in rows]
    assert names[:5] == [
        "莱西市 Laixi (laixi)",
        "聊城经济技术开发区 Liaocheng ETDZ (liaocheng-etdz)",
        "济南市天桥区 Jinan Tianqiao (tianqiao)",
        "潍坊市 Weifang (weifang)",
        "烟台市芝罘区 Yantai Zhifu (zhifu)",
    ]
    weifang = rows[3]
    assert weifang[1].startswith("300 重度污染")  # the latest hour: 24:00
    assert weifang[2].startswith("180 中度污染")  # the day
    assert weifang[3] == "无 none"  # lifted before the end
    assert weifang[4] == "■ 橙色预警 orange"  # the highest level
    assert weifang[5:7] == ["2", "1"]  # alerts fired, still firing
    assert weifang[7].startswith("50.0 %")  # aq-wf-01's transmission, forecasts left out
    assert [a["data-locality"] for a in page.find("div", class_="card locality")] == [
        "laixi",
        "liaocheng-etdz",
        "tianqiao",
        "weifang",
        "zhifu",
    ]
    assert "测试 test" in "".join(page.text)


def test_the_aqi_chart_draws_each_hour_in_its_level_colour_and_the_last_rewrite_wins(
    page: Page,
) -> None:
    hours = page.find("path", class_="aqi-hour")
    # Weifang: 70 … 300 → levels 2 … 5 (the 999 of the first write was rewritten), Laixi: 45
    assert sorted((p["data-level"], p["fill"]) for p in hours) == [
        ("1", "#00E400"),
        ("2", "#FFFF00"),
        ("3", "#FF7E00"),
        ("4", "#FF0000"),
        ("5", "#99004C"),
    ]
    level5 = next(p for p in hours if p["data-level"] == "5")
    assert level5["d"].count("M") == 10  # 210 … 300: hours 15 … 24
    # the hour labelled 24:00 covers 23:00 – 24:00, at the right edge, down to the base line
    assert level5["d"].endswith(f"H{RIGHT:.1f}V224.0H{x_at(23):.1f}Z")
    day = page.find("path", class_="aqi-day")
    assert len(day) == 1  # Laixi has no day point
    assert day[0]["d"].startswith(f"M{LEFT:.1f} ")
    assert day[0]["d"].endswith(f"H{RIGHT:.1f}")


def test_the_warning_band_runs_from_each_change_with_its_level_colour(page: Page) -> None:
    bands = page.find("g", class_="warning-band")
    assert [(b["data-level"], b["data-open"]) for b in bands] == [
        ("yellow", "false"),
        ("orange", "false"),
    ]
    text = "".join(page.text)
    assert "黄色预警" in text
    assert "橙色预警 orange" in text
    fills = [a for t, a in page.elements if t == "rect" and a.get("fill") in ("#FFFF00", "#FF7E00")]
    strips = [a for a in fills if a.get("height") == "20.0"]  # the band above the plot
    assert [(s["fill"], s["x"], s["width"]) for s in strips] == [
        ("#FFFF00", f"{x_at(10):.1f}", f"{x_at(14) - x_at(10):.1f}"),
        ("#FF7E00", f"{x_at(14):.1f}", f"{x_at(20) - x_at(14):.1f}"),
    ]


def test_alert_intervals_run_from_firing_to_resolved_or_to_the_end(page: Page) -> None:
    bars = page.find("rect", data_rule="ambient-exceedance")
    got = [(b["data-source"], b["class"], b["x"], b["width"]) for b in bars]
    assert got == [
        ("aq-wf-01", "alert-bar", f"{x_at(8):.1f}", f"{x_at(12) - x_at(8):.1f}"),
        ("aq-wf-02", "alert-bar open", f"{x_at(18):.1f}", f"{RIGHT - x_at(18):.1f}"),
    ]
    assert not page.find("rect", data_source="aq-wf-03")  # pending: never fired
    labels = [t.strip() for t in page.text]
    assert "示例站 潍城区 (example)" in labels  # the row of aq-wf-01, by its catalogue name
    assert "示例站 奎文区 (example)" in labels


def test_tables_of_warnings_and_alerts_in_beijing_time(page: Page) -> None:
    assert [r[:4] for r in page.tables["warnings"]] == [
        ["2026-11-24 10:00", "潍坊市 Weifang", "发布 issued", "■ 黄色预警 yellow"],
        ["2026-11-24 14:00", "潍坊市 Weifang", "升级 upgraded", "■ 橙色预警 orange"],
        ["2026-11-24 20:00", "潍坊市 Weifang", "解除 lifted", "—"],
    ]
    alerts = page.tables["alerts"]
    assert [r[0] for r in alerts] == [
        "2026-11-24 08:00",
        "2026-11-24 12:00",
        "2026-11-24 15:00",
        "2026-11-24 18:00",
    ]
    first = alerts[0]
    assert first[1] == "潍坊市 Weifang"
    assert first[2] == "示例站 潍城区 (example) (aq-wf-01)"  # the catalogue's name, id second
    assert first[3] == "空气质量超标 ambient-exceedance"
    assert first[4] == "24 小时平均 24-hour mean"
    assert first[5] == "触发 firing condition_met_no_wait"
    assert first[6] == "空气质量超标：PM2.5 超标"
    assert alerts[1][5] == "恢复 resolved clear_condition_met"
    assert "notifications" not in page.tables  # no notifications.jsonl


def test_data_quality_worst_first_dead_letters_and_every_unreadable_line(page: Page) -> None:
    rows = page.tables["quality"]
    assert [r[1].rsplit("(", 1)[-1] for r in rows] == ["aq-wf-01)", "aq-wf-02)"]
    assert rows[0][4].startswith("50.0 %")
    assert rows[1][6].startswith("95.0 %")
    assert page.tables["dead-letters"] == [
        ["1", "evaluate", "time <time> is more than 1:00:00 after receipt"]
    ]
    problems = [t for t in page.text if re.match(r"[\w.-]+:\d+: ", t)]
    assert problems[:2] == [
        "envwatch-0001.lp:28: timestamp not an integer: 'protocol'",
        "envwatch-0001.lp:29: field aqi: not a value: '12x'",
    ]
    assert problems[2].startswith("alerts.jsonl:8: not JSON: ")
    assert len(problems) == 3


def test_notifications_get_a_table_when_the_directory_has_them(tmp_path: Path) -> None:
    out = make_dir(tmp_path)
    (out / "notifications.jsonl").write_text(
        '{"receiver": "duty-weifang", "id": "n1", "at": "2026-11-24T02:00:00+00:00", '
        '"state": "firing", "summary": "潍坊市 重污染天气黄色预警"}\n'
        "[1, 2]\n",
        encoding="utf-8",
    )
    p = Page(write_report(out, config=CONFIG).read_text(encoding="utf-8"))
    assert p.tables["notifications"] == [
        [
            "潍坊市 Weifang 值班 duty officers (duty-weifang)",
            "n1",
            "2026-11-24 10:00",
            "触发 firing",
            "潍坊市 重污染天气黄色预警",
        ]
    ]
    assert "notifications.jsonl:2: not a JSON object" in "".join(p.text)
    assert p.find("a", href="#notifications")


def test_an_empty_directory_gives_a_page_that_says_there_is_no_data(tmp_path: Path) -> None:
    p = Page(write_report(tmp_path, config=CONFIG).read_text(encoding="utf-8"))
    assert p.find("div", id="no-data")
    assert "无数据 no data" in "".join(p.text)
    assert not p.find("svg")
    assert len(p.tables["overview"]) == 5  # the catalogue's localities, without data


def test_without_the_catalogue_ids_are_shown_and_nothing_fails(tmp_path: Path) -> None:
    out = make_dir(tmp_path)
    p = Page(write_report(out, config=tmp_path / "missing").read_text(encoding="utf-8"))
    assert [r[0] for r in p.tables["overview"]] == ["weifang (weifang)", "laixi (laixi)"]
    assert "catalogue not read" in "".join(p.text)


def test_the_page_is_self_contained_and_the_same_input_gives_the_same_bytes(
    tmp_path: Path,
) -> None:
    out = make_dir(tmp_path)
    first = write_report(out, config=CONFIG).read_bytes()
    assert write_report(out, config=CONFIG).read_bytes() == first
    p = Page(first.decode())
    assert not p.find("script")
    refs = [a.get("href") or a.get("src") for _, a in p.elements if "href" in a or "src" in a]
    assert all(r is not None and r.startswith(("#", "data:")) for r in refs), refs
    assert b"http://" not in first
    assert b"https://" not in first


def test_a_line_is_parsed_with_its_field_types() -> None:
    m, tags, fields, at = rep.parse_line(
        "aqi,locality=weifang,period=hour,source=city aqi=120i,pm25=88.5,good=false,"
        'category="轻度 污染, \\"x\\"" 1795107600000000000'
    )
    assert (m, tags["source"]) == ("aqi", "city")
    assert fields == {"aqi": 120, "pm25": 88.5, "good": False, "category": '轻度 污染, "x"'}
    assert at.isoformat() == "2026-11-19T17:00:00+00:00"
    with pytest.raises(ValueError, match="timestamp"):
        rep.parse_line("aqi,locality=x aqi=1i soon")


def test_garbage_of_every_kind_is_listed_and_the_rest_still_shown(tmp_path: Path) -> None:
    out = make_dir(tmp_path)
    (out / "binary.lp").write_bytes(
        b"\xff\xfe\x00garbage 1 2\n" + city("laixi", T0 + H, 80).encode()
    )
    whole = gzip.compress(
        "".join(city("laixi", T0 + h * H, 50 + h) + "\n" for h in range(6, 25)).encode()
    )
    (out / "cut.lp.gz").write_bytes(whole[: len(whole) * 7 // 10])  # some 7 of 19 lines
    with (out / "alerts.jsonl").open("ab") as f:
        f.write(b'{"id": "x", "kind": "alert"}\n')  # line 9: no state, no time …
        naive = transition("alert", "aq-wf-01", "firing", "condition_met_no_wait", 22)
        naive["at"] = "2026-11-24T22:00:00"
        f.write(orjson.dumps(naive) + b"\n")  # line 10
        f.write(b'{"transition": [1]}\n')  # line 11
    p = Page(write_report(out, config=CONFIG).read_text(encoding="utf-8"))
    problems = [t for t in p.text if re.match(r"[\w.-]+:\d+: ", t)]
    assert "binary.lp:1: not UTF-8" in problems
    assert any(t.startswith("cut.lp.gz:") and "unreadable from here" in t for t in problems)
    assert [t.split(":")[1] for t in problems if t.startswith("alerts.jsonl:")] == [
        "8",
        "9",
        "10",
        "11",
    ]
    assert all(
        "not a transition" in t
        for t in problems
        if t.startswith("alerts.jsonl:") and ":8:" not in t
    )
    # what could be read is there: Laixi's hour from binary.lp, the first hours of cut.lp.gz
    hours = sorted(rep.read_run(out).hours["laixi"])
    assert hours[:4] == [T0 + H, T0 + 5 * H, T0 + 6 * H, T0 + 7 * H]
    assert hours == [T0 + H, T0 + 5 * H] + [T0 + h * H for h in range(6, len(hours) + 4)]
    assert len(hours) < 21  # not the part cut off
    assert len(p.find("g", class_="warning-band")) == 2


def test_the_command_rebuilds_the_report_of_a_directory(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from streams.cli import app

    out = make_dir(tmp_path)
    result = CliRunner().invoke(app, ["report", str(out), "--config", str(CONFIG)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"report: {out / 'report.html'}"
    assert "潍坊市 Weifang" in (out / "report.html").read_text(encoding="utf-8")
    missing = CliRunner().invoke(app, ["report", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2
    assert not (tmp_path / "nowhere").exists()
