"""The README's quick start shows what ``envwatch demo`` really prints: a captured run of
``envwatch demo --scenario winter-episode --duration 60 --plain``. Its heavy-pollution warning
timeline must be what a run of the same scenario from the same simulated start gives.

This test replays that run through the pure path of ``envwatch backtest``
(``streams.cli.backtest.PipelineReplay``: the worker's own ``streams.steps.EvaluateStep`` and
``LocalityStep``), fed with every delivery of the catalogue's simulated network in delivery order —
the order in which the demo's single-partition worker receives them — and compares the timeline
lines the demo's summary prints (``streams.live.warning_timeline``) with the README's, line by
line. It takes about 10 s; ``tests/integration/test_demo.py`` runs the demo itself (about 70 s)
and compares its printed timeline with the README too.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from alerts.rules import default_rules
from streams.live import TIMELINE_HEADING, Names, warning_timeline

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
COMMAND = "envwatch demo --scenario winter-episode --duration 60 --plain"
BJ = ZoneInfo("Asia/Shanghai")


def quick_start() -> str:
    """The fenced block of the README that shows the captured winter-episode run."""
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)
    found = [b for b in blocks if COMMAND in b]
    assert len(found) == 1, f"README: one code block with `{COMMAND}` and its output expected"
    return found[0]


def readme_start() -> tuple[datetime, float]:
    """The simulated start and length the captured run printed (its second line)."""
    m = re.search(r"simulated from (\d{4}-\d\d-\d\d \d\d:\d\d) for (\d+) h", quick_start())
    assert m is not None, "README: the captured run's 'simulated from … for … h' line"
    return datetime.strptime(m[1], "%Y-%m-%d %H:%M").replace(tzinfo=BJ), float(m[2])


def readme_timeline() -> list[str]:
    """The warning timeline of the captured summary: its heading to the next blank line."""
    lines = quick_start().splitlines()
    assert TIMELINE_HEADING in lines, "README: the summary's warning timeline"
    i = lines.index(TIMELINE_HEADING)
    end = next((j for j in range(i, len(lines)) if not lines[j].strip()), len(lines))
    return lines[i:end]


def test_readme_shows_the_command_and_a_summary() -> None:
    block = quick_start()
    for part in ("── 汇总 summary (winter-episode", "告警 alerts by rule", "输出 outputs in"):
        assert part in block


@pytest.mark.slow
def test_readme_warning_timeline_is_what_the_scenario_gives() -> None:
    from ingest.simulators import SCENARIOS, simulate, specs_from_catalog
    from ingest.simulators.publish import payload_of
    from streams.catalog import CatalogView
    from streams.cli.backtest import PipelineReplay
    from streams.wire import decode_sample

    start, hours = readme_start()
    assert hours == SCENARIOS["winter-episode"].hours
    view = CatalogView(ROOT / "deploy" / "config")
    replay = PipelineReplay(view, default_rules())
    specs = specs_from_catalog(view.catalog)
    warnings = []
    for line, d in enumerate(
        simulate(specs, start=start, hours=hours, seed=0, scenario="winter-episode")
    ):
        warnings += [
            t for t in replay.feed(line, decode_sample(payload_of(d.sample))) if t.kind == "warning"
        ]
    assert warning_timeline(warnings, Names.from_catalog(view.catalog)) == readme_timeline()
