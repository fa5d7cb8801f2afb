"""The embedded store: one sender process on one SQLite file (the default)."""

from __future__ import annotations

from typing import Any

from pushsim.clock import Clock
from sender.config.settings import SenderConfig
from sender.dispatch.job import Recorder
from sender.dispatch.peers import Peers
from sender.storage.backend import Local, Work
from sender.storage.db import connect
from sender.storage.outbox import Outbox
from sender.storage.tokens import Registration, SqliteTokenStore, TokenStore


class SqliteStorage:
    """One process on one SQLite file (WAL): the registrations in memory, the outbox
    group-committed."""

    peers: Peers | None = None

    def __init__(self, config: SenderConfig, clock: Clock) -> None:
        self.db = connect(config.db_path, config.synchronous)
        self.store = SqliteTokenStore(self.db, clock)
        self.tokens: TokenStore = self.store
        self.outbox = Outbox(
            self.db, clock, flush_interval=config.flush_interval, before_commit=self.store.flush
        )
        self.recorder: Recorder = self.outbox

    async def open(self) -> None:
        return None

    async def start_work(self, local: Local) -> None:
        """What the file still owes (accepted before a restart, not finished)."""
        local.take(self.outbox.unfinished())

    async def close(self) -> None:
        self.outbox.close()
        self.db.close()

    def next_delivery_id(self) -> int:
        return self.outbox.next_delivery_id()

    async def accept(self, items: Work, *, owned: bool = True) -> list[str | None]:
        await self.outbox.accept_many(items)
        return [None] * len(items)

    def find_idempotent(self, key: str) -> str | None:
        return self.outbox.find_idempotent(key)

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
        return self.store.register(
            user_id,
            provider,
            token,
            device_id=device_id,
            app=app,
            environment=environment,
            subscription=subscription,
        )

    async def delete_device(self, registration_id: str) -> bool:
        return self.store.delete(registration_id)

    async def list_devices(
        self, user_id: str | None = None, status: str | None = None
    ) -> list[Registration]:
        return self.store.list_devices(user_id, status)

    async def active_for_users(self, users: list[str]) -> dict[str, list[Registration]]:
        return {u: self.store.active_for_user(u) for u in users}

    async def notification(self, notification_id: str) -> dict[str, Any] | None:
        return self.outbox.notification(notification_id)

    async def receipt(self, notification_id: str, token: str, event: str) -> bool:
        if not self.outbox.has_delivery_to(notification_id, token):
            return False
        self.outbox.record_receipt(notification_id, token, event)
        return True
