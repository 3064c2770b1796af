"""Kafka side of the alerts service: the view's feed and the command producer (docs/api.md §5).

The feed reads ``alert-events``, ``alert-commands`` and ``notifications`` **without a consumer
group**: it assigns every partition and seeks to the beginning, so a restarted service rebuilds
the same view. The service is ready once it has read up to the end offsets it saw at start.

Commands go to ``aggregates`` keyed by the locality id with aiokafka's default partitioner —
murmur2 of the key, the Java client's, which is also what Faust's aiokafka transport uses (its
producer takes ``app.conf.producer_partitioner or aiokafka.partitioner.DefaultPartitioner()``, and
envwatch sets no producer_partitioner) — so a command lands on the partition of its locality's
data.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from alerts.commands import Command
from alerts.model import Transition
from alerts.notification import Notification
from streams import kafkasecurity, topics
from streams.api.view import View
from streams.commands import decode_result, encode_command

log = logging.getLogger(__name__)


class KafkaFeed:
    """Folds the three topics into ``view`` until stopped."""

    def __init__(self, view: View, kafka: str, prefix: str = "") -> None:
        self.view = view
        self.bootstrap = topics.bootstrap_of(kafka)
        self.names = {
            topics.name(topics.ALERT_EVENTS, prefix): "events",
            topics.name(topics.ALERT_COMMANDS, prefix): "commands",
            topics.name(topics.NOTIFICATIONS, prefix): "notifications",
            topics.name(topics.PLAN_PROGRESS, prefix): "progress",
        }
        self.errors = 0
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="api-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    def _fold(self, kind: str, value: bytes) -> None:
        try:
            if kind == "events":
                self.view.apply_transition(Transition.from_dict(orjson.loads(value)))
            elif kind == "commands":
                self.view.apply_result(decode_result(value))
            elif kind == "progress":
                self.view.apply_progress(orjson.loads(value))
            else:
                self.view.apply_notification(Notification.from_json(value))
        except Exception as exc:  # a record we cannot read is counted, never fatal
            self.errors += 1
            log.warning("api feed: unreadable %s record: %s", kind, type(exc).__name__)

    async def _partitions(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        while True:
            await consumer._client.force_metadata_update()
            tps = [
                TopicPartition(t, p)
                for t in self.names
                for p in sorted(consumer.partitions_for_topic(t) or ())
            ]
            if tps and all(consumer.partitions_for_topic(t) for t in self.names):
                return tps
            await asyncio.sleep(1.0)

    async def _run(self) -> None:
        while True:
            try:
                await self._consume()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("api feed: %s; retrying", type(exc).__name__)
                await asyncio.sleep(2.0)

    async def _consume(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            group_id=None,
            fetch_max_wait_ms=200,
            **kafkasecurity.client_kwargs(),
        )
        await consumer.start()
        self._consumer = consumer
        try:
            tps = await self._partitions(consumer)
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
            position = dict.fromkeys(tps, 0)
            self._check_ready(ends, position)
            while True:
                batch = await consumer.getmany(timeout_ms=500, max_records=5000)
                for tp, msgs in batch.items():
                    for m in msgs:
                        if m.value is not None:
                            self._fold(self.names[tp.topic], m.value)
                        position[tp] = m.offset + 1
                if not self.view.ready:
                    self._check_ready(ends, position)
        finally:
            self._consumer = None
            await consumer.stop()

    def _check_ready(self, ends: dict[TopicPartition, int], position: dict[Any, int]) -> None:
        if all(position.get(tp, 0) >= end for tp, end in ends.items()):
            self.view.ready = True


class KafkaSender:
    """Produces commands to ``aggregates`` (key = locality)."""

    def __init__(self, kafka: str, prefix: str = "") -> None:
        self.bootstrap = topics.bootstrap_of(kafka)
        self.topic = topics.name(topics.AGGREGATES, prefix)
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, acks="all", **kafkasecurity.client_kwargs()
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def send(self, cmd: Command) -> None:
        if self._producer is None:
            raise RuntimeError("sender not started")
        key, value = encode_command(cmd)
        await self._producer.send_and_wait(self.topic, value, key=key)


def kafka_context(
    settings: Any, auth: Any, kafka: str, prefix: str = "", catalog: Any = None
) -> Any:
    """A :class:`streams.api.app.Context` fed by and sending to Kafka (started with the app)."""
    from datetime import timedelta

    from streams.api.app import Context, sources_from_catalog

    view = View(timedelta(hours=settings.retention_hours), settings.keep_results)
    feed = KafkaFeed(view, kafka, prefix)
    sender = KafkaSender(kafka, prefix)

    async def start() -> None:
        await sender.start()
        await feed.start()

    async def stop() -> None:
        await feed.stop()
        await sender.stop()

    localities = tuple(loc.id for loc in catalog.localities) if catalog is not None else ()
    return Context(
        settings=settings,
        view=view,
        auth=auth,
        sender=sender,
        sources=sources_from_catalog(catalog),
        localities=localities,
        on_start=start,
        on_stop=stop,
    )
