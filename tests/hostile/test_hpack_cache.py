"""The Huffman decode cache: header blocks hpack rejects must not leave their decodes behind.

Each attack connection sends one header block of a ~1 MB Huffman-coded value (over the
header list limit, so the block is rejected); the cache keeps only short values, bounded in
bytes, so the simulator's RSS stays flat however many such blocks arrive."""

from __future__ import annotations

import random
import threading

import pytest
from hostile_peers import (
    CONTINUATION,
    END_HEADERS,
    HEADERS,
    Measure,
    Target,
    flood,
    frame,
    under_attack,
)
from hpack.hpack import encode_integer

pytestmark = pytest.mark.timeout(60)

GROWTH_MB = 32
WORST_S = 1.0
# Eight characters with 5-bit Huffman codes make five whole bytes: any sequence of such
# 5-byte units is a valid Huffman string (RFC 7541 appendix B).
_FIVE_BIT = "012aceiost"


def _unit(chars: str) -> bytes:
    from hpack.huffman import HuffmanEncoder
    from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH

    out: bytes = HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH).encode(chars.encode())
    assert len(out) == 5
    return out


def huge_block(rng: random.Random, size: int = 1 << 20) -> bytes:
    units = [_unit("".join(rng.choice(_FIVE_BIT) for _ in range(8))) for _ in range(64)]
    value = b"".join(rng.choice(units) for _ in range(size // 5))
    length = encode_integer(len(value), 7)
    length[0] |= 0x80  # Huffman
    return b"\x00\x01x" + bytes(length) + value  # literal, new name "x"


def as_frames(block: bytes, max_frame: int = 16384) -> bytes:
    pieces = [block[i : i + max_frame] for i in range(0, len(block), max_frame)]
    out = bytearray(frame(HEADERS, END_HEADERS if len(pieces) == 1 else 0, 1, pieces[0]))
    for i, piece in enumerate(pieces[1:], 1):
        out += frame(CONTINUATION, END_HEADERS if i == len(pieces) - 1 else 0, 1, piece)
    return bytes(out)


def test_rejected_header_blocks_leave_nothing_in_the_cache(target: Target) -> None:
    rng = random.Random(5)
    # 60 frames of 16 KiB: under h2's 64-frame CONTINUATION backlog
    blocks = [as_frames(huge_block(rng, 60 * 16384 - 64)) for _ in range(40)]

    def attack(stop: threading.Event) -> int:
        rejected = 0
        for payload in blocks:
            if stop.is_set():
                break
            result = flood(target.apns, payload, stop, limit_s=2.0)
            rejected += result.goaway is not None or result.closed
        return rejected

    m = under_attack(target, attack, seconds=20.0, name="huffman cache")
    assert isinstance(m, Measure)
    assert m.attack_error is None, m.attack_error
    assert m.attack_result == len(blocks)  # every block was refused
    assert m.growth_mb < GROWTH_MB, m.summary("growth")
    assert m.worst_s < WORST_S, m.summary("latency")
    assert m.after[0] == 200
    assert target.errors_logged() == []
