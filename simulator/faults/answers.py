"""What the fault gate asks of a provider: which requests are sends, and how it words a fault.

The gate (:mod:`simulator.faults.gate`) is the same for every listener; what differs per
provider lives with the provider, behind :class:`FaultAnswers`:

- which requests are push sends (only those meet request-time faults), and the device
  token and project a send names, read as cheaply as the provider allows;
- the 503 / 500 / 429 the provider itself answers (its own body, counted in the simulator's
  stats as the provider counts its own errors), and the GOAWAY debug data of an outage.

The composition root (:mod:`simulator.app`) hands each listener's gate its provider's
answers (APNs: :mod:`simulator.providers.apns.answers`, FCM:
:mod:`simulator.providers.fcm.answers`, Web Push: :mod:`simulator.providers.webpush.answers`).
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

from simulator.wire import Request, Respond


class FaultAnswers(Protocol):
    """One provider's side of the fault gate."""

    @property
    def goaway_debug(self) -> bytes:
        """Debug data of the GOAWAY an outage sends (APNs: a ``{"reason"}``; else empty)."""
        ...

    def is_send(self, path: str) -> bool:
        """Whether a request to ``path`` is a push send."""
        ...

    def path_token(self, path: str) -> str | None:
        """The device token when the path names it (cheap: no parsing of the body)."""
        ...

    def body_token(self, body: bytes) -> str | None:
        """The device token when the body names it (parses the body: call only when needed)."""
        ...

    def project(self, req: Request) -> str | None:
        """The app or project a send is for (bundle id, FCM project, VAPID key)."""
        ...

    def answer(self, status: int, req: Request, retry_after: int | None) -> Respond:
        """``status`` (503, 500 or 429) as the provider writes it, counted in its stats."""
        ...


def with_retry_after(resp: Respond, retry_after: int | None) -> Respond:
    """``resp`` with a ``retry-after`` header (whole seconds) appended, when one is given."""
    if retry_after is None:
        return resp
    return dataclasses.replace(resp, headers=(*resp.headers, ("retry-after", str(retry_after))))
