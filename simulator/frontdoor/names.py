"""The real provider hostnames and where each request to them goes: pure, no I/O.

A request reaching the front door names its service only by ``:authority`` (or ``Host``)
and path, so :func:`route` maps (authority, path) to the name of the listener whose
handler answers it and the path that handler expects. The table below is the whole
mapping; the front door, ``pushsim exec`` and ``pushsim hosts`` all read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# real hostname -> the listener serving it (what is not in a path rule below)
HOSTS: dict[str, str] = {
    "api.push.apple.com": "apns",
    "api.sandbox.push.apple.com": "apns_sandbox",
    "api.development.push.apple.com": "apns_sandbox",
    # broadcast channel management (ports 2196 and 2195)
    "api-manage-broadcast.push.apple.com": "apns_channels",
    "api-manage-broadcast.sandbox.push.apple.com": "apns_channels_sandbox",
    "fcm.googleapis.com": "fcm",
    "oauth2.googleapis.com": "fcm",
    "www.googleapis.com": "fcm",
    "iid.googleapis.com": "fcm",
    "updates.push.services.mozilla.com": "webpush",
    "web.push.apple.com": "webpush",
}

# the ports the real services listen on (APNs: 443 or 2197; the broadcast channel hosts'
# 2195/2196 are forwarded too, and answered by the channel-management listeners)
PORTS: tuple[int, ...] = (443, 2197, 2195, 2196)

# the Web Push listener's own path prefixes (simulator.providers.webpush.core)
_WP = "/wp/"
_MESSAGES = "/m/"


@dataclass(frozen=True, slots=True)
class PathRule:
    """On ``host``, a path starting with ``prefix`` goes to ``listener`` as ``to + rest``."""

    host: str
    prefix: str
    listener: str
    to: str


# first match wins, so the longer prefixes of one host come first
PATH_RULES: tuple[PathRule, ...] = (
    # Chrome's Web Push endpoints live on FCM's host
    PathRule("fcm.googleapis.com", "/fcm/send/", "webpush", _WP),
    PathRule("fcm.googleapis.com", _MESSAGES, "webpush", _MESSAGES),
    PathRule("updates.push.services.mozilla.com", "/wpush/v2/", "webpush", _WP),
    PathRule("updates.push.services.mozilla.com", "/wpush/v1/", "webpush", _WP),
    PathRule("web.push.apple.com", _MESSAGES, "webpush", _MESSAGES),
    PathRule("web.push.apple.com", "/", "webpush", _WP),
    # the OAuth2 token endpoint, and the older URL some Google clients still use
    PathRule("oauth2.googleapis.com", "/token", "fcm", "/token"),
    PathRule("www.googleapis.com", "/oauth2/v4/token", "fcm", "/token"),
)

# Web Push flavour -> the endpoint prefix its real service hands out (the token follows)
REAL_WEBPUSH_PREFIX: dict[str, str] = {
    "mozilla": "https://updates.push.services.mozilla.com/wpush/v2/",
    "google": "https://fcm.googleapis.com/fcm/send/",
    "apple": "https://web.push.apple.com/",
}

LOCAL_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})


@dataclass(frozen=True, slots=True)
class Route:
    listener: str
    path: str
    authority: str  # as the handler should see it: the host, with a default :443 dropped


def split_authority(authority: str) -> tuple[str, int | None]:
    """``host[:port]`` (IPv6 in brackets) -> (lower-case host, port or None)."""
    text = authority.strip().lower()
    if text.startswith("["):
        end = text.find("]")
        host, rest = (text, "") if end < 0 else (text[: end + 1], text[end + 1 :])
    else:
        host, sep, rest = text.partition(":")
        rest = sep + rest
    if rest.startswith(":") and rest[1:].isascii() and rest[1:].isdigit():
        return host, int(rest[1:])
    return host, None


def route(authority: str, path: str, local_ports: Mapping[int, str]) -> Route | None:
    """Where a request for ``authority`` + ``path`` goes; None when no listener serves it.

    ``local_ports`` maps the simulator's own loopback ports to their listeners, so the URLs
    in ``endpoints.json`` (``127.0.0.1:PORT``) work through the front door too.
    """
    host, port = split_authority(authority)
    if host in LOCAL_NAMES:
        name = local_ports.get(port) if port is not None else None
        return Route(name, path, authority) if name else None
    listener = HOSTS.get(host)
    if listener is None:
        return None
    shown = host if port in (None, 443) else f"{host}:{port}"
    for rule in PATH_RULES:
        if rule.host == host and path.startswith(rule.prefix):
            return Route(rule.listener, rule.to + path[len(rule.prefix) :], shown)
    return Route(listener, path, shown)


def hosts_lines(address: str = "127.0.0.1") -> list[str]:
    """``/etc/hosts`` lines mapping every real name to ``address``."""
    return [f"{address}\t{name}" for name in HOSTS]
