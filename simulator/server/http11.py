"""The HTTP/1.1 driver: h11's events in, :class:`Request` out, one request at a time.

Pipelined requests queue up and are run in order, each once the previous one has been
answered. A request h11 cannot parse gets the status h11 suggests and the connection
closes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import h11

from simulator.server.driver import DriverHost
from simulator.wire import ConnectionInfo, Request, Respond


class H11Driver:
    """One HTTP/1.1 connection's protocol state (ALPN ``http/1.1``, or no h2 preface)."""

    def __init__(self, host: DriverHost, transport: asyncio.Transport, info: ConnectionInfo):
        self.host = host
        self.transport = transport
        self.info = info
        info.http_version = "1.1"
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
        self._queue: list[Request] = []
        self._busy = False  # a request is with the handler, not yet answered
        self._head: h11.Request | None = None
        self._body = bytearray()

    def start(self, initial: bytes) -> None:
        if initial:
            self.receive(initial)

    # -- reading ----------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        conn = self.conn
        if data:  # h11 takes b"" as end-of-stream; b"" here only means "look at the buffer again"
            conn.receive_data(data)
        on = _ON_EVENT
        while True:
            try:
                ev = conn.next_event()
            except h11.RemoteProtocolError as exc:
                self._error(exc.error_status_hint)
                return
            if ev is h11.NEED_DATA or ev is h11.PAUSED:
                break
            handler = on.get(type(ev))
            if handler is not None and handler(self, ev):
                return
        self._pump()

    # Event handlers (see _ON_EVENT); True means stop reading.

    def _on_request(self, ev: h11.Request) -> bool:
        self._head = ev
        self._body = bytearray()
        return False

    def _on_data(self, ev: h11.Data) -> bool:
        self._body += ev.data
        return False

    def _on_end(self, ev: h11.EndOfMessage) -> bool:
        head = self._head
        assert head is not None
        headers = [
            (k.decode("latin-1").lower(), v.decode("utf-8", "replace")) for k, v in head.headers
        ]
        authority = next((v for k, v in headers if k == "host"), "")
        req = Request(
            head.method.decode("latin-1"),
            head.target.decode("latin-1"),
            headers,
            bytes(self._body),
            self.info,
            0,
            authority,
            "https" if self.info.tls else "http",
        )
        self._queue.append(req)
        return False

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
                        headers=[("content-length", str(len(body))), ("connection", "close")],
                    )
                )
                + conn.send(h11.Data(data=body))
                + conn.send(h11.EndOfMessage())
            )
        except h11.LocalProtocolError:
            pass
        self.host.close()

    def _pump(self) -> None:
        if self._busy or not self._queue or self.host.closed:
            return
        req = self._queue.pop(0)
        self._busy = True
        self.host.arm_idle()
        self.host.run(req)

    # -- writing ----------------------------------------------------------------

    def respond(self, req: Request, resp: Respond) -> None:
        conn = self.conn
        if self.host.closed:
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
                self.host.close()
                return
            conn.start_next_cycle()
        except h11.LocalProtocolError:
            self.host.close()
            return
        self._busy = False
        if conn.their_state is h11.DONE or conn.their_state is h11.IDLE:
            # more pipelined bytes may be buffered
            self.receive(b"")

    def reset_stream(self, req: Request, error_code: int) -> None:
        self.host.abort()  # no streams on HTTP/1.1: the request dies with its connection

    def go_away(self, error_code: int, debug_data: bytes, last_stream_id: int | None) -> None:
        pass  # no GOAWAY on HTTP/1.1: the connection just closes

    def send_pending_settings(self, info: ConnectionInfo) -> None:
        pass  # SETTINGS are h2's

    def busy(self) -> bool:
        return False  # the idle timeout does not wait for an unanswered HTTP/1.1 request


_ON_EVENT: dict[type, Callable[[H11Driver, Any], bool]] = {
    h11.Request: H11Driver._on_request,
    h11.Data: H11Driver._on_data,
    h11.EndOfMessage: H11Driver._on_end,
    h11.ConnectionClosed: H11Driver._on_closed,
}
