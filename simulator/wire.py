"""Requests in, actions out: the contract between the server loop and the provider cores.

A provider core is a function of (request, clock, state, fault plan) returning an
:data:`Action`. The server loop (:mod:`simulator.server.actions`) only executes actions;
it never decides anything about push semantics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(slots=True)
class ConnectionInfo:
    """What a provider core may know and remember about one client connection."""

    conn_id: int
    listener: str
    http_version: str  # "2" or "1.1"
    tls: bool
    peer: tuple[str, int] | None
    opened_at: float
    peer_cert: dict[str, Any] | None = None
    peer_cert_der: bytes | None = None
    # Free-form per-connection provider state (e.g. the APNs provider token in use).
    state: dict[str, Any] = field(default_factory=dict)
    # Set by a core to have the loop send a SETTINGS frame (h2 only).
    pending_settings: dict[int, int] | None = None


@dataclass(slots=True)
class Request:
    method: str
    path: str
    headers: list[tuple[str, str]]  # names lower-case, in arrival order, pseudo-headers removed
    body: bytes
    conn: ConnectionInfo
    stream_id: int = 0
    authority: str = ""
    scheme: str = "https"

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def header_count(self, name: str) -> int:
        return sum(1 for k, _ in self.headers if k == name)


@dataclass(frozen=True, slots=True)
class Respond:
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class ResetStream:
    """RST_STREAM on h2 (error code per RFC 9113); on HTTP/1.1, the connection is aborted."""

    error_code: int = 2  # INTERNAL_ERROR


@dataclass(frozen=True, slots=True)
class GoAway:
    """GOAWAY with ``debug_data``; streams above ``last_stream_id`` are lost."""

    error_code: int = 0
    debug_data: bytes = b""
    last_stream_id: int | None = None
    response: Respond | None = None  # answered on this stream before the GOAWAY, if any


@dataclass(frozen=True, slots=True)
class CloseConnection:
    """Close the transport; ``abort`` sends a TCP reset instead of a clean FIN."""

    abort: bool = True


@dataclass(frozen=True, slots=True)
class Hang:
    """Accept the request and never answer it."""


@dataclass(frozen=True, slots=True)
class Delay:
    seconds: float
    then: Action


@dataclass(frozen=True, slots=True)
class Later:
    """The answer is decided elsewhere (another process of the simulator): ``when_ready``
    takes a callback and calls it once, with the action, when that is known."""

    when_ready: Callable[[Callable[[Action], None]], None]


Action = Respond | ResetStream | GoAway | CloseConnection | Hang | Delay | Later


class Handler(Protocol):
    """A listener's request handler: a provider core (plus the fault plan in front of it)."""

    def handle(self, request: Request) -> Action: ...


def json_response(status: int, body: bytes, extra: tuple[tuple[str, str], ...] = ()) -> Respond:
    return Respond(status, (("content-type", "application/json"), *extra), body)
