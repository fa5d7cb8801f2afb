"""One HTTP/2 client connection: an ``asyncio.Protocol`` driving ``h2``.

It opens at most as many streams as the peer's ``MAX_CONCURRENT_STREAMS`` allows, and
re-reads that limit whenever the peer's SETTINGS change (APNs grants 1 stream until the
first valid provider token, then raises it); requests beyond it wait for a slot. Request
bodies wait for flow-control window when they must.

On GOAWAY the connection stops taking requests; streams the peer never processed (stream id
above ``last_stream_id``) and requests still waiting for a slot fail with
:class:`Unprocessed`. A connection lost with streams in flight fails them with
:class:`ConnectionLost` (the request may or may not have been processed).

Events from ``h2`` are handled through a table of event type -> handler.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

import h2.config
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from sender.transport.fastpath import ClientH2
from sender.transport.header_block import RequestHeaderEncoder
from sender.transport.streams import (
    ConnectionLost,
    Response,
    Stream,
    StreamReset,
    StreamTable,
    Unprocessed,
)

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


class H2Connection(asyncio.Protocol):
    """One HTTP/2 client connection."""

    def __init__(self, authority: str, scheme: str) -> None:
        self.authority = authority.encode()
        self.scheme = scheme.encode()
        self.h2 = ClientH2(config=_CONFIG)
        self.h2.encoder = RequestHeaderEncoder()  # type: ignore[assignment]
        self._method_cache: dict[str, bytes] = {}
        self.transport: asyncio.Transport | None = None
        self.table = StreamTable(self)
        self.closed = False
        self.going_away = False
        self.settings_received: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.settings_received.add_done_callback(_consume)
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
            handler = _ON_EVENT.get(type(event))
            if handler is not None:
                handler(self, event)
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail_all(
            ConnectionLost(f"connection lost: {exc or 'closed by peer'}"), Unprocessed("closed")
        )
        if not self.settings_received.done():
            self.settings_received.set_exception(ConnectionLost("closed before SETTINGS"))

    # -- h2 events (the _ON_EVENT table) ------------------------------------------

    def _on_headers(self, event: Any) -> None:
        st = self.table.streams.get(event.stream_id)
        if st is not None:
            for k, v in event.headers:
                if k == b":status":
                    st.status = int(v)
                else:
                    st.headers[k] = v

    def _on_data(self, event: Any) -> None:
        st = self.table.streams.get(event.stream_id)
        if st is not None:
            st.body += event.data
        if event.flow_controlled_length:
            self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)

    def _on_stream_ended(self, event: Any) -> None:
        if self.table.finish(event.stream_id):
            self.completed += 1

    def _on_stream_reset(self, event: Any) -> None:
        code = event.error_code
        refused = code == h2.errors.ErrorCodes.REFUSED_STREAM
        exc = Unprocessed("stream refused") if refused else StreamReset(int(code))
        self.table.reset(event.stream_id, exc)

    def _on_settings(self, event: Any) -> None:
        self.table.set_limit(self.h2.remote_settings.max_concurrent_streams)
        if not self.settings_received.done():
            self.settings_received.set_result(None)

    def _on_window_update(self, event: Any) -> None:
        for stream_id, st in list(self.table.streams.items()):
            if st.pending:
                try:
                    self._send_body(stream_id, st)
                except h2.exceptions.ProtocolError:
                    continue

    def _on_goaway(self, event: Any) -> None:
        self.going_away = True
        self.goaway_debug = event.additional_data or b""
        self.table.drop_above(event.last_stream_id or 0)
        self.table.fail_waiters(Unprocessed("GOAWAY"))
        if not self.table.streams:
            self._close()

    # -- requests -----------------------------------------------------------------

    @property
    def available(self) -> bool:
        return not self.closed and not self.going_away

    @property
    def streams(self) -> dict[int, Stream]:
        return self.table.streams

    @property
    def load(self) -> int:
        return self.table.load

    @property
    def has_free_slot(self) -> bool:
        return self.available and self.table.has_room

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
        table = self.table
        if table.must_wait:
            await table.wait_for_slot(loop, timeout)
        if not self.available:
            table.release()
            raise Unprocessed("connection is closing")
        if before_send is not None:
            try:
                before_send()  # the caller's last word: it may still hold the request back
            except BaseException:
                table.release()
                raise
        future: asyncio.Future[Response] = loop.create_future()
        stream_id = self._open_stream(
            self._request_headers(method, path, headers, body), body, future
        )
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

    def _request_headers(
        self, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> list[tuple[bytes, bytes]]:
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
        return h

    def _open_stream(
        self, headers: list[tuple[bytes, bytes]], body: bytes, future: asyncio.Future[Response]
    ) -> int:
        """Open the request's stream and send what the windows allow of its body."""
        try:
            stream_id = self.h2.open_request(headers, body)
        except (h2.exceptions.ProtocolError, h2.exceptions.StreamIDTooLowError) as exc:
            self.table.release()
            raise Unprocessed(f"cannot open stream: {exc}") from exc
        if body and self.h2.send_whole_body(stream_id, body):
            body = b""
        st = Stream(future, body)
        self.table.streams[stream_id] = st
        if body:
            self._send_body(stream_id, st)
        return stream_id

    def _send_body(self, stream_id: int, st: Stream) -> None:
        while st.pending:
            window = min(
                self.h2.local_flow_control_window(stream_id), self.h2.max_outbound_frame_size
            )
            if window <= 0:
                return
            chunk, st.pending = st.pending[:window], st.pending[window:]
            self.h2.send_data(stream_id, chunk, end_stream=not st.pending)

    def _cancel_stream(self, stream_id: int) -> None:
        if self.table.streams.pop(stream_id, None) is not None:
            try:
                self.h2.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
            except h2.exceptions.ProtocolError:
                pass
            self.table.release()
            self._flush()

    # -- writing and closing ------------------------------------------------------

    def _fail_all(self, in_flight: Exception, waiting: Exception) -> None:
        self.closed = True
        self.table.fail_all(in_flight, waiting)

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
        if self.going_away and not self.table.streams and not self.closed:
            self._close()

    def _close(self) -> None:
        self.closed = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def retire(self) -> None:
        """Take no more requests; close once the streams in flight are answered."""
        self.going_away = True
        self.table.fail_waiters(Unprocessed("connection retired"))
        if not self.table.streams:
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
        self.table.fail_waiters(Unprocessed("client closing"))
        self._close()


def _expire(fut: asyncio.Future[Response], message: str) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError(message))


def _consume(fut: asyncio.Future[None]) -> None:
    if not fut.cancelled():
        fut.exception()


_ON_EVENT: dict[type[Any], Callable[[H2Connection, Any], None]] = {
    h2.events.ResponseReceived: H2Connection._on_headers,
    h2.events.TrailersReceived: H2Connection._on_headers,
    h2.events.DataReceived: H2Connection._on_data,
    h2.events.StreamEnded: H2Connection._on_stream_ended,
    h2.events.StreamReset: H2Connection._on_stream_reset,
    h2.events.RemoteSettingsChanged: H2Connection._on_settings,
    h2.events.WindowUpdated: H2Connection._on_window_update,
    h2.events.ConnectionTerminated: H2Connection._on_goaway,
}
