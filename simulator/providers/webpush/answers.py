"""Web Push's side of the fault gate: its sends, and its plain-text 503 / 500 / 429.

Every vendor's push service answers an overload or an outage with the bare reason phrase
(``text/plain``), whatever its flavour words its other errors with; the phrases are
:data:`~simulator.providers.webpush.flavours.REASON_PHRASES`. Counted per status.
"""

from __future__ import annotations

from http import HTTPStatus

from simulator.faults.answers import with_retry_after
from simulator.providers.webpush.core import PATH_PREFIX, PROVIDER
from simulator.providers.webpush.flavours import REASON_PHRASES
from simulator.state.stats import Stats
from simulator.wire import Request, Respond

_TEXT = ("content-type", "text/plain; charset=utf-8")


class WebPushFaultAnswers:
    """The fault answers of the Web Push service."""

    goaway_debug = b""

    def __init__(self, stats: Stats) -> None:
        self.stats = stats

    @staticmethod
    def is_send(path: str) -> bool:
        return path.startswith(PATH_PREFIX)

    @staticmethod
    def path_token(path: str) -> str | None:
        return path[len(PATH_PREFIX) :].partition("?")[0].partition("/")[0] or None

    @staticmethod
    def body_token(body: bytes) -> str | None:
        return None

    @staticmethod
    def project(req: Request) -> str | None:
        """The application server's VAPID key (``k=``), which stands for its app."""
        auth = req.header("authorization") or ""
        for part in auth.replace(",", " ").split():
            if part.startswith("k="):
                return part[2:]
        return None

    def answer(self, status: int, req: Request, retry_after: int | None) -> Respond:
        self.stats.count(PROVIDER, str(status))
        phrase = REASON_PHRASES.get(status) or HTTPStatus(status).phrase
        return with_retry_after(Respond(status, (_TEXT,), phrase.encode()), retry_after)
