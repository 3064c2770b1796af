"""The persistent notification outbox, and its pure retry policy.

**This module does I/O**: :class:`Outbox` is the store backend of notification delivery, a SQLite
file (stdlib ``sqlite3``, WAL journal) with one row per (notification id, receiver). It is the
only part of ``alerts`` outside ``alerts/notify/`` that touches the disk; everything above the
``Outbox`` class — :class:`RetryPolicy`, :func:`backoff_delay`, :func:`retry_decision` — is pure
and takes ``now`` as an argument.

Semantics (docs/notifications.md):

* :meth:`Outbox.enqueue` is idempotent by id: a replayed or restarted producer enqueues the same
  deterministic ids again and nothing changes (not even a dead or sent row).
* :meth:`Outbox.due` lists what may be sent at ``now``; :meth:`Outbox.claim` does the same and
  leases the rows (their ``next_at`` moves ``lease`` ahead) so that concurrent senders do not take
  them twice, and a sender killed mid-flight leaves them to be retried when the lease expires.
* :meth:`Outbox.mark_sent` ends a row; :meth:`Outbox.mark_failed` schedules a retry after an
  exponential, jittered backoff or, when the failure is not retryable or the retry budget is
  spent, moves the row to the dead-letter state.
* Rows survive a process restart: reopen the same file.

Delivery is therefore at-least-once per (id, receiver); a receiver that deduplicates on the
``Idempotency-Key`` (= the notification id) sees each notification exactly once.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from types import TracebackType

import orjson
from pydantic import ValidationError

from alerts.errors import AlertsError
from alerts.notification import Notification


class OutboxError(AlertsError):
    """An outbox problem: ``field`` names what, ``reason`` why (e.g. an unknown row)."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"outbox: {field}: {reason}")


# ---------------------------------------------------------------- pure retry policy


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with deterministic jitter, and a retry budget.

    The ``n``-th retry (after the ``n``-th failure, n ≥ 1) waits
    ``min(cap, base · factor^(n−1)) · (1 + jitter · u)`` with ``u ∈ [−1, 1)`` derived from the
    notification id and ``n`` (so a test, or a restarted process, computes the same schedule,
    while different notifications spread out). The row goes to dead-letter after
    ``max_attempts`` failed attempts or once it is older than ``max_age``.

    The defaults are operational choices, not standards (an operator may override them in
    ``alerts.settings``): with base 5 s, factor 2, cap 10 min and 30 attempts a receiver that is
    down for several hours still receives everything (issue 7: "down for an hour").
    """

    base: timedelta = timedelta(seconds=5)
    factor: float = 2.0
    cap: timedelta = timedelta(minutes=10)
    jitter: float = 0.2
    max_attempts: int = 30
    max_age: timedelta = timedelta(hours=24)

    def __post_init__(self) -> None:
        if self.base <= timedelta(0):
            raise OutboxError("retry.base", "must be positive")
        if self.factor < 1:
            raise OutboxError("retry.factor", "must be at least 1")
        if self.cap < self.base:
            raise OutboxError("retry.cap", "must be at least base")
        if not 0 <= self.jitter < 1:
            raise OutboxError("retry.jitter", "must be in [0, 1)")
        if self.max_attempts < 1:
            raise OutboxError("retry.max_attempts", "must be at least 1")


def jitter_unit(key: str, attempt: int) -> float:
    """A deterministic number in [−1, 1) from ``key`` and ``attempt``.

    The first 8 bytes of SHA-256(``"<key>:<attempt>"``) as a big-endian integer ``h``;
    ``u = h / 2^63 − 1``.
    """
    digest = hashlib.sha256(f"{key}:{attempt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**63 - 1


def backoff_delay(policy: RetryPolicy, attempt: int, key: str) -> timedelta:
    """The wait before retry number ``attempt`` (1 = after the first failure)."""
    if attempt < 1:
        raise OutboxError("attempt", "must be at least 1")
    raw = policy.base.total_seconds() * policy.factor ** (attempt - 1)
    capped = min(policy.cap.total_seconds(), raw)
    return timedelta(seconds=capped * (1 + policy.jitter * jitter_unit(key, attempt)))


class RetryOutcome(StrEnum):
    """What happens to a row after a failed attempt."""

    RETRY = "retry"
    #: the receiver refused it (HTTP 4xx, bad URL, no channel): sending the same again cannot
    #: help until the receiver or its configuration changes — kept for ``envwatch notify replay``
    #: or an automatic re-send when the receiver's configuration changes (issue 13)
    HELD = "held"
    DEAD_BUDGET_EXHAUSTED = "dead_budget_exhausted"  # max_attempts or max_age reached


@dataclass(frozen=True, slots=True)
class RetryDecision:
    outcome: RetryOutcome
    next_at: datetime | None = None


def retry_decision(
    policy: RetryPolicy,
    *,
    key: str,
    attempts: int,
    created_at: datetime,
    now: datetime,
    retryable: bool,
) -> RetryDecision:
    """Decide after failed attempt number ``attempts`` (≥ 1) made at ``now``."""
    if not retryable:
        return RetryDecision(RetryOutcome.HELD)
    if attempts >= policy.max_attempts:
        return RetryDecision(RetryOutcome.DEAD_BUDGET_EXHAUSTED)
    next_at = now + backoff_delay(policy, attempts, key)
    if next_at - created_at > policy.max_age:
        return RetryDecision(RetryOutcome.DEAD_BUDGET_EXHAUSTED)
    return RetryDecision(RetryOutcome.RETRY, next_at)


# ---------------------------------------------------------------- the store (I/O)


class RowState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    #: refused by the receiver (not retryable): kept, re-sent by replay or a configuration change
    HELD = "held"
    #: retry budget spent: kept as well (``envwatch notify replay`` re-sends it too)
    DEAD = "dead"


def _final_state(decision: RetryDecision) -> RowState:
    if decision.next_at is not None:
        return RowState.PENDING
    return RowState.HELD if decision.outcome is RetryOutcome.HELD else RowState.DEAD


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One row of the outbox."""

    notification: Notification
    state: RowState
    attempts: int
    created_at: datetime
    next_at: datetime
    last_error: str | None
    sent_at: datetime | None

    @property
    def id(self) -> str:
        return self.notification.id

    @property
    def receiver(self) -> str:
        return self.notification.receiver


_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id          TEXT NOT NULL,
    receiver    TEXT NOT NULL,
    payload     TEXT NOT NULL,
    state       TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    created_at  REAL NOT NULL,
    next_at     REAL NOT NULL,
    last_error  TEXT,
    sent_at     REAL,
    PRIMARY KEY (id, receiver)
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_at);
"""

_COLUMNS = "payload, state, attempts, created_at, next_at, last_error, sent_at"


def _epoch(at: datetime, field: str = "now") -> float:
    if at.tzinfo is None:
        raise OutboxError(field, "must be timezone-aware")
    return at.timestamp()


def _time(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


class Outbox:
    """A persistent outbox in one SQLite file (see the module docstring).

    ``synchronous``: SQLite's ``PRAGMA synchronous``; ``NORMAL`` (the default) survives a killed
    process in WAL mode, ``FULL`` also a power loss, at a cost in speed.
    """

    def __init__(
        self,
        path: str | Path,
        policy: RetryPolicy | None = None,
        *,
        synchronous: str = "NORMAL",
    ) -> None:
        if synchronous.upper() not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise OutboxError("synchronous", f"unknown mode {synchronous!r}")
        self.path = Path(path)
        self.policy = policy or RetryPolicy()
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous.upper()}")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise OutboxError("path", f"cannot open {self.path}: {exc}") from exc

    # -- lifecycle

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _tx(self) -> _Tx:
        return _Tx(self._db)

    # -- writes

    def enqueue(self, notification: Notification, now: datetime) -> bool:
        """Add a notification; False (and no change) when its (id, receiver) is already there."""
        return self.enqueue_many([notification], now) == 1

    def enqueue_many(self, notifications: Iterable[Notification], now: datetime) -> int:
        """Add several in one transaction; returns how many were new."""
        ts = _epoch(now)
        rows = [
            (n.id, n.receiver, n.to_json(), RowState.PENDING.value, ts, ts) for n in notifications
        ]
        with self._tx():
            before = self._db.total_changes
            self._db.executemany(
                "INSERT OR IGNORE INTO outbox (id, receiver, payload, state, created_at, next_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
            return self._db.total_changes - before

    def claim(
        self, now: datetime, limit: int = 100, lease: timedelta = timedelta(seconds=60)
    ) -> list[OutboxItem]:
        """The due rows (as :meth:`due`), leased until ``now + lease`` so no one else takes them."""
        ts = _epoch(now)
        with self._tx():
            items = self._select_due(ts, limit)
            if items:
                until = ts + lease.total_seconds()
                self._db.executemany(
                    "UPDATE outbox SET next_at = ? WHERE id = ? AND receiver = ?",
                    [(until, i.id, i.receiver) for i in items],
                )
        return items

    def lease(self, keys: Iterable[tuple[str, str]], until: datetime) -> None:
        """Hold pending rows (id, receiver) back until ``until`` (a sender is working on them)."""
        ts = _epoch(until, "until")
        with self._tx():
            self._db.executemany(
                "UPDATE outbox SET next_at = ? WHERE id = ? AND receiver = ? AND state = ?",
                [(ts, i, r, RowState.PENDING.value) for i, r in keys],
            )

    def mark_sent(self, notification_id: str, receiver: str, now: datetime) -> None:
        """The receiver accepted the notification."""
        with self._tx():
            row = self._row(notification_id, receiver)
            self._db.execute(
                "UPDATE outbox SET state = ?, attempts = ?, sent_at = ?, last_error = NULL"
                " WHERE id = ? AND receiver = ?",
                (RowState.SENT.value, row.attempts + 1, _epoch(now), notification_id, receiver),
            )

    def mark_failed(
        self,
        notification_id: str,
        receiver: str,
        now: datetime,
        *,
        retryable: bool,
        error: str = "",
        fingerprint: str = "",
    ) -> RetryDecision:
        """Record a failed attempt; schedules the retry, holds the row (not retryable: kept
        for a replay) or moves it to dead-letter (budget spent). ``fingerprint`` is accepted
        for :class:`MemoryOutbox`'s sake (this store does not re-send on a configuration
        change)."""
        del fingerprint
        with self._tx():
            row = self._row(notification_id, receiver)
            if row.state is not RowState.PENDING:
                return RetryDecision(RetryOutcome.DEAD_BUDGET_EXHAUSTED)  # already final
            attempts = row.attempts + 1
            decision = retry_decision(
                self.policy,
                key=notification_id,
                attempts=attempts,
                created_at=row.created_at,
                now=now,
                retryable=retryable,
            )
            state = _final_state(decision)
            next_at = _epoch(decision.next_at) if decision.next_at is not None else _epoch(now)
            self._db.execute(
                "UPDATE outbox SET state = ?, attempts = ?, next_at = ?, last_error = ?"
                " WHERE id = ? AND receiver = ?",
                (state.value, attempts, next_at, error[:2000], notification_id, receiver),
            )
        return decision

    def requeue(self, notification_id: str, receiver: str, now: datetime) -> None:
        """Give a held or dead-letter row a fresh budget (an operator's decision)."""
        with self._tx():
            self._row(notification_id, receiver)
            ts = _epoch(now)
            self._db.execute(
                "UPDATE outbox SET state = ?, attempts = 0, created_at = ?, next_at = ?"
                " WHERE id = ? AND receiver = ? AND state IN (?, ?)",
                (
                    RowState.PENDING.value,
                    ts,
                    ts,
                    notification_id,
                    receiver,
                    RowState.DEAD.value,
                    RowState.HELD.value,
                ),
            )

    # -- reads

    def due(
        self, now: datetime, limit: int = 100, *, exclude: Iterable[str] = ()
    ) -> list[OutboxItem]:
        """Pending rows whose time has come, oldest schedule first (read-only).

        ``exclude``: receivers to leave out (a sender skips receivers that are at their
        concurrency cap, so their backlog cannot hide other receivers' rows).
        """
        return self._select_due(_epoch(now), limit, tuple(exclude))

    def get(self, notification_id: str, receiver: str) -> OutboxItem:
        return self._row(notification_id, receiver)

    def items(self, state: RowState | None = None) -> Iterator[OutboxItem]:
        """All rows (optionally in one state), in insertion order."""
        if state is None:
            cur = self._db.execute(f"SELECT {_COLUMNS} FROM outbox ORDER BY rowid")
        else:
            cur = self._db.execute(
                f"SELECT {_COLUMNS} FROM outbox WHERE state = ? ORDER BY rowid", (state.value,)
            )
        for row in cur:
            yield self._item(row)

    def dead_letters(self) -> list[OutboxItem]:
        """Rows that will not be sent again without an operator: held and dead."""
        return [i for i in self.items() if i.state in (RowState.HELD, RowState.DEAD)]

    def counts(self) -> dict[RowState, int]:
        out = dict.fromkeys(RowState, 0)
        for state, n in self._db.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state"):
            out[RowState(state)] = int(n)
        return out

    def next_due_at(self) -> datetime | None:
        """When the earliest pending row becomes due (None when nothing is pending)."""
        (ts,) = self._db.execute(
            "SELECT MIN(next_at) FROM outbox WHERE state = ?", (RowState.PENDING.value,)
        ).fetchone()
        return None if ts is None else _time(float(ts))

    # -- helpers

    def _select_due(self, ts: float, limit: int, exclude: tuple[str, ...] = ()) -> list[OutboxItem]:
        skip = f" AND receiver NOT IN ({','.join('?' * len(exclude))})" if exclude else ""
        cur = self._db.execute(
            f"SELECT {_COLUMNS} FROM outbox WHERE state = ? AND next_at <= ?{skip}"
            " ORDER BY next_at, rowid LIMIT ?",
            (RowState.PENDING.value, ts, *exclude, limit),
        )
        return [self._item(r) for r in cur]

    def _row(self, notification_id: str, receiver: str) -> OutboxItem:
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM outbox WHERE id = ? AND receiver = ?",
            (notification_id, receiver),
        ).fetchone()
        if row is None:
            raise OutboxError("id", f"no row for ({notification_id}, {receiver})")
        return self._item(row)

    @staticmethod
    def _item(row: tuple[str, str, int, float, float, str | None, float | None]) -> OutboxItem:
        payload, state, attempts, created, next_at, error, sent = row
        try:
            notification = Notification.from_json(payload)
        except ValidationError as exc:
            raise OutboxError("payload", f"stored notification does not parse: {exc}") from exc
        return OutboxItem(
            notification=notification,
            state=RowState(state),
            attempts=int(attempts),
            created_at=_time(created),
            next_at=_time(next_at),
            last_error=error,
            sent_at=None if sent is None else _time(sent),
        )


class _Tx:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` / ``ROLLBACK`` on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")


# ---------------------------------------------------------------- the shared outbox's rows (pure)


def ledger_key(notification_id: str, receiver: str) -> bytes:
    """The delivery ledger's key of one (notification id, receiver): ``<receiver>/<id>``."""
    return f"{receiver}/{notification_id}".encode()


@dataclass(slots=True)
class _Row:
    notification: Notification | None  # None for a sent row read back (its payload is dropped)
    notification_id: str
    receiver: str
    partition: int
    state: RowState
    attempts: int
    created_at: float
    next_at: float
    last_error: str | None
    sent_at: float | None
    fingerprint: str  # the receiver's configuration when the row was held ("" otherwise)

    def item(self) -> OutboxItem:
        assert self.notification is not None
        return OutboxItem(
            notification=self.notification,
            state=self.state,
            attempts=self.attempts,
            created_at=_time(self.created_at),
            next_at=_time(self.next_at),
            last_error=self.last_error,
            sent_at=None if self.sent_at is None else _time(self.sent_at),
        )


class MemoryOutbox:
    """The outbox rows of the partitions one worker owns, in memory (pure: no I/O, no clock).

    The worker keeps them durable in Kafka (``streams.deliveries``): every change of a row is
    written to the compacted delivery ledger with :meth:`ledger_value` before the change counts,
    and a worker that takes a partition over loads its rows with :meth:`load`. The API is
    :class:`Outbox`'s, so :class:`alerts.notify.dispatcher.Dispatcher` drives either.

    Rows belong to a partition (of the ``notifications`` topic); :meth:`suspend` hides a
    partition's rows from :meth:`due` while it is being handed over, :meth:`drop` forgets them.
    A sent row keeps only its key and state (the ledger drops its payload): enough to ignore the
    same notification when it arrives again.
    """

    def __init__(self, policy: RetryPolicy | None = None) -> None:
        self.policy = policy or RetryPolicy()
        self._rows: dict[tuple[str, str], _Row] = {}
        self._suspended: set[int] = set()

    # -- ownership

    def partitions(self) -> set[int]:
        return {r.partition for r in self._rows.values()}

    def suspend(self, partitions: Iterable[int]) -> None:
        self._suspended |= set(partitions)

    def drop(self, partitions: Iterable[int]) -> int:
        """Forget every row of ``partitions`` (handed over); returns how many."""
        gone = set(partitions)
        keys = [k for k, r in self._rows.items() if r.partition in gone]
        for k in keys:
            del self._rows[k]
        self._suspended -= gone
        return len(keys)

    def keys_in(self, partitions: Iterable[int]) -> set[tuple[str, str]]:
        wanted = set(partitions)
        return {k for k, r in self._rows.items() if r.partition in wanted}

    def resume(self, partitions: Iterable[int]) -> None:
        self._suspended -= set(partitions)

    # -- writes

    def known(self, notification_id: str, receiver: str) -> bool:
        return (notification_id, receiver) in self._rows

    def enqueue(self, notification: Notification, now: datetime, partition: int = 0) -> bool:
        """Add a pending row; False (and no change) when its (id, receiver) is known."""
        key = (notification.id, notification.receiver)
        if key in self._rows:
            return False
        ts = _epoch(now)
        self._rows[key] = _Row(
            notification, notification.id, notification.receiver, partition,
            RowState.PENDING, 0, ts, ts, None, None, "",
        )  # fmt: skip
        return True

    def lease(self, keys: Iterable[tuple[str, str]], until: datetime) -> None:
        ts = _epoch(until, "until")
        for key in keys:
            row = self._rows.get(key)
            if row is not None and row.state is RowState.PENDING:
                row.next_at = ts

    def mark_sent(self, notification_id: str, receiver: str, now: datetime) -> None:
        row = self._need(notification_id, receiver)
        row.state = RowState.SENT
        row.attempts += 1
        row.sent_at = _epoch(now)
        row.last_error = None

    def mark_failed(
        self,
        notification_id: str,
        receiver: str,
        now: datetime,
        *,
        retryable: bool,
        error: str = "",
        fingerprint: str = "",
    ) -> RetryDecision:
        """As :meth:`Outbox.mark_failed`; a held row remembers ``fingerprint`` (the receiver's
        configuration it was refused under)."""
        row = self._need(notification_id, receiver)
        if row.state is not RowState.PENDING:
            return RetryDecision(RetryOutcome.DEAD_BUDGET_EXHAUSTED)
        row.attempts += 1
        decision = retry_decision(
            self.policy,
            key=notification_id,
            attempts=row.attempts,
            created_at=_time(row.created_at),
            now=now,
            retryable=retryable,
        )
        row.state = _final_state(decision)
        row.next_at = _epoch(decision.next_at) if decision.next_at is not None else _epoch(now)
        row.last_error = error[:2000]
        row.fingerprint = fingerprint if row.state is RowState.HELD else ""
        return decision

    def requeue(self, notification_id: str, receiver: str, now: datetime) -> bool:
        """A held or dead row becomes pending with a fresh budget; False when it was neither."""
        row = self._need(notification_id, receiver)
        if row.state not in (RowState.HELD, RowState.DEAD) or row.notification is None:
            return False
        ts = _epoch(now)
        row.state, row.attempts, row.created_at, row.next_at = RowState.PENDING, 0, ts, ts
        row.fingerprint = ""
        return True

    def requeue_held(
        self,
        now: datetime,
        *,
        receiver: str | None = None,
        partitions: Iterable[int] | None = None,
        unless_fingerprint: dict[str, str] | None = None,
    ) -> list[tuple[str, str]]:
        """Requeue the held and dead rows (of ``receiver``, of ``partitions``); with
        ``unless_fingerprint`` only the held rows whose receiver's configuration changed since
        (its current fingerprint differs from the row's). Returns the keys requeued."""
        wanted = None if partitions is None else set(partitions)
        out = []
        for key, row in list(self._rows.items()):
            if receiver is not None and row.receiver != receiver:
                continue
            if wanted is not None and row.partition not in wanted:
                continue
            if unless_fingerprint is not None:
                current = unless_fingerprint.get(row.receiver, "")
                if row.state is not RowState.HELD or current == row.fingerprint:
                    continue
            if self.requeue(*key, now):
                out.append(key)
        return out

    # -- reads (Outbox's)

    def due(
        self, now: datetime, limit: int = 100, *, exclude: Iterable[str] = ()
    ) -> list[OutboxItem]:
        ts = _epoch(now)
        skip = set(exclude)
        rows = [
            r
            for r in self._rows.values()
            if r.state is RowState.PENDING
            and r.next_at <= ts
            and r.receiver not in skip
            and r.partition not in self._suspended
        ]
        rows.sort(key=lambda r: r.next_at)
        return [r.item() for r in rows[:limit]]

    def get(self, notification_id: str, receiver: str) -> OutboxItem:
        return self._need(notification_id, receiver).item()

    def partition_of(self, notification_id: str, receiver: str) -> int | None:
        row = self._rows.get((notification_id, receiver))
        return None if row is None else row.partition

    def state(self, notification_id: str, receiver: str) -> RowState | None:
        row = self._rows.get((notification_id, receiver))
        return None if row is None else row.state

    def items(self, state: RowState | None = None) -> Iterator[OutboxItem]:
        for row in list(self._rows.values()):
            if row.notification is not None and (state is None or row.state is state):
                yield row.item()

    def held(self, receiver: str) -> list[OutboxItem]:
        """The rows a receiver refused (held) or that spent their budget (dead)."""
        return [
            r.item()
            for r in self._rows.values()
            if r.receiver == receiver
            and r.state in (RowState.HELD, RowState.DEAD)
            and r.notification is not None
        ]

    def dead_letters(self) -> list[OutboxItem]:
        return [i for i in self.items() if i.state in (RowState.HELD, RowState.DEAD)]

    def counts(self) -> dict[RowState, int]:
        out = dict.fromkeys(RowState, 0)
        for row in self._rows.values():
            out[row.state] += 1
        return out

    def next_due_at(self) -> datetime | None:
        times = [
            r.next_at
            for r in self._rows.values()
            if r.state is RowState.PENDING and r.partition not in self._suspended
        ]
        return _time(min(times)) if times else None

    # -- the ledger record of a row

    def ledger_value(self, notification_id: str, receiver: str) -> bytes:
        """The ledger record of a row (JSON): its state, attempts, times, error, fingerprint and,
        unless sent, the notification itself (a takeover must be able to send it)."""
        row = self._need(notification_id, receiver)
        record: dict[str, object] = {
            "id": row.notification_id,
            "receiver": row.receiver,
            "state": row.state.value,
            "attempts": row.attempts,
            "created_at": row.created_at,
            "next_at": row.next_at,
            "last_error": row.last_error,
            "sent_at": row.sent_at,
            "fingerprint": row.fingerprint,
        }
        if row.state is not RowState.SENT and row.notification is not None:
            record["notification"] = row.notification.to_json()
        return orjson.dumps(record)

    def load(self, value: bytes, partition: int) -> tuple[str, str]:
        """Take one ledger record (a later record of the same key replaces an earlier one).
        Raises :class:`OutboxError` for a record that does not parse."""
        try:
            d = orjson.loads(value)
            state = RowState(d["state"])
            payload = d.get("notification")
            notification = None if payload is None else Notification.from_json(payload)
            row = _Row(
                notification, str(d["id"]), str(d["receiver"]), partition, state,
                int(d["attempts"]), float(d["created_at"]), float(d["next_at"]),
                d.get("last_error"), None if d.get("sent_at") is None else float(d["sent_at"]),
                str(d.get("fingerprint") or ""),
            )  # fmt: skip
        except (orjson.JSONDecodeError, ValidationError, KeyError, TypeError, ValueError) as exc:
            raise OutboxError("ledger", f"record does not parse: {type(exc).__name__}") from exc
        if row.notification is None and state is not RowState.SENT:
            raise OutboxError("ledger", f"{state.value} record without its notification")
        self._rows[(row.notification_id, row.receiver)] = row
        return (row.notification_id, row.receiver)

    def _need(self, notification_id: str, receiver: str) -> _Row:
        row = self._rows.get((notification_id, receiver))
        if row is None:
            raise OutboxError("id", f"no row for ({notification_id}, {receiver})")
        return row
