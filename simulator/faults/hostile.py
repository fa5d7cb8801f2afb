"""The ``hostile_client`` fault: a misbehaving client the simulator runs against its own
listeners, beside the honest sender a load test measures (pure parts).

Each behaviour is what one buggy or hostile sender does to a push service, and what the
server loop is bounded against (:mod:`simulator.server.limits`):

- ``flood``: a burst of streams opened and reset at once (Rapid Reset), PINGs and
  SETTINGS; the listener answers GOAWAY ENHANCE_YOUR_CALM;
- ``slow_headers``: a header block trickled in a byte a second; the header-block timeout
  closes it;
- ``never_reading``: thousands of requests sent and the answers never read; the
  connection stops being read once its write buffer is full;
- ``endless_body``: a request body that never ends; the body cap answers and the rest is
  thrown away.

``mixed`` runs each in turn. This module reads the fault's fields (:func:`read`, the
parser's entry for the kind) and builds each behaviour's bytes; the actor that sends them
is :mod:`simulator.faults.hostile_actor`.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from functools import cache
from typing import Any, Protocol

import hpack

from simulator.faults.fields import Reader
from simulator.faults.spec import HOSTILE_BEHAVIOURS, HostileClient, Params

FIELDS = {"behaviour", "connections"}
CYCLE = HOSTILE_BEHAVIOURS[1:]  # what "mixed" runs, in turn
MAX_CONNECTIONS = 64

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, CONTINUATION = 0x0, 0x1, 0x3, 0x4, 0x6, 0x9
END_STREAM, END_HEADERS = 0x1, 0x4
CANCEL = 0x8

# what each listener's provider is sent a request for (a send the core must look at)
PATHS = {
    "apns": "/3/device/" + "0" * 64,
    "fcm": "/v1/projects/pushsim-project/messages:send",
    "webpush": "/wp/hostile-client",
}


class Head(Protocol):
    """The fields every fault has, as the parser read them."""

    def narrowed(self) -> bool: ...


def read(r: Reader, item: Mapping[str, Any], path: str, head: Head) -> Params:
    """The kind's own fields (the parser's reader for ``hostile_client``)."""
    if head.narrowed():
        raise r.fail(
            f"{path}.kind", "a hostile client is provider-wide: expected no share, token or project"
        )
    behaviour = r.choice(item, "behaviour", path, HOSTILE_BEHAVIOURS, "mixed")
    n = r.number(item, "connections", path, low=1, high=MAX_CONNECTIONS)
    if n is not None and n != int(n):
        raise r.fail(f"{path}.connections", f"expected a whole number, got {item['connections']!r}")
    return HostileClient(behaviour, int(n) if n is not None else 4)


def behaviour_at(params: HostileClient, turn: int) -> str:
    """The behaviour of an attack's ``turn``-th connection."""
    if params.behaviour == "mixed":
        return CYCLE[turn % len(CYCLE)]
    return params.behaviour


# -- bytes ----------------------------------------------------------------------------


def frame(ftype: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """One HTTP/2 frame (RFC 9113 section 4.1)."""
    head = struct.pack(">I", len(payload))[1:] + bytes([ftype, flags])
    return head + struct.pack(">I", stream_id) + payload


def opening() -> bytes:
    return PREFACE + frame(SETTINGS, 0, 0)


def _block(provider: str, method: str = "POST") -> tuple[bytes, bytes]:
    """A request's header block, first with indexing and then (repeated) indexed."""
    enc = hpack.Encoder()
    headers = [
        (":method", method),
        (":scheme", "https"),
        (":path", PATHS.get(provider, "/")),
        (":authority", "localhost"),
        ("content-type", "application/json"),
    ]
    first: bytes = enc.encode(headers)
    again: bytes = enc.encode(headers)
    return first, again


@cache
def flood(provider: str, streams: int = 2000) -> bytes:
    """Streams opened and reset at once, then PINGs and SETTINGS."""
    first, again = _block(provider)
    out = bytearray(opening())
    cancel = struct.pack(">I", CANCEL)
    for i in range(streams):
        sid = 2 * i + 1
        out += frame(HEADERS, END_HEADERS | END_STREAM, sid, first if i == 0 else again)
        out += frame(RST_STREAM, 0, sid, cancel)
    out += frame(PING, 0, 0, b"hostile!") * 500
    out += frame(SETTINGS, 0, 0) * 500
    return bytes(out)


@cache
def slow_headers_start(provider: str) -> bytes:
    """A HEADERS frame whose block never ends (no END_HEADERS)."""
    first, _ = _block(provider)
    return opening() + frame(HEADERS, 0, 1, first)


def slow_headers_more() -> bytes:
    return frame(CONTINUATION, 0, 1, b"\x00")


@cache
def never_reading(provider: str, requests: int = 5000) -> bytes:
    """Requests (each a few bytes, each answered) for a peer that never reads."""
    first, again = _block(provider, "GET")
    out = bytearray(opening())
    for i in range(requests):
        out += frame(HEADERS, END_HEADERS | END_STREAM, 2 * i + 1, first if i == 0 else again)
    return bytes(out)


@cache
def endless_body_start(provider: str) -> bytes:
    first, _ = _block(provider)
    return opening() + frame(HEADERS, END_HEADERS, 1, first)


def body_chunk(size: int = 16384) -> bytes:
    return frame(DATA, 0, 1, b"x" * size)
