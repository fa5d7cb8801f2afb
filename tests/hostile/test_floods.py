"""Frame floods on one connection (CVE-2023-44487 Rapid Reset, SETTINGS, PING, zero-length
DATA, unknown frames): the simulator counts them per connection and answers GOAWAY
ENHANCE_YOUR_CALM past a threshold, so a normal APNs request on another connection is
answered within ``WORST_S`` throughout, and a reset stream never reaches the provider."""

from __future__ import annotations

import threading
import time

import hpack
import pytest
from hostile_peers import (
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    ENHANCE_YOUR_CALM,
    HEADERS,
    PING,
    RST_STREAM,
    SETTINGS,
    Measure,
    Target,
    flood,
    frame,
    under_attack,
)

pytestmark = pytest.mark.timeout(60)

GROWTH_MB = 32
WORST_S = 1.0
N = 100_000


def _request_blocks(target: Target, token: str, n: int) -> list[bytes]:
    """``n`` header blocks for one APNs send, the first with indexing, the rest indexed."""
    enc = hpack.Encoder()
    headers = target.apns_headers(token)
    first = enc.encode(headers)
    again = enc.encode(headers)
    return [first] + [again] * (n - 1)


def rapid_reset(target: Target, token: str, n: int) -> bytes:
    out = bytearray()
    for i, block in enumerate(_request_blocks(target, token, n)):
        sid = 2 * i + 1
        out += frame(HEADERS, END_HEADERS, sid, block)
        out += frame(DATA, END_STREAM, sid, b'{"aps":{"alert":"hi"}}')
        out += frame(RST_STREAM, 0, sid, (8).to_bytes(4, "big"))  # CANCEL
    return bytes(out)


def _zero_data(target: Target, token: str, n: int) -> bytes:
    block = _request_blocks(target, token, 1)[0]
    return frame(HEADERS, END_HEADERS, 1, block) + frame(DATA, 0, 1) * n


FLOODS = {
    "settings": lambda target, token: frame(SETTINGS, 0, 0) * N,
    "ping": lambda target, token: frame(PING, 0, 0, b"12345678") * N,
    "zero-length data": lambda target, token: _zero_data(target, token, N),
    "unknown frames": lambda target, token: frame(0xFA, 0, 0, b"junk") * N,
    "rapid reset": lambda target, token: rapid_reset(target, token, N),
}


def _check(m: Measure, target: Target) -> None:
    assert m.attack_error is None, m.attack_error
    assert m.growth_mb < GROWTH_MB, m.summary("growth")
    assert all(st == 200 for st, _s in m.during), m.during
    assert m.worst_s < WORST_S, m.summary("latency")
    assert m.after[0] == 200
    assert target.errors_logged() == []


@pytest.mark.parametrize("name", list(FLOODS))
def test_flood_is_answered_with_enhance_your_calm(target: Target, name: str) -> None:
    token = target.mint("apns")[0]["token"]
    payload = FLOODS[name](target, token)
    m = under_attack(
        target, lambda stop: flood(target.apns, payload, stop), seconds=8.0, name=f"{name} flood"
    )
    result = m.attack_result
    print(f"[hostile] {name} flood: {result.sent / len(payload):.0%} sent, goaway {result.goaway}")
    assert result.goaway == ENHANCE_YOUR_CALM, result
    _check(m, target)


def test_a_reset_stream_never_reaches_the_provider(target: Target) -> None:
    dev = target.mint("apns")[0]
    payload = rapid_reset(target, dev["token"], 50)
    result = flood(target.apns, payload, threading.Event(), limit_s=2.0)
    assert not result.closed or result.goaway is not None
    time.sleep(0.3)
    inbox = target.control("GET", f"/_sim/devices/{dev['id']}/inbox")
    assert inbox["messages"] == [], len(inbox["messages"])


def test_continuation_flood_is_bounded(target: Target) -> None:
    """A header block that never ends: CONTINUATION frames of junk, past any sane size."""
    block = b"\x00" * 16384
    payload = frame(HEADERS, 0, 1, block) + frame(CONTINUATION, 0, 1, block) * 2000
    m = under_attack(
        target, lambda stop: flood(target.apns, payload, stop), seconds=6.0, name="continuation"
    )
    assert m.attack_result.closed or m.attack_result.goaway is not None
    _check(m, target)
