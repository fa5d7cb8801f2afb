"""The sender's store as the sender sees it, whichever database is behind it.

:class:`Storage` is the one interface: the API's reads and writes (async), the outbox's
writes the dispatcher queues (:class:`~sender.dispatch.job.Recorder`), the token checks it
makes (:class:`~sender.storage.tokens.TokenStore`), and the work it is given
(:meth:`Storage.start_work` drives a :class:`Local`). Two implementations:

- :class:`sender.storage.sqlite.SqliteStorage`: the embedded default, one process on one file;
  the token store and outbox of :mod:`sender.storage.tokens` and :mod:`sender.storage.outbox`.
  Its work is what the file still owes at start (the deliveries a killed process left).
- :class:`sender.storage.pg.store.PgStorage`: PostgreSQL, any number of instances sharing
  it. Work is claimed under a lease and others' holds and breakers arrive as they happen.

``sender.service.open_storage`` picks one from the config.
"""

from __future__ import annotations

from typing import Any, Protocol

from sender.dispatch.job import Recorder
from sender.dispatch.peers import Peers
from sender.storage.records import DeliveryRow, NotificationRow
from sender.storage.tokens import Registration, TokenStore

Work = list[tuple[NotificationRow, list[DeliveryRow]]]


class Local(Protocol):
    """This sender instance, as its store drives it."""

    def take(self, work: Work) -> None:
        """Dispatch these deliveries (claimed for this instance, or left from before)."""

    def room(self) -> int:
        """How many more deliveries this instance would take now."""
        ...

    def pause(self) -> None:
        """The database is unreachable: start no new attempt."""

    def resume(self) -> None: ...

    def abandon(self) -> None:
        """Another instance took this one's deliveries over: drop those still queued."""

    def peer_hold(self, provider: str, not_before: float, quota: bool) -> None: ...

    def peer_breaker(self, provider: str, opened: bool, open_for: float) -> None: ...


class StoreUnavailable(Exception):
    """The database cannot be reached now: nothing was committed (the API answers 503)."""


class Storage(Protocol):
    tokens: TokenStore
    recorder: Recorder
    peers: Peers | None  # other instances on this database (None: this one is alone)

    async def open(self) -> None:
        """Connect, create or migrate the schema; raises if the database cannot be used."""

    async def start_work(self, local: Local) -> None: ...

    async def close(self) -> None: ...

    def next_delivery_id(self) -> int: ...

    async def accept(self, items: Work, *, owned: bool = True) -> list[str | None]:
        """Commit notifications and their deliveries in one transaction. Per item: None
        (committed), or the id of the notification already holding its idempotency key
        (nothing of that item written). ``owned``: this instance dispatches them; else they
        are left for whichever instance claims them first. :class:`StoreUnavailable` when
        the database cannot be reached."""
        ...

    def find_idempotent(self, key: str) -> str | None:
        """The notification holding this idempotency key, as far as the store knows without
        waiting (PostgreSQL: this instance's; a key another instance holds is found by
        :meth:`accept`)."""
        ...

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
    ) -> Registration: ...

    async def delete_device(self, registration_id: str) -> bool: ...

    async def list_devices(
        self, user_id: str | None = None, status: str | None = None
    ) -> list[Registration]: ...

    async def active_for_users(self, users: list[str]) -> dict[str, list[Registration]]: ...

    async def notification(self, notification_id: str) -> dict[str, Any] | None: ...

    async def receipt(self, notification_id: str, token: str, event: str) -> bool:
        """Record a receipt of a delivery; False when there is no such delivery."""
        ...
