"""Topic names and their creation.

Tansu (and Kafka with auto-create) create a subscribed-but-missing topic with the broker's default
partition count, which then clashes with a table's changelog (architecture.md §7). envwatch
therefore creates its external topics explicitly, with the partition count it means, before any
worker starts: :func:`ensure_topics`.
"""

from __future__ import annotations

import contextlib

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

READINGS = "readings"
AGGREGATES = "aggregates"
EVALUATIONS = "evaluations"
ALERT_EVENTS = "alert-events"
NOTIFICATIONS = "notifications"
DEAD_LETTER = "dead-letter"

EXTERNAL = (READINGS, AGGREGATES, EVALUATIONS, ALERT_EVENTS, NOTIFICATIONS, DEAD_LETTER)

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


async def ensure_topics(kafka_url: str, partitions: int, prefix: str = "") -> None:
    """Create envwatch's external topics when missing (idempotent)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_of(kafka_url))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        compact = {"cleanup.policy": "compact"}
        wanted = [
            NewTopic(name(t, prefix), partitions, 1, topic_configs=compact if t in STATE else None)
            for t in (*EXTERNAL, *STATE)
            if name(t, prefix) not in existing
        ]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(wanted)
    finally:
        await admin.close()
