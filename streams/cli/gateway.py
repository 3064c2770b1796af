"""``envwatch gateway``: the HJ 212 TCP gateway as a production process.

Data loggers (数采仪) connect over TCP and upload HJ 212 packets; :class:`ingest.gateway.Gateway`
turns data uploads into samples. This module wires it to the rest of envwatch:

* MN → source from the catalogue (``rules.config.load_catalog(settings.config_dir)``): the
  catalogue's one MN index, :meth:`rules.config.Catalog.outlet_by_mn` (case-insensitive), gives
  the outlet and its enterprise → ``MnTarget(locality=enterprise.locality, source=outlet.id,
  kind=emission)`` (:func:`target_of`; the catalogue gives MNs to outlets only);
* samples are published to MQTT with QoS1 (``PahoPublisher``: a logger's packet is acknowledged
  only after the broker's PUBACK), on ``env/emission/{locality}/{outlet id}`` — the bridge takes
  them on to Kafka like any other sample;
* dead letters (bad CRC, bad length, unknown MN, unknown codes, garbage …) are produced to the
  Kafka ``dead-letter`` topic as :class:`streams.records.DeadLetter` with stage ``"gateway"``,
  the raw bytes, the peer address as origin and ``"<reason>: <detail>"`` as reason
  (:class:`KafkaDeadLetters`); the gateway acknowledges such a packet only once Kafka has it;
* counters (:meth:`Gateway.stats`) are logged periodically and, with
  ``ENVWATCH_GATEWAY_METRICS_PORT``, served as Prometheus text on ``/metrics``.

Settings: ``ENVWATCH_GATEWAY_HOST/PORT/IDLE_TIMEOUT/MQTT_CLIENT_ID/METRICS_PORT`` plus the MQTT,
Kafka and catalogue settings (streams/settings.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from streams.cli._app import app
from streams.settings import Settings

if TYPE_CHECKING:  # heavy imports stay out of ``envwatch --help``
    from aiokafka import AIOKafkaProducer

    from ingest.gateway import DeadLetter, Gateway, MnTarget
    from rules.config import Catalog

log = logging.getLogger(__name__)

__all__ = ["GatewayService", "KafkaDeadLetters", "gateway", "target_of"]


def target_of(catalog: Catalog, mn: str) -> MnTarget | None:
    """Where a logger's packets go: the outlet with this MN in the catalogue
    (:meth:`~rules.config.Catalog.outlet_by_mn`, case-insensitive) as an emission source of its
    enterprise's locality; None for an MN the catalogue does not know (dead-lettered)."""
    from ingest.gateway import MnTarget
    from rules.factors import Kind

    found = catalog.outlet_by_mn(mn)
    if found is None:
        return None
    enterprise, outlet = found
    return MnTarget(enterprise.locality, outlet.id, Kind.EMISSION)


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
        from rules.config import load_catalog

        self.s = settings
        if catalog is None:
            if settings.config_dir is None:
                raise typer.BadParameter("the gateway needs a catalogue (ENVWATCH_CONFIG_DIR)")
            catalog = load_catalog(settings.config_dir)
        self.catalog = catalog
        self.gateway: Gateway | None = None
        self.metrics_address: tuple[str, int] | None = None
        self._stop = asyncio.Event()

    def _lookup(self, mn: str) -> MnTarget | None:
        return target_of(self.catalog, mn)

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
        from ingest.gateway import Gateway, GatewayConfig, PahoPublisher
        from streams import topics

        s = self.s
        await topics.ensure_topics(s.kafka, s.partitions, s.topic_prefix)
        producer = AIOKafkaProducer(
            bootstrap_servers=topics.bootstrap_of(s.kafka), acks="all", linger_ms=2
        )
        await producer.start()
        publisher = PahoPublisher(
            s.mqtt_host,
            s.mqtt_port,
            client_id=s.gateway_mqtt_client_id,
            username=s.mqtt_username,
            password=s.mqtt_password.get_secret_value() if s.mqtt_password else None,
        )
        server: asyncio.Server | None = None
        try:
            await publisher.connect()
            self.gateway = Gateway(
                self._lookup,
                publisher.publish,
                KafkaDeadLetters(producer, topics.name(topics.DEAD_LETTER, s.topic_prefix)),
                config=GatewayConfig(
                    host=s.gateway_host, port=s.gateway_port, idle_timeout=s.gateway_idle_timeout
                ),
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

        stats = self.gateway.stats() if self.gateway is not None else {}
        metrics: list[tuple[str, str, str, float]] = []
        for key, value in sorted(stats.items()):
            name = "envwatch_gateway_" + re.sub(r"[^a-zA-Z0-9_]", "_", key)
            if key == "connections_open":
                metrics.append((name, "gauge", "logger connections open now", value))
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

    async def main() -> None:
        service = GatewayService(settings)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, service.stop)
        await service.run()

    asyncio.run(main())
