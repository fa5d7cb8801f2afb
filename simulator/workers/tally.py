"""The counters a worker adds to the primary's: response stats and the fault record.

Every counter a worker keeps that ``/_sim/stats``, ``/metrics`` or ``/_sim/timeline``
reads is named in :data:`COUNTERS`; a worker ships what grew since it last shipped and
the primary adds it to its own, so the figures stay whole. The per-second buckets of
the fault record share the run clock (the primary's, see :mod:`simulator.workers.worker`),
so they land in the same seconds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from simulator.app import Simulator

COUNTERS: dict[str, Callable[[Simulator], Counter[Any]]] = {
    "stats": lambda sim: sim.stats.counts,
    "injected": lambda sim: sim.faults.record.injected,
    "buckets": lambda sim: sim.faults.record.buckets,
    "sends_during_outage": lambda sim: sim.faults.record.sends_during_outage,
    "retry_after_violations": lambda sim: sim.faults.record.ledger.violations,
    "retry_after_honoured": lambda sim: sim.faults.record.ledger.honoured,
    "retry_after_in_flight": lambda sim: sim.faults.record.ledger.in_flight,
}

Deltas = dict[str, dict[Any, int]]


class Tally:
    """What a worker's counters grew by since the last :meth:`take`."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self._shipped: dict[str, Counter[Any]] = {name: Counter() for name in COUNTERS}

    def take(self) -> Deltas:
        out: Deltas = {}
        for name, counter_of in COUNTERS.items():
            grown = counter_of(self.sim) - self._shipped[name]
            if grown:
                self._shipped[name].update(grown)
                out[name] = dict(grown)
        return out


def merge(sim: Simulator, deltas: Deltas) -> None:
    """Add a worker's deltas to the primary's counters."""
    for name, grown in deltas.items():
        counter_of = COUNTERS.get(name)
        if counter_of is not None:
            counter_of(sim).update(grown)
