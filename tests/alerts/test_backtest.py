"""``envwatch backtest``: history in, transitions out (streams/cli/backtest.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from typer.testing import CliRunner

from streams.cli import app
from streams.cli.backtest import BadRow, read_line_protocol, read_readings

CSV = """time,kind,locality,source,factor,value,limit,flags,enterprise
2026-11-22T11:00:00+08:00,permit,weifang,e1:o1,nox,70,100,N,e1
2026-11-22T09:00:00+08:00,permit,weifang,e1:o1,nox,80,100,N,e1
2026-11-22T10:00:00+08:00,permit,weifang,e1:o1,nox,132,100,N,e1
2026-11-22T10:00:00,permit,weifang,e1:o1,nox,132,100,N,e1
"""


def test_csv_history_out_of_order_gives_firing_then_resolved(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text(CSV, encoding="utf-8")
    result = CliRunner().invoke(app, ["backtest", str(path), "--json"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    # rows are sorted: 09:00 (80 ≤ 100, nothing), 10:00 (132 > 100: fires), 11:00 (70: clears)
    assert [(r["state"], r["at"]) for r in records] == [
        ("firing", "2026-11-22T02:00:00+00:00"),
        ("resolved", "2026-11-22T03:00:00+00:00"),
    ]
    assert records[0]["labels"]["enterprise"] == "e1"
    # first sample of e1:o1 at 09:00, firing at 10:00 → 3600 s
    assert records[0]["lead_seconds"] == 3600.0
    # the naive timestamp on line 5 is reported, not fatal
    assert "h.csv:5: time: no timezone offset" in result.output


def test_line_protocol_parsing() -> None:
    lines = [
        "evaluation,kind=permit,locality=weifang,source=e1:o1,factor=nox,enterprise=e1 value=132,limit=100 1795309200000000000",
        "reading,source=x pm25=3 1795309200000000000",
        "evaluation,kind=permit,locality=weifang value=1",
    ]
    ev, other, bad = list(read_line_protocol(lines))
    assert other is None
    assert isinstance(bad, BadRow)
    assert bad.line == 3
    assert not isinstance(ev, BadRow)
    assert ev is not None
    assert ev.value == 132.0
    assert ev.limit == 100.0
    assert ev.detail == {"enterprise": "e1"}
    assert ev.time.isoformat() == "2026-11-22T01:00:00+00:00"  # 1795309200 s


def test_missing_file_is_a_clean_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["backtest", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2


# ---------------------------------------------------------------- samples through the live path

REPO = Path(__file__).resolve().parents[2]
BJ = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 11, 9, tzinfo=BJ)  # the start the demo of 2026-11-22 used
H = timedelta(hours=1)


def _winter_episode_jsonl(path: Path) -> list[dict[str, object]]:
    """weifang's part of the catalogue network, winter-episode scenario (288 h), as
    ``envwatch simulate run --config deploy/config --scenario winter-episode --out FILE``."""
    from ingest.simulators import simulate, specs_from_catalog
    from ingest.simulators.publish import payload_of
    from rules.catalog import load_catalog

    specs = [
        s
        for s in specs_from_catalog(load_catalog(REPO / "deploy" / "config"))
        if s.locality == "weifang"
    ]
    payloads = []
    with path.open("w", encoding="utf-8") as fh:
        for d in simulate(specs, start=START, hours=288, seed=0, scenario="winter-episode"):
            fh.write(payload_of(d.sample).decode() + "\n")
            payloads.append(d.sample.model_dump(mode="json", by_alias=True))
    return payloads


def _expected_warnings(payloads: list[dict[str, object]]) -> list[tuple[str, str, datetime]]:
    """The mee-2018-875 / envwatch-default timeline derived by hand from the samples.

    City hour = mean of weifang's stations' PM2.5; rolling 24-h mean r(h) over the 24 hours
    ending h. PM2.5 decides the AQI in this episode (PM10 = 1.25 × PM2.5 has the lower IAQI,
    docs/simulators.md), so with HJ 633-2026 表3 (inputs rounded to integers, 4.2.2):
    AQI > 200 ⇔ round(r) > 150, AQI > 300 ⇔ round(r) > 250, AQI ≤ 150 ⇔ round(r) ≤ 115.
    Rule set (deploy/config/warnings.yaml): yellow > 200 for 48 h; orange > 200 for 72 h and
    > 300 for 24 h; red > 200 for 96 h and > 300 for 48 h; an episode stays current one hour
    after its last hour; a lower target held 24 h downgrades (floor yellow); lift when ≤ 150
    for 36 h. Each hour is judged at its own label."""
    by_hour: dict[datetime, list[float]] = {}
    for p in payloads:
        if p["kind"] == "air":
            values = p["values"]
            assert isinstance(values, dict)
            by_hour.setdefault(datetime.fromisoformat(str(p["time"])), []).append(
                float(values["pm25"]["value"])
            )
    hours = sorted(by_hour)
    city = [sum(by_hour[h]) / len(by_hour[h]) for h in hours]
    rolling = {hours[i]: round(sum(city[i - 23 : i + 1]) / 24) for i in range(23, len(hours))}
    above200 = [h for h, r in rolling.items() if r > 150]
    s200, e200 = above200[0], above200[-1]
    assert len(above200) == (e200 - s200) / H + 1  # one unbroken episode
    s300 = next(h for h, r in rolling.items() if r > 250)
    s150 = next(h for h, r in rolling.items() if h > e200 and r <= 115)
    downgrade = e200 + 2 * H + 24 * H
    lift = s150 + 35 * H
    assert downgrade < lift  # so the red warning is lowered before it is lifted
    return [
        ("warning_issued", "yellow", s200 + 47 * H),
        ("warning_upgraded", "orange", max(s200 + 71 * H, s300 + 23 * H)),
        ("warning_upgraded", "red", max(s200 + 95 * H, s300 + 47 * H)),
        ("warning_downgraded", "yellow", downgrade),
        ("warning_lifted", "none", lift),
    ]


def test_winter_episode_samples_backtested_like_the_live_worker(tmp_path: Path) -> None:
    path = tmp_path / "winter.jsonl"
    payloads = _winter_episode_jsonl(path)
    result = CliRunner().invoke(app, ["backtest", str(path), "--json"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    warnings = [
        (r["reason"], r["level"], datetime.fromisoformat(r["at"]))
        for r in records
        if r["kind"] == "warning" and r["locality"] == "weifang"
    ]
    expected = _expected_warnings(payloads)
    assert warnings == expected
    # the same instants the live worker wrote to alerts.jsonl in `envwatch demo --scenario
    # winter-episode` (start 2026-11-09 00:00, 2026-11-22 run): day 5 17:00, day 6 18:00,
    # day 7 18:00, day 10 15:00, day 11 09:00 Beijing
    assert [w[2].astimezone(BJ) for w in warnings] == [
        datetime(2026, 11, 14, 17, tzinfo=BJ),
        datetime(2026, 11, 15, 18, tzinfo=BJ),
        datetime(2026, 11, 16, 18, tzinfo=BJ),
        datetime(2026, 11, 19, 15, tzinfo=BJ),
        datetime(2026, 11, 20, 9, tzinfo=BJ),
    ]
    # event-time order; the AQI forecasts (from the forecaster of a known locality) pass as in
    # the worker, and a forecaster is never "offline"
    assert [w[2] for w in warnings] == sorted(w[2] for w in warnings)
    assert "not in the catalogue" not in result.output
    assert not [r for r in records if r["source"].startswith("fc-")]


def test_readings_line_protocol_become_samples_again() -> None:
    lines = [
        'reading,kind=air,locality=weifang,source=aq-wf-01 pm10=80.5,so2=9i,invalid="pm25:D,o3:M" 1795309200000000000',
        "aqi,locality=weifang,source=city,period=hour aqi=80i 1795309200000000000",
        "reading,kind=air,locality=weifang pm25=1 1795309200000000000",
        "reading,kind=air,locality=weifang,source=x pm25=abc 1795309200000000000",
    ]
    rows = list(read_readings(lines, lambda source, kind: "hour"))
    assert rows[1] is None  # another measurement
    assert rows[2] == BadRow(3, "source", "missing tag")
    assert rows[3] == BadRow(4, "pm25", "not a number: 'abc'")
    first = rows[0]
    assert isinstance(first, tuple)
    line, sample, received = first
    assert line == 1
    assert received == sample.time  # not a forecast: received at its own time
    assert sample.values == {
        "pm10": (80.5, "N"),
        "so2": (9.0, "N"),
        "pm25": (None, "D"),
        "o3": (None, "M"),
    }
    assert sample.time == datetime(2026, 11, 22, 1, tzinfo=UTC)  # 1795309200 s


def test_bad_sample_lines_are_reported_with_field_and_reason(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text(
        '{"schema": 1, "kind": "air", "locality": "weifang", "source": "aq-wf-01",'
        ' "time": "2026-12-01T01:00:00", "values": {"pm25": {"value": 30}}}\n'
        "not json\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["backtest", str(path)])
    assert result.exit_code == 0, result.output
    assert "s.jsonl:1: time: Input should have timezone info" in result.output
    assert "s.jsonl:2: line: not JSON" in result.output


def test_unknown_warning_rule_set_is_a_clean_error(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text("", encoding="utf-8")
    result = CliRunner().invoke(app, ["backtest", str(path), "--rule-set", "nope"])
    assert result.exit_code == 2
    assert "unknown warning rule set 'nope'" in result.output


def test_an_envelope_replays_each_sample_when_it_was_delivered(tmp_path: Path) -> None:
    """With ``--envelope`` each line says when its sample was delivered (``at``): an AQI forecast
    three days before its target day (docs/simulators.md: issued 20:00 on D−3). Replayed then,
    the forecasts of days 3–4 (daily AQI > 200) are known on day 1 at 20:00 and the rule set's
    timeline (observed and forecast hours, docs/alerts.md §6) issues the yellow warning at once,
    days before any observed hour exceeds 200 — as the live worker does."""
    path = tmp_path / "winter-envelope.jsonl"
    runner = CliRunner()
    made = runner.invoke(
        app,
        [
            "simulate",
            "run",
            "--scenario",
            "winter-episode",
            "--config",
            str(REPO / "deploy" / "config"),
            "--start",
            START.isoformat(),
            "--target",
            "weifang",
            "--envelope",
            "--out",
            str(path),
        ],
    )
    assert made.exit_code == 0, made.output
    result = runner.invoke(app, ["backtest", str(path), "--json"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    first = next(r for r in records if r["kind"] == "warning" and r["locality"] == "weifang")
    assert (first["reason"], first["level"]) == ("warning_issued", "yellow")
    assert datetime.fromisoformat(first["at"]) == START + timedelta(days=1, hours=20)
