"""The sender core: store, provider clients and dispatcher, wired together.

:class:`Sender` is what the HTTP API drives and what the benchmark measures directly:
``await sender.accept(request)`` (or :meth:`Sender.accept_many` for a batch, one commit)
resolves the targets, writes the notification to the outbox (committed before it returns)
and hands its deliveries to the dispatcher. The store is SQLite (one process) or
PostgreSQL (several instances sharing the work): :func:`open_storage`. To the store the
sender is a :class:`~sender.storage.backend.Local`: it takes the work it is given (left
from before a restart, or claimed from the shared queue), pauses while the database is
away, and follows what the other instances report.
"""

from __future__ import annotations

import random
from typing import Any

from pushsim.clock import Clock, SystemClock
from sender import intake
from sender.api.endpoints import check_notification
from sender.api.validate import NotificationRequest, ValidationError
from sender.config.settings import SenderConfig
from sender.dispatch.dispatcher import Dispatcher
from sender.dispatch.job import Job, Prepared, ProviderClient
from sender.metrics import SenderMetrics
from sender.policy.endpoints import EndpointPolicy
from sender.policy.retry import RetryPolicy
from sender.providers.apns import ApnsProvider
from sender.providers.payload import message_from_json
from sender.providers.webpush_receipts import ReceiptCollector, Request
from sender.storage.backend import Storage, Work
from sender.storage.sqlite import SqliteStorage
from sender.transport.pool import client_ssl_context

Accepted = tuple[str, int, bool]  # notification id, targets (-1: duplicate), duplicate


def open_storage(config: SenderConfig, clock: Clock) -> Storage:
    """The store the config names: PostgreSQL for a ``store_url``, else SQLite."""
    if config.store_url:
        from sender.storage.pg.store import PgStorage

        return PgStorage(config, clock)
    return SqliteStorage(config, clock)


class Sender:
    def __init__(
        self,
        config: SenderConfig,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        clients: dict[str, ProviderClient] | None = None,
    ) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self.metrics = SenderMetrics()
        self.storage = open_storage(config, self.clock)
        self.store = self.storage.tokens
        self._clients = clients
        self.dispatcher: Dispatcher | None = None
        self.recovered = 0
        # With other instances on the store: beyond this many open deliveries, accepted
        # ones are left for whichever instance has room.
        self.high_water = 4 * sum(lim.concurrency for lim in config.limits.values())
        self.endpoints = EndpointPolicy(config.webpush_origins)  # where Web Push may POST

    def _build_clients(self) -> dict[str, ProviderClient]:
        cfg = self.config
        clients: dict[str, ProviderClient] = {}
        if cfg.apns is not None and cfg.apns_url:
            clients["apns"] = ApnsProvider(
                cfg.apns_url,
                cfg.apns,
                self.clock,
                client_ssl_context(cfg.ca_for("apns")),
                max_connections=cfg.limits["apns"].max_connections,
                sandbox_url=cfg.apns_sandbox_url,
            )
        if cfg.fcm_url and cfg.fcm_service_account and _has("sender.providers.fcm"):
            from sender.providers.fcm import FcmProvider

            clients["fcm"] = FcmProvider(
                cfg.fcm_url,
                cfg.fcm_service_account,
                self.clock,
                client_ssl_context(cfg.ca_for("fcm")),
                max_connections=cfg.limits["fcm"].max_connections,
            )
        if cfg.vapid and _has("sender.providers.webpush"):
            from sender.providers.webpush import WebPushProvider

            clients["webpush"] = WebPushProvider(
                cfg.vapid,
                self.clock,
                client_ssl_context(cfg.ca_for("webpush")),
                max_connections=cfg.limits["webpush"].max_connections,
                ca_file=cfg.ca_for("webpush"),
                receipts=self._receipts if cfg.webpush_receipts else None,
            )
        return clients

    def _receipts(self, request: Request) -> ReceiptCollector:
        """RFC 8030 receipts, recorded as ``delivered`` receipts (as POST /v1/receipts does)."""

        async def record(notification_id: str, token: str) -> bool:
            return await self.receipt(notification_id, token, "delivered")

        return ReceiptCollector(request, record, self.clock)

    async def start(self) -> None:
        await self.storage.open()
        clients = self._clients if self._clients is not None else self._build_clients()
        cfg = self.config
        self.dispatcher = Dispatcher(
            clients,
            self.storage.recorder,
            self.storage.tokens,
            self.metrics,
            self.clock,
            self.rng,
            cfg.limits,
            retry=RetryPolicy(cfg.max_attempts, cfg.backoff_base, cfg.backoff_cap),
            breaker_threshold=cfg.breaker_threshold,
            breaker_open_for=cfg.breaker_open_for,
            peers=self.storage.peers,
        )
        self.dispatcher.start()
        await self.storage.start_work(self)

    async def stop(self) -> None:
        if self.dispatcher is not None:
            await self.dispatcher.stop()
        await self.storage.close()

    # -- what the store drives (sender.storage.backend.Local) ------------------------

    def take(self, work: Work) -> None:
        """Dispatch deliveries accepted before (a restart, or another instance)."""
        assert self.dispatcher is not None
        now = self.clock.time()
        policy = self.dispatcher.retry
        for n, rows in work:
            prep = Prepared(n.id, message_from_json(n.message), n.created_at, n.deadline)
            for row in rows:
                self.dispatcher.submit(Job(row, prep, policy), delay=max(0.0, row.next_at - now))
                self.recovered += 1

    def room(self) -> int:
        return 0 if self.dispatcher is None else max(0, self.high_water - self.open_jobs)

    def pause(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.pause()

    def resume(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.resume()

    def abandon(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.abandon()

    def peer_hold(self, provider: str, not_before: float, quota: bool) -> None:
        if self.dispatcher is not None:
            self.dispatcher.peer_hold(provider, not_before, quota)

    def peer_breaker(self, provider: str, opened: bool, open_for: float) -> None:
        if self.dispatcher is not None:
            self.dispatcher.peer_breaker(provider, opened, open_for)

    # -- accepting ----------------------------------------------------------------

    async def accept(self, req: NotificationRequest) -> Accepted:
        """Persist and queue a notification; returns (id, targets, duplicate)."""
        (result,) = await self.accept_many([req])
        if isinstance(result, ValidationError):
            raise result
        return result

    async def accept_many(
        self, reqs: list[NotificationRequest]
    ) -> list[Accepted | ValidationError]:
        """Persist and queue notifications in one commit; per request its (id, targets,
        duplicate), or the :class:`ValidationError` that refused it alone.
        :class:`~sender.storage.backend.StoreUnavailable` when nothing could be committed."""
        assert self.dispatcher is not None
        out: list[Accepted | ValidationError | None] = [None] * len(reqs)
        keys: dict[str, int] = {}  # idempotency key -> the request in this batch holding it
        for i, req in enumerate(reqs):
            key = req.idempotency_key
            if key:
                existing = self.storage.find_idempotent(key)
                if existing is not None:
                    out[i] = (existing, -1, True)
                elif key not in keys:
                    keys[key] = i
        users = list({r.user for i, r in enumerate(reqs) if r.user and out[i] is None})
        regs = await self.storage.active_for_users(users) if users else {}
        now = self.clock.time()
        deadline = now + self.config.deadline
        items: Work = []
        caches: list[dict[str, Any]] = []
        where: list[int] = []
        for i, req in enumerate(reqs):
            if out[i] is not None or (req.idempotency_key and keys[req.idempotency_key] != i):
                continue
            try:
                intake.check_enabled(req, self.config.enabled)
                check_notification(req, self.endpoints)
                found = intake.targets(req, regs.get(req.user or "", ()))
                cache: dict[str, Any] = {}
                intake.check_size(req, {p for p, _, _ in found}, cache)
            except ValidationError as exc:
                out[i] = exc
                continue
            items.append(intake.rows(req, found, now, deadline, self.storage.next_delivery_id))
            caches.append(cache)
            where.append(i)
        if items:
            await self._commit(reqs, items, caches, where, out)
        for i, req in enumerate(reqs):  # a key repeated within the batch: its first holder
            if out[i] is None and req.idempotency_key:
                first = out[keys[req.idempotency_key]]
                out[i] = (first[0], -1, True) if isinstance(first, tuple) else first
        return [r if r is not None else ValidationError("not accepted", "body") for r in out]

    async def _commit(
        self,
        reqs: list[NotificationRequest],
        items: Work,
        caches: list[dict[str, Any]],
        where: list[int],
        out: list[Accepted | ValidationError | None],
    ) -> None:
        assert self.dispatcher is not None
        owned = self.storage.peers is None or self.open_jobs < self.high_water
        taken = await self.storage.accept(items, owned=owned)
        policy = self.dispatcher.retry
        for (n, rows), cache, i, existing in zip(items, caches, where, taken, strict=True):
            if existing is not None:
                out[i] = (existing, -1, True)
                continue
            self.metrics.accepted.inc()
            out[i] = (n.id, len(rows), False)
            if owned:
                prep = Prepared(n.id, reqs[i].message, n.created_at, n.deadline, cache)
                for row in rows:
                    self.dispatcher.submit(Job(row, prep, policy))

    async def subscribe(self, topic: str, tokens: tuple[str, ...]) -> list[dict[str, str]]:
        """Subscribe FCM tokens to a topic; a token FCM reports gone (NOT_FOUND) is pruned."""
        assert self.dispatcher is not None
        client = self.dispatcher.clients.get("fcm")
        subscribe = getattr(client, "subscribe", None)
        if subscribe is None:
            raise LookupError("FCM is not configured")
        errors: list[str] = await subscribe(topic, list(tokens))
        results: list[dict[str, str]] = []
        for token, err in zip(tokens, errors, strict=True):
            if not err:
                results.append({"token": token, "status": "subscribed"})
                continue
            if err == "NOT_FOUND" and self.store.mark_dead("fcm", token, "NOT_FOUND"):
                self.metrics.pruned.labels("fcm", "NOT_FOUND").inc()
            results.append({"token": token, "status": "failed", "error": err})
        return results

    async def receipt(self, notification_id: str, token: str, event: str) -> bool:
        if not await self.storage.receipt(notification_id, token, event):
            return False
        self.metrics.receipts.labels(event).inc()
        return True

    @property
    def open_jobs(self) -> int:
        return 0 if self.dispatcher is None else self.dispatcher.open_jobs

    @property
    def queue_depth(self) -> int:
        return self.open_jobs


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
