"""The driver of a connection until its protocol is known (h2c prior knowledge, or not)."""

from __future__ import annotations

from typing import Protocol

from simulator.wire import ConnectionInfo, Request, Respond

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class Starter(Protocol):
    """The connection, which starts the driver the first bytes call for."""

    def start_h2(self, initial: bytes) -> None: ...

    def start_h11(self, initial: bytes) -> None: ...

    def abort(self) -> None: ...


class Sniffer:
    """The driver until the protocol is known: it waits for enough bytes to tell the h2
    preface from anything else, then hands them to the driver they call for."""

    def __init__(self, proto: Starter) -> None:
        self.proto = proto
        self.buf = b""

    def receive(self, data: bytes) -> None:
        self.buf += data
        n = min(len(self.buf), len(H2_PREFACE))
        if self.buf[:n] != H2_PREFACE[:n]:
            buf, self.buf = self.buf, b""
            self.proto.start_h11(buf)
        elif n == len(H2_PREFACE):
            buf, self.buf = self.buf, b""
            self.proto.start_h2(buf)

    def respond(self, req: Request, resp: Respond) -> None:
        pass  # no request arrives before the protocol is known

    def reset_stream(self, req: Request, error_code: int) -> None:
        self.proto.abort()

    def go_away(self, error_code: int, debug_data: bytes, last_stream_id: int | None) -> None:
        pass

    def send_pending_settings(self, info: ConnectionInfo) -> None:
        pass

    def busy(self) -> bool:
        return False

    def started(self) -> bool:
        return False

    def head_pending(self) -> bool:
        return False
