"""The alerts console (streams/api/console.py) through HTTP: login and its cookie, CSRF on every
form, isolation (another enterprise's alert is neither listed nor reachable: the 404 page), the
forms turned into API commands, the Grafana ``find`` link, and the pages' security headers."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from alerts.locality import transition_point
from alerts.model import AlertState, Reason, Severity, Transition, TransitionKind, fingerprint
from tests.api.test_console_contract import (
    ALERT_A,
    ALERT_AIR,
    ALERT_B,
    TOKENS,
    ContractAPI,
    contract_api,
)

#: deploy/grafana from the checkout (imported by name: mypy sees the folder under two names)
dashboards: Any = importlib.import_module("deploy.grafana.dashboards")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def api() -> ContractAPI:
    return contract_api()


@pytest.fixture
def client(api: ContractAPI) -> Iterator[TestClient]:
    with TestClient(api.app, follow_redirects=False) as c:
        yield c


def login(client: TestClient, token: str, next_: str = "") -> str:
    """Log in through the form; the session's CSRF token (from the next page)."""
    page = client.get("/console/login", params={"next": next_} if next_ else None)
    assert page.status_code == 200
    csrf = CSRF.search(page.text)
    assert csrf is not None
    r = client.post(
        "/console/login",
        data={"csrf": csrf.group(1), "token": token, "next": next_},
    )
    assert r.status_code == 303, r.text
    alerts = client.get("/console/alerts")
    assert alerts.status_code == 200
    found = CSRF.search(alerts.text)
    assert found is not None
    return found.group(1)


# ----------------------------------------------------------------------------- login


def test_pages_need_a_login_and_come_back_to_the_page_asked_for(client: TestClient) -> None:
    r = client.get(f"/console/alerts/{ALERT_A['id']}")
    assert r.status_code == 303
    assert r.headers["location"] == f"/console/login?next=%2Fconsole%2Falerts%2F{ALERT_A['id']}"
    page = client.get(r.headers["location"])
    csrf = CSRF.search(page.text)
    assert csrf is not None
    r = client.post(
        "/console/login",
        data={
            "csrf": csrf.group(1),
            "token": TOKENS["duty"],
            "next": f"/console/alerts/{ALERT_A['id']}",
        },
    )
    assert r.headers["location"] == f"/console/alerts/{ALERT_A['id']}"


def test_the_session_cookie_is_opaque_httponly_and_samesite_strict(client: TestClient) -> None:
    page = client.get("/console/login")
    csrf = CSRF.search(page.text)
    assert csrf is not None
    r = client.post("/console/login", data={"csrf": csrf.group(1), "token": TOKENS["duty"]})
    assert r.status_code == 303
    assert r.headers["location"] == "/console/alerts"
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("envwatch_console="))
    value = cookie.split(";")[0].split("=", 1)[1]
    assert TOKENS["duty"] not in cookie
    assert len(value) >= 40  # 32 random bytes, URL-safe base64
    flags = {f.strip().lower() for f in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/console"} <= flags
    assert "secure" not in flags  # plain http (127.0.0.1)
    assert TOKENS["duty"] not in r.headers["location"]


def test_over_https_the_cookie_is_secure(api: ContractAPI) -> None:
    with TestClient(api.app, base_url="https://console.example", follow_redirects=False) as c:
        page = c.get("/console/login")
        csrf = CSRF.search(page.text)
        assert csrf is not None
        r = c.post("/console/login", data={"csrf": csrf.group(1), "token": TOKENS["duty"]})
        cookie = next(
            x for x in r.headers.get_list("set-cookie") if x.startswith("envwatch_console=")
        )
        assert "secure" in {f.strip().lower() for f in cookie.split(";")}


def test_a_wrong_token_is_refused_and_no_session_opened(client: TestClient) -> None:
    page = client.get("/console/login")
    csrf = CSRF.search(page.text)
    assert csrf is not None
    r = client.post("/console/login", data={"csrf": csrf.group(1), "token": "guess"})
    assert r.status_code == 401
    assert "令牌无效" in r.text
    assert not any(c.startswith("envwatch_console=") for c in r.headers.get_list("set-cookie"))
    assert client.get("/console/alerts").status_code == 303


def test_a_login_post_without_the_forms_csrf_cookie_is_refused(api: ContractAPI) -> None:
    with TestClient(api.app, follow_redirects=False) as c:
        r = c.post("/console/login", data={"csrf": "x", "token": TOKENS["duty"]})
        assert r.status_code == 400
        assert not any(x.startswith("envwatch_console=") for x in r.headers.get_list("set-cookie"))


def test_next_never_leaves_the_console(client: TestClient) -> None:
    for target in ("https://evil.example/", "//evil.example/console/", "/api/v1/alerts"):
        page = client.get("/console/login", params={"next": target})
        assert "evil" not in page.text
        csrf = CSRF.search(page.text)
        assert csrf is not None
        r = client.post(
            "/console/login",
            data={"csrf": csrf.group(1), "token": TOKENS["duty"], "next": target},
        )
        assert r.headers["location"] == "/console/alerts"


def test_logout_needs_the_csrf_token_and_ends_the_session(client: TestClient) -> None:
    csrf = login(client, TOKENS["duty"])
    assert client.post("/console/logout", data={"csrf": "wrong"}).status_code == 403
    assert client.get("/console/alerts").status_code == 200
    r = client.post("/console/logout", data={"csrf": csrf})
    assert r.status_code == 303
    assert client.get("/console/alerts").status_code == 303


# ----------------------------------------------------------------------------- isolation


def test_duty_sees_the_localitys_open_alerts(client: TestClient) -> None:
    login(client, TOKENS["duty"])
    page = client.get("/console/alerts").text
    for a in (ALERT_A, ALERT_B, ALERT_AIR):
        assert f"/console/alerts/{a['id']}" in page
    assert "共 3 条" in page


def test_an_enterprise_sees_only_its_own_and_other_ids_are_a_404_page(
    client: TestClient,
) -> None:
    login(client, TOKENS["enterprise:e-wf-001"])
    page = client.get("/console/alerts").text
    assert f"/console/alerts/{ALERT_A['id']}" in page
    assert ALERT_B["id"] not in page
    assert ALERT_B["summary"] not in page
    assert ALERT_AIR["id"] not in page
    assert "共 1 条" in page
    own = client.get(f"/console/alerts/{ALERT_A['id']}")
    assert own.status_code == 200
    other = client.get(f"/console/alerts/{ALERT_B['id']}")
    missing = client.get("/console/alerts/0000000000000000")
    assert other.status_code == missing.status_code == 404
    assert ALERT_B["summary"] not in other.text
    # the other enterprise's page says exactly what a non-existent id says
    assert other.text.replace(ALERT_B["id"], "X") == missing.text.replace("0000000000000000", "X")


def test_an_enterprise_cannot_act_on_another_enterprises_alert(
    client: TestClient, api: ContractAPI
) -> None:
    csrf = login(client, TOKENS["enterprise:e-wf-001"])
    r = client.post(f"/console/alerts/{ALERT_B['id']}/ack", data={"csrf": csrf, "note": "x"})
    assert r.status_code == 404
    assert api.commands == []


# ----------------------------------------------------------------------------- forms


def test_the_ack_form_sends_the_note_and_the_history_shows_who_and_why(
    client: TestClient, api: ContractAPI
) -> None:
    csrf = login(client, TOKENS["duty"])
    r = client.post(
        f"/console/alerts/{ALERT_A['id']}/ack", data={"csrf": csrf, "note": "已电话通知企业"}
    )
    assert r.status_code == 303
    assert r.headers["location"] == f"/console/alerts/{ALERT_A['id']}"
    assert [(c.action, c.actor, c.note) for c in api.commands] == [
        ("ack", "值班员王", "已电话通知企业")
    ]
    page = client.get(r.headers["location"]).text
    assert "已确认 Acknowledged" in page  # the flash
    history = page.split('id="history"', 1)[1]
    assert "acknowledged" in history
    assert "值班员王" in history
    assert "已电话通知企业" in history


@pytest.mark.parametrize("csrf", [None, "", "forged-token"])
def test_a_form_without_the_sessions_csrf_token_is_refused(
    client: TestClient, api: ContractAPI, csrf: str | None
) -> None:
    login(client, TOKENS["duty"])
    data = {"note": "x"} if csrf is None else {"note": "x", "csrf": csrf}
    for path in (
        f"/console/alerts/{ALERT_A['id']}/ack",
        f"/console/alerts/{ALERT_A['id']}/resolve",
        "/console/silences",
        "/console/maintenance",
    ):
        assert client.post(path, data=data).status_code == 403, path
    assert api.commands == []


def test_another_sessions_csrf_token_is_refused(api: ContractAPI) -> None:
    with (
        TestClient(api.app, follow_redirects=False) as one,
        TestClient(api.app, follow_redirects=False) as two,
    ):
        csrf_one = login(one, TOKENS["duty"])
        login(two, TOKENS["duty"])
        r = two.post(f"/console/alerts/{ALERT_A['id']}/ack", data={"csrf": csrf_one})
        assert r.status_code == 403
    assert api.commands == []


def test_assign_unassign_and_resolve_forms(client: TestClient, api: ContractAPI) -> None:
    csrf = login(client, TOKENS["duty"])
    base = f"/console/alerts/{ALERT_AIR['id']}"
    client.post(f"{base}/assign", data={"csrf": csrf, "assignee": "张三", "note": "现场核查"})
    assert "取消指派 Unassign" in client.get(base).text
    client.post(f"{base}/unassign", data={"csrf": csrf})
    client.post(f"{base}/resolve", data={"csrf": csrf, "note": "传感器故障，已更换"})
    assert [(c.action, c.assignee, c.note) for c in api.commands] == [
        ("assign", "张三", "现场核查"),
        ("unassign", None, ""),
        ("resolve", None, "传感器故障，已更换"),
    ]
    assert 'id="resolve-form"' not in client.get(base).text  # resolved: no resolve form


def test_a_weekly_silence_from_the_form_in_beijing_time(
    client: TestClient, api: ContractAPI
) -> None:
    csrf = login(client, TOKENS["duty"])
    r = client.post(
        "/console/silences",
        data={
            "csrf": csrf,
            "matchers": "source=e-wf-001:outlet-1\r\nrule=~permit_.*\r\n",
            "starts": "2026-12-01T00:00",
            "ends": "2027-03-01T00:00",
            "weekdays": ["tue", "thu"],
            "from": "08:00",
            "to": "12:00",
            "comment": "每周二、四例行检修",
        },
    )
    assert r.status_code == 303
    (command,) = api.commands
    assert command.action == "silence"
    assert command.actor == "值班员王"
    assert command.silence is not None
    silence = command.silence.model_dump(mode="json")
    assert silence["matchers"] == [
        {"name": "source", "op": "=", "value": "e-wf-001:outlet-1"},
        {"name": "rule", "op": "=~", "value": "permit_.*"},
        {"name": "locality", "op": "=", "value": "weifang"},  # the API scopes a duty's silence
    ]
    assert command.silence.starts_at == datetime(2026, 11, 30, 16, tzinfo=UTC)  # 12-01 00:00 BJT
    assert command.silence.ends_at == datetime(2027, 2, 28, 16, tzinfo=UTC)
    assert silence["comment"] == "每周二、四例行检修"
    assert silence["recurrence"] == {
        "every": "week",
        "start": "08:00:00",
        "end": "12:00:00",
        "weekdays": ["tue", "thu"],
    }
    page = client.get("/console/silences").text
    assert "tue,thu 08:00–12:00" in page
    (held,) = api.silences()
    client.post(f"/console/silences/{held.id}/expire", data={"csrf": csrf})
    assert api.silences() == []


def test_an_invalid_silence_is_explained_and_not_sent(client: TestClient, api: ContractAPI) -> None:
    csrf = login(client, TOKENS["duty"])
    r = client.post("/console/silences", data={"csrf": csrf, "matchers": "source"})
    assert r.status_code == 303
    assert "not a matcher" in client.get("/console/silences").text
    assert api.commands == []


def test_a_maintenance_window_from_the_form(client: TestClient, api: ContractAPI) -> None:
    csrf = login(client, TOKENS["enterprise:e-wf-001"])
    client.post(
        "/console/maintenance",
        data={
            "csrf": csrf,
            "source": "e-wf-001:outlet-1",
            "from": "2026-12-03T08:00",
            "to": "2026-12-03T12:00",
            "note": "脱硝系统检修",
        },
    )
    (command,) = api.commands
    assert command.action == "maintenance_start"
    assert command.source == "e-wf-001:outlet-1"
    assert command.starts_at == datetime(2026, 12, 3, 0, 0, tzinfo=UTC)  # 08:00 Beijing
    assert command.ends_at == datetime(2026, 12, 3, 4, 0, tzinfo=UTC)
    assert command.note == "脱硝系统检修"
    page = client.get("/console/maintenance").text
    assert "脱硝系统检修" in page
    assert "2026-12-03 08:00" in page


# ----------------------------------------------------------------------------- links


def test_the_grafana_row_link_leads_to_the_alerts_page(client: TestClient) -> None:
    """The duty board's data link, filled with the tags the locality stage writes for the
    alert (alerts.locality.transition_point), redirects to /console/alerts/{fingerprint}."""
    login(client, TOKENS["duty"])
    labels = {
        "rule": "ambient_exceedance",
        "source": "ws-wf-01",
        "factor": "pm25",
        "locality": "weifang",
        "period": "24h",
    }
    t = Transition(
        id="t1",
        kind=TransitionKind.ALERT,
        fingerprint=fingerprint(labels),
        labels=labels,
        annotations={},
        state=AlertState.FIRING,
        previous_state=AlertState.PENDING,
        reason=Reason.FOR_ELAPSED,
        at=datetime(2026, 12, 3, 1, tzinfo=UTC),
        severity=Severity.WARNING,
        locality="weifang",
        source="ws-wf-01",
    )
    tags = transition_point(t).tags
    board = dashboards.all_dashboards()["envwatch-duty"]
    (panel,) = [p for p in board["panels"] if str(p.get("title", "")).startswith("当前告警")]
    (link,) = panel["fieldConfig"]["defaults"]["links"]
    url = link["url"].replace("${console}", "http://testserver")
    url = re.sub(r"\$\{__data\.fields\.(\w+)\}", lambda m: str(tags[m.group(1)]), url)
    r = client.get(url)
    assert r.status_code == 303
    assert r.headers["location"] == f"/console/alerts/{ALERT_AIR['id']}"
    assert ALERT_AIR["id"] == t.fingerprint


def test_a_factor_and_period_of_none_mean_empty(client: TestClient) -> None:
    login(client, TOKENS["duty"])
    r = client.get(
        "/console/alerts/find",
        params={
            "locality": "weifang",
            "rule": "offline",
            "source": "ws-wf-01",
            "factor": "none",
            "period": "none",
        },
    )
    expected = fingerprint({"rule": "offline", "source": "ws-wf-01", "locality": "weifang"})
    assert r.headers["location"] == f"/console/alerts/{expected}"


# ----------------------------------------------------------------------------- pages


def test_pages_have_no_script_and_forbid_it(client: TestClient) -> None:
    login(client, TOKENS["duty"])
    for path in (
        "/console/login",
        "/console/alerts",
        f"/console/alerts/{ALERT_A['id']}",
        "/console/silences",
        "/console/maintenance",
    ):
        r = client.get(path)
        assert r.status_code == 200, path
        assert "<script" not in r.text.lower()
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp
        assert "script-src" not in csp  # so scripts fall back to 'none'
        assert r.headers["cache-control"] == "no-store"
        assert r.headers["x-frame-options"] == "DENY"


def test_values_are_escaped(api: ContractAPI, client: TestClient) -> None:
    api.annotations(ALERT_A["id"])["summary"] = "<img src=x onerror=alert(1)>"
    login(client, TOKENS["duty"])
    page = client.get("/console/alerts").text
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_emergency_sees_no_action_forms(client: TestClient) -> None:
    login(client, TOKENS["emergency"])
    page = client.get(f"/console/alerts/{ALERT_AIR['id']}").text
    assert 'id="ack-form"' not in page


def test_repeated_failed_logins_are_throttled(client: TestClient) -> None:
    for i in range(10):
        page = client.get("/console/login")
        csrf = CSRF.search(page.text)
        assert csrf is not None
        r = client.post("/console/login", data={"csrf": csrf.group(1), "token": f"guess-{i}"})
        assert r.status_code == 401
    page = client.get("/console/login")
    csrf = CSRF.search(page.text)
    assert csrf is not None
    r = client.post("/console/login", data={"csrf": csrf.group(1), "token": TOKENS["duty"]})
    assert r.status_code == 429  # even the right token, until the window passes


def test_a_command_not_applied_within_the_wait_is_shown_as_pending() -> None:
    behind = contract_api(answer=False, command_wait=0.2)
    with TestClient(behind.app, follow_redirects=False) as c:
        csrf = login(c, TOKENS["duty"])
        c.post(f"/console/alerts/{ALERT_A['id']}/ack", data={"csrf": csrf, "note": "稍后处理"})
        page = c.get(f"/console/alerts/{ALERT_A['id']}").text
    assert "已提交，处理中 Accepted, not applied yet" in page
    assert [c.action for c in behind.commands] == ["ack"]
    assert "否 no" in page  # not acknowledged yet


def test_a_refused_resolve_shows_the_stages_reason(client: TestClient) -> None:
    csrf = login(client, TOKENS["duty"])
    client.post(f"/console/alerts/{ALERT_A['id']}/resolve", data={"csrf": csrf, "note": "x"})
    page = client.get(f"/console/alerts/{ALERT_A['id']}").text
    assert "被拒绝 Refused: manual_resolve_not_allowed" in page
