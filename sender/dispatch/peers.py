"""What a dispatcher shares with the other sender instances on its database (a Protocol).

With one instance (SQLite) there are none and the dispatcher keeps everything local. With
several on PostgreSQL (:mod:`sender.storage.pg.peers`) a provider-wide Retry-After hold and
a breaker opening or closing are told to every instance, and a provider's rate limit is one
shared bucket; what the others tell arrives through :meth:`Dispatcher.peer_hold` and
:meth:`Dispatcher.peer_breaker`.
"""

from __future__ import annotations

from typing import Protocol

from sender.config.settings import ProviderLimits
from sender.dispatch.lane import Pacer


class Peers(Protocol):
    def pacer(self, provider: str, limits: ProviderLimits) -> Pacer | None:
        """The provider's rate shared by every instance, or None: a local bucket."""
        ...

    def held(self, provider: str, not_before: float, quota: bool) -> None:
        """This instance got a provider-wide Retry-After until ``not_before`` (wall time)."""
        ...

    def breaker(self, provider: str, opened: bool, open_for: float) -> None:
        """This instance's breaker for ``provider`` opened (for ``open_for`` s) or closed."""
        ...
