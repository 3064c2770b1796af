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
    DEAD_NOT_RETRYABLE = "dead_not_retryable"  # e.g. HTTP 400: sending again cannot help
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
        return RetryDecision(RetryOutcome.DEAD_NOT_RETRYABLE)
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
    DEAD = "dead"


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
    ) -> RetryDecision:
        """Record a failed attempt; schedules the retry or moves the row to dead-letter."""
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
            state = RowState.PENDING if decision.next_at is not None else RowState.DEAD
            next_at = _epoch(decision.next_at) if decision.next_at is not None else _epoch(now)
            self._db.execute(
                "UPDATE outbox SET state = ?, attempts = ?, next_at = ?, last_error = ?"
                " WHERE id = ? AND receiver = ?",
                (state.value, attempts, next_at, error[:2000], notification_id, receiver),
            )
        return decision

    def requeue(self, notification_id: str, receiver: str, now: datetime) -> None:
        """Give a dead-letter row a fresh budget (an operator's decision)."""
        with self._tx():
            self._row(notification_id, receiver)
            ts = _epoch(now)
            self._db.execute(
                "UPDATE outbox SET state = ?, attempts = 0, created_at = ?, next_at = ?"
                " WHERE id = ? AND receiver = ? AND state = ?",
                (RowState.PENDING.value, ts, ts, notification_id, receiver, RowState.DEAD.value),
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
        return list(self.items(RowState.DEAD))

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
