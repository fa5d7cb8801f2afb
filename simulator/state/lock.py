"""One simulator per state directory.

Two simulators on one ``--state-dir`` would overwrite each other's ``endpoints.json`` and
``fcm/service-account.json`` (its ``token_uri``). The running simulator holds an exclusive
``flock`` on ``DIR/simulator.lock``; the kernel releases it when the process ends, however it
ends, so a simulator that gets the lock knows any ``endpoints.json`` in the directory is stale.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_NAME = "simulator.lock"


class StateDirInUse(RuntimeError):
    """Another running simulator holds this state directory."""


class StateDirLock:
    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise StateDirInUse(
                f"{self.path.parent} is in use by another simulator (pid {holder})"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
