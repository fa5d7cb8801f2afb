"""Requests the simulator never processed, and whether the sender sent them again.

An HTTP/2 server that refuses a stream (RST_STREAM REFUSED_STREAM) or announces GOAWAY
with a last-stream-id promises the client that those streams were never processed: a
sender may, and should, send them again (RFC 9113 sections 8.7 and 6.8). Not doing so
loses a notification the provider never saw. The server loop reports each such request
(:meth:`UnprocessedLedger.lost`, with the device token and correlation id read from it
when it names them); every later send to the same provider and token counts as its retry
(:meth:`UnprocessedLedger.sent`). What is still waiting when a run is judged was "safe to
retry, not retried". A request naming no token (an FCM stream refused before its body
arrived) is recorded but cannot be matched, so it counts in neither way.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

MAX_EVENTS = 10_000  # in the timeline; counting goes on beyond
MAX_WAITING = 100_000  # lost requests followed for a retry


class UnprocessedLedger:
    """Never-processed requests: each one in the timeline, counted per provider."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.lost_count: Counter[str] = Counter()
        self.retried: Counter[str] = Counter()
        self.unmatched: Counter[str] = Counter()  # no token to match a retry by
        # (provider, token) -> the timeline entries still waiting for a retry
        self.waiting: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._waiting_count = 0

    def lost(
        self,
        at: float,
        wall: float,
        provider: str,
        reason: str,
        conn_id: int,
        stream_id: int,
        token: str | None,
        correlation_id: str | None,
    ) -> None:
        """A request to ``provider`` that will never be processed (``reason``:
        ``refused_stream`` or ``goaway``); ``at`` in run seconds, ``wall`` epoch seconds."""
        self.lost_count[provider] += 1
        entry: dict[str, Any] = {
            "at": round(at, 6),
            "wall": round(wall, 6),
            "provider": provider,
            "reason": reason,
            "conn": conn_id,
            "stream": stream_id,
            "token": token,
            "retried_at": None,
        }
        if correlation_id is not None:
            entry["correlation_id"] = correlation_id
        if len(self.events) < MAX_EVENTS:
            self.events.append(entry)
        if token is None:
            self.unmatched[provider] += 1
        elif self._waiting_count < MAX_WAITING:
            self.waiting.setdefault((provider, token), []).append(entry)
            self._waiting_count += 1

    def sent(self, provider: str, token: str | None, at: float) -> None:
        """A send to ``token`` reached ``provider``: it retries whatever was lost for it."""
        if token is None:
            return
        entries = self.waiting.pop((provider, token), None)
        if entries is None:
            return
        self._waiting_count -= len(entries)
        self.retried[provider] += len(entries)
        for e in entries:
            e["retried_at"] = round(at, 6)

    def not_retried(self) -> Counter[str]:
        """Per provider, the lost requests no later send has retried."""
        out: Counter[str] = Counter()
        for (provider, _token), entries in self.waiting.items():
            out[provider] += len(entries)
        return out

    def shift(self, delta: float) -> None:
        """The run clock restarted ``delta`` seconds later."""
        for e in self.events:
            e["at"] = round(e["at"] - delta, 6)
            if e["retried_at"] is not None:
                e["retried_at"] = round(e["retried_at"] - delta, 6)
