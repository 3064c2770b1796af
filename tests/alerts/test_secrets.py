"""No secret in any error, log line or exception text (issue 13).

Secrets are fed where an operator or a receiver could put them — the webhook secret, a token in
the URL's query, a password in its userinfo — and every captured log record, exception text
(``str``, ``repr``, the formatted traceback with its chained causes) and stored error is searched
for them. The HTTP side is a real local server (stdlib ``http.server``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsError

from alerts.notification import Notification, NotificationKind, NotificationStatus, Texts
from alerts.notify.base import NotifyError
from alerts.notify.dispatcher import Dispatcher, channels_from_settings
from alerts.notify.webhook import WebhookNotifier, config_fingerprint, redact_url, scrub
from alerts.outbox import MemoryOutbox, RowState
from alerts.settings import AlertsSettings

SECRET = "S3cret-hmac-key-ZQX"
TOKEN = "tok-ZQX-4711"
PASSWORD = "pw-ZQX-0815"
LEAKS = (SECRET, TOKEN, PASSWORD)
T0 = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)


def note(i: int = 1) -> Notification:
    return Notification(
        id=f"{i:032x}",
        receiver="duty-x",
        kind=NotificationKind.ALERT,
        status=NotificationStatus.FIRING,
        state="firing",
        fingerprint=f"fp{i}",
        at=T0,
        starts_at=T0,
        texts=Texts(zh="【超标】测试", en="[Exceedance] test"),
    )


def everything(exc: BaseException) -> str:
    """str, repr and the whole formatted traceback, chained causes included."""
    return "\n".join(
        [
            str(exc),
            repr(exc),
            "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        ]
    )


def assert_clean(text: str) -> None:
    for secret in LEAKS:
        assert secret not in text, f"{secret!r} leaked: {text[:400]}"


class Echo:
    """Answers every POST with ``status`` and a body that quotes the request line and headers
    (a careless receiver echoing what it got, the signed URL's token included)."""

    def __init__(self) -> None:
        self.status = 200
        echo = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                body = f"bad request {self.path} host {self.headers.get('Host')}".encode()
                self.send_response(echo.status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self) -> str:
        return f"http://user:{PASSWORD}@127.0.0.1:{self.port}/hook/duty-x?token={TOKEN}"


@pytest.fixture
def echo() -> Iterator[Echo]:
    e = Echo()
    yield e
    e.server.shutdown()
    e.server.server_close()


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize(
    "value",
    [
        # an unknown key next to the secret (a typo)
        f'{{"duty-x": {{"url": "https://h/x?token={TOKEN}", "secret": "{SECRET}", "timeout": 3}}}}',
        # a wrong type next to it
        f'{{"duty-x": {{"url": "https://h/x", "secret": "{SECRET}", "timeout_seconds": "{TOKEN}"}}}}',
        # the secret where the object should be
        f'{{"duty-x": "{SECRET}"}}',
        # not JSON at all (a trailing comma)
        f'{{"duty-x": {{"url": "https://u:{PASSWORD}@h/x", "secret": "{SECRET}",}}}}',
        # the URL missing, the secret a number-like string in the wrong field
        f'{{"duty-x": {{"secret": {{"value": "{SECRET}"}}, "url": "https://h/?t={TOKEN}"}}}}',
    ],
)
def test_malformed_webhooks_setting_never_shows_the_secret(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVWATCH_ALERTS_WEBHOOKS", value)
    with pytest.raises((ValidationError, SettingsError)) as caught:
        AlertsSettings()
    assert_clean(everything(caught.value))
    # the error still says which field is wrong
    assert "webhooks" in str(caught.value)


def test_valid_settings_repr_and_dump_mask_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "ENVWATCH_ALERTS_WEBHOOKS",
        f'{{"duty-x": {{"url": "https://h/x", "secret": "{SECRET}"}}}}',
    )
    s = AlertsSettings()
    assert_clean(repr(s) + str(s.model_dump()) + s.model_dump_json())


# ---------------------------------------------------------------- URLs in texts


def test_redact_url_keeps_scheme_host_port_path_only() -> None:
    assert (
        redact_url(f"https://user:{PASSWORD}@hooks.example:8443/a/b?token={TOKEN}#frag")
        == "https://hooks.example:8443/a/b"
    )
    assert redact_url("http://127.0.0.1:9/duty-x") == "http://127.0.0.1:9/duty-x"
    text = f'POST http://u:{PASSWORD}@h/x?token={TOKEN} "HTTP/1.1 400" then mailto://a:{PASSWORD}@m'
    assert scrub(text) == 'POST http://h/x "HTTP/1.1 400" then mailto://m'


def test_config_fingerprint_changes_with_url_or_secret_and_reveals_neither() -> None:
    a = config_fingerprint("https://h/x", SECRET)
    assert a == config_fingerprint("https://h/x", SECRET)
    assert a != config_fingerprint("https://h/y", SECRET)
    assert a != config_fingerprint("https://h/x", SECRET + "2")
    assert len(a) == 16
    assert_clean(a)


# ---------------------------------------------------------------- sending


def test_webhook_send_logs_the_url_without_userinfo_or_query(
    echo: Echo, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    async def go() -> None:
        hook = WebhookNotifier(echo.url(), SECRET)
        await hook.send(note())
        await hook.aclose()

    asyncio.run(go())
    lines = [r.getMessage() for r in caplog.records]
    assert_clean("\n".join(lines))
    # httpx's own INFO line per request is still there, with the redacted URL
    shown = f"http://127.0.0.1:{echo.port}/hook/duty-x"
    assert any(r.name == "httpx" and r.levelno == logging.INFO and shown in r.getMessage()
               for r in caplog.records)  # fmt: skip


def test_refusal_and_network_errors_carry_no_secret(
    echo: Echo, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    echo.status = 400
    errors: list[BaseException] = []

    async def go() -> None:
        for url in (
            echo.url(),  # 400 with a body that quotes the URL
            f"http://user:{PASSWORD}@127.0.0.1:1/x?token={TOKEN}",  # connection refused
            f"ftp://user:{PASSWORD}@h/x?token={TOKEN}",  # unsupported protocol
            f"http://user:{PASSWORD}@[::zz]/x?token={TOKEN}",  # invalid URL
        ):
            hook = WebhookNotifier(url, SECRET, timeout=2)
            with pytest.raises(NotifyError) as caught:
                await hook.send(note())
            errors.append(caught.value)
            await hook.aclose()

    asyncio.run(go())
    for exc in errors:
        assert_clean(everything(exc))
    first = errors[0]
    assert isinstance(first, NotifyError)
    assert first.status == 400
    assert first.retryable is False
    assert "HTTP 400" in str(errors[0])
    assert_clean("\n".join(r.getMessage() for r in caplog.records))


def test_held_notification_error_and_log_carry_no_secret(
    echo: Echo, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    echo.status = 400
    settings = AlertsSettings.model_validate(
        {"webhooks": {"duty-x": {"url": echo.url(), "secret": SECRET}}}
    )
    box = MemoryOutbox()
    box.enqueue(note(), datetime.now(UTC))

    async def go() -> None:
        dispatcher = Dispatcher(box, channels_from_settings(settings), poll_interval=0.05)
        async with asyncio.timeout(10):
            await dispatcher.run_until_idle()
        await dispatcher.aclose()

    asyncio.run(go())
    (item,) = box.dead_letters()
    assert item.state is RowState.HELD
    assert "HTTP 400" in (item.last_error or "")
    assert_clean(item.last_error or "")
    assert_clean(box.ledger_value(item.id, item.receiver).decode())
    assert_clean("\n".join(r.getMessage() for r in caplog.records))
    assert any("held" in r.getMessage() for r in caplog.records)
