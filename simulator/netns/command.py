"""COMMAND wrapped for a namespace of its own, and run in the foreground.

Used by ``pushsim exec`` and by ``pushsim run --target-cmd`` (the user's sender started
inside the same kind of namespace).
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

from simulator.netns.launch import forwards
from simulator.netns.namespace import inside_argv
from simulator.netns.sandbox import prepare


def namespaced(
    state_dir: Path,
    endpoints: Mapping[str, str],
    command: list[str],
    base_env: Mapping[str, str] | None = None,
    exposes: dict[Path, int] | None = None,
) -> tuple[list[str], dict[str, str]]:
    """(argv, environment) running ``command`` in a namespace reaching ``state_dir``'s simulator.

    ``exposes`` maps Unix sockets (created outside's view of the filesystem) to ports inside
    the namespace, so a server COMMAND starts can be reached from outside.
    """
    sandbox = prepare(state_dir, Path(endpoints["ca_file"]))
    argv = inside_argv(sandbox.binds(), forwards(state_dir, dict(endpoints)), command, exposes)
    return argv, sandbox.env(os.environ if base_env is None else base_env)


def run_foreground(argv: list[str], env: dict[str, str]) -> int:
    """Run ``argv``, pass SIGTERM and SIGHUP on to it, and return its exit code.

    SIGINT from a terminal reaches the child directly (same process group); here it only
    must not stop the wait.
    """
    proc = subprocess.Popen(argv, env=env)

    def forward(signum: int, frame: FrameType | None) -> None:
        if proc.poll() is None:
            proc.send_signal(signum)

    wanted = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, forward) for sig in wanted}
    try:
        rc = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - rc if rc < 0 else rc
