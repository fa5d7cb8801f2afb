"""``pushsim simulator --workers N``: the APNs listeners served by N processes on one port.

The main process runs everything as usual (all listeners, the control API, the fault
plan, the device registry). Each of the N-1 worker processes binds the APNs production
and sandbox ports too (SO_REUSEPORT: the kernel spreads new connections over the
processes) and runs the same APNs cores against a mirror of the device tokens.

What is shared, and how cheaply:

- keys: from the state directory (``apns/keys/*.json``), loaded on first sight of a kid;
- device tokens: the main process sends each worker the tokens minted, and the tokens
  that died (uninstall, reinstall, expiry), every 50 ms, as one batch message per pipe;
- operator settings (``/_sim/apns/config``) and key revocations: sent when they change;
- what workers accept: delivered entries, rejections of dead tokens and counters go back
  to the main process every 50 ms; the main process stores or delivers them (so inboxes,
  offline storage, ``/_sim/stats`` and the delivery log stay whole).

Per-connection rules (provider token updates, stream limits, idle timeout) hold per
process exactly; the per-device TooManyRequests bucket is per process; the fault plan
applies on the main process's connections only.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import multiprocessing
import multiprocessing.connection
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, cast

from pushsim.clock import Clock, SystemClock
from simulator.providers.apns.service import LISTENERS, ApnsService
from simulator.server.listener import Listener
from simulator.state.credentials import ensure_credentials, server_ssl_context
from simulator.state.devices import Device, DeviceRegistry, TokenLookup, TokenState
from simulator.state.stats import Stats

SYNC_INTERVAL = 0.05


# -- worker side ----------------------------------------------------------------------------


class MirrorRegistry:
    """The token lookups a worker's APNs cores need, fed by the main process."""

    def __init__(self) -> None:
        self.live: dict[str, Device] = {}
        self.dead: dict[str, tuple[Device, int]] = {}
        self.rejections: list[str] = []
        self.devices: dict[str, Device] = {}

    def add(self, dev_id: str, token: str, app: str, environment: str) -> None:
        dev = Device(dev_id, "apns", token, app, environment)
        self.live[token] = dev
        self.devices[dev_id] = dev

    def kill(self, token: str, died_at_ms: int, dev_id: str, app: str, environment: str) -> None:
        dev = self.live.pop(token, None) or Device(dev_id, "apns", token, app, environment)
        self.dead[token] = (dev, died_at_ms)

    def lookup(self, provider: str, token: str) -> TokenLookup:
        dev = self.live.get(token)
        if dev is not None:
            return TokenLookup(TokenState.VALID, dev)
        dead = self.dead.get(token)
        if dead is not None:
            return TokenLookup(TokenState.DEAD, dead[0], dead[1])
        return TokenLookup(TokenState.UNKNOWN)

    def note_rejection(self, provider: str, token: str) -> None:
        self.rejections.append(token)

    def deliver(self, dev: Device, entry: dict[str, Any]) -> None:  # pragma: no cover - forwarded
        raise RuntimeError("a worker forwards deliveries to the main process")


class _WorkerHost:
    """What :class:`~simulator.providers.apns.service.ApnsService` reads, in a worker."""

    share_ports = True  # a worker binds the main process's APNs ports

    def __init__(self, state_dir: Path, seed: int | None) -> None:
        self.state_dir = state_dir
        self.clock = SystemClock()
        self.rng = random.Random(seed)
        self.stats = Stats(self.clock)
        self.mirror = MirrorRegistry()

    @property
    def registry(self) -> DeviceRegistry:
        # The cores only look tokens up, note rejections and forward deliveries, all of
        # which the mirror does; it stands in for the main process's registry.
        return cast(DeviceRegistry, self.mirror)

    def fork_rng(self) -> random.Random:
        return random.Random(self.rng.random())


def worker_main(
    conn: multiprocessing.connection.Connection,
    state_dir: str,
    host: str,
    ports: dict[str, int],
    tls: bool,
    seed: int | None,
    index: int,
) -> None:
    """Entry point of a worker process."""
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_worker(conn, Path(state_dir), host, ports, tls, seed, index))


async def _serve_worker(
    conn: multiprocessing.connection.Connection,
    state_dir: Path,
    host: str,
    ports: dict[str, int],
    tls: bool,
    seed: int | None,
    index: int,
) -> None:
    await _Worker(conn, state_dir, seed, index).run(host, ports, tls)


class _Worker:
    """One worker process: the APNs cores on a mirror of the tokens, synced over a pipe."""

    def __init__(
        self,
        conn: multiprocessing.connection.Connection,
        state_dir: Path,
        seed: int | None,
        index: int,
    ) -> None:
        self.conn = conn
        self.index = index
        self.host = _WorkerHost(state_dir, None if seed is None else seed * 1000 + index)
        self.creds = ensure_credentials(state_dir, seed)
        self.service = ApnsService(self.host, self.creds)
        self.outbox: list[tuple[str, dict[str, Any]]] = []
        for core in self.service.cores.values():
            core.forward = lambda dev, entry: self.outbox.append((dev.id, entry))
        self.stop = asyncio.Event()
        self.sent: Counter[tuple[str, str]] = Counter()
        # message kind from the main process -> what it changes here
        self.handlers: dict[str, Callable[[Any], None]] = {
            "devices": self._devices,
            "dead": self._dead,
            "expired": self.service.state.expired_tokens.update,
            "revoked": self._revoked,
            "config": self._config,
            "stop": lambda _data: self.stop.set(),
        }

    def _devices(self, data: Any) -> None:
        for dev_id, token, app, env in data:
            self.host.mirror.add(dev_id, token, app, env)

    def _dead(self, data: Any) -> None:
        for token, died_at, dev_id, app, env in data:
            self.host.mirror.kill(token, died_at, dev_id, app, env)

    def _revoked(self, data: Any) -> None:
        for kid in data:
            self.service.verifier.revoke(kid)

    def _config(self, data: Any) -> None:
        for env, settings in data.items():
            self.service.update_config({**settings, "environment": env})

    def on_message(self) -> None:
        try:
            while self.conn.poll():
                kind, data = self.conn.recv()
                handler = self.handlers.get(kind)
                if handler is not None:
                    handler(data)
        except (EOFError, OSError):
            self.stop.set()

    def send_batch(self) -> bool:
        """Send what was accepted and counted since the last batch; False once the pipe broke."""
        mirror = self.host.mirror
        delta = self.host.stats.counts - self.sent
        if not (self.outbox or mirror.rejections or delta):
            return True
        batch, self.outbox[:] = list(self.outbox), []
        rejected, mirror.rejections = mirror.rejections, []
        self.sent.update(delta)
        try:
            self.conn.send(("batch", (batch, rejected, dict(delta))))
        except (BrokenPipeError, OSError):
            return False
        return True

    async def run(self, host: str, ports: dict[str, int], tls: bool) -> None:
        loop = asyncio.get_running_loop()
        ssl_ctx = server_ssl_context(self.creds) if tls else None
        listeners = []
        for name, (core, opts) in self.service.listeners().items():
            lst = Listener(name, core, ssl_ctx, opts, self.host.clock)
            await lst.start(host, ports[name])
            listeners.append(lst)
        loop.add_reader(self.conn.fileno(), self.on_message)
        self.conn.send(("ready", self.index))
        while not self.stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop.wait(), SYNC_INTERVAL)
            if not self.send_batch():
                break
        loop.remove_reader(self.conn.fileno())
        for lst in listeners:
            await lst.stop()


# -- main side ---------------------------------------------------------------------------------


class PoolHost(Protocol):
    """What the worker pool reads of the main process's simulator."""

    state_dir: Path
    host: str
    tls: bool
    seed: int | None
    share_ports: bool
    clock: Clock
    stats: Stats
    registry: DeviceRegistry
    listeners: dict[str, Listener]
    apns: ApnsService | None

    async def start(self) -> dict[str, str]: ...

    async def stop(self) -> None: ...


class WorkerPool:
    """The worker processes of one simulator, and the 50 ms sync both ways."""

    def __init__(self, sim: PoolHost, workers: int) -> None:
        self.sim = sim
        self.count = workers - 1
        self.procs: list[Any] = []
        self.conns: list[multiprocessing.connection.Connection] = []
        self._seen_devices = 0
        self._feed_seq = 0
        self._expired_sent: set[str] = set()
        self._revoked_sent: set[str] = set()
        self._config_sent: dict[str, Any] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        sim = self.sim
        ctx = multiprocessing.get_context("spawn")
        ports = {name: sim.listeners[name].port for name in LISTENERS}
        for i in range(self.count):
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=worker_main,
                args=(child, str(sim.state_dir), sim.host, ports, sim.tls, sim.seed, i + 1),
                daemon=True,
                name=f"pushsim-apns-worker-{i + 1}",
            )
            proc.start()
            self.procs.append(proc)
            self.conns.append(parent)
        loop = asyncio.get_running_loop()
        for c in self.conns:
            await loop.run_in_executor(None, c.poll, 60.0)
            c.recv()  # ("ready", i)
            loop.add_reader(c.fileno(), self._on_message, c)
        self._sync()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(SYNC_INTERVAL)
            self._sync()

    def _broadcast(self, kind: str, data: Any) -> None:
        for c in self.conns:
            with contextlib.suppress(BrokenPipeError, OSError):
                c.send((kind, data))

    def _sync(self) -> None:
        reg = self.sim.registry
        service = self.sim.apns
        if len(reg.devices) != self._seen_devices:
            new = itertools.islice(reg.devices.values(), self._seen_devices, None)
            batch = [
                (d.id, d.token, d.app, d.environment)
                for d in new
                if d.provider == "apns" and d.installed
            ]
            self._seen_devices = len(reg.devices)
            if batch:
                self._broadcast("devices", batch)
        events = reg.feed_since(self._feed_seq, limit=100_000)
        if events:
            self._feed_seq = events[-1]["seq"]
            dead, born = [], []
            for ev in events:
                if ev["provider"] != "apns":
                    continue
                found = reg.lookup("apns", ev["old_token"])
                dev = reg.devices[ev["device_id"]]
                dead.append(
                    (ev["old_token"], found.died_at_ms or 0, dev.id, dev.app, dev.environment)
                )
                if ev["new_token"]:
                    born.append((dev.id, ev["new_token"], dev.app, dev.environment))
            if dead:
                self._broadcast("dead", dead)
            if born:
                self._broadcast("devices", born)
        if service is not None:
            expired = service.state.expired_tokens - self._expired_sent
            if expired:
                self._broadcast("expired", sorted(expired))
                self._expired_sent |= expired
            revoked = service.verifier.revoked - self._revoked_sent
            if revoked:
                self._broadcast("revoked", sorted(revoked))
                self._revoked_sent |= revoked
            view = service.config_view()
            if view != self._config_sent:
                self._broadcast(
                    "config",
                    {
                        env: {k: v for k, v in s.items() if k != "environment"}
                        for env, s in view.items()
                    },
                )
                self._config_sent = view

    def _on_message(self, conn: multiprocessing.connection.Connection) -> None:
        sim = self.sim
        try:
            while conn.poll():
                kind, data = conn.recv()
                if kind != "batch":
                    continue
                entries, rejected, counts = data
                now = sim.clock.time()
                for dev_id, entry in entries:
                    dev = sim.registry.devices.get(dev_id)
                    if dev is None or sim.apns is None:
                        continue
                    core = sim.apns.cores[
                        "sandbox" if dev.environment == "sandbox" else "production"
                    ]
                    core.route(dev, entry, entry.get("expiration"), now)
                for token in rejected:
                    sim.registry.note_rejection("apns", token)
                for (provider, outcome), n in counts.items():
                    if outcome != "delivered":  # route() counted deliveries here
                        sim.stats.count(provider, outcome, n)
        except (EOFError, OSError):
            with contextlib.suppress(ValueError, OSError):
                asyncio.get_running_loop().remove_reader(conn.fileno())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._broadcast("stop", None)
        loop = asyncio.get_running_loop()
        for proc in self.procs:
            await loop.run_in_executor(None, proc.join, 5.0)
            if proc.is_alive():
                proc.terminate()
        for c in self.conns:
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(c.fileno())
            c.close()


async def serve_with_workers(sim: PoolHost, stop: asyncio.Event, workers: int) -> None:
    """Like :func:`simulator.app.serve`, with ``workers - 1`` extra APNs processes."""
    sim.share_ports = True  # the APNs listeners bind with SO_REUSEPORT for the workers
    await sim.start()
    pool = WorkerPool(sim, workers)
    try:
        await pool.start()
        await stop.wait()
    finally:
        await pool.stop()
        await sim.stop()
