"""Catalogue ``notify:`` routes (issue 14): receivers per locality and enterprise, secrets only by
reference, an inline secret rejected by ``envwatch config check`` naming file and line; the
channels built from the routes (alerts/notify/routes.py) with the env override per receiver."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from alerts.notify.chat import AppriseNotifier
from alerts.notify.mqtt import MqttNotifier
from alerts.notify.routes import FanOut, RouteChannels, dingtalk_url, wecom_url
from alerts.notify.webhook import WebhookNotifier
from alerts.settings import AlertsSettings, MqttAlertSettings, WebhookSettings
from rules.catalog import ALERT_RULES_FILES, catalog_from_texts, inline_secret, load_catalog
from rules.errors import ConfigError, ConfigProblem
from streams.cli import app

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "config"
runner = CliRunner()

WF_ROUTE = (
    '- {channel: webhook, target: "https://example.invalid/hooks/e-wf-01", '
    "secret: {env: ENVWATCH_SECRET_HOOK_E_WF_01}}"
)


def _texts() -> dict[str, str]:
    return {
        p.name: p.read_text(encoding="utf-8")
        for p in sorted(CONFIG.glob("*.yaml"))
        if p.name not in ALERT_RULES_FILES
    }


def _line_of(text: str, snippet: str) -> int:
    return text.count("\n", 0, text.index(snippet)) + 1


def _replace(old: str, new: str, file: str = "weifang.yaml") -> tuple[dict[str, str], int]:
    texts = _texts()
    assert old in texts[file], old
    line = _line_of(texts[file], old)
    texts[file] = texts[file].replace(old, new, 1)
    return texts, line


def _problems(texts: dict[str, str]) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as info:
        catalog_from_texts(texts)
    return info.value.problems


# ------------------------------------------------------------------ the shipped routes


def test_shipped_catalogue_routes_every_locality_and_its_escalation_kinds() -> None:
    routes = load_catalog(CONFIG).routes()
    for loc in ("weifang", "tianqiao", "laixi", "zhifu", "liaocheng-etdz"):
        for kind in ("duty", "emergency", "chief", "lead"):
            assert f"{kind}-{loc}" in routes, f"{kind}-{loc}"
    assert [r.channel for r in routes["duty-weifang"]] == ["email", "mqtt"]
    assert [r.channel for r in routes["enterprise-e-wf-01"]] == ["webhook"]
    assert [r.channel for r in routes["enterprise-e-tq-02"]] == ["dingtalk"]
    # nine enterprises, each with its own route
    assert len([r for r in routes if r.startswith("enterprise-")]) == 9


# ------------------------------------------------------------------ what counts as inline


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("https://oapi.dingtalk.com/robot/send?access_token=abcd1234", True),
        ("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6", True),
        ("https://user:pw@hooks.example.com/x", True),
        ("https://hooks.example.com/x?apikey=1", True),
        ("https://hooks.example.com/x?sign=1&timestamp=2", True),
        ("https://hooks.example.com/x#token=1", True),
        ("https://hooks.example.com/x", False),
        ("https://hooks.example.com/x?tenant=wf&format=json", False),
    ],
)
def test_inline_secret(url: str, secret: bool) -> None:
    why = inline_secret(url)
    assert (why is not None) is secret
    if why is not None:  # names the parameter, never its value
        assert "abcd1234" not in why
        assert "693a91f6" not in why
        assert "pw" not in why.split()


@pytest.mark.parametrize(
    ("new", "field_suffix", "reason"),
    [
        (
            '- {channel: webhook, target: "https://h.example/x?access_token=s3cr3t", '
            "secret: {env: X}}",
            "notify[0].target",
            "credential parameter 'access_token'",
        ),
        (
            '- {channel: webhook, target: "https://u:s3cr3t@h.example/x", secret: {env: X}}',
            "notify[0].target",
            "userinfo",
        ),
        (
            '- {channel: webhook, target: "https://h.example/x", secret: "s3cr3t"}',
            "notify[0].secret",
            "by reference, never inline",
        ),
        (
            '- {channel: webhook, target: "https://h.example/x"}',
            "notify[0]",
            "needs secret",
        ),
        (
            '- {channel: dingtalk, target: "https://oapi.dingtalk.com/robot/send"}',
            "notify[0]",
            "robot's address is its credential",
        ),
        ('- {channel: email, target: "not an address"}', "notify[0]", "one address"),
        ('- {channel: mqtt, target: "alerts/#"}', "notify[0]", "without wildcards"),
    ],
)
def test_inline_secret_is_rejected_with_file_and_line(
    new: str, field_suffix: str, reason: str
) -> None:
    texts, line = _replace(WF_ROUTE, new)
    problems = _problems(texts)
    assert len(problems) == 1, problems
    p = problems[0]
    assert p.file == "weifang.yaml"
    assert p.line == line
    assert p.field == f"enterprises[0].{field_suffix}"
    assert reason in p.reason
    assert "s3cr3t" not in str(p)


def test_locality_routes_are_checked_too() -> None:
    old = "      chief: [{channel: wecom, target: {env: ENVWATCH_SECRET_WECOM_WEIFANG_CHIEF}}]"
    new = '      chief: [{channel: wecom, target: "https://qyapi.weixin.qq.com/x?key=s3cr3t"}]'
    texts, line = _replace(old, new)
    problems = _problems(texts)
    assert [(p.file, p.line, p.field) for p in problems] == [
        ("weifang.yaml", line, "locality.notify.escalation.chief[0].target")
    ]
    assert "s3cr3t" not in str(problems[0])


def test_duty_is_not_an_escalation_kind() -> None:
    texts, _ = _replace("      lead: [", "      duty: [")
    problems = _problems(texts)
    assert len(problems) == 1
    assert "not an escalation kind" in problems[0].reason


def test_config_check_names_file_and_line_of_an_inline_secret(tmp_path: Path) -> None:
    broken = tmp_path / "config"
    shutil.copytree(CONFIG, broken)
    wf = broken / "weifang.yaml"
    text = wf.read_text(encoding="utf-8")
    line = _line_of(text, WF_ROUTE)
    wf.write_text(
        text.replace(
            WF_ROUTE,
            '- {channel: webhook, target: "https://h.example/x", secret: "s3cr3t-hmac"}',
        ),
        encoding="utf-8",
    )
    result = runner.invoke(app, ["config", "check", str(broken)])
    assert result.exit_code == 1
    assert f"weifang.yaml:{line}" in result.output
    assert "enterprises[0].notify[0].secret" in result.output
    assert "s3cr3t-hmac" not in result.output


# ------------------------------------------------------------------ channels from the routes


def test_channels_resolve_references_and_env_overrides_a_receiver(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "dingtalk-e-tq-02.url").write_text(
        "https://oapi.dingtalk.com/robot/send?access_token=0a1b2c3d4e5f\n", encoding="utf-8"
    )
    env = {
        "ENVWATCH_SECRET_HOOK_E_WF_01": "hmac-wf-01",
        "ENVWATCH_SECRET_WECOM_WEIFANG_CHIEF": "https://qyapi.weixin.qq.com/x?key=k-chief",
    }
    settings = AlertsSettings(
        smtp_url=SecretStr("mailtos://alerts:pw@smtp.example.com"),
        mqtt=MqttAlertSettings(url=SecretStr("mqtt://127.0.0.1:1")),
        webhooks={
            "enterprise-e-lc-01": WebhookSettings(
                url="https://override.example/h", secret=SecretStr("o")
            )
        },
    )
    routes = RouteChannels(settings, base=tmp_path, env=env)
    try:
        built = routes.build(load_catalog(CONFIG))
        ch = built.channels
        assert isinstance(ch["enterprise-e-wf-01"], WebhookNotifier)
        assert isinstance(ch["enterprise-e-tq-02"], AppriseNotifier)  # from the file
        assert isinstance(ch["chief-weifang"], AppriseNotifier)
        assert isinstance(ch["lead-weifang"], AppriseNotifier)  # email through the SMTP URL
        duty = ch["duty-weifang"]
        assert isinstance(duty, FanOut)
        mqtt = [c for c in duty.channels if isinstance(c, MqttNotifier)]
        assert [m.scope_topic for m in mqtt] == ["alerts/locality/weifang"]
        # the override replaces the catalogue's route of that receiver
        override = ch["enterprise-e-lc-01"]
        assert isinstance(override, WebhookNotifier)
        assert "enterprise-e-lc-01" in built.overridden
        # unresolved references: held with the variable's name, never a value
        assert "ENVWATCH_SECRET_HOOK_E_ZF_02" in built.problems["enterprise-e-zf-02"]
        assert "ENVWATCH_SECRET_DINGTALK_SIGN_WEIFANG" in built.problems["emergency-weifang"]
        assert "enterprise-e-zf-02" not in ch
        assert not any("hmac" in p or "0a1b2c3d" in p for p in built.problems.values())
    finally:
        routes.close()


def test_a_refused_robot_address_is_held_and_not_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = {"ENVWATCH_SECRET_WECOM_E_TQ_01": "https://qyapi.weixin.qq.com/x?key=no-such-key!"}
    built = RouteChannels(AlertsSettings(), base=tmp_path, env=env).build(load_catalog(CONFIG))
    assert "enterprise-e-tq-01" in built.problems
    assert "no-such-key" not in caplog.text
    assert "no-such-key" not in built.problems["enterprise-e-tq-01"]


def test_no_smtp_and_no_broker_hold_the_receiver() -> None:
    built = RouteChannels(AlertsSettings(), env={}).build(load_catalog(CONFIG))
    assert "duty-weifang" not in built.channels
    assert "no SMTP server" in built.problems["duty-weifang"]


def test_robot_addresses_become_apprise_urls() -> None:
    assert (
        dingtalk_url("https://oapi.dingtalk.com/robot/send?access_token=T1", "S1")
        == "dingtalk://S1@T1/"
    )
    assert dingtalk_url("T2", None) == "dingtalk://T2/"
    assert wecom_url("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K1") == "wecombot://K1"
    assert wecom_url("wecombot://K2") == "wecombot://K2"
