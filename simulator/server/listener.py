"""A provider's listening socket and its client connections.

One port speaks both protocols: with TLS, ALPN picks ``h2`` or ``http/1.1``; without
TLS (or with TLS but no ALPN, as aioapns' default context does), the first bytes are
sniffed for the HTTP/2 connection preface (h2c with prior knowledge), anything else is
HTTP/1.1. The connection then hands its bytes to that protocol's driver
(:mod:`~simulator.server.http2`, :mod:`~simulator.server.http11`), runs each complete
request through the listener's handler, and has :mod:`~simulator.server.actions` carry
out the action it returns. It also owns what is the same for both protocols: the idle
timeout, closing, aborting with a TCP reset, and GOAWAY on shutdown; and the bounds on
what one peer can make it hold (:mod:`~simulator.server.limits`): the connection cap
(:mod:`~simulator.server.admission`), the opening and header-block deadlines
(:mod:`~simulator.server.watchdog`), and reading paused while the write buffer is full.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import ssl
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from pushsim.clock import Clock, SystemClock
from simulator.server.actions import execute
from simulator.server.admission import ADMISSION, raise_descriptor_limit
from simulator.server.driver import Driver
from simulator.server.http2 import H2Driver
from simulator.server.http11 import H11Driver
from simulator.server.limits import PeerLimits
from simulator.server.sniffer import Sniffer
from simulator.server.streamlimit import StreamRules
from simulator.server.watchdog import Deadlines, Watchdog
from simulator.wire import Action, ConnectionInfo, Handler, Request, Respond

log = logging.getLogger("pushsim.server")

_conn_ids = itertools.count(1)
CLOSE_GRACE = 5.0  # seconds a closing connection may take to hand over its last bytes

_INTERNAL_ERROR = Respond(
    500, (("content-type", "application/json"),), b'{"reason":"InternalServerError"}'
)


@dataclass
class ListenerOptions:
    """Per-listener transport settings."""

    max_concurrent_streams: int = 1000  # in a connection's first SETTINGS
    # The most streams a connection may hold open (None: max_concurrent_streams); a
    # provider that grants more later (APNs, after the first valid token) says how many.
    stream_ceiling: int | None = None
    strict_before_ack: bool = False  # a lowered limit binds when sent, not when acknowledged
    # GOAWAY debug data for a client over an acknowledged limit (None: refuse the stream)
    stream_violation_debug: bytes | None = None
    initial_window_size: int = 1 << 20
    # seconds without a request before GOAWAY (Google's and the push services' front ends
    # close idle connections after minutes; APNs sets its own hour)
    idle_timeout: float | None = 300.0
    idle_debug_data: bytes = b""
    shutdown_debug_data: bytes = b""
    reuse_port: bool = False  # SO_REUSEPORT: worker processes may bind the same port
    peers: PeerLimits = field(default_factory=PeerLimits)  # what one peer may make it hold


def stream_rules(opts: ListenerOptions) -> StreamRules:
    """The stream-limit rules of a new connection to a listener with ``opts``."""
    ceiling = opts.stream_ceiling or opts.max_concurrent_streams
    return StreamRules(opts.max_concurrent_streams, ceiling, opts.strict_before_ack)


class ProviderProtocol(asyncio.Protocol):
    """One client connection to a provider listener."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.transport: asyncio.Transport | None = None
        self.info: ConnectionInfo | None = None
        self.driver: Driver = Sniffer(self)
        self.closed = False
        self._idle_handle: asyncio.TimerHandle | None = None
        self._last_active = 0.0
        self._loop_time: Callable[[], float] = lambda: 0.0
        self.opened_at = 0.0
        self.head_since: float | None = None  # the watchdog's mark on an unfinished head
        self._admitted = False
        self._paused: set[str] = set()  # why reading is paused ("writes", "busy")

    # -- connection lifecycle -------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio.Transport subclasses
        listener = self.listener
        peers = listener.options.peers
        if not ADMISSION.admit(len(listener.connections), peers.max_connections):
            self.closed = True
            transport.close()
            return
        self._admitted = True
        listener.connections.add(self)
        listener.watchdog.ensure_running()
        transport.set_write_buffer_limits(peers.write_buffer_high, peers.write_buffer_low)  # type: ignore[attr-defined]
        sslobj: ssl.SSLObject | None = transport.get_extra_info("ssl_object")
        peer = transport.get_extra_info("peername")
        self.info = ConnectionInfo(
            conn_id=next(_conn_ids),
            listener=self.listener.name,
            http_version="?",
            tls=sslobj is not None,
            peer=(peer[0], peer[1]) if peer else None,
            opened_at=self.listener.clock.monotonic(),
        )
        self.opened_at = self.info.opened_at
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        if sslobj is not None:
            self.info.peer_cert = sslobj.getpeercert() or None
            self.info.peer_cert_der = sslobj.getpeercert(binary_form=True)
            alpn = sslobj.selected_alpn_protocol()
            if alpn == "h2":
                self.start_h2(b"")
            elif alpn is not None:
                self.start_h11(b"")
            # no ALPN (aioapns' default context, for one): sniff for the h2 preface
        self.arm_idle()

    def start_h2(self, initial: bytes) -> None:
        assert self.transport is not None and self.info is not None
        opts = self.listener.options
        driver = H2Driver(
            self,
            self.transport,
            self.info,
            stream_rules(opts),
            opts.initial_window_size,
            opts.stream_violation_debug,
            opts.peers,
        )
        self.driver = driver
        driver.start(initial)

    def start_h11(self, initial: bytes) -> None:
        assert self.transport is not None and self.info is not None
        driver = H11Driver(self, self.transport, self.info, self.listener.options.peers)
        self.driver = driver
        driver.start(initial)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.listener.connections.discard(self)
        if self._admitted:
            self._admitted = False
            ADMISSION.release()
        if self._idle_handle is not None:
            self._idle_handle.cancel()

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            self.driver.receive(data)
        except Exception:  # no input may crash the server: drop this connection only
            log.exception("connection %s: unexpected error", self.info and self.info.conn_id)
            self.abort()

    def run(self, req: Request) -> None:
        """Hand ``req`` to the listener's handler and execute the action it returns."""
        try:
            action: Action = self.listener.handler.handle(req)
        except Exception:
            log.exception("handler failed on %s %s", req.method, req.path)
            action = _INTERNAL_ERROR
        if req.conn.pending_settings is not None:
            self.driver.send_pending_settings(req.conn)
        execute(self, req, action)

    def unprocessed(self, req: Request, reason: str) -> None:
        sink = self.listener.on_unprocessed
        if sink is not None:
            sink(req, reason)

    def abort(self) -> None:
        """Close with a TCP reset (SO_LINGER 0)."""
        if self.transport is None or self.closed:
            return
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        self.closed = True
        self.transport.abort()

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.closed = True
            if "writes" in self._paused:  # a peer that does not read would hold a close open
                self.transport.abort()
                return
            self.transport.close()  # once the write buffer is out: a grace for that
            asyncio.get_running_loop().call_later(CLOSE_GRACE, self._closed_by_now)

    def _closed_by_now(self) -> None:
        if self._admitted and self.transport is not None:  # connection_lost has not come
            self.transport.abort()

    # -- bounds on one peer (simulator.server.limits) -----------------------------

    def pause_writing(self) -> None:  # the write buffer is over its high-water mark
        self.pause_reading("writes")

    def resume_writing(self) -> None:
        self.resume_reading("writes")

    def pause_reading(self, reason: str) -> None:
        if not self._paused and self.transport is not None and not self.closed:
            self.transport.pause_reading()
        self._paused.add(reason)

    def resume_reading(self, reason: str) -> None:
        paused = self._paused
        if reason in paused:
            paused.discard(reason)
            if not paused and self.transport is not None and not self.closed:
                self.transport.resume_reading()

    def now(self) -> float:
        return self.listener.clock.monotonic()

    def go_away(
        self, error_code: int = 0, debug_data: bytes = b"", last_stream_id: int | None = None
    ) -> None:
        """Send GOAWAY (h2) and close; on HTTP/1.1 just close."""
        if self.closed:
            return
        self.driver.go_away(error_code, debug_data, last_stream_id)
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, self.close)

    def arm_idle(self) -> None:
        """Note activity; one timer per connection checks the deadline (no per-request timers)."""
        if self._idle_handle is not None:  # the common case: a timer is already armed
            self._last_active = self._loop_time()
            return
        timeout = self.listener.options.idle_timeout
        if not timeout:
            return
        loop = asyncio.get_running_loop()
        self._loop_time = loop.time
        self._last_active = loop.time()
        self._idle_handle = loop.call_later(timeout, self._idle_expired)

    def _idle_expired(self) -> None:
        self._idle_handle = None
        timeout = self.listener.options.idle_timeout
        if self.closed or not timeout:
            return
        loop = asyncio.get_running_loop()
        remaining = self._last_active + timeout - loop.time()
        if remaining <= 0 and not self.driver.busy():
            self.go_away(0, self.listener.options.idle_debug_data)
        else:
            self._idle_handle = loop.call_later(max(remaining, timeout / 10), self._idle_expired)


class Listener:
    """A provider's listening socket, its live connections, and its handler."""

    def __init__(
        self,
        name: str,
        handler: Handler,
        ssl_context: ssl.SSLContext | None,
        options: ListenerOptions | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.name = name
        self.handler = handler
        self.ssl_context = ssl_context
        self.options = options or ListenerOptions()
        self.clock = clock or SystemClock()
        self.connections: set[ProviderProtocol] = set()
        # Told of every request a connection will never process (refused, lost to GOAWAY).
        self.on_unprocessed: Callable[[Request, str], None] | None = None
        self.server: asyncio.Server | None = None
        self.host = "127.0.0.1"
        self.port = 0
        self.reuse_port = False
        self.watchdog = Watchdog(self._deadlines, lambda: self.connections, self.clock.monotonic)

    def _deadlines(self) -> Deadlines:
        peers = self.options.peers
        return Deadlines(peers.preface_timeout, peers.header_timeout)

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    def _factory(self) -> ProviderProtocol:
        return ProviderProtocol(self)

    async def start(self, host: str, port: int, sock: socket.socket | None = None) -> None:
        loop = asyncio.get_running_loop()
        self.host = host
        raise_descriptor_limit()
        # a TLS handshake that never finishes holds a descriptor too
        handshake = self.options.peers.preface_timeout * 2 if self.ssl_context else None
        if sock is not None:
            self.server = await loop.create_server(
                self._factory,
                sock=sock,
                ssl=self.ssl_context,
                backlog=1024,
                ssl_handshake_timeout=handshake,
            )
        else:
            self.server = await loop.create_server(
                self._factory,
                host,
                port,
                ssl=self.ssl_context,
                backlog=1024,
                reuse_port=self.reuse_port or self.options.reuse_port or None,
                ssl_handshake_timeout=handshake,
            )
        self.port = self.server.sockets[0].getsockname()[1]

    async def refuse(self) -> None:
        """Stop accepting: new connections are refused until :meth:`accept` (live ones stay)."""
        if self.server is not None:
            self.server.close()
            self.server = None

    async def accept(self) -> None:
        if self.server is None:
            await self.start(self.host, self.port)

    def for_each_connection(self, fn: Callable[[ProviderProtocol], None]) -> None:
        for proto in list(self.connections):
            fn(proto)

    async def stop(self) -> None:
        """Graceful shutdown: GOAWAY (with the shutdown debug data) to every connection."""
        if self.server is not None:
            self.server.close()
        for proto in list(self.connections):
            proto.go_away(0, self.options.shutdown_debug_data)
        await asyncio.sleep(0.1)
        for proto in list(self.connections):
            proto.close()
        self.watchdog.stop()
        self.server = None
