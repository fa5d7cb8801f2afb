"""Request bodies a peer never finishes: the simulator holds at most its cap per request.

Each attack streams a body that never ends (h2 following flow control, HTTP/1.1 with a
10^12 Content-Length or chunked) while a normal APNs sender keeps sending; the
simulator's RSS may grow by at most ``GROWTH_MB`` and the normal request is answered
within ``WORST_S`` during the attack and 200 after it.
"""

from __future__ import annotations

import threading

import pytest
from hostile_peers import MB, H2Peer, Target, connect, read_some, under_attack

pytestmark = pytest.mark.timeout(60)

GROWTH_MB = 32
WORST_S = 1.0
FCM_PATH = "/v1/projects/pushsim-project/messages:send"


def _check(m: object, target: Target) -> None:
    from hostile_peers import Measure

    assert isinstance(m, Measure)
    assert m.attack_error is None, m.attack_error
    assert m.growth_mb < GROWTH_MB, m.summary("growth")
    assert all(st == 200 for st, _s in m.during), m.during
    assert m.worst_s < WORST_S, m.summary("latency")
    assert m.after[0] == 200
    assert target.errors_logged() == []


def test_h2_endless_body_is_cut_at_the_cap(target: Target) -> None:
    token = target.mint("apns")[0]["token"]

    def attack(stop: threading.Event) -> tuple[int, dict[int, int], dict[int, int]]:
        peer = H2Peer(target.apns)
        try:
            sid = peer.open_stream(target.apns_headers(token))
            sent = peer.stream_body(sid, stop, limit_s=4.0, cap=400 * MB)
            peer.pump(0.5)
            return sent, peer.statuses, peer.resets
        finally:
            peer.close()

    m = under_attack(target, attack, seconds=6.0, name="h2 endless body")
    sent, answered, resets = m.attack_result
    print(f"[hostile] h2 endless body: {sent / MB:.1f} MB accepted")
    assert sent < 32 * MB  # the simulator stopped taking bytes
    assert answered.get(1) == 413 or 1 in resets, (answered, resets)
    _check(m, target)


def test_h2_many_unfinished_bodies_stay_under_the_connection_window(target: Target) -> None:
    def attack(stop: threading.Event) -> int:
        peer = H2Peer(target.endpoints["fcm"])
        total = 0
        try:
            for _ in range(200):  # streams whose bodies never end
                if stop.is_set() or peer.closed:
                    break
                sid = peer.open_stream(
                    [
                        (":method", "POST"),
                        (":scheme", "http"),
                        (":path", FCM_PATH),
                        (":authority", "localhost"),
                        ("content-type", "application/json"),
                    ]
                )
                total += peer.stream_body(sid, stop, limit_s=0.5, cap=200_000)
            return total
        finally:
            peer.close()

    m = under_attack(target, attack, seconds=8.0, name="h2 unfinished bodies")
    print(f"[hostile] h2 unfinished bodies: {m.attack_result / MB:.1f} MB accepted")
    _check(m, target)


def _h11_head(target: Target, token: str, framing: str) -> bytes:
    return (
        f"POST /3/device/{token} HTTP/1.1\r\nhost: localhost\r\napns-topic: com.example.pushsim\r\n"
        f"authorization: bearer {target.apns_headers(token)[4][1].split()[1]}\r\n"
        f"{framing}\r\n\r\n"
    ).encode()


@pytest.mark.parametrize("framing", ["content-length: 1000000000000", "transfer-encoding: chunked"])
def test_h11_endless_body_is_refused(target: Target, framing: str) -> None:
    token = target.mint("apns")[0]["token"]
    chunked = framing.startswith("transfer")
    block = b"x" * 65536
    piece = (b"10000\r\n" + block + b"\r\n") if chunked else block

    def attack(stop: threading.Event) -> tuple[int, bytes]:
        sock = connect(target.apns)
        sent = 0
        try:
            sock.sendall(_h11_head(target, token, framing))
            sock.settimeout(1.0)
            while not stop.is_set() and sent < 400 * MB:
                try:
                    sock.sendall(piece)
                except OSError:
                    break
                sent += len(piece)
            answer, _closed = read_some(sock, 0.5)
            return sent, answer
        finally:
            sock.close()

    m = under_attack(target, attack, seconds=5.0, name=f"h11 endless body ({framing})")
    sent, answer = m.attack_result
    print(f"[hostile] h11 endless body: {sent / MB:.1f} MB accepted")
    assert sent < 32 * MB  # the cap, then at most 16 MiB read and thrown away
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    _check(m, target)
