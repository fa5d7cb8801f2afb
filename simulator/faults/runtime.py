"""The fault plan at work inside a running simulator: run clock, scheduler, listeners, devices.

:class:`FaultRuntime` owns the :class:`~simulator.faults.plan.FaultPlan` and the
:class:`~simulator.faults.record.FaultRecord`. The run clock starts when the simulator
starts (``begin``); a scheduler task on the event loop ticks every few milliseconds to
record windows opening and closing, refuse and re-open listeners, churn device tokens and
switch the auth rules. Request-time decisions happen in :class:`~simulator.faults.gate.FaultGate`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Iterable
from typing import Any

from pushsim.clock import Clock
from simulator.faults.answers import FaultAnswers
from simulator.faults.auth import (
    DEFAULT_APNS_TOKEN_MAX_AGE,
    DEFAULT_OAUTH_TOKEN_LIFETIME,
    AuthPolicy,
)
from simulator.faults.gate import FaultGate, provider_of
from simulator.faults.hostile_actor import HostileActors
from simulator.faults.plan import ActiveFault, FaultPlan
from simulator.faults.record import FaultRecord, fault_variant
from simulator.faults.spec import FaultSpec, Outage
from simulator.server.listener import Listener
from simulator.state.devices import DeviceRegistry
from simulator.wire import Handler

log = logging.getLogger("pushsim.faults")

TICK_SECONDS = 0.02


class FaultRuntime:
    def __init__(
        self,
        clock: Clock,
        seed: int,
        registry: DeviceRegistry,
        auth: AuthPolicy | None = None,
    ) -> None:
        self.clock = clock
        self.seed = seed
        self.registry = registry
        self.auth = auth or AuthPolicy()
        self.plan = FaultPlan(seed)
        self.started_mono = clock.monotonic()
        self.record = FaultRecord(clock.time())
        self.listeners: dict[str, Listener] = {}
        self.gates: dict[str, FaultGate] = {}
        self.refused_now: frozenset[str] = frozenset()
        self.auth_faults = False
        self._last_tick = -math.inf
        self._task: asyncio.Task[None] | None = None
        self._io: set[asyncio.Task[None]] = set()
        # hostile_client faults: misbehaving connections of our own (simulator.faults.hostile)
        self.hostile = HostileActors(
            lambda provider, fid, outcome: self.record.count(
                self.now(), provider, fid, "hostile_client", outcome
            )
        )

    # -- clock --------------------------------------------------------------------

    def begin(self) -> None:
        """Start the run clock now (the simulator's start)."""
        self.started_mono = self.clock.monotonic()
        self.record.started_wall = self.clock.time()

    def now(self) -> float:
        """Run time: seconds since the simulator started."""
        return self.clock.monotonic() - self.started_mono

    # -- wiring -------------------------------------------------------------------

    def gate(self, listener: str, handler: Handler, answers: FaultAnswers) -> FaultGate:
        """``handler`` behind the plan; ``answers``: how its provider words a fault."""
        gate = self.gates[listener] = FaultGate(listener, handler, self, answers)
        return gate

    def attach(self, listeners: dict[str, Listener]) -> None:
        self.listeners = listeners
        for name, lst in listeners.items():
            gate = self.gates.get(name)
            if gate is not None:  # requests it will never process go into the record
                lst.on_unprocessed = gate.unprocessed

    def start_scheduler(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="pushsim-faults")

    async def _run(self) -> None:
        while True:
            try:
                self.tick()
            except Exception:  # the scheduler must outlive one bad tick
                log.exception("fault scheduler tick failed")
            await asyncio.sleep(TICK_SECONDS)

    async def stop(self) -> None:
        await self.hostile.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for task in list(self._io):
            with contextlib.suppress(Exception):
                await task

    # -- the plan -------------------------------------------------------------------

    def apply(self, specs: Iterable[FaultSpec]) -> list[ActiveFault]:
        """Add faults (all or none: ValueError on an id already in the plan)."""
        now = self.now()
        added = self.plan.add(specs, now)
        for f in added:
            # Windows that began before this tick are recorded now; later ones by the scheduler.
            if f.start <= self._last_tick:
                self._window(max(f.start, 0.0), f, "opened")
            if f.end <= self._last_tick:
                self._window(f.end, f, "closed")
        self._plan_changed()
        return added

    def remove(self, fault_id: str) -> ActiveFault | None:
        fault = self.plan.remove(fault_id)
        if fault is not None:
            self._note_removed([fault])
        return fault

    def clear(self) -> list[ActiveFault]:
        gone = self.plan.clear()
        self._note_removed(gone)
        return gone

    def _note_removed(self, faults: list[ActiveFault]) -> None:
        now = self.now()
        for f in faults:
            if f.open_at(now):
                self._window(now, f, "closed", "cleared")
        self._plan_changed()

    def _plan_changed(self) -> None:
        self.auth_faults = self.plan.has_auth()
        self.tick()

    def _window(self, at: float, f: ActiveFault, event: str, detail: str = "") -> None:
        end = None if math.isinf(f.end) else f.end
        self.record.window(
            at, f.id, f.kind, f.spec.provider, event, detail, end, fault_variant(f.spec)
        )

    def rearm(self) -> float:
        """Restart the run clock now (e.g. at the start of load); windows count from here.

        Faults placed relative to a POST keep their moment on the wall clock; the record
        is re-expressed in the new run time. Returns the shift in seconds.
        """
        delta = self.now()
        self.started_mono += delta
        for f in self.plan.faults.values():
            if f.spec.anchor == "now":
                f.start -= delta
                f.end -= delta
        self.record.shift(delta)
        # Windows that had opened (or closed) count again from the new start.
        self.record.fault_windows.clear()
        self._last_tick = -math.inf
        self.tick()
        return delta

    def describe(self) -> list[dict[str, Any]]:
        now = self.now()
        out = []
        for f in self.plan.faults.values():
            d = f.describe(now)
            d["injected"] = {
                outcome: n
                for (_p, fid, _k, outcome), n in self.record.injected.items()
                if fid == f.id
            }
            out.append(d)
        return out

    def refusing_fault(self, provider: str) -> str:
        now = self.now()
        for f in self.plan.faults.values():
            p = f.spec.params
            if (
                isinstance(p, Outage)
                and p.mode == "refused"
                and f.open_at(now)
                and provider in f.spec.providers()
            ):
                return f.id
        return "?"

    # -- the scheduler ------------------------------------------------------------------

    def tick(self) -> None:
        now = self.now()
        for at, f, event in self.plan.transitions(self._last_tick, now):
            self._window(at, f, event)
        self._tick_state(now)
        self._last_tick = now

    def _tick_state(self, now: float) -> None:
        self._update_refused(now)
        self.sync_auth(now)
        if any(f.kind == "token_churn" for f in self.plan.faults.values()):
            self._churn(now)
        self.hostile.sync(now, self.plan.faults.values(), self.listeners)

    def _update_refused(self, now: float) -> None:
        want = frozenset(self.plan.refused(now))
        if want == self.refused_now:
            return
        closing, opening = want - self.refused_now, self.refused_now - want
        self.refused_now = want
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        for name, listener in self.listeners.items():
            provider = provider_of(name)
            if provider in closing:
                dropped = len(listener.connections)
                listener.for_each_connection(lambda proto: proto.abort())
                if dropped:
                    self.record.count(
                        now,
                        provider,
                        self.refusing_fault(provider),
                        "outage",
                        "connections_dropped",
                        dropped,
                    )
                self._spawn(loop, listener.refuse())
            elif provider in opening:
                self._spawn(loop, listener.accept())

    def _spawn(self, loop: asyncio.AbstractEventLoop, coro: Any) -> None:
        task = loop.create_task(coro)
        self._io.add(task)
        task.add_done_callback(self._io_done)

    def _io_done(self, task: asyncio.Task[None]) -> None:
        self._io.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("listener toggle failed: %s", task.exception())

    def sync_auth(self, now: float) -> None:
        rules = self.plan.auth_overrides(now)
        apns, fcm = rules.get("apns"), rules.get("fcm")
        max_age: float | None = DEFAULT_APNS_TOKEN_MAX_AGE
        lifetime = DEFAULT_OAUTH_TOKEN_LIFETIME
        enforced = True
        if apns is not None:
            max_age = (
                None
                if apns.mode == "relaxed"
                else (apns.apns_token_max_age or DEFAULT_APNS_TOKEN_MAX_AGE)
            )
        if fcm is not None:
            enforced = fcm.mode != "relaxed"
            lifetime = fcm.oauth_token_lifetime or DEFAULT_OAUTH_TOKEN_LIFETIME
        self.auth.update(max_age, lifetime, enforced)

    def _churn(self, now: float) -> None:
        devices = self.registry.devices.values()  # a lazy sequence, in minting order
        for c in self.plan.churn_due(now, devices, self.record.started_wall):
            dev = self.registry.devices.get(c.device_id)
            if dev is None or not dev.installed:
                continue
            old = dev.token
            if c.action == "reinstall":
                self.registry.rotate(dev.id, cause="churn")
                new: str | None = dev.token
            else:
                self.registry.uninstall(dev.id, cause="churn")
                new = None
            self.record.churned(c.at, c.fault_id, dev.provider, dev.id, c.action, old, new)
