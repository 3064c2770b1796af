"""MQTT over TLS: ``envwatch deploy mqtt`` TLS listeners, and envwatch's MQTT clients over TLS
(issue 17, "TLS and authentication everywhere", the MQTT half).

The broker tests start the real mosquitto with the files ``envwatch deploy mqtt`` wrote, as they
are, and a CA made for the test by ``trustme`` (skipped with the reason outside CI when mosquitto
is missing, a failure under ``CI=true``: tests/conftest.py). The server certificate names only
``127.0.0.1``: a client that connects to ``localhost`` sees a host-name mismatch.
"""

from __future__ import annotations

import json
import ssl
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import trustme
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from typer.testing import CliRunner

from alerts.notify.base import NotifyError
from alerts.notify.mqtt import MqttPublisher
from alerts.settings import MqttAlertSettings
from ingest.publisher import MqttAuth, Publisher, PublisherError, broker_protocol, tls_context
from streams import embedded, mqttaccounts
from streams.cli import app
from streams.settings import Settings

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "deploy" / "config"
A, B = "e-wf-01", "e-wf-02"  # two enterprises of Weifang, each with outlets and a monitor
HOST = "127.0.0.1"  # the only name in the server certificate


# --------------------------------------------------------------------------- test PKI


@dataclass
class Pki:
    """The test CA, a server certificate for 127.0.0.1, client certificates, and a foreign CA."""

    dir: Path
    ca: trustme.CA
    other_ca: trustme.CA

    @property
    def ca_file(self) -> Path:
        return self.dir / "ca.pem"

    @property
    def other_ca_file(self) -> Path:
        return self.dir / "other-ca.pem"

    def client(self, common_name: str, ca: trustme.CA | None = None) -> tuple[Path, Path]:
        """(certificate, key) of a client certificate whose common name is ``common_name``."""
        leaf = (ca or self.ca).issue_cert(f"{common_name}.devices.invalid", common_name=common_name)
        tag = "other-" if ca is not None else ""
        cert, key = self.dir / f"{tag}{common_name}.crt", self.dir / f"{tag}{common_name}.key"
        leaf.cert_chain_pems[0].write_to_path(str(cert))
        leaf.private_key_pem.write_to_path(str(key))
        return cert, key


def make_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    pki = Pki(directory, trustme.CA(), trustme.CA())
    pki.ca.cert_pem.write_to_path(str(pki.ca_file))
    pki.other_ca.cert_pem.write_to_path(str(pki.other_ca_file))
    server = pki.ca.issue_cert(HOST)
    server.cert_chain_pems[0].write_to_path(str(directory / "server.crt"))
    server.private_key_pem.write_to_path(str(directory / "server.key"))
    return pki


def deploy_args(out: Path, pki: Pki, port: int, tls_port: int, *extra: str) -> list[str]:
    return [
        "deploy",
        "mqtt",
        "--config",
        str(CONFIG),
        "--out",
        str(out),
        "--port",
        str(port),
        "--tls-port",
        str(tls_port),
        "--cafile",
        str(pki.ca_file),
        "--certfile",
        str(pki.dir / "server.crt"),
        "--keyfile",
        str(pki.dir / "server.key"),
        *extra,
    ]


def deploy(out: Path, pki: Pki, port: int, tls_port: int, *extra: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, deploy_args(out, pki, port, tls_port, *extra))
    assert result.exit_code == 0, result.output
    creds: dict[str, Any] = json.loads((out / "credentials.json").read_text())
    return creds


# --------------------------------------------------------------------------- rendering


def test_tls_listener_rendering() -> None:
    template = (
        "max_queued_messages 1000000\n# --- production-only begin\n# --- production-only end\n"
    )
    tls = mqttaccounts.TlsListener(8883, "/p/ca.pem", "/p/s.crt", "/p/s.key")
    both = mqttaccounts.render_conf(
        template, port=1883, persistence_dir="/m", password_file="/d/pw", acl_file="/d/acl", tls=tls
    ).splitlines()
    assert both[1] == "listener 1883"
    assert both[-6:] == [
        "listener 8883",
        "cafile /p/ca.pem",
        "certfile /p/s.crt",
        "keyfile /p/s.key",
        "tls_version tlsv1.2",
        # a listener option in mosquitto 2.0: repeated for the TLS listener, else an account
        # could connect there under another's client id (the session takeover of issue 13)
        "use_username_as_clientid true",
    ]
    devices = mqttaccounts.TlsListener(8884, "/p/ca.pem", "/p/s.crt", "/p/s.key", True, "10.0.0.1")
    only = mqttaccounts.render_conf(
        template,
        port=None,
        persistence_dir="/m",
        password_file="/d/pw",
        acl_file="/d/acl",
        tls=devices,
    ).splitlines()
    assert [ln for ln in only if ln.startswith("listener")] == ["listener 8884 10.0.0.1"]
    assert only[-3:] == [
        "require_certificate true",
        "use_identity_as_username true",
        "use_username_as_clientid true",
    ]
    with pytest.raises(ValueError, match="anyone"):  # TLS is no substitute for accounts
        mqttaccounts.render_conf(template, port=None, persistence_dir="/m", tls=tls)
    with pytest.raises(ValueError, match="no listener"):
        mqttaccounts.render_conf(
            template, port=None, persistence_dir="/m", password_file="/x", acl_file="/y"
        )


def test_command_tls_options(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    out = tmp_path / "out"
    deploy(out, pki, 18840, 18841)
    conf = (out / "mosquitto.conf").read_text().splitlines()
    assert "listener 18840" in conf
    at = conf.index("listener 18841")
    assert conf[at + 1 : at + 5] == [
        f"cafile {pki.ca_file}",
        f"certfile {pki.dir / 'server.crt'}",
        f"keyfile {pki.dir / 'server.key'}",
        "tls_version tlsv1.2",
    ]
    assert not (out / "server.key").exists()  # the key is referenced where it is, not copied

    deploy(out, pki, 18840, 18841, "--tls-only", "--require-certificate")
    conf = (out / "mosquitto.conf").read_text().splitlines()
    assert [ln for ln in conf if ln.startswith("listener")] == ["listener 18841"]
    assert "require_certificate true" in conf
    assert "use_identity_as_username true" in conf

    runner = CliRunner()
    incomplete = runner.invoke(
        app, ["deploy", "mqtt", "--config", str(CONFIG), "--out", str(out), "--certfile", "x.crt"]
    )
    assert incomplete.exit_code == 2
    assert "--cafile, --certfile and --keyfile" in incomplete.output
    alone = runner.invoke(
        app, ["deploy", "mqtt", "--config", str(CONFIG), "--out", str(out), "--tls-only"]
    )
    assert alone.exit_code == 2
    # a key that is not the certificate's: refused before mosquitto would fail on it; the
    # message names the files, never the key's content
    _, other_key = pki.client("someone")
    args = deploy_args(out, pki, 18840, 18841)
    args[args.index("--keyfile") + 1] = str(other_key)
    mismatch = runner.invoke(app, args)
    assert mismatch.exit_code == 1
    assert str(other_key) in mismatch.output
    assert "PRIVATE KEY" not in mismatch.output
    assert other_key.read_text().splitlines()[1] not in mismatch.output


# --------------------------------------------------------------------------- settings


def test_client_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pki = make_pki(tmp_path)
    secret = tmp_path / "mqtt-password"
    secret.write_text("s3cret-from-file\n")
    monkeypatch.setenv("ENVWATCH_MQTT_PASSWORD_FILE", str(secret))
    s = Settings(mqtt_username="envwatch-bridge", mqtt_tls_ca_file=pki.ca_file)
    monkeypatch.delenv("ENVWATCH_MQTT_PASSWORD_FILE")
    auth = s.mqtt_auth()
    assert (auth.username, auth.password) == ("envwatch-bridge", "s3cret-from-file")
    assert auth.tls is not None
    assert auth.tls.check_hostname
    assert auth.tls.verify_mode is ssl.CERT_REQUIRED
    assert auth.tls.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert "s3cret" not in repr(auth)
    assert "s3cret" not in repr(s)
    assert Settings().mqtt_auth().tls is None  # no CA: plain MQTT, as before

    with pytest.raises(ValueError, match="need ENVWATCH_MQTT_TLS_CA_FILE"):
        Settings(mqtt_tls_cert_file=pki.dir / "server.crt").mqtt_auth()
    with pytest.raises(ValueError, match=str(tmp_path / "missing.pem")):
        Settings(mqtt_tls_ca_file=tmp_path / "missing.pem").mqtt_auth()
    monkeypatch.setenv("ENVWATCH_MQTT_PASSWORD_FILE", str(tmp_path / "nope"))
    with pytest.raises(ValueError, match=r"ENVWATCH_MQTT_PASSWORD_FILE=.*nope: cannot read"):
        Settings()
    monkeypatch.delenv("ENVWATCH_MQTT_PASSWORD_FILE")
    cert, _ = pki.client("x")
    _, wrong_key = pki.client("y")
    with pytest.raises(ValueError, match="client certificate"):
        tls_context(pki.ca_file, cert, wrong_key)


# --------------------------------------------------------------------------- real mosquitto


class Client:
    """A paho v5 client over TLS (or plain without ``ca``); ``refused`` when the broker refused
    or closed the connection instead of a successful CONNACK."""

    def __init__(
        self,
        port: int,
        username: str | None,
        password: str | None,
        *,
        ca: Path | None,
        cert: tuple[Path, Path] | None = None,
        client_id: str = "",
        clean_start: bool = True,
        expiry: int = 0,
    ) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._connack = threading.Event()
        self.refused: bool | None = None
        self.present: bool | None = None
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        if ca is not None:
            self.client.tls_set_context(tls_context(ca, *(cert or (None, None))))
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = lambda _c, _u, m: self.messages.append((m.topic, bytes(m.payload)))
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = expiry
        self.client.connect(HOST, port, clean_start=clean_start, properties=props)
        self.client.loop_start()
        assert self._connack.wait(10), "no CONNACK and no disconnect"

    def _on_connect(self, _c: object, _u: object, flags: Any, rc: Any, _p: object) -> None:
        self.refused = bool(rc.is_failure)
        self.present = bool(flags.session_present)
        self._connack.set()

    def _on_disconnect(self, *_a: object) -> None:
        if not self._connack.is_set():  # closed before any CONNACK
            self.refused = True
            self._connack.set()

    def subscribe(self, *patterns: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *_a: done.set()
        self.client.subscribe([(p, 1) for p in patterns])
        assert done.wait(10), "no SUBACK"

    def publish(self, topic: str, body: bytes) -> None:
        self.client.publish(topic, body, qos=1).wait_for_publish(10)

    def topics(self) -> set[str]:
        return {t for t, _ in self.messages}

    def wait_for(self, topic: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while topic not in self.topics():
            assert time.monotonic() < deadline, f"{topic} not received; got {self.topics()}"
            time.sleep(0.02)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class Broker:
    port: int  # plain listener (0: none)
    tls_port: int
    creds: dict[str, Any]
    pki: Pki

    def account(self, name: str) -> tuple[str, str]:
        return self.creds[name]["username"], self.creds[name]["password"]

    def tls(self, name: str | None, **kw: Any) -> Client:
        user, password = self.account(name) if name else (None, None)
        return Client(self.tls_port, user, password, ca=self.pki.ca_file, **kw)


def start_broker(pki: Pki, *extra: str) -> Iterator[Broker]:
    """mosquitto with the command's files as they are. The directory is handed to mosquitto's
    user (as root it drops to it), the certificates and keys inside it are world-readable test
    files."""
    binary = embedded.mosquitto_binary()
    if binary is None:
        raise embedded.ServiceUnavailable(
            f"mosquitto is not installed; fix: {embedded.FIX_MOSQUITTO}"
        )
    out = pki.dir / "broker"
    port, tls_port = embedded.free_port(), embedded.free_port()
    creds = deploy(out, pki, port, tls_port, *extra)
    for d in (pki.dir, out):
        embedded.hand_to_broker_user(d)
    proc = embedded.Process("mosquitto", [binary, "-c", str(out / "mosquitto.conf")], out, tls_port)
    proc.start()
    try:
        yield Broker(0 if "--tls-only" in extra else port, tls_port, creds, pki)
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    """A plain and a TLS listener, accounts with passwords."""
    with tempfile.TemporaryDirectory(prefix="envwatch-mqtt-tls-") as tmp:
        yield from start_broker(make_pki(Path(tmp)))


@pytest.fixture(scope="module")
def device_broker() -> Iterator[Broker]:
    """Only a TLS listener, client certificates required (their common name is the account)."""
    with tempfile.TemporaryDirectory(prefix="envwatch-mqtt-mtls-") as tmp:
        yield from start_broker(make_pki(Path(tmp)), "--tls-only", "--require-certificate")


@pytest.mark.integration
def test_tls_connections_with_the_test_ca(broker: Broker) -> None:
    """An account connects over TLS; envwatch's publisher (ingest.publisher, as the simulators
    and the demo use it) delivers over TLS, and the bridge account receives it over TLS."""
    bridge = broker.tls("bridge")
    assert bridge.refused is False
    bridge.subscribe("env/#")
    user, password = broker.account("publisher")
    auth = MqttAuth(user, password, tls_context(broker.pki.ca_file))
    assert broker_protocol(HOST, broker.tls_port, tls=auth.tls) == mqtt.MQTTv5
    pub = Publisher(HOST, broker.tls_port, auth=auth, connect_timeout=10)
    try:
        pub.publish_raw("env/air/weifang/aq-wf-001", b"over tls")
        pub.flush(10)
        bridge.wait_for("env/air/weifang/aq-wf-001")
        assert bridge.messages == [("env/air/weifang/aq-wf-001", b"over tls")]
    finally:
        pub.close(10)
        bridge.close()


@pytest.mark.integration
def test_plain_clients_are_refused_on_the_tls_listener(broker: Broker) -> None:
    user, password = broker.account("bridge")
    plain = Client(broker.tls_port, user, password, ca=None)
    assert plain.refused is True
    plain.close()
    with pytest.raises(PublisherError, match=f"{HOST}:{broker.tls_port}.*without a CONNACK"):
        broker_protocol(HOST, broker.tls_port, timeout=5)


@pytest.mark.integration
def test_a_wrong_ca_or_host_name_is_a_clear_error(broker: Broker) -> None:
    """A CA that did not sign the broker's certificate, or a host name the certificate does not
    name: refused at once, the error names the broker and says why."""
    wrong = MqttAuth(*broker.account("publisher"), tls_context(broker.pki.other_ca_file))
    with pytest.raises(PublisherError, match=f"{HOST}:{broker.tls_port}: TLS: .*not trusted"):
        Publisher(HOST, broker.tls_port, auth=wrong, connect_timeout=5)
    with pytest.raises(PublisherError, match="not trusted"):
        broker_protocol(HOST, broker.tls_port, tls=wrong.tls)
    right = MqttAuth(*broker.account("publisher"), tls_context(broker.pki.ca_file))
    with pytest.raises(PublisherError, match=f"localhost:{broker.tls_port}: TLS: .*not trusted"):
        Publisher("localhost", broker.tls_port, auth=right, connect_timeout=5)


@pytest.mark.integration
def test_anonymous_and_wrong_passwords_are_refused_over_tls(broker: Broker) -> None:
    _, password = broker.account(f"enterprise:{A}")
    for c in (
        Client(broker.tls_port, None, None, ca=broker.pki.ca_file),
        Client(broker.tls_port, A, password + "x", ca=broker.pki.ca_file),
    ):
        assert c.refused is True
        c.close()


@pytest.mark.integration
def test_enterprises_stay_apart_over_tls(broker: Broker) -> None:
    """Over TLS as on the plain listener: an enterprise publishes only its own topics and
    receives only its own alerts, never ``#`` or another's."""
    a_topics = broker.creds[f"enterprise:{A}"]["publish"]
    b_topics = broker.creds[f"enterprise:{B}"]["publish"]
    bridge = broker.tls("bridge")
    bridge.subscribe("env/#")
    a, b = broker.tls(f"enterprise:{A}"), broker.tls(f"enterprise:{B}")
    notifier = broker.tls("notifier")
    try:
        a.subscribe("#", f"alerts/enterprise/{B}/#", f"alerts/enterprise/{A}/#", "env/#")
        b.subscribe("#", f"alerts/enterprise/{A}/#", f"alerts/enterprise/{B}/#")
        a.publish(b_topics[0], b"forged by A")
        b.publish(a_topics[0], b"forged by B")
        a.publish(a_topics[0], b"own A")
        b.publish(b_topics[0], b"own B")
        notifier.publish(f"alerts/enterprise/{B}/f2", b"B's alert")
        notifier.publish(f"alerts/enterprise/{A}/f1", b"A's alert")
        bridge.wait_for(a_topics[0])
        bridge.wait_for(b_topics[0])
        a.wait_for(f"alerts/enterprise/{A}/f1")
        b.wait_for(f"alerts/enterprise/{B}/f2")
        time.sleep(0.3)  # give anything forged the time to arrive, if it could
        assert sorted(bridge.messages) == [(a_topics[0], b"own A"), (b_topics[0], b"own B")]
        # (its own alerts may come twice: through "#" and its own filter, both allowed reads)
        assert set(a.messages) == {(f"alerts/enterprise/{A}/f1", b"A's alert")}
        assert set(b.messages) == {(f"alerts/enterprise/{B}/f2", b"B's alert")}
    finally:
        for c in (a, b, notifier, bridge):
            c.close()


@pytest.mark.integration
def test_another_account_cannot_take_the_bridges_session(broker: Broker) -> None:
    """use_username_as_clientid over TLS: an enterprise connecting with the bridge's client id
    (clean start, the issue-13 takeover) gets a session of its own; the messages queued for the
    bridge while it was away still reach the bridge."""
    kw: dict[str, Any] = {"client_id": "envwatch-bridge", "clean_start": False, "expiry": 600}
    bridge = broker.tls("bridge", **kw)
    bridge.subscribe("env/#")
    bridge.close()
    publisher = broker.tls("publisher")
    for i in range(3):
        publisher.publish(f"env/air/weifang/aq-wf-00{i + 1}", b"queued %d" % i)
    publisher.close()
    intruder = broker.tls(f"enterprise:{A}", client_id="envwatch-bridge", clean_start=True)
    assert intruder.refused is False
    assert intruder.present is False
    intruder.close()
    back = broker.tls("bridge", **kw)
    try:
        assert back.present is True
        for i in range(3):
            back.wait_for(f"env/air/weifang/aq-wf-00{i + 1}")
        assert sorted(p for _, p in back.messages) == [b"queued 0", b"queued 1", b"queued 2"]
    finally:
        back.close()


@pytest.mark.integration
def test_the_alerts_channel_publishes_over_tls(broker: Broker, tmp_path: Path) -> None:
    """alerts/notify/mqtt.py with ``mqtts://``, the CA file and the password file; with a
    foreign CA it fails with the reason instead of retrying silently."""
    user, password = broker.account("notifier")
    secret = tmp_path / "notifier-password"
    secret.write_text(password + "\n")
    a = broker.tls(f"enterprise:{A}")
    a.subscribe(f"alerts/enterprise/{A}/#")
    settings = MqttAlertSettings.model_validate(
        {
            "url": f"mqtts://{HOST}:{broker.tls_port}",
            "username": user,
            "password_file": secret,
            "ca_file": broker.pki.ca_file,
        }
    )
    channel = MqttPublisher(settings)
    try:
        channel.publish_sync(f"alerts/enterprise/{A}/fp1", b"{}", retain=False)
        a.wait_for(f"alerts/enterprise/{A}/fp1")
    finally:
        channel.close()
        a.close()
    wrong = MqttPublisher(settings.model_copy(update={"ca_file": broker.pki.other_ca_file}))
    try:
        with pytest.raises(NotifyError, match="certificate is not trusted"):
            wrong.publish_sync(f"alerts/enterprise/{A}/fp2", b"{}", retain=False)
    finally:
        wrong.close()


@pytest.mark.integration
def test_device_certificates(device_broker: Broker) -> None:
    """--require-certificate: a client without a certificate, or with one from another CA, is
    refused; a device certificate whose common name is an enterprise's id is that account,
    and the account's ACL still holds."""
    pki = device_broker.pki
    ca, port = pki.ca_file, device_broker.tls_port
    user, password = device_broker.account(f"enterprise:{A}")
    without = Client(port, user, password, ca=ca)
    foreign = Client(port, None, None, ca=ca, cert=pki.client(A, pki.other_ca))
    for c in (without, foreign):
        assert c.refused is True
        c.close()
    bridge = Client(port, None, None, ca=ca, cert=pki.client("envwatch-bridge"))
    device = Client(port, None, None, ca=ca, cert=pki.client(A))
    assert bridge.refused is False
    assert device.refused is False
    a_topics = device_broker.creds[f"enterprise:{A}"]["publish"]
    b_topics = device_broker.creds[f"enterprise:{B}"]["publish"]
    try:
        bridge.subscribe("env/#")
        device.subscribe("#")
        device.publish(b_topics[0], b"forged")
        device.publish(a_topics[0], b"own")
        bridge.wait_for(a_topics[0])
        time.sleep(0.3)
        assert bridge.messages == [(a_topics[0], b"own")]
        assert device.messages == []  # "#" reads nothing, not even its own samples
    finally:
        bridge.close()
        device.close()


@pytest.mark.integration
def test_no_certificate_cannot_touch_the_bridges_session(device_broker: Broker) -> None:
    """On the certificate listener a client without a certificate is refused in the handshake,
    before its CONNECT: the mosquitto 2.0.11 hole of docs/mqtt.md §4 (a refused CONNECT with the
    bridge's client id drops the bridge's stored session) cannot be reached there."""
    pki, port = device_broker.pki, device_broker.tls_port
    bridge_cert = pki.client("envwatch-bridge")
    kw: dict[str, Any] = {"client_id": "envwatch-bridge", "clean_start": False, "expiry": 600}
    bridge = Client(port, None, None, ca=pki.ca_file, cert=bridge_cert, **kw)
    bridge.subscribe("env/#")
    bridge.close()
    publisher = Client(port, None, None, ca=pki.ca_file, cert=pki.client("envwatch-publisher"))
    publisher.publish("env/air/weifang/aq-wf-001", b"queued")
    publisher.close()
    user, password = device_broker.account("bridge")
    intruder = Client(port, user, password, ca=pki.ca_file, client_id="envwatch-bridge")
    assert intruder.refused is True
    intruder.close()
    back = Client(port, None, None, ca=pki.ca_file, cert=bridge_cert, **kw)
    try:
        assert back.present is True
        back.wait_for("env/air/weifang/aq-wf-001")
    finally:
        back.close()


@pytest.mark.integration
def test_gateway_publisher_over_tls(broker: Broker) -> None:
    """The HJ 212 gateway's publisher (ingest.gateway.PahoPublisher) over TLS with the gateway
    account; with a foreign CA its connect fails naming the broker and the reason."""
    import asyncio

    from ingest.gateway import PahoPublisher

    user, password = broker.account("gateway")
    bridge = broker.tls("bridge")
    bridge.subscribe("env/#")

    async def publish(ca: Path) -> None:
        pub = PahoPublisher(
            HOST, broker.tls_port, username=user, password=password, tls=tls_context(ca), timeout=10
        )
        await pub.connect()
        try:
            await pub.publish("env/emission/weifang/e-wf-01-g1", b"from the gateway")
        finally:
            await pub.close()

    try:
        asyncio.run(publish(broker.pki.ca_file))
        bridge.wait_for("env/emission/weifang/e-wf-01-g1")
        with pytest.raises(ConnectionError, match=f"{HOST}:{broker.tls_port}: TLS: .*not trusted"):
            asyncio.run(publish(broker.pki.other_ca_file))
    finally:
        bridge.close()


def test_services_stop_at_start_on_a_missing_tls_file(tmp_path: Path) -> None:
    """``envwatch bridge`` and ``envwatch gateway`` with a CA file that is not there: one line
    naming the file, exit 2, no retry loop."""
    missing = tmp_path / "no-such-ca.pem"
    env = {"ENVWATCH_MQTT_TLS_CA_FILE": str(missing)}
    for command in (["bridge"], ["gateway", "--config-dir", str(CONFIG)]):
        result = CliRunner().invoke(app, command, env=env)
        assert result.exit_code == 2, result.output
        assert str(missing) in result.output


@pytest.mark.integration
def test_simulator_publishes_over_tls(broker: Broker, tmp_path: Path) -> None:
    """``envwatch simulate run --mqtt`` with the publisher account from a password file and TLS
    from ``ENVWATCH_MQTT_TLS_CA_FILE``: every message it reports reaches a subscriber."""
    user, password = broker.account("publisher")
    secret = tmp_path / "publisher-password"
    secret.write_text(password + "\n")
    bridge = broker.tls("bridge")
    bridge.subscribe("env/#")
    env = {
        "ENVWATCH_MQTT_TLS_CA_FILE": str(broker.pki.ca_file),
        "ENVWATCH_MQTT_USERNAME": user,
        "ENVWATCH_MQTT_PASSWORD_FILE": str(secret),
    }
    args = ["simulate", "run", "--hours", "1", "--speed", "0", "--seed", "3"]
    try:
        result = CliRunner().invoke(app, [*args, "--mqtt", f"{HOST}:{broker.tls_port}"], env=env)
        assert result.exit_code == 0, result.output
        sent = int(result.output.split("simulated ")[1].split()[0])
        assert sent > 0
        deadline = time.monotonic() + 10
        while len(bridge.messages) < sent and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(bridge.messages) == sent
        assert password not in result.output
    finally:
        bridge.close()
    # without the CA the simulator is refused on the TLS port, with the reason
    plain = CliRunner().invoke(
        app,
        [*args, "--mqtt", f"{HOST}:{broker.tls_port}"],
        env={**env, "ENVWATCH_MQTT_TLS_CA_FILE": ""},
    )
    assert plain.exit_code != 0
    assert "without a CONNACK" in plain.output
