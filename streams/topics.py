"""Topic names and their creation.

Tansu (and Kafka with auto-create) create a subscribed-but-missing topic with the broker's default
partition count, which then clashes with a table's changelog (architecture.md §7). envwatch
therefore creates its external topics explicitly, with the partition count it means, before any
worker starts: :func:`ensure_topics`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable
from typing import Final

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streams import kafkasecurity
from streams.settings import KafkaSecuritySettings

READINGS = "readings"
AGGREGATES = "aggregates"
EVALUATIONS = "evaluations"
ALERT_EVENTS = "alert-events"
NOTIFICATIONS = "notifications"
DEAD_LETTER = "dead-letter"
#: What became of each command of the alerts service (acknowledge, silence, maintenance …): one
#: record per command, written by the locality stage that applied or refused it (keyed by
#: locality); the alerts service's view reads it (streams/api, docs/api.md).
ALERT_COMMANDS = "alert-commands"
#: The plans' progress at each Beijing day's close: one record per locality and day (keyed by
#: locality), written by the locality stage; the alerts service serves the newest
#: (``GET /api/v1/progress``, alerts/progress_live.py). Compacted: the stage's last record of a
#: locality is always its newest closed day (a late correction re-sends the newest), so the
#: view a restarted service rebuilds is the same.
PLAN_PROGRESS = "plan-progress"

EXTERNAL = (
    READINGS,
    AGGREGATES,
    EVALUATIONS,
    ALERT_EVENTS,
    NOTIFICATIONS,
    DEAD_LETTER,
    ALERT_COMMANDS,
    PLAN_PROGRESS,
)

#: Compacted topics holding checkpointed rule state (streams/state.py).
EVALUATE_STATE = "evaluate-state"
LOCALITY_STATE = "locality-state"
ALERTS_STATE = "alerts-state"
#: The notification delivery ledger: one record per (receiver, notification id), partitioned like
#: ``notifications`` (streams/deliveries.py).
NOTIFY_LEDGER = "notify-ledger"
STATE = (EVALUATE_STATE, LOCALITY_STATE, ALERTS_STATE, NOTIFY_LEDGER)


def name(topic: str, prefix: str = "") -> str:
    return f"{prefix}{topic}"


def bootstrap_of(url: str) -> str:
    """``kafka://h:p`` (Faust style) → ``h:p`` (aiokafka style)."""
    return url.removeprefix("kafka://")


async def ensure_topics(
    kafka_url: str,
    partitions: int,
    prefix: str = "",
    *,
    security: KafkaSecuritySettings | None = None,
) -> None:
    """Create envwatch's external topics when missing (idempotent). ``security``: the Kafka
    security settings (None: from the environment, streams.kafkasecurity)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_of(kafka_url), **kafkasecurity.client_kwargs(security)
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        compact = {"cleanup.policy": "compact"}
        wanted = [
            NewTopic(
                name(t, prefix),
                partitions,
                1,
                topic_configs=compact if t in STATE or t == PLAN_PROGRESS else None,
            )
            for t in (*EXTERNAL, *STATE)
            if name(t, prefix) not in existing
        ]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(wanted)
    finally:
        await admin.close()


# --------------------------------------------------------------------------- client logs
# aiokafka logs every failed attempt while a broker is away (several lines a second, some
# forever: streams/brokerwatch.py). The bridge and the worker attach one filter to its loggers.

#: s after which a suppressed message template is let through again (envwatch's choice [MEM])
WINDOW: Final = 300.0


class RepeatFilter(logging.Filter):
    """Lets the first WARNING/ERROR record of each (logger, level, template) through; counts and
    drops the repeats until :meth:`reset` (the broker is healthy again) or ``window`` s later."""

    def __init__(self, window: float = WINDOW) -> None:
        super().__init__()
        self.window = window
        self._seen: dict[tuple[str, int, str], float] = {}
        self.suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = time.monotonic()
        first = self._seen.get(key)
        if first is not None and now - first < self.window:
            self.suppressed += 1
            return False
        self._seen[key] = now
        if first is not None:
            record.msg = f"{record.msg} (repeated; similar lines suppressed for {self.window:g} s)"
        return True

    def reset(self) -> int:
        """Forget what was seen; return how many records were suppressed since the last reset."""
        n, self.suppressed = self.suppressed, 0
        self._seen.clear()
        return n


#: The one filter of the process (several apps in one process share aiokafka's loggers).
REPEATS: Final = RepeatFilter()


def quiet_client_logs(prefixes: Iterable[str] = ("aiokafka",)) -> RepeatFilter:
    """Attach :data:`REPEATS` to every existing logger under ``prefixes`` (a logger's filters do
    not apply to its children's records, so each module logger gets it). Idempotent."""
    import aiokafka.consumer.fetcher
    import aiokafka.consumer.group_coordinator
    import aiokafka.producer.sender  # noqa: F401

    names = [n for n in list(logging.Logger.manager.loggerDict) if n.startswith(tuple(prefixes))]
    for name in [*prefixes, *names]:
        logger = logging.getLogger(name)
        if REPEATS not in logger.filters:
            logger.addFilter(REPEATS)
    return REPEATS


def explicit_topics_only() -> None:
    """Stop this process's aiokafka clients from asking the broker to auto-create a topic.

    aiokafka sends ``allow_auto_topic_creation=True`` with every metadata request (v4+) and has no
    option for it, so a producer, a consumer or an admin client touching a missing topic creates it
    with the broker's defaults. envwatch creates its topics itself (:func:`ensure_topics`: its
    partition count, compaction), and on Tansu an auto-creation racing an explicit creation after
    the broker restarted empty can leave the topic *reset* while records were being written to it
    (produces then fail with ``AlreadyExists`` on batch 0 and acknowledged records vanish: seen in
    tests/integration/test_fault_brokers.py). With this, a client waits for the topic (or gets
    ``UnknownTopicOrPartition``) until envwatch has created it. Process-wide and idempotent."""
    from aiokafka.protocol import metadata

    request = metadata.MetadataRequest
    if getattr(request, "_envwatch_explicit", False):
        return
    original = request.__init__

    def init(
        self: metadata.MetadataRequest,
        topics: list[str] | None = None,
        allow_auto_topic_creation: bool | None = None,
    ) -> None:
        original(
            self, topics, False if allow_auto_topic_creation is None else allow_auto_topic_creation
        )

    request.__init__ = init
    setattr(request, "_envwatch_explicit", True)  # noqa: B010 - a marker on a foreign class
