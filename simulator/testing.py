"""Testing helpers shipped with pushsim: run a real simulator on loopback from a test.

``running_simulator`` starts a :class:`~simulator.app.Simulator` in a background thread
with its own event loop (real sockets, port 0), yields a handle with its endpoints and
state, and stops it on exit. ``handle.call(fn)`` runs ``fn`` on the simulator's loop,
for inspecting or changing state safely from the test's thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from simulator.app import Simulator
from simulator.clock import Clock

T = TypeVar("T")


class SimulatorHandle:
    def __init__(self, sim: Simulator, loop: asyncio.AbstractEventLoop) -> None:
        self.sim = sim
        self.loop = loop

    @property
    def endpoints(self) -> dict[str, str]:
        return self.sim.endpoints

    @property
    def state_dir(self) -> Path:
        return self.sim.state_dir

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn()`` on the simulator's event loop and return its result."""
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                fut.set_result(fn())
            except BaseException as exc:  # handed back to the caller
                fut.set_exception(exc)

        self.loop.call_soon_threadsafe(run)
        return fut.result(timeout=10)

    def control(self, method: str, path: str, body: Any = None) -> Any:
        """A control-API call over the real socket; returns the decoded JSON."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.endpoints["control"] + path, data=data, method=method)
        req.add_header("content-type", "application/json")
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"null")

    def mint(self, provider: str, count: int = 1, **extra: Any) -> list[dict[str, Any]]:
        devices: list[dict[str, Any]] = self.control(
            "POST", "/_sim/devices", {"provider": provider, "count": count, **extra}
        )["devices"]
        return devices


@contextmanager
def running_simulator(
    state_dir: Path,
    *,
    tls: bool = True,
    seed: int | None = 1,
    clock: Clock | None = None,
    configure: Callable[[Simulator], None] | None = None,
    **kwargs: Any,
) -> Iterator[SimulatorHandle]:
    sim = Simulator(state_dir, tls=tls, seed=seed, clock=clock, **kwargs)
    if configure is not None:
        configure(sim)
    loop = asyncio.new_event_loop()
    started: concurrent.futures.Future[None] = concurrent.futures.Future()
    stop = asyncio.Event()

    async def main() -> None:
        try:
            await sim.start()
        except BaseException as exc:
            started.set_exception(exc)
            return
        started.set_result(None)
        await stop.wait()
        await sim.stop()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    try:
        started.result(timeout=30)
        yield SimulatorHandle(sim, loop)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=10)
        loop.close()
