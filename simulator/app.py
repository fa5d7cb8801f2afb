"""Wiring: credentials, listeners, provider cores and the control API, in one event loop.

Listeners (each its own port, so a provider can be refused or dropped on its own):

- ``apns``: APNs production; ``apns_sandbox``: APNs development (sandbox);
- ``fcm``: FCM HTTP v1 and the OAuth2 token endpoint (``/token``) and Instance ID API;
- ``webpush``: the Web Push service (subscription endpoints under ``/wp/``);
- ``control``: the control API (aiohttp, plain HTTP/1.1).

With ``port=0`` every listener takes a free port; with ``port=N`` they take N, N+1, ...
in the order above.
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
from typing import Any

from aiohttp import web

from pushsim.clock import Clock, SystemClock
from simulator.control import make_control_app
from simulator.faults.auth import AuthPolicy
from simulator.faults.parse import load_fault_file
from simulator.faults.routes import register as register_fault_routes
from simulator.faults.runtime import FaultRuntime
from simulator.faults.spec import FaultSpec
from simulator.providers.apns.service import ApnsService
from simulator.providers.apns.service import install as install_apns
from simulator.providers.fcm.router import build_fcm
from simulator.providers.webpush.core import WebPushConfig
from simulator.providers.webpush.service import install_webpush
from simulator.server.protocol import Listener, ListenerOptions
from simulator.state.credentials import (
    Credentials,
    ensure_credentials,
    server_ssl_context,
    set_token_uri,
)
from simulator.state.devices import Device, DeviceRegistry
from simulator.state.lock import StateDirLock
from simulator.state.stats import Stats

log = logging.getLogger("pushsim.simulator")

LISTENER_ORDER = ("apns", "apns_sandbox", "fcm", "webpush")


class Simulator:
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
    ) -> None:
        self.state_dir = Path(state_dir)
        self.host = host
        self.port = port
        self.tls = tls
        self.seed = seed
        self.clock: Clock = clock or SystemClock()
        self.rng = random.Random(seed)
        self.scenario_path = scenario
        self.stats = Stats(self.clock)
        self.registry = DeviceRegistry(self.clock, random.Random(self.rng.random()))
        self.listeners: dict[str, Listener] = {}
        self.control_extensions: list[Callable[[web.Application], None]] = []
        # SO_REUSEPORT on the APNs listeners, only for ``--workers N`` (otherwise a second
        # simulator on the same fixed ports would share them instead of failing to bind)
        self.share_ports = False
        self.online_hooks: dict[str, Callable[[Device], None]] = {}
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
        self.faults = FaultRuntime(
            self.clock, fault_seed, self.registry, self.auth_policy, self.stats
        )
        self.control_extensions.append(register_fault_routes)

    @property
    def webpush_base_url(self) -> str:
        return self.endpoints.get("webpush", "")

    # -- building -----------------------------------------------------------------

    def _build_cores(self, creds: Credentials) -> dict[str, tuple[Any, ListenerOptions]]:
        self.apns = install_apns(self, creds)
        verifier = self.apns.verifier
        # auth faults: provider-token expiry enforced (max age) or relaxed (None: never expires)
        self.auth_policy.subscribe(
            lambda p: setattr(
                verifier,
                "max_age",
                p.apns_token_max_age if p.apns_token_max_age is not None else float("inf"),
            )
        )
        cores: dict[str, tuple[Any, ListenerOptions]] = {
            **self.apns.listeners(),
            "fcm": build_fcm(self, creds),
            "webpush": (install_webpush(self), ListenerOptions()),
        }
        return cores

    async def start(self) -> dict[str, str]:
        self.faults.begin()  # the run clock starts now
        self.state_lock.acquire()  # StateDirInUse while another simulator serves this DIR
        # holding the lock, any endpoints.json here was left by a killed run: ports nobody uses
        (self.state_dir / "endpoints.json").unlink(missing_ok=True)
        planned: list[FaultSpec] = load_fault_file(self.scenario_path) if self.scenario_path else []
        self.creds = creds = ensure_credentials(self.state_dir, self.seed)
        self.ssl_context = server_ssl_context(creds) if self.tls else None
        cores = self._build_cores(creds)
        for i, name in enumerate(LISTENER_ORDER):
            handler, opts = cores[name]
            listener = Listener(
                name, self.faults.gate(name, handler), self.ssl_context, opts, self.clock
            )
            await listener.start(self.host, self.port + i if self.port else 0)
            self.listeners[name] = listener
        self.faults.attach(self.listeners)
        self.faults.apply(planned)
        self.faults.start_scheduler()
        app = make_control_app(self)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, self.host, self.port + len(LISTENER_ORDER) if self.port else 0
        )
        await site.start()
        self.control_port = int(self._runner.addresses[0][1])
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
        self.registry.webpush_base_url = self.endpoints["webpush"]
        set_token_uri(creds, self.endpoints["oauth_token_uri"])
        self._write_endpoints()
        log.info("pushsim simulator listening: %s", json.dumps(self.endpoints))
        return self.endpoints

    def _write_endpoints(self) -> None:
        path = self.state_dir / "endpoints.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.endpoints, indent=2) + "\n")
        os.replace(tmp, path)

    async def stop(self) -> None:
        await self.faults.stop()
        for listener in self.listeners.values():
            await listener.stop()
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
        hook = self.online_hooks.get(dev.provider)
        if online and hook is not None:
            hook(dev)

    # -- records ------------------------------------------------------------------

    def stats_snapshot(self) -> dict[str, Any]:
        snap = self.stats.snapshot()
        reg = self.registry
        snap["devices"] = {
            p: {
                "live": sum(1 for d in reg.devices.values() if d.provider == p and d.installed),
                "total": sum(1 for d in reg.devices.values() if d.provider == p),
            }
            for p in ("apns", "fcm", "webpush")
        }
        snap["deliveries"] = reg.delivery_seq
        snap.update(self.faults.record.stats())
        return snap

    def prometheus(self) -> str:
        return self.stats.prometheus() + self.faults.record.prometheus()


async def serve(sim: Simulator, stop: asyncio.Event) -> None:
    await sim.start()
    try:
        await stop.wait()
    finally:
        await sim.stop()
