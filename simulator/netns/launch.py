"""The simulator a namespace reaches: the one serving DIR, or one started for COMMAND's life.

A simulator serves DIR when ``DIR/endpoints.json`` exists and its front door socket
(:func:`simulator.frontdoor.sockets.front_door_socket`) accepts a connection. Otherwise
``pushsim simulator --state-dir DIR --real-hosts`` is started as a child (its log in
``DIR/exec/simulator.log``) and stopped when COMMAND ends.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from simulator.frontdoor.names import PORTS
from simulator.frontdoor.sockets import control_socket, front_door_socket, unix_address

START_TIMEOUT = 60.0
_PROVIDER_ENDPOINTS = ("apns", "apns_sandbox", "fcm", "webpush")


class LaunchError(Exception):
    """No simulator could be reached or started for the state directory."""


def serving(state_dir: Path) -> bool:
    if not (state_dir / "endpoints.json").is_file():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(2.0)
        try:
            s.connect(unix_address(front_door_socket(state_dir)))
        except OSError:
            return False
    return True


def _wait_started(proc: subprocess.Popen[bytes], state_dir: Path, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not serving(state_dir):
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
            raise LaunchError(f"the simulator exited with {proc.returncode}: {tail[0]}")
        if time.monotonic() > deadline:
            raise LaunchError(f"the simulator did not start within {START_TIMEOUT:g} s ({log})")
        time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@contextlib.contextmanager
def simulator_for(state_dir: Path) -> Iterator[dict[str, str]]:
    """The endpoints of the simulator serving ``state_dir``, started here when none does."""
    if serving(state_dir):
        yield json.loads((state_dir / "endpoints.json").read_text())
        return
    log = state_dir / "exec" / "simulator.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "pushsim", "simulator", "--state-dir", str(state_dir)]
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [*argv, "--real-hosts"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches COMMAND; the simulator is stopped after
        )
    try:
        _wait_started(proc, state_dir, log)
        yield json.loads((state_dir / "endpoints.json").read_text())
    finally:
        _stop(proc)


def forwards(state_dir: Path, endpoints: dict[str, str]) -> dict[int, Path]:
    """Namespace loopback port -> the Unix socket it is piped to.

    The real ports (443, 2197, 2195, 2196) and the simulator's own provider ports go to the
    front door, the control port to the control socket: so the URLs in ``endpoints.json``
    work inside the namespace as they do outside.
    """
    door, control = front_door_socket(state_dir), control_socket(state_dir)
    out: dict[int, Path] = {}
    for name in _PROVIDER_ENDPOINTS:
        url = urlsplit(endpoints.get(name, ""))
        if url.scheme == "https" and url.port:
            out[url.port] = door
    control_url = urlsplit(endpoints.get("control", ""))
    if control_url.port:
        out[control_url.port] = control
    out.update(dict.fromkeys(PORTS, door))
    return out
