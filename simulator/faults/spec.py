"""Fault definitions: a scenario file's ``faults:`` section and the body of ``POST /_sim/faults``.

This module holds what a validated fault is (:class:`FaultSpec` and its kind's parameters);
:mod:`simulator.faults.parse` reads and validates the format below into them.

Format reference
================

A fault plan is a list of faults. Each fault is a mapping::

    - id: apns-down         # optional; default f1, f2, ... (unique in the plan)
      kind: outage          # outage | throttle | latency | errors | token_churn | auth
                            # | hostile_client
      provider: apns        # apns | fcm | webpush | any  (apns covers production and sandbox)
      start: 10s            # when the window opens (alias: at); default 0
      duration: 20s         # how long it stays open (or end: 30s); default: until cleared
      share: 0.1            # optional: only this share of devices (stable for a seed)
      token: "<token>"      # optional: only this device token (APNs hex, FCM token, Web Push id)
      project: my-project   # optional: only this project (FCM project id, APNs apns-topic)

The window may also be written as a mapping: ``window: {start: 10s, duration: 20s}``.
Times are seconds (``5``, ``0.25``) or strings with units: ``250ms``, ``5s``, ``2m``,
``1h``, ``1m30s``. In a scenario file they count from the simulator's start; through the
control API from the moment of the POST, unless the fault says ``anchor: run``.

Kinds and their own fields:

``outage``
    ``mode``: ``status`` (default: 503 with the provider's body: APNs ServiceUnavailable,
    FCM UNAVAILABLE, Web Push plain 503), ``refused`` (the listener is closed for the window
    and its live connections dropped; provider-wide only), ``reset`` (RST_STREAM; HTTP/1.1
    connections are aborted), ``tcp_reset`` (the connection is aborted with a TCP reset),
    ``goaway`` (GOAWAY whose last-stream-id excludes the request: it and every later
    in-flight stream are lost) or ``hang`` (accepted, never answered).
    ``retry_after`` (status mode): seconds, a duration, or ``auto`` (the time left in the
    window). ``after`` (reset, tcp_reset, goaway): a delay before the blow, so it lands
    mid-stream.
``throttle``
    ``scope``: ``provider`` (default), ``project`` or ``device``; ``rate``: requests per
    second (> 0); ``burst``: bucket size (default: max(1, rate)). Over the limit: 429 with the
    provider's body (APNs TooManyRequests, FCM QUOTA_EXCEEDED, Web Push plain 429) and a
    Retry-After (whole seconds, rounded up) after which the bucket holds a token again.
``latency``
    ``distribution``: ``fixed`` (``delay``), ``uniform`` (``min``, ``max``) or ``lognormal``
    (``p50``, ``p99``; p99 > p50). Added before every matching response.
``errors``
    ``probability``: the share (0-1) of matching requests answered 500 (APNs
    InternalServerError, FCM INTERNAL, Web Push plain 500).
``token_churn``
    ``action``: ``reinstall`` (a new token; the old one is dead) or ``uninstall`` (dead, no
    replacement). Either the devices in ``share`` (or ``token``) churn once each, at a moment
    spread over the window (stable for a seed), or ``rate`` devices per second are picked
    with the seeded RNG while the window is open. New tokens appear on ``/_sim/feed``.
``auth``
    ``mode``: ``relaxed`` (APNs provider tokens never expire, OAuth access tokens never
    expire) or ``enforced`` (default rules, or the overrides below);
    ``apns_token_max_age`` (duration; default 1h), ``oauth_token_lifetime`` (duration;
    default 1h). Provider-wide only.
``hostile_client``
    A misbehaving client the simulator runs against its own listeners for the window,
    beside whatever honest sender is measured: ``behaviour`` ``flood`` (Rapid Reset, PING
    and SETTINGS floods), ``slow_headers`` (a header block trickled in), ``never_reading``
    (requests sent, answers never read), ``endless_body`` (a request body that never
    ends) or ``mixed`` (default: each in turn); ``connections``: how many it keeps busy at
    once (1-64, default 4). Provider-wide only (see :mod:`simulator.faults.hostile`).

Errors name the source, the line when known, the field path (``faults[2].window.duration``)
and what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PROVIDERS = ("apns", "fcm", "webpush")
KINDS = ("outage", "throttle", "latency", "errors", "token_churn", "auth", "hostile_client")
OUTAGE_MODES = ("status", "refused", "reset", "tcp_reset", "goaway", "hang")
THROTTLE_SCOPES = ("provider", "project", "device")
DISTRIBUTIONS = ("fixed", "uniform", "lognormal")
CHURN_ACTIONS = ("reinstall", "uninstall")
AUTH_MODES = ("enforced", "relaxed")
HOSTILE_BEHAVIOURS = ("mixed", "flood", "slow_headers", "never_reading", "endless_body")


class FaultSpecError(ValueError):
    """A fault definition that cannot be executed: where it is and what was expected."""

    def __init__(self, source: str, field: str, message: str, line: int | None = None) -> None:
        self.source = source
        self.field = field
        self.message = message
        self.line = line
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {field}: {message}")


@dataclass(frozen=True, slots=True)
class Outage:
    mode: str = "status"
    retry_after: float | None = None
    retry_after_auto: bool = False
    after: float = 0.0


@dataclass(frozen=True, slots=True)
class Throttle:
    scope: str
    rate: float
    burst: float


@dataclass(frozen=True, slots=True)
class Latency:
    distribution: str
    delay: float = 0.0
    low: float = 0.0
    high: float = 0.0
    p50: float = 0.0
    p99: float = 0.0


@dataclass(frozen=True, slots=True)
class Errors:
    probability: float


@dataclass(frozen=True, slots=True)
class TokenChurn:
    action: str
    rate: float | None = None


@dataclass(frozen=True, slots=True)
class Auth:
    mode: str = "enforced"
    apns_token_max_age: float | None = None
    oauth_token_lifetime: float | None = None


@dataclass(frozen=True, slots=True)
class HostileClient:
    """A misbehaving client of the simulator's own (simulator.faults.hostile_actor)."""

    behaviour: str = "mixed"
    connections: int = 4


Params = Outage | Throttle | Latency | Errors | TokenChurn | Auth | HostileClient


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """One fault as written: its window is relative to ``anchor`` (the run's start or now)."""

    kind: str
    provider: str  # apns | fcm | webpush | any
    params: Params
    start: float = 0.0
    end: float | None = None
    id: str | None = None
    share: float | None = None
    token: str | None = None
    project: str | None = None
    anchor: str = "run"  # run | now

    def providers(self) -> tuple[str, ...]:
        return PROVIDERS if self.provider == "any" else (self.provider,)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "kind": self.kind, "provider": self.provider}
        for name in ("share", "token", "project"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        for name in self.params.__slots__:
            value = getattr(self.params, name)
            if name == "retry_after_auto":
                if value:
                    out["retry_after"] = "auto"
                continue
            if value is not None and not (name == "after" and value == 0.0):
                out[{"low": "min", "high": "max"}.get(name, name)] = value
        return out
