"""What a protocol driver offers its connection, and what it needs from it.

A connection (:class:`~simulator.server.listener.ProviderProtocol`) owns the socket; a
driver (:mod:`~simulator.server.http2`, :mod:`~simulator.server.http11`, or the sniffer
that picks one of them) turns the bytes read into :class:`~simulator.wire.Request` objects
for the connection to run, and turns responses into the bytes written back.
"""

from __future__ import annotations

from typing import Protocol

from simulator.wire import ConnectionInfo, Request, Respond


class Driver(Protocol):
    """One connection's wire protocol."""

    def receive(self, data: bytes) -> None:
        """Bytes read from the socket."""

    def respond(self, req: Request, resp: Respond) -> None:
        """Write ``resp`` as the answer to ``req``."""

    def reset_stream(self, req: Request, error_code: int) -> None:
        """Abandon ``req`` (RST_STREAM on h2; where there are no streams, abort)."""

    def go_away(self, error_code: int, debug_data: bytes, last_stream_id: int | None) -> None:
        """Announce the connection is closing (GOAWAY on h2; nothing on HTTP/1.1)."""

    def send_pending_settings(self, info: ConnectionInfo) -> None:
        """Send the SETTINGS a provider core asked for in ``info`` (h2 only)."""

    def busy(self) -> bool:
        """Whether a request is still open (the idle timeout waits for it)."""

    def started(self) -> bool:
        """Whether the protocol is under way (h2: the preface is in; HTTP/1.1: a whole
        request head); until then the listener's preface timeout runs."""

    def head_pending(self) -> bool:
        """Whether a header block has begun and not ended (the header-block timeout runs)."""


class DriverHost(Protocol):
    """What a driver needs from its connection."""

    closed: bool

    def run(self, req: Request) -> None:
        """Hand a complete request to the listener's handler and execute its action."""

    def arm_idle(self) -> None:
        """Note activity for the idle timeout."""

    def go_away(
        self, error_code: int = 0, debug_data: bytes = b"", last_stream_id: int | None = None
    ) -> None:
        """GOAWAY, then close."""

    def unprocessed(self, req: Request, reason: str) -> None:
        """``req`` will never be processed (``reason``: ``refused_stream`` or ``goaway``):
        the client may safely send it again."""

    def close(self) -> None: ...

    def abort(self) -> None: ...

    def now(self) -> float:
        """Monotonic seconds (the listener's clock), for the flood counters."""
        ...

    def pause_reading(self, reason: str) -> None:
        """Stop reading from the socket until :meth:`resume_reading` with ``reason``."""

    def resume_reading(self, reason: str) -> None: ...
