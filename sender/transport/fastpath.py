"""h2's client connection with a fast path for opening a request stream.

h2 builds hyperframe objects for every HEADERS and DATA frame it sends (about a third of a
request's cost on the client). :class:`ClientH2` drives the same connection and stream
state machines and flow-control windows, but writes the two frames' bytes directly;
anything unusual (a header block or body over one frame, a short window) takes h2's own
path.
"""

from __future__ import annotations

import struct

import h2.connection
import h2.stream

_FRAME_HEADER = struct.Struct(">HBBBL")  # RFC 9113 4.1: length (24 bits), type, flags, stream
_DATA, _HEADERS = 0x0, 0x1
_END_STREAM, _END_HEADERS = 0x1, 0x4


class ClientH2(h2.connection.H2Connection):
    """An ``h2`` client connection whose request streams open through the fast path."""

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
