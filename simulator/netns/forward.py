"""Loopback ports in the namespace, piped to the simulator's Unix sockets outside it.

Each accepted TCP connection on ``127.0.0.1:PORT`` opens a connection to the Unix socket
that port maps to and copies bytes both ways until either side closes. TLS passes through
untouched: the front door terminates it. The other way round (a Unix socket piped to a
port) exposes a server inside the namespace, such as a sender's API, to the outside.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Mapping
from pathlib import Path

from simulator.frontdoor.sockets import bind_unix, unix_address

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


Address = int | Path  # a TCP port on the forwarder's host, or a Unix socket


class Forwarder:
    """A listener at each key of ``routes``, each connection piped to its value.

    Ports listen and connect on ``host`` (port 0: any free port, see :meth:`bound`);
    paths are Unix sockets, reached whatever their length.
    """

    def __init__(self, routes: Mapping[Address, Address], host: str = "127.0.0.1") -> None:
        self.routes = dict(routes)
        self.host = host
        self._servers: dict[Address, asyncio.Server] = {}

    async def start(self) -> None:
        for listen, to in self.routes.items():
            serve = functools.partial(self._serve, to=to)
            if isinstance(listen, Path):
                server = await asyncio.start_unix_server(serve, sock=bind_unix(listen))
            else:
                server = await asyncio.start_server(serve, self.host, listen, reuse_address=True)
            self._servers[listen] = server

    def bound(self, listen: Address) -> int:
        """The port the listener for ``listen`` took (``listen`` may be 0)."""
        return int(self._servers[listen].sockets[0].getsockname()[1])

    async def _connect(self, to: Address) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if isinstance(to, Path):
            return await asyncio.open_unix_connection(unix_address(to))
        return await asyncio.open_connection(self.host, to)

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, to: Address
    ) -> None:
        try:
            up_reader, up_writer = await self._connect(to)
        except OSError as exc:
            log.debug("forwarding to %s: %s", to, exc)
            writer.transport.abort()
            return
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except asyncio.CancelledError:  # the loop is ending: drop the connection quietly
            up_writer.transport.abort()
            writer.transport.abort()
            return
        finally:
            await _close(up_writer)
            await _close(writer)

    async def stop(self) -> None:
        for listen, server in self._servers.items():
            server.close()
            if isinstance(listen, Path):
                listen.unlink(missing_ok=True)
        self._servers.clear()
