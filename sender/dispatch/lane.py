"""One provider's lane in the dispatcher: its queue and workers, breaker, pacing and gate.

:class:`ProviderLane` is the per-provider state; :func:`through_gate` waits for the
provider's Retry-After gate (:class:`sender.policy.holdoff.ProviderGate`) and, while it is
careful, for the lane's one-at-a-time turn. A lane's pace is any :class:`Pacer`: the
local token bucket, or one shared by every instance on a database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pushsim.clock import Clock
from sender.config.settings import ProviderLimits
from sender.dispatch.job import Job
from sender.policy.breaker import CircuitBreaker
from sender.policy.holdoff import DeviceHolds, Held, ProviderGate
from sender.storage.records import DeliveryRow


class Pacer(Protocol):
    """A provider's request rate: ``rate`` per second (0: unlimited); ``acquire`` waits
    for the next request's turn."""

    rate: float

    async def acquire(self) -> None: ...


@dataclass
class ProviderLane:
    provider: str
    limits: ProviderLimits
    breaker: CircuitBreaker
    bucket: Pacer
    queue: asyncio.Queue[Job] = field(default_factory=asyncio.Queue)
    workers: list[asyncio.Task[None]] = field(default_factory=list)
    breaker_seen: int = -1
    sends_while_open: int = 0
    gate: ProviderGate = field(default_factory=ProviderGate)
    serial: asyncio.Lock = field(default_factory=asyncio.Lock)
    # This provider's children of the per-delivery metrics (labels() looked up once).
    sent: Any = None
    delivered: Any = None
    latency: Any = None


async def through_gate(
    lane: ProviderLane, clock: Clock, deadline: float
) -> tuple[int, asyncio.Lock | None] | None:
    """Wait for the provider's gate; (generation, serial lock held or None), or None when
    the delivery's ``deadline`` (wall time) would pass first."""
    gate = lane.gate
    for _ in range(100_000):
        now = clock.monotonic()
        wait = gate.wait_time(now)
        if wait > 0:
            if clock.time() + wait >= deadline:
                return None
            await asyncio.sleep(min(wait, 1.0))
            continue
        if not gate.careful(now):
            return gate.admit(), None
        await lane.serial.acquire()
        try:
            # Requests that left before the hold must come back first (bounded: 10 s).
            for _spin in range(2000):
                if gate.in_flight <= 0:
                    break
                await asyncio.sleep(0.005)
        except BaseException:
            lane.serial.release()
            raise
        now = clock.monotonic()
        if gate.wait_time(now) > 0:
            lane.serial.release()
            continue
        if not gate.careful(now):
            lane.serial.release()
            return gate.admit(), None
        return gate.admit(), lane.serial
    return None


def release_probe(breaker: CircuitBreaker, probe: bool) -> None:
    if probe:
        breaker.probes_in_flight = max(0, breaker.probes_in_flight - 1)


def send_check(
    lane: ProviderLane,
    generation: int,
    row: DeliveryRow,
    is_dead: Callable[[str, str], bool],
    holds: DeviceHolds,
    clock: Clock,
) -> Callable[[], None]:
    """What a client calls right before the request goes on the wire: :class:`Held` if the
    provider or the token was paused meanwhile, or the token pruned (by this instance or,
    told, by another): the job goes back to its queue and a pruned token is skipped there."""
    gate = lane.gate

    def before_send() -> None:
        if gate.generation != generation:
            raise Held(f"{row.provider} paused")
        if is_dead(row.provider, row.token):
            raise Held("token pruned")
        if holds.until and holds.wait_time(row.provider, row.token, clock.monotonic()):
            raise Held("device token paused")

    return before_send
