"""Who may use the dashboard: the rules every request passes before it reaches a route (pure).

- **Host**: only the listener's own ``host:port`` (and ``localhost:port``) is accepted, so a
  page on another name that resolves to 127.0.0.1 (DNS rebinding) cannot talk to it.
- **Token**: every ``/api/`` call carries the per-start token (the ``x-pushsim-token``
  header, or ``?token=`` where a header cannot be set, as for the event stream); without it,
  403. The token is random for each start and printed in the dashboard's URL.
- **Content type**: a call that changes state (POST, PUT, PATCH, DELETE) must say
  ``content-type: application/json``, which a cross-site form cannot send without a CORS
  preflight the dashboard never answers.

The page and its static files need only the Host check: they hold no data.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass

TOKEN_HEADER = "x-pushsim-token"
CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int
    message: str


def allowed_hosts(host: str, port: int) -> frozenset[str]:
    """The Host values a request to the listener at ``host``:``port`` may carry."""
    literal = f"[{host}]" if ":" in host and not host.startswith("[") else host
    names = {f"{literal}:{port}", f"localhost:{port}"}
    return frozenset(n.lower() for n in names)


def check(
    method: str,
    path: str,
    headers: Mapping[str, str],
    query: Mapping[str, str],
    *,
    hosts: frozenset[str],
    token: str,
) -> Refusal | None:
    """None when the request may go on; otherwise why not. ``headers``: lower-case names."""
    host = headers.get("host", "").lower()
    if host not in hosts:
        return Refusal(403, f"Host {host or '(none)'!r} is not this dashboard's address")
    if not path.startswith("/api/"):
        return None
    given = headers.get(TOKEN_HEADER) or query.get("token", "")
    if not given or not hmac.compare_digest(given.encode(), token.encode()):
        return Refusal(403, "missing or wrong dashboard token (open the URL printed at start)")
    if method in CHANGING:
        ctype = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if ctype != "application/json":
            return Refusal(415, "expected content-type: application/json")
    return None


def sse_event(event: str, data: str, event_id: int | None = None) -> bytes:
    """One server-sent event; ``data`` is one line of JSON (newlines would split it)."""
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.extend(f"data: {part}" for part in data.split("\n"))
    return ("\n".join(lines) + "\n\n").encode()
