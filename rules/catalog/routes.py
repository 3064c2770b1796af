"""Notification routes of the catalogue (``notify:`` per locality and enterprise): channels
(webhook, DingTalk, WeCom, e-mail, MQTT), secrets only by reference (:class:`SecretRef`: an
environment variable or a file, never inline — :func:`inline_secret` finds one in a URL) and the
escalation receivers of a locality.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from rules.catalog.base import Frozen
from rules.catalog.vocabulary import NonEmpty


class SecretRef(Frozen):
    """Where a secret is kept — never the secret itself (the catalogue is shared and versioned).

    Exactly one of ``env`` (the name of an environment variable) or ``file`` (a file whose
    content, without a final newline, is the secret; relative to the catalogue directory).
    Resolved by the process that needs it (``streams.cli.gateway``), not here (rules/ is pure).
    """

    env: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | None = None
    file: NonEmpty | None = None

    @model_validator(mode="before")
    @classmethod
    def _reference_only(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            raise ValueError(
                "a secret is given by reference, never inline: {env: VAR} or {file: PATH}"
            )
        return data

    @model_validator(mode="after")
    def _one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env or file")
        return self

    def __str__(self) -> str:
        return f"env {self.env}" if self.env is not None else f"file {self.file}"


_CREDENTIAL_PARAMS = ("token", "key", "secret", "sign", "pass", "pwd", "auth", "credential", "sig")
#: a receiver kind of an escalation chain (alerts/grouping.py: receiver ``<kind>-<locality>``)
ESCALATION_KIND_PATTERN = r"^[a-z][a-z0-9_]*$"
#: receiver kinds that are not escalation kinds of ``notify.escalation`` (they have their own key)
RESERVED_KINDS = frozenset({"duty", "emergency", "enterprise", "operator"})
_EMAIL = re.compile(r"^[^@\s:/]+@[^@\s:/]+\.[^@\s:/]+$")
_MQTT_ROOT = re.compile(r"^[^#+\s]+$")


def inline_secret(url: str) -> str | None:
    """Why an inline URL carries a secret, or None: userinfo (``https://u:p@h/``), or a query
    or fragment parameter whose name contains token, key, secret, sign, pass, pwd, auth,
    credential or sig (``access_token=``, ``key=``, ``apikey=``). The value is never quoted."""
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)", url)
    if m is not None and "@" in m.group(2):
        return "the URL carries a user name or password (userinfo)"
    _, _, rest = url.partition("?")
    rest = rest.replace("#", "&")
    if not rest and "#" in url:
        rest = url.split("#", 1)[1]
    for pair in rest.split("&"):
        name = pair.split("=", 1)[0].strip().lower()
        if name and any(word in name for word in _CREDENTIAL_PARAMS):
            return f"the URL carries a credential parameter {name!r}"
    return None


class Route(Frozen):
    """One channel of a receiver (alerts/notify/routes.py builds it; docs/notifications.md §2).

    What is a secret, and therefore only by reference (``{env: VAR}`` / ``{file: PATH}``):

    * ``secret`` (a webhook's HMAC-SHA256 key, a DingTalk robot's signing secret) and ``server``
      (an e-mail route's SMTP server URL with its password) — always;
    * the ``target`` of ``dingtalk`` and ``wecom``: a robot's address *is* its credential
      (``access_token=`` / ``key=``);
    * a ``webhook`` target with userinfo or a credential-looking query parameter
      (:func:`inline_secret`).

    Inline and not secret: a webhook URL without them, an e-mail address, an MQTT topic root.
    """

    channel: Literal["webhook", "dingtalk", "wecom", "email", "mqtt"]
    #: URL (webhook), robot address (dingtalk/wecom, by reference), address (email), topic root
    #: (mqtt: ``<root>/enterprise/<id>/<fingerprint>``; default ``alerts``)
    target: NonEmpty | SecretRef | None = None
    secret: SecretRef | None = None
    server: SecretRef | None = None
    language: Literal["zh", "en"] = "zh"

    @field_validator("target")
    @classmethod
    def _no_inline_secret(cls, v: str | SecretRef | None) -> str | SecretRef | None:
        if isinstance(v, str):
            why = inline_secret(v)
            if why is not None:
                raise ValueError(
                    f"a secret inline: {why}; give the target by reference, "
                    "{env: VAR} or {file: PATH}"
                )
        return v

    @model_validator(mode="after")
    def _per_channel(self) -> Route:
        ch, t = self.channel, self.target
        if ch == "mqtt":
            if isinstance(t, SecretRef) or (t is not None and not _MQTT_ROOT.match(t)):
                raise ValueError("an mqtt target is a topic root without wildcards (e.g. alerts)")
            if self.secret is not None or self.server is not None:
                raise ValueError("an mqtt route takes no secret or server (broker from settings)")
            return self
        if t is None:
            raise ValueError(f"a {ch} route needs a target")
        if ch in {"dingtalk", "wecom"} and isinstance(t, str):
            raise ValueError(
                f"a secret inline: a {ch} robot's address is its credential; give the target "
                "by reference, {env: VAR} or {file: PATH}"
            )
        if ch == "webhook":
            if isinstance(t, str) and not t.startswith(("https://", "http://")):
                raise ValueError("a webhook target is an http(s) URL")
            if self.secret is None:
                raise ValueError(
                    "a webhook route needs secret: {env: VAR} or {file: PATH} (its HMAC key)"
                )
        if ch == "email":
            if isinstance(t, str) and not _EMAIL.match(t):
                raise ValueError("an email target is one address (name@domain)")
        elif self.server is not None:
            raise ValueError("server applies to email routes only")
        if ch in {"wecom", "email"} and self.secret is not None:
            raise ValueError(f"a {ch} route takes no secret")
        return self


EscalationKind = Annotated[str, Field(pattern=ESCALATION_KIND_PATTERN)]


class LocalityRoutes(Frozen):
    """A locality's receivers (docs/notifications.md §2): ``duty-<id>``, ``emergency-<id>`` and
    one ``<kind>-<id>`` per escalation kind (``chief``, ``lead`` …: the kinds the alert rules'
    escalation chains name, alerts/grouping.py)."""

    duty: tuple[Route, ...] = ()
    emergency: tuple[Route, ...] = ()
    escalation: dict[EscalationKind, tuple[Route, ...]] = Field(default_factory=dict)

    @field_validator("escalation")
    @classmethod
    def _kinds(cls, v: dict[str, tuple[Route, ...]]) -> dict[str, tuple[Route, ...]]:
        reserved = sorted(set(v) & RESERVED_KINDS)
        if reserved:
            raise ValueError(f"{', '.join(reserved)} is not an escalation kind (its own key)")
        return v
