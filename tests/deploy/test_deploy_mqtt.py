"""``envwatch deploy mqtt``: accounts, ACL, password file and conf from the catalogue (issue 17).

The rendering tests need no service; the access tests start the real mosquitto with the files the
command wrote, as they are (skipped with the reason outside CI when mosquitto is missing, a
failure under ``CI=true``: tests/conftest.py).
"""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from ingest.simulators.network import specs_from_catalog
from rules.catalog import load_catalog
from streams import embedded, mqttaccounts
from streams.cli import app

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "deploy" / "config"
A, B = "e-wf-01", "e-wf-02"  # two enterprises of Weifang, each with outlets and a monitor


def deploy(out: Path, port: int) -> tuple[dict[str, Any], str]:
    result = CliRunner().invoke(
        app, ["deploy", "mqtt", "--config", str(CONFIG), "--out", str(out), "--port", str(port)]
    )
    assert result.exit_code == 0, result.output
    return json.loads((out / "credentials.json").read_text()), result.output


# --------------------------------------------------------------------------- rendering


def test_hash_is_mosquitto_passwd_format() -> None:
    # a line written by mosquitto_passwd 2.0.11 (-b alice s3cret)
    line = (
        "alice:$7$101$gAefNOevhUpELQmT$9GcKx7lSD570NhC84PQ+X7kUUXzlV3SOwPTuZyLCS9hrKrJVvx6v"
        "I0xCRlNT7ah+TEmkuIWwB3vLBejQZSKZPw=="
    )
    hashed = mqttaccounts.parse_passwd(line)["alice"]
    assert mqttaccounts.verify_password(hashed, "s3cret")
    assert not mqttaccounts.verify_password(hashed, "s3cret ")
    salt = bytes(range(12))
    ours = mqttaccounts.hash_password("pw", salt)
    assert ours.startswith("$7$101$AAECAwQFBgcICQoL$")
    assert mqttaccounts.verify_password(ours, "pw")


def test_acl_and_conf_rendering() -> None:
    template = mqttaccounts.parse_acl_template(
        "pattern readwrite envwatch/session/%u\n\n# bridge\nuser $bridge\ntopic read env/#\n"
        "user $publisher\ntopic write env/#\n"
    )
    bridge = mqttaccounts.role_account(template, "bridge")
    assert (bridge.username, bridge.publish, bridge.subscribe) == (
        "envwatch-bridge",
        (),
        ("env/#",),
    )
    ent = mqttaccounts.Account("enterprise:e-1", "e-1", ("env/emission/x/e-1-g1",), ("a/e-1/#",))
    acl = mqttaccounts.render_acl(template, [bridge, ent])
    assert acl.splitlines() == [
        "pattern readwrite envwatch/session/%u",
        "",
        "# bridge",
        "user envwatch-bridge",
        "topic read env/#",
        "",
        "user e-1",
        "topic write env/emission/x/e-1-g1",
        "topic read a/e-1/#",
        "",
    ]
    with pytest.raises(ValueError, match="no role"):
        mqttaccounts.role_account(template, "gateway")
    conf = mqttaccounts.render_conf(
        "max_queued_messages 1000000\n# --- production-only begin\nlistener 1883\n"
        "# --- production-only end\n",
        port=1999,
        persistence_dir="/var/lib/m",
        password_file="/d/passwd",
        acl_file="/d/acl",
    ).splitlines()
    assert "listener 1883" not in conf
    assert conf[0] == "max_queued_messages 1000000"
    assert conf[1:] == [
        "listener 1999",
        "persistence_location /var/lib/m/",
        "allow_anonymous false",
        "password_file /d/passwd",
        "acl_file /d/acl",
        "use_username_as_clientid true",
    ]


def test_command_writes_the_files(tmp_path: Path) -> None:
    out = tmp_path / "mqtt"
    creds, stdout = deploy(out, 18830)
    catalog = load_catalog(CONFIG)
    assert {"bridge", "gateway", "publisher", "notifier"} <= set(creds)
    assert {f"enterprise:{e.id}" for e in catalog.enterprises} <= set(creds)
    assert creds[f"enterprise:{A}"]["username"] == A
    assert creds[f"enterprise:{A}"]["subscribe"] == [f"alerts/enterprise/{A}/#"]
    assert stat.S_IMODE((out / "credentials.json").stat().st_mode) == 0o600
    for account in creds.values():  # no password on stdout
        assert account["password"] not in stdout
    conf = (out / "mosquitto.conf").read_text()
    for line in (
        "listener 18830",
        "allow_anonymous false",
        f"password_file {out}/passwd",
        f"acl_file {out}/acl",
        "use_username_as_clientid true",
        "persistence true",
        "max_queued_messages 1000000",
        "max_queued_bytes 0",
    ):
        assert line in conf.splitlines(), line
    hashes = mqttaccounts.parse_passwd((out / "passwd").read_text())
    for account in creds.values():
        assert mqttaccounts.verify_password(hashes[account["username"]], account["password"])

    # a rerun keeps every password and password-file line
    passwd = (out / "passwd").read_text()
    again, _ = deploy(out, 18830)
    assert again == creds
    assert (out / "passwd").read_text() == passwd


def test_enterprise_publish_patterns_cover_its_samples(tmp_path: Path) -> None:
    creds, _ = deploy(tmp_path, 18831)
    catalog = load_catalog(CONFIG)
    specs = [s for s in specs_from_catalog(catalog, with_forecasts=False) if s.enterprise]
    assert {s.kind.value for s in specs} == {"emission", "monitor"}
    for spec in specs:
        topic = f"env/{spec.kind.value}/{spec.locality}/{spec.source}"
        own = creds[f"enterprise:{spec.enterprise}"]["publish"]
        assert any(mqtt.topic_matches_sub(p, topic) for p in own), topic
        for name, other in creds.items():
            if name.startswith("enterprise:") and name != f"enterprise:{spec.enterprise}":
                assert not any(mqtt.topic_matches_sub(p, topic) for p in other["publish"])


# --------------------------------------------------------------------------- real mosquitto


class Client:
    """A paho v5 client; ``refused`` when the CONNACK was a failure."""

    def __init__(self, port: int, username: str | None, password: str | None) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._connack = threading.Event()
        self.refused: bool | None = None
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda _c, _u, m: self.messages.append((m.topic, bytes(m.payload)))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self._connack.wait(10), "no CONNACK"

    def _on_connect(self, _c: object, _u: object, _f: object, rc: Any, _p: object) -> None:
        self.refused = bool(rc.is_failure)
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


@pytest.fixture(scope="module")
def broker() -> Iterator[tuple[int, dict[str, Any]]]:
    """mosquitto started with the command's files as they are. Not under pytest's tmp_path: as
    root, mosquitto drops to its own user, which cannot enter /tmp/pytest-of-root (0700)."""
    binary = embedded.mosquitto_binary()
    if binary is None:
        raise embedded.ServiceUnavailable(
            f"mosquitto is not installed; fix: {embedded.FIX_MOSQUITTO}"
        )
    with tempfile.TemporaryDirectory(prefix="envwatch-deploy-mqtt-") as tmp:
        out = Path(tmp)
        port = embedded.free_port()
        creds, _ = deploy(out, port)
        embedded.hand_to_broker_user(out)
        conf = out / "mosquitto.conf"
        proc = embedded.Process("mosquitto", [binary, "-c", str(conf)], out, port)
        proc.start()
        try:
            yield port, creds
        finally:
            proc.stop()


def connect(broker: tuple[int, dict[str, Any]], name: str, password: str | None = None) -> Client:
    port, creds = broker
    account = creds[name]
    client = Client(port, account["username"], password or account["password"])
    assert client.refused is False, f"{name} refused"
    return client


@pytest.mark.integration
def test_mosquitto_passwd_agrees() -> None:
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        raise embedded.ServiceUnavailable(
            f"mosquitto_passwd is not installed; fix: {embedded.FIX_MOSQUITTO}"
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "passwd"
        path.touch()
        subprocess.run([tool, "-b", str(path), "u", "pässword-1"], check=True)
        hashed = mqttaccounts.parse_passwd(path.read_text())["u"]
    assert hashed.startswith("$7$101$")
    assert mqttaccounts.verify_password(hashed, "pässword-1")


@pytest.mark.integration
def test_anonymous_and_wrong_password_are_refused(broker: tuple[int, dict[str, Any]]) -> None:
    port, creds = broker
    anonymous = Client(port, None, None)
    wrong = Client(port, A, creds[f"enterprise:{A}"]["password"] + "x")
    unknown = Client(port, "nobody", "nothing")
    for c in (anonymous, wrong, unknown):
        assert c.refused is True
        c.close()


@pytest.mark.integration
def test_an_enterprise_publishes_only_its_own_topics(broker: tuple[int, dict[str, Any]]) -> None:
    _, creds = broker
    bridge = connect(broker, "bridge")
    bridge.subscribe("env/#")
    a, b = connect(broker, f"enterprise:{A}"), connect(broker, f"enterprise:{B}")
    a_topics, b_topics = (creds[f"enterprise:{e}"]["publish"] for e in (A, B))
    try:
        a.publish(b_topics[0], b"forged by A")  # B's outlet
        b.publish(a_topics[0], b"forged by B")  # A's outlet
        a.publish("env/air/weifang/aq-wf-001", b"forged station")
        for t in a_topics:
            a.publish(t, b"own")
        for t in b_topics:
            b.publish(t, b"own")
        for t in (*a_topics, *b_topics):
            bridge.wait_for(t)
        time.sleep(0.3)
        assert sorted(bridge.messages) == sorted((t, b"own") for t in (*a_topics, *b_topics))
    finally:
        for c in (a, b, bridge):
            c.close()


@pytest.mark.integration
def test_an_enterprise_receives_only_its_own_alerts(broker: tuple[int, dict[str, Any]]) -> None:
    a, b = connect(broker, f"enterprise:{A}"), connect(broker, f"enterprise:{B}")
    notifier, publisher = connect(broker, "notifier"), connect(broker, "publisher")
    try:
        a.subscribe("#", f"alerts/enterprise/{B}/#", f"alerts/enterprise/{A}/#", "env/#")
        b.subscribe("#", f"alerts/enterprise/{A}/#", f"alerts/enterprise/{B}/#")
        publisher.publish("env/emission/weifang/e-wf-02-g1", b"sample")
        notifier.publish("alerts/locality/weifang/f0", b"locality alert")
        notifier.publish(f"alerts/enterprise/{B}/f2", b"B's alert")
        notifier.publish(f"alerts/enterprise/{A}/f1", b"A's alert")
        a.wait_for(f"alerts/enterprise/{A}/f1")
        b.wait_for(f"alerts/enterprise/{B}/f2")
        time.sleep(0.3)
        assert a.topics() == {f"alerts/enterprise/{A}/f1"}
        assert b.topics() == {f"alerts/enterprise/{B}/f2"}
    finally:
        for c in (a, b, notifier, publisher):
            c.close()
