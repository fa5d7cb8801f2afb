"""What the simulator answered to each push send: status, reason, latency (the dashboard's tap).

:class:`ResponseTap` is a :class:`~simulator.wire.Handler` placed in front of a listener's
handler (the fault gate and the provider core behind it). It looks only at the action that
comes back, so it costs a few dictionary updates per request: it never changes an answer.

Latency is the simulator's side of it: the time the handler took to decide plus every delay
the action carries (injected latency, a blow that lands mid-stream). A hang has none.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pushsim.clock import Clock
from simulator.faults.gate import provider_of
from simulator.providers.sends import is_send
from simulator.wire import (
    Action,
    CloseConnection,
    Delay,
    GoAway,
    Handler,
    Hang,
    Request,
    ResetStream,
    Respond,
)

# Upper bounds (seconds) of the latency buckets; one more bucket holds anything slower.
LATENCY_BOUNDS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.2,
    0.5,
    1.0,
    2.0,
    5.0,
    10.0,
    30.0,
)

# answers that are not a status line: what the page shows instead
_NO_STATUS: dict[type, str] = {
    ResetStream: "reset",
    CloseConnection: "closed",
    Hang: "hang",
    GoAway: "goaway",
}


def _json_field(body: bytes, read: Callable[[dict[str, Any]], str]) -> str:
    if not body.startswith(b"{"):
        return ""
    try:
        doc = json.loads(body)
        return read(doc) if isinstance(doc, dict) else ""
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return ""


def _apns_reason(body: dict[str, Any]) -> str:
    return str(body.get("reason", ""))


def _fcm_reason(body: dict[str, Any]) -> str:
    error = body["error"]
    for detail in error.get("details", []):
        if isinstance(detail, dict) and "errorCode" in detail:
            return str(detail["errorCode"])
    return str(error.get("status", ""))


# provider -> how its error bodies name the reason (Web Push answers in plain text: none)
REASON_READERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "apns": _apns_reason,
    "fcm": _fcm_reason,
}


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str  # "200", "503", ... or reset / closed / hang / goaway
    reason: str  # the provider's reason or errorCode; "" for a success or a plain-text body
    delay: float  # seconds of delay the action carries before it lands


def outcome_of(provider: str, action: Action) -> Outcome:
    """What the client will see from ``action``: the status and reason, and when."""
    delay = 0.0
    while isinstance(action, Delay):
        delay += max(0.0, action.seconds)
        action = action.then
    if isinstance(action, GoAway) and action.response is not None:
        action = action.response
    if not isinstance(action, Respond):
        return Outcome(_NO_STATUS.get(type(action), type(action).__name__.lower()), "", delay)
    reason = ""
    read = REASON_READERS.get(provider)
    if action.status >= 400 and read is not None:
        reason = _json_field(action.body, read)
    return Outcome(str(action.status), reason, delay)


class ProviderMeter:
    """Counters for one provider; only ever incremented (rates come from differences)."""

    __slots__ = ("counts", "latency")

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        self.latency: list[int] = [0] * (len(LATENCY_BOUNDS) + 1)

    def add(self, status: str, reason: str, seconds: float | None) -> None:
        key = (status, reason)
        self.counts[key] = self.counts.get(key, 0) + 1
        if seconds is not None:
            self.latency[bucket_of(seconds)] += 1


def bucket_of(seconds: float) -> int:
    for i, bound in enumerate(LATENCY_BOUNDS):
        if seconds <= bound:
            return i
    return len(LATENCY_BOUNDS)


class Meter:
    """Every provider's counters, fed by the taps."""

    def __init__(self) -> None:
        self.providers: dict[str, ProviderMeter] = {}

    def of(self, provider: str) -> ProviderMeter:
        meter = self.providers.get(provider)
        if meter is None:
            meter = self.providers[provider] = ProviderMeter()
        return meter


class ResponseTap:
    """A Handler that counts what ``inner`` answers to push sends, without changing it."""

    def __init__(self, listener: str, inner: Handler, meter: Meter, clock: Clock) -> None:
        self.provider = provider_of(listener)
        self.inner = inner
        self.meter = meter.of(self.provider)
        self.clock = clock

    def handle(self, request: Request) -> Action:
        began = self.clock.monotonic()
        action = self.inner.handle(request)
        if is_send(self.provider, request.path):
            out = outcome_of(self.provider, action)
            took = None if out.status == "hang" else self.clock.monotonic() - began + out.delay
            self.meter.add(out.status, out.reason, took)
        return action
