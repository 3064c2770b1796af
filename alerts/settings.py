"""Settings of notification delivery (pydantic-settings; environment prefix ``ENVWATCH_ALERTS_``).

One frozen model per process (style.md #9). Secrets are ``SecretStr``: masked in ``repr``, logs and
``model_dump`` unless explicitly revealed. Nested values use ``__`` in environment names, e.g.::

    ENVWATCH_ALERTS_OUTBOX_PATH=var/outbox.db
    ENVWATCH_ALERTS_RETRY__MAX_ATTEMPTS=40
    ENVWATCH_ALERTS_WEBHOOKS='{"ent-a": {"url": "https://a.example/hook", "secret": "…"}}'
    ENVWATCH_ALERTS_MQTT__URL=mqtt://alerts:…@broker:1883

The catalogue's ``notify:`` routes are the source of truth for receivers and their channels
(alerts/notify/routes.py); ``WEBHOOKS`` / ``APPRISE`` override a receiver by name.

Every number here is an operational default an operator may override, not a standard: the
grouping timers are Alertmanager's defaults (peers.md §1.1), the retry schedule is explained in
``alerts.outbox.RetryPolicy``.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from alerts.outbox import RetryPolicy
from alerts.routing import GroupTiming
from alerts.secretfiles import SecretFilesMixin


class RetrySettings(BaseModel):
    """Backoff and retry budget of the outbox (see ``alerts.outbox.RetryPolicy``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    base_seconds: float = Field(5.0, gt=0, description="first retry delay")
    factor: float = Field(2.0, ge=1, description="delay multiplier per attempt")
    cap_seconds: float = Field(600.0, gt=0, description="longest delay between attempts")
    jitter: float = Field(0.2, ge=0, lt=1, description="± fraction of each delay")
    max_attempts: int = Field(30, ge=1, description="attempts before dead-letter")
    max_age_hours: float = Field(24.0, gt=0, description="age after which a row is dead-lettered")

    def policy(self) -> RetryPolicy:
        return RetryPolicy(
            base=timedelta(seconds=self.base_seconds),
            factor=self.factor,
            cap=timedelta(seconds=self.cap_seconds),
            jitter=self.jitter,
            max_attempts=self.max_attempts,
            max_age=timedelta(hours=self.max_age_hours),
        )


class GroupingSettings(BaseModel):
    """Alertmanager-style grouping timers (defaults: Alertmanager's, peers.md §1.1)."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    group_wait_seconds: float = Field(30.0, ge=0)
    group_interval_seconds: float = Field(300.0, ge=0)
    repeat_interval_seconds: float = Field(4 * 3600.0, ge=0)

    def timing(self) -> GroupTiming:
        return GroupTiming(
            group_wait=timedelta(seconds=self.group_wait_seconds),
            group_interval=timedelta(seconds=self.group_interval_seconds),
            repeat_interval=timedelta(seconds=self.repeat_interval_seconds),
        )


class WebhookSettings(BaseModel):
    """One receiver's webhook."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    url: str = Field(min_length=1)
    secret: SecretStr = Field(description="HMAC-SHA256 key shared with the receiver")
    timeout_seconds: float = Field(10.0, gt=0)


class AppriseSettings(BaseModel):
    """One receiver reached through an apprise URL (dingtalk://, wecombot://, mailto:// …).

    The URL usually embeds a token, hence a secret.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    url: SecretStr
    language: str = Field("zh", pattern="^(zh|en)$")


class MqttAlertSettings(BaseModel):
    """The broker of the MQTT alert channel (alerts/notify/mqtt.py; docs/notifications.md §11).

    ``url`` ``mqtt://host:port`` (``mqtts://`` for TLS, port 8883 by default) may carry
    ``user:password@``; or give ``username`` and ``password`` / ``password_file``. Never logged
    (redacted in every message). Over TLS the broker's certificate and host name are verified
    against ``ca_file`` (the system's CAs when unset); ``cert_file``/``key_file`` give a client
    certificate to a broker that asks for one (docs/mqtt.md §4).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    url: SecretStr | None = Field(None, description="mqtt[s]://[user:password@]host[:port]")
    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = Field(None, description="file whose content is the password")
    ca_file: Path | None = Field(
        None, description="mqtts://: CA (PEM) the broker's certificate must chain to"
    )
    cert_file: Path | None = Field(None, description="mqtts://: client certificate (PEM)")
    key_file: Path | None = Field(None, description="mqtts://: the client certificate's key")
    client_id: str = Field("envwatch-alerts", min_length=1)
    #: after a resolution is published, clear the alert's retained message (an empty retained
    #: message): the retained set is then exactly the open alerts (envwatch's choice [MEM])
    clear_resolved: bool = True
    timeout_seconds: float = Field(10.0, gt=0, description="wait for the broker's PUBACK")


class AlertsSettings(SecretFilesMixin):
    """Everything the notification process needs.

    A top-level ``SecretStr`` field ``x`` may be given as a file: ``ENVWATCH_ALERTS_X_FILE``
    (e.g. ``ENVWATCH_ALERTS_SMTP_URL_FILE``; alerts.secretfiles). The MQTT channel's password
    has its own field, ``ENVWATCH_ALERTS_MQTT__PASSWORD_FILE``.
    """

    model_config = SettingsConfigDict(
        env_prefix="ENVWATCH_ALERTS_",
        env_nested_delimiter="__",
        frozen=True,
        extra="ignore",
        # a malformed value must not print a secret (issue 13): errors name the field, not input
        hide_input_in_errors=True,
    )

    outbox_path: Path = Field(Path("var/outbox.db"), description="SQLite file of the outbox")
    outbox_synchronous: str = Field(
        "NORMAL", pattern="^(NORMAL|FULL)$", description="SQLite synchronous mode"
    )
    external_url: str = Field("", description="base URL for generatorURL links in webhooks")
    webhook_ca_file: Path | None = Field(
        None,
        description="PEM CA bundle that https webhook receivers' certificates are verified "
        "against (an internal CA); unset: the system's CAs. Certificates and host names are "
        "always verified.",
    )
    language: str = Field("zh", pattern="^(zh|en)$", description="default text language")
    concurrency: int = Field(16, ge=1, description="sends in flight, all receivers")
    per_receiver: int = Field(4, ge=1, description="sends in flight per receiver")
    send_timeout_seconds: float = Field(30.0, gt=0)
    lease_seconds: float = Field(60.0, gt=0, description="how long a claimed row is held back")
    retry: RetrySettings = RetrySettings()
    grouping: GroupingSettings = GroupingSettings()
    webhooks: dict[str, WebhookSettings] = Field(
        default_factory=dict, description="receiver name → webhook"
    )
    apprise: dict[str, AppriseSettings] = Field(
        default_factory=dict, description="receiver name → chat robot / mail URL"
    )
    mqtt: MqttAlertSettings = MqttAlertSettings()
    smtp_url: SecretStr | None = Field(
        None,
        description="apprise mailto(s):// URL of the SMTP server for catalogue email routes "
        "without their own server: reference",
    )
