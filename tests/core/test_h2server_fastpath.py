"""The server loop's direct-write response path, checked frame by frame against h2's own path.

The same path through a real listener and h2's client: tests/wire/test_h2server_fastpath_wire.py.
"""

from __future__ import annotations

import h2.config
import h2.connection
import hpack
import pytest

from simulator.server.frames import H2_CONFIG as _H2_CONFIG
from simulator.server.frames import LiteralEncoder as _LiteralEncoder
from simulator.server.frames import ServerConnection as _ServerConnection

BIG = bytes(range(256)) * 800  # 204,800 bytes: over one frame and the client's 65,535 window


def _server_with_request(body: bool) -> tuple[_ServerConnection, h2.connection.H2Connection]:
    server = _ServerConnection(config=_H2_CONFIG)
    server.encoder = _LiteralEncoder()  # type: ignore[assignment]
    server.initiate_connection()
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    req = [(b":method", b"POST"), (b":scheme", b"http"), (b":authority", b"x"), (b":path", b"/")]
    client.send_headers(1, req, end_stream=not body)
    if body:
        client.send_data(1, b"{}", end_stream=True)
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send())  # the client's SETTINGS ACK
    server.data_to_send()
    return server, client


@pytest.mark.parametrize("body", [b"", b'{"name":"projects/p/messages/1"}'])
def test_direct_write_matches_h2s_own_frames_and_bookkeeping(body: bytes) -> None:
    headers = (("content-type", "application/json"), ("apns-id", "6f1b6f3e-8a2f"))
    fast, _ = _server_with_request(bool(body))
    slow, _ = _server_with_request(bool(body))
    enc = fast.encoder
    assert isinstance(enc, _LiteralEncoder)
    assert fast.send_response(1, enc.encode_response(200, headers, len(body)), body)
    hdrs = [
        (b":status", b"200"),
        (b"content-type", b"application/json"),
        hpack.NeverIndexedHeaderTuple(b"apns-id", b"6f1b6f3e-8a2f"),
    ]
    if body:
        hdrs.append((b"content-length", str(len(body)).encode()))
        slow.send_headers(1, hdrs)
        slow.send_data(1, body, end_stream=True)
    else:
        slow.send_headers(1, hdrs, end_stream=True)
    assert fast.data_to_send() == slow.data_to_send()
    for conn in (fast, slow):
        assert conn.streams[1].closed
        assert conn.open_inbound_streams == 0
    assert fast.streams.get(1) is None and slow.streams.get(1) is None  # both pruned
    assert fast._closed_streams[1] == slow._closed_streams[1]
    assert fast.outbound_flow_control_window == slow.outbound_flow_control_window
    assert fast.state_machine.state == slow.state_machine.state


def test_a_body_over_one_frame_or_a_closed_stream_is_left_to_h2() -> None:
    server, _ = _server_with_request(False)
    enc = server.encoder
    assert isinstance(enc, _LiteralEncoder)
    before = server.outbound_flow_control_window
    assert not server.send_response(1, enc.encode_response(200, (), len(BIG)), BIG)
    assert server.data_to_send() == b"" and server.outbound_flow_control_window == before
    assert not server.send_response(99, enc.encode_response(200, (), 0), b"")  # no such stream


def test_a_pending_table_size_update_leads_the_cached_block() -> None:
    enc, dec = _LiteralEncoder(), hpack.Decoder()
    for size in (4096, 0):
        enc.header_table_size = size
        dec.max_allowed_table_size = size
        block = enc.encode_response(201, (("location", "https://x/1"), ("ttl", "60")), 5)
        assert dec.decode(block, raw=True) == [
            (b":status", b"201"),
            (b"location", b"https://x/1"),
            (b"ttl", b"60"),
            (b"content-length", b"5"),
        ]
    assert block[0] == 0x20  # the size update to 0 came first
