"""Blocking HTTP/2 clients the wire and e2e tests share (real sockets, no mocks).

- :class:`H2Client`: one TLS (or h2c) connection, APNs-style requests one at a time;
- :func:`h2_exchange`: every request at once on one h2c connection, and what came back
  (statuses, bodies, resets, GOAWAY), for the fault tests;
- ``make_token``, ``FCM_PATH``, ``fcm_body``: what those requests carry.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import h2.config
import h2.connection
import h2.events
import h2.settings

from simulator.testing.handle import apns_provider_token

PAYLOAD = b'{"aps":{"alert":"hi"}}'


class H2Client:
    """A small blocking HTTP/2 client: one connection, requests one at a time."""

    def __init__(
        self, url: str, ca_file: str, cert_file: str | None = None, alpn: bool = True
    ) -> None:
        parts = urlsplit(url)
        raw = socket.create_connection((parts.hostname, parts.port), timeout=10)
        if parts.scheme == "https":
            ctx = ssl.create_default_context(cafile=ca_file)
            if alpn:
                ctx.set_alpn_protocols(["h2"])
            if cert_file:
                ctx.load_cert_chain(cert_file)
            self.sock: socket.socket = ctx.wrap_socket(raw, server_hostname=parts.hostname)
        else:
            self.sock = raw
        self.conn = h2.connection.H2Connection()
        self.conn.initiate_connection()
        self.sock.sendall(self.conn.data_to_send())
        self.goaway: h2.events.ConnectionTerminated | None = None
        self.max_streams: int | None = None
        self.events: list[Any] = []

    def _pump(self) -> list[Any]:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("closed")
        events = self.conn.receive_data(data)
        for ev in events:
            if isinstance(ev, h2.events.ConnectionTerminated):
                self.goaway = ev
            if isinstance(ev, h2.events.RemoteSettingsChanged):
                ch = ev.changed_settings.get(h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS)
                if ch is not None:
                    self.max_streams = ch.new_value
        out = self.conn.data_to_send()
        if out:
            self.sock.sendall(out)
        self.events += events
        return events

    def settle(self, seconds: float = 0.2) -> None:
        """Read whatever the server sends for a moment (SETTINGS, GOAWAY)."""
        self.sock.settimeout(seconds)
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline and self.goaway is None:
                self._pump()
        except (TimeoutError, ConnectionError, OSError):
            pass
        self.sock.settimeout(10)

    def request(
        self, path: str, headers: list[tuple[str, str]], body: bytes = PAYLOAD, method: str = "POST"
    ) -> tuple[int, dict[str, str], bytes]:
        sid = self.conn.get_next_available_stream_id()
        hdrs = [
            (":method", method),
            (":scheme", "https"),
            (":path", path),
            (":authority", "localhost"),
            *headers,
        ]
        self.conn.send_headers(sid, hdrs, end_stream=not body)
        if body:
            self.conn.send_data(sid, body, end_stream=True)
        self.sock.sendall(self.conn.data_to_send())
        status, resp_headers, resp_body = 0, {}, b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for ev in self._pump():
                if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                    resp_headers = {k.decode(): v.decode() for k, v in ev.headers}
                    status = int(resp_headers[":status"])
                elif isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
                    resp_body += ev.data
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, sid)
                elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                    return status, resp_headers, resp_body
        raise TimeoutError("no response")

    def close(self) -> None:
        self.sock.close()


make_token = apns_provider_token


def addr(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


@dataclass
class StreamResult:
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    ended: bool = False
    reset: int | None = None  # RST_STREAM error code


@dataclass
class H2Outcome:
    streams: dict[int, StreamResult]
    goaway_last_stream: int | None = None
    connection_lost: bool = False
    ping_acked: bool = False

    def complete(self, ping: bool) -> bool:
        """Every stream ended or was reset (and the ping, if one was sent, came back)."""
        answered = all(s.ended or s.reset is not None for s in self.streams.values())
        return answered and (self.ping_acked or not ping)


def _on_response(out: H2Outcome, conn: h2.connection.H2Connection, ev: Any) -> None:
    hdrs = {k: v for k, v in ev.headers}
    out.streams[ev.stream_id].status = int(hdrs[":status"])
    out.streams[ev.stream_id].headers = hdrs


def _on_data(out: H2Outcome, conn: h2.connection.H2Connection, ev: Any) -> None:
    out.streams[ev.stream_id].body += ev.data
    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)


def _on_ended(out: H2Outcome, conn: h2.connection.H2Connection, ev: Any) -> None:
    out.streams[ev.stream_id].ended = True


def _on_reset(out: H2Outcome, conn: h2.connection.H2Connection, ev: Any) -> None:
    out.streams[ev.stream_id].reset = ev.error_code


def _on_goaway(out: H2Outcome, conn: h2.connection.H2Connection, ev: Any) -> None:
    out.goaway_last_stream = ev.last_stream_id


def _on_ping_ack(out: H2Outcome, conn: h2.connection.H2Connection, ev: Any) -> None:
    out.ping_acked = True


# What each h2 event the exchange cares about records in the outcome.
_EVENTS: dict[type, Callable[[H2Outcome, h2.connection.H2Connection, Any], None]] = {
    h2.events.ResponseReceived: _on_response,
    h2.events.DataReceived: _on_data,
    h2.events.StreamEnded: _on_ended,
    h2.events.StreamReset: _on_reset,
    h2.events.ConnectionTerminated: _on_goaway,
    h2.events.PingAckReceived: _on_ping_ack,
}


def _send_requests(
    conn: h2.connection.H2Connection, host: str, requests: list[tuple[str, bytes]]
) -> H2Outcome:
    out = H2Outcome({})
    for path, body in requests:
        sid = conn.get_next_available_stream_id()
        conn.send_headers(
            sid,
            [
                (":method", "POST"),
                (":path", path),
                (":scheme", "http"),
                (":authority", host),
                ("content-type", "application/json"),
                ("ttl", "60"),
            ],
        )
        conn.send_data(sid, body, end_stream=True)
        out.streams[sid] = StreamResult()
    return out


def _read_until_complete(
    sock: socket.socket,
    conn: h2.connection.H2Connection,
    out: H2Outcome,
    deadline: float,
    ping: bool,
) -> None:
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(65536)
        except TimeoutError:
            return
        if not data:
            out.connection_lost = True
            return
        for ev in conn.receive_data(data):
            record = _EVENTS.get(type(ev))
            if record is not None:
                record(out, conn, ev)
        pending = conn.data_to_send()
        if pending:
            sock.sendall(pending)
        if out.complete(ping):
            return


def h2_exchange(
    url: str, requests: list[tuple[str, bytes]], *, wait: float = 1.5, ping: bool = False
) -> H2Outcome:
    """Send every request at once on one h2c connection; collect what came back."""
    sock = socket.create_connection(addr(url), timeout=wait)
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
    )
    conn.initiate_connection()
    out = _send_requests(conn, "{}:{}".format(*addr(url)), requests)
    if ping:
        conn.ping(b"12345678")
    sock.sendall(conn.data_to_send())
    try:
        _read_until_complete(sock, conn, out, time.monotonic() + wait, ping)
    except ConnectionResetError:
        out.connection_lost = True
    finally:
        sock.close()
    return out


FCM_PATH = "/v1/projects/pushsim-project/messages:send"


def fcm_body(token: str) -> bytes:
    return json.dumps({"message": {"token": token, "notification": {"title": "t"}}}).encode()
