"""What the duty overview's state panels return, evaluated on stored points.

InfluxDB cannot run here and VictoriaMetrics does not speak Flux, so the panel's Flux text — read
from the exported dashboard, not rebuilt from the builder's arguments — is applied stage by stage
by ``tests/deploy/fluxeval.py`` (the Flux stages' documented semantics) to line protocol: hand-
written transitions whose expected result is written here from the scenario, and the stored
output of a real ``envwatch demo`` whose open alerts are computed independently from its
transitions log (``alerts.jsonl``, in the order the locality stage emitted them).
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deploy.grafana import dashboards
from streams.embedded import KafkaBroker, MqttBroker
from tests.deploy import fluxeval

ROOT = Path(__file__).resolve().parents[2]
BOARDS = dashboards.all_dashboards()


def _panel_flux(uid: str, title: str) -> str:
    (panel,) = [p for p in BOARDS[uid]["panels"] if p["title"] == title]
    (target,) = panel["targets"]
    return str(target["query"])


CURRENT = _panel_flux("envwatch-duty", "当前告警 Current alerts")
IN_FORCE = _panel_flux("envwatch-duty", "预警级别 Warning in force")

#: The panel as it was before issue 17 (``last()`` per series, then ``state == "firing"``).
OLD_CURRENT = """from(bucket: "${bucket}")
  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)
  |> filter(fn: (r) => r._measurement == "alert")
  |> filter(fn: (r) => r.locality == "${locality}")
  |> filter(fn: (r) => r._field == "summary" or r._field == "value" or r._field == "limit")
  |> last()
  |> pivot(rowKey: ["rule", "source", "level", "state"], columnKey: ["_field"], valueColumn: "_value")
  |> group()
  |> filter(fn: (r) => r.state == "firing")"""

T0 = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=5)


def _ns(at: datetime) -> int:
    return int(at.timestamp()) * 1_000_000_000


def _alert(
    at: datetime,
    source: str,
    state: str,
    level: str,
    reason: str,
    *,
    rule: str = "permit-exceedance",
    factor: str = "nox",
    period: str = "hour",
    locality: str = "laixi",
) -> str:
    tags = (
        f"factor={factor},kind=alert,level={level},locality={locality},period={period},"
        f"rule={rule},source={source},state={state}"
    )
    fields = f'id="{source}-{state}-{reason}",reason="{reason}",summary="s",notify=true,value=1.0'
    return f"alert,{tags} {fields} {_ns(at)}"


H = timedelta(hours=1)
SCENARIO = [
    # a: fires and stays firing
    _alert(T0, "a", "firing", "warning", "condition_met_no_wait"),
    # b: fires critical, escalates and is lowered at one time, then resolves → not open
    _alert(T0, "b", "firing", "critical", "condition_met_no_wait"),
    _alert(T0 + H, "b", "firing", "critical", "escalated"),
    _alert(T0 + H, "b", "firing", "warning", "severity_lowered"),
    _alert(T0 + 2 * H, "b", "resolved", "warning", "clear_condition_met"),
    # c: pending (waiting for its ``for``) → open
    _alert(T0 + H, "c", "pending", "warning", "condition_met"),
    # d: fired, resolved, a new episode pending → open, pending
    _alert(T0, "d", "firing", "warning", "condition_met_no_wait"),
    _alert(T0 + H, "d", "resolved", "warning", "clear_condition_met"),
    _alert(T0 + 2 * H, "d", "pending", "warning", "condition_met"),
    # e: same rule, source and factor as b, another averaging period → its own alert, open
    _alert(T0, "b", "firing", "critical", "condition_met_no_wait", period="day"),
    # f: escalated and lowered at one time, still firing → open with the lowered level
    _alert(T0, "f", "firing", "critical", "condition_met_no_wait"),
    _alert(T0 + H, "f", "firing", "critical", "escalated"),
    _alert(T0 + H, "f", "firing", "warning", "severity_lowered"),
    # g: escalation and resolution at one time → resolved
    _alert(T0, "g", "firing", "warning", "condition_met_no_wait"),
    _alert(T0 + H, "g", "firing", "warning", "escalated"),
    _alert(T0 + H, "g", "resolved", "warning", "clear_condition_met"),
    # another locality's firing alert
    _alert(T0, "x", "firing", "warning", "condition_met_no_wait", locality="weifang"),
    # fired 40 days ago and nothing since: beyond the 30-day look-back (documented limit)
    _alert(NOW - timedelta(days=40), "old", "firing", "warning", "condition_met_no_wait"),
]


def _listed(rows: list[dict[str, Any]]) -> set[tuple[str, str, str, str]]:
    return {(r["source"], r["period"], r["state"], r["level"]) for r in rows}


def _eval(text: str, lines: list[str], locality: str = "laixi", now: datetime = NOW) -> list[Any]:
    variables = {"bucket": "envwatch", "locality": locality}
    return fluxeval.evaluate(text, lines, variables=variables, now=now)


def test_current_alerts_are_exactly_the_open_ones() -> None:
    assert _listed(_eval(CURRENT, SCENARIO)) == {
        ("a", "hour", "firing", "warning"),
        ("c", "hour", "pending", "warning"),
        ("d", "hour", "pending", "warning"),
        ("b", "day", "firing", "critical"),
        ("f", "hour", "firing", "warning"),
    }


def test_current_alert_rows_carry_what_the_console_link_needs() -> None:
    rows = _eval(CURRENT, SCENARIO)
    link = next(p for p in BOARDS["envwatch-duty"]["panels"] if p["title"].startswith("当前告警"))
    url = link["fieldConfig"]["defaults"]["links"][0]["url"]
    for name in dashboards.CONSOLE_LINK_FIELDS:
        assert f"${{__data.fields.{name}}}" in url
        assert all(name in r for r in rows), name
    # newest first: the duty officer reads the latest change at the top
    times = [r["_time"] for r in rows]
    assert times == sorted(times, reverse=True)


def test_the_old_query_listed_a_resolved_alert() -> None:
    """The evaluator tells the two queries apart: per-series ``last()`` kept b's firing rows."""
    old = {(r["source"], r["state"]) for r in _eval(OLD_CURRENT, SCENARIO)}
    assert ("b", "firing") in old
    assert "b" not in {s for s, p, _st, _lv in _listed(_eval(CURRENT, SCENARIO)) if p == "hour"}


def _warning(at: datetime, rule: str, level: str, state: str) -> str:
    tags = f"kind=warning,level={level},locality=weifang,rule={rule},source=weifang,state={state}"
    return f'warning,{tags} id="{rule}-{state}",summary="s",notify=true {_ns(at)}'


def test_the_warning_in_force_is_the_last_change_and_since_when() -> None:
    lines = [
        _warning(T0, "envwatch-default", "yellow", "issued"),
        _warning(T0 + H, "envwatch-default", "orange", "upgraded"),
        _warning(T0 + 2 * H, "envwatch-default", "none", "lifted"),
        _warning(T0 + H, "regional", "yellow", "issued"),
    ]
    rows = _eval(IN_FORCE, lines, locality="weifang")
    assert {(r["rule"], r["level"], r["state"], r["since"]) for r in rows} == {
        ("envwatch-default", "none", "lifted", T0 + 2 * H),
        ("regional", "yellow", "issued", T0 + H),
    }


# ----------------------------------------------------------------------------- a real demo


@pytest.fixture(scope="module")
def demo_out(
    kafka_broker: KafkaBroker, mqtt_broker: MqttBroker, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """``envwatch demo --scenario nox-exceedance``: an outlet exceeds its NOx limit for two hours
    (the alert fires, escalates, is lowered and resolves) while sections below their target
    class keep their alerts firing. The fixtures only prove Tansu and mosquitto can run here;
    the demo starts its own. ~35 s."""
    out = tmp_path_factory.mktemp("demo") / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "streams.cli",
            "demo",
            "--scenario",
            "nox-exceedance",
            "--duration",
            "20",
            "--out",
            str(out),
            "--quiet",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return out


def _open_from_log(path: Path) -> dict[tuple[str, ...], tuple[str, str]]:
    """Identity → (state, severity) of every alert whose last transition in the log is open."""
    last: dict[str, dict[str, Any]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        t = rec["transition"]
        if t["kind"] == "alert":
            last[t["fingerprint"]] = t
    out = {}
    for t in last.values():
        if t["state"] in ("pending", "firing"):
            labels = t["labels"]
            ident = (
                t["locality"],
                labels.get("rule", ""),
                t["source"],
                labels.get("factor") or "none",
                labels.get("period") or "none",
            )
            out[ident] = (t["state"], t["severity"])
    return out


@pytest.mark.integration
@pytest.mark.slow
def test_current_alerts_on_a_demos_stored_output_are_the_open_ones(demo_out: Path) -> None:
    lines = [ln for f in sorted(demo_out.glob("*.lp")) for ln in f.read_text().splitlines()]
    stored = [fluxeval.parse_line(ln) for ln in lines if ln.startswith("alert,")]
    assert stored, "the demo stored no alert transitions"
    now = max(at for *_x, at in stored) + timedelta(seconds=1)
    expected = _open_from_log(demo_out / "alerts.jsonl")
    localities = {tags["locality"] for _m, tags, _f, _at in stored}
    listed: dict[tuple[str, ...], tuple[str, str]] = {}
    for loc in localities:
        for r in _eval(CURRENT, lines, locality=loc, now=now):
            ident = tuple(r[c] for c in dashboards.ALERT_IDENTITY)
            assert ident not in listed, f"{ident} listed twice"
            listed[ident] = (r["state"], r["level"])
    assert listed == expected
    # the scenario's NOx alert fired and resolved: stored, and not listed
    resolved = {
        (tags["locality"], tags["rule"], tags["source"], tags["factor"], tags["period"])
        for _m, tags, _f, _at in stored
        if tags["state"] == "resolved"
    }
    assert ("laixi", "permit-exceedance", "e-lx-01-g1", "nox", "hour") in resolved
    assert not resolved & set(listed)
    assert listed, "the demo left no alert open (the sections' class alerts stay firing)"
