"""Secrets never leak (issue 17): no secret envwatch is given appears in a log line or a file.

The main test runs ``envwatch demo`` as a user does (a subprocess: real Tansu, mosquitto, the
in-process worker, the alerts API, the demo's webhook receiver) with every secret it can use set
to a distinct random value, then searches every line it printed (stdout and stderr) and every
file it left or had open — the output directory (alerts.jsonl, notifications.jsonl, report.html,
the spool segments, gzip'ed or not) and, searched every second while it runs, its temporary
directories (the worker's state, mosquitto's conf and log, Tansu's log) — for each secret in its
raw, URL-encoded, base64 (every alignment), hex and JSON-escaped forms. None may appear. So that
the test cannot pass by the secrets going unused, it also checks that they were used: every
InfluxDB write reached the store through a proxy that accepts only the token (after an outage
whose 503 answers echo the token: the sink logged them and spooled), and the receiver accepted
notifications signed with the webhook key. The alerts API's tokens may be in one file only, the
user's ``api.json`` (mode 0600).

InfluxDB itself cannot be installed here (no Debian/PyPI package); the store behind the proxy is
VictoriaMetrics, which takes the same ``/api/v2/write`` requests. The error paths (a webhook
receiver answering 401/500 and an InfluxDB endpoint answering 401, each echoing what it was
sent) run the real notifier, dispatcher and sink against real local HTTP servers. ``envwatch
deploy mqtt``, whose credentials.json must hold passwords, is checked on its own.

To cover a new secret: add its (environment variable, value) pair to :func:`demo_secrets` (or an
error-path test); the search takes every form of it.

Not exercised by the demo, so checked by their own tests below: the HJ 212 passwords of the
catalogue (the demo plays the simulator over MQTT, not through the HJ 212 gateway, and
deploy/config sets no outlet password) and the MQTT password against a broker that checks it
(the demo's embedded broker is anonymous: the bridge sends the password unverified). Set but not
exercised: the SMTP password (every catalogue receiver is overridden by the demo's webhooks, so
no mail is sent). Not covered yet: the Kafka SASL password and the TLS key files (not settings of
this branch yet), and what the Kafka topics hold (Tansu keeps them in memory; the pending
deliveries live there).
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import logging
import os
import secrets
import stat
import subprocess
import sys
import threading
import time
import traceback
import urllib.request
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from alerts.notification import Notification, NotificationKind, NotificationStatus, Texts
from alerts.notify.base import NotifyError
from alerts.notify.dispatcher import Dispatcher, channels_from_settings
from alerts.notify.webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookNotifier,
    verify_signature,
)
from alerts.outbox import MemoryOutbox
from alerts.settings import AlertsSettings
from streams import embedded
from streams.app import make_sink
from streams.settings import Settings
from streams.sink import Outcome

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------ the search


def _b64_cores(raw: bytes) -> list[bytes]:
    """The base64 text of ``raw`` wherever it sits in a longer encoded string: for each of the
    three alignments, the characters that depend on ``raw``'s bytes only."""
    cores = []
    for k in range(3):
        data = bytes(k) + raw
        full = len(data) // 3 * 4  # characters of complete 3-byte groups
        skip = -(-8 * k // 6)  # characters touched by the k prefix bytes
        for enc in (base64.b64encode(data), base64.urlsafe_b64encode(data)):
            cores.append(enc[skip:full])
    return cores


def forms(secret: str) -> dict[str, bytes]:
    """Every form in which a leaked ``secret`` would be recognisable."""
    raw = secret.encode("utf-8")
    found = {
        "raw": raw,
        "url-encoded": quote(secret, safe="").encode(),
        "form-encoded": quote_plus(secret, safe="").encode(),
        "json": json.dumps(secret)[1:-1].encode(),
        "hex": raw.hex().encode(),
        "HEX": raw.hex().upper().encode(),
    }
    for i, core in enumerate(_b64_cores(raw)):
        found[f"base64#{i}"] = core
    return found


def _contents(path: Path) -> Iterator[bytes]:
    """The bytes of ``path`` and, when it is (or holds) a gzip or zlib stream, what it inflates
    to — as far as it goes, so that a segment still being written is searched too."""
    try:
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return
    yield data
    for magic, wbits in ((b"\x1f\x8b", 16 + zlib.MAX_WBITS), (b"\x78", zlib.MAX_WBITS)):
        start = data.find(magic)
        while start != -1:
            inflater = zlib.decompressobj(wbits)
            try:
                out = inflater.decompress(data[start:])
            except zlib.error:
                out = b""
            if out:
                yield out
                if magic == b"\x78":
                    break
            start = data.find(magic, start + 1) if magic == b"\x1f\x8b" else -1


@dataclass
class Search:
    """Where each secret was found: (secret name, form, where)."""

    secrets: Mapping[str, str] = field(repr=False)
    #: file name → names of the secrets it may legitimately hold
    allowed: Mapping[Path, set[str]] = field(default_factory=dict)
    hits: set[tuple[str, str, str]] = field(default_factory=set)
    files: set[Path] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._forms = {n: forms(v) for n, v in self.secrets.items()}

    def text(
        self, data: bytes, where: str, allowed: set[str] | frozenset[str] = frozenset()
    ) -> None:
        for name, found in self._forms.items():
            if name in allowed:
                continue
            for form, needle in found.items():
                if needle in data:
                    self.hits.add((name, form, where))

    def tree(self, root: Path) -> None:
        for path in sorted(root.rglob("*")) if root.exists() else []:
            if path.is_symlink() or not path.is_file():
                continue
            self.files.add(path)
            for data in _contents(path):
                self.text(data, str(path), self.allowed.get(path, set()))


class Watcher:
    """Searches ``roots`` again and again while the demo runs (its temporary directories are
    removed when it stops), and once more at the end."""

    def __init__(self, search: Search, *roots: Path) -> None:
        self.search, self.roots = search, roots
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(1.0):
            for root in self.roots:
                self.search.tree(root)

    def __enter__(self) -> Watcher:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()
        for root in self.roots:
            self.search.tree(root)


def test_search_finds_every_form(tmp_path: Path) -> None:
    """The search itself: a secret written in any of its forms inside other text, gzip'ed, or
    as part of a Basic credential, is found in a file (else the tests below would prove
    nothing); a file without it is not reported."""
    secret = "s3cr/et+" + secrets.token_urlsafe(24)
    basic = base64.b64encode(f"user:{secret}".encode())
    samples = {
        "raw": b"x=" + secret.encode() + b";",
        "url-encoded": b"?token=" + quote(secret, safe="").encode(),
        "hex": b"key " + secret.encode().hex().encode(),
        "basic": b"Authorization: Basic " + basic,
        "segment.lp.gz": gzip.compress(b"line " + secret.encode() + b"\n"),
        "clean": b"nothing secret in here " + secrets.token_urlsafe(40).encode(),
    }
    for name, data in samples.items():
        (tmp_path / name).write_bytes(data)
    search = Search({"k": secret})
    search.tree(tmp_path)
    found_in = {Path(where).name for _name, _form, where in search.hits}
    assert found_in == set(samples) - {"clean"}


# ------------------------------------------------------------------- a recording InfluxDB proxy


class InfluxProxy:
    """``/api/v2/write`` that takes a request only with ``Authorization: Token <token>`` and
    forwards it to VictoriaMetrics; counts what it accepted and what it refused.

    The first ``outage`` authorised requests are answered 503 with a body that echoes the
    request's ``Authorization`` header (as a careless proxy in front of InfluxDB might): the
    sink logs the failure and spools, then drains the spool — the error path and the spool
    segments are searched too."""

    def __init__(self, token: str, upstream: str, *, outage: int = 0) -> None:
        self.accepted = 0
        self.refused = 0
        self.failed = 0
        self.lines = 0
        proxy = self
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Authorization") != f"Token {token}":
                    proxy.refused += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                with lock:
                    down = proxy.failed < outage
                    proxy.failed += down
                if down:
                    echo = f"upstream unavailable; request had Authorization: {token}".encode()
                    self.send_response(503)
                    self.send_header("Content-Length", str(len(echo)))
                    self.end_headers()
                    self.wfile.write(echo)
                    return
                query = self.path.partition("?")[2]
                req = urllib.request.Request(
                    f"{upstream}/api/v2/write?{query}", data=body, method="POST"
                )
                with urllib.request.urlopen(req, timeout=10) as r:
                    status = r.status
                proxy.accepted += 1
                proxy.lines += body.count(b"\n")
                self.send_response(status)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> InfluxProxy:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# ------------------------------------------------------------------------------ the demo


def _random(prefix: str) -> str:
    """A recognisable random secret; ``/`` and ``+`` make its URL-encoded form differ."""
    return f"{prefix}-{secrets.token_hex(8)}/{secrets.token_urlsafe(12)}+"


def demo_secrets() -> dict[str, str]:
    """Environment variable → value for every secret ``envwatch demo`` reads. Extend here."""
    smtp_password = _random("smtp")
    return {
        "ENVWATCH_DEMO_WEBHOOK_SECRET": _random("webhook-key"),
        "ENVWATCH_INFLUX_TOKEN": _random("influx-token"),
        # the bridge sends it; the demo's embedded broker is anonymous and does not check it
        "ENVWATCH_MQTT_PASSWORD": _random("mqtt-password"),
        # the SMTP server of catalogue email routes (an apprise mailtos:// URL with a password)
        "ENVWATCH_ALERTS_SMTP_URL": (
            f"mailtos://envwatch:{quote(smtp_password, safe='')}@127.0.0.1:9/"
            "?from=duty@example.invalid"
        ),
        "_SMTP_PASSWORD": smtp_password,  # the password alone: searched, not set
    }


#: InfluxDB requests answered 503: more than one batch's attempts (streams.sink.Sink.retries 3,
#: so 4), so that a batch is spooled and the drainer's first probes fail too
OUTAGE = 6


@pytest.mark.slow
def test_demo_leaks_no_secret(tmp_path: Path, victoria: embedded.Victoria) -> None:
    out = tmp_path / "out"
    tmp = tmp_path / "tmp"  # the demo's temporary directories (state, brokers) are made here
    tmp.mkdir()
    found = demo_secrets()
    env = {k: v for k, v in found.items() if not k.startswith("_")}
    env["ENVWATCH_MQTT_USERNAME"] = "envwatch-bridge"
    env["TMPDIR"] = str(tmp)
    # api.json (mode 0600) is where the demo hands the alerts API's tokens to the user: the one
    # file that may hold them. They are random per run: read from it after the run.
    search = Search(found, allowed={})
    with (
        InfluxProxy(found["ENVWATCH_INFLUX_TOKEN"], victoria.url, outage=OUTAGE) as proxy,
        Watcher(search, out, tmp),
    ):
        env["ENVWATCH_INFLUX_URL"] = proxy.url
        proc = _run_demo(env, out, timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    # the secrets were used, so that finding none of them means something:
    # every write of the store went through the proxy, with the token, …
    assert proxy.accepted > 0
    assert proxy.lines > 0
    assert proxy.refused == 0
    # … the outage was logged and the unwritten lines spooled (then drained) …
    assert proxy.failed == OUTAGE
    assert "503" in proc.stderr, proc.stderr[-2000:]
    assert any(".lp" in p.name and p.parent == out for p in search.files)
    # … and the receiver verified the signatures (made with the key) of what it accepted
    accepted = (out / "notifications.jsonl").read_text(encoding="utf-8").splitlines()
    assert accepted, "no notification was delivered"
    assert " 0 bad signatures" in proc.stdout.replace("(", " ")

    # the API tokens: only in api.json, which only the user can read
    api = out / "api.json"
    assert stat.S_IMODE(api.stat().st_mode) == 0o600
    tokens = json.loads(api.read_text(encoding="utf-8"))["tokens"]
    assert tokens
    assert all(len(t) >= 16 for t in tokens.values())
    both = Search(
        {**found, **{f"api-token:{who}": t for who, t in tokens.items()}},
        allowed={api: {f"api-token:{who}" for who in tokens}},
    )
    both.text(proc.stdout.encode(), "stdout")
    both.text(proc.stderr.encode(), "stderr")
    both.tree(out)
    both.tree(tmp)
    assert search.files, "nothing was searched"
    # the brokers' own files were searched too (mosquitto.conf and .log, tansu.log)
    assert {"mosquitto.log", "tansu.log"} <= {p.name for p in search.files}
    hits = search.hits | both.hits  # (secret name, form, where): no value
    assert not hits, sorted(hits)


def _run_demo(
    env: Mapping[str, str], out: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "streams.cli",
            "demo",
            "--scenario",
            "winter-episode",
            "--duration",
            "40",
            "--out",
            str(out),
            "--plain",
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# ------------------------------------------------------------------------------ error paths


class Echo:
    """A real HTTP endpoint that answers every POST with ``status`` and a body echoing what it
    was sent: request line, every header, the body. Keeps the requests."""

    def __init__(self) -> None:
        self.status = 500
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        echo = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = dict(self.headers.items())
                echo.requests.append((self.path, headers, body))
                text = (
                    f"refused {self.requestline}\n"
                    + "".join(f"{k}: {v}\n" for k, v in headers.items())
                ).encode() + body[:2000]
                self.send_response(echo.status)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, *_: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Echo:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def echo() -> Iterator[Echo]:
    with Echo() as e:
        yield e


def _everything(exc: BaseException) -> str:
    """str, repr and the formatted traceback with its chained causes."""
    return "\n".join(
        [
            str(exc),
            repr(exc),
            "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        ]
    )


@pytest.mark.parametrize("status", [401, 500])
def test_webhook_refusal_echoing_the_request_leaks_no_secret(
    status: int, echo: Echo, caplog: pytest.LogCaptureFixture
) -> None:
    """A receiver answers 401 (not retried) or 500 (retried) and echoes the request: the
    signing key, the token in the URL's query and the password in its userinfo appear in no
    error text and no log line (the notifier's, the dispatcher's, httpx's)."""
    found = {
        "webhook key": _random("webhook-key"),
        "url token": _random("url-token"),
        "url password": _random("url-password"),
    }
    url = (
        f"http://duty:{quote(found['url password'], safe='')}@{echo.base}/hook"
        f"?access_token={quote(found['url token'], safe='')}"
    )
    caplog.set_level(logging.DEBUG)
    echo.status = status
    at = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)
    note = Notification(
        id="0" * 31 + "1",
        receiver="duty-x",
        kind=NotificationKind.ALERT,
        status=NotificationStatus.FIRING,
        state="firing",
        fingerprint="fp1",
        at=at,
        starts_at=at,
        texts=Texts(zh="【超标】测试", en="[Exceedance] test"),
    )
    # the row is given up after its first attempt, so the dispatcher's whole path runs once
    settings = AlertsSettings.model_validate(
        {
            "webhooks": {"duty-x": {"url": url, "secret": found["webhook key"]}},
            "retry": {"max_attempts": 1},
        }
    )
    box = MemoryOutbox(settings.retry.policy())
    box.enqueue(note, datetime.now(UTC))
    errors: list[BaseException] = []

    async def go() -> None:
        hook = WebhookNotifier(url, found["webhook key"], timeout=5)
        try:
            with pytest.raises(NotifyError) as caught:
                await hook.send(note)
            errors.append(caught.value)
        finally:
            await hook.aclose()
        # the same through the dispatcher and the outbox, as the notify stage runs it
        dispatcher = Dispatcher(box, channels_from_settings(settings), poll_interval=0.05)
        async with asyncio.timeout(20):
            await dispatcher.run_until_idle()
        await dispatcher.aclose()

    asyncio.run(go())
    # the receiver got the requests, signed with the key (so it was used), with the URL's token
    assert len(echo.requests) == 2
    for path, headers, body in echo.requests:
        assert verify_signature(
            found["webhook key"], headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER]
        )
        assert quote(found["url token"], safe="") in path
    (err,) = errors
    assert isinstance(err, NotifyError)
    assert err.status == status
    assert err.retryable is (status == 500)
    (item,) = box.dead_letters()  # held (401) or dead after its one attempt (500)
    assert f"HTTP {status}" in (item.last_error or "")

    search = Search(found)
    search.text(_everything(err).encode(), "exception")
    search.text((item.last_error or "").encode(), "outbox row")
    search.text(box.ledger_value(item.id, item.receiver), "delivery ledger")
    for rec in caplog.records:
        search.text(rec.getMessage().encode(), f"log {rec.name}")
        if rec.exc_info and rec.exc_info[1] is not None:
            search.text(_everything(rec.exc_info[1]).encode(), f"log {rec.name} exc")
    assert not search.hits, sorted(search.hits)


def test_influx_401_echoing_the_authorization_header_leaks_no_token(
    tmp_path: Path, echo: Echo, caplog: pytest.LogCaptureFixture
) -> None:
    """An InfluxDB endpoint answers 401 and echoes the request, ``Authorization: Token …``
    included: the sink's log lines, its error and health texts and its spool hold no token.
    (The sink as the worker builds it from its settings, streams.app.make_sink.)"""
    token = _random("influx-token")
    caplog.set_level(logging.DEBUG)
    echo.status = 401
    sink = make_sink(
        Settings(influx_url=f"http://{echo.base}", influx_token=token, spool_dir=tmp_path / "spool")
    )
    sink.sleep = lambda _s: None  # the retries' backoff: nothing to wait for here
    sink.drain_interval = 0  # no background drainer: one write, then look
    try:
        outcome = sink.write(["reading,source=aq-1 pm25=35 1764000000000000000"])
        health = sink.health()
    finally:
        sink.close()
    # the token was sent (so a leak was possible) and the endpoint's refusal was taken in
    assert echo.requests
    assert echo.requests[0][1]["Authorization"] == f"Token {token}"
    assert outcome is Outcome.SPOOLED
    assert "401" in sink.error

    search = Search({"influx token": token})
    search.text(f"{sink.error}\n{health!r}".encode(), "sink error/health")
    for rec in caplog.records:
        search.text(rec.getMessage().encode(), f"log {rec.name}")
    search.tree(tmp_path)
    assert any(".lp" in p.name for p in search.files)  # the batch was spooled, and searched
    assert not search.hits, sorted(search.hits)


# -------------------------------------------------------------------- envwatch deploy mqtt


def _deploy_mqtt(out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *(sys.executable, "-m", "streams.cli", "deploy", "mqtt"),
            *("--config", "deploy/config", "--out", str(out), "--port", "18831"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_deploy_mqtt_prints_no_password_and_keeps_them_owner_only(tmp_path: Path) -> None:
    """``credentials.json`` must hold the MQTT passwords, so it is outside the demo's search:
    here it is mode 0600 (also after a rerun over a copy someone made readable), the same
    passwords on the rerun, and no password — in any form — is printed or in passwd, acl or
    mosquitto.conf (passwd holds salted hashes only)."""
    out = tmp_path / "mqtt"
    first = _deploy_mqtt(out)
    assert first.returncode == 0, first.stderr[-2000:]
    credentials = out / "credentials.json"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    accounts = json.loads(credentials.read_text(encoding="utf-8"))
    passwords = {name: a["password"] for name, a in accounts.items()}
    # every role's account and one per enterprise (docs/mqtt.md §4), each with a password
    assert {"envwatch-bridge", "envwatch-gateway", "envwatch-publisher", "envwatch-notifier"} <= {
        a["username"] for a in accounts.values()
    }
    assert any(name.startswith("enterprise:") for name in passwords)
    assert all(len(p) >= 16 for p in passwords.values())

    credentials.chmod(0o644)
    second = _deploy_mqtt(out)
    assert second.returncode == 0, second.stderr[-2000:]
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    again = json.loads(credentials.read_text(encoding="utf-8"))
    assert {name: a["password"] for name, a in again.items()} == passwords

    search = Search(passwords, allowed={credentials: set(passwords)})
    for run in (first, second):
        search.text(run.stdout.encode(), "stdout")
        search.text(run.stderr.encode(), "stderr")
    search.tree(out)
    assert {"passwd", "acl", "mosquitto.conf"} <= {p.name for p in search.files}
    assert not search.hits, sorted(search.hits)


# ------------------------------------------------------------------ HJ 212 gateway passwords


def test_gateway_logs_and_forwards_no_hj212_password(
    mqtt_broker: embedded.MqttBroker,
    kafka_broker: embedded.KafkaBroker,
    topic_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The demo does not run the HJ 212 gateway, so its passwords are checked here: the
    gateway as ``envwatch gateway`` runs it (streams.cli.gateway.GatewayService) on the shipped
    catalogue with one outlet's password by reference (tests/integration/test_fault_gateway.py's
    copy), a logger uploading with the right password and one with a wrong one (a mistyped
    password may be another outlet's real one). Neither password is in a log line (DEBUG
    included), a published sample or a dead letter."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from ingest import hj212
    from streams.cli.gateway import GatewayService
    from tests.integration.bridge_helpers import read_topic
    from tests.integration.test_fault_gateway import MN_L, answers, catalogue, gas

    found = {"hj212 password": _hj212_pw(), "wrong hj212 password": _hj212_pw()}
    monkeypatch.setenv("ENVWATCH_FAULT_HJ212_PW", found["hj212 password"])
    caplog.set_level(logging.DEBUG)
    settings = Settings(
        kafka=kafka_broker.url,
        topic_prefix=topic_prefix,
        partitions=1,
        mqtt_host=mqtt_broker.host,
        mqtt_port=mqtt_broker.port,
        gateway_host="127.0.0.1",
        gateway_port=0,
        gateway_mqtt_client_id=f"{topic_prefix}gateway",
        config_dir=catalogue(tmp_path),
    )
    payloads: list[bytes] = []
    subscribed = threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    sub.on_connect = lambda c, *_: c.subscribe("env/#", qos=1)
    sub.on_subscribe = lambda *_: subscribed.set()
    sub.on_message = lambda _c, _u, m: payloads.append(m.topic.encode() + b" " + m.payload)
    sub.connect(mqtt_broker.host, mqtt_broker.port)
    sub.loop_start()
    replies: list[hj212.Packet] = []
    dead: list[dict[str, object]] = []

    async def scenario() -> None:
        service = GatewayService(settings)
        ready = asyncio.Event()
        task = asyncio.create_task(service.run(ready=ready))
        await asyncio.wait_for(ready.wait(), 30)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", service.address[1])
            for hour, pw in ((1, found["hj212 password"]), (2, found["wrong hj212 password"])):
                writer.write(gas(hour, pw=pw))
                await writer.drain()
                replies.extend(await answers(reader, 1))
            writer.close()
            got = await read_topic(
                kafka_broker.bootstrap,
                f"{topic_prefix}dead-letter",
                until=lambda c: len(c.records) >= 1,
                within=30,
            )
            dead.extend(got.records)
            for _ in range(100):  # the right packet's sample on MQTT
                if any(MN_L.encode() in p or b"e-wf-01-g1" in p for p in payloads):
                    break
                await asyncio.sleep(0.1)
        finally:
            service.stop()
            await asyncio.wait_for(task, 30)

    try:
        assert subscribed.wait(15)
        asyncio.run(scenario())
    finally:
        sub.loop_stop()
        sub.disconnect()

    # the password was checked: the right one accepted (9014), the wrong one refused (表7
    # QnRtn=3) and dead-lettered as such; the right packet's sample published
    assert [r.cn for r in replies] == ["9014", "9011"]
    assert replies[1].cp["QnRtn"] == "3"
    assert [str(d["reason"]).split(":")[0] for d in dead] == ["wrong_password"]
    assert any(b"e-wf-01-g1" in p for p in payloads)

    search = Search(found)
    for rec in caplog.records:
        search.text(rec.getMessage().encode(), f"log {rec.name}")
    for p in payloads:
        search.text(p, "mqtt")
    for d in dead:
        search.text(json.dumps(d).encode(), "dead letter")
        search.text(base64.b64decode(str(d["payload_b64"])), "dead letter payload")
    assert not search.hits, sorted(search.hits)


def _hj212_pw() -> str:
    """A random HJ 212 PW (1–64 printable ASCII, none of the segment's separators ; , & =)."""
    return f"pw{secrets.token_hex(10)}"


# ------------------------------------------------------------------ the bridge's MQTT password


def test_bridge_logs_no_mqtt_password_refused_or_accepted(
    kafka_broker: embedded.KafkaBroker, topic_prefix: str, tmp_path: Path
) -> None:
    """The demo's broker is anonymous, so the MQTT password is checked here: ``envwatch
    bridge`` (a child process, as operators run it) against mosquitto with the production
    access control (password file, ACL; streams.embedded.mosquitto(accounts=…)). With a wrong
    password it is refused and says so; with the right one it connects. Neither password is in
    the bridge's log nor in mosquitto's files."""
    from tests.integration.bridge_helpers import BridgeProcess, bridge_env

    found = {"mqtt password": _random("mqtt-password"), "wrong mqtt password": _random("wrong")}
    user = f"{topic_prefix}bridge"
    account = embedded.MqttAccount(user, found["mqtt password"], "bridge")
    with embedded.mosquitto(accounts=[account]) as broker:
        env = bridge_env(broker, kafka_broker, topic_prefix, ENVWATCH_MQTT_USERNAME=user)
        env["ENVWATCH_MQTT_CLIENT_ID"] = user  # use_username_as_clientid: the broker's rule

        refused = BridgeProcess(
            {**env, "ENVWATCH_MQTT_PASSWORD": found["wrong mqtt password"]},
            tmp_path,
            name="bridge-wrong",
        )
        refused.proc.start(timeout=60)  # up once its metrics port answers
        try:
            deadline = time.monotonic() + 60
            while "connect refused" not in refused.proc.log_path.read_text(errors="replace"):
                assert time.monotonic() < deadline, refused.proc.log_tail()
                time.sleep(0.2)
            assert refused.metric("envwatch_bridge_mqtt_connected") != 1
        finally:
            refused.stop()

        accepted = BridgeProcess(
            {**env, "ENVWATCH_MQTT_PASSWORD": found["mqtt password"]}, tmp_path, name="bridge-ok"
        )
        accepted.start()  # returns once the bridge reports itself connected to the broker
        accepted.stop()

        search = Search(found)
        search.tree(tmp_path)  # both bridges' logs
        broker_files = {p for p in broker.process.workdir.rglob("*") if p.is_file()}
        search.tree(broker.process.workdir)  # mosquitto's conf, passwd (hashes), acl, log
    assert {refused.proc.log_path, accepted.proc.log_path} <= search.files
    assert broker_files <= search.files
    assert not search.hits, sorted(search.hits)
