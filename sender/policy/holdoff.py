"""Retry-After holds: which scope a provider's answer pauses, and until when (pure).

A provider that answers with ``Retry-After`` means it for a scope, not only for the one
request: APNs 503 / 500 and FCM 503 UNAVAILABLE speak for the whole service, FCM 429
QUOTA_EXCEEDED for the whole project (one project per FCM client here), and a Web Push
service's 429 / 503 for the push service. APNs 429 TooManyRequests is about one device
token. :func:`hold_for` turns a classified answer into a :class:`Hold` (scope and
not-before time); :class:`ProviderGate` is the state a dispatcher keeps per provider:

- nothing may start before ``not_before`` (requests already queued and breaker probes
  included);
- after a hold the provider is *careful*: one request in flight at a time (so no request
  is on the wire when the next Retry-After arrives) until a request sent after the hold
  succeeds, and for a quota hold until ``quota_cooldown`` seconds passed without another
  one (the quota may still be in force after the first success);
- ``generation`` numbers the holds, so a success from a request that left before the last
  hold (a straggler) does not end the careful phase.

Times are monotonic seconds from an injected clock.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sender.policy.classify import Kind, Outcome


class Held(Exception):
    """Raised just before a request reaches the wire: a hold arrived since it was admitted."""


class HoldScope(enum.Enum):
    PROVIDER = "provider"  # every request to this provider (or its project)
    DEVICE = "device"  # only requests to this device token


@dataclass(frozen=True, slots=True)
class Hold:
    scope: HoldScope
    not_before: float
    quota: bool = False  # a rate/quota answer (429) rather than an outage (5xx)


def hold_for(provider: str, status: int | None, outcome: Outcome, now: float) -> Hold | None:
    """The hold a provider's answer asks for, or None (no Retry-After, or not a retry)."""
    if outcome.kind is not Kind.RETRY or outcome.retry_after is None or status is None:
        return None
    not_before = now + outcome.retry_after
    if status == 429:
        if provider == "apns":
            # APNs TooManyRequests: "too many requests to the same device token".
            return Hold(HoldScope.DEVICE, not_before, quota=True)
        return Hold(HoldScope.PROVIDER, not_before, quota=True)
    if 500 <= status <= 599:
        return Hold(HoldScope.PROVIDER, not_before)
    return None


@dataclass
class ProviderGate:
    """Per-provider not-before gate with a careful (one-at-a-time) phase after each hold."""

    margin: float = 0.05  # added to every not-before: the provider's clock is not ours
    quota_cooldown: float = 5.0
    not_before: float = 0.0
    careful_until: float = 0.0
    probing: bool = False
    generation: int = 0
    in_flight: int = 0
    holds: int = 0

    def hold(self, hold: Hold) -> None:
        """A provider-wide Retry-After arrived."""
        nb = hold.not_before + self.margin
        if nb > self.not_before:
            self.not_before = nb
        self.probing = True
        self.generation += 1
        self.holds += 1
        if hold.quota:
            self.careful_until = max(self.careful_until, nb + self.quota_cooldown)

    def wait_time(self, now: float) -> float:
        """Seconds until a request may start (0: now)."""
        return max(0.0, self.not_before - now)

    def careful(self, now: float) -> bool:
        """Whether only one request may be in flight now."""
        return self.probing or now < self.careful_until

    def admit(self) -> int:
        """A request starts now; returns the generation to pass to :meth:`release`."""
        self.in_flight += 1
        return self.generation

    def release(self, generation: int, success: bool) -> None:
        """A request admitted in ``generation`` finished (``success``: the provider took it)."""
        self.in_flight = max(0, self.in_flight - 1)
        if success and generation == self.generation:
            self.probing = False


class DeviceHolds:
    """Not-before times per device token (APNs TooManyRequests), pruned as they expire."""

    def __init__(self, limit: int = 100_000) -> None:
        self.until: dict[tuple[str, str], float] = {}
        self.limit = limit

    def hold(self, provider: str, token: str, hold: Hold, now: float, margin: float = 0.05) -> None:
        key = (provider, token)
        nb = hold.not_before + margin
        if self.until.get(key, 0.0) < nb:
            if len(self.until) >= self.limit:
                self.prune(now)
                if len(self.until) >= self.limit:
                    return  # bounded: the retry's own delay still honours Retry-After
            self.until[key] = nb

    def wait_time(self, provider: str, token: str, now: float) -> float:
        if not self.until:
            return 0.0
        nb = self.until.get((provider, token))
        if nb is None:
            return 0.0
        if now >= nb:
            del self.until[(provider, token)]
            return 0.0
        return nb - now

    def prune(self, now: float) -> None:
        self.until = {k: v for k, v in self.until.items() if v > now}
