"""The sender's request header encoder against hpack's decoder (RFC 7541 round trips)."""

from __future__ import annotations

import random

import hpack

from sender.transport.header_block import RequestHeaderEncoder, encode_int


def _request(i: int, token: bytes = b"bearer abc") -> list[tuple[bytes, bytes]]:
    return [
        (b":method", b"POST"),
        (b":scheme", b"https"),
        (b":authority", b"127.0.0.1:8443"),
        (b":path", b"/3/device/" + f"{i:064x}".encode()),
        (b"authorization", token),
        (b"apns-id", f"00000000-0000-0000-0000-{i:012d}".encode()),
        (b"apns-topic", b"com.example.app"),
        (b"apns-push-type", b"alert"),
        (b"content-length", str(40 + i % 7).encode()),
    ]


def test_round_trip_and_repeated_headers_become_one_byte_indexes() -> None:
    enc, dec = RequestHeaderEncoder(), hpack.Decoder()
    sizes = []
    for i in range(50):
        headers = _request(i)
        block = enc.encode(headers)
        sizes.append(len(block))
        assert dec.decode(block, raw=True) == headers
    # After the first request only the per-request headers are literals.
    assert sizes[1] < sizes[0] - 30
    # :authority, authorization, apns-topic and apns-push-type once each (:method and
    # :scheme are in the static table); the per-request values never.
    assert enc.inserted == 4
    assert enc.evicted == 0


def test_unique_values_never_enter_the_table() -> None:
    enc = RequestHeaderEncoder()
    for i in range(200):
        enc.encode(_request(i))
    assert enc.size < 400


def test_token_changes_evict_oldest_entries_in_step_with_the_decoder() -> None:
    rng = random.Random(5)
    enc, dec = RequestHeaderEncoder(max_size=512), hpack.Decoder()
    for i in range(300):
        token = b"bearer " + bytes(
            rng.choice(b"abcdef0123456789") for _ in range(rng.randint(5, 300))
        )
        extra = [(f"x-h{rng.randint(0, 30)}".encode(), str(rng.randint(0, 9)).encode())]
        headers = _request(i, token) + extra
        assert dec.decode(enc.encode(headers), raw=True) == headers
    assert enc.evicted > 0
    assert enc.size <= 512


def test_peer_table_size_changes_are_signalled() -> None:
    enc, dec = RequestHeaderEncoder(), hpack.Decoder()
    assert dec.decode(enc.encode(_request(0)), raw=True) == _request(0)
    enc.header_table_size = 0  # the peer's SETTINGS_HEADER_TABLE_SIZE
    dec.max_allowed_table_size = 0
    block = enc.encode(_request(1))
    assert block[0] == 0x20  # dynamic table size update to 0 first
    assert dec.decode(block, raw=True) == _request(1)
    assert enc.size == 0 and dec.header_table_size == 0
    enc.header_table_size = 4096
    dec.max_allowed_table_size = 4096
    for i in range(2, 5):
        assert dec.decode(enc.encode(_request(i)), raw=True) == _request(i)
    assert enc.size > 0


def test_oversized_and_unknown_names_and_string_headers() -> None:
    enc, dec = RequestHeaderEncoder(max_size=100), hpack.Decoder()
    headers = [
        (":method", "GET"),
        ("x-big", "v" * 200),  # larger than the table: literal, not indexed
        ("x-custom", "1"),
    ]
    want = [(k.encode(), v.encode()) for k, v in headers]
    for _ in range(3):
        assert dec.decode(enc.encode(headers), raw=True) == want
    assert enc.inserted == 1


def test_integer_encoding_matches_rfc_examples() -> None:
    assert encode_int(10, 5) == b"\x0a"  # C.1.1
    assert encode_int(1337, 5) == b"\x1f\x9a\x0a"  # C.1.2
    assert encode_int(42, 8) == b"\x2a"  # C.1.3
