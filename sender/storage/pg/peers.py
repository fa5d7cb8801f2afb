"""What sender instances on one PostgreSQL database share besides the work: provider-wide
Retry-After holds (told through ``pg_notify`` on
:data:`~sender.storage.pg.writer.PEERS_CHANNEL`, and recorded for instances that join while
one lasts), breaker transitions (told) and each provider's rate limit, one
bucket in the database that every instance takes its requests from.

:class:`SharedPacer` takes tokens in chunks (a fiftieth of a second's worth, at least one)
with one ``UPDATE`` each, refilled on the database's clock, so the rate holds across
instances whatever their number; a chunk an instance took and did not use before dying is
simply not sent (the limit is never exceeded).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

from sender.config.settings import ProviderLimits
from sender.dispatch.lane import Pacer
from sender.storage.backend import Local, StoreUnavailable
from sender.storage.pg.writer import PEERS_CHANNEL, Connect, PgWriter

log = logging.getLogger("pushsim.sender")

TAKE = """
WITH b AS (
    SELECT provider, extract(epoch FROM clock_timestamp())::float8 AS now,
        LEAST(burst, tokens + GREATEST(0, extract(epoch FROM clock_timestamp()) - updated) * rate)
            AS avail, rate
    FROM rate_buckets WHERE provider = %s FOR UPDATE),
g AS (SELECT provider, now, avail, rate, LEAST(%s::float8, floor(avail)) AS granted FROM b)
UPDATE rate_buckets AS r SET tokens = g.avail - g.granted, updated = g.now
FROM g WHERE r.provider = g.provider
RETURNING g.granted, g.avail, g.rate"""
SET_RATE = """
INSERT INTO rate_buckets (provider, rate, burst, tokens, updated)
VALUES (%s, %s, %s, %s, extract(epoch FROM clock_timestamp()))
ON CONFLICT (provider) DO UPDATE SET rate = EXCLUDED.rate, burst = EXCLUDED.burst"""

HOLD = """
INSERT INTO provider_holds (provider, not_before, quota) VALUES (%s, %s, %s)
ON CONFLICT (provider) DO UPDATE SET not_before = GREATEST(provider_holds.not_before,
    EXCLUDED.not_before), quota = EXCLUDED.quota"""
HOLDS_NOW = "SELECT provider, not_before, quota FROM provider_holds WHERE not_before > %s"

Take = Callable[[str, float], Awaitable[tuple[float, float]]]  # -> (granted, wait seconds)


class SharedPacer:
    """A provider's rate, taken from the bucket every instance shares."""

    def __init__(self, provider: str, limits: ProviderLimits, take: Take) -> None:
        self.provider = provider
        self.rate = limits.rate
        burst = limits.burst if limits.burst is not None else max(1.0, limits.rate)
        self.chunk = max(1.0, min(burst, limits.rate / 50))
        self.tokens = 0.0
        self._take = take
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        while self.tokens < 1.0:
            async with self._lock:
                if self.tokens >= 1.0:
                    break
                try:
                    granted, wait = await self._take(self.provider, self.chunk)
                except (psycopg.Error, StoreUnavailable, OSError):
                    granted, wait = 0.0, 0.2  # the store is away: dispatch is paused too
                self.tokens += granted
                if granted < 1.0:
                    await asyncio.sleep(max(0.001, wait))
        self.tokens -= 1.0


class PgPeers:
    """:class:`sender.dispatch.peers.Peers` on PostgreSQL."""

    def __init__(self, me: str, writer: PgWriter) -> None:
        self.me = me
        self.writer = writer
        self.connect: Connect | None = None  # set once the store is open
        self._writes: set[asyncio.Task[None]] = set()

    def pacer(self, provider: str, limits: ProviderLimits) -> Pacer | None:
        return SharedPacer(provider, limits, self._take)

    async def set_rates(self, limits: dict[str, ProviderLimits]) -> None:
        """Create (or retune) the shared bucket of every provider with a rate limit: the
        rate and burst are those of the instance started last (start them alike)."""
        assert self.connect is not None
        async with self.connect() as conn:
            for provider, lim in limits.items():
                if lim.rate > 0:
                    burst = lim.burst if lim.burst is not None else max(1.0, lim.rate)
                    await conn.execute(SET_RATE, (provider, lim.rate, burst, burst))

    async def _take(self, provider: str, want: float) -> tuple[float, float]:
        if self.connect is None:
            raise StoreUnavailable("the store is not open")
        async with self.connect() as conn:
            cur = await conn.execute(TAKE, (provider, want))
            row = await cur.fetchone()
        if row is None:
            return want, 0.0  # no bucket row: not limited
        granted, avail, rate = float(row[0]), float(row[1]), float(row[2])
        return granted, (1.0 - (avail - granted)) / rate if rate > 0 else 1.0

    def held(self, provider: str, not_before: float, quota: bool) -> None:
        self._tell({"kind": "hold", "provider": provider, "not_before": not_before, "quota": quota})
        task = asyncio.ensure_future(self._keep_hold(provider, not_before, quota))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _keep_hold(self, provider: str, not_before: float, quota: bool) -> None:
        """Record the hold for instances that start (or listen again) while it lasts."""
        if self.connect is None:
            return
        with contextlib.suppress(psycopg.Error, StoreUnavailable, OSError):
            async with self.connect() as conn:
                await conn.execute(HOLD, (provider, not_before, quota))

    async def holds_now(self, now: float, local: Local) -> None:
        """Apply the holds recorded by others that still last (on joining, on listening)."""
        if self.connect is None:
            return
        async with self.connect() as conn:
            cur = await conn.execute(HOLDS_NOW, (now,))
            for provider, not_before, quota in await cur.fetchall():
                local.peer_hold(str(provider), float(not_before), bool(quota))

    def breaker(self, provider: str, opened: bool, open_for: float) -> None:
        self._tell(
            {"kind": "breaker", "provider": provider, "opened": opened, "open_for": open_for}
        )

    def _tell(self, what: dict[str, Any]) -> None:
        self.writer.notice(PEERS_CHANNEL, json.dumps({"from": self.me, **what}))


def heard(payload: str, me: str, local: Local) -> None:
    """Apply what another instance told on :data:`PEERS_CHANNEL`."""
    try:
        msg = json.loads(payload)
        if msg.get("from") == me:
            return
        if msg["kind"] == "hold":
            local.peer_hold(str(msg["provider"]), float(msg["not_before"]), bool(msg["quota"]))
        elif msg["kind"] == "breaker":
            local.peer_breaker(str(msg["provider"]), bool(msg["opened"]), float(msg["open_for"]))
    except (ValueError, KeyError, TypeError):
        log.warning("ignored a malformed peer notice: %.200s", payload)
