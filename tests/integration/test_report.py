"""``DIR/report.html`` of a real run, opened in headless Chromium (Debian's ``chromium``).

The run: the catalogue's simulated network with the winter heavy-pollution episode
(``envwatch simulate`` — the same deliveries as ``envwatch demo --scenario winter-episode``)
through the worker's own pure steps (``streams.steps.EvaluateStep`` → ``LocalityStep``, driven
as tests/streams/test_steps.py drives them), written the way the worker writes them: the
stored points as line protocol (``streams.agents.store.to_line``, dead letters by
``streams.agents.deadletter.dead_letter_line``) and every transition as a line of
``alerts.jsonl`` (``streams.agents.notify.alerts_log_line``). Plus one malformed line in each
file, which the report must list and survive.

Chromium then loads the report from disk with networking off, and the test checks what a
person would: no console message (the page has no script; an error would be logged as
``INFO:CONSOLE``, which a control page proves), nothing fetched from outside the file, the
charts drawn (SVG paths and bars with real geometry in the rendered DOM), and a screenshot
that is not blank (many colours, the HJ 633 level colours among them; decoded with zlib).

Without ``chromium`` the test is skipped with the reason; under ``CI=true`` that is a failure
(.ci/run installs it from .ci/packages.txt).
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from alerts.locality import LocalityState
from alerts.model import Transition
from alerts.rules import default_rules
from rules.aqi import LEVELS
from streams import topics
from streams.agents.deadletter import dead_letter_line
from streams.agents.notify import alerts_log_line
from streams.agents.store import to_line
from streams.catalog import CatalogView
from streams.cli.backtest import sample_bytes
from streams.records import DeadLetter
from streams.report import write_report
from streams.steps import EvaluateStep, LocalityStep
from streams.wire import decode_points, decode_sample
from tests.conftest import IN_CI
from tests.test_readme import readme_start

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "config"
CHROMIUM = os.environ.get("ENVWATCH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
WINDOW = (1400, 2000)


def _chromium() -> str:
    if Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    reason = "chromium is not installed (Debian package `chromium`, in .ci/packages.txt)"
    if IN_CI:
        pytest.fail(f"CI=true and a required program is missing: {reason}", pytrace=False)
    pytest.skip(reason)


def _browse(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium on ``page`` (file://), logging the page's console to stderr."""
    return subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            "--enable-logging=stderr",
            "--v=0",
            *extra,
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _console(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


# ---------------------------------------------------------------------------- the run


def _run_winter_episode(out: Path) -> None:
    """The winter episode through the worker's pure steps, stored as the worker stores it."""
    from ingest.simulators import SCENARIOS, simulate, specs_from_catalog
    from ingest.simulators.publish import payload_of

    view = CatalogView(CONFIG)
    evaluate = EvaluateStep(view, max_future=timedelta(days=36500), max_past=timedelta(days=36500))
    locality = LocalityStep(view, default_rules())
    partition: dict[str, Any] = {}
    states: dict[bytes, LocalityState] = {}
    start, hours = readme_start()
    assert hours == SCENARIOS["winter-episode"].hours
    lines: list[str] = []
    log: list[bytes] = []
    seen: set[str] = set()

    def store(topic: str, value: bytes, ts_ms: int, offset: int) -> None:
        if topic == topics.EVALUATIONS:
            lines.extend(to_line(d) for d in decode_points(value))
        elif topic == topics.DEAD_LETTER:
            lines.append(dead_letter_line(value, ts_ms, offset))

    deliveries = simulate(
        specs_from_catalog(view.catalog),
        start=start,
        hours=hours,
        seed=0,
        scenario="winter-episode",
    )
    for offset, d in enumerate(deliveries):
        ts_ms = round(d.at.timestamp() * 1000)
        payload = sample_bytes(decode_sample(payload_of(d.sample)))  # as the bridge writes it
        for topic, key, value in evaluate(
            partition, d.sample.source.encode(), payload, offset, ts_ms
        ):
            if topic != topics.AGGREGATES:
                store(topic, value, ts_ms, offset)
                continue
            state, results = locality(states.get(key), key, value, offset, ts_ms)
            if state is not None:
                states[key] = state
            for topic2, _key2, value2 in results:
                if topic2 == topics.ALERT_EVENTS:
                    t = Transition.from_dict(orjson.loads(value2))
                    if t.id not in seen:  # the alerts log holds each transition once
                        seen.add(t.id)
                        log.append(alerts_log_line(t))
                else:
                    store(topic2, value2, ts_ms, offset)
    # one dead letter of another stage, and one malformed line in each file
    bad = DeadLetter.build("bridge", "payload is not JSON", b"{", origin="env/air/x")
    lines.append(dead_letter_line(bad.to_bytes(), round(start.timestamp() * 1000), 1))
    lines.append("aqi,locality=weifang,period=hour,source=city aqi=oops 1795107600000000000")
    out.mkdir(parents=True, exist_ok=True)
    (out / "envwatch-test-000000.lp").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / "alerts.jsonl").write_bytes(b"".join(log) + b"{truncated\n")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _chromium()  # skip before spending the replay when there is nothing to open it with
    out = tmp_path_factory.mktemp("winter-episode")
    _run_winter_episode(out)
    return write_report(out, config=CONFIG)


# ---------------------------------------------------------------------------- PNG


def _png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """A tiny PNG decoder (8-bit RGB/RGBA, not interlaced): width, height, RGB rows."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, bytearray()
    width = height = bpp = 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _c, _f, interlace = struct.unpack(">IIBBBBB", body)
            assert (depth, interlace) == (8, 0), (depth, interlace)
            assert colour in (2, 6), colour
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    raw = zlib.decompress(bytes(idat))
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    i = 0
    for _ in range(height):
        kind_, line = raw[i], bytearray(raw[i + 1 : i + 1 + stride])
        i += 1 + stride
        if kind_ == 1:
            for x in range(bpp, stride):
                line[x] = (line[x] + line[x - bpp]) & 255
        elif kind_ == 2:
            for x in range(stride):
                line[x] = (line[x] + prev[x]) & 255
        elif kind_ == 3:
            for x in range(stride):
                left = line[x - bpp] if x >= bpp else 0
                line[x] = (line[x] + (left + prev[x]) // 2) & 255
        elif kind_ == 4:
            for x in range(stride):
                a = line[x - bpp] if x >= bpp else 0
                b, c = prev[x], prev[x - bpp] if x >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[x] = (line[x] + pred) & 255
        prev = line
        rows.append(
            bytes(line) if bpp == 3 else bytes(line[j] for j in range(stride) if j % 4 != 3)
        )
    return width, height, rows


# ---------------------------------------------------------------------------- the tests


def test_chromium_reports_a_console_error_of_a_page_as_the_test_reads_it(tmp_path: Path) -> None:
    """The control: a page with a failing script shows in the log the test reads, so an empty
    log below means no error, not a log that says nothing."""
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><body><script>notDefined();</script></body></html>",
        encoding="utf-8",
    )
    result = _browse(page, tmp_path / "profile", "--dump-dom")
    assert any("notDefined" in line for line in _console(result.stderr)), result.stderr[-2000:]


def test_the_report_is_self_contained_and_loads_without_console_errors(
    report: Path, tmp_path: Path
) -> None:
    source = report.read_text(encoding="utf-8")
    assert "<script" not in source
    refs = re.findall(r'\b(?:src|href)="([^"]*)"', source)
    assert all(r.startswith(("#", "data:")) for r in refs), refs
    assert "http://" not in source
    assert "https://" not in source
    result = _browse(report, tmp_path / "profile", "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    assert _console(result.stderr) == []
    dom = result.stdout
    # the localities, the charts and their contents as the browser built them
    for name in ("潍坊市 Weifang", "莱西市 Laixi", "聊城经济技术开发区 Liaocheng ETDZ"):
        assert name in dom
    assert dom.count('class="aqi-chart"') == 5
    assert dom.count('class="alert-chart"') == 5
    paths = re.findall(r'<path class="aqi-hour" data-level="(\d)" [^>]*d="([^"]+)"', dom)
    assert {level for level, _ in paths} >= {"2", "3", "5"}  # 良, 轻度污染, 重度污染 in Weifang
    assert all(len(d) > 20 and d.startswith("M") for _, d in paths)
    days = re.findall(r'<path class="aqi-day" d="([^"]+)"', dom)
    assert len(days) == 5
    assert all(d.count("H") >= 10 for d in days)
    bands = re.findall(r'<g class="warning-band" data-level="(\w+)" data-open="(\w+)"', dom)
    assert bands == [("yellow", "false"), ("orange", "false"), ("red", "false")]
    widths = [float(w) for w in re.findall(r'class="alert-bar[^"]*"[^>]* width="([\d.]+)"', dom)]
    assert len(widths) > 20
    assert max(widths) > 100
    # the tables and the data-quality section
    assert re.search(r'<table class="alerts">.*?<tbody><tr>', dom, re.S)
    assert re.search(r'<table class="warnings">.*?解除 lifted', dom, re.S)
    assert re.search(r'<table class="quality">.*?<tbody><tr>', dom, re.S)
    assert "payload is not JSON" in dom  # the dead letter
    assert "envwatch-test-000000.lp:" in dom
    assert "field aqi: not a value" in dom
    assert re.search(r"alerts\.jsonl:\d+: not JSON", dom)
    assert 'id="notifications"' not in dom  # no notifications.jsonl in this directory


def test_the_screenshot_shows_the_report(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    result = _browse(report, tmp_path / "profile", f"--screenshot={shot}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.is_file(), result.stderr[-2000:]
    assert _console(result.stderr) == []
    keep = os.environ.get("ENVWATCH_REPORT_SCREENSHOT")
    if keep:  # to look at it: ENVWATCH_REPORT_SCREENSHOT=/tmp/report.png
        shutil.copyfile(shot, keep)
    width, height, rows = _png_pixels(shot.read_bytes())
    assert (width, height) == WINDOW
    colours: Counter[bytes] = Counter()
    for row in rows[::2]:
        colours.update(row[x : x + 3] for x in range(0, len(row), 6))
    assert len(colours) > 50, f"{len(colours)} colours: blank or nearly so"
    background, share = colours.most_common(1)[0]
    assert share / sum(colours.values()) < 0.8, f"{background.hex()} covers the page"
    # the HJ 633 level colours of the first localities' hourly AQI, as drawn
    drawn = {bytes.fromhex(row.color[1:]) for row in LEVELS} & set(colours)
    assert len(drawn) >= 3, sorted(c.hex() for c in drawn)
