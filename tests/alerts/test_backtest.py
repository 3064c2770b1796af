"""``envwatch backtest``: history in, transitions out (streams/cli/backtest.py)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from streams.cli import app
from streams.cli.backtest import BadRow, read_line_protocol

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
