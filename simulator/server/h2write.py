"""A request stream as the HTTP/2 driver holds it (:class:`H2Stream`, :func:`request_of`),
and writing its response: the raw-frame fast path, h2's own path, and bodies kept until
the peer's flow-control window opens (the write half of :mod:`~simulator.server.http2`).

Common responses (one HEADERS frame, at most one DATA frame that fits the windows) go through
:meth:`~simulator.server.frames.ServerConnection.send_response`; anything else takes h2's
``send_headers``/``send_data``, with a body larger than the window kept on its stream until
WINDOW_UPDATE. An answered stream is forgotten (taken out of the driver's streams).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import h2.exceptions
import hpack

from simulator.server.frames import UNIQUE_PER_RESPONSE, LiteralEncoder, ServerConnection
from simulator.wire import ConnectionInfo, Request, Respond

STREAM_GONE = (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError)


@dataclass
class H2Stream:
    """One request stream as the driver holds it."""

    headers: list[tuple[bytes, bytes]]
    body: bytearray = field(default_factory=bytearray)
    pending: bytes = b""  # response body bytes waiting for flow-control window
    closed: bool = False
    held: int = 0  # flow-controlled bytes read and not yet credited back (until consumed)


def request_of(stream_id: int, st: H2Stream, info: ConnectionInfo) -> Request:
    """The request a stream carries (pseudo-headers taken out; ``:authority`` as ``host``)."""
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
    return Request(method, path, headers, bytes(st.body), info, stream_id, authority, scheme)


class ResponseWriter:
    """Responses onto ``conn`` for the streams in ``streams`` (the driver's own dict)."""

    def __init__(
        self, conn: ServerConnection, encoder: LiteralEncoder, streams: dict[int, H2Stream]
    ) -> None:
        self.conn = conn
        self.encoder = encoder
        self.streams = streams

    def send_fast(self, stream_id: int, resp: Respond) -> bool:
        """The raw-frame path; False (nothing sent, nothing changed) when h2's is needed."""
        enc = self.encoder
        body = resp.body
        owed = enc.size_update
        block = enc.encode_response(resp.status, resp.headers, len(body))
        try:
            sent = self.conn.send_response(stream_id, block, body)
        except STREAM_GONE:
            enc.size_update = owed  # not sent: the size update is still owed
            self.streams.pop(stream_id, None)
            return True
        if sent:
            self.streams.pop(stream_id, None)
        else:
            enc.size_update = owed
        return sent

    def send_h2(self, stream_id: int, resp: Respond) -> None:
        conn = self.conn
        body = resp.body
        hdrs: list[tuple[bytes, bytes]] = [(b":status", str(resp.status).encode())]
        for k, v in resp.headers:
            if k in UNIQUE_PER_RESPONSE:
                # never indexed: a value seen once would only churn the HPACK table
                hdrs.append(hpack.NeverIndexedHeaderTuple(k.encode("latin-1"), v.encode()))
            else:
                hdrs.append((k.encode("latin-1"), v.encode("utf-8")))
        try:
            if not body:
                conn.send_headers(stream_id, hdrs, end_stream=True)
                self.streams.pop(stream_id, None)
            else:
                hdrs.append((b"content-length", str(len(body)).encode()))
                conn.send_headers(stream_id, hdrs, end_stream=False)
                self._send_body(stream_id, body)
        except STREAM_GONE:
            self.streams.pop(stream_id, None)

    def _send_body(self, stream_id: int, body: bytes) -> None:
        conn = self.conn
        window = conn.local_flow_control_window(stream_id)
        chunk = min(window, conn.max_outbound_frame_size)
        if len(body) <= chunk:
            conn.send_data(stream_id, body, end_stream=True)
            self.streams.pop(stream_id, None)
            return
        # Flow control: send what fits, keep the rest until WINDOW_UPDATE.
        while body and chunk > 0:
            conn.send_data(stream_id, body[:chunk])
            body = body[chunk:]
            window = conn.local_flow_control_window(stream_id)
            chunk = min(window, conn.max_outbound_frame_size, len(body))
        if body:
            st = self.streams.get(stream_id)
            if st is not None:
                st.pending = body
        else:
            conn.end_stream(stream_id)
            self.streams.pop(stream_id, None)

    def resume_pending(self, stream_id: int) -> None:
        targets = [stream_id] if stream_id else list(self.streams)
        for sid in targets:
            st = self.streams.get(sid)
            if st is not None and st.pending:
                body, st.pending = st.pending, b""
                try:
                    self._send_body(sid, body)
                except STREAM_GONE:
                    self.streams.pop(sid, None)
