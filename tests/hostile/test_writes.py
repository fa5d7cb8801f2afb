"""Peers that send and never read: the simulator stops reading from a connection whose
write buffer is full (the transport's high-water mark), so what it holds for such a peer is
bounded, and the normal APNs sender on another connection is unaffected."""

from __future__ import annotations

import socket
import threading

import hpack
import pytest
from hostile_peers import (
    END_HEADERS,
    END_STREAM,
    HEADERS,
    MB,
    Measure,
    Target,
    client_preface,
    connect,
    frame,
    send_then_hold,
    under_attack,
)

pytestmark = pytest.mark.timeout(60)

GROWTH_MB = 32
WORST_S = 1.0


def _requests(n: int) -> bytes:
    """``n`` FCM sends without credentials, each a few bytes (the header block indexed)
    and each answered 401 with a google.rpc.Status body of about 300 bytes."""
    enc = hpack.Encoder()
    headers = [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/v1/projects/pushsim-project/messages:send"),
        (":authority", "localhost"),
    ]
    first, again = enc.encode(headers), enc.encode(headers)
    out = bytearray()
    for i in range(n):
        out += frame(HEADERS, END_HEADERS | END_STREAM, 2 * i + 1, first if i == 0 else again)
    return bytes(out)


def _check(m: Measure, target: Target) -> None:
    assert m.attack_error is None, m.attack_error
    assert m.growth_mb < GROWTH_MB, m.summary("growth")
    assert all(st == 200 for st, _s in m.during), m.during
    assert m.worst_s < WORST_S, m.summary("latency")
    assert m.after[0] == 200
    assert target.errors_logged() == []


def test_requests_from_a_peer_that_never_reads(target: Target) -> None:
    payload = _requests(1_000_000)

    def attack(stop: threading.Event) -> int:
        sock = connect(target.endpoints["fcm"])
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            sock.sendall(client_preface())
            return send_then_hold(sock, payload, stop, limit_s=8.0)
        finally:
            sock.close()

    m = under_attack(target, attack, seconds=10.0, name="never-reading requests")
    print(f"[hostile] never-reading requests: {m.attack_result / MB:.1f} MB taken")
    _check(m, target)


def test_h11_pipelined_requests_from_a_peer_that_never_reads(target: Target) -> None:
    one = b"GET /wp/x HTTP/1.1\r\nhost: localhost\r\n\r\n"
    payload = one * 500_000

    def attack(stop: threading.Event) -> int:
        sock = connect(target.endpoints["webpush"])
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            return send_then_hold(sock, payload, stop, limit_s=4.0)
        finally:
            sock.close()

    m = under_attack(target, attack, seconds=7.0, name="never-reading h11")
    print(f"[hostile] never-reading h11: {m.attack_result / MB:.1f} MB taken")
    _check(m, target)
