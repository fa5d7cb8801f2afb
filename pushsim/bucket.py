"""The token bucket: ``rate`` tokens every ``per`` seconds, holding at most ``burst``.

Pure: the caller passes the time in (any clock, as long as it does not run backwards), so
the fault plan, the provider cores and the sender pace on the same arithmetic and tests drive
it with plain numbers. It sits on the request hot path, so a bucket is four floats in slots
and a take is a few float operations.

A rate is kept as a fraction (``rate`` tokens ``per`` seconds) so that both ways limits are
stated stay exact: "10 per second" is ``rate=10`` and "1 every 180 seconds" is
``rate=1, per=180``. A ``rate`` of 0 (or less) never refills.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    rate: float
    burst: float
    tokens: float
    updated: float
    per: float = 1.0

    def wait(self, now: float) -> float:
        """Refill up to ``now``; 0.0 if a token is there, else the seconds until one is.

        Takes nothing: :meth:`take`, or :meth:`spend` once the caller has decided.
        """
        tokens = self.tokens
        if now > self.updated:
            tokens += (now - self.updated) * self.rate / self.per
            self.updated = now
        if tokens > self.burst:
            tokens = self.burst
        self.tokens = tokens
        if tokens >= 1.0:
            return 0.0
        if self.rate <= 0.0:
            return math.inf
        return (1.0 - tokens) * self.per / self.rate

    def take(self, now: float) -> float:
        """Take one token; 0.0 if granted, else the seconds until one is available."""
        wait = self.wait(now)
        if wait == 0.0:
            self.tokens -= 1.0
        return wait

    def spend(self) -> None:
        """Take the token :meth:`wait` found (a send that was checked and then went ahead)."""
        self.tokens -= 1.0


class TokenBuckets:
    """One bucket per key (a device token, a subscription, a project), created full.

    A key's first take always goes through, leaving ``burst - 1``. ``retune`` changes
    rate and burst for every bucket, keeping what each holds; ``max_keys`` bounds memory
    (past it the buckets start over, full).
    """

    __slots__ = ("_buckets", "burst", "max_keys", "per", "rate")

    def __init__(
        self, rate: float, burst: float, per: float = 1.0, max_keys: int | None = None
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.per = per
        self.max_keys = max_keys
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, key: str, now: float) -> float:
        """Take one token from ``key``'s bucket: 0.0 if granted, else seconds to wait."""
        bucket = self._buckets.get(key)
        if bucket is not None:
            return bucket.take(now)
        if self.max_keys is not None and len(self._buckets) > self.max_keys:
            self._buckets.clear()
        self._buckets[key] = TokenBucket(self.rate, self.burst, self.burst - 1.0, now, self.per)
        return 0.0

    def retune(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        for bucket in self._buckets.values():
            bucket.rate = rate
            bucket.burst = burst
