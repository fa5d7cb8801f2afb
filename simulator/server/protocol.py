"""The provider listeners' server loop: h2 (and h11) driven from an ``asyncio.Protocol``.

Why hand-written rather than hypercorn or another ASGI server: the simulator is the
yardstick of every load test and must be several times faster than any sender it
measures. Measured on a 2-core machine, a minimal ASGI app on hypercorn serves about
4,000 req/s where a bare h2 state machine in an ``asyncio.Protocol`` serves about
12,000-15,000 (DESIGN.md). hypercorn also closes HTTP/2 connections after 1,000
requests by default. So this module does the least work possible per request:
header validation is off (the provider cores validate what they care about), and
a request is handed to the listener's :class:`~simulator.wire.Handler` only when its
stream ends.

The loop never decides anything about push semantics. It executes the
:data:`~simulator.wire.Action` a handler returns: respond, delay, reset the stream,
GOAWAY, close or abort the connection, or hang.

One port speaks both protocols: with TLS, ALPN picks ``h2`` or ``http/1.1``; without
TLS, the first bytes are sniffed for the HTTP/2 connection preface (h2c with prior
knowledge), anything else is HTTP/1.1.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import socket
import ssl
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import h11
import hpack
import hpack.hpack
from h2.connection import AllowedStreamIDs, ConnectionInputs, _decode_headers
from h2.stream import StreamClosedBy, StreamInputs
from hpack.hpack import encode_integer
from hyperframe.frame import RstStreamFrame

from pushsim.clock import Clock, SystemClock
from simulator.wire import (
    Action,
    CloseConnection,
    ConnectionInfo,
    Delay,
    GoAway,
    Handler,
    Hang,
    Request,
    ResetStream,
    Respond,
)

log = logging.getLogger("pushsim.server")


class _QuietLog:
    """hpack logs every decoded header at DEBUG (about 30 calls per request); when
    DEBUG is off for hpack, its logger is swapped for this no-op on the hot path."""

    def debug(self, *args: object, **kwargs: object) -> None:
        pass


if not logging.getLogger("hpack").isEnabledFor(logging.DEBUG):
    hpack.hpack.log = _QuietLog()  # type: ignore[assignment]

_decode_huffman = hpack.hpack.decode_huffman  # type: ignore[attr-defined]


@functools.lru_cache(maxsize=4096)
def _decode_huffman_cached(data: bytes) -> bytes:
    result: bytes = _decode_huffman(data)
    return result


def _decode_huffman_fast(huffman_string: bytes | bytearray | memoryview | None) -> bytes:
    """Huffman-decode header strings, remembering long ones.

    Clients send ``authorization`` (a provider token or VAPID JWT of 200-500 bytes) as a
    never-indexed literal, so without this every request pays a pure-Python Huffman
    decode of the same JWT (measured at about a quarter of the server's time). A sender
    reuses one token for many minutes, so a small LRU makes that a dict lookup.
    """
    if type(huffman_string) is bytes and len(huffman_string) >= 20:
        return _decode_huffman_cached(huffman_string)
    result: bytes = _decode_huffman(huffman_string)
    return result


hpack.hpack.decode_huffman = _decode_huffman_fast  # type: ignore[attr-defined]


class _ServerConnection(h2.connection.H2Connection):
    """h2's connection, refusing streams over MAX_CONCURRENT_STREAMS the way RFC 9113 asks.

    h2 treats a HEADERS frame that would exceed the limit as a connection error and
    tears the whole connection down; RFC 9113 section 5.1.2 makes it a stream error.
    APNs starts a connection at one stream until a valid provider token arrives, and a
    client that opens more before reading SETTINGS must see REFUSED_STREAM on the extra
    streams (safe to retry) while the first one is answered.
    """

    def _receive_headers_frame(self, frame: Any) -> Any:
        sid = frame.stream_id
        if sid not in self.streams:
            limit = self.local_settings.max_concurrent_streams
            # len(self.streams) bounds the open count from above: only when it reaches the
            # limit is the exact (and costly: a walk over every stream) count needed.
            if len(self.streams) + 1 > limit and self.open_inbound_streams + 1 > limit:
                if sid <= self.highest_inbound_stream_id:
                    return super()._receive_headers_frame(frame)  # h2's own error
                self.decoder.decode(frame.data, raw=True)  # keep the HPACK table in step
                self.highest_inbound_stream_id = sid
                self._closed_streams[sid] = StreamClosedBy.SEND_RST_STREAM
                rst = RstStreamFrame(sid)
                rst.error_code = h2.errors.ErrorCodes.REFUSED_STREAM
                return [rst], []
        # Below the limit: h2's handling minus its second walk over every stream.
        headers = _decode_headers(self.decoder, frame.data)
        events = self.state_machine.process_input(ConnectionInputs.RECV_HEADERS)
        stream = self._get_or_create_stream(sid, AllowedStreamIDs(not self.config.client_side))
        frames, stream_events = stream.receive_headers(
            headers, "END_STREAM" in frame.flags, self.config.header_encoding
        )
        if "PRIORITY" in frame.flags:
            _, p_events = self._receive_priority_frame(frame)
            stream_events[0].priority_updated = p_events[0]  # type: ignore[attr-defined]
            stream_events.extend(p_events)
        return frames, events + stream_events

    def send_response(self, stream_id: int, block: bytes, body: bytes) -> bool:
        """Answer an open stream with the encoded header ``block`` (and ``body``, if any),
        ending it; False (nothing changed) when the response needs h2's own path.

        Why: h2's ``send_headers``/``send_data`` build hyperframe objects, flag sets and
        header-validation flags for every response; measured with py-spy at about 15% of
        the simulator's time under load. This drives the same connection and stream state
        machines with the same inputs and keeps both flow-control windows, so the stream
        closes in h2's bookkeeping exactly as it would there (open-stream counts, the
        stream limit, GOAWAY and RST_STREAM handling), but writes the frames' bytes
        directly. Taken only when the block fits one HEADERS frame and the body one DATA
        frame within both windows; anything else (CONTINUATION, a body waiting for
        WINDOW_UPDATE) is left to h2.
        """
        stream = self.streams.get(stream_id)
        max_frame = self.max_outbound_frame_size
        n = len(block)
        if stream is None or n > max_frame:
            return False
        m = len(body)
        if m and (
            m > max_frame
            or m > self.outbound_flow_control_window
            or m > stream.outbound_flow_control_window
        ):
            return False
        self.state_machine.process_input(ConnectionInputs.SEND_HEADERS)
        sm = stream.state_machine
        sm.process_input(StreamInputs.SEND_HEADERS)
        stream.request_method = None  # as h2 records it from a response's headers
        out = self._data_to_send
        if not m:
            sm.process_input(StreamInputs.SEND_END_STREAM)
            # HEADERS with END_HEADERS | END_STREAM
            out += _FRAME_HEADER.pack(n >> 8, n & 0xFF, 0x1, 0x5, stream_id)
            out += block
            return True
        out += _FRAME_HEADER.pack(n >> 8, n & 0xFF, 0x1, 0x4, stream_id)  # HEADERS, END_HEADERS
        out += block
        self.state_machine.process_input(ConnectionInputs.SEND_DATA)
        sm.process_input(StreamInputs.SEND_DATA)
        sm.process_input(StreamInputs.SEND_END_STREAM)
        stream.outbound_flow_control_window -= m
        self.outbound_flow_control_window -= m
        out += _FRAME_HEADER.pack(m >> 8, m & 0xFF, 0x0, 0x1, stream_id)  # DATA, END_STREAM
        out += body
        return True


_FRAME_HEADER = struct.Struct(">HBBBL")  # RFC 9113 4.1: length (24 bits), type, flags, stream


class _LiteralEncoder:
    """An HPACK encoder for responses that never uses the dynamic table.

    hpack's encoder searches the tables and maintains the dynamic table for every header
    of every response; a provider response is a status plus a handful of headers, most
    of them unique (apns-id), so indexing buys nothing. This one writes ``:status`` from
    the static table and everything else as a literal without indexing (never indexed
    where the caller asked for that), which RFC 7541 allows any encoder to do. It honours
    the peer's SETTINGS_HEADER_TABLE_SIZE by signalling the size update it requires.
    """

    _STATUS = {b"200": 8, b"204": 9, b"206": 10, b"304": 11, b"400": 12, b"404": 13, b"500": 14}

    def __init__(self) -> None:
        self._size = 4096
        self._size_update: int | None = None
        # the encoded field for a status, a repeated header, a content-length
        self._status_cache: dict[int, bytes] = {}
        self._cache: dict[tuple[str, str], bytes] = {}
        self._length_cache: dict[int, bytes] = {}

    @property
    def header_table_size(self) -> int:
        return self._size

    @header_table_size.setter
    def header_table_size(self, value: int) -> None:
        if value != self._size:
            self._size = value
            self._size_update = value

    @staticmethod
    def _int(value: int, prefix_bits: int, flags: int) -> bytes:
        encoded = encode_integer(value, prefix_bits)
        encoded[0] |= flags
        return bytes(encoded)

    def encode_response(
        self, status: int, headers: tuple[tuple[str, str], ...], length: int
    ) -> bytes:
        """The block :meth:`encode` writes for ``:status``, ``headers`` (the per-response
        ones in :data:`_UNIQUE_PER_RESPONSE` never indexed) and, when ``length`` is
        non-zero, ``content-length``; repeated fields come from a small cache."""
        out = bytearray()
        if self._size_update is not None:
            out += self._int(self._size_update, 5, 0x20)
            self._size_update = None
        cache = self._cache
        hit = self._status_cache.get(status)
        if hit is None:
            hit = self.encode([(b":status", str(status).encode())])
            self._status_cache[status] = hit
        out += hit
        for header in headers:
            hit = cache.get(header)
            if hit is None:
                name, value = header
                if name in _UNIQUE_PER_RESPONSE:
                    v = value.encode()
                    out.append(0x10)
                    out += self._int(len(name), 7, 0) + name.encode("latin-1")
                    out += self._int(len(v), 7, 0) + v
                    continue
                hit = self.encode([(name.encode("latin-1"), value.encode("utf-8"))])
                if len(cache) >= 256:
                    cache.clear()
                cache[header] = hit
            out += hit
        if length:
            hit = self._length_cache.get(length)
            if hit is None:
                hit = self.encode([(b"content-length", str(length).encode())])
                if len(self._length_cache) >= 256:
                    self._length_cache.clear()
                self._length_cache[length] = hit
            out += hit
        return bytes(out)

    def encode(self, headers: Any, huffman: bool = True) -> bytes:
        out = bytearray()
        if self._size_update is not None:
            out += self._int(self._size_update, 5, 0x20)
            self._size_update = None
        status = self._STATUS
        for header in headers:
            name, value = header[0], header[1]
            if isinstance(name, str):
                name = name.encode("utf-8")
            if isinstance(value, str):
                value = value.encode("utf-8")
            if name == b":status":
                index = status.get(value)
                if index is not None:
                    out.append(0x80 | index)
                    continue
                out.append(0x08)  # literal without indexing, name :status (static index 8)
            else:
                out.append(0x10 if getattr(header, "indexable", True) is False else 0x00)
                out += self._int(len(name), 7, 0) + name
            out += self._int(len(value), 7, 0) + value
        return bytes(out)


_UNIQUE_PER_RESPONSE = frozenset({"apns-id", "apns-unique-id", "location"})

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_conn_ids = itertools.count(1)

_H2_CONFIG = h2.config.H2Configuration(
    client_side=False,
    header_encoding=None,
    validate_inbound_headers=False,
    normalize_inbound_headers=False,
    validate_outbound_headers=False,
    normalize_outbound_headers=False,
)

_INTERNAL_ERROR = Respond(
    500, (("content-type", "application/json"),), b'{"reason":"InternalServerError"}'
)


@dataclass
class ListenerOptions:
    """Per-listener transport settings."""

    max_concurrent_streams: int = 1000
    initial_window_size: int = 1 << 20
    idle_timeout: float | None = None  # seconds without a request before GOAWAY
    idle_debug_data: bytes = b""
    shutdown_debug_data: bytes = b""
    reuse_port: bool = False  # SO_REUSEPORT: worker processes may bind the same port


@dataclass
class _Stream:
    headers: list[tuple[bytes, bytes]]
    body: bytearray = field(default_factory=bytearray)
    pending: bytes = b""  # response body bytes waiting for flow-control window
    closed: bool = False


class ProviderProtocol(asyncio.Protocol):
    """One client connection to a provider listener."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.transport: asyncio.Transport | None = None
        self.mode: str | None = None  # "h2" | "h11" | None while sniffing
        self.info: ConnectionInfo | None = None
        self._sniff = b""
        self._h2: h2.connection.H2Connection | None = None
        self._streams: dict[int, _Stream] = {}
        self._h11: h11.Connection | None = None
        self._h11_queue: list[Request] = []
        self._h11_busy = False
        self._h11_body = bytearray()
        self._h11_head: h11.Request | None = None
        self._closed = False
        self._going_away = False
        self._idle_handle: asyncio.TimerHandle | None = None
        self._last_active = 0.0
        self._loop_time: Callable[[], float] = lambda: 0.0
        self._batching = False  # responses queued while handling one read are written once

    # -- connection lifecycle -------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio.Transport subclasses
        self.listener.connections.add(self)
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
                self._start_h2(b"")
            elif alpn is not None:
                self._start_h11(b"")
            # no ALPN (aioapns' default context, for one): sniff for the h2 preface
        self._arm_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self.listener.connections.discard(self)
        if self._idle_handle is not None:
            self._idle_handle.cancel()

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        try:
            if self.mode == "h2":
                self._h2_data(data)
            elif self.mode == "h11":
                self._h11_data(data)
            else:
                self._sniff += data
                n = min(len(self._sniff), len(H2_PREFACE))
                if self._sniff[:n] != H2_PREFACE[:n]:
                    buf, self._sniff = self._sniff, b""
                    self._start_h11(buf)
                elif n == len(H2_PREFACE):
                    buf, self._sniff = self._sniff, b""
                    self._start_h2(buf)
        except Exception:  # no input may crash the server: drop this connection only
            log.exception("connection %s: unexpected error", self.info and self.info.conn_id)
            self.abort()

    def abort(self) -> None:
        """Close with a TCP reset (SO_LINGER 0)."""
        if self.transport is None or self._closed:
            return
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        self._closed = True
        self.transport.abort()

    def close(self) -> None:
        if self.transport is not None and not self._closed:
            self._closed = True
            self.transport.close()

    def go_away(
        self, error_code: int = 0, debug_data: bytes = b"", last_stream_id: int | None = None
    ) -> None:
        """Send GOAWAY (h2) and close; on HTTP/1.1 just close."""
        if self._closed:
            return
        self._going_away = True
        if self._h2 is not None:
            try:
                self._h2.close_connection(
                    error_code=error_code,
                    additional_data=debug_data or None,
                    last_stream_id=last_stream_id,
                )
                self._flush()
            except h2.exceptions.ProtocolError:
                pass
            # Streams above last_stream_id are lost: never answered.
            if last_stream_id is not None:
                for sid in [s for s in self._streams if s > last_stream_id]:
                    self._streams.pop(sid, None)
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, self.close)

    def _arm_idle(self) -> None:
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
        if self._closed or not timeout:
            return
        loop = asyncio.get_running_loop()
        remaining = self._last_active + timeout - loop.time()
        if remaining <= 0 and not self._streams:
            self.go_away(0, self.listener.options.idle_debug_data)
        else:
            self._idle_handle = loop.call_later(max(remaining, timeout / 10), self._idle_expired)

    # -- h2 --------------------------------------------------------------------

    def _start_h2(self, initial: bytes) -> None:
        assert self.info is not None
        self.mode = "h2"
        self.info.http_version = "2"
        conn = _ServerConnection(config=_H2_CONFIG)
        conn.encoder = _LiteralEncoder()  # type: ignore[assignment]
        opts = self.listener.options
        conn.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: opts.max_concurrent_streams,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: opts.initial_window_size,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: 65536,
            },
        )
        conn.initiate_connection()
        # Open the connection-level receive window wide as well.
        conn.increment_flow_control_window(1 << 24)
        self._h2 = conn
        self._flush()
        if initial:
            self._h2_data(initial)

    def _flush(self) -> None:
        if self._h2 is not None and self.transport is not None and not self._closed:
            data = self._h2.data_to_send()
            if data:
                self.transport.write(data)

    def _h2_data(self, data: bytes) -> None:
        self._batching = True
        try:
            self._h2_events(data)
        finally:
            self._batching = False

    def _h2_events(self, data: bytes) -> None:
        conn = self._h2
        assert conn is not None
        try:
            events = conn.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            log.debug("h2 protocol error: %s", exc)
            if self._going_away:
                # Frames after our GOAWAY: h2 would answer with a second GOAWAY whose
                # last-stream-id is higher (RFC 9113 forbids that); the first one stands.
                conn.data_to_send()
            else:
                self._flush()
            self.close()
            return
        streams = self._streams
        ev: Any
        for ev in events:
            t = type(ev)
            if t is h2.events.RequestReceived:
                streams[ev.stream_id] = _Stream(ev.headers)
                if ev.stream_ended is not None:
                    self._dispatch_h2(ev.stream_id)
            elif t is h2.events.DataReceived:
                st = streams.get(ev.stream_id)
                if ev.flow_controlled_length:
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                if st is not None:
                    st.body += ev.data
                    if ev.stream_ended is not None:
                        self._dispatch_h2(ev.stream_id)
            elif t is h2.events.StreamEnded:
                if ev.stream_id in streams:
                    self._dispatch_h2(ev.stream_id)
            elif t is h2.events.StreamReset:
                streams.pop(ev.stream_id, None)
            elif t is h2.events.WindowUpdated:
                self._resume_pending(ev.stream_id)
            elif t is h2.events.ConnectionTerminated:
                self._flush()
                self.close()
                return
        self._flush()

    def _dispatch_h2(self, stream_id: int) -> None:
        st = self._streams.get(stream_id)
        if st is None or st.closed:
            return
        st.closed = True
        assert self.info is not None
        method = path = authority = ""
        scheme = "https"
        headers: list[tuple[str, str]] = []
        for k, v in st.headers:
            if k[:1] == b":":
                if k == b":method":
                    method = v.decode("latin-1")
                elif k == b":path":
                    path = v.decode("latin-1")
                elif k == b":authority":
                    authority = v.decode("latin-1")
                elif k == b":scheme":
                    scheme = v.decode("latin-1")
            else:
                headers.append((k.decode("latin-1").lower(), v.decode("utf-8", "replace")))
        if authority:
            headers.append(("host", authority))
        req = Request(
            method, path, headers, bytes(st.body), self.info, stream_id, authority, scheme
        )
        self._arm_idle()
        self._run(req)

    def _send_h2(self, stream_id: int, resp: Respond) -> None:
        conn = self._h2
        if conn is None or self._closed or stream_id not in self._streams:
            return
        body = resp.body
        if resp.status >= 200:  # 1xx (informational) responses take h2's path
            enc = conn.encoder
            assert isinstance(conn, _ServerConnection) and isinstance(enc, _LiteralEncoder)
            pending = enc._size_update
            block = enc.encode_response(resp.status, resp.headers, len(body))
            try:
                sent = conn.send_response(stream_id, block, body)
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                enc._size_update = pending  # not sent: the size update is still owed
                self._streams.pop(stream_id, None)
                sent = True
            if sent:
                self._streams.pop(stream_id, None)
                if not self._batching:
                    self._flush()
                return
            enc._size_update = pending
        hdrs: list[tuple[bytes, bytes]] = [(b":status", str(resp.status).encode())]
        for k, v in resp.headers:
            if k in _UNIQUE_PER_RESPONSE:
                # never indexed: a value seen once would only churn the HPACK table
                hdrs.append(hpack.NeverIndexedHeaderTuple(k.encode("latin-1"), v.encode()))
            else:
                hdrs.append((k.encode("latin-1"), v.encode("utf-8")))
        try:
            if not body:
                conn.send_headers(stream_id, hdrs, end_stream=True)
                self._streams.pop(stream_id, None)
            else:
                hdrs.append((b"content-length", str(len(body)).encode()))
                conn.send_headers(stream_id, hdrs, end_stream=False)
                self._send_body(stream_id, body)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            self._streams.pop(stream_id, None)
        if not self._batching:  # inside data_received, one write at the end covers all
            self._flush()

    def _send_body(self, stream_id: int, body: bytes) -> None:
        conn = self._h2
        assert conn is not None
        window = conn.local_flow_control_window(stream_id)
        chunk = min(window, conn.max_outbound_frame_size)
        if len(body) <= chunk:
            conn.send_data(stream_id, body, end_stream=True)
            self._streams.pop(stream_id, None)
            return
        # Flow control: send what fits, keep the rest until WINDOW_UPDATE.
        while body and chunk > 0:
            conn.send_data(stream_id, body[:chunk])
            body = body[chunk:]
            window = conn.local_flow_control_window(stream_id)
            chunk = min(window, conn.max_outbound_frame_size, len(body))
        if body:
            st = self._streams.get(stream_id)
            if st is not None:
                st.pending = body
        else:
            conn.end_stream(stream_id)
            self._streams.pop(stream_id, None)

    def _resume_pending(self, stream_id: int) -> None:
        targets = [stream_id] if stream_id else list(self._streams)
        for sid in targets:
            st = self._streams.get(sid)
            if st is not None and st.pending:
                body, st.pending = st.pending, b""
                try:
                    self._send_body(sid, body)
                except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                    self._streams.pop(sid, None)

    # -- h11 -------------------------------------------------------------------

    def _start_h11(self, initial: bytes) -> None:
        assert self.info is not None
        self.mode = "h11"
        self.info.http_version = "1.1"
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
        if initial:
            self._h11_data(initial)

    def _h11_data(self, data: bytes) -> None:
        conn = self._h11
        assert conn is not None and self.info is not None
        if data:  # h11 takes b"" as end-of-stream; b"" here only means "look at the buffer again"
            conn.receive_data(data)
        while True:
            try:
                ev = conn.next_event()
            except h11.RemoteProtocolError as exc:
                self._h11_error(exc.error_status_hint)
                return
            if ev is h11.NEED_DATA or ev is h11.PAUSED:
                break
            if isinstance(ev, h11.Request):
                self._h11_head = ev
                self._h11_body = bytearray()
            elif isinstance(ev, h11.Data):
                self._h11_body += ev.data
            elif isinstance(ev, h11.EndOfMessage):
                head = self._h11_head
                assert head is not None
                headers = [
                    (k.decode("latin-1").lower(), v.decode("utf-8", "replace"))
                    for k, v in head.headers
                ]
                authority = next((v for k, v in headers if k == "host"), "")
                req = Request(
                    head.method.decode("latin-1"),
                    head.target.decode("latin-1"),
                    headers,
                    bytes(self._h11_body),
                    self.info,
                    0,
                    authority,
                    "https" if self.info.tls else "http",
                )
                self._h11_queue.append(req)
            elif isinstance(ev, h11.ConnectionClosed):
                self.close()
                return
        self._h11_pump()

    def _h11_error(self, status: int) -> None:
        conn = self._h11
        assert conn is not None and self.transport is not None
        try:
            body = b"bad request"
            self.transport.write(
                conn.send(
                    h11.Response(
                        status_code=status,
                        headers=[("content-length", str(len(body))), ("connection", "close")],
                    )
                )
                + conn.send(h11.Data(data=body))
                + conn.send(h11.EndOfMessage())
            )
        except h11.LocalProtocolError:
            pass
        self.close()

    def _h11_pump(self) -> None:
        if self._h11_busy or not self._h11_queue or self._closed:
            return
        req = self._h11_queue.pop(0)
        self._h11_busy = True
        self._arm_idle()
        self._run(req)

    def _send_h11(self, resp: Respond) -> None:
        conn = self._h11
        if conn is None or self._closed or self.transport is None:
            return
        headers = [(k, v) for k, v in resp.headers]
        headers.append(("content-length", str(len(resp.body))))
        try:
            out = conn.send(h11.Response(status_code=resp.status, headers=headers))
            if resp.body:
                out += conn.send(h11.Data(data=resp.body))
            out += conn.send(h11.EndOfMessage())
            self.transport.write(out)
            if conn.our_state is h11.MUST_CLOSE:
                self.close()
                return
            conn.start_next_cycle()
        except h11.LocalProtocolError:
            self.close()
            return
        self._h11_busy = False
        if conn.their_state is h11.DONE or conn.their_state is h11.IDLE:
            # more pipelined bytes may be buffered
            self._h11_data(b"")

    # -- executing actions ----------------------------------------------------

    def _run(self, req: Request) -> None:
        try:
            action: Action = self.listener.handler.handle(req)
        except Exception:
            log.exception("handler failed on %s %s", req.method, req.path)
            action = _INTERNAL_ERROR
        info = self.info
        if info is not None and info.pending_settings is not None and self._h2 is not None:
            try:
                self._h2.update_settings(info.pending_settings)
            except h2.exceptions.ProtocolError:
                pass
            info.pending_settings = None
        self.execute(req, action)

    def execute(self, req: Request, action: Action) -> None:
        if self._closed:
            return
        t = type(action)
        if t is Respond:
            assert isinstance(action, Respond)
            if self.mode == "h2":
                self._send_h2(req.stream_id, action)
            else:
                self._send_h11(action)
        elif t is Delay:
            assert isinstance(action, Delay)
            loop = asyncio.get_running_loop()
            loop.call_later(max(0.0, action.seconds), self.execute, req, action.then)
        elif t is ResetStream:
            assert isinstance(action, ResetStream)
            if self._h2 is not None:
                try:
                    self._h2.reset_stream(req.stream_id, action.error_code)
                except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                    pass
                self._streams.pop(req.stream_id, None)
                self._flush()
            else:
                self.abort()
        elif t is GoAway:
            assert isinstance(action, GoAway)
            last = action.last_stream_id
            if action.response is not None:
                self.execute(req, action.response)
            elif last is None:
                # the triggering stream is lost too
                last = max(0, req.stream_id - 2)
            self.go_away(action.error_code, action.debug_data, last)
        elif t is CloseConnection:
            assert isinstance(action, CloseConnection)
            if action.abort:
                self.abort()
            else:
                self.close()
        elif t is Hang:
            pass
        else:  # pragma: no cover - exhaustive
            raise TypeError(f"unknown action {action!r}")


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
        self.server: asyncio.Server | None = None
        self.host = "127.0.0.1"
        self.port = 0
        self.reuse_port = False

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
        if sock is not None:
            self.server = await loop.create_server(
                self._factory, sock=sock, ssl=self.ssl_context, backlog=1024
            )
        else:
            self.server = await loop.create_server(
                self._factory,
                host,
                port,
                ssl=self.ssl_context,
                backlog=1024,
                reuse_port=self.reuse_port or self.options.reuse_port or None,
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
        self.server = None
