"""Who may use the control API: the rules every request passes before it reaches a route.

The control API mints devices and credentials, injects faults and reads ground truth,
with no credentials of its own: it trusts being on loopback. A web page in a browser on
the same machine must not be able to use that trust, so (the dashboard's rules,
:mod:`simulator.dashboard.guard`, applied to the control API):

- **Host**: only the listener's own ``address:port`` (and ``localhost:port``) is
  accepted, so a page on another name that resolves to 127.0.0.1 (DNS rebinding) cannot
  read keys or deliveries. (Requests on the control API's Unix socket, which no browser
  can reach, are not held to a name.)
- **Origin**: a request that carries one (every browser's cross-site request does) must
  come from the dashboard's origin or the control API's own; tools that send none
  (curl, the harness, the SDKs) are unaffected.
- **Content type**: a POST, PUT or PATCH must say ``content-type: application/json``, which
  a cross-site form or a ``text/plain`` fetch cannot send without a CORS preflight the
  control API never answers (``curl -d`` needs ``-H 'content-type: application/json'``,
  or ``--json``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from simulator.dashboard.guard import Refusal, allowed_hosts

WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


def origins_of(url: str) -> set[str]:
    """The origins a page served at ``url`` may send (its address and ``localhost``)."""
    parts = urlsplit(url)
    if not parts.scheme or parts.port is None or parts.hostname is None:
        return set()
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return {f"{parts.scheme}://{h}:{parts.port}" for h in (host, "localhost")}


def check(
    method: str,
    headers: Mapping[str, str],
    local: tuple[str, int] | None,
    origins: set[str],
) -> Refusal | None:
    """None when the request may go on; otherwise why not. ``local``: the listener's own
    address and port (None on a Unix socket); ``headers``: lower-case names."""
    if local is not None:
        host = headers.get("host", "").lower()
        if host not in allowed_hosts(*local):
            return Refusal(403, f"Host {host or '(none)'!r} is not this control API's address")
    origin = headers.get("origin")
    if origin is not None and origin.lower() not in origins:
        return Refusal(403, f"Origin {origin!r} may not use the control API")
    if method in WITH_BODY:
        ctype = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if ctype != "application/json":
            return Refusal(415, "expected content-type: application/json")
    return None


def _local(request: web.Request) -> tuple[str, int] | None:
    sockname: Any = request.transport.get_extra_info("sockname") if request.transport else None
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        return str(sockname[0]), int(sockname[1])
    return None  # a Unix socket


def middleware(endpoints: Callable[[], Mapping[str, str]]) -> Any:
    """The aiohttp middleware applying :func:`check`; ``endpoints``: the simulator's, read at
    each request (the dashboard's URL is known only once it has started)."""

    @web.middleware
    async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
        local = _local(request)
        ours = endpoints()
        origins = origins_of(ours.get("dashboard", ""))
        if local is not None:
            origins |= {f"http://{name}" for name in allowed_hosts(*local)}
        headers = {k.lower(): v for k, v in request.headers.items()}
        refusal = check(request.method, headers, local, origins)
        if refusal is not None:
            return web.json_response({"error": refusal.message}, status=refusal.status)
        response: web.StreamResponse = await handler(request)
        return response

    return guard
