"""The alerts console in headless Chromium (Debian's ``chromium``), driven over the Chrome
DevTools Protocol.

A real uvicorn server serves the API app with the console mounted (the alerts view fed directly:
two enterprises' permit exceedances and an ambient alert of Weifang). Chromium is started with
``--remote-debugging-port=0``; the port it chose is read from ``DevToolsActivePort`` in its profile
and the test talks CDP over a WebSocket (``websockets``). What a person would do: log in with a duty
token, see the open alerts, open one, acknowledge it with a note and find the acknowledgement (who,
why) in its history; log in as an enterprise: the other enterprise's alert is not listed and its
URL is the 404 page. No page logs an error or a warning (console, exceptions, CSP, failed loads)
except the 404 document itself.

Without ``chromium`` the test is skipped with the reason; under ``CI=true`` that is a failure
(.ci/run installs it from .ci/packages.txt), as in tests/integration/test_report.py.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pytest
import uvicorn
from websockets.sync.client import ClientConnection, connect

from tests.api.test_console_contract import ALERT_A, ALERT_B, TOKENS, contract_api
from tests.conftest import IN_CI

TIMEOUT = 30.0


class CDPError(RuntimeError):
    """A CDP command failed, or the browser did not answer in time."""


class Chromium:
    """A headless Chromium process and its browser-level DevTools connection."""

    def __init__(self, executable: str, profile: Path, *, window: tuple[int, int] = (1280, 1600)):
        profile.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                executable,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-default-apps",
                "--disable-extensions",
                "--no-first-run",
                "--no-default-browser-check",
                "--password-store=basic",
                f"--user-data-dir={profile}",
                f"--window-size={window[0]},{window[1]}",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + TIMEOUT
        while not (port_file.is_file() and len(port_file.read_text().splitlines()) >= 2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise CDPError(f"chromium did not open its DevTools port: {self._stderr()}")
            time.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        self.ws: ClientConnection = connect(
            f"ws://127.0.0.1:{port}{path}", max_size=None, open_timeout=TIMEOUT
        )
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def _stderr(self) -> str:
        if self.process.poll() is None or self.process.stderr is None:
            return ""
        return self.process.stderr.read()[-2000:]

    def send(self, method: str, params: dict[str, Any] | None = None, *, session: str = "") -> Any:
        """Send one command and wait for its result; events meanwhile are kept in order."""
        msg_id = next(self._ids)
        msg: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.ws.send(json.dumps(msg))
        deadline = time.monotonic() + TIMEOUT
        while True:
            data = self._receive(deadline, method)
            if data.get("id") == msg_id:
                if "error" in data:
                    raise CDPError(f"{method}: {data['error']}")
                return data.get("result", {})
            if "method" in data:
                self.events.append(data)

    def _receive(self, deadline: float, what: str) -> dict[str, Any]:
        left = deadline - time.monotonic()
        if left <= 0:
            raise CDPError(f"no answer to {what} within {TIMEOUT} s")
        try:
            raw = self.ws.recv(timeout=left)
        except TimeoutError:
            raise CDPError(f"no answer to {what} within {TIMEOUT} s") from None
        data: dict[str, Any] = json.loads(raw)
        return data

    def wait_event(self, method: str, session: str, after: int) -> dict[str, Any]:
        """The first event ``method`` of ``session`` at index ≥ ``after`` of :attr:`events`."""
        deadline = time.monotonic() + TIMEOUT
        i = after
        while True:
            while i < len(self.events):
                e = self.events[i]
                i += 1
                if e.get("method") == method and e.get("sessionId") == session:
                    return e
            data = self._receive(deadline, method)
            if "method" in data:
                self.events.append(data)

    def page(self) -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})
        page = Page(self, session["sessionId"])
        for domain in ("Page", "Runtime", "Log", "Network"):
            page.send(f"{domain}.enable")
        return page

    def close(self) -> None:
        ws = getattr(self, "ws", None)
        if ws is not None:
            ws.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Page:
    """One tab: navigate, read and fill the DOM, submit forms, and what the page logged."""

    def __init__(self, browser: Chromium, session: str) -> None:
        self.browser = browser
        self.session = session

    def send(self, method: str, params: dict[str, Any] | None = None) -> Any:
        return self.browser.send(method, params, session=self.session)

    def _mark(self) -> int:
        return len(self.browser.events)

    def navigate(self, url: str) -> int:
        """Load ``url`` and wait for its load event; the HTTP status of the document."""
        mark = self._mark()
        self.send("Page.navigate", {"url": url})
        return self._loaded(mark)

    def click(self, selector: str) -> int:
        """Click the element (e.g. a form's submit button) and wait for the page it leads to;
        the HTTP status of that document (after redirects)."""
        mark = self._mark()
        self.evaluate(f"document.querySelector({json.dumps(selector)}).click()")
        return self._loaded(mark)

    def _loaded(self, mark: int) -> int:
        self.browser.wait_event("Page.loadEventFired", self.session, mark)
        status = 0
        for e in self.browser.events[mark:]:
            if (
                e.get("sessionId") == self.session
                and e.get("method") == "Network.responseReceived"
                and e["params"].get("type") == "Document"
            ):
                status = int(e["params"]["response"]["status"])
        return status

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (DevTools, not the page's own
        script: the console's CSP forbids page scripts)."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise CDPError(f"{expression}: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    def fill(self, selector: str, value: str) -> None:
        self.evaluate(f"document.querySelector({json.dumps(selector)}).value = {json.dumps(value)}")

    def text(self, selector: str = "body") -> str:
        value = self.evaluate(
            f"(document.querySelector({json.dumps(selector)}) || {{innerText: ''}}).innerText"
        )
        return str(value or "")

    def url(self) -> str:
        return str(self.evaluate("location.href"))

    def problems(self) -> list[str]:
        """What the page logged as an error or warning: console calls, uncaught exceptions,
        browser log entries (failed loads, CSP violations …)."""
        out: list[str] = []
        for e in self.browser.events:
            if e.get("sessionId") != self.session:
                continue
            method, p = e.get("method"), e.get("params", {})
            if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning"):
                args = " ".join(str(a.get("value", a.get("description", ""))) for a in p["args"])
                out.append(f"console.{p['type']}: {args}")
            elif method == "Runtime.exceptionThrown":
                details = p["exceptionDetails"]
                thrown = details.get("exception", {}).get("description", "")
                out.append(f"exception: {details.get('text', '')} {thrown}".strip())
            elif method == "Log.entryAdded" and p["entry"].get("level") in ("error", "warning"):
                entry = p["entry"]
                out.append(f"log {entry['level']} ({entry.get('source')}): {entry.get('text')}")
        return out


# ---------------------------------------------------------------------------- the server and the test


pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM = os.environ.get("ENVWATCH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def _chromium() -> str:
    if Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    reason = "chromium is not installed (Debian package `chromium`, in .ci/packages.txt)"
    if IN_CI:
        pytest.fail(f"CI=true and a required program is missing: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def server() -> Iterator[str]:
    """The app on a real uvicorn server on 127.0.0.1 (a free port); its base URL."""
    app = contract_api().app
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + TIMEOUT
    while not srv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Chromium]:
    with Chromium(_chromium(), tmp_path / "profile") as b:
        yield b


def _login(page: Page, base: str, token: str) -> None:
    assert page.navigate(f"{base}/console/alerts") == 200
    assert page.url().startswith(f"{base}/console/login?next=")
    page.fill("#token", token)
    assert page.click("#login") == 200
    assert page.url() == f"{base}/console/alerts"
    assert token not in page.url()


def test_a_console_error_of_a_page_is_seen_by_the_harness(browser: Chromium) -> None:
    """The control: a page with a failing script shows in what the test reads, so an empty
    list below means no error, not a harness that hears nothing."""
    page = browser.page()
    page.navigate(
        "data:text/html,<script>notDefined()</script><script>console.error('boom')</script>"
    )
    problems = page.problems()
    assert any("notDefined" in p for p in problems), problems
    assert any("boom" in p for p in problems), problems


def test_duty_acknowledges_an_alert_in_the_browser(server: str, browser: Chromium) -> None:
    page = browser.page()
    _login(page, server, TOKENS["duty"])
    listed = page.text("#alerts")
    assert ALERT_A["summary"] in listed
    assert ALERT_B["summary"] in listed
    assert page.evaluate("document.cookie") == ""  # HttpOnly: the session id is not readable

    assert page.click(f'a[href="/console/alerts/{ALERT_A["id"]}"]') == 200
    assert page.url() == f"{server}/console/alerts/{ALERT_A['id']}"
    assert "否 no" in page.text("#ack")
    page.fill("#ack-note", "已电话通知企业环保负责人")
    assert page.click("#ack-submit") == 200
    assert page.url() == f"{server}/console/alerts/{ALERT_A['id']}"  # back on the alert's page
    assert "已确认 Acknowledged" in page.text(".flash")
    history = page.text("#history")
    assert "acknowledged" in history
    assert "值班员王" in history
    assert "已电话通知企业环保负责人" in history
    assert "值班员王" in page.text("#ack")
    assert page.problems() == []


def test_an_enterprise_sees_only_its_own_alert_and_another_is_404(
    server: str, browser: Chromium
) -> None:
    page = browser.page()
    _login(page, server, TOKENS["enterprise:e-wf-001"])
    listed = page.text("#alerts")
    assert ALERT_A["summary"] in listed
    assert ALERT_B["summary"] not in listed
    assert page.evaluate(
        f"document.querySelector('a[href=\\'/console/alerts/{ALERT_B['id']}\\']') === null"
    )
    assert page.problems() == []
    assert page.navigate(f"{server}/console/alerts/{ALERT_B['id']}") == 404
    assert "404" in page.text("h1")
    assert ALERT_B["summary"] not in page.text()
    # the only thing logged: the browser noting the document's own 404 status
    assert all("status of 404" in p for p in page.problems()), page.problems()
