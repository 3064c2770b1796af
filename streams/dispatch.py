"""Inline dispatch of fetched records: Faust's consumer without four tasks per record.

Faust's fetch loop (``Consumer._drain_messages``) hands every record to the conductor with
``await self.wait_first(callback(record), self.suspend_flow.wait())`` so that a rebalance can
interrupt a delivery blocked on a full stream buffer. ``mode.Service.wait_first`` wraps each of
its arguments, and the service's own *stopped* and *crashed* events, in a task and waits for the
first: four tasks, an ``asyncio.wait`` and their cancellation per record. On this project's 2-core
machine that costs about 150 µs of the 220 µs a stock Faust consumer spends on a record (a bare
``take_events`` consumer of Tansu: 4.4k records/s stock, 13.8k/s without it — bench_worker).

The delivery almost never waits: the conductor's callback only awaits the flow control (held
during a rebalance), the producer buffer's ebb and a full stream queue. :class:`InlineConsumer`
therefore steps the callback eagerly, like Python 3.12's eager tasks; when it completes without
suspending nothing else is created. When it does suspend, the started coroutine is adopted by a
task (:func:`adopt`) and Faust's own ``wait_first`` takes over — so a rebalance interrupts a
blocked delivery exactly as before. Nothing about ordering, acknowledgement or commits changes.

``install(app)`` switches one app's transport to it; other apps in the process (the benchmark's
stock baseline) keep Faust's consumer. Its consumer thread is
:class:`streams.brokerwatch.WatchedConsumerThread` (bounded offset commits, a rejoin on demand:
what the worker needs after a broker restart), with the app's own fetch wait
(``install(app, fetch_max_wait_ms=…)``: Faust hard-codes 1 500 ms).

What this relies on in Faust, mode and aiokafka is asserted by
tests/streams/test_faust_tripwire.py: an upgrade that changes it fails there first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any

import faust
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from mode.services import WaitResults

from streams.brokerwatch import WatchedConsumerThread

#: the code object of ``suspend_flow.wait()``: identifies the fetch loop's delivery call
_FLOW_WAIT = asyncio.Event.wait.__code__


class _Reyield:
    """Awaitable that passes one value a coroutine yielded up to the running task."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __await__(self) -> Generator[Any, Any, Any]:
        return (yield self.value)


async def adopt(coro: Coroutine[Any, Any, Any], pending: Any) -> Any:
    """Continue ``coro``, already stepped once and suspended on ``pending`` (what it yielded:
    a future, or ``None`` for a bare yield), inside the task that awaits this. Values and
    exceptions the task sends (a future's result, a cancellation) go on to ``coro``."""
    while True:
        try:
            sent = await _Reyield(pending)
        except BaseException as exc:  # forwarded into the coroutine, as a task would
            try:
                pending = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
            continue
        try:
            pending = coro.send(sent)
        except StopIteration as stop:
            return stop.value


class InlineConsumer(AIOKafkaConsumer):
    """Faust's aiokafka consumer whose record delivery runs inline when it does not wait."""

    #: the fetch wait of this app's consumer thread (None: Faust's); :func:`install` sets it on
    #: a subclass of its own per app, so apps in one process never share it
    fetch_max_wait_ms: int | None = None

    def _new_consumer_thread(self) -> WatchedConsumerThread:
        thread = WatchedConsumerThread(self, loop=self.loop, beacon=self.beacon)
        thread.fetch_max_wait_ms = self.fetch_max_wait_ms
        return thread

    async def wait_first(self, *coros: Any, timeout: Any = None) -> Any:  # noqa: ASYNC109 - overrides mode's signature
        if (
            timeout is None
            and len(coros) == 2
            and asyncio.iscoroutine(coros[0])
            and getattr(coros[1], "cr_code", None) is _FLOW_WAIT
            and not self.suspend_flow.is_set()
        ):
            delivery, flow_wait = coros
            try:
                pending = delivery.send(None)
            except StopIteration as stop:  # delivered without waiting: the common case
                flow_wait.close()
                return WaitResults([delivery], [stop.value], False)
            except BaseException:
                flow_wait.close()
                raise
            coros = (adopt(delivery, pending), flow_wait)
        return await super().wait_first(*coros, timeout=timeout)


def install(app: faust.App, *, fetch_max_wait_ms: int | None = None) -> None:
    """Make ``app`` (not yet started) build an :class:`InlineConsumer` whose worker consumer
    waits at most ``fetch_max_wait_ms`` for data (None: Faust's 1 500 ms). Only this app's
    transport changes: no class of Faust's is modified."""

    class AppConsumer(InlineConsumer):
        pass

    AppConsumer.fetch_max_wait_ms = fetch_max_wait_ms
    app.transport.Consumer = AppConsumer  # type: ignore[misc]  # this app only, not the class
