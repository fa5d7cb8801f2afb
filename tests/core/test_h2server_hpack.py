"""The server loop's response header encoder, checked against hpack's own decoder."""

from __future__ import annotations

import hpack

from simulator.server.frames import LiteralEncoder as _LiteralEncoder


def test_literal_encoder_round_trips_through_a_real_decoder() -> None:
    enc, dec = _LiteralEncoder(), hpack.Decoder()
    headers = [
        (b":status", b"200"),
        hpack.NeverIndexedHeaderTuple(b"apns-id", b"6f1b6f3e-8a2f-4c1e-9c55-1d2f3a4b5c6d"),
        (b"content-type", b"application/json"),
        (b"x-long", b"v" * 300),  # a length past the 7-bit prefix
    ]
    for _ in range(3):  # the decoder's dynamic table must stay empty and in step
        assert dec.decode(enc.encode(headers), raw=True) == headers
    assert dec.decode(enc.encode([(b":status", b"429"), ("retry-after", "5")]), raw=True) == [
        (b":status", b"429"),
        (b"retry-after", b"5"),
    ]
    assert len(dec.header_table.dynamic_entries) == 0


def test_never_indexed_headers_stay_never_indexed() -> None:
    enc, dec = _LiteralEncoder(), hpack.Decoder()
    decoded = dec.decode(enc.encode([hpack.NeverIndexedHeaderTuple(b"apns-id", b"x")]), raw=True)
    assert isinstance(decoded[0], hpack.NeverIndexedHeaderTuple)


def test_a_smaller_peer_table_size_is_signalled_before_the_next_block() -> None:
    enc, dec = _LiteralEncoder(), hpack.Decoder()
    enc.header_table_size = 0
    block = enc.encode([(b":status", b"200")])
    assert block[0] == 0x20  # dynamic table size update to 0
    dec.max_allowed_table_size = 0
    assert dec.decode(block, raw=True) == [(b":status", b"200")]
    assert enc.encode([(b":status", b"200")]) == b"\x88"  # signalled once
