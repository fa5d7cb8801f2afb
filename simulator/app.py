"""The composition root: credentials, listeners, provider cores and the control API, in one
event loop.

Each part is built from values (a :class:`~simulator.parts.PartHost` Protocol, credentials,
settings) and hands back a :class:`~simulator.parts.Contribution`: its listeners with
their fault answers, control routes, device-online hook, auth follower, stats. Only this
module wires them: every listener behind the fault gate, every route into the control
API, every hook to its provider. No part imports this module.

Listeners (each its own port, so a provider can be refused or dropped on its own):

- ``apns``: APNs production; ``apns_sandbox``: APNs development (sandbox);
- ``fcm``: FCM HTTP v1 and the OAuth2 token endpoint (``/token``) and Instance ID API;
- ``webpush``: the Web Push service (subscription endpoints under ``/wp/``);
- ``apns_channels`` / ``apns_channels_sandbox``: APNs broadcast channel management
  (Apple's own hosts; listed after the control API);
- ``control``: the control API (aiohttp, plain HTTP/1.1).

With ``port=0`` every listener takes a free port; with ``port=N`` they take N, N+1, ...
in the order above (a part's further listeners take the ports after the control API's).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from pushsim.clock import Clock, SystemClock
from simulator.control import make_control_app
from simulator.faults.auth import AuthPolicy
from simulator.faults.parse import load_fault_file
from simulator.faults.routes import faults_contribution
from simulator.faults.runtime import FaultRuntime
from simulator.faults.spec import FaultSpec
from simulator.frontdoor.door import FrontDoor
from simulator.frontdoor.names import REAL_WEBPUSH_PREFIX
from simulator.listeners import LISTENER_ORDER, PORT_ORDER, PORTS_TAKEN
from simulator.parts import Contribution, ListenerPart
from simulator.providers.apns.live import LivePush
from simulator.providers.apns.service import ApnsService
from simulator.providers.apns.wiring import apns_parts
from simulator.providers.fcm.wiring import build_fcm
from simulator.providers.webpush.core import WebPushConfig
from simulator.providers.webpush.service import build_webpush
from simulator.server.listener import Listener
from simulator.state.credentials import (
    Credentials,
    ensure_credentials,
    server_ssl_context,
    set_token_uri,
)
from simulator.state.device_user import SimulatedUsers
from simulator.state.devices import Device, DeviceRegistry
from simulator.state.lock import StateDirLock
from simulator.state.stats import Stats
from simulator.users import users_part
from simulator.wire import Handler

if TYPE_CHECKING:
    from simulator.dashboard.server import Dashboard

log = logging.getLogger("pushsim.simulator")


class Simulator:
    """The composition root: builds every part, wires what each contributes, runs them."""

    def __init__(
        self,
        state_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: bool = True,
        seed: int | None = None,
        clock: Clock | None = None,
        scenario: Path | None = None,
        real_hosts: bool = False,
        dashboard: bool = False,
        dashboard_port: int = 0,
    ) -> None:
        self.state_dir = Path(state_dir)
        # subscriptions carry the real push services' endpoints (for ``pushsim exec``)
        self.real_hosts = real_hosts
        self.front_door: FrontDoor | None = None  # the real hostnames, on a Unix socket
        self.host = host
        self.port = port
        self.tls = tls
        self.seed = seed
        self.clock: Clock = clock or SystemClock()
        self.rng = random.Random(seed)
        self.scenario_path = scenario
        self.stats = Stats(self.clock)
        self.registry = DeviceRegistry(self.clock, self.fork_rng())
        self.listeners: dict[str, Listener] = {}
        # SO_REUSEPORT on every provider listener, only for ``--workers N`` (otherwise a
        # second simulator on the same fixed ports would share them instead of failing to bind)
        self.share_ports = False
        self.webpush_config = (
            WebPushConfig()
        )  # flavour, rate, lifetime: see simulator.providers.webpush.core
        self.endpoints: dict[str, str] = {}
        self.creds: Credentials | None = None
        self.apns: ApnsService | None = None
        self.ssl_context: ssl.SSLContext | None = None
        self._runner: web.AppRunner | None = None
        self.control_port = 0
        self.state_lock = StateDirLock(self.state_dir)
        # The fault plan (simulator.faults.plan*): the gate in front of every core, the record,
        # and the auth rules the cores read (see simulator.faults.auth).
        self.auth_policy = AuthPolicy()
        fault_seed = seed if seed is not None else random.SystemRandom().randrange(1 << 32)
        self.faults = FaultRuntime(self.clock, fault_seed, self.registry, self.auth_policy)
        # what each part contributes (the providers' join at start, once credentials exist)
        self.parts: list[Contribution] = [faults_contribution(self.faults)]
        self._online_hooks: dict[str, Callable[[Device], None]] = {}
        # the user behind each device: shown, opened (simulator.state.device_user)
        self.users: SimulatedUsers | None = None
        # the live dashboard on hypercorn (off the provider hot path): simulator.dashboard
        self.dashboard: Dashboard | None = None
        if dashboard:  # imported only when asked for: hypercorn costs every start ~0.5 s
            from simulator.dashboard.server import Dashboard

            self.dashboard = Dashboard(self, port=dashboard_port)
        if self.dashboard is not None:
            self.parts.append(Contribution("dashboard", control=self.dashboard.register_control))

    @property
    def webpush_base_url(self) -> str:
        if self.real_hosts:
            return REAL_WEBPUSH_PREFIX[self.webpush_config.flavour]
        return self.endpoints.get("webpush", "")

    def fork_rng(self) -> random.Random:
        """A new RNG seeded from the simulator's (parts draw in a fixed order: replayable)."""
        return random.Random(self.rng.random())

    # -- building -----------------------------------------------------------------

    def _build_providers(self, creds: Credentials) -> list[Contribution]:
        self.apns = ApnsService(self, creds)
        fcm = build_fcm(self, creds, lambda: self.endpoints.get("oauth_token_uri", ""))
        webpush = build_webpush(self, self.webpush_config)
        # forked after the providers' RNGs, so a seed draws for those as it always has
        live = LivePush(self.apns.cores, self.registry, self.fork_rng())
        self.users = SimulatedUsers(self.clock, self.fork_rng())
        self.registry.on_deliver = self.users.observe
        return [apns_parts(self.apns, live), fcm, webpush, users_part(self.users, self.registry)]

    def _join(self, parts: list[Contribution]) -> None:
        """Route each part's hooks: device online, auth rules (stats and routes are read later)."""
        for part in parts:
            self.parts.append(part)
            if part.on_online is not None:
                self._online_hooks[part.name] = part.on_online
            if part.follow_auth is not None:
                self.auth_policy.subscribe(part.follow_auth)
            if part.on_deliver is not None and self.users is not None:
                self.users.interpreters.append(part.on_deliver)

    def _port(self, offset: int) -> int:
        return self.port + offset if self.port else 0

    def listener_port(self, name: str, index: int) -> int:
        """The port listener ``name`` (the ``index``-th to start) binds: its place in
        ``PORT_ORDER``, or for a listener not named there, one after the last of those."""
        if name in PORT_ORDER:
            return self._port(PORT_ORDER.index(name))
        return self._port(PORTS_TAKEN + index - len(LISTENER_ORDER))

    def listener_handler(self, name: str, part: ListenerPart) -> Handler:
        """What listener ``name`` runs: its part's handler behind the fault gate."""
        return self.faults.gate(name, part.handler, part.answers)

    async def _start_listeners(self) -> None:
        """Every part's listeners, each on :meth:`listener_port` running
        :meth:`listener_handler`."""
        listening: dict[str, ListenerPart] = {}
        for part in self.parts:
            listening.update(part.listeners)
        extra = [name for name in listening if name not in LISTENER_ORDER]
        for i, name in enumerate([*LISTENER_ORDER, *extra]):
            lp = listening[name]
            handler = self.listener_handler(name, lp)
            listener = Listener(name, handler, self.ssl_context, lp.options, self.clock)
            listener.reuse_port = self.share_ports
            await listener.start(self.host, self.listener_port(name, i))
            self.listeners[name] = listener

    async def _start_control(self) -> None:
        controls = [part.control for part in self.parts if part.control is not None]
        app = make_control_app(self, controls)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._port(PORT_ORDER.index("control")))
        await site.start()
        self.control_port = int(self._runner.addresses[0][1])

    async def start(self, *, announce: bool = True) -> dict[str, str]:
        """Start every part; ``announce=False`` leaves :meth:`announce` to the caller (who
        starts more first: ``--workers N``'s other processes)."""
        self.faults.begin()  # the run clock starts now
        self.state_lock.acquire()  # StateDirInUse while another simulator serves this DIR
        # holding the lock, any endpoints.json here was left by a killed run: ports nobody uses
        (self.state_dir / "endpoints.json").unlink(missing_ok=True)
        planned: list[FaultSpec] = load_fault_file(self.scenario_path) if self.scenario_path else []
        self.creds = creds = ensure_credentials(self.state_dir, self.seed)
        self.ssl_context = server_ssl_context(creds) if self.tls else None
        self._join(self._build_providers(creds))
        await self._start_listeners()
        self.faults.attach(self.listeners)
        self.faults.apply(planned)
        self.faults.start_scheduler()
        await self._start_control()
        if self.ssl_context is not None:  # the real hostnames are served over TLS only
            self.front_door = FrontDoor(self.listeners, creds, self.clock)
            await self.front_door.start(self._runner)
        host = f"[{self.host}]" if ":" in self.host else self.host
        fcm = self.listeners["fcm"].url
        self.endpoints = {
            "apns": self.listeners["apns"].url,
            "apns_sandbox": self.listeners["apns_sandbox"].url,
            "fcm": fcm,
            "oauth_token_uri": f"{fcm}/token",
            "webpush": self.listeners["webpush"].url,
            "control": f"http://{host}:{self.control_port}",
            "ca_file": str(creds.ca_file.resolve()),
        }
        for name, listener in self.listeners.items():
            self.endpoints.setdefault(name, listener.url)
        self.registry.webpush_base_url = self.endpoints["webpush"]
        set_token_uri(creds, self.endpoints["oauth_token_uri"])
        if self.dashboard is not None:
            self.endpoints.update(await self.dashboard.start())
        if announce:
            self.announce()
        return self.endpoints

    def announce(self) -> None:
        """Everything is up: write ``DIR/endpoints.json`` and say where it listens."""
        self._write_endpoints()
        log.info("pushsim simulator listening: %s", json.dumps(self.endpoints))

    def _write_endpoints(self) -> None:
        path = self.state_dir / "endpoints.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.endpoints, indent=2) + "\n")
        os.replace(tmp, path)

    async def stop(self) -> None:
        if self.dashboard is not None:
            await self.dashboard.stop()
        await self.faults.stop()
        for listener in self.listeners.values():
            await listener.stop()
        if self.front_door is not None:
            await self.front_door.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        try:
            (self.state_dir / "endpoints.json").unlink()
        except FileNotFoundError:
            pass
        self.state_lock.release()

    # -- device side ----------------------------------------------------------------

    def set_online(self, dev: Device, online: bool) -> None:
        dev.online = online
        hook = self._online_hooks.get(dev.provider)
        if online and hook is not None:
            hook(dev)

    # -- records ------------------------------------------------------------------

    def stats_snapshot(self) -> dict[str, Any]:
        snap = self.stats.snapshot()
        reg = self.registry
        snap["devices"] = reg.counts()
        snap["deliveries"] = reg.delivery_seq
        for part in self.parts:
            if part.stats is not None:
                snap.update(part.stats())
        return snap

    def prometheus(self) -> str:
        extra = (part.prometheus() for part in self.parts if part.prometheus is not None)
        return self.stats.prometheus() + "".join(extra)


async def serve(sim: Simulator, stop: asyncio.Event) -> None:
    await sim.start()
    try:
        await stop.wait()
    finally:
        await sim.stop()
