"""The dashboard at work inside a running simulator: the tick, the event hub, hypercorn.

:class:`Dashboard` puts a :class:`~simulator.dashboard.meter.ResponseTap` in front of every
provider listener's handler, samples the simulator once per tick into a
:class:`~simulator.dashboard.board.Board`, fans the updates out to every open page
(:class:`Hub`), and serves the ASGI app with hypercorn in the simulator's own event loop, on
loopback: HTTP/2 and HTTP/1.1 over TLS with the simulator's server certificate (the pushsim
CA's), or plain HTTP/1.1 (and h2c) when the simulator runs without TLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import socket
from typing import Any

from aiohttp import web
from hypercorn.asyncio import serve
from hypercorn.config import Config

from simulator.dashboard.actions import Actions
from simulator.dashboard.asgi import DashboardApp
from simulator.dashboard.board import Board
from simulator.dashboard.guard import allowed_hosts
from simulator.dashboard.meter import Meter, ResponseTap
from simulator.dashboard.progress import RunProgress
from simulator.dashboard.view import SimulatorView, gather

log = logging.getLogger("pushsim.dashboard")
# hypercorn's own lines ("Running on ...", without the token) only when something is wrong
_hypercorn_log = logging.getLogger("pushsim.dashboard.hypercorn")
_hypercorn_log.setLevel(logging.WARNING)

TICK_SECONDS = 1.0
STOP_SECONDS = 3.0
QUEUE_DEPTH = 8  # updates waiting for a slow page before it is sent a fresh snapshot


class Hub:
    """The board, and the open event streams it feeds."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self.queues: set[asyncio.Queue[tuple[str, str] | None]] = set()
        self.seq = 0

    def subscribe(self) -> asyncio.Queue[tuple[str, str] | None]:
        queue: asyncio.Queue[tuple[str, str] | None] = asyncio.Queue(QUEUE_DEPTH)
        self.queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[tuple[str, str] | None]) -> None:
        self.queues.discard(queue)

    def snapshot_json(self) -> str:
        return json.dumps(self.board.snapshot(), separators=(",", ":"))

    def publish(self, update: dict[str, Any]) -> None:
        self.seq += 1
        data = json.dumps(update, separators=(",", ":"))
        for queue in list(self.queues):
            try:
                queue.put_nowait(("update", data))
            except asyncio.QueueFull:  # a page that fell behind starts over from a snapshot
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(("snapshot", self.snapshot_json()))

    def close(self) -> None:
        for queue in list(self.queues):
            while not queue.empty():
                queue.get_nowait()
            queue.put_nowait(None)


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host.strip("[]"), port))
    sock.listen(128)
    return sock


class Dashboard:
    def __init__(
        self,
        sim: SimulatorView,
        *,
        port: int = 0,
        tick: float = TICK_SECONDS,
        token: str | None = None,
    ) -> None:
        self.sim = sim
        self.port = port
        self.tick = tick
        self.token = token or secrets.token_urlsafe(24)
        self.meter = Meter()
        self.progress = RunProgress(sim.clock)
        self.hub = Hub(Board())
        self.url = ""
        self._stop = asyncio.Event()
        self._serving: asyncio.Task[None] | None = None
        self._ticking: asyncio.Task[None] | None = None

    @property
    def page_url(self) -> str:
        """The URL to open: the dashboard with its token."""
        return f"{self.url}/?token={self.token}"

    def register_control(self, app: web.Application) -> None:
        """The control API's ``/_sim/run/progress`` routes (see :mod:`.progress`)."""
        self.progress.routes(app)

    def instrument(self) -> None:
        """Put the tap in front of every listener's handler (fault gate and core behind it)."""
        for name, listener in self.sim.listeners.items():
            if not isinstance(listener.handler, ResponseTap):
                listener.handler = ResponseTap(name, listener.handler, self.meter, self.sim.clock)

    def _config(self, fd: int) -> Config:
        config = Config()
        config.bind = [f"fd://{fd}"]
        creds = self.sim.creds
        if self.sim.tls and creds is not None:
            config.certfile = str(creds.server_cert_file)
            config.keyfile = str(creds.server_key_file)
        config.alpn_protocols = ["h2", "http/1.1"]
        config.accesslog = None
        config.errorlog = _hypercorn_log
        config.graceful_timeout = 1.0
        config.keep_alive_max_requests = 1_000_000
        config.include_server_header = False
        return config

    async def start(self) -> dict[str, str]:
        """Serve; returns the endpoints.json entries (``dashboard``, ``dashboard_token``)."""
        self.instrument()
        sock = _listen(self.sim.host, self.port)
        port = int(sock.getsockname()[1])
        config = self._config(sock.detach())  # hypercorn owns the socket from here
        app = DashboardApp(
            Actions(self.sim), self.hub, allowed_hosts(self.sim.host, port), self.token
        )
        self._stop.clear()
        self.hub.publish(self.hub.board.step(gather(self.sim, self.meter, self.progress)))
        self._serving = asyncio.create_task(
            serve(app, config, shutdown_trigger=self._stop.wait, mode="asgi"),
            name="pushsim-dashboard",
        )
        self._serving.add_done_callback(_retrieve)
        self._ticking = asyncio.create_task(self._run(), name="pushsim-dashboard-tick")
        scheme = "https" if config.ssl_enabled else "http"
        host = f"[{self.sim.host}]" if ":" in self.sim.host else self.sim.host
        self.url = f"{scheme}://{host}:{port}"
        log.info("pushsim dashboard: %s", self.page_url)
        return {"dashboard": self.url, "dashboard_token": self.token}

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.tick)
            try:
                self.hub.publish(self.hub.board.step(gather(self.sim, self.meter, self.progress)))
            except Exception:  # the tick must outlive one bad sample
                log.exception("dashboard tick failed")

    async def stop(self) -> None:
        """Stop ticking, end the event streams, and shut hypercorn down (gracefully for up to
        :data:`STOP_SECONDS`; a client that never answers the TLS close is then dropped)."""
        if self._ticking is not None:
            self._ticking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticking
            self._ticking = None
        self.hub.close()
        self._stop.set()
        serving, self._serving = self._serving, None
        if serving is None:
            return
        done, _ = await asyncio.wait({serving}, timeout=STOP_SECONDS)
        if not done:
            log.warning("dashboard clients still connected after %g s: dropping them", STOP_SECONDS)
            serving.cancel()
            await asyncio.wait({serving}, timeout=1.0)
        elif not serving.cancelled() and serving.exception() is not None:
            log.error("the dashboard failed", exc_info=serving.exception())


def _retrieve(task: asyncio.Task[None]) -> None:
    """Read a cancelled serve task's outcome (hypercorn may end it with an error of its own)."""
    if not task.cancelled():
        task.exception()
