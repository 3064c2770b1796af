"""Webhooks to an https receiver: the receiver's certificate is verified against
``ENVWATCH_ALERTS_WEBHOOK_CA_FILE`` (an internal CA) or the system's CAs.

The receiver is a real TLS server (stdlib http.server behind ``ssl``) whose certificate a test
CA made by trustme signs — the next-best thing to a receiver behind an organisation's own CA.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme

from alerts.notify.base import NotifyError
from alerts.notify.dispatcher import channels_from_settings
from alerts.notify.webhook import WebhookNotifier, verify_signature
from alerts.settings import AlertsSettings
from tests.alerts.test_webhook import note

SECRET = "tls-hook-key-7f3a"


class HttpsReceiver:
    """Accepts a POST whose signature verifies; counts them."""

    def __init__(self, ca: trustme.CA) -> None:
        self.accepted = 0
        self.bad_signatures = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                ok = verify_signature(
                    SECRET,
                    self.headers["X-Envwatch-Timestamp"],
                    body,
                    self.headers["X-Envwatch-Signature"],
                    now=datetime.now(UTC),
                )
                if ok:
                    receiver.accepted += 1
                else:
                    receiver.bad_signatures += 1
                self.send_response(200 if ok else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/hook"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def receiver(ca: trustme.CA) -> Iterator[HttpsReceiver]:
    r = HttpsReceiver(ca)
    yield r
    r.stop()


def _send(hook: WebhookNotifier) -> None:
    async def go() -> None:
        try:
            await hook.send(note(1))
        finally:
            await hook.aclose()

    asyncio.run(go())


def test_delivered_when_the_receiver_is_verified_against_the_ca_file(
    ca: trustme.CA, receiver: HttpsReceiver, tmp_path: Path
) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    _send(WebhookNotifier(receiver.url, SECRET, ca_file=ca_file))
    assert (receiver.accepted, receiver.bad_signatures) == (1, 0)


@pytest.mark.parametrize("trust", ["system", "other-ca"])
def test_an_unverifiable_receiver_gets_nothing_and_the_reason_is_clear(
    trust: str, receiver: HttpsReceiver, tmp_path: Path
) -> None:
    """Without the receiver's CA (the system's CAs, or another CA) nothing is sent: a retryable
    error that says the certificate could not be verified and holds no secret."""
    ca_file = None
    if trust == "other-ca":
        ca_file = tmp_path / "other.pem"
        trustme.CA().cert_pem.write_to_path(str(ca_file))
    with pytest.raises(NotifyError) as err:
        _send(WebhookNotifier(receiver.url, SECRET, ca_file=ca_file))
    assert err.value.retryable
    assert "CERTIFICATE_VERIFY_FAILED" in err.value.reason
    assert SECRET not in str(err.value)
    assert receiver.accepted == 0


def test_the_setting_reaches_every_configured_webhook(
    ca: trustme.CA, receiver: HttpsReceiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENVWATCH_ALERTS_WEBHOOK_CA_FILE, as an operator sets it, is what the dispatcher's
    webhooks verify with."""
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    monkeypatch.setenv("ENVWATCH_ALERTS_WEBHOOK_CA_FILE", str(ca_file))
    monkeypatch.setenv(
        "ENVWATCH_ALERTS_WEBHOOKS",
        f'{{"ent-a": {{"url": "{receiver.url}", "secret": "{SECRET}"}}}}',
    )
    hook = channels_from_settings(AlertsSettings())["ent-a"]
    assert isinstance(hook, WebhookNotifier)
    _send(hook)
    assert receiver.accepted == 1


def test_an_unreadable_ca_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-ca.pem"
    with pytest.raises(NotifyError) as err:
        WebhookNotifier("https://127.0.0.1:1/hook", SECRET, ca_file=missing)
    assert str(missing) in err.value.reason
    assert not err.value.retryable
