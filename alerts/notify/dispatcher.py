"""The delivery loop: outbox → channel → mark, with bounded concurrency (asyncio).

Each round takes the due rows of the outbox that are not already in flight and whose receiver is
below its own concurrency cap, leases them, and sends each in its own task; the loop does not
wait for a round to finish before starting the next. So a slow or dead receiver holds at most
``per_receiver`` of the ``concurrency`` slots and never delays the others (issue 7).

Outcomes: delivered → ``mark_sent``; ``NotifyError`` → ``mark_failed(retryable=…)`` (backoff, or
*held* when not retryable — kept for ``envwatch notify replay`` or a configuration change of the
receiver, alerts.outbox); a send that exceeds ``send_timeout`` → retryable failure; any other
exception from a channel → retryable failure with its type (the loop never dies of a channel); a
receiver without a channel → held. ``after(item)`` (optional, awaited) sees every row after its
change: the worker writes it to the delivery ledger there (streams.deliveries).

A killed dispatcher loses nothing: rows it had leased come back when their lease expires (the
SQLite outbox) or when another worker takes the partition over (the Kafka ledger) and are sent
again with the same ``Idempotency-Key``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from alerts.notify.base import Notifier, NotifyError
from alerts.notify.chat import AppriseNotifier
from alerts.notify.webhook import WebhookNotifier, scrub
from alerts.outbox import MemoryOutbox, Outbox, OutboxError, OutboxItem, RetryOutcome
from alerts.settings import AlertsSettings

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class DispatchStats:
    """Counters since start (for logs, the bench and the data-quality dashboard)."""

    sent: int = 0
    failed_retryable: int = 0
    failed_permanent: int = 0
    held: int = 0
    timeouts: int = 0
    by_receiver: Counter[str] = field(default_factory=Counter)


class Dispatcher:
    """Deliver what the outbox holds through each receiver's channel."""

    def __init__(
        self,
        outbox: Outbox | MemoryOutbox,
        channels: Mapping[str, Notifier],
        *,
        concurrency: int = 16,
        per_receiver: int = 4,
        lease: timedelta = timedelta(seconds=60),
        send_timeout: float = 30.0,
        poll_interval: float = 0.5,
        clock: Callable[[], datetime] = _now,
        after: Callable[[OutboxItem], Awaitable[None]] | None = None,
        problems: Mapping[str, str] | None = None,
        refresh: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        if concurrency < 1 or per_receiver < 1:
            raise ValueError("concurrency and per_receiver must be at least 1")
        if lease.total_seconds() <= send_timeout:
            raise ValueError("lease must be longer than send_timeout")
        self.outbox = outbox
        self.channels = dict(channels)
        #: receiver → why it has no channel (a route that could not be built; no secret in it)
        self.problems = dict(problems or {})
        #: awaited before every round of :meth:`run` (the worker swaps channels on a reload)
        self.refresh = refresh
        self._retired: list[Notifier] = []
        self.concurrency = concurrency
        self.per_receiver = min(per_receiver, concurrency)
        self.lease = lease
        self.send_timeout = send_timeout
        self.poll_interval = poll_interval
        self.clock = clock
        self.after = after
        self.stats = DispatchStats()
        self._inflight: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._per_receiver: Counter[str] = Counter()
        self._wake = asyncio.Event()

    # -- public

    def wake(self) -> None:
        """Tell the loop new rows were enqueued (otherwise it polls every ``poll_interval``)."""
        self._wake.set()

    def replace_channels(
        self, channels: Mapping[str, Notifier], problems: Mapping[str, str] | None = None
    ) -> None:
        """Use these channels from the next send on (a catalogue reload). Sends in flight keep
        the channel they started with; the replaced ones are closed by :meth:`aclose`."""
        old = self.channels
        self.channels = dict(channels)
        self.problems = dict(problems or {})
        kept = {id(c) for c in self.channels.values()}
        self._retired.extend(c for c in old.values() if id(c) not in kept)

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    def fill(self) -> int:
        """Start sends for due rows up to the concurrency limits; returns how many started."""
        free = self.concurrency - len(self._inflight)
        if free <= 0:
            return 0
        now = self.clock()
        busy = [r for r, n in self._per_receiver.items() if n >= self.per_receiver]
        # Receivers at their cap are excluded in the query, so their backlog cannot hide others'.
        candidates = self.outbox.due(now, limit=free * 4, exclude=busy)
        chosen: list[OutboxItem] = []
        taken: Counter[str] = Counter()
        for item in candidates:
            key = (item.id, item.receiver)
            if key in self._inflight:
                continue
            if self._per_receiver[item.receiver] + taken[item.receiver] >= self.per_receiver:
                continue
            chosen.append(item)
            taken[item.receiver] += 1
            if len(chosen) >= free:
                break
        if not chosen:
            return 0
        self.outbox.lease([(i.id, i.receiver) for i in chosen], now + self.lease)
        for item in chosen:
            key = (item.id, item.receiver)
            self._per_receiver[item.receiver] += 1
            task = asyncio.create_task(self._deliver(item), name=f"notify:{item.receiver}")
            self._inflight[key] = task
            task.add_done_callback(functools.partial(self._done, key))
        return len(chosen)

    async def run(self, stop: asyncio.Event, *, drain_timeout: float = 10.0) -> None:
        """Loop until ``stop`` is set; then wait up to ``drain_timeout`` s for sends in flight."""
        while not stop.is_set():
            if self.refresh is not None:
                try:
                    await self.refresh()
                except Exception:  # keep delivering with the channels it has
                    log.exception("refreshing the channels failed")
            self.fill()
            await self._wait(stop)
        await self._drain(drain_timeout)

    async def run_until_idle(self) -> None:
        """Deliver until nothing is pending or in flight (tests, backfills).

        Rows in backoff count as pending: bound the call with ``asyncio.timeout``.
        """
        while True:
            self.fill()
            if not self._inflight and self.outbox.next_due_at() is None:
                return
            await self._wait(None)

    async def settle(self, keys: Collection[tuple[str, str]], grace: float) -> int:
        """Wait up to ``grace`` s for the sends of ``keys`` in flight, then cancel the rest (a
        partition is being handed over); returns how many were cancelled — their outcome is
        unknown, the next owner sends them again with the same ``Idempotency-Key``."""
        tasks = [t for k, t in self._inflight.items() if k in keys]
        if not tasks:
            return 0
        _done, pending = await asyncio.wait(tasks, timeout=grace)
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.wait(pending)
        return len(pending)

    async def aclose(self) -> None:
        """Wait for sends in flight, then close every channel."""
        await self._drain(self.send_timeout)
        for channel in [*self.channels.values(), *self._retired]:
            try:
                await channel.aclose()
            except Exception:  # closing is best effort
                log.exception("closing a channel failed")

    # -- internals

    def _done(self, key: tuple[str, str], _task: asyncio.Task[None]) -> None:
        self._inflight.pop(key, None)
        self._per_receiver[key[1]] -= 1
        self._wake.set()

    async def _wait(self, stop: asyncio.Event | None) -> None:
        timeout = self.poll_interval
        due = self.outbox.next_due_at()
        if due is not None:
            timeout = max(0.0, min(timeout, (due - self.clock()).total_seconds()))
        waiters = [asyncio.ensure_future(self._wake.wait())]
        if stop is not None:
            waiters.append(asyncio.ensure_future(stop.wait()))
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
        self._wake.clear()

    async def _drain(self, grace: float) -> None:
        if self._inflight:
            await asyncio.wait(list(self._inflight.values()), timeout=grace)

    async def _deliver(self, item: OutboxItem) -> None:
        n = item.notification
        channel = self.channels.get(item.receiver)
        if channel is None:
            why = self.problems.get(item.receiver, "no channel configured for this receiver")
            await self._failed(item, retryable=False, error=why)
            return
        try:
            await asyncio.wait_for(channel.send(n), timeout=self.send_timeout)
        except NotifyError as exc:
            await self._failed(item, retryable=exc.retryable, error=str(exc))
            return
        except TimeoutError:
            self.stats.timeouts += 1
            await self._failed(item, retryable=True, error=f"send exceeded {self.send_timeout}s")
            return
        except Exception as exc:  # a channel bug must not kill the loop
            # the type only: an exception's text may carry a URL with a token (issue 13)
            log.error("channel for %s raised %s", item.receiver, type(exc).__name__)
            await self._failed(item, retryable=True, error=f"channel raised {type(exc).__name__}")
            return
        try:
            self.outbox.mark_sent(n.id, item.receiver, self.clock())
        except OutboxError as exc:  # the row was handed over meanwhile
            log.info("notification %s to %s sent, row gone: %s", n.id, item.receiver, exc.reason)
            return
        self.stats.sent += 1
        self.stats.by_receiver[item.receiver] += 1
        await self._after(item)

    async def _after(self, item: OutboxItem) -> None:
        if self.after is None:
            return
        try:
            await self.after(self.outbox.get(item.id, item.receiver))
        except OutboxError:
            return
        except Exception:  # the hook (a ledger write) failed: the row is sent again later
            log.exception("after-send hook failed for %s to %s", item.id, item.receiver)

    async def _failed(self, item: OutboxItem, *, retryable: bool, error: str) -> None:
        channel = self.channels.get(item.receiver)
        try:
            decision = self.outbox.mark_failed(
                item.id,
                item.receiver,
                self.clock(),
                retryable=retryable,
                error=scrub(error),
                fingerprint=str(getattr(channel, "fingerprint", "")),
            )
        except OutboxError as exc:
            log.info("notification %s to %s failed, row gone: %s", item.id, item.receiver, exc)
            return
        if decision.outcome is RetryOutcome.HELD:
            self.stats.held += 1
            log.warning(
                "notification %s to %s held (kept for envwatch notify replay): %s",
                item.id,
                item.receiver,
                scrub(error),
            )
        elif decision.next_at is None:
            self.stats.failed_permanent += 1
            log.warning(
                "notification %s to %s dead-lettered (%s): %s",
                item.id,
                item.receiver,
                decision.outcome.value,
                scrub(error),
            )
        else:
            self.stats.failed_retryable += 1
        await self._after(item)


def channels_from_settings(settings: AlertsSettings) -> dict[str, Notifier]:
    """One channel per configured receiver: webhooks, then apprise URLs (chat robots, mail)."""
    channels: dict[str, Notifier] = {}
    for name, hook in settings.webhooks.items():
        channels[name] = WebhookNotifier(
            hook.url,
            hook.secret.get_secret_value(),
            external_url=settings.external_url,
            timeout=hook.timeout_seconds,
            ca_file=settings.webhook_ca_file,
        )
    for name, target in settings.apprise.items():
        if name in channels:
            raise NotifyError(
                "receiver has both a webhook and an apprise URL", retryable=False, receiver=name
            )
        channels[name] = AppriseNotifier(target.url.get_secret_value(), language=target.language)
    return channels
