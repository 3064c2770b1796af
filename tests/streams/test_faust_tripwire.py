"""Tripwire: what envwatch's Faust workarounds rely on in faust-streaming, mode and aiokafka.

``streams/dispatch.py`` (inline record delivery), ``streams/brokerwatch.py``
(``WatchedConsumerThread``: bounded commits, held commits, rejoin, seek to the beginning, the
per-app fetch wait that ``streams/app.py::create_app`` asks for) reach into private code of these
libraries. Written against faust-streaming 0.15.3, mode-streaming and aiokafka 0.14.0. After an
upgrade, a failure here names the workaround that breaks and where: read the new library code,
adapt the workaround (or drop it), then this test.

No broker is needed except for the last test (embedded Tansu, skipped when unavailable).
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import textwrap
from collections.abc import Callable
from typing import Any

import aiokafka
import faust
import pytest
from aiokafka.consumer import fetcher as aiokafka_fetcher
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_driver
from mode import Service
from mode.services import WaitResults

from streams import dispatch
from streams.brokerwatch import WatchedConsumerThread

DISPATCH = "streams/dispatch.py (InlineConsumer.wait_first: inline record delivery)"
FETCH_WAIT = "streams/brokerwatch.py (WatchedConsumerThread._create_worker_consumer: fetch wait)"
WATCH = "streams/brokerwatch.py (WatchedConsumerThread)"


def _tree(fn: Callable[..., Any]) -> ast.AST:
    return ast.parse(textwrap.dedent(inspect.getsource(fn)))


def _calls(fn: Callable[..., Any]) -> list[ast.Call]:
    return [n for n in ast.walk(_tree(fn)) if isinstance(n, ast.Call)]


def _is_self_attr(node: ast.AST, *path: str) -> bool:
    """``node`` is ``self.<path[0]>.<path[1]>…``."""
    for name in reversed(path):
        if not (isinstance(node, ast.Attribute) and node.attr == name):
            return False
        node = node.value
    return isinstance(node, ast.Name) and node.id == "self"


# -- streams/dispatch.py ---------------------------------------------------------------------


def test_the_fetch_loop_delivers_with_wait_first_of_callback_and_suspend_flow_wait() -> None:
    drain = faust_consumer.Consumer._drain_messages
    delivery = [
        c
        for c in _calls(drain)
        if _is_self_attr(c.func, "wait_first")
        and len(c.args) == 2
        and not c.keywords
        and isinstance(c.args[0], ast.Call)
        and isinstance(c.args[0].func, ast.Name)
        and c.args[0].func.id == "callback"
        and isinstance(c.args[1], ast.Call)
        and _is_self_attr(c.args[1].func, "suspend_flow", "wait")
        and not c.args[1].args
    ]
    assert len(delivery) == 1, (
        f"{DISPATCH}: faust.transport.consumer.Consumer._drain_messages no longer calls exactly "
        "once `self.wait_first(callback(message), self.suspend_flow.wait())`: the inline path "
        "recognises that call by its shape (two coroutines, no timeout)"
    )
    assert "callback = self.callback" in inspect.getsource(drain), (
        f"{DISPATCH}: Consumer._drain_messages no longer takes its delivery from self.callback"
    )


def test_suspend_flow_is_an_asyncio_event_whose_wait_code_dispatch_knows() -> None:
    consumer_src = inspect.getsource(faust_consumer.Consumer.__init__)
    assert "self.suspend_flow = Event()" in consumer_src, (
        f"{DISPATCH}: faust Consumer.__init__ no longer creates suspend_flow as `Event()`"
    )
    assert vars(faust_consumer)["Event"] is asyncio.Event, (
        f"{DISPATCH}: faust.transport.consumer.Event is no longer asyncio.Event, so "
        "suspend_flow.wait() is not recognised by _FLOW_WAIT (asyncio.Event.wait.__code__)"
    )
    assert dispatch._FLOW_WAIT is asyncio.Event.wait.__code__
    probe: Any = asyncio.Event().wait()
    try:
        assert probe.cr_code is dispatch._FLOW_WAIT, (
            f"{DISPATCH}: asyncio.Event().wait() is no longer a coroutine with the code of "
            "asyncio.Event.wait: InlineConsumer.wait_first never takes its fast path"
        )
    finally:
        probe.close()


def test_mode_wait_first_signature_and_its_results() -> None:
    params = inspect.signature(Service.wait_first).parameters
    assert list(params) == ["self", "coros", "timeout"], (
        f"{DISPATCH}: mode.Service.wait_first(self, *coros, timeout=None) changed: "
        f"{list(params)}; InlineConsumer.wait_first overrides it with that signature"
    )
    assert params["coros"].kind is inspect.Parameter.VAR_POSITIONAL
    assert params["timeout"].kind is inspect.Parameter.KEYWORD_ONLY
    assert params["timeout"].default is None, (
        f"{DISPATCH}: wait_first's timeout default is no longer None (the fast path's test)"
    )
    assert WaitResults._fields == ("done", "results", "stopped"), (
        f"{DISPATCH}: mode.services.WaitResults fields changed: {WaitResults._fields}; the "
        "inline path returns WaitResults([delivery], [result], False)"
    )
    src = inspect.getsource(Service.wait_first)
    assert "self._stopped" in src and "self._crashed" in src, (  # noqa: PT018 - one premise
        f"{DISPATCH}: mode.Service.wait_first no longer waits on the service's stopped and "
        "crashed events: the module docstring's cost model (four tasks per record) is stale"
    )


def test_the_drain_loop_ignores_wait_first_results() -> None:
    """The inline path returns its own WaitResults: harmless only while the loop ignores it."""
    for node in ast.walk(_tree(faust_consumer.Consumer._drain_messages)):
        if isinstance(node, ast.Assign | ast.AnnAssign | ast.NamedExpr):
            value = node.value
            assert not (
                isinstance(value, ast.Await)
                and isinstance(value.value, ast.Call)
                and _is_self_attr(value.value.func, "wait_first")
            ), (
                f"{DISPATCH}: Consumer._drain_messages now uses wait_first's result; check that "
                "InlineConsumer's WaitResults([delivery], [result], False) still means the same"
            )


def test_the_app_builds_its_consumer_from_its_own_transport() -> None:
    install_src = inspect.getsource(dispatch.install)
    assert "app.transport.Consumer" in install_src
    transport_cls = faust_driver.Transport
    assert transport_cls.Consumer is faust_driver.Consumer, (
        f"{DISPATCH} install(): faust's aiokafka Transport.Consumer is no longer "
        "faust.transport.drivers.aiokafka.Consumer, the class InlineConsumer subclasses"
    )
    create = inspect.getsource(faust.transport.base.Transport.create_consumer)
    assert "self.Consumer(" in create, (
        f"{DISPATCH} install(): faust Transport.create_consumer no longer instantiates "
        "self.Consumer: setting it on one app's transport would not take effect"
    )


# -- the consumer thread (streams/brokerwatch.py) and the fetch wait --------------------------


def test_the_consumer_thread_comes_from_new_consumer_thread() -> None:
    src = inspect.getsource(faust_consumer.ThreadDelegateConsumer.__init__)
    assert "self._thread = self._new_consumer_thread()" in src, (
        f"{WATCH}: faust ThreadDelegateConsumer no longer builds its thread with "
        "_new_consumer_thread(); InlineConsumer overrides that to use WatchedConsumerThread"
    )
    ret = inspect.signature(faust_driver.Consumer._new_consumer_thread).return_annotation
    assert "AIOKafkaConsumerThread" in str(ret)


@pytest.mark.parametrize(
    ("method", "delegation"),
    [
        ("seek_to_committed", "self._thread.seek_to_committed()"),
        ("_commit", "self._thread.commit(offsets)"),
    ],
)
def test_the_consumer_delegates_what_watched_consumer_thread_overrides(
    method: str, delegation: str
) -> None:
    src = inspect.getsource(getattr(faust_consumer.ThreadDelegateConsumer, method))
    assert delegation in src, (
        f"{WATCH}.{method.lstrip('_')}: faust ThreadDelegateConsumer.{method} no longer calls "
        f"{delegation}: the override is bypassed"
    )


def test_watched_consumer_thread_overrides_existing_methods_with_their_signatures() -> None:
    base = faust_driver.AIOKafkaConsumerThread
    for name in ("_commit", "seek_to_committed", "_create_worker_consumer"):
        assert name in vars(WatchedConsumerThread), name
        assert hasattr(base, name), (
            f"{WATCH}.{name}: faust's AIOKafkaConsumerThread.{name} is gone; the override "
            "is dead code"
        )
        theirs = list(inspect.signature(getattr(base, name)).parameters)
        ours = list(inspect.signature(getattr(WatchedConsumerThread, name)).parameters)
        assert theirs == ours, (
            f"{WATCH}.{name}: faust's signature is now {theirs}, the override takes {ours}"
        )
    assert "self.call_thread(self._commit, offsets)" in inspect.getsource(base.commit), (
        f"{WATCH}._commit: AIOKafkaConsumerThread.commit no longer runs self._commit in the "
        "consumer thread (the bounded, holdable commit)"
    )
    for name in ("call_thread", "_ensure_consumer"):
        assert callable(getattr(base, name, None)), f"{WATCH}: {name} is gone from faust"
    create = inspect.getsource(base._create_consumer)
    assert "self._create_worker_consumer(transport)" in create, (
        f"{FETCH_WAIT}: AIOKafkaConsumerThread._create_consumer no longer builds the worker "
        "consumer with _create_worker_consumer(transport)"
    )
    for name in ("request_rejoin",):
        assert hasattr(aiokafka.consumer.group_coordinator.GroupCoordinator, name), (
            f"{WATCH}.rejoin: aiokafka GroupCoordinator.{name} is gone"
        )
    for name in ("committed", "seek_to_beginning", "assignment", "highwater"):
        assert hasattr(aiokafka.AIOKafkaConsumer, name), (
            f"{WATCH}: aiokafka AIOKafkaConsumer.{name} is gone"
        )


def test_faust_still_hard_codes_the_fetch_wait_and_aiokafka_reads_it_at_start() -> None:
    worker = _calls(faust_driver.AIOKafkaConsumerThread._create_worker_consumer)
    kwargs = {
        kw.arg: kw.value
        for c in worker
        if isinstance(c.func, ast.Attribute) and c.func.attr == "AIOKafkaConsumer"
        for kw in c.keywords
    }
    assert "fetch_max_wait_ms" in kwargs, (
        f"{FETCH_WAIT}: faust's _create_worker_consumer no longer passes fetch_max_wait_ms"
    )
    wait = kwargs["fetch_max_wait_ms"]
    if not (isinstance(wait, ast.Constant) and wait.value == 1500):
        pytest.fail(
            f"{FETCH_WAIT}: faust now passes fetch_max_wait_ms={ast.unparse(wait)} (was the "
            "constant 1500): if it is a setting, use it and drop the workaround"
        )

    init = inspect.getsource(aiokafka.AIOKafkaConsumer.__init__)
    assert "self._fetch_max_wait_ms = fetch_max_wait_ms" in init, (
        f"{FETCH_WAIT}: aiokafka AIOKafkaConsumer.__init__ no longer keeps the wait in "
        "_fetch_max_wait_ms"
    )
    start = [
        kw
        for c in _calls(aiokafka.AIOKafkaConsumer.start)
        if isinstance(c.func, ast.Name) and c.func.id == "Fetcher"
        for kw in c.keywords
        if kw.arg == "fetch_max_wait_ms"
    ]
    assert len(start) == 1, (
        f"{FETCH_WAIT}: aiokafka AIOKafkaConsumer.start no longer builds its Fetcher with "
        "fetch_max_wait_ms=…"
    )
    assert _is_self_attr(start[0].value, "_fetch_max_wait_ms"), (
        f"{FETCH_WAIT}: AIOKafkaConsumer.start passes fetch_max_wait_ms="
        f"{ast.unparse(start[0].value)}, not self._fetch_max_wait_ms: setting the attribute "
        "before start() no longer works"
    )
    requests = [
        c
        for c in ast.walk(ast.parse(inspect.getsource(aiokafka_fetcher)))
        if isinstance(c, ast.Call) and isinstance(c.func, ast.Name) and c.func.id == "FetchRequest"
    ]
    assert len(requests) == 1, (
        f"{FETCH_WAIT}: aiokafka's Fetcher builds {len(requests)} FetchRequest"
    )
    assert _is_self_attr(requests[0].args[0], "_fetch_max_wait_ms"), (
        f"{FETCH_WAIT}: aiokafka's FetchRequest no longer takes self._fetch_max_wait_ms first"
    )


# -- behaviour: per-app fetch wait, Faust's own consumer untouched ----------------------------


def _app(name: str, broker: str = "kafka://127.0.0.1:1") -> Any:  # typed: no consumer thread
    return faust.App(name, broker=broker, web_enabled=False, store="memory://")


def test_each_app_gets_its_own_fetch_wait_and_a_stock_app_keeps_fausts() -> None:
    async def main() -> None:
        fast, slow, stock = _app("tw-fast"), _app("tw-slow"), _app("tw-stock")
        dispatch.install(fast, fetch_max_wait_ms=37)
        dispatch.install(slow, fetch_max_wait_ms=250)
        got = {}
        for app in (fast, slow, stock):
            thread = app.consumer._thread
            consumer = thread._create_worker_consumer(app.transport)
            try:
                got[app.conf.id] = (type(thread), consumer._fetch_max_wait_ms)
            finally:
                await consumer.stop()  # never started: releases the client
        assert got == {
            "tw-fast": (WatchedConsumerThread, 37),
            "tw-slow": (WatchedConsumerThread, 250),
            "tw-stock": (faust_driver.AIOKafkaConsumerThread, 1500),
        }
        assert isinstance(fast.consumer, dispatch.InlineConsumer)
        assert type(fast.consumer.suspend_flow) is asyncio.Event, (
            f"{DISPATCH}: a consumer's suspend_flow is no longer an asyncio.Event"
        )
        assert not isinstance(stock.consumer, dispatch.InlineConsumer)
        assert "_create_worker_consumer" not in vars(faust_driver.AIOKafkaConsumerThread) or (
            faust_driver.AIOKafkaConsumerThread._create_worker_consumer.__module__
            == "faust.transport.drivers.aiokafka"
        ), "Faust's consumer thread class was patched"

    asyncio.run(main())


def test_install_without_a_wait_keeps_fausts() -> None:
    async def main() -> None:
        app = _app("tw-default")
        dispatch.install(app)
        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        try:
            assert consumer._fetch_max_wait_ms == 1500
        finally:
            await consumer.stop()

    asyncio.run(main())


def test_the_started_consumer_fetches_with_the_apps_wait(kafka_broker: Any) -> None:
    """Against a real broker (embedded Tansu): the started consumer's Fetcher has the wait."""

    async def main() -> None:
        app = _app("tw-started", kafka_broker.url)
        dispatch.install(app, fetch_max_wait_ms=42)
        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        await consumer.start()
        try:
            assert consumer._fetcher._fetch_max_wait_ms == 42, (
                f"{FETCH_WAIT}: the started aiokafka consumer's Fetcher does not have the wait"
            )
        finally:
            await consumer.stop()

    asyncio.run(main())
