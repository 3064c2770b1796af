"""Signed webhooks: an Alertmanager-v4-compatible JSON body plus envwatch fields (httpx).

Request (docs/notifications.md has the full contract)::

    POST <url>
    Content-Type: application/json
    Idempotency-Key: <notification id>
    X-Envwatch-Timestamp: <unix seconds>
    X-Envwatch-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>

The body is what Alertmanager's webhook receiver sends (``version: "4"``, ``groupKey``,
``status``, ``receiver``, ``groupLabels``, ``commonLabels``, ``commonAnnotations``,
``externalURL``, ``alerts[]``; peers.md §1.1), so existing consumers keep working, plus an
``envwatch`` object with the id, idempotency key, kind, state, level, texts (zh/en) and, for
warnings, the emergency trigger.

Outcome mapping: 2xx delivered; 408, 429 and 5xx, timeouts and connection errors →
``NotifyError(retryable=True)``; any other status (4xx, unfollowed 3xx) and invalid URLs →
``NotifyError(retryable=False)``. No httpx exception leaves this module.

Secrets (issue 13): the URL may carry a token in its query or userinfo and the secret signs every
request; neither appears in an error, a log line or an exception text. :func:`redact_url` is the
form a URL is shown in (scheme, host, port, path — no userinfo, no query, no fragment),
:func:`scrub` applies it to every URL inside a text, and :func:`quiet_http_logs` makes httpx's own
INFO line per request (``HTTP Request: POST <url> …``) show the redacted URL.
:func:`config_fingerprint` tells configurations apart without revealing them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import ssl
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import orjson

from alerts.grouping import GROUP_PREFIX
from alerts.notification import Notification, NotificationKind
from alerts.notify.base import NotifyError
from alerts.templates import console_url, trigger_csv

SIGNATURE_HEADER = "X-Envwatch-Signature"
TIMESTAMP_HEADER = "X-Envwatch-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
#: Alertmanager writes this for a firing alert's endsAt (Go's zero time).
ZERO_TIME = "0001-01-01T00:00:00Z"
#: Statuses worth retrying: request timeout, too many requests (RFC 9110 §15.5.9, RFC 6585 §4).
RETRYABLE_4XX = frozenset({408, 429})


# ---------------------------------------------------------------- secrets out of texts

_URL = re.compile(
    r"""\b([a-zA-Z][a-zA-Z0-9+.-]*)://([^\s/?#'"<>]*)([^\s?#'"<>]*)([?#][^\s'"<>]*)?"""
)


def redact_url(url: object) -> str:
    """``scheme://host[:port]/path`` of a URL: userinfo, query and fragment left out
    (``https://u:p@h/x?token=t`` → ``https://h/x``)."""
    return _URL.sub(_redacted, str(url))


def _redacted(m: re.Match[str]) -> str:
    scheme, authority, path, _rest = m.groups()
    host = authority.rsplit("@", 1)[-1]
    return f"{scheme}://{host}{path}"


def scrub(text: str) -> str:
    """``text`` with every URL in it redacted (:func:`redact_url`)."""
    return _URL.sub(_redacted, text)


def config_fingerprint(url: str, secret: str | bytes) -> str:
    """16 hex digits that change when a receiver's URL or secret changes (HMAC-SHA256 keyed
    with the secret over the URL): kept with a held notification, compared at start-up to
    re-send it automatically after the operator fixed the configuration. Reveals neither."""
    mac = hmac.new(_secret_bytes(secret), b"envwatch-receiver|" + url.encode(), hashlib.sha256)
    return mac.hexdigest()[:16]


def _sensitive_parts(url: str, secret: bytes) -> list[str]:
    """What must never be shown of a receiver: its secret, its URL's password, query and
    fragment and each query value (longest first, so a part inside another goes with it)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # not even splittable: hide the whole URL
        return [url, secret.decode("utf-8", "replace")]
    found = [secret.decode("utf-8", "replace"), password or "", parts.query, parts.fragment]
    found += [v for _k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return sorted({p for p in found if len(p) >= 4}, key=len, reverse=True)


class _RedactUrls(logging.Filter):
    """Rewrites the arguments of httpx's request lines (an ``httpx.URL`` or a string) redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_url(a) if isinstance(a, (httpx.URL, str)) and "://" in str(a) else a
                for a in record.args
            )
        if isinstance(record.msg, str) and "://" in record.msg:
            record.msg = scrub(record.msg)
        return True


_REDACT = _RedactUrls()


def quiet_http_logs() -> None:
    """Attach the redacting filter to httpx's and httpcore's loggers (idempotent)."""
    for name in ("httpx", "httpcore", "httpcore.connection", "httpcore.http11"):
        logger = logging.getLogger(name)
        if _REDACT not in logger.filters:
            logger.addFilter(_REDACT)


def _rfc3339(at: datetime | None) -> str:
    if at is None:
        return ZERO_TIME
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def build_body(notification: Notification, external_url: str = "") -> dict[str, Any]:
    """The webhook body of one notification (one alert in ``alerts[]``)."""
    n = notification
    group_key = n.group_key or f'{n.receiver}:{{fingerprint="{n.fingerprint}"}}'
    # the alert's console page (docs/console.md); a grouped message links the console's list
    generator = (
        console_url(external_url, n.fingerprint)
        if not n.fingerprint.startswith(GROUP_PREFIX)
        else (f"{external_url.strip().rstrip('/')}/console/alerts" if external_url.strip() else "")
    )
    envwatch: dict[str, Any] = {
        "id": n.id,
        "idempotencyKey": n.id,
        "kind": n.kind.value,
        "state": n.state,
        "reason": n.reason,
        "severity": n.severity,
        "level": n.level,
        "locality": n.locality,
        "source": n.source,
        "at": _rfc3339(n.at),
        "texts": {"zh": n.texts.zh, "en": n.texts.en},
    }
    if n.kind is NotificationKind.WARNING:
        envwatch["trigger"] = n.trigger
        if n.trigger is not None:
            # the whole measures list for emergency responders, also as CSV
            envwatch["trigger_csv"] = trigger_csv(n.trigger)
    elif n.kind is NotificationKind.DUTY:
        raw = n.annotations.get("duty_json", "")
        try:
            duty = json.loads(raw) if raw else None
        except ValueError:
            duty = None
        envwatch["duties"] = duty if isinstance(duty, dict) else None
    return {
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": n.status.value,
        "receiver": n.receiver,
        "groupLabels": {},
        "commonLabels": dict(n.labels),
        "commonAnnotations": dict(n.annotations),
        "externalURL": external_url,
        "alerts": [
            {
                "status": n.status.value,
                "labels": dict(n.labels),
                "annotations": dict(n.annotations),
                "startsAt": _rfc3339(n.starts_at),
                "endsAt": _rfc3339(n.ends_at),
                "generatorURL": generator,
                "fingerprint": n.fingerprint,
            }
        ],
        "envwatch": envwatch,
    }


def encode_body(notification: Notification, external_url: str = "") -> bytes:
    """The exact bytes that are signed and sent (compact UTF-8 JSON)."""
    return orjson.dumps(build_body(notification, external_url))


def _secret_bytes(secret: str | bytes) -> bytes:
    return secret if isinstance(secret, bytes) else secret.encode("utf-8")


def sign(secret: str | bytes, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256(secret, ``"<timestamp>.<body>"``)."""
    mac = hmac.new(_secret_bytes(secret), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: str | bytes,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    now: datetime | None = None,
    tolerance: timedelta = timedelta(minutes=5),
) -> bool:
    """For receivers: True when ``signature`` is the sender's signature of ``timestamp`` and
    ``body`` (compared in constant time) and — when ``now`` is given — the timestamp is within
    ``tolerance`` of it (a replayed old request is refused)."""
    try:
        expected = sign(secret, timestamp, body)
    except UnicodeEncodeError:
        return False
    if not hmac.compare_digest(expected, signature):
        return False
    if now is None:
        return True
    try:
        sent = datetime.fromtimestamp(int(timestamp), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return False
    return abs(now - sent) <= tolerance


def signed_headers(
    notification: Notification, body: bytes, secret: str | bytes, now: datetime
) -> dict[str, str]:
    """The headers of one request (timestamp = ``now`` in unix seconds)."""
    timestamp = str(int(now.timestamp()))
    return {
        "Content-Type": "application/json",
        IDEMPOTENCY_HEADER: notification.id,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(secret, timestamp, body),
    }


def classify_status(status: int) -> bool | None:
    """None when delivered (2xx); otherwise whether the failure is retryable."""
    if 200 <= status < 300:
        return None
    return status >= 500 or status in RETRYABLE_4XX


def _now() -> datetime:
    return datetime.now(UTC)


def _verify(ca_file: str | os.PathLike[str] | None) -> ssl.SSLContext | bool:
    """How an https receiver is verified: against ``ca_file`` when given (an internal CA), else
    the system's CAs; certificate and host name always. An unreadable file is a
    :class:`NotifyError` naming the file (not retryable: the configuration is wrong)."""
    if ca_file is None:
        return True
    try:
        return ssl.create_default_context(cafile=os.fspath(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise NotifyError(
            f"ENVWATCH_ALERTS_WEBHOOK_CA_FILE {os.fspath(ca_file)}: {type(exc).__name__}",
            retryable=False,
        ) from None


class WebhookNotifier:
    """Send notifications to one webhook URL with one receiver's secret.

    ``client``: a shared ``httpx.AsyncClient`` (connection pooling); one is created when None and
    closed by :meth:`aclose`. ``clock`` gives the signing timestamp (wall clock; tests pass their
    own).
    """

    def __init__(
        self,
        url: str,
        secret: str | bytes,
        *,
        external_url: str = "",
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
        headers: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] = _now,
        ca_file: str | os.PathLike[str] | None = None,
    ) -> None:
        if not secret:
            raise NotifyError("webhook secret is empty", retryable=False)
        quiet_http_logs()
        self.url = url
        #: what the logs may show of the URL
        self.shown_url = redact_url(url)
        self._secret = _secret_bytes(secret)
        self.fingerprint = config_fingerprint(url, secret)
        self._sensitive = _sensitive_parts(url, self._secret)
        self.external_url = external_url
        self._timeout = timeout
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(timeout=timeout, verify=_verify(ca_file))
        self._headers = dict(headers or {})
        self._clock = clock

    async def send(self, notification: Notification) -> None:
        body = encode_body(notification, self.external_url)
        headers = {
            **self._headers,
            **signed_headers(notification, body, self._secret, self._clock()),
        }
        receiver = notification.receiver
        try:
            response = await self._client.post(
                self.url, content=body, headers=headers, timeout=self._timeout
            )
        # texts name the exception type and the redacted URL; a bad URL's own exception is not
        # chained (its text may quote the URL), httpcore's network errors (no URL) are
        except httpx.UnsupportedProtocol:
            raise NotifyError(
                f"bad webhook URL {self.shown_url}: unsupported protocol",
                retryable=False,
                receiver=receiver,
            ) from None
        except httpx.TimeoutException as exc:
            raise NotifyError(
                f"timeout: {type(exc).__name__}", retryable=True, receiver=receiver
            ) from exc
        except httpx.TransportError as exc:
            raise NotifyError(
                f"transport: {type(exc).__name__}: {self._clean(exc)}",
                retryable=True,
                receiver=receiver,
            ) from exc
        except httpx.InvalidURL:
            raise NotifyError(
                f"bad webhook URL {self.shown_url}", retryable=False, receiver=receiver
            ) from None
        except httpx.HTTPError as exc:
            raise NotifyError(
                f"http: {type(exc).__name__}", retryable=True, receiver=receiver
            ) from exc
        retryable = classify_status(response.status_code)
        if retryable is not None:
            raise NotifyError(
                f"HTTP {response.status_code}: {self._clean(response.text[:200])}",
                retryable=retryable,
                receiver=receiver,
                status=response.status_code,
            )

    def _clean(self, text: object) -> str:
        """A text with URLs redacted and nothing of this receiver's secret, URL query or
        password in it (a receiver may echo what it got, e.g. ``bad request /hook?token=…``)."""
        out = scrub(str(text)).replace(self.url, self.shown_url)
        for part in self._sensitive:
            out = out.replace(part, "***")
        return out

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()
