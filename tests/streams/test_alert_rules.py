"""Alert rules as configuration (issue 14): ``deploy/config/alert-rules.yaml``.

What an operator sees: the shipped file is the rule set the worker runs; a mistake is named by
file, line, field and reason (``envwatch config check``, the worker's reload, ``envwatch
backtest``); an edit reaches the running locality stage without a restart (an edited rule keeps
its alerts, a removed rule's alerts are closed); ``envwatch backtest --rules`` tries an edit on
history first. The expected lines below are found in the texts the tests write, not computed by
the code under test.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from alerts.rules import alert_rules_from_text, default_rules
from rules.catalog import ALERT_RULES_FILES, catalog_from_texts, load_catalog
from rules.errors import ConfigError
from streams.alert_rules import FILE_NAME, RulesView, load_alert_rules_file, rules_file
from streams.catalog import CatalogView
from streams.cli import app
from tests.streams.test_commands_step import CONFIG, TUE, Worker, bypass

H = timedelta(hours=1)
SHIPPED = CONFIG / FILE_NAME


def shipped_text() -> str:
    return SHIPPED.read_text(encoding="utf-8")


def line_of(text: str, needle: str, after: str = "") -> int:
    """1-based line of the first line containing ``needle`` (after the line with ``after``),
    comment lines skipped."""
    lines = [("" if ln.lstrip().startswith("#") else ln) for ln in text.splitlines()]
    start = next(i for i, ln in enumerate(lines) if after in ln) if after else 0
    return next(i for i, ln in enumerate(lines) if i >= start and needle in ln) + 1


def problems(text: str, catalog: Any = None) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        alert_rules_from_text("alert-rules.yaml", text, catalog=catalog)
    return [str(p) for p in exc.value.problems]


def edit_rule(text: str, rule_id: str, old: str, new: str) -> str:
    """``text`` with ``old`` replaced by ``new`` inside the block of rule ``rule_id``."""
    start = text.index(f"  - id: {rule_id}\n")
    end = text.find("\n  - id: ", start + 1)
    end = len(text) if end < 0 else end
    block = text[start:end]
    assert old in block, (old, block)
    return text[:start] + block.replace(old, new, 1) + text[end:]


# ---------------------------------------------------------------- the shipped file


def test_the_shipped_file_is_the_rule_set_the_worker_runs_without_one() -> None:
    """deploy/config/alert-rules.yaml and the built-in rules (used when no file is found) are
    the same set: the same ids, thresholds, waits, severities and sources."""
    shipped = load_alert_rules_file(SHIPPED)
    assert [r.model_dump() for r in shipped.rules] == [
        r.model_dump() for r in default_rules().rules
    ]
    assert all(r.source for r in shipped.rules)
    assert rules_file(None, CONFIG) == SHIPPED
    assert rules_file(Path("/elsewhere.yaml"), CONFIG) == Path("/elsewhere.yaml")


def test_the_catalogue_loader_skips_the_alert_rules_file() -> None:
    assert SHIPPED.is_file()
    cat = load_catalog(CONFIG)
    assert {loc.id for loc in cat.localities} == {
        "weifang",
        "laixi",
        "zhifu",
        "tianqiao",
        "liaocheng-etdz",
    }


# ---------------------------------------------------------------- mistakes, named


def test_a_wrong_value_is_named_by_file_line_and_field() -> None:
    text = edit_rule(shipped_text(), "water-worse-than-v", "severity: critical", "severity: urgent")
    line = line_of(text, "severity: urgent")
    (p,) = problems(text)
    assert p.startswith(f"alert-rules.yaml:{line}: rules[2].severity: ")
    assert "'info', 'warning' or 'critical'" in p


def test_an_unknown_field_a_duplicate_id_and_a_broken_chain_are_each_named() -> None:
    text = edit_rule(shipped_text(), "ambient-exceedance", "for_minutes: 0", "for_minute: 0")
    text = edit_rule(text, "noise", "id: noise", "id: dustfall")
    text = edit_rule(
        text,
        "permit-exceedance",
        "critical_ratio: 1.5",
        "critical_ratio: 1.5\n    escalation: [duty, enterprise]",
    )
    found = problems(text)
    assert f"alert-rules.yaml:{line_of(text, 'for_minute: 0')}: rules[0].for_minute: " in found[0]
    assert "Extra inputs are not permitted" in found[0]
    chain = [p for p in found if "rules[3]" in p]
    assert len(chain) == 1
    assert chain[0].startswith(
        f"alert-rules.yaml:{line_of(text, 'escalation: [duty')}: rules[3].escalation: "
    )
    assert "'enterprise' is never escalated to" in chain[0]
    dup = [p for p in found if "duplicate rule id" in p]
    first = line_of(text, "id: dustfall")
    second = line_of(text, "id: dustfall", after="kind: dustfall")
    assert dup == [
        f"alert-rules.yaml:{second}: rules[7].id: duplicate rule id 'dustfall' (first at line {first})"
    ]
    assert len(found) == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rules: []\n", "alert-rules.yaml:1: rules: expected a non-empty list of rules"),
        ("rules:\n  - {id: x\n", "alert-rules.yaml:3: (document): YAML syntax: "),
        (
            "rule: []\n",
            "alert-rules.yaml:1: rule: unknown key (an alert-rules file has only rules)",
        ),
    ],
)
def test_an_empty_or_broken_file_is_refused(text: str, expected: str) -> None:
    assert any(p.startswith(expected) for p in problems(text)), problems(text)


def test_route_labels_may_not_take_a_label_envwatch_sets() -> None:
    text = edit_rule(
        shipped_text(),
        "bypass-open",
        "severity: critical",
        "severity: critical\n    route_labels: {locality: laixi}",
    )
    (p,) = problems(text)
    assert p.startswith(
        f"alert-rules.yaml:{line_of(text, 'route_labels')}: rules[6].route_labels: "
    )
    assert "'locality' is reserved" in p


# ---------------------------------------------------------------- against the catalogue


def test_a_chain_needs_a_route_in_every_locality_of_its_scope() -> None:
    """Every locality of the shipped catalogue routes notify.escalation.chief and .lead; here
    weifang.yaml alone also routes a ``director``."""
    texts = {
        p.name: p.read_text(encoding="utf-8")
        for p in sorted(CONFIG.glob("*.yaml"))
        if p.name not in ALERT_RULES_FILES
    }
    lead = "      lead: [{channel: email, target: lead-weifang@example.invalid}]\n"
    assert lead in texts["weifang.yaml"]
    texts["weifang.yaml"] = texts["weifang.yaml"].replace(
        lead, lead + "      director: [{channel: email, target: director@example.invalid}]\n"
    )
    cat = catalog_from_texts(texts)
    chained = edit_rule(
        shipped_text(),
        "permit-exceedance",
        "critical_ratio: 1.5",
        "critical_ratio: 1.5\n    escalation: [duty, chief, director]",
    )
    (p,) = problems(chained, cat)
    assert p.startswith(
        f"alert-rules.yaml:{line_of(chained, 'escalation:')}: rules[3].escalation: "
    )
    assert (
        "'director' has no notify.escalation.director route in laixi, liaocheng-etdz, tianqiao, "
        "zhifu" in p
    )
    scoped = edit_rule(
        chained, "permit-exceedance", "escalation:", "localities: [weifang]\n    escalation:"
    )
    assert alert_rules_from_text("x.yaml", scoped, catalog=cat).by_id[
        "permit-exceedance"
    ].escalation == ("duty", "chief", "director")
    nowhere = edit_rule(scoped, "permit-exceedance", "[weifang]", "[weifang, qingdao]")
    (p,) = problems(nowhere, cat)
    assert "rules[3].localities: unknown locality 'qingdao'" in p


# ---------------------------------------------------------------- the CLI


def test_config_check_checks_the_alert_rules_too(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["config", "check", str(CONFIG)])
    assert ok.exit_code == 0, ok.output
    assert f"20 alert rules in {SHIPPED}" in " ".join(ok.output.split())
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    bad = edit_rule(
        shipped_text(), "offline", "silent_after_minutes: 120", "silent_after_minutes: -5"
    )
    (config / FILE_NAME).write_text(bad, encoding="utf-8")
    res = runner.invoke(app, ["config", "check", str(config)])
    assert res.exit_code == 1
    line = line_of(bad, "silent_after_minutes: -5")
    assert f"{config / FILE_NAME}:{line}: rules[11].silent_after_minutes: " in res.output
    assert "1 problem(s)" in res.output


# ---------------------------------------------------------------- hot reload


def _touch_later(path: Path, seconds: float) -> None:
    later = time.time() + seconds
    os.utime(path, (later, later))


def test_a_reload_applies_an_edit_and_refuses_a_broken_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / FILE_NAME
    path.write_text(shipped_text(), encoding="utf-8")
    view = RulesView(path)
    assert view.rules.by_id["offline"].silent_after_minutes == 120
    assert view.maybe_reload() is False  # nothing changed
    path.write_text(
        edit_rule(
            shipped_text(), "offline", "silent_after_minutes: 120", "silent_after_minutes: 90"
        ),
        encoding="utf-8",
    )
    _touch_later(path, 5)
    assert view.maybe_reload() is True
    assert view.rules.by_id["offline"].silent_after_minutes == 90
    assert view.reloads == 1
    broken = edit_rule(shipped_text(), "offline", "kind: offline", "kind: asleep")
    path.write_text(broken, encoding="utf-8")
    _touch_later(path, 10)
    with caplog.at_level(logging.ERROR, logger="streams.alert_rules"):
        assert view.maybe_reload() is False
    assert view.rules.by_id["offline"].silent_after_minutes == 90  # the running set stays
    assert view.reloads == 1
    assert f"{path}:{line_of(broken, 'kind: asleep')}: rules[11].kind: " in caplog.text
    assert view.maybe_reload() is False  # not retried until the file changes again


def _bypass_events(w: Worker) -> list[tuple[str, str, str]]:
    return [
        (e["state"], e["reason"], e["at"][11:16])
        for e in w.events
        if e["labels"]["rule"] == "bypass-open"
    ]


def test_the_locality_stage_takes_a_reloaded_rule_set_at_its_next_record(tmp_path: Path) -> None:
    """The bypass monitor of e-wf-02 opens at 09:00 (bypass-open fires). The rules are edited:
    bypass-open gets a routing label — the alert is the same one (no new firing, nothing
    closed), and its next transition carries the label. Then bypass-open is removed: at the next
    record the alert is closed with ``rule_removed``, stamped with the locality's newest event
    time (10:00); a later open bypass fires nothing."""
    path = tmp_path / FILE_NAME
    path.write_text(shipped_text(), encoding="utf-8")
    rules = RulesView(path)
    w = Worker(CatalogView(CONFIG), rules)
    w.sample(bypass(TUE + 9 * H, 1))
    assert _bypass_events(w) == [("firing", "condition_met_no_wait", "01:00")]  # 09:00 Beijing
    fingerprint = w.events[-1]["fingerprint"]

    labelled = edit_rule(
        shipped_text(),
        "bypass-open",
        "severity: critical",
        "severity: critical\n    route_labels: {team: enforcement}",
    )
    path.write_text(labelled, encoding="utf-8")
    _touch_later(path, 5)
    assert rules.maybe_reload() is True
    w.sample(bypass(TUE + 10 * H, 1))
    assert _bypass_events(w) == [("firing", "condition_met_no_wait", "01:00")]

    start = labelled.index("  - id: bypass-open\n")
    end = labelled.index("  - id: noise\n")
    path.write_text(labelled[:start] + labelled[end:], encoding="utf-8")
    _touch_later(path, 10)
    assert rules.maybe_reload() is True
    w.sample(bypass(TUE + 11 * H, 1))
    assert _bypass_events(w)[1:] == [("resolved", "rule_removed", "02:00")]  # 10:00 Beijing
    assert w.events[-1]["fingerprint"] == fingerprint
    w.sample(bypass(TUE + 12 * H, 1))
    assert len(_bypass_events(w)) == 2


def test_route_labels_are_on_every_alert_of_the_rule_and_leave_its_identity(
    tmp_path: Path,
) -> None:
    plain = Worker(CatalogView(CONFIG), default_rules())
    plain.sample(bypass(TUE + 9 * H, 1))
    text = edit_rule(
        shipped_text(),
        "bypass-open",
        "severity: critical",
        "severity: critical\n    route_labels: {team: enforcement}",
    )
    labelled = Worker(CatalogView(CONFIG), alert_rules_from_text("a.yaml", text))
    labelled.sample(bypass(TUE + 9 * H, 1))
    (a,) = [e for e in plain.events if e["labels"]["rule"] == "bypass-open"]
    (b,) = [e for e in labelled.events if e["labels"]["rule"] == "bypass-open"]
    assert b["labels"]["team"] == "enforcement"
    assert "team" not in a["labels"]
    assert a["fingerprint"] == b["fingerprint"]
    assert {**a["labels"], "team": "enforcement"} == b["labels"]


# ---------------------------------------------------------------- backtest


def test_backtest_tries_an_edited_rule_on_history(tmp_path: Path) -> None:
    """The bypass opens 09:00–10:00 and closes at 11:00. With the shipped rules it fires at 09:00
    and resolves at 11:00; with ``for_minutes: 120`` tried through ``--rules`` a two-hour
    opening fires nothing. A broken file is named by line and nothing is replayed."""
    history = tmp_path / "history.jsonl"
    history.write_bytes(
        b"\n".join(bypass(TUE + h * H, v) for h, v in ((9, 1), (10, 1), (11, 0))) + b"\n"
    )

    def run(*extra: str) -> tuple[int, list[dict[str, Any]], str]:
        res = CliRunner().invoke(
            app, ["backtest", str(history), "--config", str(CONFIG), "--json", *extra]
        )
        rows = [orjson.loads(ln) for ln in res.stdout.splitlines() if ln.startswith("{")]
        return res.exit_code, rows, res.output

    code, rows, out = run()
    assert code == 0, out
    assert [(r["state"], r["at"][11:16]) for r in rows if r["labels"]["rule"] == "bypass-open"] == [
        ("firing", "01:00"),
        ("resolved", "03:00"),
    ]
    tried = tmp_path / "try.yaml"
    tried.write_text(
        edit_rule(
            shipped_text(),
            "bypass-open",
            "severity: critical",
            "severity: critical\n    for_minutes: 120",
        ),
        encoding="utf-8",
    )
    code, rows, out = run("--rules", str(tried))
    assert code == 0, out
    assert [r for r in rows if r["labels"]["rule"] == "bypass-open"] == []
    broken = tmp_path / "broken.yaml"
    text = edit_rule(shipped_text(), "bypass-open", "severity: critical", "severity: loud")
    broken.write_text(text, encoding="utf-8")
    code, rows, out = run("--rules", str(broken))
    assert code == 2
    assert rows == []
    assert f"{broken}:{line_of(text, 'severity: loud')}: rules[6].severity: " in " ".join(
        out.split()
    )
