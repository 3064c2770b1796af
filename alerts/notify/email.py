"""E-mail through apprise's SMTP plugin.

apprise builds the SMTP connection from a URL: ``mailto://`` (plain SMTP, optionally STARTTLS) or
``mailtos://`` (TLS), ``user:password@host:port``, with ``from``, ``to`` and ``mode`` query
arguments (apprise ``plugins/email``). :func:`smtp_url` writes that URL from settings; failures map
to ``NotifyError`` as in ``alerts.notify.chat`` (apprise does not tell a refused recipient from a
server that is down, so failures are retryable and bounded by the outbox budget).
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote, urlencode

from alerts.notify.chat import AppriseNotifier


def smtp_url(
    host: str,
    port: int,
    sender: str,
    recipients: Sequence[str],
    *,
    user: str | None = None,
    password: str | None = None,
    secure: str = "insecure",
) -> str:
    """The apprise URL of an SMTP account.

    ``secure``: ``insecure`` (plain SMTP, e.g. a local relay), ``starttls`` or ``ssl``
    (implicit TLS, scheme ``mailtos://``).
    """
    if secure not in {"insecure", "starttls", "ssl"}:
        msg = f"secure must be insecure, starttls or ssl, not {secure!r}"
        raise ValueError(msg)
    if not recipients:
        msg = "at least one recipient is needed"
        raise ValueError(msg)
    scheme = "mailto" if secure == "insecure" else "mailtos"
    auth = ""
    if user:
        auth = quote(user, safe="")
        if password:
            auth += ":" + quote(password, safe="")
        auth += "@"
    query = urlencode(
        {"from": sender, "to": ",".join(recipients), "mode": secure, "format": "text"}
    )
    return f"{scheme}://{auth}{host}:{port}/?{query}"


class EmailNotifier(AppriseNotifier):
    """One mailbox (or list) reached over SMTP; subject = the message tag, body = the text."""

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        recipients: Sequence[str],
        *,
        user: str | None = None,
        password: str | None = None,
        secure: str = "insecure",
        language: str = "zh",
    ) -> None:
        url = smtp_url(host, port, sender, recipients, user=user, password=password, secure=secure)
        super().__init__(url, language=language)
