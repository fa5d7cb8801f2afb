"""Unix socket addresses that work whatever the state directory's path length.

A Unix socket address holds at most 107 bytes; a state directory deep in a temporary
tree can be longer. Such a path is reached through ``/proc/self/fd/N/`` of a descriptor
held open on its directory (Linux), which is short and names the same file.
"""

from __future__ import annotations

import functools
import os
import socket
from pathlib import Path

_MAX_ADDRESS = 100  # bytes; sun_path holds 108 with its terminating NUL


@functools.cache
def _dir_fd(directory: str) -> int:
    # held for the life of the process: the short name is valid only while it is open
    return os.open(directory, os.O_PATH | os.O_DIRECTORY)


def unix_address(path: Path) -> str:
    """An address for ``path`` that fits in a ``sockaddr_un``."""
    text = str(path)
    if len(os.fsencode(text)) <= _MAX_ADDRESS:
        return text
    return f"/proc/self/fd/{_dir_fd(str(path.parent))}/{path.name}"


def bind_unix(path: Path) -> socket.socket:
    """A stream socket bound (not yet listening) at ``path``, replacing a stale one."""
    path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(unix_address(path))
        path.chmod(0o600)  # the front door is as private as the credentials beside it
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock
