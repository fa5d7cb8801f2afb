"""Deadlines for a connection's opening and for each header block (the listener's timer).

A peer may open a connection and send nothing, half a preface, or a header block (an
HTTP/2 HEADERS frame awaiting CONTINUATION, an HTTP/1.1 request head) that never ends,
parking a descriptor and a buffer for as long as it likes. So:

- a connection whose protocol has not started (h2: no frame after the preface; HTTP/1.1:
  no complete request head) :data:`preface_timeout` seconds after it was accepted is closed;
- a header block still unfinished ``header_timeout`` seconds after it was first seen
  unfinished is closed (resolution: one tick).

One timer per listener (:class:`Watchdog`) looks at every connection a few times per
timeout; the hot path only sets a flag when a protocol starts. :func:`verdict` is the
rule, pure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol


class Opening(Protocol):
    """What the watchdog asks of a connection's protocol driver."""

    def started(self) -> bool: ...

    def head_pending(self) -> bool: ...


class Watched(Protocol):
    """What the watchdog reads of a connection (and how it ends one)."""

    closed: bool
    opened_at: float  # monotonic, when it was accepted
    head_since: float | None  # when its current header block was first seen unfinished

    @property
    def driver(self) -> Opening: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Deadlines:
    preface_timeout: float
    header_timeout: float

    @property
    def tick(self) -> float:
        return max(0.05, min(self.preface_timeout, self.header_timeout) / 4)


def verdict(
    d: Deadlines,
    now: float,
    opened_at: float,
    started: bool,
    head_pending: bool,
    head_since: float | None,
) -> tuple[bool, float | None]:
    """(close it now?, the new ``head_since``) for one connection at ``now``."""
    if not started:
        return now - opened_at > d.preface_timeout, None
    if not head_pending:
        return False, None
    if head_since is None:
        return False, now
    return now - head_since > d.header_timeout, head_since


class Watchdog:
    """The timer that applies :func:`verdict` to a listener's connections."""

    def __init__(
        self,
        deadlines: Callable[[], Deadlines],
        connections: Callable[[], Iterable[Watched]],
        now: Callable[[], float],
    ) -> None:
        self._deadlines = deadlines
        self._connections = connections
        self._now = now
        self._handle: asyncio.TimerHandle | None = None

    def ensure_running(self) -> None:
        if self._handle is None:
            loop = asyncio.get_running_loop()
            self._handle = loop.call_later(self._deadlines().tick, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self) -> None:
        self._handle = None
        d = self._deadlines()
        now = self._now()
        watched = list(self._connections())
        for conn in watched:
            if conn.closed:
                continue
            driver = conn.driver
            late, conn.head_since = verdict(
                d, now, conn.opened_at, driver.started(), driver.head_pending(), conn.head_since
            )
            if late:
                conn.close()
        if watched:  # with none, the next connection starts the timer again
            self.ensure_running()
