"""What every pushsim process does on the way in: refuse non-loopback hosts, pick uvloop."""

from __future__ import annotations

import asyncio
import ipaddress

from pushsim.privatelink import isolated_address


def validate_loopback(host: str) -> str | None:
    if host == "localhost":
        return None
    try:
        addr = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return f"--host: expected a loopback address (127.0.0.0/8, ::1 or localhost), got {host!r}"
    if not addr.is_loopback and not isolated_address(host):  # pushsim run --hosts' links
        return f"--host: expected a loopback address (127.0.0.0/8, ::1 or localhost), got {host!r}"
    return None


def install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
