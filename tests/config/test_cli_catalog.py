"""``envwatch config check`` and ``envwatch targets`` through Typer's CliRunner."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from streams.cli import app

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "config"
runner = CliRunner()


def test_config_check_passes_on_the_reference_catalogue() -> None:
    result = runner.invoke(app, ["config", "check", str(CONFIG)])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output
    assert "5 localities" in result.output


def test_config_check_fails_and_names_every_file(tmp_path: Path) -> None:
    broken = tmp_path / "config"
    shutil.copytree(CONFIG, broken)
    tq = broken / "tianqiao.yaml"
    tq.write_text(
        tq.read_text(encoding="utf-8").replace("upstream: [ws-tq-01]", "upstream: [ws-tq-99]"),
        encoding="utf-8",
    )
    zf = broken / "zhifu.yaml"
    zf.write_text(
        zf.read_text(encoding="utf-8").replace("target_class: IV", "target_class: 7", 1),
        encoding="utf-8",
    )
    result = runner.invoke(app, ["config", "check", str(broken)])
    assert result.exit_code == 1
    assert "tianqiao.yaml:" in result.output
    assert "water_sections[1].upstream[0]" in result.output
    assert "zhifu.yaml:" in result.output
    assert "outside I–V" in result.output
    assert "2 problem(s)" in result.output


def test_config_check_missing_directory(tmp_path: Path) -> None:
    result = runner.invoke(app, ["config", "check", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "no such file" in result.output


def test_targets_json_without_history_shows_statuses_only() -> None:
    result = runner.invoke(
        app,
        ["targets", "--locality", "weifang", "--year", "2025", "--json", "--config", str(CONFIG)],
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    statuses = {r["metric"]: r["status"] for r in rows}
    assert statuses["pm25_annual_mean"] == "no_data"  # target 40 exists, no data yet
    assert statuses["heavy_pollution_days"] == "no_target"
    assert all(r["locality"] == "weifang" for r in rows)


def test_targets_with_history(tmp_path: Path) -> None:
    # Tianqiao, 3 January days: PM2.5 40, 44, (none) → mean (40 + 44) / 2 = 42 = target 42
    # (002…#L70) → on_track; AQI 80, 90, 150 → 2 good of 3 = 66.7 % ≥ 65.8 → on_track
    csv = tmp_path / "h.csv"
    csv.write_text(
        "date,locality,pm25,aqi,edition\n"
        "2025-01-01,tianqiao,40,80,2012\n"
        "2025-01-02,tianqiao,44,90,2012\n"
        "2025-01-03,tianqiao,,150,2012\n"
        "2024-12-31,tianqiao,99,300,2012\n",
        encoding="utf-8",
    )
    args = [
        "targets",
        "--locality",
        "tianqiao",
        "--year",
        "2025",
        "--as-of",
        "2025-01-03",
        "--json",
        "--config",
        str(CONFIG),
        "--history",
        str(csv),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = {r["metric"]: r for r in json.loads(result.output)}
    assert rows["pm25_annual_mean"]["value"] == 42
    assert rows["pm25_annual_mean"]["status"] == "on_track"
    assert abs(rows["good_day_ratio"]["value"] - 200 / 3) < 1e-9
    assert rows["good_day_ratio"]["status"] == "on_track"


def test_targets_bad_history_row_names_line(tmp_path: Path) -> None:
    csv = tmp_path / "h.csv"
    csv.write_text(
        "date,locality,pm25,aqi,edition\n2025-01-01,laixi,-5,50,2012\n", encoding="utf-8"
    )
    result = runner.invoke(
        app, ["targets", "--year", "2025", "--config", str(CONFIG), "--history", str(csv)]
    )
    assert result.exit_code != 0
    assert "h.csv:2" in result.output
    assert "pm25" in result.output


def test_targets_table_renders() -> None:
    result = runner.invoke(
        app, ["targets", "--locality", "zhifu", "--year", "2025", "--config", str(CONFIG)]
    )
    assert result.exit_code == 0, result.output
    assert "zhifu" in result.output
    assert "no_target" in result.output or "no_tar" in result.output


def test_targets_unknown_locality() -> None:
    result = runner.invoke(app, ["targets", "--locality", "qingdao", "--config", str(CONFIG)])
    assert result.exit_code != 0
    assert "qingdao" in result.output
