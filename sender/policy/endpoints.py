"""Which Web Push endpoints the sender POSTs to: an allow-list of push-service origins.

A Web Push subscription names its endpoint, and the sender POSTs there with its VAPID
JWT; without a check, whoever can call the sender's API could make it POST anywhere its
machine can reach (any scheme, host, port and path). So an endpoint must be ``https`` on
an origin of the list (:data:`sender.config.settings.KNOWN_PUSH_SERVICES` by default: the
browsers' push services; in simulator mode also the simulator's own Web Push origin;
``webpush.allowed_origins`` in a config file replaces the list). An entry is an origin
(``https://push.example.com``, a port when not 443) or a wildcard for the subdomains of a
name (``https://*.notify.windows.com``); ``http://`` is accepted only for a loopback
host (a local simulator without TLS). Pure: strings in, a refusal (or None) out.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_DEFAULT_PORTS = {"https": 443, "http": 80}


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, lower-case, the scheme's default port left out
    (``""`` when it has no scheme or host)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return ""
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if not scheme or not host:
        return ""
    shown = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        shown += f":{port}"
    return f"{scheme}://{shown}"


def entry_problem(entry: str) -> str | None:
    """What is wrong with an allow-list entry (None: nothing)."""
    parts = urlsplit(entry.strip())
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or not host:
        return f"expected an origin such as https://push.example.com, got {entry!r}"
    if parts.scheme == "http" and host not in LOOPBACK:
        return f"expected https (http only on a loopback host), got {entry!r}"
    if (parts.path not in ("", "/")) or parts.query or parts.fragment:
        return f"expected an origin with no path, got {entry!r}"
    if "*" in host and (not host.startswith("*.") or "*" in host[2:]):
        return f"a wildcard stands for a whole leading label (https://*.example.com), got {entry!r}"
    return None


class EndpointPolicy:
    """The allow-list, ready to match endpoints against."""

    def __init__(self, origins: Iterable[str]) -> None:
        self.origins = tuple(origins)
        self._exact = frozenset(origin_of(o) for o in self.origins if "*" not in o)
        # "https://*.example.com[:port]" -> ("https://", ".example.com[:port]")
        self._suffixes = tuple(
            (o.split("*", 1)[0].lower(), origin_of(o.replace("*", "x", 1)).split("://x", 1)[1])
            for o in self.origins
            if "*" in o
        )

    def refusal(self, endpoint: str) -> str | None:
        """Why the sender will not POST to ``endpoint`` (None: it will)."""
        origin = origin_of(endpoint)
        if origin and origin in self._exact:
            return None
        for scheme, suffix in self._suffixes:
            if origin.startswith(scheme) and origin.endswith(suffix):
                if len(origin) > len(scheme) + len(suffix):  # a label before the suffix
                    return None
        shown = origin or repr(endpoint[:100])
        return (
            f"{shown} is not an allowed push service origin (allowed: "
            f"{', '.join(self.origins) or 'none'}; a config file sets webpush.allowed_origins)"
        )
