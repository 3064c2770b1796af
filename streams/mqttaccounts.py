"""MQTT accounts, ACL, password file and broker configuration from the catalogue (pure, no I/O).

``envwatch deploy mqtt`` (streams/cli/deploy.py) and the test harness
(``streams.embedded.mosquitto(accounts=…)``) render through these functions, so the broker the
tests start and the one an operator deploys read the same access lines. The callers read the
templates (deploy/mosquitto/mosquitto.conf, deploy/mosquitto/acl.template) and write the files.

Accounts (docs/mqtt.md §4):

* one per role block of the ACL template — ``bridge`` (reads ``env/#``), ``gateway`` (writes
  ``env/emission/#``), ``publisher`` (writes ``env/#``: the station network and simulators, so
  no per-station accounts in this step), ``notifier`` (the alerts dispatcher's MQTT channel,
  writes ``alerts/#``); username ``envwatch-<role>``;
* one per enterprise, named ``enterprise:<enterprise id>`` with the enterprise id as username:
  it writes exactly the topics of its outlets (``env/emission/<locality>/<outlet id>``) and of
  the monitors the catalogue assigns to it (``env/monitor/<locality>/<monitor id>``), and reads
  ``alerts/enterprise/<id>/#`` (alerts/notify/mqtt.py ``topic_scope``).

Every account also reads and writes its own session-marker topic (the template's ``pattern``
lines, which apply to all accounts).

Listeners (:func:`render_conf`): a plain one, a TLS one (:class:`TlsListener`: TLS 1.2 at least,
the server certificate, optionally client certificates required, the certificate's common name
then being the account), or both.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from alerts.notify.mqtt import ROOT as ALERTS_ROOT
from alerts.notify.mqtt import topic_scope
from rules.catalog import Catalog
from rules.catalog.model import Enterprise

#: mosquitto 2.x ``$7$`` hashes: PBKDF2-HMAC-SHA512, 101 iterations, 12-byte salt (mosquitto_passwd)
PBKDF2_ITERATIONS = 101
SALT_BYTES = 12

ENTERPRISE_PREFIX = "enterprise:"
PRODUCTION_BEGIN = "# --- production-only begin"
PRODUCTION_END = "# --- production-only end"


@dataclass(frozen=True)
class Account:
    """One broker account: ``name`` is the key in credentials.json."""

    name: str
    username: str
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]


# --------------------------------------------------------------------------- ACL template


@dataclass(frozen=True)
class AclTemplate:
    """deploy/mosquitto/acl.template parsed: the lines for every account, and per role its
    ``topic`` lines."""

    head: tuple[str, ...]
    roles: Mapping[str, tuple[str, ...]]

    def patterns(self, role: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(publish, subscribe) topic patterns of a role."""
        if role not in self.roles:
            raise ValueError(
                f"no role {role!r} in the ACL template; roles: {', '.join(self.roles)}"
            )
        publish: list[str] = []
        subscribe: list[str] = []
        for line in self.roles[role]:
            parts = line.split(maxsplit=2)
            if len(parts) == 2 and parts[0] == "topic":  # "topic <pattern>" is readwrite
                parts = ["topic", "readwrite", parts[1]]
            if len(parts) != 3 or parts[0] != "topic" or parts[1] not in _ACCESS:
                raise ValueError(f"role {role!r}: unsupported ACL line {line!r}")
            if parts[1] in {"write", "readwrite"}:
                publish.append(parts[2])
            if parts[1] in {"read", "readwrite"}:
                subscribe.append(parts[2])
        return tuple(publish), tuple(subscribe)


_ACCESS = {"read", "write", "readwrite"}


def parse_acl_template(text: str) -> AclTemplate:
    """The lines before the first ``user $ROLE`` block as they are; each block's non-comment
    lines."""
    head: list[str] = []
    roles: dict[str, list[str]] = {}
    role: str | None = None
    for line in text.splitlines():
        if line.startswith("user $"):
            role = line.removeprefix("user $").strip()
            roles[role] = []
        elif role is None:
            head.append(line)
        elif line.strip() and not line.startswith("#"):
            roles[role].append(line.strip())
    return AclTemplate(tuple(head), {r: tuple(lines) for r, lines in roles.items()})


def acl_lines(account: Account) -> list[str]:
    """``user`` and ``topic`` lines of one account (readwrite when a pattern is in both)."""
    out = [f"user {account.username}"]
    for p in account.publish:
        out.append(f"topic {'readwrite' if p in account.subscribe else 'write'} {p}")
    out += [f"topic read {p}" for p in account.subscribe if p not in account.publish]
    return out


def render_acl(template: AclTemplate, accounts: Iterable[Account]) -> str:
    """The mosquitto acl_file: the template's head, then one block per account."""
    out = [*template.head]
    for a in accounts:
        out += [*acl_lines(a), ""]
    return "\n".join(out) + "\n"


def role_account(template: AclTemplate, role: str, username: str | None = None) -> Account:
    publish, subscribe = template.patterns(role)
    return Account(role, username or f"envwatch-{role}", publish, subscribe)


# --------------------------------------------------------------------------- catalogue


def enterprise_topics(catalog: Catalog, enterprise: Enterprise) -> tuple[str, ...]:
    """The topics an enterprise's samples use: its outlets' and its monitors'
    (``env/{kind}/{locality}/{source}``, ingest/schemas.py ``topic_of``)."""
    topics = [f"env/emission/{enterprise.locality}/{o.id}" for o in enterprise.outlets]
    topics += [
        f"env/monitor/{m.locality}/{m.id}"
        for m in catalog.monitors
        if m.enterprise == enterprise.id
    ]
    return tuple(topics)


def enterprise_account(
    catalog: Catalog, enterprise: Enterprise, alerts_root: str = ALERTS_ROOT
) -> Account:
    return Account(
        f"{ENTERPRISE_PREFIX}{enterprise.id}",
        enterprise.id,
        enterprise_topics(catalog, enterprise),
        (topic_scope(alerts_root, "enterprise", enterprise.id) + "/#",),
    )


def accounts_from_catalog(
    catalog: Catalog, template: AclTemplate, alerts_root: str = ALERTS_ROOT, bridges: int = 1
) -> list[Account]:
    """Every role account of the template, then one account per enterprise (catalogue order).

    ``bridges`` > 1 adds the accounts ``bridge-2`` … ``bridge-<n>`` (usernames
    ``envwatch-bridge-<i>``, the bridge role's topics) after ``bridge``: with
    ``use_username_as_clientid`` two processes on one account take each other's session, so each
    bridge of a shared subscription needs its own account (docs/deploy.md)."""
    if bridges < 1:
        raise ValueError(f"bridges must be at least 1, not {bridges}")
    accounts = [role_account(template, role) for role in template.roles]
    if bridges > 1:
        at = next((i for i, a in enumerate(accounts) if a.name == "bridge"), None)
        if at is None:
            raise ValueError("no role 'bridge' in the ACL template")
        extra = [
            Account(
                f"bridge-{i}", f"envwatch-bridge-{i}", accounts[at].publish, accounts[at].subscribe
            )
            for i in range(2, bridges + 1)
        ]
        accounts[at + 1 : at + 1] = extra
    accounts += [enterprise_account(catalog, e, alerts_root) for e in catalog.enterprises]
    seen: dict[str, str] = {}
    for a in accounts:
        if a.username in seen:
            raise ValueError(f"accounts {seen[a.username]!r} and {a.name!r} share {a.username!r}")
        seen[a.username] = a.name
    return accounts


# --------------------------------------------------------------------------- password file


def hash_password(password: str, salt: bytes) -> str:
    """mosquitto_passwd's hash (mosquitto 2.x): ``$7$101$<base64 salt>$<base64 PBKDF2>``."""
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS)
    b64 = base64.b64encode
    return f"$7${PBKDF2_ITERATIONS}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(hashed: str, password: str) -> bool:
    """Whether ``hashed`` (a ``$6$`` or ``$7$`` mosquitto hash) is ``password``'s."""
    parts = hashed.split("$")
    try:
        if len(parts) == 5 and parts[1] == "7":
            salt, want = base64.b64decode(parts[3]), base64.b64decode(parts[4])
            got = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(parts[2]))
        elif len(parts) == 4 and parts[1] == "6":
            salt, want = base64.b64decode(parts[2]), base64.b64decode(parts[3])
            got = hashlib.sha512(password.encode() + salt).digest()
        else:
            return False
    except ValueError:
        return False
    return hmac.compare_digest(got, want)


def parse_passwd(text: str) -> dict[str, str]:
    """username → hash of a mosquitto password file."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        user, sep, hashed = line.strip().partition(":")
        if sep and user and not user.startswith("#"):
            out[user] = hashed
    return out


def render_passwd(entries: Sequence[tuple[str, str]]) -> str:
    """A password file from (username, hash) pairs."""
    return "".join(f"{user}:{hashed}\n" for user, hashed in entries)


# --------------------------------------------------------------------------- mosquitto.conf


@dataclass(frozen=True)
class TlsListener:
    """A TLS listener of mosquitto (mosquitto.conf(5) "Certificate based SSL/TLS support").

    ``cafile``: the CA mosquitto verifies client certificates against (mosquitto wants one on
    every TLS listener); ``certfile``/``keyfile``: the broker's certificate and key. With
    ``require_certificate`` every client must present a certificate signed by ``cafile``, and
    ``use_identity_as_username`` makes its common name the account: the ACL of that username
    applies and no password is asked (the certificate is the credential), so a device holding
    the certificate of ``e-wf-01`` publishes exactly what the account ``e-wf-01`` may."""

    port: int
    cafile: str
    certfile: str
    keyfile: str
    require_certificate: bool = False
    host: str | None = None

    def lines(self) -> list[str]:
        out = [
            f"listener {self.port} {self.host}" if self.host else f"listener {self.port}",
            f"cafile {self.cafile}",
            f"certfile {self.certfile}",
            f"keyfile {self.keyfile}",
            "tls_version tlsv1.2",  # the minimum TLS version of this listener (mosquitto 2.x)
        ]
        if self.require_certificate:
            out += ["require_certificate true", "use_identity_as_username true"]
        return out


def render_conf(
    template: str,
    *,
    port: int | None,
    persistence_dir: str,
    host: str | None = None,
    password_file: str | None = None,
    acl_file: str | None = None,
    tls: TlsListener | None = None,
) -> str:
    """The shipped mosquitto.conf (queue limits, persistence) with its production-only block
    replaced by a plain listener on ``port`` (``host``: bind address, none = every interface;
    ``port`` None: no plain listener), the TLS listener ``tls`` if given, and either anonymous
    access (no ``password_file``) or the production access lines."""
    if port is None and tls is None:
        raise ValueError("no listener: give a plain port, a TLS listener or both")
    if tls is not None and password_file is None:
        raise ValueError("a TLS listener without accounts would let anyone in")
    out: list[str] = []
    skipping = False
    for line in template.splitlines():
        if line.startswith(PRODUCTION_BEGIN):
            skipping = True
        elif line.startswith(PRODUCTION_END):
            skipping = False
        elif not skipping:
            out.append(line)
    if port is not None:
        out.append(f"listener {port} {host}" if host else f"listener {port}")
    out.append(f"persistence_location {persistence_dir.rstrip('/')}/")
    if password_file is None:
        out.append("allow_anonymous true")
    else:
        if acl_file is None:
            raise ValueError("a password file without an ACL file would let every account in")
        out += [
            "allow_anonymous false",
            f"password_file {password_file}",
            f"acl_file {acl_file}",
            "use_username_as_clientid true",
        ]
    if tls is not None:  # listener options last: they apply to the listener line above them
        # use_username_as_clientid is a listener option: without repeating it here the TLS
        # listener let any account connect under the bridge's client id (found by
        # tests/deploy/test_mqtt_tls.py)
        out += [*tls.lines(), "use_username_as_clientid true"]
    return "\n".join(out) + "\n"
