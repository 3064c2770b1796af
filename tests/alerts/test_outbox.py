"""The persistent outbox and its retry policy (alerts/outbox.py)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.notification import Notification, NotificationKind, NotificationStatus, Texts
from alerts.outbox import (
    MemoryOutbox,
    Outbox,
    OutboxError,
    RetryOutcome,
    RetryPolicy,
    RowState,
    backoff_delay,
    jitter_unit,
    retry_decision,
)

T0 = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)
NO_JITTER = RetryPolicy(
    base=timedelta(seconds=5),
    factor=2.0,
    cap=timedelta(seconds=60),
    jitter=0.0,
    max_attempts=6,
    max_age=timedelta(hours=1),
)


def note(i: int, receiver: str = "ent-a") -> Notification:
    return Notification(
        id=f"{i:032x}",
        receiver=receiver,
        kind=NotificationKind.ALERT,
        status=NotificationStatus.FIRING,
        state="firing",
        fingerprint=f"fp{i}",
        at=T0,
        starts_at=T0,
        texts=Texts(zh="【超标】测试", en="[Exceedance] test"),
    )


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_backoff_schedule_without_jitter() -> None:
    # base 5 s × 2^(n−1), capped at 60 s: 5, 10, 20, 40, 60 (80 capped), 60 (160 capped)
    got = [backoff_delay(NO_JITTER, n, "k").total_seconds() for n in range(1, 7)]
    assert got == [5.0, 10.0, 20.0, 40.0, 60.0, 60.0]


def test_jitter_is_deterministic_and_bounded() -> None:
    policy = RetryPolicy(base=timedelta(seconds=10), jitter=0.2)
    # u = first 8 bytes of sha256("abc:1") / 2^63 − 1, delay = 10 s × (1 + 0.2 u)
    h = int.from_bytes(hashlib.sha256(b"abc:1").digest()[:8], "big")
    expected = 10 * (1 + 0.2 * (h / 2**63 - 1))
    assert backoff_delay(policy, 1, "abc").total_seconds() == pytest.approx(expected, abs=1e-6)
    assert backoff_delay(policy, 1, "abc") == backoff_delay(policy, 1, "abc")
    delays = {backoff_delay(policy, 1, f"id{i}").total_seconds() for i in range(200)}
    assert all(8.0 <= d < 12.0 for d in delays)  # 10 s ± 20 %
    assert len(delays) > 150  # different ids spread out
    assert all(-1 <= jitter_unit(f"x{i}", 3) < 1 for i in range(200))


def test_budget_exhausted_after_max_attempts_and_not_retryable_is_held_at_once() -> None:
    kw = {"key": "k", "created_at": T0, "now": s(100)}
    assert retry_decision(NO_JITTER, attempts=5, retryable=True, **kw).outcome is RetryOutcome.RETRY
    assert (
        retry_decision(NO_JITTER, attempts=6, retryable=True, **kw).outcome
        is RetryOutcome.DEAD_BUDGET_EXHAUSTED
    )
    assert retry_decision(NO_JITTER, attempts=1, retryable=False, **kw).outcome is RetryOutcome.HELD
    # max_age 1 h: a retry that would fall after created_at + 3600 s is not scheduled
    late = retry_decision(
        NO_JITTER, key="k", attempts=1, created_at=T0, now=s(3598), retryable=True
    )
    assert late.outcome is RetryOutcome.DEAD_BUDGET_EXHAUSTED  # 3598 + 5 > 3600


def test_invalid_policy_names_the_field() -> None:
    with pytest.raises(OutboxError) as caught:
        RetryPolicy(jitter=1.5)
    assert caught.value.field == "retry.jitter"


def test_enqueue_is_idempotent(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", NO_JITTER) as box:
        assert box.enqueue(note(1), T0) is True
        assert box.enqueue(note(1), s(10)) is False
        assert box.enqueue_many([note(1), note(2), note(2)], s(20)) == 1
        assert [i.id for i in box.due(s(20))] == [note(1).id, note(2).id]
        # the same id for another receiver is another row
        assert box.enqueue(note(1, receiver="duty"), s(20)) is True
        # a sent row is not revived by a replayed enqueue
        box.mark_sent(note(1).id, "ent-a", s(21))
        assert box.enqueue(note(1), s(22)) is False
        assert box.get(note(1).id, "ent-a").state is RowState.SENT


def test_failures_follow_the_schedule_then_dead_letter(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", NO_JITTER) as box:
        n = note(1)
        box.enqueue(n, T0)
        now = T0
        waits = []
        for _ in range(5):
            assert [i.id for i in box.due(now)] == [n.id]
            decision = box.mark_failed(n.id, n.receiver, now, retryable=True, error="503")
            assert decision.outcome is RetryOutcome.RETRY
            assert decision.next_at is not None
            waits.append((decision.next_at - now).total_seconds())
            assert box.due(decision.next_at - timedelta(seconds=1)) == []  # not before its time
            now = decision.next_at
        assert waits == [5.0, 10.0, 20.0, 40.0, 60.0]
        # 6th failure = max_attempts → dead letter, never due again
        final = box.mark_failed(n.id, n.receiver, now, retryable=True, error="503")
        assert final.outcome is RetryOutcome.DEAD_BUDGET_EXHAUSTED
        assert box.due(now + timedelta(days=1)) == []
        dead = box.dead_letters()
        assert [(d.id, d.attempts, d.last_error) for d in dead] == [(n.id, 6, "503")]
        box.requeue(n.id, n.receiver, now)
        assert [i.id for i in box.due(now)] == [n.id]


def test_non_retryable_failure_is_held_at_once_and_requeued_on_demand(tmp_path: Path) -> None:
    # issue 13: an HTTP 400 keeps the notification (held), it is not dropped
    with Outbox(tmp_path / "o.db", NO_JITTER) as box:
        box.enqueue(note(1), T0)
        d = box.mark_failed(note(1).id, "ent-a", T0, retryable=False, error="HTTP 400")
        assert d.outcome is RetryOutcome.HELD
        assert box.counts() == {
            RowState.PENDING: 0, RowState.SENT: 0, RowState.HELD: 1, RowState.DEAD: 0
        }  # fmt: skip
        assert [i.last_error for i in box.dead_letters()] == ["HTTP 400"]
        box.requeue(note(1).id, "ent-a", s(60))
        assert [i.id for i in box.due(s(60))] == [note(1).id]


def test_claim_leases_rows_so_they_are_not_taken_twice(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", NO_JITTER) as box:
        box.enqueue_many([note(1), note(2)], T0)
        first = box.claim(T0, limit=10, lease=timedelta(seconds=30))
        assert len(first) == 2
        assert box.claim(s(29), limit=10) == []
        # the claimer died without marking: after the lease both come back
        assert len(box.claim(s(30), limit=10)) == 2


def test_rows_survive_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    box = Outbox(path, NO_JITTER)
    box.enqueue_many([note(1), note(2), note(3)], T0)
    box.mark_sent(note(1).id, "ent-a", s(1))
    box.mark_failed(note(2).id, "ent-a", s(1), retryable=True, error="timeout")
    box.close()
    with Outbox(path, NO_JITTER) as again:
        assert again.get(note(1).id, "ent-a").state is RowState.SENT
        failed = again.get(note(2).id, "ent-a")
        assert failed.attempts == 1
        assert failed.next_at == s(6)  # 1 s + 5 s backoff
        assert [i.id for i in again.due(s(1))] == [note(3).id]
        assert {i.id for i in again.due(s(6))} == {note(2).id, note(3).id}
        assert again.get(note(3).id, "ent-a").notification == note(3)


def test_unknown_row_and_naive_time_are_typed_errors(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", NO_JITTER) as box:
        with pytest.raises(OutboxError) as caught:
            box.mark_sent("nope", "ent-a", T0)
        assert caught.value.field == "id"
        with pytest.raises(OutboxError):
            box.due(datetime(2026, 1, 1))


def test_settings_from_environment_mask_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    from alerts.notify.dispatcher import channels_from_settings
    from alerts.notify.webhook import WebhookNotifier
    from alerts.settings import AlertsSettings

    monkeypatch.setenv("ENVWATCH_ALERTS_RETRY__MAX_ATTEMPTS", "40")
    monkeypatch.setenv(
        "ENVWATCH_ALERTS_WEBHOOKS",
        '{"ent-a": {"url": "http://127.0.0.1:9/h", "secret": "topsecret"}}',
    )
    settings = AlertsSettings()
    assert settings.retry.policy().max_attempts == 40
    assert "topsecret" not in repr(settings)
    assert "topsecret" not in settings.model_dump_json()
    channels = channels_from_settings(settings)
    assert isinstance(channels["ent-a"], WebhookNotifier)


# ---------------------------------------------------------------- MemoryOutbox (the Kafka ledger's rows)


def test_memory_outbox_is_idempotent_and_a_sent_row_is_never_sent_again() -> None:
    box = MemoryOutbox(NO_JITTER)
    assert box.enqueue(note(1), T0, partition=2) is True
    assert box.enqueue(note(1), s(5), partition=2) is False  # the same key read again
    assert [i.id for i in box.due(T0)] == [note(1).id]
    box.mark_sent(note(1).id, "ent-a", s(1))
    assert box.enqueue(note(1), s(10), partition=2) is False
    assert box.due(s(10)) == []
    assert box.partition_of(note(1).id, "ent-a") == 2


def test_ledger_record_round_trip_keeps_state_and_drops_a_sent_payload() -> None:
    box = MemoryOutbox(NO_JITTER)
    box.enqueue(note(1), T0, partition=1)
    box.enqueue(note(2), T0, partition=1)
    box.mark_failed(note(1).id, "ent-a", s(1), retryable=True, error="HTTP 503")
    box.mark_sent(note(2).id, "ent-a", s(1))
    pending = box.ledger_value(note(1).id, "ent-a")
    sent = box.ledger_value(note(2).id, "ent-a")
    assert b'"notification"' in pending
    assert b'"notification"' not in sent  # a sent row only needs its key
    # another worker takes partition 1 over from these two records
    other = MemoryOutbox(NO_JITTER)
    assert other.load(pending, 1) == (note(1).id, "ent-a")
    other.load(sent, 1)
    row = other.get(note(1).id, "ent-a")
    assert (row.state, row.attempts, row.last_error) == (RowState.PENDING, 1, "HTTP 503")
    assert row.next_at == s(1) + timedelta(seconds=5)  # retry 1 after base 5 s, no jitter
    assert other.state(note(2).id, "ent-a") is RowState.SENT
    assert other.enqueue(note(2), s(9), partition=1) is False  # not sent a second time
    assert [i.id for i in other.due(s(6))] == [note(1).id]
    with pytest.raises(OutboxError):
        other.load(b'{"id": "x", "receiver": "r", "state": "pending"}', 1)  # no payload


def test_held_rows_are_requeued_by_replay_or_when_the_receiver_configuration_changed() -> None:
    box = MemoryOutbox(NO_JITTER)
    for i, r in ((1, "ent-a"), (2, "ent-a"), (3, "ent-b")):
        box.enqueue(note(i, r), T0, partition=0)
        d = box.mark_failed(
            note(i, r).id, r, s(1), retryable=False, error="HTTP 400", fingerprint="fp-old"
        )
        assert d.outcome is RetryOutcome.HELD
    assert box.counts()[RowState.HELD] == 3
    assert box.due(s(100)) == []  # held rows are not retried on their own
    # start-up with ent-a's URL or secret changed, ent-b's unchanged: only ent-a's go again
    again = box.requeue_held(s(50), unless_fingerprint={"ent-a": "fp-new", "ent-b": "fp-old"})
    assert sorted(again) == sorted([(note(1).id, "ent-a"), (note(2).id, "ent-a")])
    assert {i.receiver for i in box.due(s(50))} == {"ent-a"}
    # envwatch notify replay --receiver ent-b
    assert box.requeue_held(s(60), receiver="ent-b") == [(note(3, "ent-b").id, "ent-b")]
    assert box.counts()[RowState.HELD] == 0


def test_a_suspended_partition_is_not_sent_and_a_dropped_one_is_forgotten() -> None:
    box = MemoryOutbox(NO_JITTER)
    box.enqueue(note(1), T0, partition=0)
    box.enqueue(note(2), T0, partition=3)
    box.suspend([3])
    assert [i.id for i in box.due(T0)] == [note(1).id]
    assert box.keys_in([3]) == {(note(2).id, "ent-a")}
    assert box.drop([3]) == 1
    assert box.partitions() == {0}
    assert not box.known(note(2).id, "ent-a")
