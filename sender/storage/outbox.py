"""The durable outbox: accepted notifications are on disk before the API answers 202.

Writes are group-committed: :meth:`Outbox.accept` queues the rows and awaits the next
flush, which runs ``flush_interval`` seconds after the first pending accept (or at once when
a batch is full) and writes everything pending -- new notifications, delivery state
changes, attempt records, receipts -- in one SQLite transaction (WAL mode). Committed data
survives a killed process; on restart :meth:`Outbox.unfinished` returns the deliveries
still owed (at-least-once).

Nobody waits on delivery outcomes, attempt records and receipts, so alone they are
flushed every ``record_interval`` seconds (they also ride along with any accept's commit).
A crash loses at most the records of that last window, never an accepted notification:
a delivery whose outcome was lost is still open on disk and is sent again on restart.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from typing import Any

from pushsim.clock import Clock
from sender.storage.flush_timer import FlushTimer
from sender.storage.records import (
    DeliveryRow,
    NotificationRow,
    notification_doc,
    overall_status,
)

__all__ = ["DeliveryRow", "NotificationRow", "Outbox", "overall_status"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS notifications (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    message TEXT NOT NULL,
    deadline REAL NOT NULL,
    idempotency_key TEXT UNIQUE,
    targets INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY,
    notification_id TEXT NOT NULL,
    provider TEXT NOT NULL,
    token TEXT NOT NULL,
    target TEXT,
    message_id TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    provider_message_id TEXT
);
CREATE INDEX IF NOT EXISTS deliveries_notification ON deliveries (notification_id);
CREATE INDEX IF NOT EXISTS deliveries_open ON deliveries (status)
    WHERE status IN ('pending', 'retrying');
CREATE TABLE IF NOT EXISTS attempts (
    delivery_id INTEGER NOT NULL,
    at REAL NOT NULL,
    status_code INTEGER,
    reason TEXT,
    latency_ms REAL
);
CREATE INDEX IF NOT EXISTS attempts_delivery ON attempts (delivery_id);
CREATE TABLE IF NOT EXISTS receipts (
    notification_id TEXT NOT NULL,
    token TEXT NOT NULL,
    event TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS receipts_notification ON receipts (notification_id);
"""


class Outbox:
    def __init__(
        self,
        conn: sqlite3.Connection,
        clock: Clock,
        *,
        flush_interval: float = 0.002,
        record_interval: float = 0.05,
        max_batch: int = 2000,
        before_commit: Callable[[], None] | None = None,
    ) -> None:
        self.conn = conn
        self.clock = clock
        self.flush_interval = flush_interval
        self.record_interval = max(flush_interval, record_interval)
        self.max_batch = max_batch
        self.before_commit = before_commit
        conn.executescript(SCHEMA)
        row = conn.execute("SELECT COALESCE(MAX(id), 0) FROM deliveries").fetchone()
        self._next_id = int(row[0]) + 1
        self._new_notifications: list[tuple[Any, ...]] = []
        self._new_deliveries: list[tuple[Any, ...]] = []
        self._updates: dict[int, tuple[Any, ...]] = {}
        self._attempts: list[tuple[Any, ...]] = []
        self._receipts: list[tuple[Any, ...]] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._timer = FlushTimer(self.flush)  # the next flush, when scheduled
        self.idempotency: dict[str, str] = {}
        self.commits = 0
        self.closed = False

    def next_delivery_id(self) -> int:
        i = self._next_id
        self._next_id += 1
        return i

    # -- writes -----------------------------------------------------------------

    async def accept(self, n: NotificationRow, deliveries: list[DeliveryRow]) -> None:
        """Queue a notification and its deliveries; return once they are committed."""
        await self.accept_many([(n, deliveries)])

    async def accept_many(self, items: list[tuple[NotificationRow, list[DeliveryRow]]]) -> None:
        """Queue notifications and their deliveries; return once all are committed (in
        one transaction)."""
        for n, deliveries in items:
            self._new_notifications.append(
                (n.id, n.created_at, json.dumps(n.message), n.deadline, n.idempotency_key,
                 n.targets)
            )  # fmt: skip
            for d in deliveries:
                self._new_deliveries.append(
                    (
                        d.id,
                        d.notification_id,
                        d.provider,
                        d.token,
                        json.dumps(d.target) if d.target else None,
                        d.message_id,
                        d.status,
                    )
                )
            if n.idempotency_key:
                self.idempotency[n.idempotency_key] = n.id
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        self._schedule(len(self._new_notifications) >= self.max_batch, self.flush_interval)
        await fut

    def update(
        self,
        delivery_id: int,
        status: str,
        attempts: int,
        next_at: float = 0.0,
        last_error: str | None = None,
        provider_message_id: str | None = None,
    ) -> None:
        self._updates[delivery_id] = (
            status,
            attempts,
            next_at,
            last_error,
            provider_message_id,
            delivery_id,
        )
        if not self._timer.pending:
            self._schedule(False, self.record_interval)

    def record_attempt(
        self, delivery_id: int, at: float, status_code: int | None, reason: str, latency_ms: float
    ) -> None:
        self._attempts.append((delivery_id, at, status_code, reason, round(latency_ms, 3)))
        if not self._timer.pending:
            self._schedule(False, self.record_interval)

    def record_receipt(self, notification_id: str, token: str, event: str) -> None:
        self._receipts.append((notification_id, token, event, self.clock.time()))
        if not self._timer.pending:
            self._schedule(False, self.record_interval)

    def _schedule(self, now: bool, delay: float) -> None:
        """Flush at once (``now``), or within ``delay`` seconds (an earlier flush already
        scheduled stands; a later one is brought forward)."""
        if self.closed:
            return
        self._timer.within(0.0 if now else delay)

    def flush(self) -> None:
        """Commit everything pending in one transaction and wake the waiters."""
        self._timer.cancel()
        waiters, self._waiters = self._waiters, []
        if not (
            self._new_notifications
            or self._new_deliveries
            or self._updates
            or self._attempts
            or self._receipts
        ):
            return
        c = self.conn
        try:
            c.execute("BEGIN")
            if self._new_notifications:
                c.executemany(
                    "INSERT OR IGNORE INTO notifications (id, created_at, message, deadline,"
                    " idempotency_key, targets) VALUES (?,?,?,?,?,?)",
                    self._new_notifications,
                )
            if self._new_deliveries:
                c.executemany(
                    "INSERT INTO deliveries (id, notification_id, provider, token, target,"
                    " message_id, status) VALUES (?,?,?,?,?,?,?)",
                    self._new_deliveries,
                )
            if self._updates:
                c.executemany(
                    "UPDATE deliveries SET status = ?, attempts = ?, next_at = ?, last_error = ?,"
                    " provider_message_id = COALESCE(?, provider_message_id) WHERE id = ?",
                    list(self._updates.values()),
                )
            if self._attempts:
                c.executemany("INSERT INTO attempts VALUES (?,?,?,?,?)", self._attempts)
            if self._receipts:
                c.executemany("INSERT INTO receipts VALUES (?,?,?,?)", self._receipts)
            if self.before_commit is not None:
                self.before_commit()
            c.execute("COMMIT")
        except BaseException as exc:
            if c.in_transaction:
                c.execute("ROLLBACK")
            for w in waiters:
                if not w.done():
                    w.set_exception(exc if isinstance(exc, Exception) else RuntimeError(str(exc)))
            raise
        finally:
            self._new_notifications.clear()
            self._new_deliveries.clear()
            self._updates.clear()
            self._attempts.clear()
            self._receipts.clear()
        self.commits += 1
        for w in waiters:
            if not w.done():
                w.set_result(None)

    def close(self) -> None:
        self.flush()
        self.closed = True

    # -- reads ------------------------------------------------------------------

    def find_idempotent(self, key: str) -> str | None:
        nid = self.idempotency.get(key)
        if nid is not None:
            return nid
        row = self.conn.execute(
            "SELECT id FROM notifications WHERE idempotency_key = ?", (key,)
        ).fetchone()
        return None if row is None else str(row[0])

    def unfinished(self) -> list[tuple[NotificationRow, list[DeliveryRow]]]:
        """Deliveries still owed, grouped by notification (for restart recovery)."""
        self.flush()
        rows = self.conn.execute(
            "SELECT d.id, d.notification_id, d.provider, d.token, d.target, d.message_id,"
            " d.status, d.attempts, d.next_at, d.last_error,"
            " n.created_at, n.message, n.deadline, n.idempotency_key, n.targets"
            " FROM deliveries d JOIN notifications n ON n.id = d.notification_id"
            " WHERE d.status IN ('pending', 'retrying') ORDER BY d.id"
        ).fetchall()
        out: dict[str, tuple[NotificationRow, list[DeliveryRow]]] = {}
        for r in rows:
            if r[1] not in out:
                out[r[1]] = (
                    NotificationRow(r[1], r[10], json.loads(r[11]), r[12], r[13], r[14]),
                    [],
                )
            out[r[1]][1].append(
                DeliveryRow(
                    r[0],
                    r[1],
                    r[2],
                    r[3],
                    json.loads(r[4]) if r[4] else None,
                    r[5],
                    r[6],
                    r[7],
                    r[8],
                    r[9],
                )
            )
        return list(out.values())

    def notification(self, notification_id: str) -> dict[str, Any] | None:
        self.flush()
        c = self.conn
        n = c.execute(
            "SELECT id, created_at, targets FROM notifications WHERE id = ?", (notification_id,)
        ).fetchone()
        if n is None:
            return None
        deliveries = c.execute(
            "SELECT id, provider, token, status, message_id, provider_message_id, last_error,"
            " attempts FROM deliveries WHERE notification_id = ? ORDER BY id",
            (notification_id,),
        ).fetchall()
        ids = [d[0] for d in deliveries]
        attempts: list[Any] = []
        if ids:
            marks = ",".join("?" * len(ids))
            attempts = c.execute(
                f"SELECT delivery_id, at, status_code, reason, latency_ms FROM attempts"
                f" WHERE delivery_id IN ({marks}) ORDER BY rowid",
                ids,
            ).fetchall()
        receipts = c.execute(
            "SELECT token, event, at FROM receipts WHERE notification_id = ? ORDER BY rowid",
            (notification_id,),
        ).fetchall()
        return notification_doc(n, deliveries, attempts, receipts)

    def has_delivery_to(self, notification_id: str, token: str) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM deliveries WHERE notification_id = ? AND token = ? LIMIT 1",
            (notification_id, token),
        ).fetchone()
        return row is not None
