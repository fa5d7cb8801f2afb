"""A worker's registry: the primary's device population, followed through its deltas.

The population keeps every device in a few bytes and derives tokens and Web Push keys
from a token key (:mod:`simulator.state.population`); a worker builds a registry under
the primary's key and applies the primary's :class:`~simulator.state.population.PopulationDelta`
each sync (new cohorts; each device changed since: its flags, generation and deaths).
So a worker checks any token of the population without having been sent it, and a
token killed on the primary is dead here once the next delta arrives.

What a core would change in the registry goes to the primary instead (``Effects``): a
send to a dead token, a subscription found expired (it dies here at once as well), a
delivery that reached the registry directly (the providers route theirs to the
primary themselves, see :mod:`simulator.workers.providers`).
"""

from __future__ import annotations

import random
from typing import Any, Protocol

from pushsim.clock import Clock
from simulator.state.devices import Device, DeviceRegistry
from simulator.state.population import PopulationDelta


class Effects(Protocol):
    """Where a replica sends what must change on the primary."""

    def effect(self, kind: str, data: Any) -> None: ...


class ReplicaRegistry(DeviceRegistry):
    """The registry a worker's cores read (see the module docstring)."""

    def __init__(self, clock: Clock, key: bytes, effects: Effects) -> None:
        super().__init__(clock, random.Random(0), key=key)
        self.effects = effects

    def follow(self, delta: PopulationDelta) -> None:
        """Apply the primary's changes since the last delta."""
        self.population.apply(delta)

    def note_rejection(self, provider: str, token: str) -> None:
        self.effects.effect("rejected", (provider, token))

    def uninstall(
        self, device_id: str, cause: str = "control", reason: str = "uninstalled"
    ) -> Device:
        dev = super().uninstall(device_id, cause, reason)
        self.effects.effect("uninstall", (dev.provider, device_id, cause, reason))
        return dev

    def deliver(self, dev: Device, entry: dict[str, Any]) -> None:
        self.effects.effect("deliver", ("registry", dev.id, entry))
