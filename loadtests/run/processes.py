"""Child processes of a run (simulator, sender, Locust), always stopped on the way out.

Each child gets its own session (process group) so that stopping it also stops anything
it started; stop is SIGTERM, then SIGKILL after a grace period. ``ProcessGroup`` is a
context manager: leaving it -- normally, on an error or on Ctrl-C -- stops every child.
:func:`start_simulator`, :func:`start_sender` and :func:`start_locust` start the run's
parts (on 127.0.0.1, free ports) and wait until each says it is up.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO

from loadtests.locust.config import CONFIG_ENV
from loadtests.run import HarnessError

# found, not imported: importing it would monkey-patch this process with gevent
_LOCUST_SPEC = importlib.util.find_spec("loadtests.locust.locustfile")
assert _LOCUST_SPEC is not None and _LOCUST_SPEC.origin is not None
LOCUSTFILE = Path(_LOCUST_SPEC.origin)


class ProcessGroup:
    """The run's children by name. ``prefix(name)``, when given, is put before each child's
    command line (``ip netns exec NS``: the part runs on its host, see
    :mod:`loadtests.run.hosts`); ``cleanups`` run after every child is stopped."""

    def __init__(self, prefix: Callable[[str], list[str]] | None = None) -> None:
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[IO[bytes]] = []
        self.prefix = prefix
        self.cleanups: list[Callable[[], None]] = []

    def start(
        self,
        name: str,
        argv: list[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        log = open(log_path, "ab")
        self._logs.append(log)
        if self.prefix is not None:
            argv = [*self.prefix(name), *argv]
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
        self.children[name] = proc
        return proc

    def alive(self, name: str) -> bool:
        proc = self.children.get(name)
        return proc is not None and proc.poll() is None

    def stop(self, name: str, grace: float = 5.0) -> int | None:
        proc = self.children.get(name)
        if proc is None:
            return None
        if proc.poll() is None:
            _signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
        return proc.returncode

    def kill(self, name: str) -> int | None:
        """SIGKILL ``name``'s process group at once (a crash, not a stop) and reap it."""
        proc = self.children.get(name)
        if proc is None:
            return None
        if proc.poll() is None:
            _signal_group(proc, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        return proc.returncode

    def stop_all(self) -> None:
        # Load generators first, then the sender, then the simulator they talk to.
        for name in sorted(self.children, key=_stop_order):
            self.stop(name)
        for log in self._logs:
            with contextlib.suppress(OSError):
                log.close()
        self._logs.clear()
        while self.cleanups:
            self.cleanups.pop()()

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_all()


def _stop_order(name: str) -> int:
    if name.startswith("locust"):
        return 0
    if name.startswith("sender"):
        return 1
    return 3 if name == "postgres" else 2


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)


def wait_for_file(path: Path, timeout: float, *, alive: object = None) -> bool:
    """Wait (bounded) until ``path`` exists and is non-empty; stop early if ``alive()`` is false."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size > 0:
            return True
        if callable(alive) and not alive():
            return False
        time.sleep(0.05)
    return False


# -- the run's parts ------------------------------------------------------------------


def existing_simulator(state_dir: Path) -> dict[str, str]:
    """The endpoints of a simulator already running with ``--state-dir state_dir``."""
    ep = state_dir / "endpoints.json"
    if not ep.exists():
        raise HarnessError(
            f"--simulator {state_dir}: no endpoints.json (is the simulator running?)"
        )
    endpoints: dict[str, str] = json.loads(ep.read_text())
    return endpoints


async def start_simulator(
    procs: ProcessGroup,
    out: Path,
    *,
    seed: int,
    scenario_file: Path | None,
    startup_s: float,
    real_hosts: bool = False,
    dashboard: bool = False,
    host: str = "127.0.0.1",
) -> tuple[dict[str, str], Path]:
    """Start ``pushsim simulator`` (with the scenario's fault plan, if given); its endpoints
    and state directory once it has written ``endpoints.json``."""
    state = out / "simulator"
    argv = _pushsim(
        "simulator", "--state-dir", str(state), "--host", host, "--port", "0",
        "--seed", str(seed),
    )  # fmt: skip
    if scenario_file is not None:
        argv += ["--scenario", str(scenario_file)]
    if real_hosts:  # the sender runs under pushsim exec (--target-cmd)
        argv.append("--real-hosts")
    if dashboard:
        argv.append("--dashboard")
    procs.start("simulator", argv, out / "simulator.log")
    ok = await asyncio.to_thread(
        wait_for_file, state / "endpoints.json", startup_s, alive=lambda: procs.alive("simulator")
    )
    if not ok:
        raise HarnessError(died("the simulator did not start", out / "simulator.log"))
    endpoints: dict[str, str] = json.loads((state / "endpoints.json").read_text())
    return endpoints, state


async def start_sender(
    procs: ProcessGroup,
    out: Path,
    *,
    simulator_dir: str,
    startup_s: float,
    name: str = "sender",
    port: int = 0,
    store: list[str] | None = None,
    host: str = "127.0.0.1",
) -> str:
    """Start the reference sender on the simulator's state directory (as child ``name``,
    log ``OUT/<name>.log``, on ``port``, 0: any free one; ``store``: its store flags,
    default ``--db OUT/sender.db``); its URL once up."""
    ready = out / f"{name}.ready"
    ready.unlink(missing_ok=True)
    argv = _pushsim(
        "sender", "--simulator", simulator_dir, "--host", host, "--port", str(port),
        *(store or ["--db", str(out / "sender.db")]), "--ready-file", str(ready),
    )  # fmt: skip
    procs.start(name, argv, out / f"{name}.log")
    ok = await asyncio.to_thread(wait_for_file, ready, startup_s, alive=lambda: procs.alive(name))
    if not ok:
        what = "the sender" if name == "sender" else f"sender instance {name}"
        raise HarnessError(died(f"{what} did not start", out / f"{name}.log"))
    for _ in range(20):
        try:
            return str(json.loads(ready.read_text())["url"]).rstrip("/")
        except (ValueError, KeyError):
            await asyncio.sleep(0.05)
    raise HarnessError(f"the sender's ready file {ready} has no url")


def start_locust(
    procs: ProcessGroup,
    out: Path,
    *,
    host: str,
    config: Path,
    duration: float,
    workers: int,
    bind: str = "127.0.0.1",
) -> str:
    """Start Locust headless on the locustfile (a master, listening on ``bind``, and
    ``workers`` workers when above 0), writing its CSV and HTML next to the run's; the name
    of the process that ends the load (``locust`` or ``locust-master``)."""
    common = ["-f", str(LOCUSTFILE), "--host", host, "--loglevel", "WARNING"]
    env = {CONFIG_ENV: str(config), "PYTHONUNBUFFERED": "1"}
    head = [
        *_locust_bin(), *common, "--headless", "--run-time", f"{int(duration + 10)}s",
        "--stop-timeout", "3", "--csv", str(out / "locust"), "--csv-full-history",
        "--html", str(out / "locust.html"), "--only-summary", "--exit-code-on-error", "0",
    ]  # fmt: skip
    if workers <= 0:
        procs.start("locust", head, out / "locust.log", env)
        return "locust"
    port = _free_port()  # free here; a host of its own has every port free
    head += [
        "--master", "--master-bind-host", bind, "--master-bind-port", str(port),
        "--expect-workers", str(workers), "--expect-workers-max-wait", "30",
    ]  # fmt: skip
    procs.start("locust-master", head, out / "locust.log", env)
    for i in range(workers):
        argv = [
            *_locust_bin(), *common, "--worker", "--master-host", bind,
            "--master-port", str(port),
        ]  # fmt: skip
        procs.start(f"locust-worker-{i + 1}", argv, out / f"locust-worker-{i + 1}.log", env)
    return "locust-master"


def died(what: str, log: Path) -> str:
    """What went wrong, with the end of the part's log."""
    return f"{what}; see {log}:\n{_tail(log)}"


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _pushsim(*args: str) -> list[str]:
    return [sys.executable, "-m", "pushsim", *args]


def _locust_bin() -> list[str]:
    exe = Path(sys.executable).with_name("locust")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "locust"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
