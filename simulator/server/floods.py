"""Counting the frames a peer can send without asking for any work in return (pure).

Since CVE-2023-44487 (Rapid Reset) servers count, per connection, the frames that cost
them work but carry no request: streams the client opens and resets at once, SETTINGS,
PING, empty DATA, WINDOW_UPDATE and frames of unknown types. Past a burst
and a sustained rate (a token bucket per kind, as nghttp2's stream-reset limit) the
connection is answered GOAWAY ENHANCE_YOUR_CALM and closed; below them nothing changes.

A normal sender stays far below every limit: it resets a stream only when it gives up on
one, pings every few seconds at most, and sends SETTINGS once. The limits are per
connection, so one peer's flood costs that peer its connection and nobody else anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from pushsim.bucket import TokenBucket


@dataclass(frozen=True, slots=True)
class FloodLimit:
    """At most ``burst`` frames of a kind at once, refilled at ``rate`` per second."""

    burst: float
    rate: float


# kind -> its limit (per connection)
DEFAULT_LIMITS: Mapping[str, FloodLimit] = MappingProxyType(
    {
        # streams the client reset before they ran (Rapid Reset); nghttp2 allows 1,000 at C
        # speed, here each costs some 50 times more
        "reset": FloodLimit(burst=100, rate=50),
        "refused": FloodLimit(burst=200, rate=100),  # streams opened over the stream limit
        "settings": FloodLimit(burst=100, rate=10),
        "ping": FloodLimit(burst=100, rate=10),
        "empty_data": FloodLimit(burst=100, rate=10),  # DATA with no bytes and no END_STREAM
        "window_update": FloodLimit(burst=1000, rate=1000),
        "unknown": FloodLimit(burst=100, rate=10),  # extension frames h2 does not know
    }
)


class FloodGuard:
    """One connection's counters: :meth:`hit` says when a kind went past its limit."""

    __slots__ = ("_buckets", "_limits", "tripped")

    def __init__(self, limits: Mapping[str, FloodLimit] = DEFAULT_LIMITS) -> None:
        self._limits = limits
        self._buckets: dict[str, TokenBucket] = {}
        self.tripped: str | None = None  # the kind that went over, once one has

    def hit(self, kind: str, now: float, count: int = 1) -> bool:
        """Count ``count`` frames of ``kind`` at ``now``; True once the kind is over its limit."""
        bucket = self._buckets.get(kind)
        if bucket is None:
            limit = self._limits[kind]
            bucket = TokenBucket(limit.rate, limit.burst, limit.burst, now)
            self._buckets[kind] = bucket
        for _ in range(count):
            if bucket.take(now) > 0.0:
                self.tripped = kind
                return True
        return False

    def debug_data(self) -> bytes:
        """What the GOAWAY says (its debug data)."""
        return f"too many {self.tripped or 'frames'} frames".encode()
