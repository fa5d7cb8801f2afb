"""Testing helpers shipped with pushsim: run a real simulator on loopback from a test.

``running_simulator`` starts a :class:`~simulator.app.Simulator` in a background thread
with its own event loop (real sockets, port 0), yields a handle with its endpoints and
state, and stops it on exit. ``handle.call(fn)`` runs ``fn`` on the simulator's loop,
for inspecting or changing state safely from the test's thread.

``simulator_process`` runs ``pushsim simulator`` as a child process instead (for
benchmarks and multi-worker tests). ``apns_provider_token`` signs an APNs provider
token with the key a state dir holds.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import jwt

from pushsim.clock import Clock
from simulator.app import Simulator

T = TypeVar("T")

# the directory holding the simulator package: the checkout, or site-packages once installed
ROOT = Path(__file__).resolve().parents[2]


def apns_credentials(state_dir: Path) -> tuple[dict[str, str], str]:
    """The APNs key's metadata (``key_id``, ``team_id``, ``bundle_id``) and its PEM text."""
    meta: dict[str, str] = json.loads((state_dir / "apns" / "apns.json").read_text())
    key = (state_dir / "apns" / f"AuthKey_{meta['key_id']}.p8").read_text()
    return meta, key


def apns_provider_token(
    state_dir: Path,
    iat: float | None = None,
    kid: str | None = None,
    team: str | None = None,
    key_pem: str | None = None,
) -> str:
    """An ES256 provider token signed with the state dir's key (issued now unless ``iat``)."""
    meta, key = apns_credentials(state_dir)
    return jwt.encode(
        {"iss": team or meta["team_id"], "iat": int(iat if iat is not None else time.time())},
        key_pem or key,
        algorithm="ES256",
        headers={"kid": kid or meta["key_id"]},
    )


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


def _pythonpath() -> str:
    """This copy of pushsim first, then whatever PYTHONPATH the caller had."""
    return os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)


@contextmanager
def simulator_process(
    state_dir: Path,
    *args: str,
    env: dict[str, str] | None = None,
    stderr: int | None = subprocess.DEVNULL,
    timeout: float = 30.0,
) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, str]]]:
    """Run ``pushsim simulator --state-dir STATE_DIR ARGS...`` as a child process.

    Waits for ``endpoints.json`` (raising ``RuntimeError`` if the process exits or
    ``timeout`` passes first), yields the process and its endpoints, and stops it with
    SIGTERM (then SIGKILL after 10 s) on exit.
    """
    (state_dir / "endpoints.json").unlink(missing_ok=True)  # only the new process's file counts
    proc = subprocess.Popen(
        [sys.executable, "-m", "pushsim", "simulator", "--state-dir", str(state_dir), *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": _pythonpath(), **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    try:
        endpoints_file = state_dir / "endpoints.json"
        deadline = time.monotonic() + timeout
        while not endpoints_file.exists():
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RuntimeError(f"the simulator exited with {proc.returncode}\n{err}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the simulator did not start within {timeout} s")
            time.sleep(0.05)
        endpoints: dict[str, str] = json.loads(endpoints_file.read_text())
        yield proc, endpoints
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
