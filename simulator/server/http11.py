"""The HTTP/1.1 driver: h11's events in, :class:`Request` out, one request at a time.

Pipelined requests are run in order, each once the previous one has been answered, by a
loop (:meth:`H11Driver._pump`): an answer given at once does not call back into the
parser, so a read holding thousands of requests costs no stack, and at most a turn's
worth of them run before the loop serves other connections. While a request waits
for its answer (a delayed or hung action), reading pauses, so a peer cannot pile up
requests behind it. A request h11 cannot parse gets the status h11 suggests and the
connection closes.

What one peer may make it hold (:mod:`~simulator.server.limits`): a body past
``max_request_body`` goes to the handler as it is, the answer says ``connection: close``,
and up to ``linger_bytes`` more of it are read and thrown away (so a client that sends
its whole body before reading still sees the answer) before the connection closes. A
request with both Content-Length and Transfer-Encoding is answered and the connection
closed after it (RFC 9112 section 6.1): nothing after it is read as another request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import h11

from simulator.server.driver import DriverHost
from simulator.server.limits import TURN, PeerLimits
from simulator.wire import ConnectionInfo, Request, Respond

_CLOSE = ("connection", "close")


class H11Driver:
    """One HTTP/1.1 connection's protocol state (ALPN ``http/1.1``, or no h2 preface)."""

    def __init__(
        self,
        host: DriverHost,
        transport: asyncio.Transport,
        info: ConnectionInfo,
        peers: PeerLimits | None = None,
    ):
        self.host = host
        self.transport = transport
        self.info = info
        info.http_version = "1.1"
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
        peers = peers or PeerLimits()
        self._max_body = peers.max_request_body
        self._linger = peers.linger_bytes
        self._ready: Request | None = None  # complete, not yet handed to the handler
        self._busy = False  # a request is with the handler, not yet answered
        self._pumping = False  # inside _pump: an answer given now must not re-enter it
        self._head: h11.Request | None = None
        self._body = bytearray()
        self._close_after = False  # answer, then close (CL with TE, or a body cut at the cap)
        self._discarding: int | None = None  # a cut body: bytes still to throw away
        self._started = False

    def start(self, initial: bytes) -> None:
        if initial:
            self.receive(initial)

    # -- reading ----------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        if self._discarding is not None:
            self._throw_away(len(data))
            return
        if data:  # h11 takes b"" as end-of-stream
            self.conn.receive_data(data)
            if self._busy:  # nothing more is read until this request is answered
                self.host.pause_reading("busy")
        self._pump()

    def _pump(self) -> None:
        """Run the complete requests in the buffer, in order, while each is answered: at
        most :data:`TURN` per event-loop turn (the rest on the next, reading paused)."""
        if self._pumping:
            return
        self._pumping = True
        try:
            for _ in range(TURN):
                if self._busy or self.host.closed:
                    return
                if self._ready is None and not self._parse():
                    return
                req, self._ready = self._ready, None
                assert req is not None
                self._busy = True
                self.host.arm_idle()
                self.host.run(req)
            self.host.pause_reading("backlog")
            asyncio.get_running_loop().call_soon(self._next_turn)
        finally:
            self._pumping = False

    def _next_turn(self) -> None:
        self.host.resume_reading("backlog")
        self._pump()

    def _parse(self) -> bool:
        """Read events until a request is complete (True) or more bytes are needed."""
        conn = self.conn
        on = _ON_EVENT
        while self._ready is None and self._discarding is None:
            try:
                ev = conn.next_event()
            except h11.RemoteProtocolError as exc:
                self._error(exc.error_status_hint)
                return False
            if ev is h11.NEED_DATA or ev is h11.PAUSED:
                return False
            handler = on.get(type(ev))
            if handler is not None and handler(self, ev):
                return False
        return self._ready is not None

    # Event handlers (see _ON_EVENT); True means stop reading.

    def _on_request(self, ev: h11.Request) -> bool:
        self._head = ev
        self._body = bytearray()
        self._started = True
        names = {k for k, _v in ev.headers}
        if b"content-length" in names and b"transfer-encoding" in names:
            self._close_after = True  # RFC 9112 6.1: never read on after such a request
        return False

    def _on_data(self, ev: h11.Data) -> bool:
        self._body += ev.data
        if len(self._body) > self._max_body:
            self._ready = self._request()  # to the handler as it is: the cores answer by length
            self._close_after = True
            self._discarding = self._linger
        return False

    def _on_end(self, ev: h11.EndOfMessage) -> bool:
        self._ready = self._request()
        return False

    def _request(self) -> Request:
        head = self._head
        assert head is not None
        headers = [
            (k.decode("latin-1").lower(), v.decode("utf-8", "replace")) for k, v in head.headers
        ]
        authority = next((v for k, v in headers if k == "host"), "")
        return Request(
            head.method.decode("latin-1"),
            head.target.decode("latin-1"),
            headers,
            bytes(self._body),
            self.info,
            0,
            authority,
            "https" if self.info.tls else "http",
        )

    def _on_closed(self, ev: h11.ConnectionClosed) -> bool:
        self.host.close()
        return True

    def _error(self, status: int) -> None:
        conn = self.conn
        try:
            body = b"bad request"
            self.transport.write(
                conn.send(
                    h11.Response(
                        status_code=status,
                        headers=[("content-length", str(len(body))), _CLOSE],
                    )
                )
                + conn.send(h11.Data(data=body))
                + conn.send(h11.EndOfMessage())
            )
        except h11.LocalProtocolError:
            pass
        self.host.close()

    def _throw_away(self, n: int) -> None:
        """Bytes of a body cut at the cap; past ``linger_bytes`` the connection closes."""
        left = (self._discarding or 0) - n
        self._discarding = left
        if left <= 0 and not self._busy:
            self.host.close()

    # -- writing ----------------------------------------------------------------

    def respond(self, req: Request, resp: Respond) -> None:
        conn = self.conn
        if self.host.closed:
            return
        headers = [(k, v) for k, v in resp.headers]
        headers.append(("content-length", str(len(resp.body))))
        if self._close_after:
            headers.append(_CLOSE)
        try:
            out = conn.send(h11.Response(status_code=resp.status, headers=headers))
            if resp.body:
                out += conn.send(h11.Data(data=resp.body))
            out += conn.send(h11.EndOfMessage())
            self.transport.write(out)
        except h11.LocalProtocolError:
            self.host.close()
            return
        self._busy = False
        if self._discarding is not None:  # the rest of a cut body: read and thrown away
            self._answered_cut()
            return
        if conn.our_state is h11.MUST_CLOSE:
            self.host.close()
            return
        conn.start_next_cycle()
        self.host.resume_reading("busy")
        self._pump()  # more pipelined requests may be buffered

    def _answered_cut(self) -> None:
        if self._discarding is not None and self._discarding <= 0:
            self.host.close()
            return
        if self.transport.can_write_eof():
            self.transport.write_eof()  # the answer is complete; what follows is not read
        self.host.resume_reading("busy")
        loop = asyncio.get_running_loop()
        loop.call_later(5.0, self.host.close)  # lingering ends, however much is still coming

    def reset_stream(self, req: Request, error_code: int) -> None:
        self.host.abort()  # no streams on HTTP/1.1: the request dies with its connection

    def go_away(self, error_code: int, debug_data: bytes, last_stream_id: int | None) -> None:
        pass  # no GOAWAY on HTTP/1.1: the connection just closes

    def send_pending_settings(self, info: ConnectionInfo) -> None:
        pass  # SETTINGS are h2's

    def busy(self) -> bool:
        return False  # the idle timeout does not wait for an unanswered HTTP/1.1 request

    def started(self) -> bool:
        return self._started

    def head_pending(self) -> bool:
        """A request head begun and not ended (h11 bounds its size at 64 KiB)."""
        conn = self.conn
        return conn.their_state is h11.IDLE and bool(conn.trailing_data[0])


_ON_EVENT: dict[type, Callable[[H11Driver, Any], bool]] = {
    h11.Request: H11Driver._on_request,
    h11.Data: H11Driver._on_data,
    h11.EndOfMessage: H11Driver._on_end,
    h11.ConnectionClosed: H11Driver._on_closed,
}
