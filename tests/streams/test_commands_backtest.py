"""``envwatch backtest --commands FILE``: a replay of the samples with the people's commands gives
the transition ids of the live run (streams/cli/backtest.py, the same ``LocalityStep``).

The live run is the worker's two steps fed record by record (tests/streams/test_commands_step.py
``Worker``): the bypass monitor ``mon-wf-bypass-01`` (enterprise ``e-wf-02``) on Tuesday
1 December 2026, Beijing time, with commands arriving between its hourly samples.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from alerts.commands import Command
from alerts.rules import default_rules
from alerts.silences import Matcher, Silence
from streams.catalog import CatalogView
from streams.cli import app
from tests.streams.test_commands_step import BYPASS, CONFIG, TUE, Worker, bypass, command

H = timedelta(hours=1)


@pytest.fixture(scope="module")
def view() -> CatalogView:
    return CatalogView(CONFIG)


def live_run(view: CatalogView, script: list[tuple[bytes | None, Command | None]]) -> Worker:
    w = Worker(view, default_rules())
    for sample, cmd in script:
        if sample is not None:
            w.sample(sample)
        if cmd is not None:
            w.command(cmd)
    return w


def backtest(tmp_path: Path, samples: list[bytes], command_lines: list[str]) -> list[Any]:
    history = tmp_path / "history.jsonl"
    history.write_bytes(b"\n".join(samples) + b"\n")
    cmds = tmp_path / "commands.jsonl"
    cmds.write_text("\n".join(command_lines) + "\n", encoding="utf-8")
    result = CliRunner().invoke(
        app,
        [
            "backtest",
            str(history),
            "--commands",
            str(cmds),
            "--config",
            str(CONFIG),
            "--json",
            "--all",
        ],
    )
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def scenario(fp: str, issued: list[datetime]) -> list[tuple[bytes | None, Command | None]]:
    """Open 09:00–11:00, closed 12:00, open 13:00; commands after the samples of 09:00 (assign),
    10:00 (silence 10:00–12:30), 11:00 (ack), 12:00 (unsilence), 13:00 (manual resolve)."""
    silence = Silence(
        id="s-bypass",
        matchers=(Matcher(name="source", value=BYPASS),),
        created_by="值班员",
        starts_at=TUE + 10 * H,
        ends_at=TUE + 12.5 * H,
    )
    cmds = [
        command("assign", fingerprint=fp, assignee="李四", issued_at=issued[0]),
        command("silence", silence=silence, issued_at=issued[1]),
        command("ack", fingerprint=fp, note="企业已关闭旁路", issued_at=issued[2]),
        command("unsilence", silence_id="s-bypass", issued_at=issued[3]),
        command("resolve", fingerprint=fp, note="现场核实", issued_at=issued[4]),
    ]
    opened = [(9, 1), (10, 1), (11, 1), (12, 0), (13, 1)]
    return [(bypass(TUE + h * H, v), c) for (h, v), c in zip(opened, cmds, strict=True)]


def fingerprint(view: CatalogView) -> str:
    probe = Worker(view, default_rules())
    probe.sample(bypass(TUE + 9 * H, 1))
    return str(probe.events[0]["fingerprint"])


def test_the_command_results_of_a_live_run_replay_to_the_same_transition_ids(
    tmp_path: Path, view: CatalogView
) -> None:
    fp = fingerprint(view)
    # issued on 5 December (the API's wall clock): the results carry where they took effect
    script = scenario(fp, [datetime(2026, 12, 5, 9 + k, tzinfo=TUE.tzinfo) for k in range(5)])
    live = live_run(view, script)
    assert [(r.command.action, r.status, r.at) for r in live.results] == [
        ("assign", "applied", TUE + 9 * H),
        ("silence", "applied", TUE + 10 * H),
        ("ack", "applied", TUE + 11 * H),
        ("unsilence", "applied", TUE + 12 * H),
        ("resolve", "applied", TUE + 13 * H),
    ]
    assert [(e["reason"], e["at"]) for e in live.events if e["fingerprint"] == fp] == [
        ("condition_met_no_wait", "2026-12-01T01:00:00+00:00"),
        ("assigned", "2026-12-01T01:00:00+00:00"),
        ("acknowledged", "2026-12-01T03:00:00+00:00"),
        ("clear_condition_met", "2026-12-01T04:00:00+00:00"),  # 12:00, muted
        ("suppression_ended", "2026-12-01T04:00:00+00:00"),  # told at the unsilence
        ("condition_met_no_wait", "2026-12-01T05:00:00+00:00"),
        ("manually_resolved", "2026-12-01T05:00:00+00:00"),
    ]
    replayed = backtest(
        tmp_path,
        [s for s, _ in script if s is not None],
        [r.model_dump_json() for r in live.results],
    )
    assert [r["id"] for r in replayed] == [e["id"] for e in live.events]


def test_commands_as_issued_replay_at_their_issue_time_among_the_samples(
    tmp_path: Path, view: CatalogView
) -> None:
    fp = fingerprint(view)
    # issued ten minutes after each sample was received (the data runs on the wall clock)
    issued = [TUE + (9 + k) * H + timedelta(minutes=10) for k in range(5)]
    script = scenario(fp, issued)
    live = live_run(view, script)
    assert [r.status for r in live.results] == ["applied"] * 5
    replayed = backtest(
        tmp_path,
        [s for s, _ in script if s is not None],
        [c.model_dump_json() for _, c in script if c is not None] + ["{not json"],
    )
    assert [r["id"] for r in replayed] == [e["id"] for e in live.events]
