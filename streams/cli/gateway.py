"""``envwatch gateway``: the HJ 212 TCP gateway as a production process.

Data loggers (数采仪) connect over TCP and upload HJ 212 packets; :class:`ingest.gateway.Gateway`
turns data uploads into samples. This module wires it to the rest of envwatch:

* MN → source from the catalogue (``rules.catalog.load_catalog(settings.config_dir)``): the
  catalogue's one MN index, :meth:`rules.catalog.Catalog.outlet_by_mn` (case-insensitive), gives
  the outlet and its enterprise → ``MnTarget(locality=enterprise.locality, source=outlet.id,
  kind=emission)`` (:func:`target_of`; the catalogue gives MNs to outlets only);
* samples are published to MQTT with QoS1 (``PahoPublisher``: a logger's packet is acknowledged
  only after the broker's PUBACK), on ``env/emission/{locality}/{outlet id}`` — the bridge takes
  them on to Kafka like any other sample;
* dead letters (bad CRC, bad length, unknown MN, unknown codes, garbage …) are produced to the
  Kafka ``dead-letter`` topic as :class:`streams.records.DeadLetter` with stage ``"gateway"``,
  the raw bytes, the peer address as origin and ``"<reason>: <detail>"`` as reason
  (:class:`KafkaDeadLetters`); the gateway acknowledges such a packet only once Kafka has it;
* passwords: an outlet's ``password`` in the catalogue is a reference (``{env: VARIABLE}`` or
  ``{file: PATH}``, :class:`rules.catalog.SecretRef`), read here once at start-up
  (:func:`resolve_secret`); a packet with another PW is refused. A reference that cannot be read
  refuses that MN's packets (``password_unavailable``) and is logged once, naming the reference;
  outlets without a password are accepted as before (unless ``ENVWATCH_GATEWAY_REQUIRE_PASSWORD``),
  logged once and counted (``outlets_without_password``, ``pw_unchecked``);
* descriptors: at start the RLIMIT_NOFILE soft limit is raised to the hard limit
  (:func:`ingest.gateway.raise_nofile_limit`) and connections are capped
  ``ENVWATCH_GATEWAY_FD_HEADROOM`` below it (:func:`ingest.gateway.connection_cap`), so the
  metrics port and new loggers always find a descriptor;
* counters (:meth:`Gateway.stats`) are logged periodically and, with
  ``ENVWATCH_GATEWAY_METRICS_PORT``, served as Prometheus text on ``/metrics``.

Settings: ``ENVWATCH_GATEWAY_*`` (host, port, idle timeout, limits: :func:`config_of`), plus the
MQTT, Kafka and catalogue settings (streams/settings.py; docs/hj212.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from pydantic import SecretStr

from streams.cli._app import app
from streams.settings import Settings

if TYPE_CHECKING:  # heavy imports stay out of ``envwatch --help``
    from aiokafka import AIOKafkaProducer

    from ingest.gateway import DeadLetter, Gateway, GatewayConfig, MnTarget
    from rules.catalog import Catalog, SecretRef

log = logging.getLogger(__name__)

__all__ = [
    "GatewayService",
    "KafkaDeadLetters",
    "SecretUnavailable",
    "config_of",
    "gateway",
    "resolve_secret",
    "target_of",
]

#: outlet id → (its password, or why it could not be read)
Passwords = Mapping[str, "SecretStr | str"]


class SecretUnavailable(Exception):
    """A secret reference that cannot be read; the message names the reference, never a value."""


def resolve_secret(ref: SecretRef, base: Path | None = None) -> SecretStr:
    """The secret ``ref`` points at: the environment variable's value, or the file's content
    without its final newline (a relative path is relative to ``base``, the catalogue
    directory). Raises :class:`SecretUnavailable` (unset, empty, unreadable)."""
    if ref.env is not None:
        value = os.environ.get(ref.env)
        if not value:
            raise SecretUnavailable(f"environment variable {ref.env} is not set or empty")
        return SecretStr(value)
    assert ref.file is not None
    path = Path(ref.file)
    if not path.is_absolute() and base is not None:
        path = base / path
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretUnavailable(f"file {path} cannot be read ({type(exc).__name__})") from None
    value = text.removesuffix("\n").removesuffix("\r")
    if not value:
        raise SecretUnavailable(f"file {path} is empty")
    return SecretStr(value)


def target_of(catalog: Catalog, mn: str, passwords: Passwords | None = None) -> MnTarget | None:
    """Where a logger's packets go: the outlet with this MN in the catalogue
    (:meth:`~rules.catalog.Catalog.outlet_by_mn`, case-insensitive) as an emission source of its
    enterprise's locality, with its password from ``passwords`` (outlet id → the password, or
    the text saying why it could not be read); None for an MN the catalogue does not know
    (dead-lettered)."""
    from ingest.gateway import MnTarget
    from rules.factors import Kind

    found = catalog.outlet_by_mn(mn)
    if found is None:
        return None
    enterprise, outlet = found
    secret = (passwords or {}).get(outlet.id)
    return MnTarget(
        enterprise.locality,
        outlet.id,
        Kind.EMISSION,
        password=secret if isinstance(secret, SecretStr) else None,
        password_problem=secret if isinstance(secret, str) else None,
    )


def config_of(settings: Settings, max_connections: int | None = None) -> GatewayConfig:
    """The gateway's configuration from the settings (``max_connections``: the cap in force)."""
    from ingest.gateway import GatewayConfig

    s = settings
    return GatewayConfig(
        host=s.gateway_host,
        port=s.gateway_port,
        idle_timeout=s.gateway_idle_timeout,
        write_timeout=s.gateway_write_timeout,
        packet_timeout=s.gateway_packet_timeout,
        max_bytes_per_second=s.gateway_max_bytes_per_second,
        max_connections=max_connections or s.gateway_max_connections,
        max_connections_per_peer=s.gateway_max_connections_per_peer,
        evict_idle_after=s.gateway_evict_idle_after,
        max_dead_letters_per_connection=s.gateway_max_dead_letters_per_connection,
        max_dead_letters_per_peer=s.gateway_max_dead_letters_per_peer,
        peer_window=s.gateway_peer_window,
        ban_seconds=s.gateway_ban_seconds,
        require_password=s.gateway_require_password,
    )


class KafkaDeadLetters:
    """The gateway's dead-letter sink: one Kafka record per item, awaited (raises on failure)."""

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic

    async def __call__(self, item: DeadLetter) -> None:
        from streams.records import DeadLetter as DeadLetterRecord

        record = DeadLetterRecord.build(
            "gateway",
            f"{item.reason.value}: {item.detail}",
            item.raw,
            origin=f"tcp://{item.peer}",
            at=datetime.now(UTC).isoformat(),
        )
        key = (item.mn or item.peer).encode()
        await self._producer.send_and_wait(self._topic, record.to_bytes(), key=key)


class GatewayService:
    """Gateway + MQTT publisher + Kafka dead letters + metrics; ``await run()`` until ``stop()``."""

    def __init__(self, settings: Settings, catalog: Catalog | None = None) -> None:
        from rules.catalog import load_catalog

        self.s = settings
        if catalog is None:
            if settings.config_dir is None:
                raise typer.BadParameter("the gateway needs a catalogue (ENVWATCH_CONFIG_DIR)")
            catalog = load_catalog(settings.config_dir)
        self.catalog = catalog
        self.gateway: Gateway | None = None
        self.metrics_address: tuple[str, int] | None = None
        self.nofile: int | None = None  # the descriptor soft limit once started
        self._stop = asyncio.Event()
        self.passwords: dict[str, SecretStr | str] = {}
        unchecked: list[str] = []
        for enterprise in catalog.enterprises:
            for outlet in enterprise.outlets:
                if outlet.password is None:
                    unchecked.append(outlet.id)
                    continue
                try:
                    self.passwords[outlet.id] = resolve_secret(outlet.password, settings.config_dir)
                except SecretUnavailable as exc:
                    self.passwords[outlet.id] = str(exc)
                    log.error(
                        "gateway: the HJ 212 password of outlet %s (%s) cannot be read: %s; its "
                        "packets are refused",
                        outlet.id,
                        outlet.password,
                        exc,
                    )
        self.outlets_without_password = len(unchecked)
        self.passwords_unavailable = sum(isinstance(v, str) for v in self.passwords.values())
        if unchecked:
            log.warning(
                "gateway: %d outlet(s) have no HJ 212 password in the catalogue, %s: %s",
                len(unchecked),
                "their packets are refused (ENVWATCH_GATEWAY_REQUIRE_PASSWORD)"
                if settings.gateway_require_password
                else "their PW is not checked",
                ", ".join(unchecked),
            )

    def _lookup(self, mn: str) -> MnTarget | None:
        return target_of(self.catalog, mn, self.passwords)

    def stop(self) -> None:
        self._stop.set()

    @property
    def address(self) -> tuple[str, int]:
        """Where the gateway listens (the real port when the setting was 0)."""
        if self.gateway is None:
            raise RuntimeError("gateway is not started")
        return self.gateway.address

    async def run(self, *, ready: asyncio.Event | None = None) -> None:
        from aiokafka import AIOKafkaProducer

        from ingest.bridge import serve_metrics
        from ingest.gateway import Gateway, PahoPublisher, connection_cap, raise_nofile_limit
        from streams import kafkasecurity, topics

        s = self.s
        self.nofile, _hard = raise_nofile_limit()
        cap = connection_cap(s.gateway_max_connections, self.nofile, s.gateway_fd_headroom)
        if cap < s.gateway_max_connections:
            log.info(
                "gateway: at most %d connections (descriptor limit %d, %d kept free)",
                cap,
                self.nofile,
                s.gateway_fd_headroom,
            )
        await topics.ensure_topics(s.kafka, s.partitions, s.topic_prefix, security=s)
        producer = AIOKafkaProducer(
            bootstrap_servers=topics.bootstrap_of(s.kafka),
            acks="all",
            linger_ms=2,
            **kafkasecurity.client_kwargs(s),
        )
        await producer.start()
        auth = s.mqtt_auth()  # account, password (or its file) and TLS: docs/mqtt.md §4
        publisher = PahoPublisher(
            s.mqtt_host,
            s.mqtt_port,
            client_id=s.gateway_mqtt_client_id,
            username=auth.username,
            password=auth.password,
            tls=auth.tls,
        )
        server: asyncio.Server | None = None
        try:
            await publisher.connect()
            self.gateway = Gateway(
                self._lookup,
                publisher.publish,
                KafkaDeadLetters(producer, topics.name(topics.DEAD_LETTER, s.topic_prefix)),
                config=config_of(s, cap),
            )
            if s.gateway_metrics_port is not None:
                server = await serve_metrics(
                    self.render_metrics, s.bridge_metrics_host, s.gateway_metrics_port
                )
                host, port = server.sockets[0].getsockname()[:2]
                self.metrics_address = (str(host), int(port))
            async with self.gateway:
                log.info(
                    "gateway: %d MNs from the catalogue; listening on %s:%d",
                    sum(len(e.outlets) for e in self.catalog.enterprises),
                    *self.gateway.address,
                )
                if ready is not None:
                    ready.set()
                while not self._stop.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), s.bridge_stats_interval)
                    log.info("gateway: %s", self.gateway.stats())
        finally:
            if server is not None:
                server.close()
            with contextlib.suppress(Exception):
                await publisher.close()
            await producer.stop()

    def render_metrics(self) -> bytes:
        from ingest.bridge import prometheus_text
        from ingest.gateway import GAUGES

        stats = self.gateway.stats() if self.gateway is not None else {}
        stats["outlets_without_password"] = self.outlets_without_password
        stats["passwords_unavailable"] = self.passwords_unavailable
        if self.nofile is not None:
            stats["nofile_limit"] = self.nofile
        gauges = GAUGES | {"outlets_without_password", "passwords_unavailable", "nofile_limit"}
        metrics: list[tuple[str, str, str, float]] = []
        for key, value in sorted(stats.items()):
            name = "envwatch_gateway_" + re.sub(r"[^a-zA-Z0-9_]", "_", key)
            if key in gauges:
                metrics.append((name, "gauge", f"gateway gauge {key}", value))
            else:
                metrics.append((name + "_total", "counter", f"gateway counter {key}", value))
        return prometheus_text(metrics)


@app.command()
def gateway(
    log_level: str = typer.Option("info", help="debug, info, warning, error"),
    host: str | None = typer.Option(None, help="listen address (default ENVWATCH_GATEWAY_HOST)"),
    port: int | None = typer.Option(None, help="TCP port (default ENVWATCH_GATEWAY_PORT)"),
    config_dir: Path | None = typer.Option(
        None, help="catalogue directory (default ENVWATCH_CONFIG_DIR)"
    ),
) -> None:
    """Run the HJ 212 TCP gateway: loggers → samples on MQTT (QoS1), bad packets → dead-letter."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    overrides: dict[str, object] = {}
    if host is not None:
        overrides["gateway_host"] = host
    if port is not None:
        overrides["gateway_port"] = port
    if config_dir is not None:
        overrides["config_dir"] = config_dir
    settings = Settings(**overrides)  # type: ignore[arg-type]  # validated by pydantic
    try:  # a missing CA, certificate, key or password file: one line, exit 2 (docs/mqtt.md §4)
        settings.mqtt_auth()
    except ValueError as exc:
        typer.echo(f"envwatch gateway: {exc}", err=True)
        raise typer.Exit(2) from None

    async def main() -> None:
        service = GatewayService(settings)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, service.stop)
        await service.run()

    asyncio.run(main())
