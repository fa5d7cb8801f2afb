"""The dashboard's ASGI app: the page, its static files, the event stream and the API.

Routes (every request passes :func:`~simulator.dashboard.guard.check` first):

- ``GET /``: the page; ``GET /static/{app.js,charts.js,style.css}``: its parts (package data);
- ``GET /api/events``: server-sent events: ``snapshot`` (everything) on connect, then one
  ``update`` per tick (see :mod:`~simulator.dashboard.board`);
- ``GET /api/vocabulary``: presets and the fault form's fields;
- ``POST /api/faults`` (a preset or a fault), ``DELETE /api/faults/{id}``, ``DELETE /api/faults``;
- ``GET /api/devices/find?token=...``, ``GET /api/devices/{id}`` (with its inbox),
  ``POST /api/devices/{id}/online`` ``{"online": bool}``, ``POST /api/devices/{id}/rotate``,
  ``DELETE /api/devices/{id}`` (uninstall).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any, Protocol
from urllib.parse import parse_qsl

from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, HTTPScope, Scope

from simulator.dashboard.actions import Actions, Reply, error
from simulator.dashboard.guard import check, sse_event

KEEPALIVE_SECONDS = 15.0
MAX_BODY = 64 * 1024

STATIC_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "charts.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
)


class EventHub(Protocol):
    """Where the event stream's events come from (see :class:`~simulator.dashboard.server.Hub`)."""

    def subscribe(self) -> asyncio.Queue[tuple[str, str] | None]: ...

    def unsubscribe(self, queue: asyncio.Queue[tuple[str, str] | None]) -> None: ...

    def snapshot_json(self) -> str: ...


@dataclass(frozen=True, slots=True)
class ApiRequest:
    method: str
    query: dict[str, str]
    body: Any
    params: dict[str, str]


Route = tuple[str, re.Pattern[str], Callable[[ApiRequest], Reply]]


def load_static() -> dict[str, bytes]:
    root = resources.files("simulator.dashboard") / "static"
    return {name: (root / name).read_bytes() for name in STATIC_TYPES}


def routes(actions: Actions) -> list[Route]:
    dev = r"/api/devices/(?P<id>[^/]+)"
    table: list[tuple[str, str, Callable[[ApiRequest], Reply]]] = [
        ("GET", r"/api/vocabulary", lambda r: actions.vocabulary()),
        ("POST", r"/api/faults", lambda r: actions.apply_fault(r.body)),
        ("DELETE", r"/api/faults", lambda r: actions.clear_faults()),
        ("DELETE", r"/api/faults/(?P<id>[^/]+)", lambda r: actions.remove_fault(r.params["id"])),
        ("GET", r"/api/devices/find", lambda r: actions.find(r.query.get("token", ""))),
        ("GET", dev, lambda r: actions.device(r.params["id"])),
        ("POST", dev + "/online", lambda r: actions.set_online(r.params["id"], r.body)),
        ("POST", dev + "/rotate", lambda r: actions.rotate(r.params["id"])),
        ("DELETE", dev, lambda r: actions.uninstall(r.params["id"])),
    ]
    return [(m, re.compile(p + "$"), fn) for m, p, fn in table]


async def _read_body(receive: ASGIReceiveCallable) -> bytes | None:
    """The request body (read to its end), or None when it is larger than :data:`MAX_BODY`."""
    chunks: list[bytes] = []
    size = 0
    while True:
        event = await receive()
        if event["type"] != "http.request":
            break
        size += len(event["body"])
        if size <= MAX_BODY:
            chunks.append(event["body"])
        if not event["more_body"]:
            break
    return b"".join(chunks) if size <= MAX_BODY else None


async def _respond(
    send: ASGISendCallable, status: int, body: bytes, ctype: str = "application/json"
) -> None:
    headers = [(b"content-type", ctype.encode()), *SECURITY_HEADERS]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _reply(send: ASGISendCallable, reply: Reply) -> None:
    await _respond(send, reply.status, json.dumps(reply.body).encode())


class DashboardApp:
    def __init__(self, actions: Actions, hub: EventHub, hosts: frozenset[str], token: str) -> None:
        self.routes = routes(actions)
        self.hub = hub
        self.hosts = hosts
        self.token = token
        self.static = load_static()

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    @staticmethod
    async def _lifespan(receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        while True:
            event = await receive()
            if event["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif event["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(
        self, scope: HTTPScope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        method, path = scope["method"], scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = dict(parse_qsl(scope["query_string"].decode("latin-1")))
        # the body is read before any answer: hypercorn's h2 stream must not end under it
        raw = await _read_body(receive)
        refusal = check(method, path, headers, query, hosts=self.hosts, token=self.token)
        if refusal is not None:
            await _reply(send, error(refusal.status, refusal.message))
        elif raw is None:
            await _reply(send, error(413, f"body over {MAX_BODY} bytes"))
        elif path == "/api/events" and method == "GET":
            await self._events(receive, send)
        elif path.startswith("/api/"):
            await self._api(method, path, query, raw, send)
        else:
            await self._page(method, path, send)

    async def _page(self, method: str, path: str, send: ASGISendCallable) -> None:
        name = "index.html" if path == "/" else path.removeprefix("/static/")
        if method not in ("GET", "HEAD") or name not in self.static:
            await _reply(send, error(404, f"no page {path!r}"))
            return
        await _respond(send, 200, self.static[name], STATIC_TYPES[name])

    async def _api(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        raw: bytes,
        send: ASGISendCallable,
    ) -> None:
        try:
            body = json.loads(raw) if raw else None
        except (ValueError, RecursionError) as exc:
            await _reply(send, error(400, f"body is not valid JSON: {exc}"))
            return
        known = False
        for m, pattern, fn in self.routes:
            match = pattern.match(path)
            if match is None:
                continue
            known = True
            if m == method:
                await _reply(send, fn(ApiRequest(method, query, body, match.groupdict())))
                return
        await _reply(send, error(405 if known else 404, f"no route {method} {path}"))

    async def _events(self, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        queue = self.hub.subscribe()
        gone = asyncio.ensure_future(_disconnected(receive))
        try:
            headers = [
                (b"content-type", b"text/event-stream"),
                *SECURITY_HEADERS,
                (b"x-accel-buffering", b"no"),
            ]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await _chunk(send, sse_event("snapshot", self.hub.snapshot_json()))
            while await self._forward(queue, gone, send):
                pass
            with contextlib.suppress(Exception):  # the client may be gone already
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            self.hub.unsubscribe(queue)
            gone.cancel()

    @staticmethod
    async def _forward(
        queue: asyncio.Queue[tuple[str, str] | None],
        gone: asyncio.Future[None],
        send: ASGISendCallable,
    ) -> bool:
        """Send the next event (or a keep-alive); False once the stream should end."""
        item = asyncio.ensure_future(queue.get())
        waiting: set[asyncio.Future[Any]] = {item, gone}
        done, _ = await asyncio.wait(
            waiting, timeout=KEEPALIVE_SECONDS, return_when=asyncio.FIRST_COMPLETED
        )
        if item not in done:
            item.cancel()
            if gone in done:
                return False
            await _chunk(send, b": keep-alive\n\n")
            return True
        event = item.result()
        if event is None:  # the dashboard is stopping
            return False
        await _chunk(send, sse_event(*event))
        return True


async def _chunk(send: ASGISendCallable, data: bytes) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": True})


async def _disconnected(receive: ASGIReceiveCallable) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
