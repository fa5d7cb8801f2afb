"""The h2 hot path's shortcuts: raw HEADERS/DATA frames, a literal-only HPACK encoder, and
a cache for Huffman-decoded request headers (:mod:`~simulator.server.huffman`, bounded in
bytes). Its connection reads through :mod:`~simulator.server.blocks`' bounded frame buffer.

Each one replaces a piece of h2/hpack that profiling (py-spy under h2load) showed among
the server's largest costs, while keeping h2's connection and stream state machines in
charge: :class:`ServerConnection` is h2's own connection with two methods overridden,
so every frame the client sends still goes through h2.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from typing import Any

import h2.config
import h2.connection
import h2.errors
import hpack.hpack
from h2.connection import AllowedStreamIDs, ConnectionInputs, _decode_headers
from h2.exceptions import DenialOfServiceError
from h2.stream import StreamClosedBy, StreamInputs
from hpack.hpack import encode_integer
from hyperframe.frame import RstStreamFrame

from simulator.server.blocks import BoundedFrameBuffer, decode_block
from simulator.server.huffman import HuffmanCache
from simulator.server.streamlimit import Admit, StreamLimit, StreamRules, initial_limit


class _QuietLog:
    """hpack logs every decoded header at DEBUG (about 30 calls per request); when
    DEBUG is off for hpack, its logger is swapped for this no-op on the hot path."""

    def debug(self, *args: object, **kwargs: object) -> None:
        pass


if not logging.getLogger("hpack").isEnabledFor(logging.DEBUG):
    hpack.hpack.log = _QuietLog()  # type: ignore[assignment]

# every request's Huffman-coded header values go through a cache bounded in bytes
HUFFMAN_CACHE = HuffmanCache(hpack.hpack.decode_huffman)  # type: ignore[attr-defined]
hpack.hpack.decode_huffman = HUFFMAN_CACHE  # type: ignore[attr-defined]


# Header validation and normalisation off both ways: the provider cores validate what
# they care about, and the frame fast path below writes headers h2 never sees.
H2_CONFIG = h2.config.H2Configuration(
    client_side=False,
    header_encoding=None,
    validate_inbound_headers=False,
    normalize_inbound_headers=False,
    validate_outbound_headers=False,
    normalize_outbound_headers=False,
)

FRAME_HEADER = struct.Struct(">HBBBL")  # RFC 9113 4.1: length (24 bits), type, flags, stream

# Refused streams' requests kept until the driver reports them (one read's worth).
MAX_HELD_STREAMS = 256
MAX_HELD_BODY = 65536
_UNLIMITED = 2**31 - 1

# Response headers whose value is new every time: never indexed, never cached.
UNIQUE_PER_RESPONSE = frozenset({"apns-id", "apns-unique-id", "location"})


class ServerConnection(h2.connection.H2Connection):
    """h2's connection, holding new streams to a :class:`StreamLimit` the way RFC 9113 asks.

    h2 treats a HEADERS frame that would exceed MAX_CONCURRENT_STREAMS as a connection
    error and tears the whole connection down; RFC 9113 section 5.1.2 makes it a stream
    error, and section 6.5.3 makes a limit binding only once the client has acknowledged
    it. So the connection's :class:`StreamLimit` decides: a refused stream gets
    REFUSED_STREAM (never processed, safe to retry) and its request is kept in
    :attr:`refused` for the driver to report; a stream over an acknowledged limit on a
    listener that answers that with GOAWAY (``violation_goaway``) is opened and noted in
    :attr:`violations`, and the driver sends the GOAWAY once the frames read with it are in
    (so the request is known); elsewhere it is refused as well.
    """

    def __init__(
        self,
        config: h2.config.H2Configuration,
        limits: StreamLimit | None = None,
        violation_goaway: bool = False,
    ) -> None:
        super().__init__(config=config)
        self.limits = limits or initial_limit(StreamRules(_UNLIMITED, _UNLIMITED))
        self.violation_goaway = violation_goaway
        # refused stream id -> (its header block, the body bytes read with it)
        self.refused: dict[int, tuple[list[tuple[bytes, bytes]], bytearray]] = {}
        self.violations: list[int] = []  # streams opened over an acknowledged limit
        self.incoming_buffer: BoundedFrameBuffer = BoundedFrameBuffer()
        # called at each refused stream; True (a flood) ends the connection ENHANCE_YOUR_CALM
        self.refused_flood: Callable[[], bool] = lambda: False

    def _receive_settings_frame(self, frame: Any) -> Any:
        if "ACK" in frame.flags:
            self.limits.acked(self.highest_inbound_stream_id)
        return super()._receive_settings_frame(frame)

    def _receive_data_frame(self, frame: Any) -> Any:
        if self.refused:
            held = self.refused.get(frame.stream_id)
            if held is not None and len(held[1]) < MAX_HELD_BODY:
                held[1].extend(frame.data)
        return super()._receive_data_frame(frame)

    def _admit(self) -> Admit:
        limits = self.limits
        total = self.open_inbound_streams  # h2's walk, which also forgets closed streams
        since = limits.counts_from()
        counted = sum(1 for s in self.streams if s > since) if since else total
        return limits.admit(total, counted)

    def _receive_headers_frame(self, frame: Any) -> Any:
        sid = frame.stream_id
        if sid not in self.streams and len(self.streams) >= self.limits.threshold():
            # len(self.streams) bounds the open count from above: only when it reaches the
            # threshold is the exact (and costly: a walk over every stream) count needed.
            verdict = self._admit()
            if verdict is not Admit.OPEN:
                if sid <= self.highest_inbound_stream_id:
                    return super()._receive_headers_frame(frame)  # h2's own error
                if verdict is Admit.REFUSE or not self.violation_goaway:
                    return self._refuse(frame)
                self.violations.append(sid)
        # h2's handling minus its stream-limit check and second walk over every stream.
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

    def _refuse(self, frame: Any) -> Any:
        sid = frame.stream_id
        if self.refused_flood():
            raise DenialOfServiceError("too many streams opened over the limit")
        headers = decode_block(self.decoder, frame.data)  # keeps the HPACK table in step
        if len(self.refused) < MAX_HELD_STREAMS:
            self.refused[sid] = ([(bytes(k), bytes(v)) for k, v in headers], bytearray())
        self.highest_inbound_stream_id = sid
        self._closed_streams[sid] = StreamClosedBy.SEND_RST_STREAM
        rst = RstStreamFrame(sid)
        rst.error_code = h2.errors.ErrorCodes.REFUSED_STREAM
        return [rst], []

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
            out += FRAME_HEADER.pack(n >> 8, n & 0xFF, 0x1, 0x5, stream_id)
            out += block
            return True
        out += FRAME_HEADER.pack(n >> 8, n & 0xFF, 0x1, 0x4, stream_id)  # HEADERS, END_HEADERS
        out += block
        self.state_machine.process_input(ConnectionInputs.SEND_DATA)
        sm.process_input(StreamInputs.SEND_DATA)
        sm.process_input(StreamInputs.SEND_END_STREAM)
        stream.outbound_flow_control_window -= m
        self.outbound_flow_control_window -= m
        out += FRAME_HEADER.pack(m >> 8, m & 0xFF, 0x0, 0x1, stream_id)  # DATA, END_STREAM
        out += body
        return True


class LiteralEncoder:
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
        # A table size change the peer's SETTINGS asked for, owed at the start of the next
        # block: a caller whose block was never sent puts the value back.
        self.size_update: int | None = None
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
            self.size_update = value

    @staticmethod
    def _int(value: int, prefix_bits: int, flags: int) -> bytes:
        encoded = encode_integer(value, prefix_bits)
        encoded[0] |= flags
        return bytes(encoded)

    def encode_response(
        self, status: int, headers: tuple[tuple[str, str], ...], length: int
    ) -> bytes:
        """The block :meth:`encode` writes for ``:status``, ``headers`` (the per-response
        ones in :data:`UNIQUE_PER_RESPONSE` never indexed) and, when ``length`` is
        non-zero, ``content-length``; repeated fields come from a small cache."""
        out = bytearray()
        if self.size_update is not None:
            out += self._int(self.size_update, 5, 0x20)
            self.size_update = None
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
                if name in UNIQUE_PER_RESPONSE:
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
        if self.size_update is not None:
            out += self._int(self.size_update, 5, 0x20)
            self.size_update = None
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
