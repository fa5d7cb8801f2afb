"""A header block that does not decode, on a stream refused over the stream limit: the
simulator answers GOAWAY COMPRESSION_ERROR (RFC 9113 section 4.3) and logs no error."""

from __future__ import annotations

import pytest
from hostile_peers import (
    COMPRESSION_ERROR,
    END_HEADERS,
    HEADERS,
    Target,
    client_preface,
    connect,
    encoder_block,
    frame,
    goaway_code,
    read_some,
)

pytestmark = pytest.mark.timeout(30)

FCM_PATH = "/v1/projects/pushsim-project/messages:send"


def test_an_undecodable_block_on_a_refused_stream_is_a_compression_error(target: Target) -> None:
    block = encoder_block(
        [(":method", "POST"), (":scheme", "http"), (":path", FCM_PATH), (":authority", "x")],
        huffman=False,
    )
    # streams that stay open (no END_STREAM) up to past the FCM listener's ceiling, then
    # one more whose block refers to a dynamic-table entry that does not exist
    opened = b"".join(frame(HEADERS, END_HEADERS, 2 * i + 1, block) for i in range(300))
    garbage = frame(HEADERS, END_HEADERS, 601, b"\xff\xff\xff\xff\x0f")
    sock = connect(target.endpoints["fcm"])
    try:
        sock.sendall(client_preface() + opened + garbage)
        data, closed = read_some(sock, 1.5)
    finally:
        sock.close()
    print(f"\n[hostile] undecodable refused block: goaway {goaway_code(data)}, closed={closed}")
    assert goaway_code(data) == COMPRESSION_ERROR
    assert target.errors_logged() == []
