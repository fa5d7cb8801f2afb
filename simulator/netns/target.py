"""``pushsim run --target-cmd COMMAND``: the user's sender, in a namespace of its own.

COMMAND (run by ``/bin/sh -c``, with ``PUSHSIM_STATE_DIR`` naming the run's simulator)
reaches the simulator under the real hostnames, as with ``pushsim exec``. Its API listens
inside the namespace at the ``--target`` URL's port; a Unix socket exposes that port and a
forwarder on a free loopback port outside hands it to the harness, so neither the sender
nor the harness is rewired.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

from simulator.netns.command import namespaced
from simulator.netns.forward import Forwarder


class Starter(Protocol):
    """What starts a child process of a run (``loadtests.run.processes.ProcessGroup``)."""

    def start(
        self,
        name: str,
        argv: list[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]: ...


def target_port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


class TargetCommand:
    """COMMAND in a namespace reaching ``state_dir``'s simulator; its API reachable outside."""

    def __init__(
        self, state_dir: Path, endpoints: Mapping[str, str], command: str, target: str
    ) -> None:
        self.state_dir = state_dir
        self.endpoints = dict(endpoints)
        self.command = command
        self.target = target
        self.port = target_port(target)
        self.socket = state_dir / "exec" / f"target-{self.port}.sock"
        self.forwarder = Forwarder({0: self.socket})

    async def start(self, procs: Starter, name: str, log_path: Path) -> str:
        """Start COMMAND as ``name``; the URL (outside) that reaches its ``--target`` URL."""
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        argv, env = namespaced(
            self.state_dir,
            self.endpoints,
            ["/bin/sh", "-c", self.command],
            exposes={self.socket: self.port},
        )
        procs.start(name, argv, log_path, env)
        await self.forwarder.start()
        parts = urlsplit(self.target)
        outside = f"127.0.0.1:{self.forwarder.bound(0)}"
        return urlunsplit((parts.scheme, outside, parts.path, "", "")).rstrip("/")

    async def stop(self) -> None:
        await self.forwarder.stop()


def target_cmd_error(target: str | None) -> str | None:
    """Why ``--target-cmd`` cannot run here (or without ``--target``); None when it can."""
    if not target:
        return (
            "--target-cmd needs --target URL: where COMMAND's sender listens inside its "
            "namespace (for example http://127.0.0.1:8080)"
        )
    from simulator.netns.namespace import unavailable

    why = unavailable()
    return f"--target-cmd: {why}; see 'pushsim hosts'" if why else None
