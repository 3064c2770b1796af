"""Kafka over TLS with the settings envwatch's clients use (streams/kafkasecurity.py), live.

The next-best real thing to a TLS Kafka broker: Tansu (the Kafka protocol broker of the test
suite) behind a TLS-terminating proxy made here (asyncio + ssl, a CA and server certificate
from ``trustme``). Tansu 0.6.0 lists ``--cert``/``--key`` but they cannot be given together and
``--cert`` alone opens no TLS listener (tried: no handshake), so TLS is terminated in front of
it. Tansu advertises the proxy's address in its metadata (``--advertised-listener-url``), so
every connection a client makes after bootstrapping also goes through TLS.

Shown: a producer and a consumer built with ``client_kwargs(settings)`` for
``ENVWATCH_KAFKA_SECURITY_PROTOCOL=SSL`` and the test CA round-trip a record; a client trusting
another CA, and a plain client, do not get through. SASL/SCRAM is not proven live (see
test_kafkasecurity.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError
from pydantic import SecretStr

from streams import embedded, kafkasecurity
from streams.settings import Settings

pytestmark = pytest.mark.integration


@contextlib.contextmanager
def tansu_advertising(advertised_port: int) -> Iterator[int]:
    """Tansu listening on a port of its own, advertising ``127.0.0.1:advertised_port``."""
    binary = embedded.tansu_binary()
    port = embedded.free_port()
    with tempfile.TemporaryDirectory(prefix="envwatch-tansu-tls-") as tmp:
        argv = [
            binary,
            "broker",
            "--listener-url",
            f"tcp://127.0.0.1:{port}",
            "--advertised-listener-url",
            f"tcp://127.0.0.1:{advertised_port}",
            "--storage-engine",
            "memory://tansu/",
        ]
        proc = embedded.Process("tansu", argv, Path(tmp), port, env={"RUST_LOG": "warn"})
        proc.start()
        try:
            yield port
        finally:
            proc.stop()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def tls_proxy(listen_port: int, target_port: int, context: ssl.SSLContext) -> asyncio.Server:
    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            broker_r, broker_w = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(_pipe(client_r, broker_w), _pipe(broker_r, client_w))

    return await asyncio.start_server(handle, "127.0.0.1", listen_port, ssl=context)


@pytest.fixture
def tls_material(tmp_path: Path) -> tuple[ssl.SSLContext, Path, Path]:
    """(server context, the CA that signed it, an unrelated CA) as PEM files."""
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.configure_cert(context)
    good, other = tmp_path / "ca.pem", tmp_path / "other-ca.pem"
    ca.cert_pem.write_to_path(str(good))
    trustme.CA().cert_pem.write_to_path(str(other))
    return context, good, other


def test_a_record_round_trips_over_tls_and_a_wrong_ca_or_plain_client_is_refused(
    tls_material: tuple[ssl.SSLContext, Path, Path],
) -> None:
    server_context, ca_file, other_ca = tls_material
    proxy_port = embedded.free_port()
    tls = Settings(kafka_security_protocol="SSL", kafka_ca_file=ca_file)
    wrong = Settings(kafka_security_protocol="SSL", kafka_ca_file=other_ca)
    bootstrap = f"127.0.0.1:{proxy_port}"

    async def refused(settings: Settings) -> bool:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            request_timeout_ms=5000,
            **kafkasecurity.client_kwargs(settings),
        )
        try:
            await asyncio.wait_for(producer.start(), 30)
        except KafkaConnectionError:
            return True
        finally:
            await producer.stop()
        return False

    async def scenario() -> tuple[bytes, bool, bool]:
        proxy = await tls_proxy(proxy_port, broker_port, server_context)
        try:
            # the topic made over TLS too, by an admin client with the helper's settings (not
            # left to auto-creation, which a loaded broker may not finish within the producer's
            # metadata wait)
            admin = AIOKafkaAdminClient(
                bootstrap_servers=bootstrap, **kafkasecurity.client_kwargs(tls)
            )
            await asyncio.wait_for(admin.start(), 30)
            try:
                await admin.create_topics([NewTopic("tls-check", 1, 1)])
            finally:
                await admin.close()
            producer = AIOKafkaProducer(
                bootstrap_servers=bootstrap, acks="all", **kafkasecurity.client_kwargs(tls)
            )
            await asyncio.wait_for(producer.start(), 30)
            try:
                await producer.send_and_wait("tls-check", b"reading over TLS", key=b"k")
            finally:
                await producer.stop()
            consumer = AIOKafkaConsumer(
                "tls-check",
                bootstrap_servers=bootstrap,
                auto_offset_reset="earliest",
                **kafkasecurity.client_kwargs(tls),
            )
            await asyncio.wait_for(consumer.start(), 30)
            try:
                record = await asyncio.wait_for(consumer.getone(), 30)
            finally:
                await consumer.stop()
            return record.value or b"", await refused(wrong), await refused(Settings())
        finally:
            proxy.close()
            await proxy.wait_closed()

    with tansu_advertising(proxy_port) as broker_port:
        value, wrong_ca_refused, plain_refused = asyncio.run(scenario())
    assert value == b"reading over TLS"
    assert wrong_ca_refused, "a client trusting another CA connected"
    assert plain_refused, "a plain client got through the TLS listener"


def test_a_failing_sasl_connection_logs_no_password(
    kafka_broker: embedded.KafkaBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """A SCRAM client against the test suite's Tansu, which does not authenticate and answers
    the SASL handshake with UnsupportedSaslMechanism: the client fails to connect, with every
    client log at DEBUG, and the password is in no log record and not in the error. The
    next-best real thing to a broker that rejects the password."""
    password = "never-log-me-4e7a-scram"  # invented
    s = Settings(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_username="envwatch-bridge",
        kafka_password=SecretStr(password),
    )

    async def attempt() -> str:
        producer = AIOKafkaProducer(
            bootstrap_servers=kafka_broker.bootstrap,
            request_timeout_ms=5000,
            **kafkasecurity.client_kwargs(s),
        )
        try:
            await asyncio.wait_for(producer.start(), 30)
            await producer.send_and_wait("sasl-log-check", b"x")
        except Exception as exc:
            return f"{type(exc).__name__}: {exc!r} {exc}"
        finally:
            await producer.stop()
        return ""

    with caplog.at_level(logging.DEBUG):
        error = asyncio.run(attempt())
    assert "KafkaConnectionError" in error
    assert any("SaslMechanism" in r.getMessage() for r in caplog.records)
    assert password not in error
    for record in caplog.records:
        assert password not in record.getMessage()
        assert password not in repr(record.args)
