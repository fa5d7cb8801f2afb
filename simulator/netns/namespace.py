"""The ``unshare`` command line for a private network and mount namespace, and whether it works.

As root, ``unshare --net --mount``; otherwise a user namespace maps the caller to root in it
(``--user --map-root-user``), which is enough to bring loopback up, bind files over
``/etc/hosts`` and listen on port 443, all without privileges outside.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

_PROBE_TIMEOUT = 15.0


def unshare_argv() -> list[str]:
    flags = ["--net", "--mount"]
    if os.geteuid() != 0:
        flags = ["--user", "--map-root-user", *flags]
    return ["unshare", *flags]


def unavailable() -> str | None:
    """Why a namespace cannot be made here, in a few words; None when it can."""
    if not sys.platform.startswith("linux"):
        return f"network namespaces need Linux (this is {sys.platform})"
    if shutil.which("unshare") is None:
        return "no 'unshare' command (util-linux)"
    try:
        done = subprocess.run(
            [*unshare_argv(), "true"], capture_output=True, text=True, timeout=_PROBE_TIMEOUT
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"'unshare' failed: {exc}"
    if done.returncode != 0:
        said = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        return f"namespaces are not permitted here ({said})"
    return None


def inside_argv(
    binds: list[tuple[Path, Path]],
    forwards: dict[int, Path],
    command: list[str],
    exposes: dict[Path, int] | None = None,
) -> list[str]:
    """The whole command: unshare, then :mod:`simulator.netns.inside`, then COMMAND."""
    argv = [*unshare_argv(), sys.executable, "-m", "simulator.netns.inside"]
    for src, dst in binds:
        argv += ["--bind", f"{src}={dst}"]
    for port, path in forwards.items():
        argv += ["--forward", f"{port}={path}"]
    for path, port in (exposes or {}).items():
        argv += ["--expose", f"{path}={port}"]
    return [*argv, "--", *command]
