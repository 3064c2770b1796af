"""Receivers' channels from the catalogue's ``notify:`` routes, secrets resolved by reference.

The catalogue (rules/catalog/ ``Locality.notify``, ``Enterprise.notify``) is the source of truth
for receivers and their channels (docs/notifications.md §2): ``duty-<locality>``,
``emergency-<locality>``, ``<kind>-<locality>`` per escalation kind, ``enterprise-<id>``. A route's
secrets are references, ``{env: VAR}`` or ``{file: PATH}`` (relative to the catalogue directory),
resolved here — the one place that reads them — each time the channels are built (start-up and
every catalogue reload). ``ENVWATCH_ALERTS_WEBHOOKS`` / ``…_APPRISE`` override a receiver by name
(all its catalogue routes are then ignored).

A receiver whose route cannot be built (a reference to an unset variable or a missing file, no
SMTP server, no MQTT broker, a robot address apprise refuses) has no channel: its notifications
are *held* with that reason (alerts/outbox.py), which raises the operator alert
``receiver:<name>`` / ``delivery`` — an operator problem, never silent. Reasons name the
variable or file, never a value.

A receiver with several routes gets a :class:`FanOut`: every route is tried; the notification
counts as delivered when all accepted it, else it is retried (retryable when any failure is) —
a route that accepted it then sees it again, with the same ``Idempotency-Key`` (webhook) or the
same retained state (MQTT).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from alerts.notification import Notification
from alerts.notify.base import Notifier, NotifyError
from alerts.notify.chat import AppriseNotifier
from alerts.notify.dispatcher import channels_from_settings
from alerts.notify.mqtt import ROOT, MqttNotifier, MqttPublisher, topic_scope
from alerts.notify.webhook import WebhookNotifier, config_fingerprint
from alerts.settings import AlertsSettings

log = logging.getLogger(__name__)


class RouteProblem(Exception):
    """A route that cannot become a channel; the message names no secret."""


@dataclass(frozen=True, slots=True)
class CatalogReceiver:
    """One receiver the catalogue routes: its name, MQTT scope and id, and routes."""

    name: str
    scope: str  # "enterprise" | "locality"
    ident: str
    routes: tuple[Any, ...]


def catalog_receivers(catalog: Any) -> list[CatalogReceiver]:
    """Every receiver with at least one route, in catalogue order."""
    if catalog is None:
        return []
    out: list[CatalogReceiver] = []
    for loc in catalog.localities:
        n = loc.notify
        if n.duty:
            out.append(CatalogReceiver(f"duty-{loc.id}", "locality", loc.id, n.duty))
        if n.emergency:
            out.append(CatalogReceiver(f"emergency-{loc.id}", "locality", loc.id, n.emergency))
        for kind, routes in n.escalation.items():
            if routes:
                out.append(CatalogReceiver(f"{kind}-{loc.id}", "locality", loc.id, routes))
    for ent in catalog.enterprises:
        if ent.notify:
            out.append(CatalogReceiver(f"enterprise-{ent.id}", "enterprise", ent.id, ent.notify))
    return out


def resolve(ref: Any, base: Path, env: Mapping[str, str]) -> str:
    """The value of a ``SecretRef`` (``env``: the variable; ``file``: its content without the
    final newline, relative to ``base``). Raises :class:`RouteProblem` naming the reference."""
    if getattr(ref, "env", None) is not None:
        value = env.get(ref.env)
        if not value:
            raise RouteProblem(f"environment variable {ref.env} is not set")
        return value
    path = Path(ref.file)
    if not path.is_absolute():
        path = base / path
    try:
        value = path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise RouteProblem(f"secret file {ref.file} unreadable ({type(exc).__name__})") from None
    if not value:
        raise RouteProblem(f"secret file {ref.file} is empty")
    return value


def _value(target: Any, base: Path, env: Mapping[str, str]) -> str:
    return target if isinstance(target, str) else resolve(target, base, env)


def dingtalk_url(address: str, secret: str | None) -> str:
    """apprise's ``dingtalk://[secret@]token/`` from a robot URL
    (``https://oapi.dingtalk.com/robot/send?access_token=T``), an apprise URL or a bare token."""
    if address.startswith("dingtalk://"):
        return address
    token = address
    if "://" in address:
        token = (parse_qs(urlsplit(address).query).get("access_token") or [""])[0]
        if not token:
            raise RouteProblem("the DingTalk robot address has no access_token")
    prefix = f"{quote(secret, safe='')}@" if secret else ""
    return f"dingtalk://{prefix}{token}/"


def wecom_url(address: str) -> str:
    """apprise's ``wecombot://key`` from a robot URL
    (``https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K``), an apprise URL or a bare key."""
    if address.startswith("wecombot://"):
        return address
    key = address
    if "://" in address:
        key = (parse_qs(urlsplit(address).query).get("key") or [""])[0]
        if not key:
            raise RouteProblem("the WeCom robot address has no key")
    return f"wecombot://{key}"


class FanOut:
    """Several channels of one receiver (module docstring)."""

    def __init__(self, channels: Sequence[Notifier]) -> None:
        self.channels = tuple(channels)
        self.fingerprint = config_fingerprint(
            "|".join(str(getattr(c, "fingerprint", "")) for c in self.channels), b"fan-out"
        )

    async def send(self, notification: Notification) -> None:
        errors: list[NotifyError] = []
        for channel in self.channels:
            try:
                await channel.send(notification)
            except NotifyError as exc:
                errors.append(exc)
        if errors:
            raise NotifyError(
                "; ".join(e.reason for e in errors),
                retryable=any(e.retryable for e in errors),
                receiver=notification.receiver,
            )

    async def aclose(self) -> None:
        for channel in self.channels:
            await channel.aclose()


@dataclass
class Channels:
    """What the dispatcher needs: receiver → channel, and why a routed receiver has none."""

    channels: dict[str, Notifier] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    overridden: set[str] = field(default_factory=set)


class RouteChannels:
    """Builds :class:`Channels` from a catalogue and the settings; one per process (the MQTT
    publisher is shared by every build and closed by :meth:`close`)."""

    def __init__(
        self,
        settings: AlertsSettings,
        *,
        base: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.base = base or Path.cwd()
        self.env: Mapping[str, str] = os.environ if env is None else env
        self._publisher: MqttPublisher | None = None

    def publisher(self) -> MqttPublisher:
        if self._publisher is None:
            if self.settings.mqtt.url is None:
                raise RouteProblem("no MQTT broker configured (ENVWATCH_ALERTS_MQTT__URL)")
            try:
                self._publisher = MqttPublisher(self.settings.mqtt)
            except NotifyError as exc:
                raise RouteProblem(exc.reason) from None
            except OSError as exc:
                raise RouteProblem(
                    f"MQTT password file unreadable ({type(exc).__name__})"
                ) from None
        return self._publisher

    def channel(self, receiver: CatalogReceiver, route: Any) -> Notifier:
        """One route's channel; :class:`RouteProblem` when it cannot be built."""
        s, base, env = self.settings, self.base, self.env
        ch = route.channel
        try:
            if ch == "webhook":
                return WebhookNotifier(
                    _value(route.target, base, env),
                    resolve(route.secret, base, env),
                    external_url=s.external_url,
                    ca_file=s.webhook_ca_file,
                )
            if ch == "dingtalk":
                secret = None if route.secret is None else resolve(route.secret, base, env)
                url = dingtalk_url(_value(route.target, base, env), secret)
                return AppriseNotifier(url, language=route.language)
            if ch == "wecom":
                url = wecom_url(_value(route.target, base, env))
                return AppriseNotifier(url, language=route.language)
            if ch == "email":
                if route.server is not None:
                    server = resolve(route.server, base, env)
                elif s.smtp_url is not None:
                    server = s.smtp_url.get_secret_value()
                else:
                    raise RouteProblem(
                        "no SMTP server: set ENVWATCH_ALERTS_SMTP_URL or the route's server"
                    )
                to = quote(_value(route.target, base, env), safe="@")
                url = f"{server}{'&' if '?' in server else '?'}to={to}"
                return AppriseNotifier(url, language=route.language)
            if ch == "mqtt":
                root = route.target if isinstance(route.target, str) else ROOT
                return MqttNotifier(
                    self.publisher(),
                    topic_scope(root, receiver.scope, receiver.ident),
                    clear_resolved=s.mqtt.clear_resolved,
                    external_url=s.external_url,
                )
        except NotifyError as exc:  # a URL apprise or httpx refuses (texts hold no secret)
            raise RouteProblem(exc.reason) from None
        raise RouteProblem(f"unknown channel {ch!r}")

    def build(self, catalog: Any) -> Channels:
        """The channels of every receiver: the catalogue's routes, then the env overrides."""
        out = Channels()
        overrides = channels_from_settings(self.settings)
        for receiver in catalog_receivers(catalog):
            if receiver.name in overrides:
                continue
            built: list[Notifier] = []
            try:
                for route in receiver.routes:
                    built.append(self.channel(receiver, route))
            except RouteProblem as exc:
                out.problems[receiver.name] = f"{receiver.name}: {exc}"
                continue
            out.channels[receiver.name] = built[0] if len(built) == 1 else FanOut(built)
        out.channels.update(overrides)
        out.overridden = set(overrides)
        if out.problems:
            log.warning(
                "notify: %d receiver(s) of the catalogue without a channel (held): %s",
                len(out.problems),
                "; ".join(sorted(out.problems.values())),
            )
        return out

    def close(self) -> None:
        if self._publisher is not None:
            self._publisher.close()
            self._publisher = None
