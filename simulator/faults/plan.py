"""The fault plan: a pure function of (run time, provider, request facts, seed) -> a decision.

Time is the run clock (seconds since the simulator started), passed in by the caller,
so windows open and close exactly where the plan says. Chance (seeded draws, shares of
devices, latency distributions) is :mod:`simulator.faults.chance`; which devices churn
and when is :mod:`simulator.faults.churn`. Each request-fault kind decides through its
own rule in :data:`_RULES`, in the plan's priority order (outage, throttle, errors,
latency).

The I/O edges are :mod:`simulator.faults.gate` (turning decisions into wire actions)
and :mod:`simulator.faults.runtime` (listeners, devices, the scheduler).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from pushsim.bucket import TokenBuckets
from simulator.faults.chance import in_share, latency_sample, unit
from simulator.faults.churn import Churn, ChurnSchedule, DeviceLike
from simulator.faults.spec import (
    PROVIDERS,
    Auth,
    Errors,
    FaultSpec,
    Latency,
    Outage,
    Throttle,
)

_PRIORITY = {
    "outage": 0,
    "throttle": 1,
    "errors": 2,
    "latency": 3,
    "token_churn": 4,
    "auth": 5,
    "hostile_client": 6,
}
# kinds that act beside the requests, not on them (the scheduler runs them)
_NOT_ON_REQUESTS = ("token_churn", "auth", "hostile_client")


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
    buckets: TokenBuckets | None = field(init=False, default=None)  # a throttle's, by key

    def __post_init__(self) -> None:
        p = self.spec.params
        if isinstance(p, Throttle):
            self.buckets = TokenBuckets(p.rate, p.burst)

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


class FaultPlan:
    """The faults in force, and every decision they make."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.faults: dict[str, ActiveFault] = {}
        self._by_provider: dict[str, list[ActiveFault]] = {p: [] for p in PROVIDERS}
        self._ids = itertools.count(1)
        self.version = 0
        self._churn = ChurnSchedule(seed)
        # decide() runs to its end without yielding, so one draft serves every call.
        self._draft = _Draft()

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
                    if p in f.spec.providers() and f.kind not in _NOT_ON_REQUESTS
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
        d = self._draft
        d.action = "pass"
        d.retry_after = None
        d.delay = d.after = 0.0
        d.injections.clear()
        d.during_outage = False
        d.scope = None
        seed = self.seed
        for f in faults:
            if f.open_at(now) and f.matches(facts, seed):
                _RULES[type(f.spec.params)](d, f, facts, now, seed)
        if d.action == "pass" and not d.injections and not d.during_outage:
            return PASS
        return Decision(
            d.action,
            d.retry_after,
            d.delay,
            d.after,
            tuple(d.injections),
            d.during_outage,
            d.scope,
        )

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
        self, now: float, devices: Sequence[DeviceLike], run_started_wall: float
    ) -> list[Churn]:
        """Churns due by ``now`` (run time). ``devices`` is the registry in minting order."""
        return self._churn.due(self.faults.values(), now, devices, run_started_wall)


# -- per request: each fault kind's rule, applied to the decision being drafted --------


class _Draft:
    """The decision so far, while the plan's faults are applied in priority order."""

    __slots__ = ("action", "after", "delay", "during_outage", "injections", "retry_after", "scope")

    def __init__(self) -> None:
        self.action = "pass"
        self.retry_after: int | None = None
        self.delay = 0.0
        self.after = 0.0
        self.injections: list[Injection] = []
        self.during_outage = False
        self.scope: tuple[str, str] | None = None


def _outage(d: _Draft, f: ActiveFault, facts: RequestFacts, now: float, seed: int) -> None:
    p = f.spec.params
    assert isinstance(p, Outage)
    d.during_outage = True
    if d.action != "pass":
        return
    if p.mode == "status":
        d.action = "unavailable"
        if p.retry_after_auto:
            d.retry_after = max(1, math.ceil(f.end - now))
        elif p.retry_after is not None:
            d.retry_after = max(0, math.ceil(p.retry_after))
        if d.retry_after is not None:
            d.scope = _scope_of(f, facts)
    else:
        d.action = p.mode
        d.after = p.after
    d.injections.append(Injection(f.id, f.kind, _OUTAGE_OUTCOME[d.action]))


def _scope_of(f: ActiveFault, facts: RequestFacts) -> tuple[str, str]:
    if f.spec.token is not None or f.spec.share is not None:
        return ("device", facts.token or "")
    if f.spec.project is not None:
        return ("project", facts.project or "")
    return ("provider", facts.provider)


def _throttle(d: _Draft, f: ActiveFault, facts: RequestFacts, now: float, seed: int) -> None:
    p = f.spec.params
    assert isinstance(p, Throttle) and f.buckets is not None
    if d.action != "pass":
        return
    scope = p.scope
    if scope == "provider":
        key = facts.provider
    else:
        key = (facts.project if scope == "project" else facts.token) or ""
    wait = f.buckets.take(key, now)
    if wait > 0.0:
        d.action = "throttled"
        d.retry_after = max(1, math.ceil(wait - 1e-9))
        d.scope = (scope, key)
        d.injections.append(Injection(f.id, f.kind, "throttled"))


def _errors(d: _Draft, f: ActiveFault, facts: RequestFacts, now: float, seed: int) -> None:
    p = f.spec.params
    assert isinstance(p, Errors)
    if d.action != "pass":
        return
    if f.draw(seed, facts.token or facts.provider) < p.probability:
        d.action = "internal"
        d.injections.append(Injection(f.id, f.kind, "internal_error"))


def _latency(d: _Draft, f: ActiveFault, facts: RequestFacts, now: float, seed: int) -> None:
    p = f.spec.params
    assert isinstance(p, Latency)
    if d.action in ("hang", "refused"):
        return
    d.delay += latency_sample(p, f.draw(seed, facts.token or facts.provider))
    d.injections.append(Injection(f.id, f.kind, "delayed"))


# The request-fault kinds (token churn and auth act elsewhere), by their params' type.
_RULES: dict[type, Callable[[_Draft, ActiveFault, RequestFacts, float, int], None]] = {
    Outage: _outage,
    Throttle: _throttle,
    Errors: _errors,
    Latency: _latency,
}

_OUTAGE_OUTCOME = {
    "unavailable": "unavailable",
    "refused": "refused",
    "reset": "reset_stream",
    "tcp_reset": "tcp_reset",
    "goaway": "goaway",
    "hang": "hang",
}
