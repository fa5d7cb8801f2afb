"""APNs' side of the fault gate: its sends, and its reasons for an injected 503 / 500 / 429.

The body comes from the core's own :meth:`~simulator.providers.apns.core.ApnsCore.error`
(``{"reason": ...}`` with ``apns-id``, counted per reason), so an injected fault reads
exactly like one the core answers itself.
"""

from __future__ import annotations

import uuid

from simulator.faults.answers import with_retry_after
from simulator.providers.apns.core import PATH_PREFIX, ApnsCore
from simulator.wire import Request, Respond

REASONS = {503: "ServiceUnavailable", 500: "InternalServerError", 429: "TooManyRequests"}
GOAWAY_DEBUG = b'{"reason":"ServiceUnavailable"}'


class ApnsFaultAnswers:
    """The fault answers of one APNs environment (its core counts and words them)."""

    goaway_debug = GOAWAY_DEBUG

    def __init__(self, core: ApnsCore) -> None:
        self.core = core

    @staticmethod
    def is_send(path: str) -> bool:
        return path.startswith(PATH_PREFIX)

    @staticmethod
    def path_token(path: str) -> str | None:
        token = path[len(PATH_PREFIX) :].partition("?")[0]
        return token.lower() or None

    @staticmethod
    def body_token(body: bytes) -> str | None:
        return None

    @staticmethod
    def project(req: Request) -> str | None:
        return req.header("apns-topic")

    def answer(self, status: int, req: Request, retry_after: int | None) -> Respond:
        apns_id = req.header("apns-id") or str(uuid.uuid4())
        return with_retry_after(self.core.error(status, REASONS[status], apns_id), retry_after)
