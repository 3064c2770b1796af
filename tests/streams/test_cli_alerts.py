"""``envwatch alerts …`` (streams/cli/alerts.py): argument parsing, and the commands against the
alerts API app (``streams.api.app.create_app``, view fed directly, tests/api/test_console_contract.py)
in process: its Starlette test client in place of the CLI's HTTP client."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from typer.testing import CliRunner, Result

from streams.cli import alerts as cli
from streams.cli._app import app
from tests.api.test_console_contract import (
    ALERT_A,
    ALERT_AIR,
    ALERT_B,
    TOKENS,
    ContractAPI,
    contract_api,
)

runner = CliRunner()
BJT = timezone(timedelta(hours=8))
# 2026-12-03 10:00 Beijing = 02:00 UTC
NOW = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)


# ----------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("source=e-wf-001:outlet-1", {"name": "source", "op": "=", "value": "e-wf-001:outlet-1"}),
        ("rule!=offline", {"name": "rule", "op": "!=", "value": "offline"}),
        ("factor=~no.|so2", {"name": "factor", "op": "=~", "value": "no.|so2"}),
        ("locality!~wei.*", {"name": "locality", "op": "!~", "value": "wei.*"}),
        ('summary="a = b"', {"name": "summary", "op": "=", "value": "a = b"}),
        ("source=", {"name": "source", "op": "=", "value": ""}),
    ],
)
def test_matchers_follow_alertmanager(text: str, expected: dict[str, str]) -> None:
    assert cli.parse_matcher(text) == expected


@pytest.mark.parametrize("text", ["source", "=x", "1abc=x", "a b=c"])
def test_a_malformed_matcher_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a matcher"):
        cli.parse_matcher(text)


def test_times_are_beijing_wall_clock_unless_an_offset_is_given() -> None:
    assert cli.parse_time("2026-12-03T08:00", NOW) == datetime(2026, 12, 3, 0, 0, tzinfo=UTC)
    assert cli.parse_time("2026-12-03T08:00+00:00", NOW) == datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
    assert cli.parse_time("now", NOW) == NOW
    assert cli.parse_time("+2h", NOW) == NOW + timedelta(hours=2)
    assert cli.parse_time("-30m", NOW) == NOW - timedelta(minutes=30)
    # --since 24h: a day ago
    assert cli.parse_time("24h", NOW, ago=True) == NOW - timedelta(days=1)
    with pytest.raises(ValueError, match="not a time"):
        cli.parse_time("yesterday", NOW)


def test_weekdays_are_listed_monday_first_and_ranges_expand() -> None:
    assert cli.parse_weekdays("TUE,MON") == ["mon", "tue"]
    assert cli.parse_weekdays("mon-fri") == ["mon", "tue", "wed", "thu", "fri"]
    assert cli.parse_weekdays("Saturday,sun") == ["sat", "sun"]
    for bad in ("fun", "fri-mon", ""):
        with pytest.raises(ValueError):
            cli.parse_weekdays(bad)


def test_a_one_off_silence_for_two_hours() -> None:
    body = cli.silence_body(["source=e-wf-001:outlet-1"], now=NOW, duration="2h", comment="检修")
    assert body == {
        "matchers": [{"name": "source", "op": "=", "value": "e-wf-001:outlet-1"}],
        "starts_at": "2026-12-03T02:00:00+00:00",
        "ends_at": "2026-12-03T04:00:00+00:00",
        "comment": "检修",
    }


def test_a_weekly_silence_tuesday_mornings_beijing_time() -> None:
    body = cli.silence_body(
        ["source=e-wf-001:outlet-1", "rule=~permit_.*"],
        now=NOW,
        starts="2026-12-01T00:00",
        ends="2027-03-01T00:00",
        weekly="TUE",
        daily_from="08:00",
        daily_to="12:00",
    )
    assert body["starts_at"] == "2026-12-01T00:00:00+08:00"
    assert body["ends_at"] == "2027-03-01T00:00:00+08:00"
    assert body["recurrence"] == {
        "every": "week",
        "start": "08:00",
        "end": "12:00",
        "weekdays": ["tue"],
    }
    assert body["matchers"][1] == {"name": "rule", "op": "=~", "value": "permit_.*"}


def test_a_recurring_silence_may_be_open_ended_a_one_off_may_not() -> None:
    body = cli.silence_body(["source=x"], now=NOW, daily_from="23:00", daily_to="01:00")
    assert body["ends_at"] is None
    assert body["recurrence"] == {"every": "day", "start": "23:00", "end": "01:00", "weekdays": []}
    with pytest.raises(ValueError, match="needs --ends or --for"):
        cli.silence_body(["source=x"], now=NOW)
    with pytest.raises(ValueError, match="not both"):
        cli.silence_body(["source=x"], now=NOW, ends="+1h", duration="1h")
    with pytest.raises(ValueError, match="--from HH:MM and --to"):
        cli.silence_body(["source=x"], now=NOW, weekly="MON", duration="1d")
    with pytest.raises(ValueError, match="end after it starts"):
        cli.silence_body(["source=x"], now=NOW, ends="-1h")
    with pytest.raises(ValueError, match="at least one matcher"):
        cli.silence_body([], now=NOW, duration="1h")


def test_without_a_token_the_command_says_so_and_exits_3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENVWATCH_API_TOKEN", raising=False)
    result = runner.invoke(app, ["alerts", "ls", "--api", "http://127.0.0.1:9"])
    assert result.exit_code == cli.Exit.UNAUTHORIZED
    assert "ENVWATCH_API_TOKEN" in result.output


def test_an_unreachable_api_exits_2_without_showing_the_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVWATCH_API_TOKEN", "s3cret-token-value")
    result = runner.invoke(app, ["alerts", "ls", "--api", "http://127.0.0.1:9"])
    assert result.exit_code == cli.Exit.UNREACHABLE
    assert "cannot reach the alerts service at http://127.0.0.1:9" in result.output
    assert "s3cret" not in result.output


def test_the_help_never_shows_the_token_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVWATCH_API_TOKEN", "s3cret-token-value")
    result = runner.invoke(app, ["alerts", "ack", "--help"])
    assert result.exit_code == 0
    assert "s3cret" not in result.output


def test_a_silence_with_bad_arguments_exits_6_before_sending(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVWATCH_API_TOKEN", "t")
    result = runner.invoke(
        app, ["alerts", "silence", "source", "--for", "2h", "--api", "http://127.0.0.1:9"]
    )
    assert result.exit_code == cli.Exit.INVALID
    assert "not a matcher" in result.output


# ----------------------------------------------------------------------------- against the app


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> ContractAPI:
    """The CLI's HTTP client replaced by a test client of the app (same requests, in process)."""
    from fastapi.testclient import TestClient

    stand_in = contract_api()

    def make_client(url: str, token: str) -> TestClient:
        assert url == "http://alerts.test"
        return TestClient(
            stand_in.app,
            base_url=url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )

    monkeypatch.setattr(cli, "make_client", make_client)
    monkeypatch.setenv("ENVWATCH_API_URL", "http://alerts.test")
    monkeypatch.setenv("ENVWATCH_API_TOKEN", TOKENS["duty"])
    return stand_in


def invoke(*args: str) -> Result:
    return runner.invoke(app, ["alerts", *args], env={"COLUMNS": "250"})


def test_ls_lists_the_open_alerts_as_a_table(api: ContractAPI) -> None:
    result = invoke("ls")
    assert result.exit_code == 0, result.output
    assert "告警 alerts (3)" in result.output
    for a in (ALERT_A, ALERT_B, ALERT_AIR):
        assert a["id"] in result.output


def test_ls_json_and_filters(api: ContractAPI) -> None:
    result = invoke("ls", "--rule", "ambient_exceedance", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [a["id"] for a in data["items"]] == [ALERT_AIR["id"]]


def test_an_enterprise_token_lists_only_its_own(
    api: ContractAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVWATCH_API_TOKEN", TOKENS["enterprise:e-wf-001"])
    data = json.loads(invoke("ls", "--json").output)
    assert [a["id"] for a in data["items"]] == [ALERT_A["id"]]
    result = invoke("show", ALERT_B["id"])
    assert result.exit_code == cli.Exit.NOT_FOUND
    assert "not found" in result.output


def test_ack_with_a_note_then_show_has_it_in_the_history(api: ContractAPI) -> None:
    result = invoke("ack", ALERT_A["id"], "--note", "已电话通知企业")
    assert result.exit_code == 0, result.output
    assert f"ack {ALERT_A['id']}: applied" in result.output
    shown = invoke("show", ALERT_A["id"])
    assert shown.exit_code == 0, shown.output
    assert "值班员王" in shown.output
    assert "已电话通知企业" in shown.output
    data = json.loads(invoke("show", ALERT_A["id"], "--json").output)
    assert data["acknowledged_by"] == "值班员王"
    assert data["history"][-1]["note"] == "已电话通知企业"


def test_assign_and_clear(api: ContractAPI) -> None:
    assert invoke("assign", ALERT_AIR["id"], "张三", "--note", "现场核查").exit_code == 0
    assert invoke("assign", ALERT_AIR["id"], "--clear").exit_code == 0
    assert [(c.action, c.assignee, c.note) for c in api.commands] == [
        ("assign", "张三", "现场核查"),
        ("unassign", None, ""),
    ]
    assert invoke("assign", ALERT_AIR["id"]).exit_code == cli.Exit.INVALID


def test_a_refused_resolve_exits_1_with_the_reason(api: ContractAPI) -> None:
    result = invoke("resolve", ALERT_A["id"], "--note", "x")
    assert result.exit_code == cli.Exit.REFUSED
    assert "manual_resolve_not_allowed" in result.output
    assert invoke("resolve", ALERT_AIR["id"], "--note", "传感器更换").exit_code == 0


def test_a_refused_token_exits_3(api: ContractAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVWATCH_API_TOKEN", "not-a-token")
    result = invoke("ls")
    assert result.exit_code == cli.Exit.UNAUTHORIZED
    assert "not-a-token" not in result.output


def test_silence_list_and_unsilence(api: ContractAPI) -> None:
    result = invoke(
        "silence",
        "source=e-wf-001:outlet-1",
        "--weekly",
        "TUE",
        "--from",
        "08:00",
        "--to",
        "12:00",
        "--comment",
        "每周二例行检修",
    )
    assert result.exit_code == 0, result.output
    (command,) = api.commands
    assert command.silence is not None
    assert command.silence.model_dump(mode="json")["recurrence"] == {
        "every": "week",
        "start": "08:00:00",
        "end": "12:00:00",
        "weekdays": ["tue"],
    }
    assert command.silence.ends_at is None
    listed = invoke("silence")
    assert "tue 08:00–12:00" in listed.output
    assert "每周二例行检修" in listed.output
    (held,) = api.silences()
    assert invoke("unsilence", held.id).exit_code == 0
    assert api.silences() == []
    assert invoke("unsilence", held.id).exit_code == cli.Exit.NOT_FOUND


def test_maint_start_and_end(api: ContractAPI) -> None:
    result = invoke(
        "maint",
        "start",
        "e-wf-001:outlet-1",
        "--from",
        "2026-12-03T08:00",
        "--to",
        "2026-12-03T12:00",
        "--note",
        "脱硝系统检修",
    )
    assert result.exit_code == 0, result.output
    (command,) = api.commands
    assert (command.action, command.source, command.note) == (
        "maintenance_start",
        "e-wf-001:outlet-1",
        "脱硝系统检修",
    )
    assert command.starts_at == datetime(2026, 12, 3, 0, 0, tzinfo=UTC)  # 08:00 Beijing
    assert command.ends_at == datetime(2026, 12, 3, 4, 0, tzinfo=UTC)
    (window,) = api.silences()
    assert window.id.startswith("maint-")
    assert invoke("maint", "end", window.id).exit_code == 0
    assert api.silences() == []
    assert invoke("maint", "start", "x", "--to", "-1h").exit_code == cli.Exit.INVALID


def test_ls_filters_reach_the_api(api: ContractAPI) -> None:
    def listed(*args: str) -> list[str]:
        result = invoke("ls", "--json", *args)
        assert result.exit_code == 0, result.output
        return sorted(a["id"] for a in json.loads(result.output)["items"])

    assert listed("--severity", "warning") == [ALERT_AIR["id"]]
    assert listed("--source", "e-wf-002:outlet-1") == [ALERT_B["id"]]
    assert listed("--locality", "weifang", "--rule", "permit_exceedance") == sorted(
        [ALERT_A["id"], ALERT_B["id"]]
    )
    assert listed("--state", "resolved") == []
    # the alerts changed on 2026-12-03 09:00 Beijing time: since then all, since later none
    assert len(listed("--since", "2026-12-03T08:00")) == 3
    assert listed("--since", "2026-12-03T10:00") == []
    result = invoke("ls", "--since", "yesterday")
    assert result.exit_code == cli.Exit.INVALID
