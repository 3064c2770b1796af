"""``envwatch demo`` as a user runs it: real Tansu and mosquitto (amqtt, the pure-Python fallback,
where mosquitto is not installed), the in-process worker, the catalogue's simulated network with
the winter heavy-pollution episode at accelerated time, ``--plain`` as in logs and CI.

The contract (issue 12): the command exits 0, leaves ``DIR/alerts.jsonl`` and the line protocol
(measurements ``reading``, ``aqi``, ``water_class``, ``exceedance``, ``data_quality``) and nothing
listening. In ``alerts.jsonl`` Weifang's warning is issued yellow, raised to orange and later
lifted (docs/simulators.md: the episode's daily AQI crosses 200 on day 3 and 300 on days 5–7,
then clears); no other locality warns. ``--plain`` prints one line per event in event-time order,
each city hour once with an integer AQI. The summary's warning timeline is the README's quick
start, line by line: the demo runs from the README's captured simulated start (``--start``; the
simulated values depend on the dates). That start must stay within ``ENVWATCH_MAX_PAST_DAYS``
(400) of today, or its samples are dead-lettered as too old: recapture the README then.
About 70 s.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.test_readme import readme_start, readme_timeline

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CITY_HOUR = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d)  城市AQI city AQI   (\S+) .*?\s(\d+|NA) ")


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_demo_winter_episode_warns_and_writes_the_store_files(tmp_path: Path) -> None:
    start, _hours = readme_start()
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "streams.cli",
            "demo",
            "--scenario",
            "winter-episode",
            "--duration",
            "60",
            "--start",
            start.isoformat(),
            "--out",
            str(out),
            "--plain",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    measurements = set()
    for f in out.glob("*.lp*"):
        for line in f.read_text(encoding="utf-8").splitlines():
            measurements.add(re.split(r"[, ]", line, maxsplit=1)[0])
    assert {"reading", "aqi", "water_class", "exceedance", "data_quality"} <= measurements

    # the run's self-contained report: no script, no outside reference, Weifang's warnings drawn
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<script" not in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "潍坊" in page
    assert "<svg" in page
    records = [json.loads(line) for line in (out / "alerts.jsonl").read_text().splitlines()]
    for r in records:
        assert {"kind", "state", "level", "locality", "source", "at"} <= set(r)
    weifang = [r for r in records if r["kind"] == "warning" and r["locality"] == "weifang"]
    weifang.sort(key=lambda r: r["at"])
    steps = [(r["state"], r["level"]) for r in weifang]
    assert steps[0] == ("firing", "yellow"), steps
    assert ("firing", "orange") in steps
    assert steps[-1][0] == "resolved", steps  # lifted at the end of the episode
    assert steps.index(("firing", "orange")) < len(steps) - 1
    # no other locality had an episode (docs/simulators.md: only the target locality)
    assert not [r for r in records if r["kind"] == "warning" and r["locality"] != "weifang"]
    # the issue is decided from the forecasts, hours before the episode, with its lead time
    assert weifang[0]["lead_hours"] > 0
    # every weifang enterprise got its own measures at each change, on its own receiver only
    # (the lists of deploy/config/weifang.yaml)
    lists = {
        e["id"]: e["measures"]
        for e in yaml.safe_load(
            (Path(__file__).resolve().parents[2] / "deploy/config/weifang.yaml").read_text("utf-8")
        )["enterprises"]
    }
    got = [json.loads(x) for x in (out / "notifications.jsonl").read_text().splitlines()]
    duties = [n for n in got if n["kind"] == "warning_duty"]
    assert {n["receiver"] for n in duties} == {f"enterprise-{e}" for e in lists}
    for n in duties:
        duty = n["duties"]
        assert n["receiver"] == f"enterprise-{duty['enterprise_id']}"
        wanted = [] if n["level"] == "none" else lists[duty["enterprise_id"]][n["level"]]
        assert duty["measures"] == [m["text"] for m in wanted]
    assert len(duties) == 2 * len(weifang)  # two enterprises, each warning change

    lines = proc.stdout.splitlines()
    # --plain: each city hour once, an integer AQI, in event-time order
    hours = [m.groups() for m in map(CITY_HOUR.match, lines) if m]
    assert len(hours) == 5 * 288  # five localities, hours labelled 01:00 of day 0 … 00:00 of day 12
    assert len({(t, loc) for t, loc, _ in hours}) == len(hours)
    assert all(v.isdigit() for _, _, v in hours)
    events = [line[:16] for line in lines if re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d  ", line)]
    assert events == sorted(events)
    assert not [line for line in lines if re.search(r"\d\.\d{4,}", line)]  # no raw floats

    # the summary: the README's warning timeline, and where the outputs are
    assert readme_timeline() == lines[lines.index(readme_timeline()[0]) :][: len(readme_timeline())]
    assert f"输出 outputs in {out}" in lines

    # every service the demo started is gone
    ports = [int(p) for p in re.findall(r"on 127\.0\.0\.1:(\d+)", proc.stdout)]
    assert len(ports) >= 2, proc.stdout[:500]
    assert not [p for p in ports if _listening(p)]
