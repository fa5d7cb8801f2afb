"""Retry policy as an immutable value object (after urllib3's ``Retry``).

``policy.increment(outcome_retry_after, rng)`` returns the next policy (one more attempt
recorded) with the delay to wait before it. Backoff is exponential with full jitter,
``uniform(0, min(cap, base * 2**n))``; a provider's Retry-After is a floor: the delay is
never shorter than what the provider asked for.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace


class RetriesExhausted(Exception):
    """No attempts left."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 12
    backoff_base: float = 0.2
    backoff_cap: float = 30.0
    attempts: int = 0  # failed attempts so far
    last_delay: float = 0.0

    @property
    def exhausted(self) -> bool:
        return self.attempts >= self.max_attempts

    def backoff(self, rng: random.Random) -> float:
        """Full jitter over the exponential ceiling for the current attempt count."""
        ceiling = min(self.backoff_cap, self.backoff_base * (2 ** max(0, self.attempts - 1)))
        return rng.uniform(0.0, ceiling)

    def increment(self, rng: random.Random, retry_after: float | None = None) -> RetryPolicy:
        """Record one failed attempt; raise :class:`RetriesExhausted` if none are left."""
        nxt = replace(self, attempts=self.attempts + 1)
        if nxt.exhausted:
            raise RetriesExhausted(f"gave up after {nxt.attempts} attempts")
        delay = nxt.backoff(rng)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return replace(nxt, last_delay=delay)
