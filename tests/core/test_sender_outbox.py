"""The outbox's group commit: accepts are durable when accept() returns, outcome and attempt
records are batched, and a crash loses at most those records, never an accepted notification."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from pushsim.clock import SystemClock
from sender.storage.db import connect
from sender.storage.outbox import DeliveryRow, NotificationRow, Outbox


def _rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    other = sqlite3.connect(str(db))  # another connection sees only committed data
    try:
        return other.execute(sql).fetchall()
    finally:
        other.close()


async def _accept(outbox: Outbox, nid: str) -> DeliveryRow:
    row = DeliveryRow(outbox.next_delivery_id(), nid, "apns", "tok-" + nid, None, "m-" + nid)
    n = NotificationRow(nid, 1.0, {"priority": "high"}, 1e12, None, 1)
    await outbox.accept(n, [row])
    return row


def test_records_are_batched_and_ride_along_with_the_next_accept(tmp_path: Path) -> None:
    db = tmp_path / "sender.db"

    async def run() -> None:
        outbox = Outbox(connect(db), SystemClock(), flush_interval=0.001, record_interval=30.0)
        first = await _accept(outbox, "n1")
        assert _rows(db, "SELECT id FROM notifications") == [("n1",)]
        commits = outbox.commits
        outbox.record_attempt(first.id, 2.0, 200, "ok", 1.5)
        outbox.update(first.id, "delivered", 1)
        await asyncio.sleep(0.05)
        assert outbox.commits == commits  # records alone wait for their longer window
        assert _rows(db, "SELECT COUNT(*) FROM attempts") == [(0,)]
        await _accept(outbox, "n2")  # one transaction: the new notification and the records
        assert outbox.commits == commits + 1
        assert _rows(db, "SELECT COUNT(*) FROM attempts") == [(1,)]
        assert _rows(db, "SELECT status FROM deliveries WHERE id = 1") == [("delivered",)]
        outbox.close()

    asyncio.run(run())


def test_a_crash_loses_records_but_never_an_accepted_notification(tmp_path: Path) -> None:
    db = tmp_path / "sender.db"

    async def run() -> None:
        conn = connect(db)
        outbox = Outbox(conn, SystemClock(), flush_interval=0.001, record_interval=30.0)
        rows = [await _accept(outbox, f"n{i}") for i in range(3)]
        for r in rows:
            outbox.record_attempt(r.id, 2.0, 200, "ok", 1.0)
            outbox.update(r.id, "delivered", 1)
        # Killed before the record window closed: nothing more is written.
        outbox.closed = True
        conn.close()

    asyncio.run(run())
    reopened = Outbox(connect(db), SystemClock())
    owed = reopened.unfinished()
    # Every accepted notification is still owed (sent again: at-least-once).
    assert sorted(n.id for n, _ in owed) == ["n0", "n1", "n2"]
    assert _rows(db, "SELECT COUNT(*) FROM attempts") == [(0,)]


def test_a_full_batch_commits_once_in_the_same_loop_turn(tmp_path: Path) -> None:
    db = tmp_path / "sender.db"

    async def run() -> int:
        outbox = Outbox(connect(db), SystemClock(), flush_interval=30.0, max_batch=10)
        await asyncio.gather(*(_accept(outbox, f"n{i}") for i in range(25)))
        commits = outbox.commits
        outbox.close()
        return commits

    commits = asyncio.run(run())
    assert commits == 1  # not one per accept past the batch size, and no 30-s wait
    assert _rows(db, "SELECT COUNT(*) FROM notifications") == [(25,)]
