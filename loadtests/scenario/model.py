"""What a validated scenario is: plain frozen values, built by :mod:`loadtests.scenario.load`.

The harness, the report and the Locust users read these; only the loader builds them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from loadtests.judge.objectives import Objective


@dataclass(frozen=True, slots=True)
class Population:
    devices: dict[str, int]  # provider -> count
    users: int  # devices are spread round-robin over this many app users
    # provider -> count declared in the simulator beside them (POST /_sim/population): the
    # token table a sender would load from GET /_sim/population/{provider}.csv; not registered
    declared: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.devices.values())


@dataclass(frozen=True, slots=True)
class LoadShape:
    shape: str
    users: int  # steady users; ramp end; spike base
    rate_per_user: float  # notifications per second per app-server user; 0.0: unlimited (no waits)
    spawn_rate: float
    from_users: int = 1  # ramp start
    spike_users: int = 0
    spike_at: float = 0.0
    spike_for: float = 0.0

    def users_at(self, t: float, duration: float) -> int:
        if self.shape == "ramp":
            if duration <= 0:
                return self.users
            frac = min(1.0, max(0.0, t / duration))
            return max(1, round(self.from_users + (self.users - self.from_users) * frac))
        return self.spike_users if self.spiking(t) else self.users

    def spiking(self, t: float) -> bool:
        """Whether ``t`` (seconds into the run) is inside a spike's window."""
        return self.shape == "spike" and self.spike_at <= t < self.spike_at + self.spike_for

    def rate_text(self) -> str:
        """Each user's rate as a person reads it: '5/s' or 'unlimited (no waits)'."""
        return f"{self.rate_per_user:g}/s" if self.rate_per_user > 0 else "unlimited (no waits)"

    def peak_users(self) -> int:
        return max(self.users, self.from_users, self.spike_users)


@dataclass(frozen=True, slots=True)
class Traffic:
    to: dict[str, float]  # user | tokens | topic -> weight
    payload: dict[str, float]  # small | medium | large -> weight
    push_type: dict[str, float]  # alert | background -> weight
    high_priority: float
    ttl: int
    topics: tuple[str, ...]
    batch: int = 1  # notifications per API call; above 1: POST /v1/notifications:batch
    # share, broadcast, devices: Live Activity traffic (loadtests.scenario.live); {}: none
    live_activities: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeviceBehaviour:
    reregister_rotated: bool
    receipts: float  # share of received messages acknowledged through POST /v1/receipts
    feed_poll_s: float
    open_probability: float = 0.0  # a shown notification is opened (an ``opened`` receipt)
    notifications_off: float = 0.0  # share of devices whose user turned notifications off


@dataclass(frozen=True, slots=True)
class RequestTemplate:
    method: str
    path: str
    body: (
        Any  # JSON template: "{name}" placeholders; a string that is exactly "{x}" takes x's value
    )


@dataclass(frozen=True, slots=True)
class TargetShape:
    register: RequestTemplate
    notify: RequestTemplate
    accepted_status: tuple[int, ...]
    id_field: str
    devices_dead: str | None  # GET path listing dead registrations, or None
    devices_active: str | None
    metrics: str | None
    health: str | None
    notify_batch: RequestTemplate | None = None  # traffic.batch above 1
    batch_results: str = "results"  # the batch answer's list of per-notification results


@dataclass(frozen=True, slots=True)
class SenderShape:
    """The reference sender a run starts: how many instances, on which store."""

    instances: int = 1
    store: str = "sqlite"  # sqlite | postgresql (one database behind every instance)


@dataclass(frozen=True, slots=True)
class SenderCrash:
    """A ``sender_crash`` fault, executed by the harness: SIGKILL sender instance
    ``instance`` (1-based) ``start`` seconds into the load, restart it ``down`` seconds later."""

    id: str
    instance: int
    start: float
    down: float

    @property
    def end(self) -> float:
        return self.start + self.down


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    source: str
    duration: float
    drain_timeout: float
    seed: int
    population: Population
    load: LoadShape
    traffic: Traffic
    devices: DeviceBehaviour
    faults: Any
    objectives: tuple[Objective, ...]
    target: TargetShape
    raw: dict[str, Any] = field(repr=False, default_factory=dict)
    sender: SenderShape = SenderShape()
    crashes: tuple[SenderCrash, ...] = ()  # the sender_crash faults, by start

    def to_json(self) -> dict[str, Any]:
        return copy.deepcopy(self.raw)
