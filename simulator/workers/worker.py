"""A worker process: every provider listener, on the primary's ports, against a replica.

:class:`ReplicaSimulator` is the composition root run once more (the same parts, built
the same way, so a provider added to :mod:`simulator.app` is served by workers too) with
three differences: its listeners bind the primary's ports (SO_REUSEPORT), the registry
its cores read follows the primary's (:mod:`simulator.workers.replica`), and each listener
runs a :class:`WorkerDoor` in front of the fault gate. The door answers a provider's
sends here (the provider's ``is_local``) and hands everything else to the primary; so
does it while a throttle window is open for the provider, since a throttle's bucket is
counted where all its requests pass (the primary).

The fault plan is the primary's, shipped on every change with its run clock
(``CLOCK_MONOTONIC`` is one clock for every process of the machine), so windows open
and close at the same moment everywhere, outages refuse this process's listeners too,
and a fault's share of devices is the same devices (the same seed). Token churn is the
primary's alone (it reaches here as dead tokens).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulator.app import Simulator
from simulator.faults.gate import provider_of
from simulator.faults.plan import FaultPlan
from simulator.faults.runtime import FaultRuntime
from simulator.faults.spec import FaultSpec
from simulator.parts import ListenerPart
from simulator.state.credentials import ensure_credentials, server_ssl_context
from simulator.state.population import PopulationDelta
from simulator.wire import Action, Handler, Later, Request
from simulator.workers.channel import Channel
from simulator.workers.ledger import LedgerSync
from simulator.workers.providers import ProviderWorkers, provider_table
from simulator.workers.replica import ReplicaRegistry
from simulator.workers.tally import Tally

SYNC_INTERVAL = 0.02  # the primary's changes reach the workers this often
COUNTER_INTERVAL = 0.05  # the workers' counters reach the primary this often


@dataclass(frozen=True, slots=True)
class Hello:
    """What a worker is started with."""

    index: int
    state_dir: str
    host: str
    tls: bool
    seed: int | None
    fault_seed: int
    token_key: bytes  # the primary's population's: the same tokens and keys here
    ports: dict[str, int]


def conn_facts(req: Request) -> tuple[Any, ...]:
    c = req.conn
    return (c.conn_id, c.http_version, c.tls, c.peer, c.opened_at, c.peer_cert, c.peer_cert_der)


class Link:
    """A worker's side of the channel, as its parts and doors use it."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.served: Counter[str] = Counter()  # requests read, per listener

    def effect(self, kind: str, data: Any) -> None:
        self.channel.send(kind, data)

    def later(self, kind: str, data: Any, then: Callable[[Any], Action] | None = None) -> Later:
        def when_ready(callback: Callable[[Action], None]) -> None:
            self.channel.ask(kind, data, lambda result: callback(then(result) if then else result))

        return Later(when_ready)

    def proxy(self, listener: str, req: Request) -> Later:
        """``req`` answered by the primary's listener (its fault gate, its part)."""

        def then(result: Any) -> Action:
            action, settings = result
            if settings is not None:
                req.conn.pending_settings = settings
            answer: Action = action
            return answer

        wire = (req.method, req.path, req.headers, req.body, req.stream_id, req.authority)
        data = (listener, conn_facts(req), (*wire, req.scheme))
        return self.later("request", data, then)


def throttled(plan: FaultPlan, provider: str, now: float) -> bool:
    """Whether a throttle window is open for ``provider``."""
    return plan.has_request_faults(provider) and any(
        f.kind == "throttle" and f.open_at(now) and provider in f.spec.providers()
        for f in plan.faults.values()
    )


class WorkerDoor:
    """A worker listener's handler: the provider's sends here, the rest to the primary."""

    def __init__(
        self,
        name: str,
        gated: Handler,
        local: Callable[[Request], bool],
        link: Link,
        faults: FaultRuntime,
    ) -> None:
        self.name = name
        self.provider = provider_of(name)
        self.gated = gated
        self.local = local
        self.link = link
        self.faults = faults

    def handle(self, request: Request) -> Action:
        self.link.served[self.name] += 1
        plan = self.faults.plan
        if self.local(request) and not (
            plan.faults and throttled(plan, self.provider, self.faults.now())
        ):
            return self.gated.handle(request)
        return self.link.proxy(self.name, request)


def _never(req: Request) -> bool:
    return False


class ReplicaSimulator(Simulator):
    """The simulator a worker process runs (see the module docstring)."""

    def __init__(self, hello: Hello, link: Link) -> None:
        super().__init__(Path(hello.state_dir), host=hello.host, tls=hello.tls, seed=hello.seed)
        self.share_ports = True
        self.ports = hello.ports
        self.link = link
        # the fault plan's seed is the primary's: the same share of devices, the same draws
        self.faults = FaultRuntime(self.clock, hello.fault_seed, self.registry, self.auth_policy)
        self.parts = []
        # after the fault runtime, which keeps an empty registry: churn is the primary's
        self.replica = ReplicaRegistry(self.clock, hello.token_key, link)
        self.registry = self.replica
        self.table: dict[str, ProviderWorkers] = provider_table()
        self.ledger = LedgerSync(lambda: self.faults.record.ledger, self.faults.now)

    def listener_port(self, name: str, index: int) -> int:
        return self.ports.get(name, 0)

    def listener_handler(self, name: str, part: ListenerPart) -> Handler:
        side = self.table.get(provider_of(name))
        inner = side.worker_handler(part.handler, self.link) if side else part.handler
        gated = self.faults.gate(name, inner, part.answers)
        return WorkerDoor(name, gated, side.is_local if side else _never, self.link, self.faults)

    async def start(self, *, announce: bool = True) -> dict[str, str]:
        self.creds = creds = ensure_credentials(self.state_dir, self.seed)
        self.ssl_context = server_ssl_context(creds) if self.tls else None
        self._join(self._build_providers(creds))
        await self._start_listeners()
        self.faults.attach(self.listeners)
        self.faults.start_scheduler()
        return {name: listener.url for name, listener in self.listeners.items()}

    async def stop(self) -> None:
        await self.faults.stop()
        for listener in self.listeners.values():
            await listener.stop()

    # -- what the primary ships ------------------------------------------------------------

    def apply_population(self, delta: PopulationDelta) -> None:
        self.replica.follow(delta)

    def apply_settings(self, data: tuple[str, Any]) -> None:
        provider, settings = data
        side = self.table.get(provider)
        if side is not None:
            side.apply_settings(self, settings)

    def apply_plan(self, data: tuple[float, float, list[FaultSpec]]) -> None:
        """The primary's plan, its windows in run time, on the primary's run clock."""
        started_mono, started_wall, specs = data
        rt = self.faults
        rt.clear()
        rt.started_mono = started_mono
        rt.record.started_wall = started_wall
        rt.apply(specs)


class Worker:
    """One worker process's life: start, follow the primary, ship counters, stop."""

    def __init__(self, hello: Hello) -> None:
        self.hello = hello
        self.stop = asyncio.Event()
        self.sim: ReplicaSimulator | None = None
        self.handlers: dict[str, Callable[[ReplicaSimulator, Any], None]] = {
            "population": ReplicaSimulator.apply_population,
            "settings": ReplicaSimulator.apply_settings,
            "plan": ReplicaSimulator.apply_plan,
            "ledger": lambda sim, holds: sim.ledger.note(holds),
            "stop": lambda sim, data: self.stop.set(),
        }

    def on_message(self, kind: str, data: Any) -> None:
        handler = self.handlers.get(kind)
        if handler is not None and self.sim is not None:
            handler(self.sim, data)

    async def run(self, sock: socket.socket) -> None:
        channel = await Channel.open(sock, self.on_message, self.stop.set)
        link = Link(channel)
        self.sim = sim = ReplicaSimulator(self.hello, link)
        await sim.start()
        tally = Tally(sim)
        channel.send("ready", self.hello.index)
        shipped: Counter[str] = Counter()
        while not self.stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop.wait(), COUNTER_INTERVAL)
            served = link.served - shipped
            shipped.update(served)
            grown = tally.take()
            if grown or served:
                channel.send("counters", (grown, dict(served)))
            holds = sim.ledger.changes()
            if holds:
                channel.send("ledger", holds)
        await sim.stop()
        channel.send("counters", (tally.take(), dict(link.served - shipped)))
        channel.close()


def worker_main(sock: socket.socket, hello: Hello) -> None:
    """Entry point of a worker process (spawned by :class:`~simulator.workers.pool.WorkerPool`)."""
    from pushsim.process import install_uvloop

    # Ctrl-C reaches the whole process group: the primary stops its workers itself
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    install_uvloop()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(Worker(hello).run(sock))
