"""FCM's side of the fault gate: its sends, and its google.rpc.Status for a 503 / 500 / 429.

The body comes from :mod:`simulator.providers.fcm.errors` through the core's
:meth:`~simulator.providers.fcm.core.FcmCore.fail` (counted per errorCode), so an injected
fault reads exactly like one the core answers itself.
"""

from __future__ import annotations

import json

from simulator.faults.answers import with_retry_after
from simulator.providers.fcm.core import FcmCore
from simulator.providers.fcm.errors import FcmError
from simulator.providers.fcm.router import PROJECTS_PREFIX, SEND_SUFFIX
from simulator.wire import Request, Respond

ERRORS = {
    503: FcmError("UNAVAILABLE"),
    500: FcmError("INTERNAL"),
    429: FcmError("QUOTA_EXCEEDED", "Quota exceeded for quota metric 'Send requests'."),
}


def message_token(body: bytes) -> str | None:
    """``message.token`` of a send's JSON body, if it has one."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return None
    msg = doc.get("message") if isinstance(doc, dict) else None
    token = msg.get("token") if isinstance(msg, dict) else None
    return token if isinstance(token, str) else None


class FcmFaultAnswers:
    """The fault answers of the FCM HTTP v1 API (its core counts and words them)."""

    goaway_debug = b""

    def __init__(self, core: FcmCore) -> None:
        self.core = core

    @staticmethod
    def is_send(path: str) -> bool:
        return path.startswith(PROJECTS_PREFIX) and path.endswith(SEND_SUFFIX)

    @staticmethod
    def path_token(path: str) -> str | None:
        return None

    @staticmethod
    def body_token(body: bytes) -> str | None:
        return message_token(body)

    @staticmethod
    def project(req: Request) -> str | None:
        return req.path[len(PROJECTS_PREFIX) :].partition("/")[0] or None

    def answer(self, status: int, req: Request, retry_after: int | None) -> Respond:
        # Retry-After as the plan gave it (a scenario may ask for 0), so not FcmError's own
        return with_retry_after(self.core.fail(ERRORS[status]), retry_after)
