"""APNs' stream limit on one connection, as the core decides it (pure: the server loop sends
the SETTINGS a core leaves in ``ConnectionInfo.pending_settings``).

A connection starts at one stream (the listener's first SETTINGS) and is granted the full
limit with its first valid provider token or certificate. After a rejected notification
APNs drops the limit to 1 and restores it after the next accepted one (Apple radar
27870881; the "choppy" stream counts of Pushy #732).
"""

from __future__ import annotations

from simulator.providers.apns.auth import ConnectionAuth
from simulator.wire import ConnectionInfo

SETTINGS_MAX_CONCURRENT_STREAMS = 0x3


def grant(auth: ConnectionAuth, conn: ConnectionInfo, full: int) -> None:
    """The connection's first valid token or certificate: the full limit, once."""
    if not auth.authorized:
        auth.authorized = True
        conn.pending_settings = {SETTINGS_MAX_CONCURRENT_STREAMS: full}


def follow_answer(
    auth: ConnectionAuth | None, conn: ConnectionInfo, status: int, full: int
) -> None:
    """The limit after an answer on an authorised connection: down to 1 after a rejection
    (4xx), back to ``full`` after the next accepted notification."""
    if auth is None or not auth.authorized:
        return
    if 400 <= status < 500:
        if not auth.narrowed:
            auth.narrowed = True
            conn.pending_settings = {SETTINGS_MAX_CONCURRENT_STREAMS: 1}
    elif status == 200 and auth.narrowed:
        auth.narrowed = False
        conn.pending_settings = {SETTINGS_MAX_CONCURRENT_STREAMS: full}
