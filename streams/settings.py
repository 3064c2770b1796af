"""Settings of the stream workers, the bridge and the sink (one frozen model, env-driven).

Every setting can be given as an environment variable ``ENVWATCH_<NAME>`` (e.g.
``ENVWATCH_KAFKA=kafka://10.0.0.5:9092``). Secrets are ``SecretStr`` and masked when printed;
each can instead be read from a file named by ``ENVWATCH_<NAME>_FILE`` (alerts.secretfiles).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from alerts.secretfiles import SecretFilesMixin

KafkaProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
KafkaMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]

if TYPE_CHECKING:
    from ingest.publisher import MqttAuth


class KafkaSecuritySettings(SecretFilesMixin):
    """How every envwatch Kafka client authenticates and encrypts (docs/streams.md "Security").

    Read by streams.kafkasecurity, the one place that turns it into aiokafka and Faust settings.
    Every process (workers, bridge, gateway, alerts API, deliveries) reads the same
    ``ENVWATCH_KAFKA_*`` variables, so this section is its own model as well as part of
    :class:`Settings`.
    """

    model_config = SettingsConfigDict(
        env_prefix="ENVWATCH_", frozen=True, extra="ignore", hide_input_in_errors=True
    )

    kafka_security_protocol: KafkaProtocol = Field(
        "PLAINTEXT",
        description="PLAINTEXT (default; a trusted network only), SSL, SASL_PLAINTEXT or "
        "SASL_SSL (TLS and a SCRAM user: the production stack)",
    )
    kafka_sasl_mechanism: KafkaMechanism = Field(
        "SCRAM-SHA-512", description="SASL mechanism for SASL_PLAINTEXT and SASL_SSL"
    )
    kafka_username: str | None = Field(None, description="SASL user (the Kafka principal)")
    kafka_password: SecretStr | None = Field(
        None, description="SASL password (or ENVWATCH_KAFKA_PASSWORD_FILE)"
    )
    kafka_ca_file: Path | None = Field(
        None, description="PEM CA bundle that signed the brokers' certificates (None: system CAs)"
    )
    kafka_cert_file: Path | None = Field(
        None, description="PEM client certificate (mutual TLS; may also hold the key)"
    )
    kafka_key_file: Path | None = Field(None, description="PEM private key of kafka_cert_file")

    @model_validator(mode="after")
    def _consistent_kafka_security(self) -> KafkaSecuritySettings:
        protocol = self.kafka_security_protocol
        tls = protocol in ("SSL", "SASL_SSL")
        sasl = protocol.startswith("SASL_")
        given = [
            name
            for name in ("kafka_ca_file", "kafka_cert_file", "kafka_key_file")
            if getattr(self, name) is not None
        ]
        if given and not tls:
            names = ", ".join(f"ENVWATCH_{n.upper()}" for n in given)
            raise ValueError(
                f"{names} set but ENVWATCH_KAFKA_SECURITY_PROTOCOL={protocol} does not use TLS "
                "(use SSL or SASL_SSL)"
            )
        if self.kafka_key_file is not None and self.kafka_cert_file is None:
            raise ValueError("ENVWATCH_KAFKA_KEY_FILE set without ENVWATCH_KAFKA_CERT_FILE")
        if sasl and (not self.kafka_username or self.kafka_password is None):
            raise ValueError(
                f"ENVWATCH_KAFKA_SECURITY_PROTOCOL={protocol} needs ENVWATCH_KAFKA_USERNAME and "
                "ENVWATCH_KAFKA_PASSWORD (or ENVWATCH_KAFKA_PASSWORD_FILE)"
            )
        if not sasl and (self.kafka_username or self.kafka_password is not None):
            raise ValueError(
                f"ENVWATCH_KAFKA_USERNAME/PASSWORD set but ENVWATCH_KAFKA_SECURITY_PROTOCOL="
                f"{protocol} does not authenticate with SASL (use SASL_SSL)"
            )
        return self


class Settings(KafkaSecuritySettings):
    model_config = SettingsConfigDict(env_prefix="ENVWATCH_", frozen=True, extra="ignore")

    # --- Kafka / Faust
    kafka: str = Field(
        "kafka://127.0.0.1:9092", description="Kafka bootstrap URL (kafka://host:port)"
    )
    app_id: str = Field(
        "envwatch", description="Faust application id (consumer group, changelog prefix)"
    )
    partitions: int = Field(
        4, ge=1, description="partitions of the external topics envwatch creates"
    )
    topic_prefix: str = Field(
        "", description="prefix for every topic (lets tests share one broker)"
    )
    session_timeout: float = Field(30.0, gt=0, description="Kafka consumer session timeout, s")
    rebalance_timeout: float = Field(30.0, gt=0, description="Kafka rebalance timeout, s")
    heartbeat_interval: float = Field(3.0, gt=0, description="Kafka heartbeat interval, s")
    data_dir: Path = Field(Path("var/faust"), description="Faust table storage directory")
    fetch_max_wait_ms: int = Field(
        100,
        ge=1,
        description="longest a worker's fetch waits for data (Faust hard-codes 1500 ms; a broker "
        "that does not answer a long poll early, as Tansu here, adds that much latency per hop)",
    )
    store: str = Field("memory://", description="Faust table store (memory:// or rocksdb://)")

    # --- which stages this worker runs (several processes can split them)
    agents: str = Field(
        "evaluate,locality,store,notify,deadletter",
        description="comma-separated stages: evaluate (readings → evaluations), locality (city "
        "values, warnings, alerts), store (evaluations → InfluxDB), notify (alert-events → outbox), deadletter (dead letters → dead_letter points)",
    )

    # --- evaluation
    config_dir: Path | None = Field(
        Path("deploy/config"), description="catalogue directory (None: evaluate any source)"
    )
    config_poll: float = Field(
        5.0, gt=0, description="s between checks for catalogue and alert-rules changes"
    )
    alert_rules: Path | None = Field(
        None,
        description="alert rules YAML (docs/alert-rules.md); default: alert-rules.yaml in the "
        "catalogue directory when present, else the built-in rules",
    )
    batch_size: int = Field(
        500,
        ge=1,
        description="records per evaluation batch; a record is one sample or an envelope of "
        "several (tens under load: bench_worker), so a loaded batch holds thousands of samples",
    )
    batch_within: float = Field(
        0.05, gt=0, description="s the evaluate stage waits for a batch of readings to fill"
    )
    # The locality and notify stages read merged records (a few per evaluate batch) and sit on
    # the publish→webhook path: they wait less. 10 ms instead of 50 for every stage took that
    # p99 at 1 000 samples/s from 0.93 s to 0.67 s (one bench_latency run each), but cut the
    # evaluate stage's backlog rate by a fifth (smaller batches, the same flush per batch).
    downstream_within: float = Field(
        0.01, gt=0, description="s the locality and notify stages wait for a batch to fill"
    )
    checkpoint_interval: float = Field(5.0, gt=0, description="s between state snapshots")
    gc_threshold: int = Field(
        50_000,
        ge=0,
        description="worker processes: allocations between two young-generation garbage "
        "collections (Python's default 700), with the start-up objects frozen; 0 leaves the "
        "collector as Python sets it (streams/gctune.py)",
    )
    max_future_s: float = Field(3600, ge=0, description="reject samples this far after receipt")
    max_past_days: float = Field(400, ge=0, description="reject samples this far before receipt")

    # --- alerts
    alerts_log: Path | None = Field(
        None, description="append every alert/warning transition here (JSON lines)"
    )
    outbox_path: Path | None = Field(
        Path("var/outbox.db"),
        description="notifications on (any path; pending deliveries live in the Kafka topic "
        "notify-ledger, docs/notifications.md §4) or off (None)",
    )

    # --- MQTT
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_username: str | None = Field(
        None, description="MQTT account (`envwatch deploy mqtt`); None: anonymous"
    )
    mqtt_password: SecretStr | None = Field(
        None, description="MQTT password (or ENVWATCH_MQTT_PASSWORD_FILE)"
    )
    mqtt_tls_ca_file: Path | None = Field(
        None,
        description="TLS to the broker when set: verify its certificate and host name against "
        "this CA (PEM)",
    )
    mqtt_tls_cert_file: Path | None = Field(
        None, description="client certificate (PEM) for a broker that asks for one"
    )
    mqtt_tls_key_file: Path | None = Field(
        None, description="private key of the client certificate"
    )
    mqtt_topic: str = Field("env/#", description="what the bridge subscribes to")
    mqtt_share_group: str | None = Field(
        None,
        description="MQTT v5 shared-subscription group, e.g. envwatch-bridge, so several bridges "
        "split one topic filter. Default None (a plain subscription): mosquitto does not persist "
        "shared subscriptions, so across a broker restart a shared group can miss messages "
        "(docs/mqtt.md §5); to scale without that limit give bridges disjoint ENVWATCH_MQTT_TOPIC "
        "filters, e.g. one locality each.",
    )
    mqtt_client_id: str = Field(
        "envwatch-bridge-1", description="stable id: the broker keeps its session"
    )
    mqtt_session_expiry: int = Field(
        86400, ge=0, description="s the broker keeps the bridge's session"
    )

    # --- InfluxDB sink
    influx_url: str | None = Field(None, description="InfluxDB URL; None writes only to the spool")
    influx_token: SecretStr | None = None
    influx_org: str = "envwatch"
    influx_bucket: str = "envwatch"
    influx_database: str | None = Field(
        None, description="InfluxDB 3.x database (instead of org/bucket)"
    )
    influx_ca_file: Path | None = Field(
        None, description="CA bundle (PEM) that verifies an https:// ENVWATCH_INFLUX_URL"
    )
    influx_api: Literal["v2", "v3"] = Field(
        "v2",
        description="write endpoint: v2 (/api/v2/write; InfluxDB 2, and 3 with bucket = "
        "database) or v3 (/api/v3/write_lp?accept_partial=false, InfluxDB 3 native)",
    )
    influx_writer: Literal["client", "httpx"] = Field(
        "client",
        description="how the sink writes: client (influxdb-client, the default for v2) or httpx "
        "(a bare POST; always used for v3, which influxdb-client does not speak); docs/sink.md",
    )
    influx_gzip: bool = Field(False, description="gzip request bodies (worth it over slow links)")
    influx_timeout_ms: int = Field(10_000, ge=1, description="ms a write may take")
    sink_batch_size: int = Field(5000, ge=1, description="lines per write")
    sink_flush_interval: float = Field(1.0, gt=0, description="s before a partial batch is written")
    spool_dir: Path = Field(
        Path("var/spool"), description="line-protocol spool (outage buffer / output)"
    )
    sink_health_interval: float = Field(
        5.0, gt=0, description="s between checks of the sink for the operator's store alert"
    )
    sink_instance: str | None = Field(
        None, description="name of this worker in the store alert (default: host.<spool hash>)"
    )

    # --- ingest: MQTT→Kafka bridge and HJ 212 gateway (section owned by ingest/bridge.py and
    # streams/cli/gateway.py; append-only; documented in docs/mqtt.md)
    bridge_metrics_port: int | None = Field(
        None, ge=0, le=65535, description="bridge Prometheus /metrics port (None: off, 0: any)"
    )
    bridge_metrics_host: str = Field("127.0.0.1", description="address the metrics port binds")
    bridge_stats_interval: float = Field(10.0, gt=0, description="s between bridge counter logs")
    bridge_kafka_timeout: float = Field(
        40.0, gt=0, description="s a produce may retry before the bridge halts and reconnects"
    )
    bridge_kafka_idempotence: bool = Field(
        False,
        description="idempotent producer: closes the last reorder window (needs broker support; "
        "Tansu has none)",
    )
    gateway_host: str = Field(
        "127.0.0.1",
        description="HJ 212 gateway listen address (loopback unless configured; 0.0.0.0: every "
        "interface)",
    )
    gateway_port: int = Field(
        9212, ge=0, le=65535, description="HJ 212 gateway TCP port (operator default; 0: any)"
    )
    gateway_idle_timeout: float = Field(
        1800.0, gt=0, description="s before an idle or half-open logger connection is closed"
    )
    gateway_mqtt_client_id: str = Field(
        "envwatch-gateway-1", description="MQTT client id of the gateway's publisher"
    )
    bridge_session_check: bool = Field(
        True,
        description="keep a marker message unacknowledged in the bridge's MQTT session and "
        "count the session as lost when it does not come back on a reconnect (MQTT v5 brokers; "
        "docs/mqtt.md §5)",
    )
    gateway_metrics_port: int | None = Field(
        None, ge=0, le=65535, description="gateway Prometheus /metrics port (None: off, 0: any)"
    )
    # HJ 212 gateway limits (docs/hj212.md "Limits"; envwatch's choices [MEM] unless cited)
    gateway_packet_timeout: float = Field(
        30.0, gt=0, description="s a started packet may take to arrive (slowloris: closed)"
    )
    gateway_max_bytes_per_second: int = Field(
        1 << 20, ge=0, description="bytes read per second per connection at most (0: no limit)"
    )
    gateway_max_connections: int = Field(
        10_000, ge=1, description="logger connections at once (lowered below the fd limit)"
    )
    gateway_max_connections_per_peer: int = Field(
        256, ge=0, description="connections at once from one address (0: no limit)"
    )
    gateway_fd_headroom: int = Field(
        256, ge=0, description="descriptors kept free below RLIMIT_NOFILE when capping connections"
    )
    gateway_evict_idle_after: float = Field(
        60.0, ge=0, description="s idle before an authenticated connection may be evicted"
    )
    gateway_max_dead_letters_per_connection: int = Field(
        100, ge=0, description="dead letters a connection may cause before it is closed (0: off)"
    )
    gateway_max_dead_letters_per_peer: int = Field(
        1000, ge=0, description="dead letters an address may cause per window before a ban (0: off)"
    )
    gateway_peer_window: float = Field(
        600.0, gt=0, description="s over which an address's dead letters are counted"
    )
    gateway_ban_seconds: float = Field(
        60.0, ge=0, description="s an address is refused after its dead-letter limit"
    )
    gateway_require_password: bool = Field(
        False, description="refuse loggers whose outlet has no HJ 212 password in the catalogue"
    )
    gateway_write_timeout: float = Field(
        10.0, gt=0, description="s a logger may leave its replies unread (HJ 212-2017 表1: 10 s)"
    )

    # --- MQTT connection security (docs/mqtt.md §4)
    @field_validator(
        "mqtt_tls_ca_file",
        "mqtt_tls_cert_file",
        "mqtt_tls_key_file",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """``ENVWATCH_MQTT_TLS_CA_FILE=`` (an env file's empty line) means no file, not "."."""
        return None if value == "" else value

    def mqtt_auth(self) -> MqttAuth:
        """Account and TLS context of envwatch's MQTT clients (bridge, gateway, simulators)."""
        from ingest.publisher import MqttAuth, tls_context

        tls = None
        if self.mqtt_tls_ca_file is not None:
            tls = tls_context(
                self.mqtt_tls_ca_file, self.mqtt_tls_cert_file, self.mqtt_tls_key_file
            )
        elif self.mqtt_tls_cert_file is not None or self.mqtt_tls_key_file is not None:
            raise ValueError(
                "ENVWATCH_MQTT_TLS_CERT_FILE/KEY_FILE need ENVWATCH_MQTT_TLS_CA_FILE (TLS is on "
                "only with a CA to verify the broker)"
            )
        password = None if self.mqtt_password is None else self.mqtt_password.get_secret_value()
        return MqttAuth(self.mqtt_username or None, password, tls)
