"""Token churn: which devices reinstall or uninstall, and when (pure; run time passed in).

A ``token_churn`` fault either spreads its devices over its window (each device's moment
is a seeded draw, so one seed always churns the same devices at the same times) or, with
a ``rate``, churns that many devices a second, picked by a seeded generator from those
still installed. Devices minted after their moment are left alone.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from simulator.faults.chance import unit
from simulator.faults.spec import FaultSpec, TokenChurn


class DeviceLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def provider(self) -> str: ...
    @property
    def token(self) -> str: ...
    @property
    def installed(self) -> bool: ...
    @property
    def created_at(self) -> float: ...


class FaultWindow(Protocol):
    """What the schedule needs of a fault in the plan."""

    @property
    def id(self) -> str: ...
    @property
    def spec(self) -> FaultSpec: ...
    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Churn:
    at: float
    fault_id: str
    device_id: str
    action: str  # reinstall | uninstall


class ChurnSchedule:
    """Per token-churn fault: devices already seen, moments scheduled, devices churned."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._seen: dict[str, int] = {}
        self._heap: dict[str, list[tuple[float, str]]] = {}
        self._churned: dict[str, set[str]] = {}
        self._rng: dict[str, random.Random] = {}
        self._done: dict[str, int] = {}

    def due(
        self,
        faults: Iterable[FaultWindow],
        now: float,
        devices: Sequence[DeviceLike],
        run_started_wall: float,
    ) -> list[Churn]:
        """Churns due by ``now`` (run time). ``devices`` is the registry in minting order."""
        out: list[Churn] = []
        for f in faults:
            p = f.spec.params
            if not isinstance(p, TokenChurn) or now < f.start:
                continue
            churned = self._churned.setdefault(f.id, set())
            if p.rate is not None:
                out.extend(self._by_rate(f, p, now, devices, churned))
            else:
                out.extend(self._over_window(f, p, now, devices, churned, run_started_wall))
        out.sort(key=lambda c: (c.at, c.fault_id, c.device_id))
        return out

    def _over_window(
        self,
        f: FaultWindow,
        p: TokenChurn,
        now: float,
        devices: Sequence[DeviceLike],
        churned: set[str],
        run_started_wall: float,
    ) -> list[Churn]:
        heap = self._heap.setdefault(f.id, [])
        seen = self._seen.get(f.id, 0)
        span = 0.0 if math.isinf(f.end) else f.end - f.start
        for dev in devices[seen:]:
            if not self._in_scope(f, dev):
                continue
            at = f.start + unit(self.seed, "churn", f.id, dev.id) * span
            born = dev.created_at - run_started_wall
            if born <= at:
                heapq.heappush(heap, (at, dev.id))
        self._seen[f.id] = len(devices)
        out = []
        while heap and heap[0][0] <= now:
            at, dev_id = heapq.heappop(heap)
            if at < f.end and dev_id not in churned:
                churned.add(dev_id)
                out.append(Churn(at, f.id, dev_id, p.action))
        return out

    def _in_scope(self, f: FaultWindow, dev: DeviceLike) -> bool:
        s = f.spec
        if dev.provider not in s.providers():
            return False
        if s.token is not None:
            return dev.token == s.token
        if s.project is not None and getattr(dev, "app", None) != s.project:
            return False
        return s.share is None or unit(self.seed, "share", dev.id) < s.share

    def _by_rate(
        self,
        f: FaultWindow,
        p: TokenChurn,
        now: float,
        devices: Sequence[DeviceLike],
        churned: set[str],
    ) -> list[Churn]:
        assert p.rate is not None
        t = min(now, f.end)
        due = math.floor((t - f.start) * p.rate + 1e-9)
        done = self._done.get(f.id, 0)
        if due <= done:
            return []
        rng = self._rng.setdefault(f.id, random.Random(unit(self.seed, "churn-rate", f.id)))
        pool = sorted(
            (d.id for d in devices if d.installed and d.id not in churned and self._in_scope(f, d)),
        )
        out = []
        for k in range(done, due):
            if not pool:
                break
            dev_id = pool.pop(rng.randrange(len(pool)))
            churned.add(dev_id)
            out.append(Churn(f.start + (k + 1) / p.rate, f.id, dev_id, p.action))
        self._done[f.id] = due
        return out
