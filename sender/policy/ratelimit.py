"""A client-side token bucket that keeps a provider under its quota."""

from __future__ import annotations

import asyncio

from pushsim.bucket import TokenBucket as _Bucket
from pushsim.clock import Clock


class TokenBucket:
    """``rate`` tokens per second, bursting to ``burst``; ``rate <= 0`` means unlimited.

    The arithmetic is :class:`pushsim.bucket.TokenBucket`'s; this adds the clock reading
    and the waiting.
    """

    def __init__(self, clock: Clock, rate: float, burst: float | None = None) -> None:
        self.clock = clock
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._bucket = _Bucket(rate, self.burst, self.burst, clock.monotonic())

    def try_take(self) -> float:
        """Take a token if there is one (returns 0), else the seconds until there will be."""
        if self.rate <= 0:
            return 0.0
        return self._bucket.take(self.clock.monotonic())

    async def acquire(self) -> None:
        while True:
            wait = self.try_take()
            if wait <= 0:
                return
            await asyncio.sleep(wait)
