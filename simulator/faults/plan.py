"""The fault plan: a pure function of (run time, provider, request facts, seed) -> a decision.

Time is the run clock (seconds since the simulator started), passed in by the caller,
so windows open and close exactly where the plan says. Chance never depends on the
order in which concurrent requests arrive: every draw is a hash of (seed, fault, key,
n-th draw for that key), where the key is the device token when known. Shares of
devices are a hash of (seed, token) compared to the share, so one seed always picks
the same devices, and a 10% share is contained in a 20% share.

The I/O edges are :mod:`simulator.faults.gate` (turning decisions into wire actions)
and :mod:`simulator.faults.runtime` (listeners, devices, the scheduler).
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Protocol

from pushsim.bucket import TokenBuckets
from simulator.faults.spec import (
    PROVIDERS,
    Auth,
    Errors,
    FaultSpec,
    Latency,
    Outage,
    Throttle,
    TokenChurn,
)

_Z99 = NormalDist().inv_cdf(0.99)
_PRIORITY = {"outage": 0, "throttle": 1, "errors": 2, "latency": 3, "token_churn": 4, "auth": 5}


def unit(seed: int, *parts: object) -> float:
    """A uniform draw in [0, 1) fixed by ``seed`` and ``parts``."""
    key = "|".join([str(seed), *map(str, parts)]).encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") / 2.0**64


def in_share(seed: int, token: str, share: float) -> bool:
    """Whether a device token belongs to a share of devices (stable for a seed)."""
    return share >= 1.0 or unit(seed, "share", token) < share


@dataclass(frozen=True, slots=True)
class RequestFacts:
    provider: str  # apns | fcm | webpush
    token: str | None = None
    project: str | None = None


@dataclass(frozen=True, slots=True)
class Injection:
    fault_id: str
    kind: str
    outcome: str


@dataclass(frozen=True, slots=True)
class Decision:
    """What the plan wants for one request.

    ``action`` is ``pass`` (let the provider core answer), ``unavailable`` (503),
    ``throttled`` (429), ``internal`` (500), ``reset``, ``tcp_reset``, ``goaway``, ``hang``
    or ``refused`` (abort a connection that outlived a refused listener).
    """

    action: str = "pass"
    retry_after: int | None = None
    delay: float = 0.0  # added before the answer (latency)
    after: float = 0.0  # before a reset / goaway
    injections: tuple[Injection, ...] = ()
    during_outage: bool = False
    scope: tuple[str, str] | None = None  # Retry-After scope: (provider|project|device, key)


PASS = Decision()


@dataclass
class ActiveFault:
    """A fault in the plan, with its window in run time."""

    id: str
    spec: FaultSpec
    start: float
    end: float  # math.inf: until cleared
    draws: dict[str, int] = field(default_factory=dict)
    buckets: TokenBuckets = field(init=False)  # a throttle's, by scope key

    def __post_init__(self) -> None:
        p = self.spec.params
        self.buckets = (
            TokenBuckets(p.rate, p.burst) if isinstance(p, Throttle) else TokenBuckets(0.0, 1.0)
        )

    @property
    def kind(self) -> str:
        return self.spec.kind

    def open_at(self, now: float) -> bool:
        return self.start <= now < self.end

    def matches(self, facts: RequestFacts, seed: int) -> bool:
        s = self.spec
        if s.token is not None and facts.token != s.token:
            return False
        if s.project is not None and facts.project != s.project:
            return False
        if s.share is not None:
            return facts.token is not None and in_share(seed, facts.token, s.share)
        return True

    def needs_token(self) -> bool:
        s = self.spec
        p = s.params
        return (
            s.token is not None
            or s.share is not None
            or (isinstance(p, Throttle) and p.scope == "device")
            or isinstance(p, (Errors, Latency))
        )

    def draw(self, seed: int, key: str) -> float:
        n = self.draws.get(key, 0)
        self.draws[key] = n + 1
        return unit(seed, self.id, key, n)

    def describe(self, now: float) -> dict[str, object]:
        state = "pending" if now < self.start else ("active" if now < self.end else "expired")
        out = self.spec.describe()
        out.update(
            id=self.id,
            start_s=round(self.start, 6),
            end_s=None if math.isinf(self.end) else round(self.end, 6),
            state=state,
        )
        return out


def latency_sample(p: Latency, u: float) -> float:
    if p.distribution == "fixed":
        return p.delay
    if p.distribution == "uniform":
        return p.low + u * (p.high - p.low)
    mu = math.log(p.p50)
    sigma = (math.log(p.p99) - mu) / _Z99
    return math.exp(mu + sigma * NormalDist().inv_cdf(min(max(u, 1e-12), 1 - 1e-12)))


class DeviceLike(Protocol):
    id: str
    provider: str
    token: str
    installed: bool
    created_at: float


@dataclass(frozen=True, slots=True)
class Churn:
    at: float
    fault_id: str
    device_id: str
    action: str  # reinstall | uninstall


class FaultPlan:
    """The faults in force, and every decision they make."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.faults: dict[str, ActiveFault] = {}
        self._by_provider: dict[str, list[ActiveFault]] = {p: [] for p in PROVIDERS}
        self._ids = itertools.count(1)
        self.version = 0
        # churn bookkeeping per fault: devices already seen / scheduled heap / churned ids
        self._churn_seen: dict[str, int] = {}
        self._churn_heap: dict[str, list[tuple[float, str]]] = {}
        self._churned: dict[str, set[str]] = {}
        self._churn_rng: dict[str, random.Random] = {}
        self._churn_done: dict[str, int] = {}

    # -- the plan -----------------------------------------------------------------

    def next_id(self) -> str:
        while True:
            candidate = f"f{next(self._ids)}"
            if candidate not in self.faults:
                return candidate

    def add(self, specs: Iterable[FaultSpec], now: float) -> list[ActiveFault]:
        """Add faults atomically: all of them, or (ValueError) none."""
        specs = list(specs)
        taken = set(self.faults)
        for s in specs:
            if s.id is not None and s.id in taken:
                raise ValueError(f"a fault with id {s.id!r} is already in the plan")
            if s.id is not None:
                taken.add(s.id)
        added = []
        for s in specs:
            fid = s.id or self.next_id()
            base = now if s.anchor == "now" else 0.0
            end = math.inf if s.end is None else base + s.end
            fault = ActiveFault(fid, s, base + s.start, end)
            self.faults[fid] = fault
            added.append(fault)
        self._reindex()
        return added

    def remove(self, fault_id: str) -> ActiveFault | None:
        fault = self.faults.pop(fault_id, None)
        if fault is not None:
            self._reindex()
        return fault

    def clear(self) -> list[ActiveFault]:
        gone = list(self.faults.values())
        self.faults.clear()
        self._reindex()
        return gone

    def _reindex(self) -> None:
        self.version += 1
        for p in PROVIDERS:
            self._by_provider[p] = sorted(
                (
                    f
                    for f in self.faults.values()
                    if p in f.spec.providers() and f.kind not in ("token_churn", "auth")
                ),
                key=lambda f: (_PRIORITY[f.kind], f.start),
            )

    def has_request_faults(self, provider: str) -> bool:
        return bool(self._by_provider[provider])

    def needs_token(self, provider: str, now: float) -> bool:
        return any(f.open_at(now) and f.needs_token() for f in self._by_provider[provider])

    def needs_project(self, provider: str, now: float) -> bool:
        return any(
            f.open_at(now)
            and (
                f.spec.project is not None
                or (isinstance(f.spec.params, Throttle) and f.spec.params.scope == "project")
            )
            for f in self._by_provider[provider]
        )

    # -- per request ------------------------------------------------------------------

    def decide(self, now: float, facts: RequestFacts) -> Decision:
        faults = self._by_provider[facts.provider]
        if not faults:
            return PASS
        action = "pass"
        retry_after: int | None = None
        delay = after = 0.0
        injections: list[Injection] = []
        during_outage = False
        scope: tuple[str, str] | None = None
        for f in faults:
            if not f.open_at(now) or not f.matches(facts, self.seed):
                continue
            p = f.spec.params
            if isinstance(p, Outage):
                during_outage = True
                if action != "pass":
                    continue
                if p.mode == "status":
                    action = "unavailable"
                    if p.retry_after_auto:
                        retry_after = max(1, math.ceil(f.end - now))
                    elif p.retry_after is not None:
                        retry_after = max(0, math.ceil(p.retry_after))
                    if retry_after is not None:
                        scope = self._scope_of(f, facts)
                else:
                    action = p.mode
                    after = p.after
                injections.append(Injection(f.id, f.kind, _OUTAGE_OUTCOME[action]))
            elif isinstance(p, Throttle):
                if action != "pass":
                    continue
                key = {
                    "provider": facts.provider,
                    "project": facts.project or "",
                    "device": facts.token or "",
                }[p.scope]
                wait = f.buckets.take(key, now)
                if wait > 0.0:
                    action = "throttled"
                    retry_after = max(1, math.ceil(wait - 1e-9))
                    scope = (p.scope, key)
                    injections.append(Injection(f.id, f.kind, "throttled"))
            elif isinstance(p, Errors):
                if action != "pass":
                    continue
                if f.draw(self.seed, facts.token or facts.provider) < p.probability:
                    action = "internal"
                    injections.append(Injection(f.id, f.kind, "internal_error"))
            elif isinstance(p, Latency):
                if action in ("hang", "refused"):
                    continue
                u = f.draw(self.seed, facts.token or facts.provider)
                delay += latency_sample(p, u)
                injections.append(Injection(f.id, f.kind, "delayed"))
        if action == "pass" and not injections and not during_outage:
            return PASS
        return Decision(action, retry_after, delay, after, tuple(injections), during_outage, scope)

    @staticmethod
    def _scope_of(f: ActiveFault, facts: RequestFacts) -> tuple[str, str]:
        if f.spec.token is not None or f.spec.share is not None:
            return ("device", facts.token or "")
        if f.spec.project is not None:
            return ("project", facts.project or "")
        return ("provider", facts.provider)

    # -- windows ------------------------------------------------------------------

    def transitions(self, since: float, now: float) -> list[tuple[float, ActiveFault, str]]:
        """Windows that opened or closed in (since, now], in time order."""
        out: list[tuple[float, ActiveFault, str]] = []
        for f in self.faults.values():
            if since < f.start <= now:
                out.append((f.start, f, "opened"))
            if since < f.end <= now:
                out.append((f.end, f, "closed"))
        out.sort(key=lambda e: (e[0], e[2] != "closed", e[1].id))
        return out

    def refused(self, now: float) -> set[str]:
        """Providers whose listeners are refused now."""
        out: set[str] = set()
        for f in self.faults.values():
            if (
                isinstance(f.spec.params, Outage)
                and f.spec.params.mode == "refused"
                and f.open_at(now)
            ):
                out.update(f.spec.providers())
        return out

    def auth_overrides(self, now: float) -> dict[str, Auth]:
        """The auth rules in force per provider (the last-added open auth fault wins)."""
        out: dict[str, Auth] = {}
        for f in self.faults.values():
            if isinstance(f.spec.params, Auth) and f.open_at(now):
                for p in f.spec.providers():
                    out[p] = f.spec.params
        return out

    def has_auth(self) -> bool:
        return any(f.kind == "auth" for f in self.faults.values())

    # -- token churn ------------------------------------------------------------------

    def churn_due(
        self, now: float, devices: list[DeviceLike], run_started_wall: float
    ) -> list[Churn]:
        """Churns due by ``now`` (run time). ``devices`` is the registry in minting order."""
        out: list[Churn] = []
        for f in self.faults.values():
            p = f.spec.params
            if not isinstance(p, TokenChurn) or now < f.start:
                continue
            churned = self._churned.setdefault(f.id, set())
            if p.rate is not None:
                out.extend(self._churn_by_rate(f, p, now, devices, churned))
                continue
            heap = self._churn_heap.setdefault(f.id, [])
            seen = self._churn_seen.get(f.id, 0)
            span = 0.0 if math.isinf(f.end) else f.end - f.start
            for dev in itertools.islice(devices, seen, None):
                if not self._churn_scope(f, dev):
                    continue
                at = f.start + unit(self.seed, "churn", f.id, dev.id) * span
                born = dev.created_at - run_started_wall
                if born <= at:
                    heapq.heappush(heap, (at, dev.id))
            self._churn_seen[f.id] = len(devices)
            while heap and heap[0][0] <= now:
                at, dev_id = heapq.heappop(heap)
                if at < f.end and dev_id not in churned:
                    churned.add(dev_id)
                    out.append(Churn(at, f.id, dev_id, p.action))
        out.sort(key=lambda c: (c.at, c.fault_id, c.device_id))
        return out

    def _churn_scope(self, f: ActiveFault, dev: DeviceLike) -> bool:
        s = f.spec
        if dev.provider not in s.providers():
            return False
        if s.token is not None:
            return dev.token == s.token
        if s.project is not None and getattr(dev, "app", None) != s.project:
            return False
        return s.share is None or unit(self.seed, "share", dev.id) < s.share

    def _churn_by_rate(
        self,
        f: ActiveFault,
        p: TokenChurn,
        now: float,
        devices: list[DeviceLike],
        churned: set[str],
    ) -> list[Churn]:
        assert p.rate is not None
        t = min(now, f.end)
        due = math.floor((t - f.start) * p.rate + 1e-9)
        done = self._churn_done.get(f.id, 0)
        if due <= done:
            return []
        rng = self._churn_rng.setdefault(f.id, random.Random(unit(self.seed, "churn-rate", f.id)))
        pool = sorted(
            (
                d.id
                for d in devices
                if d.installed and d.id not in churned and self._churn_scope(f, d)
            ),
        )
        out = []
        for k in range(done, due):
            if not pool:
                break
            dev_id = pool.pop(rng.randrange(len(pool)))
            churned.add(dev_id)
            out.append(Churn(f.start + (k + 1) / p.rate, f.id, dev_id, p.action))
        self._churn_done[f.id] = due
        return out


_OUTAGE_OUTCOME = {
    "unavailable": "unavailable",
    "refused": "refused",
    "reset": "reset_stream",
    "tcp_reset": "tcp_reset",
    "goaway": "goaway",
    "hang": "hang",
}
