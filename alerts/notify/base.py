"""The channel contract: a :class:`Notifier` sends one notification or raises :class:`NotifyError`.

Error hierarchy::

    alerts.errors.AlertsError
    └── NotifyError          a delivery failed; ``retryable`` says whether trying again can help,
                             ``receiver`` / ``status`` / ``reason`` say where and why

Each channel translates its library's exceptions (httpx, apprise, smtplib …) into ``NotifyError``
once, at its boundary, with ``raise … from exc`` (style.md #6): nothing foreign escapes a channel,
and the dispatcher decides retry or dead-letter from ``retryable`` alone (style.md #7).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from alerts.errors import AlertsError
from alerts.notification import Notification


class NotifyError(AlertsError):
    """A failed delivery."""

    def __init__(
        self,
        reason: str,
        *,
        retryable: bool,
        receiver: str = "",
        status: int | None = None,
    ) -> None:
        self.reason = reason
        self.retryable = retryable
        self.receiver = receiver
        self.status = status
        kind = "retryable" if retryable else "permanent"
        where = f" to {receiver}" if receiver else ""
        super().__init__(f"{kind} delivery failure{where}: {reason}")


@runtime_checkable
class Notifier(Protocol):
    """A channel for one receiver. ``send`` returns when the receiver accepted the notification."""

    async def send(self, notification: Notification) -> None: ...

    async def aclose(self) -> None: ...
