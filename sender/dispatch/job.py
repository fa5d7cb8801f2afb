"""What the dispatcher hands a provider client: one delivery of one prepared notification.

Plain values, and the Protocols of what the dispatcher drives (a provider client) and
writes to (the outbox's :class:`Recorder` side): the dispatcher, the service that creates
jobs and the provider clients all read them, and this module imports none of those.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sender.policy.classify import Outcome
from sender.policy.retry import RetryPolicy
from sender.providers.payload import Message
from sender.storage.records import DeliveryRow


@dataclass(slots=True)
class Prepared:
    """A notification's message with per-provider bodies built once and shared."""

    notification_id: str
    message: Message
    created_at: float
    deadline: float
    cache: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Job:
    row: DeliveryRow
    prepared: Prepared
    policy: RetryPolicy
    # Set by the dispatcher while the job is being sent: clients call it right before the
    # request goes on the wire; it raises :class:`Held` if the provider paused meanwhile.
    before_send: Callable[[], None] | None = None


class ProviderClient(Protocol):
    """What the dispatcher needs of a provider's client."""

    provider: str

    async def deliver(self, job: Job) -> tuple[Outcome, int | None]: ...

    def close(self) -> None: ...


class Recorder(Protocol):
    """Where the dispatcher writes what happened (queued, group-committed): the outbox."""

    def update(
        self,
        delivery_id: int,
        status: str,
        attempts: int,
        next_at: float = 0.0,
        last_error: str | None = None,
        provider_message_id: str | None = None,
    ) -> None: ...

    def record_attempt(
        self, delivery_id: int, at: float, status_code: int | None, reason: str, latency_ms: float
    ) -> None: ...
