"""The HTTP/2 driver: h2's connection and stream events in, :class:`Request` out;
responses, resets and GOAWAY back out as frames.

A request is handed to the connection only when its stream ends. Common responses (one
HEADERS frame, at most one DATA frame that fits the windows) go through
:meth:`ServerConnection.send_response`, the raw-frame fast path; anything else takes h2's
own ``send_headers``/``send_data``, with bodies larger than the flow-control window kept
until WINDOW_UPDATE. Everything written while one read is handled leaves in one write.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import h2.events
import h2.exceptions
import h2.settings
import hpack

from simulator.server.driver import DriverHost
from simulator.server.frames import H2_CONFIG, UNIQUE_PER_RESPONSE, LiteralEncoder, ServerConnection
from simulator.server.streamlimit import StreamRules, initial_limit
from simulator.wire import ConnectionInfo, Request, Respond

log = logging.getLogger("pushsim.server")

_STREAM_GONE = (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError)
_MCS = h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS
_PROTOCOL_ERROR = 1


@dataclass
class _Stream:
    headers: list[tuple[bytes, bytes]]
    body: bytearray = field(default_factory=bytearray)
    pending: bytes = b""  # response body bytes waiting for flow-control window
    closed: bool = False


class H2Driver:
    """One HTTP/2 connection's protocol state (h2 prior knowledge, or ALPN ``h2``)."""

    def __init__(
        self,
        host: DriverHost,
        transport: asyncio.Transport,
        info: ConnectionInfo,
        rules: StreamRules,
        initial_window_size: int,
        violation_debug: bytes | None = None,
    ) -> None:
        """``rules``: the stream limit (:mod:`~simulator.server.streamlimit`);
        ``violation_debug``: the GOAWAY debug data for a client over an acknowledged limit
        (``None``: such a stream is refused instead)."""
        self.host = host
        self.info = info
        info.http_version = "2"
        self.streams: dict[int, _Stream] = {}
        self._write = transport.write
        self._run = host.run
        self._arm_idle = host.arm_idle
        self._batching = False  # responses queued while handling one read are written once
        self._flush_armed = False
        self._going_away = False
        self._violation_debug = violation_debug
        self.encoder = LiteralEncoder()
        conn = ServerConnection(H2_CONFIG, initial_limit(rules), violation_debug is not None)
        conn.encoder = self.encoder  # type: ignore[assignment]  # encode + header_table_size, all h2 uses
        conn.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                _MCS: rules.initial,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: initial_window_size,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: 65536,
            },
        )
        self.conn = conn

    def start(self, initial: bytes) -> None:
        """Send our preface (SETTINGS, a wide connection window), then read ``initial``."""
        conn = self.conn
        conn.initiate_connection()
        # Open the connection-level receive window wide as well.
        conn.increment_flow_control_window(1 << 24)
        self.flush()
        if initial:
            self.receive(initial)

    def flush(self) -> None:
        if not self.host.closed:
            data = self.conn.data_to_send()
            if data:
                self._write(data)

    # -- reading ----------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        self._batching = True
        try:
            self._events(data)
        finally:
            self._batching = False

    def _events(self, data: bytes) -> None:
        conn = self.conn
        try:
            events = conn.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            log.debug("h2 protocol error: %s", exc)
            if self._going_away:
                # Frames after our GOAWAY: h2 would answer with a second GOAWAY whose
                # last-stream-id is higher (RFC 9113 forbids that); the first one stands.
                conn.data_to_send()
            else:
                self.flush()
            self.host.close()
            return
        on = _ON_EVENT
        for ev in events:
            handler = on.get(type(ev))
            if handler is not None and handler(self, ev):
                return
        if conn.refused:
            self._report_refused()
        if conn.violations:
            self._violated(conn.violations[0])
        self.flush()

    def _report_refused(self) -> None:
        """Hand the connection the requests of the streams refused in this read."""
        refused, self.conn.refused = self.conn.refused, {}
        for sid, (headers, body) in refused.items():
            self.host.unprocessed(self._request(sid, _Stream(headers, body)), "refused_stream")

    def _violated(self, stream_id: int) -> None:
        """A stream over an acknowledged limit: the provider's GOAWAY; it and every stream
        after it are lost (never processed)."""
        self.conn.violations.clear()
        self.host.go_away(_PROTOCOL_ERROR, self._violation_debug or b"", stream_id - 2)

    # Event handlers (see _ON_EVENT); True means stop reading this batch.

    def _on_request(self, ev: h2.events.RequestReceived) -> bool:
        self.streams[ev.stream_id] = _Stream(ev.headers)
        if ev.stream_ended is not None:
            self._dispatch(ev.stream_id)
        return False

    def _on_data(self, ev: h2.events.DataReceived) -> bool:
        st = self.streams.get(ev.stream_id)
        if ev.flow_controlled_length:
            self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        if st is not None:
            st.body += ev.data
            if ev.stream_ended is not None:
                self._dispatch(ev.stream_id)
        return False

    def _on_stream_ended(self, ev: h2.events.StreamEnded) -> bool:
        if ev.stream_id in self.streams:
            self._dispatch(ev.stream_id)
        return False

    def _on_stream_reset(self, ev: h2.events.StreamReset) -> bool:
        self.streams.pop(ev.stream_id, None)
        return False

    def _on_window_updated(self, ev: h2.events.WindowUpdated) -> bool:
        self._resume_pending(ev.stream_id)
        return False

    def _on_terminated(self, ev: h2.events.ConnectionTerminated) -> bool:
        self.flush()
        self.host.close()
        return True

    def _dispatch(self, stream_id: int) -> None:
        st = self.streams.get(stream_id)
        if st is None or st.closed:
            return
        violations = self.conn.violations
        if violations and stream_id >= violations[0]:
            return  # lost to the GOAWAY this read ends with
        st.closed = True
        self._arm_idle()
        self._run(self._request(stream_id, st))

    def _request(self, stream_id: int, st: _Stream) -> Request:
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
        return Request(
            method, path, headers, bytes(st.body), self.info, stream_id, authority, scheme
        )

    # -- writing ----------------------------------------------------------------

    def respond(self, req: Request, resp: Respond) -> None:
        stream_id = req.stream_id
        if self.host.closed or stream_id not in self.streams:
            return
        if resp.status < 200 or not self._send_fast(stream_id, resp):
            self._send_h2(stream_id, resp)  # 1xx (informational) responses take h2's path
        if not self._batching:  # inside receive, one write at the end covers all
            if not self._flush_armed:
                self._flush_armed = True
                asyncio.get_running_loop().call_soon(self._flush_soon)

    def _flush_soon(self) -> None:
        self._flush_armed = False
        self.flush()

    def _send_fast(self, stream_id: int, resp: Respond) -> bool:
        """The raw-frame path; False (nothing sent, nothing changed) when h2's is needed."""
        enc = self.encoder
        body = resp.body
        owed = enc.size_update
        block = enc.encode_response(resp.status, resp.headers, len(body))
        try:
            sent = self.conn.send_response(stream_id, block, body)
        except _STREAM_GONE:
            enc.size_update = owed  # not sent: the size update is still owed
            self.streams.pop(stream_id, None)
            return True
        if sent:
            self.streams.pop(stream_id, None)
        else:
            enc.size_update = owed
        return sent

    def _send_h2(self, stream_id: int, resp: Respond) -> None:
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
        except _STREAM_GONE:
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

    def _resume_pending(self, stream_id: int) -> None:
        targets = [stream_id] if stream_id else list(self.streams)
        for sid in targets:
            st = self.streams.get(sid)
            if st is not None and st.pending:
                body, st.pending = st.pending, b""
                try:
                    self._send_body(sid, body)
                except _STREAM_GONE:
                    self.streams.pop(sid, None)

    def reset_stream(self, req: Request, error_code: int) -> None:
        try:
            self.conn.reset_stream(req.stream_id, error_code)
        except _STREAM_GONE:
            pass
        self.streams.pop(req.stream_id, None)
        self.flush()

    def go_away(self, error_code: int, debug_data: bytes, last_stream_id: int | None) -> None:
        self._going_away = True
        try:
            self.conn.close_connection(
                error_code=error_code,
                additional_data=debug_data or None,
                last_stream_id=last_stream_id,
            )
            self.flush()
        except h2.exceptions.ProtocolError:
            pass
        # Streams above last_stream_id are lost: never answered, never processed.
        if last_stream_id is not None:
            for sid in [s for s in self.streams if s > last_stream_id]:
                st = self.streams.pop(sid)
                self.host.unprocessed(self._request(sid, st), "goaway")

    def send_pending_settings(self, info: ConnectionInfo) -> None:
        if info.pending_settings is not None:
            try:
                self.conn.update_settings(info.pending_settings)
                self.conn.limits.sent(info.pending_settings.get(_MCS))
            except h2.exceptions.ProtocolError:
                pass
            info.pending_settings = None

    def busy(self) -> bool:
        return bool(self.streams)


# What each h2 event does; events not listed (SETTINGS acknowledged, PING, PRIORITY, ...)
# are h2's own business.
_ON_EVENT: dict[type, Callable[[H2Driver, Any], bool]] = {
    h2.events.RequestReceived: H2Driver._on_request,
    h2.events.DataReceived: H2Driver._on_data,
    h2.events.StreamEnded: H2Driver._on_stream_ended,
    h2.events.StreamReset: H2Driver._on_stream_reset,
    h2.events.WindowUpdated: H2Driver._on_window_updated,
    h2.events.ConnectionTerminated: H2Driver._on_terminated,
}
