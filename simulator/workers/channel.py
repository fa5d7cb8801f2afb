"""The pipe between the primary process and one worker: pickled messages over a socket pair.

A message is ``(kind, data)``. What one event-loop turn sends leaves as one frame (a
4-byte length and a pickled list) at the end of that turn, so a worker answering a
hundred requests in a turn writes once. Writes go through the asyncio transport's
buffer and never block either loop (a blocking pipe would deadlock two processes that
both write a large batch at once).

An ask is a message that wants an answer: :meth:`Channel.ask` sends ``("ask", (id,
kind, data))`` and calls back when ``("answer", (id, result))`` comes back. Both ends
are processes of one simulator (spawned by it, on a socket pair only they hold), so
pickle is safe here.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import pickle
import socket
from collections.abc import Callable
from typing import Any

log = logging.getLogger("pushsim.workers")

_HEADER = 4
Message = tuple[str, Any]


class Channel(asyncio.Protocol):
    """One end of the pipe: ``on_message(kind, data)`` for every message but answers."""

    def __init__(self, on_message: Callable[[str, Any], None], on_lost: Callable[[], None]) -> None:
        self.on_message = on_message
        self.on_lost = on_lost
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._out: list[Message] = []
        self._flush_armed = False
        self._ids = itertools.count(1)
        self._waiting: dict[int, Callable[[Any], None]] = {}
        self.closed = False

    @classmethod
    async def open(
        cls,
        sock: socket.socket,
        on_message: Callable[[str, Any], None],
        on_lost: Callable[[], None],
    ) -> Channel:
        loop = asyncio.get_running_loop()
        _, channel = await loop.create_unix_connection(lambda: cls(on_message, on_lost), sock=sock)
        return channel

    # -- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's are not subclasses

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.on_lost()

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        while len(buf) >= _HEADER:
            size = int.from_bytes(buf[:_HEADER], "big")
            if len(buf) < _HEADER + size:
                break
            messages: list[Message] = pickle.loads(buf[_HEADER : _HEADER + size])
            del buf[: _HEADER + size]
            for kind, payload in messages:
                self._dispatch(kind, payload)

    def _dispatch(self, kind: str, payload: Any) -> None:
        if kind == "answer":
            ask_id, result = payload
            callback = self._waiting.pop(ask_id, None)
            if callback is not None:
                callback(result)
            return
        try:
            self.on_message(kind, payload)
        except Exception:  # one bad message must not end the pipe
            log.exception("worker message %r failed", kind)

    # -- sending ------------------------------------------------------------------

    def send(self, kind: str, data: Any) -> None:
        """Queue a message; it leaves with everything else sent in this loop turn."""
        if self.closed:
            return
        self._out.append((kind, data))
        if not self._flush_armed:
            self._flush_armed = True
            asyncio.get_running_loop().call_soon(self.flush)

    def ask(self, kind: str, data: Any, callback: Callable[[Any], None]) -> None:
        """Send an ask; ``callback(result)`` runs when the other end answers it."""
        ask_id = next(self._ids)
        self._waiting[ask_id] = callback
        self.send("ask", (ask_id, kind, data))

    def answer(self, ask_id: int, result: Any) -> None:
        self.send("answer", (ask_id, result))

    def flush(self) -> None:
        self._flush_armed = False
        if not self._out or self.transport is None or self.closed:
            return
        out, self._out = self._out, []
        frame = pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL)
        self.transport.write(len(frame).to_bytes(_HEADER, "big") + frame)

    def close(self) -> None:
        self.flush()
        if self.transport is not None:
            self.transport.close()
