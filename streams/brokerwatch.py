"""Kafka broker faults: bounded logging and a watch that recovers from an empty restart.

What aiokafka and Faust do when the broker goes away and comes back (faust-streaming 0.15,
aiokafka 0.14, read in their source and seen against Tansu, issue 13):

* aiokafka logs every failed attempt: ``Unable connect to node``, ``Unable to update metadata``,
  ``Failed fetch messages``, ``Group Coordinator Request failed`` … at ERROR, several a second.
* ``GroupCoordinator.commit_offsets`` retries a *retriable* error forever, every
  ``retry_backoff_ms`` (100 ms), with the same offsets, logging each attempt. After Tansu came
  back empty, a commit of offsets taken before the restart got ``UNKNOWN_TOPIC_OR_PARTITION``
  on every try: ~3,000 ``OffsetCommit failed`` lines in two minutes, and Faust's commits stuck
  behind it.
* Faust's fetch loop drops every record whose offset is below the partition's *read offset*
  (``Consumer._drain_messages``: ``DROPPED MESSAGE ROFF``, logged at dev level only). An empty
  broker numbers the new records from 0 again, so until a rebalance pops the read offsets the
  worker silently processes nothing — what the probe saw for ≥ 2.5 min in one of two runs. A
  rebalance (revoke + assign) resets the read offsets, the acked offsets and the committed
  offsets, and seeks to the group's committed offsets (none on an empty broker: earliest).

What envwatch does about it:

* :class:`streams.topics.RepeatFilter` on every ``aiokafka`` logger: the first record of each message
  template passes, repeats are counted and dropped until the broker is healthy again (or
  ``window`` seconds passed: a lasting fault stays visible, one line per template and window).
* :class:`WatchedConsumerThread` bounds one offset commit to ``COMMIT_TIMEOUT`` s: a commit the
  broker keeps refusing is abandoned and the next one carries the current offsets.
* :class:`WatchedConsumerThread` also holds commits from the moment the broker is seen lost
  until the next assignment (offsets read from a broker that lost its data must never be
  committed to the new one), and after an empty restart seeks every partition to its beginning.
* :class:`BrokerWatch` (a timer of the worker, :func:`install`) asks the broker every
  ``INTERVAL`` s for envwatch's topics (metadata) and reads the high watermark of the assigned
  partitions from the last fetch. It logs one line per state change — broker lost, broker back,
  broker restarted empty. The broker came back empty when envwatch's topics are gone, when a
  partition ends below what the worker already read, or — the topics may have been recreated by
  the bridge first — when the group's committed offsets known before the loss are gone (asked
  with OffsetFetch; the admin client's ListConsumerGroupOffsets breaks on Tansu). Then it
  recreates the topics (:func:`streams.topics.ensure_topics`: the partition count and compaction
  envwatch means) and makes the consumer rejoin and read every partition from its beginning:
  the replay re-emits identical records, so outputs whose send the restarted broker refused are
  emitted again.

So after a broker restart the worker resumes within ``INTERVAL`` + one group join
(``ENVWATCH_REBALANCE_TIMEOUT`` at most) of the broker answering again; the test
(tests/integration/test_fault_brokers.py) measures it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from streams import kafkasecurity, topics
from streams.settings import KafkaSecuritySettings
from streams.topics import REPEATS, explicit_topics_only, quiet_client_logs

log = logging.getLogger(__name__)

#: s between two looks at the broker (envwatch's choice [MEM]: one cheap metadata request)
INTERVAL: Final = 2.0
#: s within which another sign of the same empty restart is logged at INFO, not WARNING
#: (envwatch's choice [MEM]: a rejoin takes up to the rebalance timeout, 30 s by default)
EPISODE: Final = 60.0
#: s one offset commit may take before it is abandoned (envwatch's choice [MEM]: commits are
#: sent every second, broker_commit_interval; a healthy commit takes milliseconds)
COMMIT_TIMEOUT: Final = 10.0


class WatchedConsumerThread(AIOKafkaConsumerThread):
    """Faust's aiokafka consumer thread with what :class:`BrokerWatch` needs.

    * An offset commit gives up after ``COMMIT_TIMEOUT`` s (the next one carries the offsets of
      then) and none is sent while commits are *held*: from the moment the broker is seen lost
      until the group is joined again. Offsets read from a broker that lost its data must never
      be committed to the new one: the next assignment would seek past records never read.
    * After an empty restart the next assignment starts every partition at its beginning instead
      of the group's committed offset (which, if anything, is such a stale commit).
    """

    holding = False  # commits held (set and cleared by BrokerWatch / the next assignment)
    from_beginning = False  # the next assignment seeks to the beginning
    #: ms the worker consumer's fetch may wait for data; None: Faust's hard-coded 1 500 ms.
    #: Set per app by :func:`streams.dispatch.install` (``ENVWATCH_FETCH_MAX_WAIT_MS``).
    fetch_max_wait_ms: int | None = None

    def _create_worker_consumer(self, transport: Any) -> Any:
        """Faust's worker consumer, with this app's fetch wait. Faust passes
        ``fetch_max_wait_ms=1500`` and offers no setting; aiokafka keeps the value in
        ``_fetch_max_wait_ms`` until ``start()`` hands it to its Fetcher, so setting it on the
        unstarted consumer is enough (tests/streams/test_faust_tripwire.py guards all three)."""
        consumer = super()._create_worker_consumer(transport)
        if self.fetch_max_wait_ms is not None:
            consumer._fetch_max_wait_ms = self.fetch_max_wait_ms
        return consumer

    async def _commit(self, offsets: Mapping[Any, int]) -> bool:
        if self.holding:
            return False
        inner = asyncio.ensure_future(super()._commit(offsets))
        inflight: set[asyncio.Future[Any]] = self.__dict__.setdefault("_inflight", set())
        inflight.add(inner)
        try:
            done, _ = await asyncio.wait({inner}, timeout=COMMIT_TIMEOUT)
            if inner in done and not inner.cancelled() and inner.exception() is None:
                return bool(inner.result())
            inner.cancel()
            return False
        finally:
            inflight.discard(inner)

    async def hold_commits(self) -> None:
        """Send no commit until the next assignment; abandon the ones in flight."""

        async def hold() -> None:
            self.holding = True
            for fut in list(self.__dict__.get("_inflight", ())):
                fut.cancel()

        await self.call_thread(hold)

    def release_commits(self) -> None:
        self.holding = False

    async def rejoin(self, *, from_beginning: bool) -> None:
        """Make the consumer rejoin its group (revoke + assign: Faust resets its offsets)."""
        self.from_beginning = self.from_beginning or from_beginning

        async def request() -> None:
            self._ensure_consumer()._coordinator.request_rejoin()

        await self.call_thread(request)

    async def forgot(self, tps: list[Any]) -> bool:
        """True if the broker has no committed offset for any of ``tps`` (ask at most 10 s;
        False when it cannot tell)."""
        consumer = self._ensure_consumer()

        async def ask() -> bool:
            for tp in tps:
                if await consumer.committed(tp) is not None:
                    return False
            return True

        try:
            return bool(await asyncio.wait_for(self.call_thread(ask), 10))
        except Exception:
            return False

    async def seek_to_committed(self) -> Mapping[Any, int]:
        if not self.from_beginning:
            offsets: Mapping[Any, int] = await super().seek_to_committed()
            self.holding = False
            return offsets
        consumer = self._ensure_consumer()
        tps = list(consumer.assignment())
        if tps:
            await self.call_thread(consumer.seek_to_beginning, *tps)
        self.from_beginning = self.holding = False
        log.info(
            "consumer: %d partition(s) start at their beginning (broker restarted empty)", len(tps)
        )
        return {}  # Faust's read and committed offsets stay unset (popped at the revocation)


class BrokerWatch:
    """Looks at the broker every :data:`INTERVAL` s; see the module docstring."""

    def __init__(
        self,
        app: Any,
        kafka: str,
        partitions: int,
        prefix: str,
        security: KafkaSecuritySettings | None = None,
    ) -> None:
        self.app = app
        self.kafka = kafka
        self.security = security  # None: from the environment (streams.kafkasecurity)
        self.partitions = partitions
        self.prefix = prefix
        self.wanted = {topics.name(t, prefix) for t in (*topics.EXTERNAL, *topics.STATE)}
        self.lost_since: float | None = None
        self.restarts = 0  # empty restarts handled (topics recreated, group rejoined)
        self._last_restart: float | None = None
        self._committed: dict[Any, int] = {}
        self._admin: Any = None

    async def _topics(self) -> set[str]:
        from aiokafka.admin import AIOKafkaAdminClient

        if self._admin is None:
            admin = AIOKafkaAdminClient(
                bootstrap_servers=topics.bootstrap_of(self.kafka),
                request_timeout_ms=5000,
                **kafkasecurity.client_kwargs(self.security),
            )
            await admin.start()
            self._admin = admin
        return set(await asyncio.wait_for(self._admin.list_topics(), 10))

    async def _drop_admin(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            with contextlib.suppress(Exception):
                await admin.close()

    def _thread(self) -> WatchedConsumerThread | None:
        thread = getattr(self.app.consumer, "_thread", None)
        return thread if isinstance(thread, WatchedConsumerThread) else None

    async def check(self) -> None:
        """One look at the broker (the worker's timer calls this every :data:`INTERVAL` s)."""
        thread = self._thread()
        try:
            existing = await self._topics()
        except Exception as exc:  # unreachable, timed out, not started yet …
            await self._drop_admin()
            if self.lost_since is None:
                self.lost_since = time.monotonic()
                # what the group had committed: an empty broker comes back without it
                committed = getattr(self.app.consumer, "_committed_offset", None) or {}
                self._committed = {tp: off for tp, off in committed.items() if off}
                if thread is not None:
                    await thread.hold_commits()
                log.warning(
                    "Kafka broker %s unreachable (%s); offset commits held, client errors "
                    "logged once each until it is back",
                    topics.bootstrap_of(self.kafka),
                    type(exc).__name__,
                )
            return
        missing = self.wanted - existing
        truncated = self._truncated()
        # back and the topics are there (another envwatch process may have recreated them
        # first): has the broker forgotten what the group committed?
        back = self.lost_since is not None and not missing and not truncated
        if (
            back
            and thread is not None
            and self._committed
            and await thread.forgot(list(self._committed))
        ):
            missing = {"the consumer group's committed offsets"}
        if missing or truncated:
            if thread is not None:
                await thread.hold_commits()
            await topics.ensure_topics(
                self.kafka, self.partitions, self.prefix, security=self.security
            )
            self.restarts += 1
            now = time.monotonic()
            quiet = self._last_restart is not None and now - self._last_restart < EPISODE
            self._last_restart = now
            log.log(
                logging.INFO if quiet else logging.WARNING,
                "Kafka broker restarted without its data (%s): topics recreated, consumer "
                "group rejoining from the beginning of every partition; records acknowledged "
                "before the restart and not yet processed are lost with the broker's storage",
                "gone: " + ", ".join(sorted(missing))
                if missing
                else f"{len(truncated)} partition(s) end below the offsets read",
            )
            if thread is not None:
                await thread.rejoin(from_beginning=True)
        elif thread is not None and thread.holding and self.lost_since is None:
            # back with its data, it seems: one more look (the fetcher meets an emptied log
            # within a fetch) before the held commits go out again
            thread.release_commits()
        if self.lost_since is not None:
            log.info(
                "Kafka broker %s back after %.1f s (%d repeated client log lines suppressed)",
                topics.bootstrap_of(self.kafka),
                time.monotonic() - self.lost_since,
                REPEATS.reset(),
            )
            self.lost_since = None
        elif missing or truncated:
            REPEATS.reset()

    def _truncated(self) -> list[Any]:
        """Assigned partitions whose log now ends below what this worker already read.

        The high watermark is the one of the latest fetch response (no request): a healthy
        log's is above every offset fetched from it. Tansu's ListOffsets(latest) can lag the
        true end (tests/integration/worker_support.read_all), so it is not asked.

        Faust's read offset means two things: the last offset delivered (a healthy end is above
        it), or — right after an assignment, before anything is delivered — the committed
        offset, i.e. the *next* one to read (Faust's ``perform_seek``): a partition read to its
        end and then taken over has exactly its end there. A log ending at that offset is whole;
        only one ending below it was truncated (before, a takeover of fully read partitions —
        common once envelopes carry a backlog in a few records — looked like an empty broker and
        sent the group back to the beginning of every partition)."""
        consumer = self.app.consumer
        read: Mapping[Any, int | None] = getattr(consumer, "_read_offset", {})
        committed: Mapping[Any, int | None] = getattr(consumer, "_committed_offset", {})
        out = []
        for tp in consumer.assignment():
            offset = read.get(tp)
            end = consumer.highwater(tp) if offset is not None else None
            if offset is None or end is None:
                continue
            next_to_read = committed.get(tp) == offset
            if end < offset or (end == offset and not next_to_read):
                out.append(tp)
        return out

    async def close(self) -> None:
        await self._drop_admin()


def install(
    app: Any,
    kafka: str,
    partitions: int,
    prefix: str,
    security: KafkaSecuritySettings | None = None,
) -> BrokerWatch:
    """Quiet aiokafka's repeats and run a :class:`BrokerWatch` as a timer of ``app``."""
    quiet_client_logs()
    explicit_topics_only()
    watch = BrokerWatch(app, kafka, partitions, prefix, security)

    @app.timer(INTERVAL)  # type: ignore[untyped-decorator]  # faust is untyped
    async def _broker_watch() -> None:
        await watch.check()

    return watch


#: Output = (topic, key, value, partition or None)
_Send = tuple[str, bytes | None, bytes, int | None]


async def send_confirmed(producer: Any, items: Sequence[_Send]) -> None:
    """Send ``items`` with Faust's producer and return only when Kafka acknowledged every one.

    ``producer.send`` hands back a future per record and ``flush`` waits for them without
    raising, so a refused send was only logged ("Future exception was never retrieved") while
    the stage acknowledged its input: right after Tansu restarted empty, the first sends to a
    recreated topic were refused (``UnknownError``) and ~125 samples' outputs were lost in the
    test (tests/integration/test_fault_brokers.py). When any record is refused the whole batch
    is sent again (so the last copies keep their order), with backoff 0.5…5 s [MEM], until Kafka
    takes it; one WARNING when it starts, one INFO when it is through. Consumers downstream are
    idempotent (identical records, identical ids)."""
    pending = list(items)
    delay, failures = 0.5, 0
    while pending:
        futures = [await producer.send(t, k, v, part, None, None) for t, k, v, part in pending]
        if futures:
            await producer.flush()
        results = await asyncio.gather(*futures, return_exceptions=True)
        refused = [
            item for item, r in zip(pending, results, strict=True) if isinstance(r, BaseException)
        ]
        if not refused:
            break
        if failures == 0:
            first = next(r for r in results if isinstance(r, BaseException))
            log.warning(
                "Kafka refused %d of %d output record(s) (%r); sending them again before the "
                "input is acknowledged",
                len(refused),
                len(pending),
                first,
            )
        failures += 1  # the whole batch again: its records' last copies keep their order
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)
    if failures:
        log.info("Kafka took the refused output records after %d attempt(s)", failures + 1)
