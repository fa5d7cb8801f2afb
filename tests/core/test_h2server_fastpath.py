"""The server loop's direct-write response path, checked against h2's own path and client."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import h2.config
import h2.connection
import h2.errors
import h2.events
import hpack
import pytest
from h2.settings import SettingCodes

from simulator.server.protocol import (
    _H2_CONFIG,
    Listener,
    ListenerOptions,
    _LiteralEncoder,
    _ServerConnection,
)
from simulator.wire import Action, Hang, Request, Respond

MCS = SettingCodes.MAX_CONCURRENT_STREAMS
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


class _Handler:
    def handle(self, request: Request) -> Action:
        if request.path == "/hang":
            return Hang()
        if request.path == "/big":
            return Respond(200, (("content-type", "application/octet-stream"),), BIG)
        if request.path == "/body":
            return Respond(200, (("apns-id", str(request.stream_id)),), request.body[::-1])
        return Respond(200, (("apns-id", str(request.stream_id)),))


@pytest.fixture
def listener() -> Iterator[tuple[str, int]]:
    loop = asyncio.new_event_loop()
    lst = Listener("t", _Handler(), None, ListenerOptions(max_concurrent_streams=3))
    loop.run_until_complete(lst.start("127.0.0.1", 0))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield "127.0.0.1", lst.port
    finally:
        asyncio.run_coroutine_threadsafe(lst.stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def _req(path: bytes, body: bool = False) -> list[tuple[bytes, bytes]]:
    method = b"POST" if body else b"GET"
    return [(b":method", method), (b":scheme", b"http"), (b":authority", b"t"), (b":path", path)]


def _exchange(
    addr: tuple[str, int], rounds: list[list[tuple[str, bytes]]], wants: list[int]
) -> dict[int, dict[str, object]]:
    """For each round, send its requests (path, body) in one write, then read until that
    many more streams have ended or been reset; return what each stream got.

    The client ignores the server's MAX_CONCURRENT_STREAMS (as a client that has not yet
    read SETTINGS would), so the server's own refusal is what is tested."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    got: dict[int, dict[str, object]] = {}
    done = 0
    with socket.create_connection(addr, timeout=10) as sock:
        for requests, want in zip(rounds, wants, strict=True):
            for path, body in requests:
                conn.remote_settings[MCS] = 1000
                conn.remote_settings.acknowledge()
                sid = conn.get_next_available_stream_id()
                conn.send_headers(sid, _req(path.encode(), bool(body)), end_stream=not body)
                if body:
                    conn.send_data(sid, body, end_stream=True)
                got[sid] = {"data": b""}
            sock.sendall(conn.data_to_send())
            target = done + want
            for _ in range(2000):
                if done >= target:
                    break
                data = sock.recv(65536)
                assert data, "connection closed early"
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.ResponseReceived):
                        got[ev.stream_id]["headers"] = dict(ev.headers)
                    elif isinstance(ev, h2.events.DataReceived):
                        got[ev.stream_id]["data"] += ev.data  # type: ignore[operator]
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    elif isinstance(ev, h2.events.StreamEnded):
                        got[ev.stream_id]["ended"] = True
                        done += 1
                    elif isinstance(ev, h2.events.StreamReset):
                        got[ev.stream_id]["reset"] = ev.error_code
                        done += 1
                sock.sendall(conn.data_to_send())
            assert done == target
    return got


def test_responses_with_and_without_bodies_and_a_big_one_through_h2s_client(
    listener: tuple[str, int],
) -> None:
    reqs = [("/empty", b""), ("/body", b"hello"), ("/big", b""), ("/empty", b""), ("/body", b"ab")]
    got = _exchange(listener, [[r] for r in reqs], [1] * len(reqs))
    empty, body, big, empty2, body2 = (got[sid] for sid in sorted(got))
    assert empty["headers"] == {b":status": b"200", b"apns-id": b"1"} and empty["data"] == b""
    assert body["headers"] == {b":status": b"200", b"apns-id": b"3", b"content-length": b"5"}
    assert body["data"] == b"olleh" and body2["data"] == b"ba"
    assert big["data"] == BIG
    assert big["headers"][b"content-length"] == str(len(BIG)).encode()  # type: ignore[index]
    assert empty2["headers"] == {b":status": b"200", b"apns-id": b"7"}
    assert all(g.get("ended") for g in got.values())


def test_answered_streams_free_their_slot_under_a_low_stream_limit(
    listener: tuple[str, int],
) -> None:
    # Limit 3: one hanging stream, then twenty rounds of two answered streams (each round
    # fits only if the previous round's streams were closed), then three more hanging
    # streams of which the third is over the limit and must be refused.
    rounds = [[("/hang", b"")]] + [[("/empty", b""), ("/body", b"x")]] * 20 + [[("/hang", b"")] * 3]
    got = _exchange(listener, rounds, [0] + [2] * 20 + [1])
    ordered = [got[sid] for sid in sorted(got)]
    answered = ordered[1:41]
    assert all(g.get("ended") and g["headers"][b":status"] == b"200" for g in answered)  # type: ignore[index]
    assert [g["data"] for g in answered] == [b"", b"x"] * 20
    assert [g.get("reset") for g in ordered] == [None] * 43 + [h2.errors.ErrorCodes.REFUSED_STREAM]
    assert "headers" not in ordered[0] and "headers" not in ordered[41]
