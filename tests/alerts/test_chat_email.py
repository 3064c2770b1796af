"""Chat robots and e-mail through apprise (alerts/notify/chat.py, email.py).

Mail goes to a minimal SMTP server started here (stdlib socketserver; Python 3.12 dropped smtpd
and aiosmtpd is not a dependency). Chat robots cannot be reached from a test, so the apprise path
is exercised with apprise's json:// service against a local HTTP server, and the DingTalk/WeCom
URLs are checked for acceptance by apprise.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import socket
import socketserver
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from alerts.notification import Notification, NotificationKind, NotificationStatus, Texts
from alerts.notify.base import NotifyError
from alerts.notify.chat import AppriseNotifier, title_and_body

T0 = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)
ZH = "【超标】潍坊市 xx 企业 1号排口 氮氧化物小时均值 132 mg/m³，超过许可限值 100 mg/m³ 0.32 倍（2026-11-22 09:00）"


def note() -> Notification:
    return Notification(
        id="0" * 31 + "1",
        receiver="ent-a",
        kind=NotificationKind.ALERT,
        status=NotificationStatus.FIRING,
        state="firing",
        fingerprint="fp1",
        severity="critical",
        at=T0,
        starts_at=T0,
        texts=Texts(zh=ZH, en="[Exceedance] Weifang test"),
    )


class SmtpSink:
    """A minimal SMTP server (RFC 5321 subset: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT)."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")

            def handle(self) -> None:
                self.reply("220 sink ESMTP")
                sender, rcpts = "", []
                while True:
                    raw = self.rfile.readline()
                    if not raw:
                        return
                    cmd = raw.decode("utf-8", "replace").strip()
                    verb = cmd.split(" ", 1)[0].upper()
                    if verb in ("EHLO", "HELO"):
                        self.reply("250 sink")
                    elif verb == "MAIL":
                        sender, rcpts = cmd[10:].strip("<> "), []
                        self.reply("250 OK")
                    elif verb == "RCPT":
                        rcpts.append(cmd[8:].strip("<> "))
                        self.reply("250 OK")
                    elif verb == "DATA":
                        self.reply("354 end with .")
                        data = b""
                        while (line := self.rfile.readline()) not in (b".\r\n", b""):
                            data += line[1:] if line.startswith(b"..") else line
                        msg = email.message_from_bytes(data, policy=email.policy.default)
                        sink.messages.append(msg)  # type: ignore[arg-type]
                        sink.envelopes.append((sender, rcpts))
                        self.reply("250 queued")
                    elif verb in ("RSET", "NOOP"):
                        self.reply("250 OK")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("502 not implemented")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    yield sink
    sink.stop()


class JsonSink:
    """Collects what apprise's json:// service posts."""

    def __init__(self, status: int = 200) -> None:
        self.bodies: list[dict[str, object]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                sink.bodies.append(json.loads(body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def mail_url(port: int, to: str) -> str:
    """An apprise SMTP URL as an operator writes it in ENVWATCH_ALERTS_APPRISE (docs/notifications.md)."""
    return f"mailto://127.0.0.1:{port}/?from=envwatch@example.org&to={to}&mode=insecure&format=text"


def test_email_reaches_the_smtp_server_with_chinese_subject_and_body(smtp: SmtpSink) -> None:
    notifier = AppriseNotifier(mail_url(smtp.port, "duty@example.org"))
    asyncio.run(notifier.send(note()))
    (msg,) = smtp.messages
    assert smtp.envelopes[0][1] == ["duty@example.org"]
    assert msg["Subject"] == "超标"
    assert ZH in msg.get_content()


def test_email_in_english(smtp: SmtpSink) -> None:
    notifier = AppriseNotifier(mail_url(smtp.port, "ops@example.org"), language="en")
    asyncio.run(notifier.send(note()))
    (msg,) = smtp.messages
    assert msg["Subject"] == "Exceedance"
    assert "[Exceedance] Weifang test" in msg.get_content()


def test_smtp_server_down_is_a_retryable_failure() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    notifier = AppriseNotifier(mail_url(port, "duty@example.org"))
    with pytest.raises(NotifyError) as caught:
        asyncio.run(notifier.send(note()))
    assert caught.value.retryable is True
    assert caught.value.receiver == "ent-a"


def test_apprise_json_service_posts_title_and_body() -> None:
    sink = JsonSink()
    try:
        notifier = AppriseNotifier(f"json://127.0.0.1:{sink.port}/hook")
        asyncio.run(notifier.send(note()))
        (body,) = sink.bodies
        assert body["title"] == "超标"
        assert body["message"] == ZH
    finally:
        sink.stop()


def test_apprise_http_error_maps_to_notify_error() -> None:
    sink = JsonSink(status=500)
    try:
        notifier = AppriseNotifier(f"json://127.0.0.1:{sink.port}/hook")
        with pytest.raises(NotifyError) as caught:
            asyncio.run(notifier.send(note()))
        assert caught.value.retryable is True
    finally:
        sink.stop()


def test_robot_urls_are_accepted_by_apprise_and_bad_urls_refused_without_echoing_secrets() -> None:
    # the URL forms docs/notifications.md gives operators for DingTalk and WeCom robots
    AppriseNotifier("dingtalk://SEC0123456789abcdef@0123456789abcdef/")
    AppriseNotifier("wecombot://693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa")
    with pytest.raises(NotifyError) as caught:
        AppriseNotifier("nosuchscheme://token-should-not-leak")
    assert caught.value.retryable is False
    assert "token-should-not-leak" not in str(caught.value)


def test_title_extraction() -> None:
    assert title_and_body(note(), "zh") == ("超标", ZH)
    assert title_and_body(note(), "en")[0] == "Exceedance"
