"""What one peer may make a provider listener hold or do: the bounds, as one value.

Every bound is per listener (:attr:`~simulator.server.listener.ListenerOptions.peers`)
and has a default that no sender honestly reaches; a test or a provider may set its own.

- ``max_connections``: connections held at once (see :mod:`~simulator.server.admission`).
- ``preface_timeout`` / ``header_timeout``: seconds for a connection's opening and for
  one header block (see :mod:`~simulator.server.watchdog`).
- ``max_request_body``: bytes of one request body held. A body that grows past it goes to
  the handler at once, as it is (each provider core answers an oversized body by its
  length: APNs and Web Push 413); the rest of it is read and thrown away, at most
  ``linger_bytes`` more, then the stream is reset (h2, NO_ERROR) or the connection closed
  (HTTP/1.1, whose answer says ``connection: close``). Reading the rest lets a client
  that sends its whole body before reading (curl, httpx) still see the answer.
- ``connection_window``: the h2 connection-level receive window. Credit is given back
  only for body bytes consumed (a request handed to the handler, or bytes thrown away),
  so what a connection holds in unfinished bodies is at most this.
- ``write_buffer_high`` / ``write_buffer_low``: the transport's write-buffer watermarks;
  above the high one the connection stops reading until the peer has read down to the
  low one, so a peer that sends and never reads cannot make the simulator buffer for it.
- ``floods``: per-connection frame-flood limits (see :mod:`~simulator.server.floods`).

And one fixed bound: a connection runs at most :data:`TURN` requests per event-loop turn
(the rest of a burst on the next turns, reading paused meanwhile), so one peer's burst
cannot hold up every other connection's answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from simulator.server.floods import DEFAULT_LIMITS, FloodLimit

KIB = 1024
MIB = 1024 * KIB
TURN = 256


@dataclass(frozen=True, slots=True)
class PeerLimits:
    max_connections: int = 512
    preface_timeout: float = 5.0
    header_timeout: float = 5.0
    max_request_body: int = 256 * KIB
    linger_bytes: int = 16 * MIB
    connection_window: int = 4 * MIB
    write_buffer_high: int = 256 * KIB
    write_buffer_low: int = 64 * KIB
    floods: Mapping[str, FloodLimit] = field(default_factory=lambda: DEFAULT_LIMITS)
