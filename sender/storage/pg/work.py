"""Sharing the deliveries among the instances on one PostgreSQL database.

- **Lease.** Each instance has a row in ``sender_instances`` whose ``lease_until`` it
  renews every quarter lease (database time). Every renewal also sweeps: instances whose
  lease ran out (killed, or cut off) are deleted and their open deliveries released
  (``owner`` NULL), and a notice wakes the others. An instance that finds its own row gone
  (it was cut off for longer than the lease) drops its queued deliveries, which another
  instance now owns, and registers again.
- **Claims.** Deliveries nobody owns are claimed with ``FOR UPDATE SKIP LOCKED`` in
  batches, as many as this instance has room for, when a notice on
  :data:`~sender.storage.pg.writer.WORK_CHANNEL` says there are some (``LISTEN``; a
  claim cut short by room looks again in 0.2 s, and every lease as a safety net).
- **Listening.** One connection ``LISTEN``s for work, pruned tokens and the peers'
  notices, and reconnects when it is lost.
- **Health.** A renewal that fails means the database is away: the sender pauses its
  dispatch (outcomes could not be recorded) and renewals retry every 0.25 s; the first
  that succeeds resumes dispatch and flushes what was queued meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

from pushsim.clock import Clock
from sender.storage.backend import Local, StoreUnavailable, Work
from sender.storage.pg.peers import heard
from sender.storage.pg.writer import (
    PEERS_CHANNEL,
    TOKENS_CHANNEL,
    WORK_CHANNEL,
    Connect,
    PgWriter,
)
from sender.storage.records import DeliveryRow, NotificationRow

log = logging.getLogger("pushsim.sender")

NOW = "extract(epoch FROM clock_timestamp())::float8"
REGISTER = f"""
INSERT INTO sender_instances (id, serial, started_at, lease_until)
VALUES (%s, nextval('sender_instance_serial'), {NOW}, {NOW} + %s)
ON CONFLICT (id) DO UPDATE SET lease_until = EXCLUDED.lease_until RETURNING serial"""
RENEW = f"UPDATE sender_instances SET lease_until = {NOW} + %s WHERE id = %s"
SWEEP = f"""
WITH gone AS (DELETE FROM sender_instances WHERE lease_until < {NOW} RETURNING id)
UPDATE deliveries SET owner = NULL
WHERE owner IN (SELECT id FROM gone) AND status IN ('pending', 'retrying')"""
RELEASE = """
UPDATE deliveries SET owner = NULL WHERE owner = %s AND status IN ('pending', 'retrying')"""
CLAIM = """
WITH c AS (
    SELECT id FROM deliveries WHERE owner IS NULL AND status IN ('pending', 'retrying')
    ORDER BY next_at LIMIT %s FOR UPDATE SKIP LOCKED)
UPDATE deliveries AS d SET owner = %s FROM c WHERE d.id = c.id
RETURNING d.id, d.notification_id, d.provider, d.token, d.target, d.message_id, d.status,
    d.attempts, d.next_at, d.last_error"""
CLAIMED_NOTIFICATIONS = """
SELECT id, created_at, message, deadline, idempotency_key, targets
FROM notifications WHERE id = ANY(%s)"""
DEAD_AMONG = "SELECT provider, token FROM devices WHERE status = 'dead' AND token = ANY(%s)"
NOTIFY_WORK = f"SELECT pg_notify('{WORK_CHANNEL}', '')"


class PgWork:
    def __init__(
        self,
        me: str,
        url: str,
        lease: float,
        writer: PgWriter,
        dead: set[tuple[str, str]],
        clock: Clock,
    ) -> None:
        self.me = me
        self.url = url
        self.lease = lease
        self.writer = writer
        self.dead = dead  # the store's dead-token cache, kept up to date from the notices
        self.clock = clock
        self.connect: Connect | None = None
        self.local: Local | None = None
        self.healthy = True
        self.serial = 0
        self.wake = asyncio.Event()
        self.listening = asyncio.Event()  # set while the LISTEN connection is up
        self.tasks: list[asyncio.Task[None]] = []
        self.on_health: Callable[[bool], None] | None = None
        # Run each time the LISTEN connection is (re)established, before notices are read.
        self.on_listening: Callable[[], Awaitable[None]] | None = None

    async def register(self, conn: psycopg.AsyncConnection[Any]) -> int:
        cur = await conn.execute(REGISTER, (self.me, self.lease))
        row = await cur.fetchone()
        assert row is not None
        self.serial = int(row[0])
        return self.serial

    def start(self, local: Local) -> None:
        self.local = local
        self.wake.set()
        self.tasks = [
            asyncio.ensure_future(self._keep_lease()),
            asyncio.ensure_future(self._claims()),
            asyncio.ensure_future(self._listen()),
        ]

    async def stop(self) -> None:
        """Stop, and hand this instance's open deliveries back at once (not a lease later)."""
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.connect is None or not self.healthy:
            return
        with contextlib.suppress(psycopg.Error, StoreUnavailable, OSError):
            async with self.connect() as conn, conn.transaction():
                await conn.execute(RELEASE, (self.me,))
                await conn.execute("DELETE FROM sender_instances WHERE id = %s", (self.me,))
                await conn.execute(NOTIFY_WORK)

    # -- health ---------------------------------------------------------------------

    def failed(self, exc: BaseException) -> None:
        """The database could not be reached (a write or a renewal failed)."""
        if self.healthy:
            log.warning("store unreachable: %s", " ".join(str(exc).split())[:200])
        self.healthy = False
        if self.local is not None:
            self.local.pause()
        if self.on_health is not None:
            self.on_health(False)

    def _back(self) -> None:
        if self.healthy:
            return
        log.warning("store reachable again")
        self.healthy = True
        if self.local is not None:
            self.local.resume()
        if self.on_health is not None:
            self.on_health(True)
        self.writer.kick()
        self.wake.set()

    # -- the lease ------------------------------------------------------------------

    async def _keep_lease(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 4 if self.healthy else 0.25)
            try:
                await self._renew()
            except (psycopg.Error, StoreUnavailable, OSError) as exc:
                self.failed(exc)
                continue
            self._back()

    async def _renew(self) -> None:
        assert self.connect is not None and self.local is not None
        async with self.connect() as conn:
            cur = await conn.execute(RENEW, (self.lease, self.me))
            if cur.rowcount == 0:
                self.local.abandon()
                log.warning("lease lost (cut off longer than %.1fs): dropped the queue", self.lease)
                await self.register(conn)
            async with conn.transaction():
                cur = await conn.execute(SWEEP)
                if cur.rowcount:
                    log.info(
                        "took over %d deliveries of instances whose lease ran out", cur.rowcount
                    )
                    await conn.execute(NOTIFY_WORK)

    # -- claims ---------------------------------------------------------------------

    async def _claims(self) -> None:
        assert self.local is not None
        timeout = self.lease
        while True:
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation
            # that arrives as the event is set, and this loop would never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self.wake.wait()
            self.wake.clear()
            timeout = self.lease
            if not self.healthy:
                continue
            try:
                while (room := self.local.room()) > 0:
                    work = await self.claim(min(room, 500))
                    if not work:
                        break
                    self.local.take(work)
                else:
                    timeout = 0.2  # no room: look again soon
            except (psycopg.Error, StoreUnavailable, OSError) as exc:
                self.failed(exc)

    async def claim(self, limit: int) -> Work:
        """Claim up to ``limit`` unowned open deliveries for this instance."""
        assert self.connect is not None
        async with self.connect() as conn, conn.transaction():
            cur = await conn.execute(CLAIM, (limit, self.me))
            rows = await cur.fetchall()
            if not rows:
                return []
            cur = await conn.execute(CLAIMED_NOTIFICATIONS, (list({r[1] for r in rows}),))
            notes = {r[0]: r for r in await cur.fetchall()}
            cur = await conn.execute(DEAD_AMONG, (list({r[3] for r in rows}),))
            self.dead.update((str(p), str(t)) for p, t in await cur.fetchall())
        out: dict[str, tuple[NotificationRow, list[DeliveryRow]]] = {}
        for r in rows:
            n = notes.get(r[1])
            if n is None:
                continue  # cannot be: a delivery is written with its notification
            if r[1] not in out:
                out[r[1]] = (NotificationRow(n[0], n[1], json.loads(n[2]), n[3], n[4], n[5]), [])
            target = json.loads(r[4]) if r[4] else None
            out[r[1]][1].append(DeliveryRow(r[0], r[1], r[2], r[3], target, *r[5:]))
        return list(out.values())

    # -- listening ------------------------------------------------------------------

    async def _listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True, connect_timeout=5
                ) as conn:
                    for channel in (WORK_CHANNEL, TOKENS_CHANNEL, PEERS_CHANNEL):
                        await conn.execute(f"LISTEN {channel}")
                    self.wake.set()  # whatever was told while not listening
                    if self.on_listening is not None:
                        await self.on_listening()
                    self.listening.set()
                    async for note in conn.notifies():
                        self._heard(note.channel, note.payload)
            except (psycopg.Error, OSError):
                self.listening.clear()
                await asyncio.sleep(0.25 if self.healthy else 0.5)

    def _heard(self, channel: str, payload: str) -> None:
        if channel == WORK_CHANNEL:
            self.wake.set()
        elif channel == TOKENS_CHANNEL:
            self.tokens_told(payload)
        elif channel == PEERS_CHANNEL and self.local is not None:
            heard(payload, self.me, self.local)

    def tokens_told(self, payload: str) -> None:
        try:
            msg = json.loads(payload)
            for p, t in msg.get("dead", ()):
                self.dead.add((str(p), str(t)))
            for p, t in msg.get("live", ()):
                self.dead.discard((str(p), str(t)))
        except (ValueError, TypeError, AttributeError):
            log.warning("ignored a malformed token notice: %.200s", payload)
