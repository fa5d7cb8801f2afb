"""Loopback ports in the namespace, piped to the simulator's Unix sockets outside it.

Each accepted TCP connection on ``127.0.0.1:PORT`` opens a connection to the Unix socket
that port maps to and copies bytes both ways until either side closes. TLS passes through
untouched: the front door terminates it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Mapping
from pathlib import Path

from simulator.frontdoor.sockets import unix_address

log = logging.getLogger("pushsim.exec")

_CHUNK = 256 * 1024


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.transport.abort()


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError, OSError):
        await writer.wait_closed()


class Forwarder:
    """TCP listeners on ``host`` for each port in ``ports``, each piped to its socket."""

    def __init__(self, ports: Mapping[int, Path], host: str = "127.0.0.1") -> None:
        self.ports = dict(ports)
        self.host = host
        self._servers: list[asyncio.Server] = []

    async def start(self) -> None:
        for port, path in self.ports.items():
            serve = functools.partial(self._serve, path=path)
            server = await asyncio.start_server(serve, self.host, port, reuse_address=True)
            self._servers.append(server)

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: Path
    ) -> None:
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(unix_address(path))
        except OSError as exc:
            log.warning("pushsim exec: %s: %s (is the simulator still running?)", path, exc)
            writer.transport.abort()
            return
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            await _close(up_writer)
            await _close(writer)

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        self._servers.clear()
