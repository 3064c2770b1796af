"""The dispatcher's side of catalogue routes (issue 14): a receiver without a channel is held with
the reason its route could not be built; channels swapped in by a reload are used from the next
send on, and the held notification goes out once it is requeued."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from alerts.notification import Notification
from alerts.notify.dispatcher import Dispatcher
from alerts.outbox import MemoryOutbox, RowState
from tests.alerts.test_outbox import NO_JITTER, T0, note


class Collect:
    fingerprint = "collect-v1"

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, notification: Notification) -> None:
        self.sent.append(notification.id)

    async def aclose(self) -> None:
        return None


def test_held_with_the_route_problem_then_sent_after_the_channels_changed() -> None:
    why = "enterprise-e-a: environment variable ENVWATCH_SECRET_HOOK_E_A is not set"
    box = MemoryOutbox(NO_JITTER)
    dispatcher = Dispatcher(
        box, {}, problems={"enterprise-e-a": why}, poll_interval=0.01, clock=lambda: T0
    )
    n = note(1, receiver="enterprise-e-a")
    box.enqueue(n, T0, partition=0)

    async def first() -> None:
        await asyncio.wait_for(dispatcher.run_until_idle(), 5)

    asyncio.run(first())
    assert box.state(n.id, "enterprise-e-a") is RowState.HELD
    held = box.held("enterprise-e-a")
    assert [i.last_error for i in held] == [why]

    channel = Collect()
    dispatcher.replace_channels({"enterprise-e-a": channel})
    assert dispatcher.problems == {}
    keys = box.requeue_held(T0, unless_fingerprint={"enterprise-e-a": channel.fingerprint})
    assert keys == [(n.id, "enterprise-e-a")]
    asyncio.run(first())
    assert channel.sent == [n.id]
    assert box.state(n.id, "enterprise-e-a") is RowState.SENT


def test_refresh_runs_before_each_round() -> None:
    box = MemoryOutbox(NO_JITTER)
    calls: list[int] = []
    channel = Collect()

    async def refresh() -> None:
        calls.append(1)
        dispatcher.replace_channels({"duty-x": channel})

    dispatcher = Dispatcher(box, {}, refresh=refresh, poll_interval=0.01)
    box.enqueue(note(2, receiver="duty-x"), datetime.now(UTC), partition=0)

    async def run() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(dispatcher.run(stop))
        for _ in range(200):
            if channel.sent:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await task

    asyncio.run(run())
    assert calls
    assert channel.sent == [note(2, receiver="duty-x").id]
