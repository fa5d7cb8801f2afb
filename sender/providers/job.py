"""What a provider client reads from a delivery job (the dispatcher's :class:`Job` fits).

Read-only views, so the clients depend on these few attributes and not on the dispatcher.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from sender.providers.payload import Message


class DeliveryTarget(Protocol):
    """The delivery: one device token (or topic, or Web Push endpoint) of a notification."""

    @property
    def token(self) -> str: ...

    @property
    def target(self) -> dict[str, Any] | None: ...  # subscription keys, sandbox, topic

    @property
    def message_id(self) -> str: ...  # stable across retries: apns-id, analytics label

    @property
    def notification_id(self) -> str: ...  # the notification it delivers (receipts name it)


class PreparedMessage(Protocol):
    """The notification, with a cache of bodies built once for all its deliveries."""

    @property
    def message(self) -> Message: ...

    @property
    def created_at(self) -> float: ...

    @property
    def cache(self) -> dict[str, Any]: ...


class DeliveryJob(Protocol):
    @property
    def row(self) -> DeliveryTarget: ...

    @property
    def prepared(self) -> PreparedMessage: ...

    @property
    def before_send(self) -> Callable[[], None] | None: ...  # raises if held back
