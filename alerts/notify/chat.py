"""Chat robots — DingTalk (钉钉) and WeCom (企业微信) group robots — through apprise.

apprise (2.x) addresses a DingTalk robot as ``dingtalk://{token}/`` or, with the robot's signing
secret, ``dingtalk://{secret}@{token}/``, and a WeCom group robot as ``wecombot://{key}``
(apprise ``plugins/dingtalk.py`` and ``plugins/wecombot.py`` templates). ``Apprise.add`` returns
False for a URL it does not accept; ``Apprise.async_notify`` returns a result whose truth value
is True only when every service accepted the message (an ``AppriseResult`` with a ``status`` in
apprise 2.x, a bool in 1.x).

apprise reports *that* a delivery failed, not whether the robot answered 4xx or 5xx, so every
failed send is mapped to ``NotifyError(retryable=True)`` and the outbox's retry budget bounds the
attempts; a URL apprise refuses is a permanent configuration error raised at construction.
"""

from __future__ import annotations

import logging
from typing import Any

import apprise

from alerts.notification import Notification, NotificationStatus
from alerts.notify.base import NotifyError
from alerts.notify.webhook import config_fingerprint


def title_and_body(notification: Notification, language: str) -> tuple[str, str]:
    """Title = the 【…】 / […] tag of the text (or the whole first line), body = the text."""
    text = notification.texts.get(language)
    opener, closer = ("【", "】") if language != "en" else ("[", "]")
    if text.startswith(opener) and closer in text:
        title = text[len(opener) : text.index(closer)]
    else:
        title = text.splitlines()[0][:60] if text else notification.state
    return title, text


class _DropAll(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


class AppriseNotifier:
    """Deliver through one apprise URL (any apprise service; used for chat robots and mail)."""

    def __init__(self, url: str, *, language: str = "zh", timeout: float = 15.0) -> None:
        self._apprise: Any = apprise.Apprise()
        # apprise logs a URL it refuses with its token (``An invalid DingTalk API Token (…)``):
        # its records while the URL is parsed are dropped (issue 14: secrets never logged)
        quiet = _DropAll()
        logger = logging.getLogger("apprise")
        logger.addFilter(quiet)
        try:
            accepted = self._apprise.add(url)
        finally:
            logger.removeFilter(quiet)
        if not accepted:
            # The URL may carry a token: never echo it.
            scheme = url.split("://", 1)[0]
            raise NotifyError(f"apprise does not accept this {scheme}:// URL", retryable=False)
        self.language = language
        self.timeout = timeout
        #: changes when the URL (and its token) changes; reveals neither (issue 13)
        self.fingerprint = config_fingerprint(url, url)

    def _notify_type(self, notification: Notification) -> Any:
        if notification.status is NotificationStatus.RESOLVED:
            return apprise.NotifyType.SUCCESS
        if notification.severity == "critical" or notification.level in {"orange", "red"}:
            return apprise.NotifyType.FAILURE
        return apprise.NotifyType.WARNING

    async def send(self, notification: Notification) -> None:
        title, body = title_and_body(notification, self.language)
        try:
            result = await self._apprise.async_notify(
                body=body, title=title, notify_type=self._notify_type(notification)
            )
        except Exception as exc:  # apprise plugins may raise anything; translate once, here
            # the type only, and no chained cause: a plugin's text may quote the URL's token
            raise NotifyError(
                f"apprise raised {type(exc).__name__}",
                retryable=True,
                receiver=notification.receiver,
            ) from None
        if not result:
            status = getattr(result, "status", None)
            name = getattr(status, "name", "FAILURE")
            raise NotifyError(
                f"apprise delivery {name.lower()}", retryable=True, receiver=notification.receiver
            )

    async def aclose(self) -> None:
        return None
