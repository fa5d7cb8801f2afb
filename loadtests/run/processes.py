"""Child processes of a run (simulator, sender, Locust), always stopped on the way out.

Each child gets its own session (process group) so that stopping it also stops anything
it started; stop is SIGTERM, then SIGKILL after a grace period. ``ProcessGroup`` is a
context manager: leaving it -- normally, on an error or on Ctrl-C -- stops every child.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import IO


class ProcessGroup:
    def __init__(self) -> None:
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[IO[bytes]] = []

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

    def stop_all(self) -> None:
        # Load generators first, then the sender, then the simulator they talk to.
        for name in sorted(self.children, key=_stop_order):
            self.stop(name)
        for log in self._logs:
            with contextlib.suppress(OSError):
                log.close()
        self._logs.clear()

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_all()


def _stop_order(name: str) -> int:
    if name.startswith("locust"):
        return 0
    if name == "sender":
        return 1
    return 2


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
