"""Where a simulator's Unix sockets live, and addresses that work whatever their path length.

The sockets of the simulator serving DIR live outside DIR, in a private directory named by
a digest of DIR's absolute path (``$XDG_RUNTIME_DIR/pushsim/<digest>/`` or
``/tmp/pushsim-<uid>/<digest>/``, mode 0700): a state directory then holds only files (it can
be copied or archived while the simulator runs), and whoever knows DIR finds the sockets.

A Unix socket address holds at most 107 bytes; a longer path is reached through
``/proc/self/fd/N/`` of a descriptor held open on its directory (Linux), which is short and
names the same file.
"""

from __future__ import annotations

import functools
import hashlib
import os
import socket
from pathlib import Path

_MAX_ADDRESS = 100  # bytes; sun_path holds 108 with its terminating NUL
FRONT_DOOR_SOCKET = "frontdoor.sock"
CONTROL_SOCKET = "control.sock"


def socket_dir(state_dir: Path) -> Path:
    """The private directory holding the sockets of the simulator serving ``state_dir``."""
    digest = hashlib.sha256(os.fsencode(state_dir.resolve())).hexdigest()[:16]
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) / "pushsim" if runtime else Path(f"/tmp/pushsim-{os.getuid()}")
    directory = base / digest
    base.parent.mkdir(parents=True, exist_ok=True)
    for d in (base, directory):
        d.mkdir(mode=0o700, exist_ok=True)
        if d.stat().st_uid != os.getuid():
            raise PermissionError(f"{d}: expected a directory of this user, not another's")
        d.chmod(0o700)
    return directory


def front_door_socket(state_dir: Path) -> Path:
    return socket_dir(state_dir) / FRONT_DOOR_SOCKET


def control_socket(state_dir: Path) -> Path:
    return socket_dir(state_dir) / CONTROL_SOCKET


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
