"""When does the broker watch take a partition for truncated (an empty broker restart)?

Faust keeps one read offset per partition with two meanings: the offset of the last record
delivered, and — right after an assignment, before any delivery — the committed offset, the
*next* one to read (``faust.transport.consumer.Consumer.perform_seek`` sets both the read and the
committed offset to it). A partition read to its end and then taken over by another worker has
exactly its end there; that is no truncation. The kill -9 takeover with envelopes
(tests/integration/test_fault_matrix.py) met it: the survivor sent the whole group back to the
beginning of every partition, again and again.

The consumer here is the three things ``BrokerWatch._truncated`` reads of Faust's consumer
(assignment, read and committed offsets, the high watermark of the latest fetch); no service.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streams.brokerwatch import BrokerWatch


@dataclass
class Consumer:
    ends: dict[str, int]
    _read_offset: dict[str, int | None] = field(default_factory=dict)
    _committed_offset: dict[str, int | None] = field(default_factory=dict)

    def assignment(self) -> set[str]:
        return set(self.ends)

    def highwater(self, tp: str) -> int:
        return self.ends[tp]


@dataclass
class App:
    consumer: Any


def truncated(consumer: Consumer) -> list[str]:
    return sorted(BrokerWatch(App(consumer), "kafka://127.0.0.1:9", 4, "t-")._truncated())


def test_a_partition_taken_over_at_its_end_is_whole() -> None:
    # committed 30 = the next offset to read; the log ends at 30: read to the end, nothing new
    c = Consumer({"readings/1": 30}, {"readings/1": 30}, {"readings/1": 30})
    assert truncated(c) == []


def test_a_delivered_offset_at_the_end_means_the_log_lost_its_last_record() -> None:
    # offset 30 was delivered (committed is still 25): a whole log ends at 31 or later
    c = Consumer({"readings/1": 30}, {"readings/1": 30}, {"readings/1": 25})
    assert truncated(c) == ["readings/1"]


def test_a_log_that_ends_below_what_was_read_is_truncated_either_way() -> None:
    c = Consumer(
        {"readings/0": 0, "readings/1": 12},
        {"readings/0": 30, "readings/1": 30},
        {"readings/0": 30, "readings/1": 7},
    )
    assert truncated(c) == ["readings/0", "readings/1"]


def test_a_healthy_log_and_an_unread_partition_are_not() -> None:
    c = Consumer({"readings/0": 31, "readings/2": 5}, {"readings/0": 30}, {"readings/0": 25})
    assert truncated(c) == []
