"""A connection's request bookkeeping: its streams, the requests waiting for a slot, and
how each ends (a response, or the error saying whether the peer may have processed it).

:class:`Unprocessed` means the peer never processed the request (safe to send again, and
not an attempt); :class:`ConnectionLost` that it may have been processed. No I/O here:
the connection feeds the table what ``h2`` reports.
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass
from typing import Protocol


class H2Error(Exception):
    """A transport failure of one request."""


class Unprocessed(H2Error):
    """The peer did not process the request (GOAWAY above last_stream_id, or never sent)."""


class ConnectionLost(H2Error):
    """The connection died with the request in flight; it may have been processed."""


class StreamReset(H2Error):
    """The peer reset the stream."""

    def __init__(self, code: int) -> None:
        super().__init__(f"stream reset by peer (error code {code})")
        self.code = code


class Connection(Protocol):
    """What a response names of the connection that carried it: enough to retire it."""

    @property
    def available(self) -> bool: ...

    def retire(self) -> None: ...


@dataclass(slots=True)
class Response:
    status: int
    headers: dict[bytes, bytes]
    body: bytes
    connection: Connection | None = None

    def header(self, name: str) -> str | None:
        value = self.headers.get(name.encode())
        return None if value is None else value.decode("latin-1")


class Stream:
    """One request in flight: its response as it arrives, and body bytes not yet sent."""

    __slots__ = ("body", "future", "headers", "pending", "status")

    def __init__(self, future: asyncio.Future[Response], pending: bytes) -> None:
        self.future = future
        self.status = 0
        self.headers: dict[bytes, bytes] = {}
        self.body = bytearray()
        self.pending = pending  # request body bytes not yet sent (flow control)


class StreamTable:
    """Streams in flight and requests waiting for a slot, under the peer's
    ``MAX_CONCURRENT_STREAMS``. A waiter is woken holding a slot (``reserved``) until it
    opens its stream, or gives the slot back with :meth:`release`."""

    __slots__ = ("connection", "max_streams", "reserved", "streams", "waiters")

    def __init__(self, connection: Connection) -> None:
        self.connection = connection  # named in each response
        self.streams: dict[int, Stream] = {}
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.max_streams = 1  # until the peer's SETTINGS arrive
        self.reserved = 0  # slots handed out but not yet opened as streams

    @property
    def load(self) -> int:
        return len(self.streams) + self.reserved + len(self.waiters)

    @property
    def has_room(self) -> bool:
        return len(self.streams) + self.reserved < self.max_streams

    @property
    def must_wait(self) -> bool:
        """A new request queues behind the waiters, or for a slot."""
        return bool(self.waiters) or not self.has_room

    async def wait_for_slot(
        self,
        loop: asyncio.AbstractEventLoop,
        timeout: float | None,  # noqa: ASYNC109
    ) -> None:
        """Queue for a slot; returns holding it."""
        fut: asyncio.Future[None] = loop.create_future()
        self.waiters.append(fut)
        try:
            if timeout is None:
                await fut  # resolved with a reserved slot
            else:
                await asyncio.wait_for(fut, timeout)
        except BaseException:
            if fut in self.waiters:
                self.waiters.remove(fut)
                fut.cancel()
            elif fut.done() and not fut.cancelled() and fut.exception() is None:
                self.reserved -= 1
                self.release()
            raise
        self.reserved -= 1

    def release(self) -> None:
        """A slot freed: hand it to the next waiter."""
        while self.waiters and len(self.streams) + self.reserved < self.max_streams:
            fut = self.waiters.popleft()
            if not fut.done():
                self.reserved += 1
                fut.set_result(None)

    def set_limit(self, max_concurrent_streams: int | None) -> None:
        value = max_concurrent_streams
        self.max_streams = max(1, min(int(value), 10_000)) if value is not None else 100
        self.release()

    def finish(self, stream_id: int) -> bool:
        """The stream ended: resolve its response. False if it was not ours (any more)."""
        st = self.streams.pop(stream_id, None)
        if st is None:
            return False
        if not st.future.done():
            st.future.set_result(Response(st.status, st.headers, bytes(st.body), self.connection))
        self.release()
        return True

    def reset(self, stream_id: int, exc: Exception) -> None:
        st = self.streams.pop(stream_id, None)
        if st is not None:
            _resolve_exc(st, exc)
        self.release()

    def drop_above(self, last_stream_id: int) -> None:
        """GOAWAY: the streams the peer will not process fail :class:`Unprocessed`."""
        for stream_id in [s for s in self.streams if s > last_stream_id]:
            st = self.streams.pop(stream_id)
            _resolve_exc(st, Unprocessed(f"GOAWAY (last stream {last_stream_id})"))

    def fail_waiters(self, exc: Exception) -> None:
        while self.waiters:
            fut = self.waiters.popleft()
            if not fut.done():
                fut.set_exception(exc)

    def fail_all(self, in_flight: Exception, waiting: Exception) -> None:
        streams = list(self.streams.values())
        self.streams.clear()
        for st in streams:
            # A stream whose body was never fully sent cannot have been processed.
            _resolve_exc(
                st, Unprocessed("connection lost before send") if st.pending else in_flight
            )
        self.fail_waiters(waiting)


def _resolve_exc(st: Stream, exc: Exception) -> None:
    if not st.future.done():
        st.future.set_exception(exc)
