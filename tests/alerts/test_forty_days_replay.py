"""Issue 11 acceptance: a replay of a 40-day history of the catalogue's sources — every alert kind
fires and resolves when its condition ends, and nothing else alerts.

The history is the simulator's ``forty-days`` scenario (docs/simulators.md) on the reference
catalogue (deploy/config), written as ``envwatch simulate run --out`` writes it, and replayed with
``envwatch backtest FILE --json --all`` — the worker's own steps (streams/steps.py). Start
2026-01-25 00:00 Beijing: before 2026-03-01, so GB 3095-2012 applies (standards.md §0).

Every expected transition below is derived by hand from the scenario's script and the standards
("label L" = the sample labelled start + L hours; a daily value is stamped with its day's 00:00,
a monthly one with the month's first day 00:00, Beijing time):

* bypass-open, mon-wf-bypass-01: bypass_open = 1 for labels [100 h, 104 h) → fires at 100 h
  (any opening is a breach), resolves at 104 h (0 = closed).
* effluent-exceedance, e-lx-wwtp-w1 COD: day 5 and 6 means ≈ 80 mg/L > 40 mg/L
  (003_021375295357aa36.txt#L114) → the day-5 value, stamped day 6 00:00 (the day point is
  labelled with the END of the day, rules.engine) fires; day 7's ≈ 20 clears, stamped day 8 00:00.
* ambient-exceedance, aq-wf-03 (grade II): PM2.5 daily mean 140 > 75 µg/m³ and PM10 175 > 150
  (GB 3095-2012 表1 24-h, 二级) on days 10 and 11 → both fire with day 10 (stamped day 10 00:00)
  and clear with day 12 (≤ 0.9 × limit: 30 and 52), stamped day 12 00:00; unacknowledged, each
  escalates once after 60 min [MEM].
* dustfall, mon-wf-dustfall-01: January's mean ≈ 11 > 7 t/(month·km²)
  (000_d6d679181568297b.txt#L171) → fires stamped 2026-01-01 00:00; February's mean ≈ 5 clears,
  stamped 2026-02-01 00:00.
* noise, mon-lc-noise-01 (class 3: night 55 dB(A), GB 3096-2008 表1): night Leq 61–63 at labels
  383–390 h and 407–414 h → fires at 383 h (day 15, 23:00); the night alert clears at the first
  night hour within the limit, label 431 h (day 17, 23:00).
* site-dust, mon-tq-site-01 (150 µg/m³, local setting): labels [400 h, 406 h) at 240–300 → the
  dust and PM10 alerts fire at 400 h and clear at 406 h.
* vapour-recovery, mon-lc-vapour-01: status 0 for labels [500 h, 505 h) → fires at 500 h,
  clears at 505 h (1 = working).
* electricity, mon-lc-power-02 (treatment, normal 180 kW → below 90 kW [MEM] is "off") while
  mon-lc-power-01 produces ≈ 436 kW > its running 300 kW: 0–1.5 kW for labels [600 h, 606 h) →
  fires at 600 h, clears at 606 h.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from typer.testing import CliRunner

from streams.cli._app import app

BJ = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 1, 25, tzinfo=BJ)
H = timedelta(hours=1)
DAY = timedelta(days=1)
F, R = "firing", "resolved"


def at(hours: int) -> datetime:
    return START + hours * H


EXPECTED = {
    ("bypass-open", "mon-wf-bypass-01", "bypass_open", "hour", F, at(100)),
    ("bypass-open", "mon-wf-bypass-01", "bypass_open", "hour", R, at(104)),
    ("effluent-exceedance", "e-lx-wwtp-w1", "cod", "day", F, START + 6 * DAY),
    ("effluent-exceedance", "e-lx-wwtp-w1", "cod", "day", R, START + 8 * DAY),
    ("ambient-exceedance", "aq-wf-03", "pm25", "24h", F, START + 10 * DAY),
    ("ambient-exceedance", "aq-wf-03", "pm10", "24h", F, START + 10 * DAY),
    ("ambient-exceedance", "aq-wf-03", "pm25", "24h", R, START + 12 * DAY),
    ("ambient-exceedance", "aq-wf-03", "pm10", "24h", R, START + 12 * DAY),
    ("dustfall", "mon-wf-dustfall-01", "dustfall", "month", F, datetime(2026, 1, 1, tzinfo=BJ)),
    ("dustfall", "mon-wf-dustfall-01", "dustfall", "month", R, datetime(2026, 2, 1, tzinfo=BJ)),
    ("noise", "mon-lc-noise-01", "noise_leq", "night_time", F, at(383)),
    ("noise", "mon-lc-noise-01", "noise_leq", "night_time", R, at(431)),
    ("site-dust", "mon-tq-site-01", "dust", "hour", F, at(400)),
    ("site-dust", "mon-tq-site-01", "pm10", "hour", F, at(400)),
    ("site-dust", "mon-tq-site-01", "dust", "hour", R, at(406)),
    ("site-dust", "mon-tq-site-01", "pm10", "hour", R, at(406)),
    ("vapour-recovery", "mon-lc-vapour-01", "vapour_recovery", "hour", F, at(500)),
    ("vapour-recovery", "mon-lc-vapour-01", "vapour_recovery", "hour", R, at(505)),
    ("electricity", "mon-lc-power-02", "power_kw", "hour", F, at(600)),
    ("electricity", "mon-lc-power-02", "power_kw", "hour", R, at(606)),
}


def test_forty_days_every_alert_kind_fires_and_resolves(tmp_path: Path) -> None:
    history = tmp_path / "forty-days.jsonl"
    runner = CliRunner()
    made = runner.invoke(
        app,
        [
            "simulate",
            "run",
            "--scenario",
            "forty-days",
            "--start",
            START.isoformat(),
            "--out",
            str(history),
        ],
    )
    assert made.exit_code == 0, made.output
    result = runner.invoke(app, ["backtest", str(history), "--json", "--all"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    told = [r for r in records if r["state"] in (F, R) and r["reason"] != "escalated"]
    got = {
        (
            r["labels"]["rule"],
            r["source"],
            r["labels"]["factor"],
            r["labels"].get("period"),
            r["state"],
            datetime.fromisoformat(r["at"]),
        )
        for r in told
    }
    assert got == EXPECTED
    assert len(told) == len(EXPECTED)  # each exactly once
    # the only other transitions: the two ambient alerts escalate once each, 60 min after firing
    others = [r for r in records if (r["state"], r["reason"]) != (R, "clear_condition_met")]
    escalated = sorted(
        (r["labels"]["factor"], datetime.fromisoformat(r["at"]))
        for r in others
        if r["reason"] == "escalated"
    )
    assert escalated == [("pm10", START + 10 * DAY + H), ("pm25", START + 10 * DAY + H)]
    assert all(r["suppressed"] == [] for r in told)  # nothing important silenced
