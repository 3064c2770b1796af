"""streams.dispatch: the fetch loop's record delivery, stepped inline and adopted when it waits.

The fast path must be invisible: a delivery that completes without waiting gives its result and
starts no task; one that waits (a full stream buffer, a rebalance holding the flow control) is
continued by a task exactly as if it had been one from the start — values, exceptions and
cancellation included.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streams.dispatch import InlineConsumer, adopt


async def _waits_then_returns(fut: asyncio.Future[int], log: list[str]) -> int:
    log.append("before")
    got = await fut
    log.append(f"after {got}")
    await asyncio.sleep(0)  # a bare yield, too
    return got * 2


def test_adopt_continues_a_started_coroutine_with_the_futures_result() -> None:
    async def main() -> None:
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        log: list[str] = []
        coro = _waits_then_returns(fut, log)
        pending = coro.send(None)  # runs to its first wait, as the inline step does
        assert pending is fut
        assert log == ["before"]
        task = asyncio.ensure_future(adopt(coro, pending))
        await asyncio.sleep(0)
        assert not task.done()
        fut.set_result(21)
        assert await task == 42
        assert log == ["before", "after 21"]

    asyncio.run(main())


def test_adopt_forwards_exceptions_and_cancellation() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[int] = loop.create_future()
        coro = _waits_then_returns(fut, [])
        task = asyncio.ensure_future(adopt(coro, coro.send(None)))
        await asyncio.sleep(0)
        fut.set_exception(ValueError("broken"))
        with pytest.raises(ValueError, match="broken"):
            await task

        fut2: asyncio.Future[int] = loop.create_future()
        coro2 = _waits_then_returns(fut2, [])
        task2 = asyncio.ensure_future(adopt(coro2, coro2.send(None)))
        await asyncio.sleep(0)
        task2.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task2
        assert fut2.cancelled()  # the task cancelled what the coroutine waited on
        assert coro2.cr_frame is None  # and the coroutine itself is finished

    asyncio.run(main())


def _consumer() -> Any:
    """An InlineConsumer with only what wait_first reads (a real one needs a broker; the fetch
    loop around it runs in every worker integration test)."""
    c = object.__new__(InlineConsumer)
    c.suspend_flow = asyncio.Event()
    return c


def test_a_delivery_that_does_not_wait_runs_inline_without_a_task() -> None:
    async def deliver(log: list[str]) -> str:
        log.append("delivered")
        return "ok"

    async def main() -> None:
        c = _consumer()
        log: list[str] = []
        before = len(asyncio.all_tasks())
        flow_wait = c.suspend_flow.wait()
        result = await c.wait_first(deliver(log), flow_wait)
        assert log == ["delivered"]
        assert result.results == ["ok"]
        assert not result.stopped
        assert len(asyncio.all_tasks()) == before
        assert flow_wait.cr_frame is None  # closed, never left pending

    asyncio.run(main())


def test_a_delivery_that_waits_is_finished_by_faust_s_wait_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def main() -> None:
        c = _consumer()
        calls: list[int] = []

        async def faust_wait_first(*coros: Any, **_: Any) -> Any:
            calls.append(len(coros))
            coros[1].close()  # the flow never suspends here
            return await coros[0]  # the adopted delivery, awaited to its end

        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0.01, fut.set_result, 5)
        log: list[str] = []
        monkeypatch.setattr(
            InlineConsumer.__mro__[1], "wait_first", lambda _s, *a, **k: faust_wait_first(*a, **k)
        )
        got = await c.wait_first(_waits_then_returns(fut, log), c.suspend_flow.wait())
        assert got == 10
        assert calls == [2]
        assert log == ["before", "after 5"]

    asyncio.run(main())
