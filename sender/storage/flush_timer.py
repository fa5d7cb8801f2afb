"""When a group commit runs next: one pending call, at the earliest time anyone asked for.

Both stores queue their writes and commit them together; each write asks for a flush within
its own delay (0 for "this loop turn"). An earlier flush already scheduled stands, a later one
is brought forward, and a flush that runs for another reason cancels the timer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class FlushTimer:
    __slots__ = ("_at", "_fn", "_handle")

    def __init__(self, fn: Callable[[], None]) -> None:
        self._fn = fn
        self._handle: asyncio.Handle | None = None
        self._at = 0.0  # loop time the pending call runs at (-1: this turn)

    @property
    def pending(self) -> bool:
        return self._handle is not None

    def within(self, delay: float) -> None:
        """Call within ``delay`` seconds (0: in this loop turn, before any timer)."""
        loop = asyncio.get_running_loop()
        at = loop.time() + delay if delay > 0 else -1.0
        if self._handle is not None:
            if self._at <= at:
                return
            self._handle.cancel()
        self._handle = loop.call_soon(self._fn) if at < 0 else loop.call_at(at, self._fn)
        self._at = at

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
