"""Group commit to PostgreSQL: everything the sender writes, a transaction at a time.

Accepted notifications (awaited: the API answers 202 after the commit), delivery updates,
attempt records, receipts, pruned tokens, last-success times and notices to the other
instances (``pg_notify``, sent on commit) queue here; a flush writes all of it in one
transaction, ``flush_interval`` after the first accept or prune, ``record_interval`` after
the first record when nothing waits. One flush runs at a time; what arrives meanwhile goes
in the next, at once.

A flush that fails on the connection fails its accepts (:class:`StoreUnavailable`: the
API answers 503, nothing of them was written) and keeps every record for the next flush,
so losing the database loses nothing; ``on_failure`` tells the store, whose lease keeper
calls :meth:`PgWriter.kick` once the database is back.

A delivery update is written only while the delivery is open; a retry only by its owner,
so an instance whose deliveries were taken over cannot move them back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import AsyncConnection, AsyncCursor

from sender.storage.backend import StoreUnavailable, Work
from sender.storage.flush_timer import FlushTimer

log = logging.getLogger("pushsim.sender")
Connect = Callable[[], AbstractAsyncContextManager[AsyncConnection[Any]]]

WORK_CHANNEL = "pushsim_work"  # deliveries left unowned: whoever has room claims them
TOKENS_CHANNEL = "pushsim_tokens"  # {"dead": [[provider, token], ...]} or {"live": [...]}
PEERS_CHANNEL = "pushsim_peers"  # holds and breaker transitions (sender.storage.pg.peers)
NOTICE_LIMIT = 7000  # bytes of one pg_notify payload (PostgreSQL allows just under 8000)

INSERT_NOTIFICATIONS = """
INSERT INTO notifications (id, created_at, message, deadline, idempotency_key, targets)
SELECT * FROM unnest(%s::text[], %s::float8[], %s::text[], %s::float8[], %s::text[], %s::int[])
ON CONFLICT DO NOTHING RETURNING id"""
INSERT_DELIVERIES = """
INSERT INTO deliveries (id, notification_id, provider, token, target, message_id, status, owner)
SELECT * FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
                     %s::text[], %s::text[])"""
UPDATE_DELIVERIES = """
UPDATE deliveries AS d SET status = u.status, attempts = u.attempts, next_at = u.next_at,
    last_error = u.last_error, provider_message_id = COALESCE(u.pmid, d.provider_message_id)
FROM unnest(%s::bigint[], %s::text[], %s::int[], %s::float8[], %s::text[], %s::text[])
    AS u(id, status, attempts, next_at, last_error, pmid)
WHERE d.id = u.id AND d.status IN ('pending', 'retrying')
    AND (u.status NOT IN ('pending', 'retrying') OR d.owner = %s)"""
INSERT_ATTEMPTS = """
INSERT INTO attempts (delivery_id, at, status_code, reason, latency_ms)
SELECT * FROM unnest(%s::bigint[], %s::float8[], %s::int[], %s::text[], %s::float8[])"""
INSERT_RECEIPTS = """
INSERT INTO receipts (notification_id, token, event, at)
SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::float8[])"""
MARK_DEAD = """
INSERT INTO devices (id, user_id, provider, token, status, created_at, died_at, death_reason)
SELECT u.id, '', u.p, u.t, 'dead', u.at, u.at, u.reason
FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::float8[]) AS u(id, p, t, reason, at)
ON CONFLICT (provider, token) DO UPDATE SET status = 'dead', died_at = EXCLUDED.died_at,
    death_reason = EXCLUDED.death_reason WHERE devices.status <> 'dead'"""
MARK_SUCCESS = """
UPDATE devices AS d SET last_success_at = u.at
FROM unnest(%s::text[], %s::text[], %s::float8[]) AS u(p, t, at)
WHERE d.provider = u.p AND d.token = u.t"""
NOTIFY = "SELECT pg_notify(c, p) FROM unnest(%s::text[], %s::text[]) AS n(c, p)"


@dataclass
class _Accept:
    items: Work
    owned: bool
    done: asyncio.Future[list[str | None]]


@dataclass
class Pending:
    """What one flush writes."""

    accepts: list[_Accept] = field(default_factory=list)
    updates: dict[int, tuple[Any, ...]] = field(default_factory=dict)
    attempts: list[tuple[Any, ...]] = field(default_factory=list)
    receipts: list[tuple[Any, ...]] = field(default_factory=list)
    dead: dict[tuple[str, str], tuple[str, float]] = field(default_factory=dict)
    success: dict[tuple[str, str], float] = field(default_factory=dict)
    notices: list[tuple[str, str]] = field(default_factory=list)
    settled: list[asyncio.Future[None]] = field(default_factory=list)

    def empty(self) -> bool:
        return not (
            self.accepts or self.updates or self.attempts or self.receipts or self.dead
            or self.success or self.notices
        )  # fmt: skip

    def keep(self, newer: Pending) -> None:
        """Put this (failed) flush's records back under the ones queued since."""
        self.updates.update(newer.updates)
        newer.updates = self.updates
        newer.attempts[:0] = self.attempts
        newer.receipts[:0] = self.receipts
        self.dead.update(newer.dead)
        newer.dead = self.dead
        self.success.update(newer.success)
        newer.success = self.success
        newer.notices[:0] = self.notices


class PgWriter:
    def __init__(
        self,
        me: str,
        *,
        flush_interval: float = 0.002,
        record_interval: float = 0.05,
        on_failure: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.me = me
        self.connect: Connect | None = None  # set once the store is open
        self.flush_interval = flush_interval
        self.record_interval = max(flush_interval, record_interval)
        self.on_failure = on_failure
        self.pending = Pending()
        self._timer = FlushTimer(self.kick)
        self._flushing: asyncio.Task[None] | None = None
        self.commits = 0
        self.closed = False

    # -- queueing (what the dispatcher and the store call) ---------------------------

    async def accept(self, items: Work, owned: bool) -> list[str | None]:
        fut: asyncio.Future[list[str | None]] = asyncio.get_running_loop().create_future()
        self.pending.accepts.append(_Accept(items, owned, fut))
        self._schedule(self.flush_interval)
        return await fut

    def update(
        self,
        delivery_id: int,
        status: str,
        attempts: int,
        next_at: float = 0.0,
        last_error: str | None = None,
        provider_message_id: str | None = None,
    ) -> None:
        self.pending.updates[delivery_id] = (
            status, attempts, next_at, last_error, provider_message_id
        )  # fmt: skip
        self._schedule(self.record_interval)

    def record_attempt(
        self, delivery_id: int, at: float, status_code: int | None, reason: str, latency_ms: float
    ) -> None:
        self.pending.attempts.append((delivery_id, at, status_code, reason, round(latency_ms, 3)))
        self._schedule(self.record_interval)

    def record_receipt(self, notification_id: str, token: str, event: str, at: float) -> None:
        self.pending.receipts.append((notification_id, token, event, at))
        self._schedule(self.record_interval)

    def mark_dead(self, provider: str, token: str, reason: str, at: float) -> None:
        self.pending.dead[(provider, token)] = (reason, at)
        self._schedule(0.0)  # now: the other instances must stop sending

    def mark_success(self, provider: str, token: str, at: float) -> None:
        self.pending.success[(provider, token)] = at
        self._schedule(self.record_interval)

    def notice(self, channel: str, payload: str) -> None:
        self.pending.notices.append((channel, payload))
        self._schedule(self.flush_interval)

    async def settle(self) -> None:
        """Wait until what is queued now is written (or its flush failed)."""
        if self.pending.empty():
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending.settled.append(fut)
        self._schedule(0.0)
        await fut

    # -- flushing -------------------------------------------------------------------

    def _schedule(self, delay: float) -> None:
        if self.closed:
            return
        self._timer.within(delay)

    def kick(self) -> None:
        """Flush now (after the one running, if any)."""
        self._timer.cancel()
        if self._flushing is None and not self.pending.empty():
            self._flushing = asyncio.ensure_future(self._flush_all())

    async def _flush_all(self) -> None:
        try:
            while not self.pending.empty():
                batch, self.pending = self.pending, Pending()
                if not await self._flush(batch):
                    return
        finally:
            self._flushing = None

    async def _flush(self, batch: Pending) -> bool:
        """Write one batch; False if it failed (its accepts failed; its records queued
        again when the database was away)."""
        try:
            if self.connect is None:
                raise StoreUnavailable("the store is not open")
            async with self.connect() as conn, conn.transaction():
                results = await self._write(conn.cursor(), batch)
        except Exception as exc:  # whatever it was, no accept may be left waiting
            err = exc if isinstance(exc, StoreUnavailable) else StoreUnavailable(_line(exc))
            for a in (*batch.accepts, *self.pending.accepts):  # queued meanwhile: fail fast too
                if not a.done.done():
                    a.done.set_exception(err)
            self.pending.accepts.clear()
            if isinstance(exc, psycopg.OperationalError | StoreUnavailable | OSError):
                batch.keep(self.pending)  # the database is away: write them when it is back
            else:  # not the connection: writing them again would fail again
                log.error("store write failed, its records dropped: %r", exc)
            if self.on_failure is not None:
                self.on_failure(exc)
            settled, self.pending.settled = [*batch.settled, *self.pending.settled], []
            for f in settled:  # settle() waits for a write or its failure
                if not f.done():
                    f.set_result(None)
            return False
        self.commits += 1
        for a, result in zip(batch.accepts, results, strict=True):
            if not a.done.done():
                a.done.set_result(result)
        for f in batch.settled:
            if not f.done():
                f.set_result(None)
        return True

    async def _write(self, cur: AsyncCursor[Any], b: Pending) -> list[list[str | None]]:
        results = await self._insert(cur, b.accepts) if b.accepts else []
        if any(not a.owned for a in b.accepts):
            b.notices.append((WORK_CHANNEL, ""))
        if b.updates:
            ids = sorted(b.updates)
            cols = list(zip(*(b.updates[i] for i in ids), strict=True))
            await cur.execute(UPDATE_DELIVERIES, (ids, *map(list, cols), self.me))
        if b.attempts:
            await cur.execute(INSERT_ATTEMPTS, tuple(map(list, zip(*b.attempts, strict=True))))
        if b.receipts:
            await cur.execute(INSERT_RECEIPTS, tuple(map(list, zip(*b.receipts, strict=True))))
        if b.dead:
            keys = sorted(b.dead)
            await cur.execute(
                MARK_DEAD,
                (
                    [uuid.uuid4().hex for _ in keys],
                    [p for p, _ in keys],
                    [t for _, t in keys],
                    [b.dead[k][0] for k in keys],
                    [b.dead[k][1] for k in keys],
                ),
            )
            b.notices += [(TOKENS_CHANNEL, p) for p in _chunks("dead", keys)]
        if b.success:
            keys = sorted(b.success)
            await cur.execute(
                MARK_SUCCESS,
                ([p for p, _ in keys], [t for _, t in keys], [b.success[k] for k in keys]),
            )
        if b.notices:
            await cur.execute(NOTIFY, ([c for c, _ in b.notices], [p for _, p in b.notices]))
        return results

    async def _insert(
        self, cur: AsyncCursor[Any], accepts: list[_Accept]
    ) -> list[list[str | None]]:
        """The accepts' notifications and deliveries, all in two statements; per accept, per
        notification None (written) or the id already holding its idempotency key (nothing
        of it written)."""
        ns = [n for a in accepts for n, _ in a.items]
        await cur.execute(
            INSERT_NOTIFICATIONS,
            (
                [n.id for n in ns],
                [n.created_at for n in ns],
                [json.dumps(n.message) for n in ns],
                [n.deadline for n in ns],
                [n.idempotency_key for n in ns],
                [n.targets for n in ns],
            ),
        )
        written = {str(r[0]) for r in await cur.fetchall()}
        holders: dict[str, str] = {}
        lost = [n.idempotency_key for n in ns if n.id not in written and n.idempotency_key]
        if lost:
            await cur.execute(
                "SELECT idempotency_key, id FROM notifications WHERE idempotency_key = ANY(%s)",
                (lost,),
            )
            holders = {str(k): str(i) for k, i in await cur.fetchall()}
        rows = [
            (d, self.me if a.owned else None)
            for a in accepts
            for n, ds in a.items
            if n.id in written
            for d in ds
        ]
        if rows:
            await cur.execute(
                INSERT_DELIVERIES,
                (
                    [d.id for d, _ in rows],
                    [d.notification_id for d, _ in rows],
                    [d.provider for d, _ in rows],
                    [d.token for d, _ in rows],
                    [json.dumps(d.target) if d.target else None for d, _ in rows],
                    [d.message_id for d, _ in rows],
                    [d.status for d, _ in rows],
                    [owner for _, owner in rows],
                ),
            )
        return [
            [
                None if n.id in written else holders.get(n.idempotency_key or "", n.id)
                for n, _ in a.items
            ]
            for a in accepts
        ]

    async def close(self) -> None:
        """Write what is queued (once) and stop taking more."""
        if self._flushing is not None:
            await asyncio.gather(self._flushing, return_exceptions=True)
        if not self.pending.empty():
            batch, self.pending = self.pending, Pending()
            await self._flush(batch)
        self.closed = True
        self._timer.cancel()


def _chunks(kind: str, keys: list[tuple[str, str]]) -> list[str]:
    """``{kind: [[provider, token], ...]}`` payloads, each under :data:`NOTICE_LIMIT`."""
    out: list[str] = []
    part: list[list[str]] = []
    size = 0
    for p, t in keys:
        if part and size + len(t) + 20 > NOTICE_LIMIT:
            out.append(json.dumps({kind: part}))
            part, size = [], 0
        if len(t) + 40 < NOTICE_LIMIT:
            part.append([p, t])
            size += len(t) + 20
    if part:
        out.append(json.dumps({kind: part}))
    return out


def _line(exc: BaseException) -> str:
    return " ".join((str(exc) or type(exc).__name__).split())[:200]
