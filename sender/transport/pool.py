"""Connections to one origin, and requests that survive GOAWAY.

A request goes to the least-loaded connection with a free stream; a request the peer never
processed (:class:`Unprocessed`) is sent again on another connection without counting an
attempt. A connection lost with the request in flight raises :class:`ConnectionLost`: it
may have been processed, so callers retry it (at-least-once).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from urllib.parse import urlsplit

from sender.transport.connection import H2Connection
from sender.transport.streams import Connection, ConnectionLost, Response, Unprocessed

MAX_CONNECTIONS = 32  # however narrow the peer's stream limit


class H2Pool:
    """Connections to one origin; a request goes to the least-loaded connection with room.

    A new connection opens when every open one is full and the pool is below
    ``max_connections``, or below as many connections as the requests in hand need at the
    peer's stream limit: FCM allows 100 streams a connection and answers a client over that
    with GOAWAY, so a sender with more in flight needs more connections, not a wider one.
    That limit is the widest one a connection of this pool was granted by the time it
    answered (APNs grants 1 stream until the first valid token and narrows to 1 after a
    rejection: neither is its width). :class:`Unprocessed` failures are retried on another
    connection (bounded), so GOAWAY and refused streams never cost the caller an attempt.

    Tagged requests (``auth=``: a callable giving the current ``authorization`` value) go
    only to connections carrying that same value: APNs refuses a provider-token change on
    one connection sooner than ``tag_min_interval`` after the last
    (TooManyProviderTokenUpdates), so a connection whose tag cannot change yet is retired
    gracefully (its streams finish, then it closes) and a fresh one takes the new token.
    """

    def __init__(
        self,
        origin: str,
        ssl_context: ssl.SSLContext | None,
        *,
        max_connections: int = 2,
        connect_timeout: float = 5.0,
        tag_min_interval: float | None = None,
    ) -> None:
        parts = urlsplit(origin)
        self.scheme = parts.scheme or "https"
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if self.scheme == "https" else 80)
        self.authority = parts.netloc
        self.ssl_context = ssl_context if self.scheme == "https" else None
        self.max_connections = max_connections
        self.connect_timeout = connect_timeout
        self.connections: list[H2Connection] = []
        self._connecting: asyncio.Task[H2Connection] | None = None
        self.opened = 0
        self.retired = 0
        self.peer_limit = 0  # the widest MAX_CONCURRENT_STREAMS seen with a response (0: none yet)
        self.closed = False
        self.tag_min_interval = tag_min_interval

    async def _open(self) -> H2Connection:
        loop = asyncio.get_running_loop()
        conn: H2Connection | None = None

        def factory() -> H2Connection:
            nonlocal conn
            conn = H2Connection(self.authority, self.scheme)
            return conn

        await asyncio.wait_for(
            loop.create_connection(
                factory,
                self.host,
                self.port,
                ssl=self.ssl_context,
                server_hostname=self.host if self.ssl_context else None,
            ),
            self.connect_timeout,
        )
        assert conn is not None
        if self.ssl_context is not None and conn.transport is not None:
            sslobj = conn.transport.get_extra_info("ssl_object")
            proto = sslobj.selected_alpn_protocol() if sslobj is not None else None
            if proto != "h2":
                conn.close()
                raise ConnectionLost(f"{self.authority} does not offer h2 (ALPN {proto!r})")
        try:
            await asyncio.wait_for(asyncio.shield(conn.settings_received), self.connect_timeout)
        except TimeoutError:
            pass
        self.opened += 1
        return conn

    def retire(self, conn: Connection) -> None:
        """Stop using ``conn``: it finishes what is in flight, then closes."""
        if conn in self.connections:
            self.connections = [c for c in self.connections if c is not conn]
        if conn.available:
            self.retired += 1
        conn.retire()

    def _sort_tags(self, tag: bytes) -> None:
        now = asyncio.get_running_loop().time()
        interval = self.tag_min_interval
        for c in list(self.connections):
            if c.tag is None or c.tag == tag:
                continue
            if interval is not None and now - c.tag_since >= interval:
                c.tag, c.tag_since = tag, now  # old enough to take the new token
            else:
                self.retire(c)

    def _claim(self, conn: H2Connection, tag: bytes | None) -> H2Connection:
        if tag is not None and conn.tag is None:
            conn.tag, conn.tag_since = tag, asyncio.get_running_loop().time()
        return conn

    async def _connection(self, tag: bytes | None = None) -> H2Connection:
        while True:
            self.connections = [c for c in self.connections if c.available]
            if tag is not None:
                self._sort_tags(tag)
            best: H2Connection | None = None
            for c in self.connections:
                if c.has_free_slot and (best is None or c.load < best.load):
                    best = c
            if best is not None:
                return self._claim(best, tag)
            if len(self.connections) >= self._allowance():
                return self._claim(min(self.connections, key=lambda c: c.load), tag)
            conn = await self._opened()
            if conn.available and conn.tag is not None and tag is not None and conn.tag != tag:
                raise Unprocessed("new connection carries another token")
            if not conn.available:
                raise Unprocessed("new connection closed at once")
            if conn not in self.connections:
                self.connections.append(conn)
            if conn.has_free_slot or not self.peer_limit:
                return self._claim(conn, tag)
            # the requests that waited for it filled it: look again, at the peer's limit

    async def _opened(self) -> H2Connection:
        """A new connection, shared by every request that asked for one meanwhile."""
        if self._connecting is None or self._connecting.done():
            self._connecting = asyncio.ensure_future(self._open())
        task = self._connecting
        try:
            return await asyncio.shield(task)
        finally:
            if task.done() and self._connecting is task:
                self._connecting = None

    def _allowance(self) -> int:
        """How many connections the pool may hold now (every open one is full)."""
        limit = self.peer_limit
        if not limit:
            return self.max_connections
        demand = sum(c.load for c in self.connections) + 1
        return max(self.max_connections, min(MAX_CONNECTIONS, -(-demand // limit)))

    async def request(
        self,
        method: str,
        path: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes = b"",
        *,
        timeout: float = 30.0,  # noqa: ASYNC109 (a per-request response deadline)
        auth: Callable[[], bytes] | None = None,
        before_send: Callable[[], None] | None = None,
    ) -> Response:
        if self.closed:
            raise Unprocessed("pool closed")
        last: Exception | None = None
        for _ in range(4):
            try:
                if auth is not None:
                    tag = auth()
                    conn = await self._connection(tag)
                    h = [(b"authorization", tag), *headers]
                else:
                    conn = await self._connection()
                    h = headers
                resp = await conn.request(method, path, h, body, before_send, timeout)
                if conn.table.max_streams > self.peer_limit:
                    self.peer_limit = conn.table.max_streams
                return resp
            except Unprocessed as exc:
                last = exc
                continue
            except TimeoutError as exc:
                raise ConnectionLost(f"no response within {timeout}s") from exc
            except OSError as exc:
                raise ConnectionLost(f"cannot connect to {self.authority}: {exc}") from exc
        raise ConnectionLost(f"request unprocessed after retries: {last}")

    def close(self) -> None:
        self.closed = True
        for c in self.connections:
            c.close()
        self.connections.clear()


def client_ssl_context(ca_file: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca_file)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    return ctx
