"""The primary's side of ``--workers N``: the worker processes and the sync both ways.

Every :data:`SYNC_INTERVAL` the primary ships what changed: the device population's
delta (new cohorts, devices killed or reinstalled: :mod:`.replica`), each provider's
settings (:mod:`.providers`), the fault plan with its run clock, and the Retry-After
holds given or ended (:mod:`.ledger`). It answers what workers ask at once (a request
handed over whole, an FCM send to decide, an access token), and applies what they
report: deliveries (routed as the provider routes its own), sends to dead tokens,
expiries, counters (:mod:`.tally`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import multiprocessing
import socket
from collections import Counter, OrderedDict
from collections.abc import Callable
from functools import partial
from typing import Any

from simulator.app import Simulator
from simulator.faults.spec import FaultSpec
from simulator.parts import Contribution
from simulator.state.population import SyncMark
from simulator.wire import Action, ConnectionInfo, Request
from simulator.workers.channel import Channel
from simulator.workers.ledger import LedgerSync
from simulator.workers.providers import DELIVERIES, UNINSTALLS, FcmWorkers, provider_table
from simulator.workers.tally import merge
from simulator.workers.worker import SYNC_INTERVAL, Hello, worker_main

log = logging.getLogger("pushsim.workers")

READY_TIMEOUT = 60.0
MAX_STAND_INS = 50_000


def plan_snapshot(sim: Simulator) -> tuple[float, float, list[FaultSpec]]:
    """The plan as a worker re-creates it: each fault with its window fixed in run time."""
    rt = sim.faults
    specs = [
        dataclasses.replace(
            f.spec,
            id=f.id,
            anchor="run",
            start=f.start,
            end=None if math.isinf(f.end) else f.end,
        )
        for f in rt.plan.faults.values()
    ]
    return rt.started_mono, rt.record.started_wall, specs


class WorkerPool:
    """``workers - 1`` processes beside the primary, all serving every provider."""

    def __init__(self, sim: Simulator, workers: int) -> None:
        self.sim = sim
        self.count = workers - 1
        self.table = provider_table()
        self._mark: SyncMark = (0, 0)  # how far the workers follow the population
        self.ledger = LedgerSync(lambda: sim.faults.record.ledger, sim.faults.now)
        self.procs: list[Any] = []
        self.channels: dict[int, Channel] = {}
        self.ready: dict[int, asyncio.Event] = {}
        self.served: dict[int, Counter[str]] = {}
        self._shipped: dict[str, Any] = {}
        self._stand_ins: OrderedDict[tuple[int, int], ConnectionInfo] = OrderedDict()
        self._task: asyncio.Task[None] | None = None
        fcm = self.table["fcm"]
        assert isinstance(fcm, FcmWorkers)
        self.asks: dict[str, Callable[[int, Any], Any]] = {
            "request": self._request,
            "fcm.decide": lambda _w, data: FcmWorkers.decide(sim, data),
            "fcm.grant": lambda _w, token: fcm.grant(sim, token),
        }
        self.reports: dict[str, Callable[[int, Any], None]] = {
            "ready": lambda w, _data: self.ready[w].set(),
            "ask": self._ask,
            "deliver": self._deliver,
            "rejected": lambda _w, data: sim.registry.note_rejection(*data),
            "uninstall": self._uninstall,
            "counters": self._counters,
            "ledger": self._holds,
        }

    # -- starting and stopping ------------------------------------------------------------

    async def start(self) -> None:
        sim = self.sim
        ctx = multiprocessing.get_context("spawn")
        ports = {name: listener.port for name, listener in sim.listeners.items()}
        for index in range(1, self.count + 1):
            mine, theirs = socket.socketpair()
            hello = Hello(
                index,
                str(sim.state_dir),
                sim.host,
                sim.tls,
                sim.seed,
                sim.faults.seed,
                sim.registry.codec.key,
                ports,
            )
            proc = ctx.Process(
                target=worker_main,
                args=(theirs, hello),
                daemon=True,
                name=f"pushsim-worker-{index}",
            )
            proc.start()
            theirs.close()
            self.procs.append(proc)
            self.ready[index] = asyncio.Event()
            self.served[index] = Counter()
            self.channels[index] = await Channel.open(
                mine, partial(self._on_message, index), partial(self._lost, index)
            )
        for event in self.ready.values():
            await asyncio.wait_for(event.wait(), READY_TIMEOUT)
        self.sync()
        self._task = asyncio.create_task(self._run(), name="pushsim-workers-sync")
        sim.parts.append(Contribution("workers", stats=self.stats))

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(SYNC_INTERVAL)
            try:
                self.sync()
            except Exception:  # the sync must outlive one bad round
                log.exception("worker sync failed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._broadcast("stop", None)
        loop = asyncio.get_running_loop()
        for proc in self.procs:
            await loop.run_in_executor(None, proc.join, 5.0)
            if proc.is_alive():
                proc.terminate()
        for channel in self.channels.values():
            channel.close()

    def _lost(self, index: int) -> None:
        self.channels.pop(index, None)
        self.ready.setdefault(index, asyncio.Event()).set()  # nobody waits for it any more

    # -- primary -> workers -----------------------------------------------------------------

    def _broadcast(self, kind: str, data: Any) -> None:
        for channel in self.channels.values():
            channel.send(kind, data)

    def _changed(self, key: str, value: Any) -> bool:
        if value is None or self._shipped.get(key) == value:
            return False
        self._shipped[key] = value
        return True

    def sync(self) -> None:
        """Ship what changed: devices, settings, the fault plan (sent at the end of the turn)."""
        sim = self.sim
        self._mark, delta = sim.registry.population.changes_since(self._mark)
        if delta.cohorts or delta.devices:
            self._broadcast("population", delta)
        for provider, side in self.table.items():
            settings = side.settings(sim)
            if self._changed(provider, settings):
                self._broadcast("settings", (provider, settings))
        rt = sim.faults
        if self._changed("plan", (rt.plan.version, rt.started_mono)):
            self._broadcast("plan", plan_snapshot(sim))
        holds = self.ledger.changes()
        if holds:
            self._broadcast("ledger", holds)

    # -- workers -> primary -----------------------------------------------------------------

    def _on_message(self, index: int, kind: str, data: Any) -> None:
        report = self.reports.get(kind)
        if report is not None:
            report(index, data)

    def _ask(self, index: int, data: Any) -> None:
        ask_id, kind, payload = data
        result = self.asks[kind](index, payload)
        channel = self.channels.get(index)
        if channel is not None:
            channel.answer(ask_id, result)

    def _stand_in(self, index: int, facts: tuple[Any, ...]) -> ConnectionInfo:
        """The primary's ConnectionInfo for one worker connection (its per-connection state)."""
        key = (index, facts[0])
        info = self._stand_ins.get(key)
        if info is None:
            conn_id, version, tls, peer, opened_at, cert, cert_der = facts
            own_id = -(conn_id * 64 + index)  # unlike any of the primary's own
            info = ConnectionInfo(own_id, "", version, tls, peer, opened_at, cert, cert_der)
            self._stand_ins[key] = info
            if len(self._stand_ins) > MAX_STAND_INS:
                self._stand_ins.popitem(last=False)
        else:
            self._stand_ins.move_to_end(key)
        return info

    def _request(self, index: int, data: Any) -> tuple[Action, dict[int, int] | None]:
        listener, conn, (method, path, headers, body, stream_id, authority, scheme) = data
        info = self._stand_in(index, conn)
        info.listener = listener
        req = Request(method, path, headers, body, info, stream_id, authority, scheme)
        action = self.sim.listeners[listener].handler.handle(req)
        settings, info.pending_settings = info.pending_settings, None
        return action, settings

    def _deliver(self, index: int, data: Any) -> None:
        route, dev_id, payload = data
        dev = self.sim.registry.devices.get(dev_id)
        if dev is not None:
            DELIVERIES[route](self.sim, dev, payload)

    def _uninstall(self, index: int, data: Any) -> None:
        provider, dev_id, cause, reason = data
        dev = self.sim.registry.devices.get(dev_id)
        uninstall = UNINSTALLS.get(provider)
        if dev is not None and uninstall is not None:
            uninstall(self.sim, dev, cause, reason)

    def _holds(self, index: int, holds: Any) -> None:
        """Retry-After holds a worker gave or ended: noted here, passed to the others."""
        self.ledger.note(holds)
        for other, channel in self.channels.items():
            if other != index:
                channel.send("ledger", holds)

    def _counters(self, index: int, data: Any) -> None:
        grown, served = data
        merge(self.sim, grown)
        self.served[index].update(served)

    def stats(self) -> dict[str, Any]:
        """``/_sim/stats`` gains each worker's requests per listener (the rest: the primary)."""
        return {"workers": {str(i): dict(c) for i, c in sorted(self.served.items())}}


async def serve_with_workers(sim: Simulator, stop: asyncio.Event, workers: int) -> None:
    """Like :func:`simulator.app.serve`, with ``workers - 1`` more processes on its ports."""
    sim.share_ports = True  # every provider listener binds with SO_REUSEPORT
    await sim.start(announce=False)
    pool = WorkerPool(sim, workers)
    try:
        await pool.start()
        sim.announce()  # endpoints.json once every process listens
        await stop.wait()
    finally:
        await pool.stop()
        await sim.stop()
