"""Executing an :data:`~simulator.wire.Action` on the wire: one executor per action type.

A provider core (behind its fault plan) decides what happens to a request and returns an
action; this is the only place that carries one out. :data:`EXECUTORS` maps each action
type to the function that does it, through the connection's protocol driver
(:mod:`~simulator.server.http2` writes the frames, :mod:`~simulator.server.http11` the
HTTP/1.1 bytes). A new action type needs its dataclass in :mod:`simulator.wire` and an
entry here; importing this module checks that every action type has one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol, get_args

from simulator.server.driver import Driver
from simulator.wire import (
    Action,
    CloseConnection,
    Delay,
    GoAway,
    Hang,
    Later,
    Request,
    ResetStream,
    Respond,
)


class Connection(Protocol):
    """What executing an action needs from a client connection."""

    closed: bool
    driver: Driver

    def go_away(
        self, error_code: int = 0, debug_data: bytes = b"", last_stream_id: int | None = None
    ) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


def execute(conn: Connection, req: Request, action: Action) -> None:
    """Carry out ``action`` for ``req`` on ``conn`` (nothing once the connection is closed)."""
    if conn.closed:
        return
    executor = EXECUTORS.get(type(action))
    if executor is None:  # pragma: no cover - EXECUTORS is checked against Action below
        raise TypeError(f"unknown action {action!r}")
    executor(conn, req, action)


def _respond(conn: Connection, req: Request, action: Respond) -> None:
    conn.driver.respond(req, action)


def _delay(conn: Connection, req: Request, action: Delay) -> None:
    loop = asyncio.get_running_loop()
    loop.call_later(max(0.0, action.seconds), execute, conn, req, action.then)


def _reset_stream(conn: Connection, req: Request, action: ResetStream) -> None:
    conn.driver.reset_stream(req, action.error_code)


def _go_away(conn: Connection, req: Request, action: GoAway) -> None:
    last = action.last_stream_id
    if action.response is not None:
        execute(conn, req, action.response)
    elif last is None:
        # the triggering stream is lost too
        last = max(0, req.stream_id - 2)
    conn.go_away(action.error_code, action.debug_data, last)


def _close(conn: Connection, req: Request, action: CloseConnection) -> None:
    if action.abort:
        conn.abort()
    else:
        conn.close()


def _hang(conn: Connection, req: Request, action: Hang) -> None:
    pass  # accepted, never answered


def _later(conn: Connection, req: Request, action: Later) -> None:
    def ready(result: Action) -> None:
        if not conn.closed and req.conn.pending_settings is not None:
            conn.driver.send_pending_settings(req.conn)  # asked for while deciding
        execute(conn, req, result)

    action.when_ready(ready)


EXECUTORS: dict[type, Callable[[Connection, Request, Any], None]] = {
    Respond: _respond,
    Delay: _delay,
    ResetStream: _reset_stream,
    GoAway: _go_away,
    CloseConnection: _close,
    Hang: _hang,
    Later: _later,
}

if set(EXECUTORS) != set(get_args(Action)):  # pragma: no cover - a wiring mistake
    raise TypeError(f"EXECUTORS does not cover exactly {get_args(Action)}")
