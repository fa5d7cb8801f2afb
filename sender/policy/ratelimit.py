"""A client-side token bucket that keeps a provider under its quota."""

from __future__ import annotations

import asyncio

from pushsim.clock import Clock


class TokenBucket:
    """``rate`` tokens per second, bursting to ``burst``; ``rate <= 0`` means unlimited."""

    def __init__(self, clock: Clock, rate: float, burst: float | None = None) -> None:
        self.clock = clock
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self.tokens = self.burst
        self.updated = clock.monotonic()

    def _refill(self) -> None:
        now = self.clock.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def try_take(self) -> float:
        """Take a token if there is one (returns 0), else the seconds until there will be."""
        if self.rate <= 0:
            return 0.0
        self._refill()
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate

    async def acquire(self) -> None:
        while True:
            wait = self.try_take()
            if wait <= 0:
                return
            await asyncio.sleep(wait)
