"""``envwatch demo`` as a user runs it: real Tansu and mosquitto, the in-process worker, the
catalogue's simulated network with the winter heavy-pollution episode at accelerated time.

The contract (issues [E] and [F]): the output directory holds line protocol with the measurements
``reading``, ``aqi``, ``water_class``, ``exceedance`` and ``data_quality``, and ``alerts.jsonl``
with one JSON object per transition in which Weifang's warning is issued yellow, raised to orange
and later lifted, in event-time order (docs/simulators.md: the episode's daily AQI crosses 200 on
day 3 and 300 on days 5–7, then clears). The command exits 0 and leaves nothing listening.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from streams.embedded import mosquitto_binary

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_demo_winter_episode_warns_and_writes_the_store_files(tmp_path: Path) -> None:
    if mosquitto_binary() is None and os.environ.get("CI", "").lower() != "true":
        pytest.skip("mosquitto not installed (the demo would fall back to amqtt)")
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
            "--out",
            str(out),
            "--quiet",
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

    # every service the demo started is gone
    ports = [int(p) for p in re.findall(r"on 127\.0\.0\.1:(\d+)", proc.stdout)]
    assert len(ports) >= 2, proc.stdout[:500]
    assert not [p for p in ports if _listening(p)]
