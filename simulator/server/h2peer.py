"""What one HTTP/2 peer may make the driver hold or do (the h2 side of
:mod:`~simulator.server.limits`), kept beside the driver so its hot path stays short.

:class:`PeerBounds` is one connection's: its frame-flood counters
(:class:`~simulator.server.floods.FloodGuard`), the request-body cap, and the streams whose
body was cut at the cap and whose rest is being thrown away (each with the bytes it may
still send before it is reset). :data:`FLOOD_EVENTS` names the h2 events that are nothing
but a frame to count (the others are counted where the driver handles them).
:class:`ReadyStreams` runs the requests a read completed, a bounded number per loop turn.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import h2.events
import h2.exceptions

from simulator.server.floods import FloodGuard
from simulator.server.limits import TURN, PeerLimits

log = logging.getLogger("pushsim.server")

ENHANCE_YOUR_CALM = 0xB
NO_ERROR = 0

# h2 events that carry no request: each is one frame of the kind named
FLOOD_EVENTS: Mapping[type, str] = {
    h2.events.PingReceived: "ping",
    h2.events.RemoteSettingsChanged: "settings",
    h2.events.UnknownFrameReceived: "unknown",
}


class PeerBounds:
    """One connection's counters and caps, on its h2 connection ``conn``; ``calm`` is called
    (with the GOAWAY's debug data) when a flood limit is passed."""

    __slots__ = (
        "_calm",
        "_conn",
        "_lingering",
        "_now",
        "floods",
        "linger_bytes",
        "max_body",
    )

    def __init__(
        self,
        limits: PeerLimits,
        conn: Any,
        now: Callable[[], float],
        calm: Callable[[bytes], None],
    ) -> None:
        self.floods = FloodGuard(limits.floods)
        self._conn = conn
        self._now = now
        self._calm = calm
        self.max_body = limits.max_request_body
        self.linger_bytes = limits.linger_bytes
        self._lingering: dict[int, int] = {}  # stream id -> bytes it may still send

    def over(self, kind: str, count: int = 1) -> bool:
        """Count ``count`` frames of ``kind``; past its limit, ``calm`` and True (stop)."""
        floods = self.floods
        if not floods.hit(kind, self._now(), count):
            return False
        log.info("%s: GOAWAY ENHANCE_YOUR_CALM", floods.debug_data().decode())
        self._calm(floods.debug_data())
        return True

    def cut(self, stream_id: int) -> None:
        """``stream_id``'s body went past the cap: what follows of it is thrown away."""
        self._lingering[stream_id] = self.linger_bytes

    def thrown_away(self, stream_id: int, n: int) -> bool:
        """``n`` bytes of a stream no longer taking a body were thrown away: credit them
        back; a cut body that goes on past ``linger_bytes`` gets RST_STREAM (NO_ERROR)."""
        conn = self._conn
        if n:
            conn.acknowledge_received_data(n, stream_id)
        left = self._lingering.get(stream_id)
        if left is None:
            return False
        left -= n
        if left > 0:
            self._lingering[stream_id] = left
            return False
        del self._lingering[stream_id]
        try:
            conn.reset_stream(stream_id, NO_ERROR)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            pass
        return False

    def forget(self, stream_id: int) -> None:
        self._lingering.pop(stream_id, None)


class Pausable(Protocol):
    def pause_reading(self, reason: str) -> None: ...

    def resume_reading(self, reason: str) -> None: ...


class ReadyStreams:
    """The streams whose requests are complete, run in order at most :data:`TURN` per
    event-loop turn: a read holding thousands of requests runs the rest on later turns,
    with reading paused meanwhile, so one connection cannot hold the loop (and every other
    connection's answers) for the seconds its burst would take. ``waiting`` says whether a
    stream still waits to run (it may have been reset since it was complete)."""

    __slots__ = ("_again", "_deferred", "_dispatch", "_host", "_waiting", "ids")

    def __init__(
        self,
        dispatch: Callable[[int], None],
        waiting: Callable[[int], bool],
        host: Pausable,
        again: Callable[[], None],
    ) -> None:
        self.ids: list[int] = []
        self._dispatch = dispatch
        self._waiting = waiting
        self._host = host
        self._again = again  # runs :meth:`run` again inside the driver's batched writes
        self._deferred = False

    def run(self) -> None:
        ids = self.ids
        self.ids = []
        dispatch = self._dispatch
        if len(ids) <= TURN:  # the usual case
            for sid in ids:
                dispatch(sid)
            return
        waiting = self._waiting
        ran = 0
        for i, sid in enumerate(ids):
            if not waiting(sid):
                continue
            if ran == TURN:
                self.ids = ids[i:]
                self._defer()
                return
            dispatch(sid)
            ran += 1

    @property
    def deferred(self) -> bool:
        """Whether requests wait for the next turn (reading is paused meanwhile)."""
        return self._deferred

    def _defer(self) -> None:
        if not self._deferred:
            self._deferred = True
            self._host.pause_reading("backlog")
            asyncio.get_running_loop().call_soon(self._turn)

    def _turn(self) -> None:
        self._deferred = False
        self._again()
        if not self._deferred:  # all run (or the connection runs no more): read again
            self.ids = []
            self._host.resume_reading("backlog")
