"""The PostgreSQL store (``pushsim sender --store postgresql://...``): any number of sender
instances on one database, with the SQLite store's semantics -- an accepted notification is
committed before the 202, delivery is at least once with the same apns-id every time, and a
pruned token is not sent to again (every instance learns of a prune through a notice, and
claims check the database).

:class:`PgStorage` is the :class:`~sender.storage.backend.Storage`: the API's reads and
writes go straight to the database through a pool (psycopg 3); everything dispatch writes
is group-committed by :class:`~sender.storage.pg.writer.PgWriter`; the work is shared by
:class:`~sender.storage.pg.work.PgWork`; holds, breakers and rates by
:class:`~sender.storage.pg.peers.PgPeers`. On start it connects (a database that cannot be
reached is :class:`StoreUnavailable` naming it), migrates the schema
(:mod:`sender.storage.pg.schema`) and registers the instance.

Delivery ids are the instance's serial (from a sequence) shifted over a local counter, so
instances never collide and never ask the database for one.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from pushsim.clock import Clock
from sender.config.settings import SenderConfig
from sender.dispatch.job import Recorder
from sender.dispatch.peers import Peers
from sender.storage.backend import Local, StoreUnavailable, Work
from sender.storage.pg.peers import PgPeers
from sender.storage.pg.schema import SchemaTooNew, migrate
from sender.storage.pg.work import PgWork
from sender.storage.pg.writer import TOKENS_CHANNEL, PgWriter
from sender.storage.records import notification_doc
from sender.storage.tokens import Registration, TokenStore

COLUMNS = (
    "id, user_id, provider, token, device_id, app, environment, subscription, status,"
    " created_at, last_success_at, died_at, death_reason"
)
ID_BITS = 40  # a delivery id: instance serial << 40 | local counter
TIMEOUT = 2.0  # seconds to wait for a pooled connection before answering 503


def shown(url: str) -> str:
    """The URL with any password hidden."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()


def _registration(row: Any) -> Registration:
    return Registration(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6],
        json.loads(row[7]) if row[7] else None, *row[8:],
    )  # fmt: skip


class PgTokens:
    """The dispatch side of the registrations: a dead-token set in memory (loaded on
    start, kept up to date from the other instances' notices), prunes written soon."""

    def __init__(self, writer: PgWriter, clock: Clock) -> None:
        self.writer = writer
        self.clock = clock
        self.dead: set[tuple[str, str]] = set()

    def is_dead(self, provider: str, token: str) -> bool:
        return (provider, token) in self.dead

    def mark_dead(self, provider: str, token: str, reason: str) -> bool:
        if (provider, token) in self.dead:
            return False
        self.dead.add((provider, token))
        self.writer.mark_dead(provider, token, reason, self.clock.time())
        return True

    def mark_success(self, provider: str, token: str) -> None:
        self.writer.mark_success(provider, token, self.clock.time())


class PgStorage:
    def __init__(self, config: SenderConfig, clock: Clock) -> None:
        assert config.store_url
        self.config = config
        self.url = config.store_url
        self.clock = clock
        self.me = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.writer = PgWriter(
            self.me, flush_interval=config.flush_interval, on_failure=self._failed
        )
        self.recorder: Recorder = self.writer
        self.pg_tokens = PgTokens(self.writer, clock)
        self.tokens: TokenStore = self.pg_tokens
        self.pg_peers = PgPeers(self.me, self.writer)
        self.peers: Peers | None = self.pg_peers
        self.work = PgWork(self.me, self.url, config.lease, self.writer, self.pg_tokens.dead, clock)
        self.pool: AsyncConnectionPool[AsyncConnection[Any]] | None = None
        self.idempotency: dict[str, str] = {}
        self._next = 0
        self._serial = 0

    def _failed(self, exc: BaseException) -> None:
        if isinstance(exc, psycopg.OperationalError | StoreUnavailable | OSError):
            self.work.failed(exc)

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        """A pooled connection; the database unreachable is :class:`StoreUnavailable`."""
        if self.pool is None:
            raise StoreUnavailable("the store is not open")
        try:
            async with self.pool.connection(timeout=TIMEOUT) as conn:
                yield conn
        except (psycopg.OperationalError, PoolTimeout) as exc:
            self.work.failed(exc)
            raise StoreUnavailable(" ".join(str(exc).split())[:200]) from exc

    async def open(self) -> None:
        try:
            conn = await AsyncConnection.connect(self.url, autocommit=True, connect_timeout=5)
        except psycopg.Error as exc:
            line = " ".join(str(exc).split())[:300]
            raise StoreUnavailable(f"cannot connect to {shown(self.url)}: {line}") from None
        try:
            await migrate(conn)
            self._serial = await self.work.register(conn)
            cur = await conn.execute("SELECT provider, token FROM devices WHERE status = 'dead'")
            self.pg_tokens.dead.update((str(p), str(t)) for p, t in await cur.fetchall())
        except SchemaTooNew as exc:
            raise StoreUnavailable(f"{shown(self.url)}: {exc}") from None
        except psycopg.Error as exc:
            line = " ".join(str(exc).split())[:300]
            raise StoreUnavailable(f"cannot use {shown(self.url)}: {line}") from None
        finally:
            await conn.close()
        self.pool = AsyncConnectionPool(
            self.url, min_size=2, max_size=10, open=False, kwargs={"autocommit": True}
        )
        await self.pool.open(wait=True, timeout=10)
        self.writer.connect = self.work.connect = self.pg_peers.connect = self.connection
        await self.pg_peers.set_rates(self.config.limits)

    async def start_work(self, local: Local) -> None:
        async def listening() -> None:  # holds the others recorded while we were not told
            with contextlib.suppress(psycopg.Error, StoreUnavailable, OSError):
                await self.pg_peers.holds_now(self.clock.time(), local)

        self.work.on_listening = listening
        self.work.start(local)

    async def close(self) -> None:
        await self.writer.close()
        await self.work.stop()
        if self.pool is not None:
            await self.pool.close()

    def next_delivery_id(self) -> int:
        self._next += 1
        return (self._serial << ID_BITS) | self._next

    # -- the API's side -----------------------------------------------------------------

    async def accept(self, items: Work, *, owned: bool = True) -> list[str | None]:
        if not self.work.healthy:
            raise StoreUnavailable("the database is unreachable")
        taken = await self.writer.accept(items, owned)
        for (n, _), holder in zip(items, taken, strict=True):
            if n.idempotency_key:
                self.idempotency[n.idempotency_key] = holder or n.id
        return taken

    def find_idempotent(self, key: str) -> str | None:
        return self.idempotency.get(key)

    async def register(
        self,
        user_id: str,
        provider: str,
        token: str,
        *,
        device_id: str | None = None,
        app: str | None = None,
        environment: str | None = None,
        subscription: dict[str, Any] | None = None,
    ) -> Registration:
        now = self.clock.time()
        reg = Registration(
            uuid.uuid4().hex, user_id, provider, token, device_id, app, environment,
            subscription, "active", now,
        )  # fmt: skip
        replaced: list[tuple[str, str]] = []
        async with self.connection() as conn, conn.transaction():
            if device_id is not None:
                cur = await conn.execute(
                    "UPDATE devices SET status = 'dead', died_at = %s, death_reason = 'replaced'"
                    " WHERE user_id = %s AND device_id = %s AND provider = %s AND token <> %s"
                    " AND status = 'active' RETURNING provider, token",
                    (now, user_id, device_id, provider, token),
                )
                replaced = [(str(p), str(t)) for p, t in await cur.fetchall()]
            await conn.execute(
                "DELETE FROM devices WHERE provider = %s AND token = %s", (provider, token)
            )
            await conn.execute(
                f"INSERT INTO devices ({COLUMNS}) VALUES"
                " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, NULL, NULL, NULL)",
                (
                    reg.id, user_id, provider, token, device_id, app, environment,
                    json.dumps(subscription) if subscription else None, "active", now,
                ),
            )  # fmt: skip
            told = {"live": [[provider, token]], "dead": [list(k) for k in replaced]}
            await conn.execute("SELECT pg_notify(%s, %s)", (TOKENS_CHANNEL, json.dumps(told)))
        self.pg_tokens.dead.discard((provider, token))
        self.pg_tokens.dead.update(replaced)
        return reg

    async def delete_device(self, registration_id: str) -> bool:
        async with self.connection() as conn:
            cur = await conn.execute(
                "DELETE FROM devices WHERE id = %s RETURNING provider, token", (registration_id,)
            )
            row = await cur.fetchone()
            if row is not None:
                told = json.dumps({"live": [[row[0], row[1]]]})
                await conn.execute("SELECT pg_notify(%s, %s)", (TOKENS_CHANNEL, told))
        if row is None:
            return False
        self.pg_tokens.dead.discard((str(row[0]), str(row[1])))
        return True

    async def list_devices(
        self, user_id: str | None = None, status: str | None = None
    ) -> list[Registration]:
        await self.writer.settle()  # last_success_at
        async with self.connection() as conn:
            cur = await conn.execute(
                f"SELECT {COLUMNS} FROM devices WHERE (%(u)s::text IS NULL OR user_id = %(u)s)"
                " AND (%(s)s::text IS NULL OR status = %(s)s) ORDER BY created_at",
                {"u": user_id, "s": status},
            )
            return [_registration(r) for r in await cur.fetchall()]

    async def active_for_users(self, users: list[str]) -> dict[str, list[Registration]]:
        async with self.connection() as conn:
            cur = await conn.execute(
                f"SELECT {COLUMNS} FROM devices WHERE user_id = ANY(%s) AND status = 'active'",
                (users,),
            )
            rows = await cur.fetchall()
        out: dict[str, list[Registration]] = {u: [] for u in users}
        for r in rows:
            out[r[1]].append(_registration(r))
        return out

    async def notification(self, notification_id: str) -> dict[str, Any] | None:
        await self.writer.settle()
        async with self.connection() as conn:
            cur = await conn.execute(
                "SELECT id, created_at, targets FROM notifications WHERE id = %s",
                (notification_id,),
            )
            n = await cur.fetchone()
            if n is None:
                return None
            cur = await conn.execute(
                "SELECT id, provider, token, status, message_id, provider_message_id,"
                " last_error, attempts FROM deliveries WHERE notification_id = %s ORDER BY id",
                (notification_id,),
            )
            deliveries = await cur.fetchall()
            cur = await conn.execute(
                "SELECT delivery_id, at, status_code, reason, latency_ms FROM attempts"
                " WHERE delivery_id = ANY(%s) ORDER BY at",
                ([d[0] for d in deliveries],),
            )
            attempts = await cur.fetchall()
            cur = await conn.execute(
                "SELECT token, event, at FROM receipts WHERE notification_id = %s ORDER BY at",
                (notification_id,),
            )
            receipts = await cur.fetchall()
        return notification_doc(n, deliveries, attempts, receipts)

    async def receipt(self, notification_id: str, token: str, event: str) -> bool:
        async with self.connection() as conn:
            cur = await conn.execute(
                "SELECT 1 FROM deliveries WHERE notification_id = %s AND token = %s LIMIT 1",
                (notification_id, token),
            )
            if await cur.fetchone() is None:
                return False
        self.writer.record_receipt(notification_id, token, event, self.clock.time())
        return True
