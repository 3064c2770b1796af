"""``envwatch grafana provision`` (grafana-client) against a recorded Grafana HTTP exchange.

Grafana cannot be installed on this machine, so the tests run a local stdlib ``http.server`` in a
thread that plays Grafana's side of the HTTP API as documented (folders, datasources,
dashboards/db: 404 for a missing object, 200 with JSON otherwise), keeps what it was sent and
records every request. The tests then check the requests grafana-client really sent: methods,
paths, bearer token and bodies (POST /api/folders, POST /api/datasources, POST /api/dashboards/db
with ``overwrite: true``), that a second run only reads, and that an HTTP error is reported with
its step, status and Grafana's message.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from deploy.grafana import dashboards, provision
from deploy.grafana.provision import Action, InfluxSource, ProvisionError
from streams.cli import app

TOKEN = "glsa_test_token"
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class FakeGrafana:
    """Grafana's state and the recorded exchange."""

    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, Any, str]] = field(
        default_factory=list
    )  # method, path, body, auth
    fail: dict[tuple[str, str], tuple[int, dict[str, Any]]] = field(default_factory=dict)

    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if (method, path) in self.fail:
            return self.fail[(method, path)]
        parts = path.split("/")[2:]  # ["folders", uid] …
        match method, parts:
            case "GET", ["folders", uid]:
                f = self.folders.get(uid)
                return (200, f) if f else (404, {"message": "folder not found"})
            case "POST", ["folders"]:
                if body["uid"] in self.folders:
                    return 409, {"message": "a folder with the same uid already exists"}
                self.folders[body["uid"]] = {
                    "id": len(self.folders) + 1,
                    "uid": body["uid"],
                    "title": body["title"],
                }
                return 200, self.folders[body["uid"]]
            case "PUT", ["folders", uid]:
                self.folders[uid]["title"] = body["title"]
                return 200, self.folders[uid]
            case "GET", ["datasources", "uid", uid]:
                d = self.datasources.get(uid)
                return (200, d) if d else (404, {"message": "Data source not found"})
            case "POST", ["datasources"]:
                stored = {
                    k: v for k, v in body.items() if k != "secureJsonData"
                }  # secrets are never returned
                self.datasources[body["uid"]] = {"id": len(self.datasources) + 1, **stored}
                return 200, {
                    "datasource": self.datasources[body["uid"]],
                    "id": 1,
                    "message": "Datasource added",
                }
            case "PUT", ["datasources", "uid", uid]:
                stored = {k: v for k, v in body.items() if k != "secureJsonData"}
                self.datasources[uid] = {"id": self.datasources[uid]["id"], **stored}
                return 200, {"message": "Datasource updated"}
            case "GET", ["dashboards", "uid", uid]:
                d = self.dashboards.get(uid)
                return (200, d) if d else (404, {"message": "Dashboard not found"})
            case "POST", ["dashboards", "db"]:
                dash = dict(body["dashboard"])
                uid = dash["uid"]
                old = self.dashboards.get(uid)
                if old is not None and not body.get("overwrite"):
                    return 412, {
                        "message": "The dashboard has been changed by someone else",
                        "status": "version-mismatch",
                    }
                version = 1 if old is None else old["dashboard"]["version"] + 1
                dash.update(id=7, version=version)
                self.dashboards[uid] = {
                    "dashboard": dash,
                    "meta": {"folderUid": body.get("folderUid", "")},
                }
                return 200, {
                    "id": 7,
                    "uid": uid,
                    "status": "success",
                    "version": version,
                    "url": f"/d/{uid}",
                }
        return 404, {"message": "Not found"}

    def writes(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p, _b, _a in self.requests if m != "GET"]


@pytest.fixture
def grafana() -> Iterator[tuple[FakeGrafana, str]]:
    fake = FakeGrafana()

    class Handler(BaseHTTPRequestHandler):
        def _do(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n) if n else b""
            body = json.loads(raw) if raw else None
            fake.requests.append(
                (self.command, self.path, body, self.headers.get("Authorization", ""))
            )
            status, payload = fake.handle(self.command, self.path, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = _do

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


SOURCE = InfluxSource(
    url="http://influxdb:8086", org="envwatch", bucket="envwatch", token="influx-read"
)


def _run(url: str, source: InfluxSource | None = SOURCE) -> list[provision.Step]:
    return provision.provision(
        provision.connect(url, TOKEN, timeout=5),
        dashboards.all_dashboards(),
        folder_uid=dashboards.FOLDER_UID,
        folder_title=dashboards.FOLDER_TITLE,
        source=source,
    )


def test_first_run_creates_folder_datasource_and_dashboards(
    grafana: tuple[FakeGrafana, str],
) -> None:
    fake, url = grafana
    steps = _run(url)
    assert [(s.kind, s.action) for s in steps] == [
        ("folder", Action.CREATED),
        ("datasource", Action.CREATED),
    ] + [("dashboard", Action.CREATED)] * len(dashboards.all_dashboards())
    # the documented endpoints, in this order (GET first: idempotence)
    assert fake.writes() == [("POST", "/api/folders"), ("POST", "/api/datasources")] + [
        ("POST", "/api/dashboards/db")
    ] * len(dashboards.all_dashboards())
    assert all(auth == f"Bearer {TOKEN}" for _m, _p, _b, auth in fake.requests)
    bodies = {
        (m, p): b for m, p, b, _a in fake.requests if m == "POST" and p != "/api/dashboards/db"
    }
    assert bodies[("POST", "/api/folders")] == {"uid": "envwatch", "title": "envwatch 生态环境监测"}
    ds = bodies[("POST", "/api/datasources")]
    assert ds["type"] == "influxdb"
    assert ds["uid"] == "envwatch-influxdb"
    assert ds["url"] == "http://influxdb:8086"
    assert ds["jsonData"] == {
        "version": "Flux",
        "organization": "envwatch",
        "defaultBucket": "envwatch",
    }
    assert ds["secureJsonData"] == {"token": "influx-read"}


def test_dashboard_bodies_overwrite_into_the_folder(grafana: tuple[FakeGrafana, str]) -> None:
    fake, url = grafana
    _run(url)
    posts = [b for m, p, b, _a in fake.requests if (m, p) == ("POST", "/api/dashboards/db")]
    assert sorted(b["dashboard"]["uid"] for b in posts) == sorted(dashboards.all_dashboards())
    for b in posts:
        assert b["overwrite"] is True
        assert b["folderUid"] == "envwatch"
        assert b["dashboard"]["id"] is None  # a new dashboard by uid, never by a stale numeric id
    sent = next(b["dashboard"] for b in posts if b["dashboard"]["uid"] == "envwatch-duty")
    assert sent["panels"] == dashboards.all_dashboards()["envwatch-duty"]["panels"]


def test_a_second_run_only_reads(grafana: tuple[FakeGrafana, str]) -> None:
    fake, url = grafana
    _run(url)
    fake.requests.clear()
    steps = _run(url)
    assert {s.action for s in steps} == {Action.UNCHANGED}
    assert fake.writes() == []
    assert {m for m, _p, _b, _a in fake.requests} == {"GET"}


def test_a_changed_dashboard_or_datasource_is_updated(grafana: tuple[FakeGrafana, str]) -> None:
    fake, url = grafana
    _run(url)
    fake.dashboards["envwatch-air"]["dashboard"]["title"] = "edited by hand"
    fake.folders["envwatch"]["title"] = "old title"
    fake.requests.clear()
    steps = _run(
        url, InfluxSource(url="http://influx2:8086", org="envwatch", bucket="envwatch", token="t2")
    )
    changed = {(s.kind, s.uid): s.action for s in steps if s.action is not Action.UNCHANGED}
    assert changed == {
        ("folder", "envwatch"): Action.UPDATED,
        ("datasource", "envwatch-influxdb"): Action.UPDATED,
        ("dashboard", "envwatch-air"): Action.UPDATED,
    }
    assert fake.writes() == [
        ("PUT", "/api/folders/envwatch"),
        ("PUT", "/api/datasources/uid/envwatch-influxdb"),
        ("POST", "/api/dashboards/db"),
    ]
    assert fake.dashboards["envwatch-air"]["dashboard"]["title"] == "空气质量"
    assert fake.dashboards["envwatch-air"]["dashboard"]["version"] == 2


def test_without_a_datasource_the_datasources_are_left_alone(
    grafana: tuple[FakeGrafana, str],
) -> None:
    fake, url = grafana
    _run(url, source=None)
    assert not any("/datasources" in p for _m, p, _b, _a in fake.requests)


def test_an_http_error_is_reported_with_step_status_and_message(
    grafana: tuple[FakeGrafana, str],
) -> None:
    fake, url = grafana
    fake.fail[("POST", "/api/dashboards/db")] = (
        403,
        {"message": "Access denied to save dashboard"},
    )
    with pytest.raises(ProvisionError) as info:
        _run(url)
    err = info.value
    assert err.status == 403
    assert err.step == "dashboard envwatch-air"  # the first dashboard in uid order
    assert "Access denied to save dashboard" in str(err)


def test_unauthorised_is_reported_not_mistaken_for_missing(
    grafana: tuple[FakeGrafana, str],
) -> None:
    fake, url = grafana
    fake.fail[("GET", "/api/folders/envwatch")] = (401, {"message": "invalid API key"})
    with pytest.raises(ProvisionError) as info:
        _run(url)
    assert (info.value.step, info.value.status) == ("folder envwatch", 401)
    assert fake.writes() == []


def test_cli_provision_prints_each_step(grafana: tuple[FakeGrafana, str]) -> None:
    _fake, url = grafana
    args = [
        "grafana",
        "provision",
        "--url",
        url,
        "--token",
        TOKEN,
        "--influx-url",
        "http://influxdb:8086",
        "--json",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert rows[0] == {"kind": "folder", "uid": "envwatch", "action": "created"}
    assert len(rows) == 2 + len(dashboards.all_dashboards())
    again = CliRunner().invoke(app, args)
    assert {r["action"] for r in json.loads(again.stdout)} == {"unchanged"}


def test_cli_provision_error_exits_1_with_a_clear_message(grafana: tuple[FakeGrafana, str]) -> None:
    fake, url = grafana
    fake.fail[("GET", "/api/folders/envwatch")] = (500, {"message": "database is locked"})
    result = CliRunner().invoke(app, ["grafana", "provision", "--url", url, "--token", TOKEN])
    assert result.exit_code == 1
    assert "folder envwatch: HTTP 500: database is locked" in result.output
    assert "Traceback" not in result.output


def test_cli_provision_unreachable_grafana_exits_1() -> None:
    result = CliRunner().invoke(
        app, ["grafana", "provision", "--url", "http://127.0.0.1:9", "--timeout", "2"]
    )
    assert result.exit_code == 1
    assert "Grafana unreachable" in result.output


def test_cli_export_writes_the_committed_files(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["grafana", "export", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in tmp_path.glob("*.json"))
    assert names == sorted(p.name for p in (ROOT / "deploy/grafana/dashboards").glob("*.json"))


# ----------------------------------------------------------------------------- file provisioning


def test_file_provisioning_matches_the_api_provisioning() -> None:
    ds = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/influxdb.yaml").read_text(encoding="utf-8")
    )
    (d,) = ds["datasources"]
    assert d["uid"] == provision.DATASOURCE_UID
    assert d["type"] == "influxdb"
    assert d["jsonData"]["version"] == "Flux"
    boards = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/dashboards/envwatch.yaml").read_text(encoding="utf-8")
    )
    (p,) = boards["providers"]
    assert p["type"] == "file"
    assert p["folderUid"] == dashboards.FOLDER_UID
    assert p["folder"] == dashboards.FOLDER_TITLE


# ----------------------------------------------------------------------------- recorded exchange

EXCHANGE = Path(__file__).with_name("grafana_exchange.json")


def _subset(want: Any, got: Any) -> bool:
    if isinstance(want, dict):
        return isinstance(got, dict) and all(
            k in got and _subset(v, got[k]) for k, v in want.items()
        )
    return bool(want == got)


@dataclass
class Replay:
    """Answers requests from the recorded exchange, in order; anything else is a 500."""

    expected: list[dict[str, Any]]
    mismatches: list[str] = field(default_factory=list)

    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if not self.expected:
            self.mismatches.append(f"unexpected {method} {path}")
            return 500, {"message": "not in the recorded exchange"}
        want = self.expected.pop(0)
        if (want["method"], want["path"]) != (method, path) or not _subset(
            want.get("body", {}), body or {}
        ):
            self.mismatches.append(f"{method} {path}, recorded {want['method']} {want['path']}")
            return 500, {"message": "differs from the recorded exchange"}
        response = json.loads(json.dumps(want["response"]))
        committed = (response.get("dashboard") or {}).pop("$committed", None)
        if committed is not None:
            response["dashboard"] = {
                **json.loads((ROOT / committed).read_text(encoding="utf-8")),
                **response["dashboard"],
            }
        return int(want["status"]), response


@pytest.fixture
def replay() -> Iterator[tuple[Replay, str]]:
    state = Replay([])

    class Handler(BaseHTTPRequestHandler):
        def _do(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(n)) if n else None
            status, payload = state.handle(self.command, self.path, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = _do

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_provision_follows_the_recorded_exchange_and_is_idempotent(
    replay: tuple[Replay, str],
) -> None:
    """Against the recorded Grafana exchange (tests/deploy/grafana_exchange.json; written from
    Grafana's HTTP API documentation because no Grafana can run here): the first run creates the
    folder, the datasource and every dashboard with exactly the recorded requests; the second,
    answered with what Grafana then holds, only reads and reports every object unchanged.
    (After adding a dashboard, regenerate the exchange so it has that dashboard's two requests.)"""
    state, url = replay
    first, second = json.loads(EXCHANGE.read_text(encoding="utf-8"))["runs"]
    n = len(dashboards.all_dashboards())
    state.expected = list(first)
    steps = _run(url)
    assert state.mismatches == []
    assert state.expected == []  # every recorded request was made
    assert [s.action for s in steps] == [Action.CREATED] * (2 + n)
    state.expected = list(second)
    again = _run(url)
    assert state.mismatches == []
    assert state.expected == []
    assert [s.action for s in again] == [Action.UNCHANGED] * (2 + n)
    assert all(r["method"] == "GET" for r in second)


def test_a_dashboard_changed_in_grafana_breaks_the_second_run_of_the_exchange(
    replay: tuple[Replay, str],
) -> None:
    """The replay is strict: when Grafana holds a different dashboard than the committed one,
    provisioning writes it again — a request the recorded second run does not have."""
    state, url = replay
    _first, second = json.loads(EXCHANGE.read_text(encoding="utf-8"))["runs"]
    edited = json.loads(json.dumps(second))
    edited[2]["response"]["dashboard"]["title"] = "edited by hand"
    state.expected = edited
    with pytest.raises(ProvisionError) as info:
        _run(url)
    assert info.value.status == 500
    assert state.mismatches == [
        "POST /api/dashboards/db, recorded GET /api/dashboards/uid/envwatch-data-quality"
    ]
    assert info.value.step == "dashboard envwatch-air"


def test_cli_provision_sets_the_console_url_of_the_alert_links(
    grafana: tuple[FakeGrafana, str],
) -> None:
    """ENVWATCH_ALERTS_EXTERNAL_URL (the URL notifications link to) becomes the duty overview's
    ``console`` variable, so the alert rows open the same console pages."""
    fake, url = grafana
    result = CliRunner().invoke(
        app,
        ["grafana", "provision", "--url", url, "--token", TOKEN],
        env={"ENVWATCH_ALERTS_EXTERNAL_URL": "https://alerts.example.invalid/"},
    )
    assert result.exit_code == 0, result.output
    duty = fake.dashboards["envwatch-duty"]["dashboard"]
    (var,) = [v for v in duty["templating"]["list"] if v["name"] == "console"]
    assert var["query"] == "https://alerts.example.invalid"
    assert var["current"]["value"] == "https://alerts.example.invalid"
    # the other dashboards have no console variable and are sent as exported
    air = fake.dashboards["envwatch-air"]["dashboard"]
    assert air["panels"] == dashboards.all_dashboards()["envwatch-air"]["panels"]


def test_cli_export_with_a_broken_catalogue_exits_2_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("locality: [unclosed\n", encoding="utf-8")
    result = CliRunner().invoke(
        app, ["grafana", "export", "--out", str(tmp_path / "out"), "--config", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "cannot read the catalogue" in result.output
    assert "Traceback" not in result.output
