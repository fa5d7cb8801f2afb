"""A small HTTP/2 client on h2 over asyncio: connections, a pool, and GOAWAY-safe requests.

- :class:`H2Connection` is an ``asyncio.Protocol`` driving one ``h2`` connection. It opens at
  most as many streams as the peer's ``MAX_CONCURRENT_STREAMS`` allows, and re-reads that limit
  whenever the peer's SETTINGS change (APNs grants 1 stream until the first valid provider
  token, then raises it). Request bodies wait for flow-control window when they must.
- On GOAWAY the connection stops taking requests; streams the peer never processed (stream id
  above ``last_stream_id``) and requests still waiting for a slot fail with
  :class:`Unprocessed`, which :class:`H2Pool` retries on a fresh connection without counting
  an attempt. A connection lost with streams in flight fails them with :class:`ConnectionLost`
  (the request may or may not have been processed: callers retry it, at-least-once).
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import h2.stream

from sender.transport.header_block import RequestHeaderEncoder

_CONFIG = h2.config.H2Configuration(
    client_side=True,
    header_encoding=None,
    validate_inbound_headers=False,
    normalize_inbound_headers=False,
    validate_outbound_headers=False,
    normalize_outbound_headers=False,
)

RECEIVE_WINDOW = 1 << 24
# Requests opened in one loop turn share a write, but no more than this many: a burst of
# answers wakes every worker at once, and holding all their requests for one write would
# leave the peer idle while we build them (and us idle while it answers them all).
FLUSH_EVERY = 8


_FRAME_HEADER = struct.Struct(">HBBBL")  # RFC 9113 4.1: length (24 bits), type, flags, stream
_DATA, _HEADERS = 0x0, 0x1
_END_STREAM, _END_HEADERS = 0x1, 0x4


class _ClientH2(h2.connection.H2Connection):
    """h2's connection with a fast path for opening a request stream.

    h2 builds hyperframe objects for every HEADERS and DATA frame it sends (about a third
    of a request's cost on the client). :meth:`open_request` drives the same connection
    and stream state machines and flow-control windows, but writes the two frames' bytes
    directly; anything unusual (a header block or body over one frame, a short window)
    takes h2's own path.
    """

    def open_request(self, headers: list[tuple[bytes, bytes]], body: bytes) -> int:
        """Open the next client stream with ``headers`` (ending it when there is no
        ``body``); returns its id. The body follows with :meth:`send_whole_body`."""
        stream_id = self.get_next_available_stream_id()
        block: bytes = self.encoder.encode(headers)
        max_frame = self.max_outbound_frame_size
        if len(block) > max_frame:
            self.send_headers(stream_id, headers, end_stream=not body)
            return stream_id
        self.state_machine.process_input(h2.connection.ConnectionInputs.SEND_HEADERS)
        stream = self._get_or_create_stream(stream_id, h2.connection.AllowedStreamIDs(True))
        sm = stream.state_machine
        sm.process_input(h2.stream.StreamInputs.SEND_HEADERS)
        stream.request_method = headers[0][1] if headers[0][0] == b":method" else None
        flags = _END_HEADERS
        if not body:
            sm.process_input(h2.stream.StreamInputs.SEND_END_STREAM)
            flags |= _END_STREAM
        n = len(block)
        out = self._data_to_send
        out += _FRAME_HEADER.pack(n >> 8, n & 0xFF, _HEADERS, flags, stream_id)
        out += block
        return stream_id

    def send_whole_body(self, stream_id: int, body: bytes) -> bool:
        """Send ``body`` as one DATA frame ending the stream, if it fits the frame size and
        both windows; False (nothing sent) otherwise."""
        n = len(body)
        stream = self.streams.get(stream_id)
        if (
            stream is None
            or n > self.max_outbound_frame_size
            or n > self.outbound_flow_control_window
            or n > stream.outbound_flow_control_window
        ):
            return False
        self.state_machine.process_input(h2.connection.ConnectionInputs.SEND_DATA)
        sm = stream.state_machine
        sm.process_input(h2.stream.StreamInputs.SEND_DATA)
        sm.process_input(h2.stream.StreamInputs.SEND_END_STREAM)
        stream.outbound_flow_control_window -= n
        self.outbound_flow_control_window -= n
        out = self._data_to_send
        out += _FRAME_HEADER.pack(n >> 8, n & 0xFF, _DATA, _END_STREAM, stream_id)
        out += body
        return True


class H2Error(Exception):
    """A transport failure of one request."""


class Unprocessed(H2Error):
    """The peer did not process the request (GOAWAY above last_stream_id, or never sent)."""


class ConnectionLost(H2Error):
    """The connection died with the request in flight; it may have been processed."""


class StreamReset(H2Error):
    """The peer reset the stream."""

    def __init__(self, code: int) -> None:
        super().__init__(f"stream reset by peer (error code {code})")
        self.code = code


@dataclass(slots=True)
class Response:
    status: int
    headers: dict[bytes, bytes]
    body: bytes
    connection: H2Connection | None = None

    def header(self, name: str) -> str | None:
        value = self.headers.get(name.encode())
        return None if value is None else value.decode("latin-1")


class _Stream:
    __slots__ = ("body", "future", "headers", "pending", "status")

    def __init__(self, future: asyncio.Future[Response], pending: bytes) -> None:
        self.future = future
        self.status = 0
        self.headers: dict[bytes, bytes] = {}
        self.body = bytearray()
        self.pending = pending  # request body bytes not yet sent (flow control)


class H2Connection(asyncio.Protocol):
    """One HTTP/2 client connection."""

    def __init__(self, authority: str, scheme: str) -> None:
        self.authority = authority.encode()
        self.scheme = scheme.encode()
        self.h2 = _ClientH2(config=_CONFIG)
        self.h2.encoder = RequestHeaderEncoder()  # type: ignore[assignment]
        self._method_cache: dict[str, bytes] = {}
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, _Stream] = {}
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.closed = False
        self.going_away = False
        self.max_streams = 1  # until the peer's SETTINGS arrive
        self.settings_received: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.settings_received.add_done_callback(_consume)
        self.reserved = 0  # slots handed out but not yet opened as streams
        self.goaway_debug: bytes = b""
        self.completed = 0
        self._flush_pending = False
        self._unflushed = 0
        self.tag: bytes | None = None  # e.g. the provider token this connection carries
        self.tag_since = 0.0

    # -- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.h2.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: RECEIVE_WINDOW,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: 65536,
            },
        )
        self.h2.initiate_connection()
        self.h2.increment_flow_control_window(RECEIVE_WINDOW)
        self._flush()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self._fail_all(
                ConnectionLost(f"protocol error: {exc}"), ConnectionLost("protocol error")
            )
            self._flush()
            self._close()
            return
        for event in events:
            if isinstance(event, h2.events.ResponseReceived | h2.events.TrailersReceived):
                st = self.streams.get(event.stream_id)
                if st is not None:
                    for k, v in event.headers:
                        if k == b":status":
                            st.status = int(v)
                        else:
                            st.headers[k] = v
            elif isinstance(event, h2.events.DataReceived):
                st = self.streams.get(event.stream_id)
                if st is not None:
                    st.body += event.data
                if event.flow_controlled_length:
                    self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                self._finish(event.stream_id)
            elif isinstance(event, h2.events.StreamReset):
                st = self.streams.pop(event.stream_id, None)
                if st is not None:
                    if event.error_code == h2.errors.ErrorCodes.REFUSED_STREAM:
                        self._resolve_exc(st, Unprocessed("stream refused"))
                    else:
                        self._resolve_exc(st, StreamReset(int(event.error_code)))
                self._release()
            elif isinstance(event, h2.events.RemoteSettingsChanged):
                self._update_max_streams()
                if not self.settings_received.done():
                    self.settings_received.set_result(None)
            elif isinstance(event, h2.events.WindowUpdated):
                self._send_pending()
            elif isinstance(event, h2.events.ConnectionTerminated):
                self._goaway(event.last_stream_id or 0, event.additional_data or b"")
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail_all(
            ConnectionLost(f"connection lost: {exc or 'closed by peer'}"), Unprocessed("closed")
        )
        if not self.settings_received.done():
            self.settings_received.set_exception(ConnectionLost("closed before SETTINGS"))

    # -- requests -----------------------------------------------------------------

    @property
    def available(self) -> bool:
        return not self.closed and not self.going_away

    @property
    def load(self) -> int:
        return len(self.streams) + self.reserved + len(self.waiters)

    @property
    def has_free_slot(self) -> bool:
        return self.available and len(self.streams) + self.reserved < self.max_streams

    async def request(
        self,
        method: str,
        path: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        before_send: Callable[[], None] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (slot wait plus response)
    ) -> Response:
        """Send one request and await its response.

        ``timeout`` bounds the wait for a stream slot and the response together; on expiry
        the stream is reset (CANCEL) and :class:`TimeoutError` raised. The response wait is
        a timer on the stream's future rather than a task per request.
        """
        if not self.available:
            raise Unprocessed("connection is closing")
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        if len(self.streams) + self.reserved >= self.max_streams or self.waiters:
            fut: asyncio.Future[None] = loop.create_future()
            self.waiters.append(fut)
            try:
                if timeout is None:
                    await fut  # resolved with a reserved slot
                else:
                    await asyncio.wait_for(fut, timeout)
            except BaseException:
                if fut in self.waiters:
                    self.waiters.remove(fut)
                    fut.cancel()
                elif fut.done() and not fut.cancelled() and fut.exception() is None:
                    self.reserved -= 1
                    self._release()
                raise
            self.reserved -= 1
        if not self.available:
            self._release()
            raise Unprocessed("connection is closing")
        if before_send is not None:
            try:
                before_send()  # the caller's last word: it may still hold the request back
            except BaseException:
                self._release()
                raise
        m = self._method_cache.get(method)
        if m is None:
            m = self._method_cache[method] = method.encode()
        h = [
            (b":method", m),
            (b":scheme", self.scheme),
            (b":authority", self.authority),
            (b":path", path.encode()),
        ]
        h.extend(headers)
        if body:
            h.append((b"content-length", str(len(body)).encode()))
        future: asyncio.Future[Response] = loop.create_future()
        try:
            stream_id = self.h2.open_request(h, body)
        except (h2.exceptions.ProtocolError, h2.exceptions.StreamIDTooLowError) as exc:
            self._release()
            raise Unprocessed(f"cannot open stream: {exc}") from exc
        if body and self.h2.send_whole_body(stream_id, body):
            body = b""
        st = _Stream(future, body)
        self.streams[stream_id] = st
        if body:
            self._send_body(stream_id, st)
        # Coalesce the frames of every request opened in this loop iteration into one write.
        self._unflushed += 1
        if self._unflushed >= FLUSH_EVERY:
            self._flush()
        elif not self._flush_pending:
            self._flush_pending = True
            loop.call_soon(self._deferred_flush)
        timer = (
            None
            if deadline is None
            else loop.call_at(deadline, _expire, future, f"no response within {timeout}s")
        )
        try:
            return await future
        except (asyncio.CancelledError, TimeoutError):
            self._cancel_stream(stream_id)
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def _cancel_stream(self, stream_id: int) -> None:
        if self.streams.pop(stream_id, None) is not None:
            try:
                self.h2.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
            except h2.exceptions.ProtocolError:
                pass
            self._release()
            self._flush()

    # -- internals ----------------------------------------------------------------

    def _send_body(self, stream_id: int, st: _Stream) -> None:
        while st.pending:
            window = min(
                self.h2.local_flow_control_window(stream_id), self.h2.max_outbound_frame_size
            )
            if window <= 0:
                return
            chunk, st.pending = st.pending[:window], st.pending[window:]
            self.h2.send_data(stream_id, chunk, end_stream=not st.pending)

    def _send_pending(self) -> None:
        for stream_id, st in list(self.streams.items()):
            if st.pending:
                try:
                    self._send_body(stream_id, st)
                except h2.exceptions.ProtocolError:
                    continue

    def _finish(self, stream_id: int) -> None:
        st = self.streams.pop(stream_id, None)
        if st is None:
            return
        self.completed += 1
        if not st.future.done():
            st.future.set_result(Response(st.status, st.headers, bytes(st.body), self))
        self._release()

    @staticmethod
    def _resolve_exc(st: _Stream, exc: Exception) -> None:
        if not st.future.done():
            st.future.set_exception(exc)

    def _release(self) -> None:
        """A slot freed: hand it to the next waiter."""
        while self.waiters and len(self.streams) + self.reserved < self.max_streams:
            fut = self.waiters.popleft()
            if not fut.done():
                self.reserved += 1
                fut.set_result(None)

    def _update_max_streams(self) -> None:
        value = self.h2.remote_settings.max_concurrent_streams
        self.max_streams = max(1, min(int(value), 10_000)) if value is not None else 100
        self._release()

    def _goaway(self, last_stream_id: int, debug: bytes) -> None:
        self.going_away = True
        self.goaway_debug = debug
        for stream_id in [s for s in self.streams if s > last_stream_id]:
            st = self.streams.pop(stream_id)
            self._resolve_exc(st, Unprocessed(f"GOAWAY (last stream {last_stream_id})"))
        self._fail_waiters(Unprocessed("GOAWAY"))
        if not self.streams:
            self._close()

    def _fail_waiters(self, exc: Exception) -> None:
        while self.waiters:
            fut = self.waiters.popleft()
            if not fut.done():
                fut.set_exception(exc)

    def _fail_all(self, in_flight: Exception, waiting: Exception) -> None:
        self.closed = True
        streams, self.streams = self.streams, {}
        for st in streams.values():
            # A stream whose body was never fully sent cannot have been processed.
            self._resolve_exc(
                st, Unprocessed("connection lost before send") if st.pending else in_flight
            )
        self._fail_waiters(waiting)

    def _deferred_flush(self) -> None:
        self._flush_pending = False
        self._flush()

    def _flush(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self._unflushed = 0
        data = self.h2.data_to_send()
        if data:
            self.transport.write(data)
        if self.going_away and not self.streams and not self.closed:
            self._close()

    def _close(self) -> None:
        self.closed = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def retire(self) -> None:
        """Take no more requests; close once the streams in flight are answered."""
        self.going_away = True
        self._fail_waiters(Unprocessed("connection retired"))
        if not self.streams:
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        try:
            self.h2.close_connection()
            self._flush()
        except h2.exceptions.ProtocolError:
            pass
        self.going_away = True
        self._fail_waiters(Unprocessed("client closing"))
        self._close()


def _expire(fut: asyncio.Future[Response], message: str) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError(message))


def _consume(fut: asyncio.Future[None]) -> None:
    if not fut.cancelled():
        fut.exception()


class H2Pool:
    """Connections to one origin; a request goes to the least-loaded connection with room.

    A new connection opens when every open one is full and the pool is below
    ``max_connections``. :class:`Unprocessed` failures are retried on another connection
    (bounded), so GOAWAY and refused streams never cost the caller an attempt.

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

    def retire(self, conn: H2Connection) -> None:
        """Stop using ``conn``: it finishes what is in flight, then closes."""
        if conn in self.connections:
            self.connections.remove(conn)
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
        self.connections = [c for c in self.connections if c.available]
        if tag is not None:
            self._sort_tags(tag)
        best: H2Connection | None = None
        for c in self.connections:
            if c.has_free_slot and (best is None or c.load < best.load):
                best = c
        if best is not None:
            return self._claim(best, tag)
        if len(self.connections) < self.max_connections:
            if self._connecting is None or self._connecting.done():
                self._connecting = asyncio.ensure_future(self._open())
            task = self._connecting
            try:
                conn = await asyncio.shield(task)
            finally:
                if task.done() and self._connecting is task:
                    self._connecting = None
            if conn.available and conn.tag is not None and tag is not None and conn.tag != tag:
                raise Unprocessed("new connection carries another token")
            if conn not in self.connections and conn.available:
                self.connections.append(conn)
            if conn.available:
                return self._claim(conn, tag)
            raise Unprocessed("new connection closed at once")
        return self._claim(min(self.connections, key=lambda c: c.load), tag)

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
                return await conn.request(method, path, h, body, before_send, timeout)
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
