"""Runs inside the new namespace: loopback up, files bound, forwarder on, then COMMAND.

``python -m simulator.netns.inside --bind FILE=TARGET ... --forward PORT=SOCKET ...
[--expose SOCKET=PORT ...] -- COMMAND``: ``--forward`` pipes a loopback port here to a Unix
socket outside; ``--expose`` the other way, a Unix socket to a port here (COMMAND's API).

Exits with COMMAND's exit code (128 + N when a signal N ended it). SIGINT, SIGTERM and
SIGHUP received here are passed on to COMMAND.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import fcntl
import os
import signal
import socket
import struct
import sys
from pathlib import Path

from simulator.netns.forward import Address, Forwarder
from simulator.netns.sandbox import child_env

_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1
_MS_BIND = 4096
_NOT_FOUND = 127


def loopback_up() -> None:
    """``ip link set lo up``, by ioctl (no iproute2 needed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(s, _SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s, _SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | _IFF_UP))


def bind_file(src: Path, dst: Path) -> None:
    """``mount --bind src dst`` (private to this mount namespace)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(os.fsencode(src), os.fsencode(dst), None, _MS_BIND, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"cannot bind {src} over {dst}: {os.strerror(err)}")


def _pair(text: str) -> tuple[str, str]:
    left, sep, right = text.partition("=")
    if not sep or not left or not right:
        raise argparse.ArgumentTypeError(f"expected A=B, got {text!r}")
    return left, right


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="pushsim exec (inside the namespace)")
    p.add_argument("--bind", action="append", type=_pair, default=[])
    p.add_argument("--forward", action="append", type=_pair, default=[])
    p.add_argument("--expose", action="append", type=_pair, default=[])
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    if args.command[:1] == ["--"]:
        args.command = args.command[1:]
    if not args.command:
        p.error("no COMMAND")
    return args


async def run_command(command: list[str], forwarder: Forwarder) -> int:
    await forwarder.start()
    try:
        proc = await asyncio.create_subprocess_exec(*command, env=child_env(os.environ, {}))
    except OSError as exc:
        print(f"pushsim exec: {command[0]}: {exc.strerror or exc}", file=sys.stderr)
        await forwarder.stop()
        return _NOT_FOUND
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, proc.send_signal, sig)
    try:
        rc = await proc.wait()
    finally:
        await forwarder.stop()
    return 128 - rc if rc < 0 else rc


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    try:
        loopback_up()
        for src, dst in args.bind:
            if Path(dst).exists():
                bind_file(Path(src), Path(dst))
    except OSError as exc:
        print(f"pushsim exec: setting up the namespace: {exc}", file=sys.stderr)
        return 2
    routes: dict[Address, Address] = {int(port): Path(path) for port, path in args.forward}
    routes.update({Path(path): int(port) for path, port in args.expose})
    forwarder = Forwarder(routes)
    try:
        return asyncio.run(run_command(args.command, forwarder))
    except OSError as exc:  # a port already taken in the namespace, for one
        print(f"pushsim exec: forwarding: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
