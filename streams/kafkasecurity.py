"""The one place that turns the ``ENVWATCH_KAFKA_*`` security settings into Kafka client options.

Every Kafka client envwatch constructs goes through here (tests/streams/test_kafkasecurity.py
scans the sources for one that does not):

* ``AIOKafkaProducer`` / ``AIOKafkaConsumer`` / ``AIOKafkaAdminClient``:
  ``AIOKafkaProducer(bootstrap_servers=…, **client_kwargs(settings))``;
* Faust: ``faust.App(…, broker_credentials=broker_credentials(settings))``. Faust hands the
  credentials to every aiokafka client it builds (consumer, producer, topic creation) through
  ``faust.transport.drivers.aiokafka.credentials_to_aiokafka_auth``.

``settings`` is the process's :class:`~streams.settings.Settings` when it has one, else ``None``:
the section is then read from the environment (``KafkaSecuritySettings()``), so the alerts API
and the delivery tools, which have settings models of their own, use the same variables.

aiokafka's rules (aiokafka/client.py): ``SSL`` and ``SASL_SSL`` need an ``ssl_context``;
``aiokafka.helpers.create_ssl_context`` always verifies the broker's certificate and host name.
The SASL password is handed to aiokafka as a plain ``str`` (its API has no other form); it is
only ever revealed at that moment, never stored in this module's objects' ``repr``.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from streams.settings import KafkaSecuritySettings

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT


class KafkaSecurityError(ValueError):
    """The TLS material cannot be loaded (names the file, never a secret)."""


@dataclass(frozen=True)
class KafkaSecurity:
    """The resolved security of one process's Kafka clients."""

    protocol: str = "PLAINTEXT"
    mechanism: str = "SCRAM-SHA-512"
    username: str | None = None
    password: SecretStr | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    @classmethod
    def of(cls, settings: KafkaSecuritySettings | None = None) -> KafkaSecurity:
        s = settings if settings is not None else KafkaSecuritySettings()
        return cls(
            protocol=s.kafka_security_protocol,
            mechanism=s.kafka_sasl_mechanism,
            username=s.kafka_username,
            password=s.kafka_password,
            ca_file=s.kafka_ca_file,
            cert_file=s.kafka_cert_file,
            key_file=s.kafka_key_file,
        )

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client context that verifies the broker (``ca_file``, else the system CAs) and its
        host name, with the client certificate when given; None without TLS."""
        if not self.tls:
            return None
        from aiokafka.helpers import create_ssl_context

        try:
            context: ssl.SSLContext = create_ssl_context(
                cafile=str(self.ca_file) if self.ca_file else None,
                certfile=str(self.cert_file) if self.cert_file else None,
                keyfile=str(self.key_file) if self.key_file else None,
            )
            return context
        except (OSError, ssl.SSLError) as exc:
            files = ", ".join(
                f"{name}={path}"
                for name, path in (
                    ("ENVWATCH_KAFKA_CA_FILE", self.ca_file),
                    ("ENVWATCH_KAFKA_CERT_FILE", self.cert_file),
                    ("ENVWATCH_KAFKA_KEY_FILE", self.key_file),
                )
                if path is not None
            )
            raise KafkaSecurityError(
                f"Kafka TLS: cannot load {files or 'the system CAs'} "
                f"({type(exc).__name__}: {getattr(exc, 'strerror', None) or exc.args[-1]})"
            ) from None

    def _sasl_user(self) -> tuple[str, str]:
        if not self.username or self.password is None:
            raise KafkaSecurityError(
                f"ENVWATCH_KAFKA_SECURITY_PROTOCOL={self.protocol} needs ENVWATCH_KAFKA_USERNAME "
                "and ENVWATCH_KAFKA_PASSWORD (or ENVWATCH_KAFKA_PASSWORD_FILE)"
            )
        return self.username, self.password.get_secret_value()

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``AIOKafkaProducer``/``AIOKafkaConsumer``/``AIOKafkaAdminClient``."""
        kwargs: dict[str, Any] = {"security_protocol": self.protocol}
        context = self.ssl_context()
        if context is not None:
            kwargs["ssl_context"] = context
        if self.sasl:
            username, password = self._sasl_user()
            kwargs["sasl_mechanism"] = self.mechanism
            kwargs["sasl_plain_username"] = username
            kwargs["sasl_plain_password"] = password
        return kwargs

    def broker_credentials(self) -> CredentialsT | None:
        """Faust's ``broker_credentials`` (None: PLAINTEXT, Faust's default)."""
        import faust

        if self.sasl:
            username, password = self._sasl_user()
            # faust.SASLCredentials' repr shows the user name only (faust/auth.py)
            return faust.SASLCredentials(
                username=username,
                password=password,
                ssl_context=self.ssl_context(),
                mechanism=self.mechanism,
            )
        if self.tls:
            return faust.SSLCredentials(self.ssl_context())
        return None


def client_kwargs(settings: KafkaSecuritySettings | None = None) -> dict[str, Any]:
    """aiokafka client keyword arguments for ``settings`` (None: read from the environment)."""
    return KafkaSecurity.of(settings).client_kwargs()


def broker_credentials(settings: KafkaSecuritySettings | None = None) -> CredentialsT | None:
    """Faust ``broker_credentials`` for ``settings`` (None: read from the environment)."""
    return KafkaSecurity.of(settings).broker_credentials()
