"""The HTTP/2 driver: h2's connection and stream events in, :class:`Request` out;
responses, resets and GOAWAY back out as frames.

A request is handed to the connection only when its stream ends, and only once the frames
read with it are all in (a stream reset in the same read never reaches the handler); or
when its body outgrows the cap (:mod:`~simulator.server.h2peer`). Responses are written by
:mod:`~simulator.server.h2write` (the raw-frame fast path, or h2's own); everything written
while one read is handled leaves in one write.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import h2.events
import h2.exceptions
import h2.settings

from simulator.server.driver import DriverHost
from simulator.server.frames import H2_CONFIG, LiteralEncoder, ServerConnection
from simulator.server.h2peer import ENHANCE_YOUR_CALM, FLOOD_EVENTS, PeerBounds, ReadyStreams
from simulator.server.h2write import STREAM_GONE as _STREAM_GONE
from simulator.server.h2write import H2Stream as _Stream
from simulator.server.h2write import ResponseWriter, request_of
from simulator.server.limits import PeerLimits
from simulator.server.streamlimit import StreamRules, initial_limit
from simulator.wire import ConnectionInfo, Request, Respond

log = logging.getLogger("pushsim.server")

_MCS = h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS
_PROTOCOL_ERROR = 1
READ_SLICE = 8192  # bytes handed to h2 at a time
CALM_LINGER = 1.0  # seconds a connection told to calm down is read (and dropped) before closing


def _no_write(data: bytes | bytearray | memoryview) -> None:
    pass


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
        peers: PeerLimits | None = None,
    ) -> None:
        """``rules``: the stream limit (:mod:`~simulator.server.streamlimit`);
        ``violation_debug``: the GOAWAY debug data for a client over an acknowledged limit
        (``None``: such a stream is refused instead)."""
        self.host = host
        self.info = info
        info.http_version = "2"
        self.streams: dict[int, _Stream] = {}
        self._transport = transport
        self._write = transport.write
        self._run = host.run
        self._arm_idle = host.arm_idle
        self._batching = False  # responses queued while handling one read are written once
        self._flush_armed = False  # a write at the end of this loop turn is due
        self._going_away = False
        self._violation_debug = violation_debug
        peers = peers or PeerLimits()
        self._window = peers.connection_window
        # streams complete in this read, run once it is all in (a bounded number per turn)
        self.ready = ReadyStreams(self._dispatch, self._waiting, host, lambda: self.receive(b""))
        self._calm = False  # GOAWAY ENHANCE_YOUR_CALM sent: nothing more is read
        self._unread = b""  # the rest of a read, for the next turn (see ReadyStreams)
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
        self.writer = ResponseWriter(conn, self.encoder, self.streams)
        self.bounds = PeerBounds(peers, conn, host.now, self._calm_down)
        conn.refused_flood = lambda: self.bounds.floods.hit("refused", host.now())

    def start(self, initial: bytes) -> None:
        """Send our preface (SETTINGS, a wide connection window), then read ``initial``."""
        conn = self.conn
        conn.initiate_connection()
        # Open the connection-level receive window wide as well (credit comes back only for
        # body bytes consumed, so this bounds what unfinished bodies can hold).
        conn.increment_flow_control_window(max(1, self._window - 65535))
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
        """Read ``data``, a slice at a time: the flood counters can end a read midway, and
        once a turn's worth of requests is running the rest waits for the next turn."""
        if self._calm:
            return
        if self._unread:
            data, self._unread = self._unread + data, b""
        self._batching = True
        try:
            if len(data) <= READ_SLICE:
                self._events(data)
                return
            view = memoryview(data)
            for i in range(0, len(data), READ_SLICE):
                self._events(view[i : i + READ_SLICE])
                if self._calm or self.host.closed:
                    return
                if self.ready.deferred:  # reading is paused until the next turn
                    self._unread = bytes(view[i + READ_SLICE :])
                    return
        finally:
            self._batching = False

    def _events(self, data: bytes | memoryview) -> None:
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
            if isinstance(exc, h2.exceptions.DenialOfServiceError):
                self._linger_then_close()  # h2 said ENHANCE_YOUR_CALM: let it arrive
            else:
                self.host.close()
            return
        on = _ON_EVENT
        for ev in events:
            handler = on.get(type(ev))
            if handler is not None and handler(self, ev):
                return
        if self.ready.ids:
            self.ready.run()
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
        # a request that ends here is made ready by the StreamEnded h2 sends next
        self.streams[ev.stream_id] = _Stream(ev.headers)
        return False

    def _on_data(self, ev: h2.events.DataReceived) -> bool:
        sid = ev.stream_id
        st = self.streams.get(sid)
        n = ev.flow_controlled_length
        if st is None or st.closed:  # answered, or cut at the cap: thrown away
            return self.bounds.thrown_away(sid, n)
        if not n and ev.stream_ended is None:
            return self.bounds.over("empty_data")
        st.held += n
        st.body += ev.data
        if ev.stream_ended is None and len(st.body) > self.bounds.max_body:
            self.bounds.cut(sid)
            self.ready.ids.append(sid)  # to the handler as it is: the cores answer by length
        return False

    def _on_stream_ended(self, ev: h2.events.StreamEnded) -> bool:
        if ev.stream_id in self.streams:
            self.ready.ids.append(ev.stream_id)
        return False

    def _on_stream_reset(self, ev: h2.events.StreamReset) -> bool:
        st = self.streams.pop(ev.stream_id, None)
        self.bounds.forget(ev.stream_id)
        if st is not None and st.held:
            self.conn.acknowledge_received_data(st.held, ev.stream_id)
        # Rapid Reset counts streams reset before they ran; a request given up while its
        # answer is awaited (a sender's timeout during a hang) is a client's right
        running = st is not None and st.closed
        return ev.remote_reset and not running and self.bounds.over("reset")

    def _on_window_updated(self, ev: h2.events.WindowUpdated) -> bool:
        if self.bounds.over("window_update"):
            return True
        self.writer.resume_pending(ev.stream_id)
        return False

    def _on_terminated(self, ev: h2.events.ConnectionTerminated) -> bool:
        self.ready.run()  # what came before the client's GOAWAY is still answered
        self.flush()
        self.host.close()
        return True

    def _on_flood_frame(self, ev: Any) -> bool:
        return self.bounds.over(FLOOD_EVENTS[type(ev)])

    def _calm_down(self, debug_data: bytes) -> None:
        """Past a flood limit (simulator.server.h2peer): what is complete is still run,
        then GOAWAY ENHANCE_YOUR_CALM and a FIN; what the peer still sends is read and
        dropped for a moment (closing on unread bytes would reset the connection, and the
        peer's kernel would drop the GOAWAY), then the connection closes."""
        self._calm = True
        self.ready.run()
        self.go_away(ENHANCE_YOUR_CALM, debug_data, None)
        self._linger_then_close()

    def _linger_then_close(self) -> None:
        self._calm = True
        if self._transport.can_write_eof():
            self._transport.write_eof()
            self._write = _no_write  # nothing may follow the FIN
        asyncio.get_running_loop().call_later(CALM_LINGER, self.host.close)

    def _dispatch(self, stream_id: int) -> None:
        st = self.streams.get(stream_id)
        if st is None or st.closed:
            return
        violations = self.conn.violations
        if violations and stream_id >= violations[0]:
            return  # lost to the GOAWAY this read ends with
        st.closed = True
        if st.held:  # consumed now: the client may send as much again
            self.conn.acknowledge_received_data(st.held, stream_id)
            st.held = 0
        self._arm_idle()
        self._run(self._request(stream_id, st))

    def _waiting(self, stream_id: int) -> bool:
        st = self.streams.get(stream_id)
        return st is not None and not st.closed

    def _request(self, stream_id: int, st: _Stream) -> Request:
        return request_of(stream_id, st, self.info)

    # -- writing ----------------------------------------------------------------

    def respond(self, req: Request, resp: Respond) -> None:
        stream_id = req.stream_id
        if self.host.closed or stream_id not in self.streams:
            return
        writer = self.writer
        if resp.status < 200 or not writer.send_fast(stream_id, resp):
            writer.send_h2(stream_id, resp)  # 1xx (informational) responses take h2's path
        if not self._batching:  # inside receive, one write at the end covers all
            self._flush_soon()

    def _flush_soon(self) -> None:
        """Answers given outside a read (a delay run out, an answer decided by another
        process) leave together: one write at the end of this loop turn."""
        if not self._flush_armed:
            self._flush_armed = True
            asyncio.get_running_loop().call_soon(self._flush_turn)

    def _flush_turn(self) -> None:
        self._flush_armed = False
        self.flush()

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

    def started(self) -> bool:
        return self.conn.incoming_buffer.preface_received

    def head_pending(self) -> bool:
        return self.conn.incoming_buffer.header_block_pending


# What each h2 event does; events not listed (SETTINGS acknowledged, PING, PRIORITY, ...)
# are h2's own business.
_ON_EVENT: dict[type, Callable[[H2Driver, Any], bool]] = {
    h2.events.RequestReceived: H2Driver._on_request,
    h2.events.DataReceived: H2Driver._on_data,
    h2.events.StreamEnded: H2Driver._on_stream_ended,
    h2.events.StreamReset: H2Driver._on_stream_reset,
    h2.events.WindowUpdated: H2Driver._on_window_updated,
    h2.events.ConnectionTerminated: H2Driver._on_terminated,
    **{event: H2Driver._on_flood_frame for event in FLOOD_EVENTS},
}
