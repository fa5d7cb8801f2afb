"""The ``hostile_client`` fault at work: connections of the simulator's own that misbehave
against its listeners for the fault's window (the I/O edge of :mod:`simulator.faults.hostile`).

:class:`HostileActors` follows the plan on each scheduler tick: a task per open
``hostile_client`` fault, keeping ``connections`` attacks going at once against the
listeners of its provider(s), each attack bounded in time and bytes and followed by a
short pause; the task is cancelled when the window closes or the fault is cleared. Every
attack is counted in the fault record (kind ``hostile_client``): as its behaviour when
its connection opens, and as the behaviour and how the listener ended it when it ends
(``flood_goaway``, ``slow_headers_closed``, ``endless_body_cut``, ...), so a report shows
what the honest sender was measured beside.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any, Protocol

from simulator.faults import hostile
from simulator.faults.gate import provider_of
from simulator.faults.spec import HostileClient

log = logging.getLogger("pushsim.faults")

ATTACK_SECONDS = 6.0  # the longest one attack connection lasts
PAUSE_SECONDS = 0.3  # between one connection's end and the next one's start
HOLD_SECONDS = 3.0  # how long a never-reading connection holds on after sending
BODY_BYTES = 960 * 1024  # an endless body: within the listener's stream window


class ListenerLike(Protocol):
    name: str
    host: str
    port: int
    ssl_context: ssl.SSLContext | None


class FaultLike(Protocol):
    id: str
    spec: Any

    @property
    def kind(self) -> str: ...

    def open_at(self, now: float) -> bool: ...


Count = Callable[[str, str, str], None]  # (provider, fault id, outcome)


class HostileActors:
    """The running ``hostile_client`` faults (fault id -> its task)."""

    def __init__(self, count: Count) -> None:
        self._count = count
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def sync(
        self, now: float, faults: Iterable[FaultLike], listeners: Mapping[str, ListenerLike]
    ) -> None:
        """Start the faults whose window is open, stop those whose window is not."""
        if not self._tasks and not any(f.kind == "hostile_client" for f in faults):
            return  # the usual tick
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a plan looked at outside the simulator's loop
            return
        wanted = {
            f.id: f for f in faults if f.kind == "hostile_client" and f.open_at(now) and listeners
        }
        for fid in [fid for fid in self._tasks if fid not in wanted]:
            self._tasks.pop(fid).cancel()
        for fid, f in wanted.items():
            if fid not in self._tasks or self._tasks[fid].done():
                targets = [
                    lst
                    for name, lst in listeners.items()
                    if provider_of(name) in f.spec.providers() and name != "apns_sandbox"
                ]
                self._tasks[fid] = loop.create_task(
                    self._run(fid, f.spec.params, targets), name=f"pushsim-hostile-{fid}"
                )

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _run(self, fid: str, params: HostileClient, targets: list[ListenerLike]) -> None:
        if not targets:
            return
        turns = iter(range(1 << 62))

        async def worker() -> None:
            while True:
                turn = next(turns)
                listener = targets[turn % len(targets)]
                behaviour = hostile.behaviour_at(params, turn)
                provider = provider_of(listener.name)
                self._count(provider, fid, behaviour)  # a connection opened to misbehave
                outcome = await _attack(listener, behaviour)
                self._count(provider, fid, f"{behaviour}_{outcome}")
                await asyncio.sleep(PAUSE_SECONDS)

        workers = [asyncio.create_task(worker()) for _ in range(params.connections)]
        try:
            await asyncio.gather(*workers)
        finally:
            for w in workers:
                w.cancel()


def _client_tls(listener: ListenerLike) -> ssl.SSLContext | None:
    if listener.ssl_context is None:
        return None
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # our own listener; the attack is not about TLS
    ctx.set_alpn_protocols(["h2"])
    return ctx


async def _attack(listener: ListenerLike, behaviour: str) -> str:
    """One connection's misbehaviour; how it ended (``goaway``, ``closed``, ``timeout``)."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(listener.host, listener.port, ssl=_client_tls(listener)),
            ATTACK_SECONDS,
        )
    except (OSError, TimeoutError):
        return "refused"
    provider = provider_of(listener.name)
    try:
        return await asyncio.wait_for(
            BEHAVIOURS[behaviour](reader, writer, provider), ATTACK_SECONDS
        )
    except TimeoutError:
        return "timeout"
    except (OSError, ConnectionError):
        return "closed"
    finally:
        writer.transport.abort()


async def _read_to_end(reader: asyncio.StreamReader) -> str:
    """Read (and drop) until the listener closes; ``goaway`` if it said GOAWAY first."""
    said = b""
    while True:
        chunk = await reader.read(65536)
        if not chunk:
            return "goaway" if b"\x07\x00\x00\x00\x00\x00" in said else "closed"
        if len(said) < 1 << 16:
            said += chunk


async def _flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, p: str) -> str:
    writer.write(hostile.flood(p))
    await writer.drain()
    return await _read_to_end(reader)


async def _slow_headers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, p: str) -> str:
    writer.write(hostile.slow_headers_start(p))
    closing = asyncio.ensure_future(_read_to_end(reader))
    try:
        while not closing.done():
            writer.write(hostile.slow_headers_more())
            await writer.drain()
            await asyncio.wait([closing], timeout=1.0)
        return closing.result()
    finally:
        closing.cancel()


async def _never_reading(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, p: str) -> str:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    writer.write(hostile.never_reading(p))
    await writer.drain()  # returns only while the listener still reads
    await asyncio.sleep(HOLD_SECONDS)  # never read
    return "held"


async def _endless_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, p: str) -> str:
    writer.write(hostile.endless_body_start(p))
    chunk = hostile.body_chunk()
    for _ in range(BODY_BYTES // 16384):
        writer.write(chunk)
        await writer.drain()
    try:  # the listener answers once the body passes its cap, and reads on (dropping it)
        answer = await asyncio.wait_for(reader.read(65536), 1.0)
    except TimeoutError:
        return "unanswered"
    return "cut" if answer else "closed"


BEHAVIOURS: dict[
    str,
    Callable[[asyncio.StreamReader, asyncio.StreamWriter, str], Coroutine[Any, Any, str]],
] = {
    "flood": _flood,
    "slow_headers": _slow_headers,
    "never_reading": _never_reading,
    "endless_body": _endless_body,
}
