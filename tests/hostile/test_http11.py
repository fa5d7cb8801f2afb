"""HTTP/1.1 shapes: deep pipelining in one read, and a request with both Content-Length
and Transfer-Encoding (RFC 9112 section 6.1)."""

from __future__ import annotations

import threading

import pytest
from hostile_peers import Measure, Target, connect, read_some, under_attack

pytestmark = pytest.mark.timeout(60)

WORST_S = 1.0


def test_thousands_of_pipelined_requests_in_one_read(target: Target) -> None:
    n = 2000
    one = b"GET /wp/x HTTP/1.1\r\nhost: localhost\r\n\r\n"

    def attack(stop: threading.Event) -> int:
        sock = connect(target.endpoints["webpush"])
        try:
            sock.sendall(one * n)
            data = b""
            while data.count(b"HTTP/1.1 ") < n and not stop.is_set():
                more, closed = read_some(sock, 0.5)
                data += more
                if closed:
                    break
            return data.count(b"HTTP/1.1 ")
        finally:
            sock.close()

    m = under_attack(target, attack, seconds=10.0, name="h11 pipelining")
    assert isinstance(m, Measure) and m.attack_error is None
    print(f"[hostile] h11 pipelining: {m.attack_result} of {n} answered")
    assert m.attack_result == n
    assert m.worst_s < WORST_S
    assert m.after[0] == 200
    assert target.errors_logged() == []


def test_content_length_with_transfer_encoding_closes_after_the_answer(target: Target) -> None:
    smuggled = b"GET /_smuggled HTTP/1.1\r\nhost: localhost\r\n\r\n"
    request = (
        b"POST /wp/x HTTP/1.1\r\nhost: localhost\r\ncontent-length: 5\r\n"
        b"transfer-encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled
    )
    sock = connect(target.endpoints["webpush"])
    try:
        sock.sendall(request)
        data, closed = read_some(sock, 2.0)
    finally:
        sock.close()
    print(f"\n[hostile] CL+TE: {data.count(b'HTTP/1.1 ')} answers, closed={closed}")
    assert data.count(b"HTTP/1.1 ") == 1 and closed, data
    assert b"connection: close" in data.lower()
