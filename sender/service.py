"""The sender core: token store, outbox, provider clients and dispatcher, wired together.

:class:`Sender` is what the HTTP API drives and what the benchmark measures directly:
``await sender.accept(request)`` resolves the targets, writes the notification to the
outbox (committed before it returns) and hands its deliveries to the dispatcher.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

from pushsim.clock import Clock, SystemClock
from sender.api.validate import NotificationRequest, ValidationError
from sender.config.settings import SenderConfig
from sender.dispatch.dispatcher import Dispatcher
from sender.dispatch.job import Job, Prepared, ProviderClient
from sender.metrics import SenderMetrics
from sender.policy.retry import RetryPolicy
from sender.providers.apns import ApnsProvider
from sender.providers.payload import (
    FCM_LIMIT,
    FCM_TOPIC_LIMIT,
    WEBPUSH_PLAINTEXT_LIMIT,
    apns_limit,
    apns_payload,
    fcm_size,
    message_from_json,
    webpush_plaintext,
)
from sender.storage.db import connect
from sender.storage.outbox import DeliveryRow, NotificationRow, Outbox
from sender.storage.tokens import SqliteTokenStore
from sender.transport.pool import client_ssl_context


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
        self.db = connect(config.db_path, config.synchronous)
        self.store = SqliteTokenStore(self.db, self.clock)
        self.outbox = Outbox(
            self.db,
            self.clock,
            flush_interval=config.flush_interval,
            before_commit=self.store.flush,
        )
        self._clients = clients
        self.dispatcher: Dispatcher | None = None
        self.recovered = 0

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
            )
        return clients

    async def start(self) -> None:
        clients = self._clients if self._clients is not None else self._build_clients()
        cfg = self.config
        self.dispatcher = Dispatcher(
            clients,
            self.outbox,
            self.store,
            self.metrics,
            self.clock,
            self.rng,
            cfg.limits,
            retry=RetryPolicy(cfg.max_attempts, cfg.backoff_base, cfg.backoff_cap),
            breaker_threshold=cfg.breaker_threshold,
            breaker_open_for=cfg.breaker_open_for,
        )
        self.dispatcher.start()
        self._recover()

    def _recover(self) -> None:
        """Re-queue every delivery accepted before a restart and not yet finished."""
        assert self.dispatcher is not None
        now = self.clock.time()
        policy = self.dispatcher.retry
        for n, rows in self.outbox.unfinished():
            prep = Prepared(n.id, message_from_json(n.message), n.created_at, n.deadline)
            for row in rows:
                self.dispatcher.submit(Job(row, prep, policy), delay=max(0.0, row.next_at - now))
                self.recovered += 1

    async def stop(self) -> None:
        if self.dispatcher is not None:
            await self.dispatcher.stop()
        self.outbox.close()
        self.db.close()

    # -- accepting ----------------------------------------------------------------

    def _targets(self, req: NotificationRequest) -> list[tuple[str, str, dict[str, Any] | None]]:
        if req.user is not None:
            out: list[tuple[str, str, dict[str, Any] | None]] = []
            for reg in self.store.active_for_user(req.user):
                if reg.provider == "webpush":
                    out.append(("webpush", reg.token, reg.subscription))
                elif reg.provider == "apns" and reg.environment == "sandbox":
                    out.append(("apns", reg.token, {"environment": "sandbox"}))
                else:
                    out.append((reg.provider, reg.token, None))
            return out
        if req.topic is not None:
            return [("fcm", "/topics/" + req.topic, {"topic": req.topic})]
        seen: set[tuple[str, str]] = set()
        targets: list[tuple[str, str, dict[str, Any] | None]] = []
        for t in req.tokens:
            if (t.provider, t.token) in seen:
                continue
            seen.add((t.provider, t.token))
            if t.provider == "webpush":
                targets.append(("webpush", t.token, t.subscription))
            elif t.environment == "sandbox":
                targets.append((t.provider, t.token, {"environment": "sandbox"}))
            else:
                targets.append((t.provider, t.token, None))
        return targets

    def _check_enabled(self, req: NotificationRequest) -> None:
        """Refuse explicit targets of a provider this sender has no configuration for."""
        enabled = self.config.enabled
        if len(enabled) == 3:
            return
        if req.topic is not None and "fcm" not in enabled:
            raise ValidationError(
                "to.topic: fcm is not configured on this sender (topics are FCM's)", "to.topic"
            )
        for i, t in enumerate(req.tokens):
            if t.provider not in enabled:
                name = f"to.tokens[{i}].provider"
                raise ValidationError(
                    f"{name}: {t.provider} is not configured on this sender", name
                )

    @staticmethod
    def check_size(
        req: NotificationRequest, providers: set[str], cache: dict[str, Any] | None = None
    ) -> None:
        """Refuse payloads over a provider's limit here rather than at the provider.

        The bodies built to measure go into ``cache`` (a :class:`Prepared` cache) for the
        provider clients to reuse."""
        msg = req.message
        where = "data" if msg.data else "notification"
        cache = {} if cache is None else cache
        if "apns" in providers:
            payload = cache["apns_payload"] = apns_payload(msg)
            size, limit = len(payload), apns_limit(msg)
            if size > limit:
                raise ValidationError(
                    f"APNs payload is {size} bytes, over the {limit}-byte limit", where
                )
        if "fcm" in providers:
            size = fcm_size(msg)
            limit = FCM_TOPIC_LIMIT if req.topic is not None else FCM_LIMIT
            if size > limit:
                raise ValidationError(
                    f"FCM message is {size} bytes, over the {limit}-byte limit", where
                )
        if "webpush" in providers:
            plaintext = cache["webpush"] = webpush_plaintext(msg)
            size = len(plaintext)
            if size > WEBPUSH_PLAINTEXT_LIMIT:
                raise ValidationError(
                    f"Web Push payload is {size} bytes, over the {WEBPUSH_PLAINTEXT_LIMIT}-byte"
                    " limit (4096 with encryption)",
                    where,
                )

    async def accept(self, req: NotificationRequest) -> tuple[str, int, bool]:
        """Persist and queue a notification; returns (id, targets, duplicate)."""
        assert self.dispatcher is not None
        if req.idempotency_key:
            existing = self.outbox.find_idempotent(req.idempotency_key)
            if existing is not None:
                return existing, -1, True
        self._check_enabled(req)
        targets = self._targets(req)
        cache: dict[str, Any] = {}
        self.check_size(req, {p for p, _, _ in targets}, cache)
        now = self.clock.time()
        nid = uuid.uuid4().hex
        deadline = now + self.config.deadline
        rows = [
            DeliveryRow(
                self.outbox.next_delivery_id(), nid, provider, token, target, str(uuid.uuid4())
            )
            for provider, token, target in targets
        ]
        n = NotificationRow(
            nid, now, req.message.to_json(), deadline, req.idempotency_key, len(rows)
        )
        await self.outbox.accept(n, rows)
        self.metrics.accepted.inc()
        prep = Prepared(nid, req.message, now, deadline, cache)
        policy = self.dispatcher.retry
        for row in rows:
            self.dispatcher.submit(Job(row, prep, policy))
        return nid, len(rows), False

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

    def receipt(self, notification_id: str, token: str, event: str) -> bool:
        if not self.outbox.has_delivery_to(notification_id, token):
            return False
        self.outbox.record_receipt(notification_id, token, event)
        self.metrics.receipts.labels(event).inc()
        return True

    @property
    def queue_depth(self) -> int:
        return 0 if self.dispatcher is None else self.dispatcher.open_jobs


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
