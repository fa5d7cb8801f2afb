"""The gate in front of each provider core: fault decisions turned into wire actions.

A :class:`FaultGate` wraps any :class:`~simulator.wire.Handler`. For each push send it
gathers the request facts (device token, project) as cheaply as it can, asks the plan
for a decision, records it, and answers as the provider itself would. What is
provider-specific (which requests are sends, where their token and project are, the
provider's 503 / 500 / 429 bodies) it asks of the listener's
:class:`~simulator.faults.answers.FaultAnswers`; what it needs of the running fault plan
is the small :class:`FaultState` (met by :class:`~simulator.faults.runtime.FaultRuntime`).

Requests that are not push sends (the OAuth token endpoint, the Instance ID API) pass
through untouched, except on a connection that outlived a refused listener, which is
aborted.

The server loop tells the gate of every send it will never process (:meth:`FaultGate.unprocessed`:
a refused stream, a stream lost to GOAWAY); each later send to the same token counts as
its retry (:mod:`simulator.faults.unprocessed`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Protocol

from simulator.faults.answers import FaultAnswers
from simulator.faults.plan import Decision, FaultPlan, RequestFacts
from simulator.faults.record import FaultRecord
from simulator.state.devices import find_correlation
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

_STATUS = {"unavailable": 503, "internal": 500, "throttled": 429}
_INTERNAL_RESET = 2  # h2 INTERNAL_ERROR


def provider_of(listener: str) -> str:
    """The provider a listener serves (both APNs environments are ``apns``)."""
    return "apns" if listener.startswith("apns") else listener


class FaultState(Protocol):
    """What a gate reads of the running fault plan."""

    @property
    def plan(self) -> FaultPlan: ...

    @property
    def record(self) -> FaultRecord: ...

    @property
    def refused_now(self) -> frozenset[str]: ...

    @property
    def auth_faults(self) -> bool: ...

    def now(self) -> float: ...

    def sync_auth(self, now: float) -> None: ...

    def refusing_fault(self, provider: str) -> str: ...


def _retry_after_of(action: Action) -> int | None:
    if type(action) is not Respond:
        return None
    assert isinstance(action, Respond)
    if action.status != 429 and action.status != 503:
        return None
    for k, v in action.headers:
        if k.lower() == "retry-after":
            try:
                return max(0, math.ceil(float(v)))
            except ValueError:
                return None
    return None


def _later(d: Decision, action: Action) -> Action:
    """``action`` after the decision's ``after`` (mid-stream) plus injected latency, if any."""
    wait = d.after + d.delay
    return Delay(wait, action) if wait > 0 else action


def _closing(d: Decision) -> Action:
    return _later(d, CloseConnection(abort=True))


# decision -> the wire action that carries it out (answers with a status are the provider's)
_WIRE_ACTIONS: dict[str, Callable[[Decision, FaultAnswers], Action]] = {
    "hang": lambda d, answers: Hang(),
    "reset": lambda d, answers: _later(d, ResetStream(_INTERNAL_RESET)),
    "tcp_reset": lambda d, answers: _closing(d),
    "refused": lambda d, answers: _closing(d),
    "goaway": lambda d, answers: _later(d, GoAway(error_code=0, debug_data=answers.goaway_debug)),
}


class FaultGate:
    """A Handler that applies the fault plan in front of ``inner``."""

    def __init__(
        self, listener: str, inner: Handler, runtime: FaultState, answers: FaultAnswers
    ) -> None:
        self.listener = listener
        self.provider = provider_of(listener)
        self.inner = inner
        self.rt = runtime
        self.answers = answers

    def handle(self, request: Request) -> Action:
        rt = self.rt
        provider = self.provider
        ledger = rt.record.ledger
        if (
            not rt.plan.has_request_faults(provider)
            and not ledger.not_before
            and provider not in rt.refused_now
            and not rt.record.unprocessed.waiting
        ):
            action = self.inner.handle(request)
            if _retry_after_of(action) is not None:
                self._note_core_retry_after(request, action, None)
            return action
        return self._handle_slow(request)

    def _handle_slow(self, req: Request) -> Action:
        rt = self.rt
        provider = self.provider
        answers = self.answers
        plan = rt.plan
        record = rt.record
        now = rt.now()
        if rt.auth_faults:
            rt.sync_auth(now)
        if provider in rt.refused_now:
            # A connection opened before the listener was refused: it goes down too.
            record.count(now, provider, rt.refusing_fault(provider), "outage", "refused")
            return CloseConnection(abort=True)
        if not answers.is_send(req.path):
            return self.inner.handle(req)
        ledger = record.ledger
        token = answers.path_token(req.path)
        lost = record.unprocessed
        if token is None and (
            ledger.has_device_scopes or lost.waiting or plan.needs_token(provider, now)
        ):
            token = answers.body_token(req.body)
        if lost.waiting:
            lost.sent(provider, token, now)
        project = (
            answers.project(req)
            if (ledger.not_before or plan.needs_project(provider, now))
            else None
        )
        ledger.check(provider, token, project, now, req.conn.conn_id)
        decision = plan.decide(now, RequestFacts(provider, token, project))
        if decision.during_outage:
            record.sends_during_outage[provider] += 1
        for inj in decision.injections:
            record.count(now, provider, inj.fault_id, inj.kind, inj.outcome)
        return self._act(req, decision, now, token)

    def _act(self, req: Request, d: Decision, now: float, token: str | None) -> Action:
        kind = d.action
        action: Action
        if kind == "pass":
            action = self.inner.handle(req)
            if _retry_after_of(action) is not None:
                self._note_core_retry_after(req, action, token)
        elif kind in _STATUS:
            action = self.answers.answer(_STATUS[kind], req, d.retry_after)
            if d.retry_after is not None and d.scope is not None:
                scope, key = d.scope
                self.rt.record.ledger.note(
                    self.provider, scope, key, now + d.retry_after, now, req.conn.conn_id
                )
        elif kind in _WIRE_ACTIONS:
            return _WIRE_ACTIONS[kind](d, self.answers)
        else:  # pragma: no cover - exhaustive
            raise ValueError(f"unknown decision {kind!r}")
        if d.delay > 0:
            return Delay(d.delay, action)
        return action

    def unprocessed(self, req: Request, reason: str) -> None:
        """The server loop will never process ``req`` (``reason``: ``refused_stream`` or
        ``goaway``): a send is recorded, to be matched with its retry."""
        answers = self.answers
        if not answers.is_send(req.path):
            return
        token = answers.path_token(req.path) or (answers.body_token(req.body) if req.body else None)
        record = self.rt.record
        now = self.rt.now()
        record.unprocessed.lost(
            now,
            record.started_wall + now,
            self.provider,
            reason,
            req.conn.conn_id,
            req.stream_id,
            token,
            _correlation(req.body),
        )

    def _note_core_retry_after(self, req: Request, action: Action, token: str | None) -> None:
        """The provider core itself answered 429/503 with Retry-After: hold the token to it."""
        seconds = _retry_after_of(action)
        if seconds is None:
            return
        if token is None:
            token = self.answers.path_token(req.path) or self.answers.body_token(req.body)
        if token:
            now = self.rt.now()
            self.rt.record.ledger.note(
                self.provider, "device", token, now + seconds, now, req.conn.conn_id
            )


def _correlation(body: bytes) -> str | None:
    """The correlation id the harness planted in a request's JSON body, if any."""
    if not body:
        return None
    try:
        return find_correlation(json.loads(body))
    except (ValueError, RecursionError):
        return None
