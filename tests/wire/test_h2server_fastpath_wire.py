"""The server loop's direct-write response path through a real listener and h2's own client."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import h2.config
import h2.connection
import h2.errors
import h2.events
import pytest
from h2.settings import SettingCodes

from simulator.server.listener import Listener, ListenerOptions
from simulator.wire import Action, Hang, Request, Respond

MCS = SettingCodes.MAX_CONCURRENT_STREAMS
BIG = bytes(range(256)) * 800  # 204,800 bytes: over one frame and the client's 65,535 window


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
