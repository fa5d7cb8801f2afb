"""The gate in front of each provider core: fault decisions turned into wire actions.

A :class:`FaultGate` wraps any :class:`~simulator.wire.Handler`. For each push send it
gathers the request facts (device token, project) as cheaply as it can, asks the plan
for a decision, records it, and answers with the provider's own error bodies:

========  ==========================================  =====================================
status    APNs                                        FCM (google.rpc.Status + FcmError)
========  ==========================================  =====================================
503       ``{"reason":"ServiceUnavailable"}``         UNAVAILABLE / UNAVAILABLE
500       ``{"reason":"InternalServerError"}``        INTERNAL / INTERNAL
429       ``{"reason":"TooManyRequests"}``            RESOURCE_EXHAUSTED / QUOTA_EXCEEDED
========  ==========================================  =====================================

Web Push answers plain-text 503 / 500 / 429. Requests that are not push sends (the
OAuth token endpoint, the Instance ID API) pass through untouched, except on a connection
that outlived a refused listener, which is aborted.
"""

from __future__ import annotations

import json
import math
import uuid
from typing import TYPE_CHECKING

from simulator.faults.plan import Decision, RequestFacts
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

if TYPE_CHECKING:
    from simulator.faults.runtime import FaultRuntime

APNS_PREFIX = "/3/device/"
FCM_PREFIX = "/v1/projects/"
WEBPUSH_PREFIX = "/wp/"

_APNS_REASON = {503: "ServiceUnavailable", 500: "InternalServerError", 429: "TooManyRequests"}
_FCM_ERROR = {
    503: ("UNAVAILABLE", "UNAVAILABLE", "The service is currently unavailable."),
    500: ("INTERNAL", "INTERNAL", "Internal error encountered."),
    429: (
        "RESOURCE_EXHAUSTED",
        "QUOTA_EXCEEDED",
        "Quota exceeded for quota metric 'Send requests'.",
    ),
}
_WEBPUSH_TEXT = {
    503: b"Service Unavailable",
    500: b"Internal Server Error",
    429: b"Too Many Requests",
}
_STATUS = {"unavailable": 503, "internal": 500, "throttled": 429}
_INTERNAL_RESET = 2  # h2 INTERNAL_ERROR
_REFUSED_STREAM = 7


def provider_of(listener: str) -> str:
    return "apns" if listener.startswith("apns") else listener


def is_send(provider: str, path: str) -> bool:
    if provider == "apns":
        return path.startswith(APNS_PREFIX)
    if provider == "fcm":
        return path.startswith(FCM_PREFIX) and path.endswith(":send")
    return path.startswith(WEBPUSH_PREFIX)


def path_token(provider: str, path: str) -> str | None:
    """The device token when it is in the path (APNs, Web Push)."""
    if provider == "apns":
        token = path[len(APNS_PREFIX) :].partition("?")[0]
        return token.lower() or None
    if provider == "webpush":
        return path[len(WEBPUSH_PREFIX) :].partition("?")[0].partition("/")[0] or None
    return None


def fcm_token(body: bytes) -> str | None:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return None
    msg = doc.get("message") if isinstance(doc, dict) else None
    token = msg.get("token") if isinstance(msg, dict) else None
    return token if isinstance(token, str) else None


def request_project(provider: str, req: Request) -> str | None:
    if provider == "fcm":
        rest = req.path[len(FCM_PREFIX) :]
        return rest.partition("/")[0] or None
    if provider == "apns":
        return req.header("apns-topic")
    auth = req.header("authorization") or ""
    for part in auth.replace(",", " ").split():
        if part.startswith("k="):
            return part[2:]
    return None


def provider_error(provider: str, status: int, req: Request, retry_after: int | None) -> Respond:
    """A 503 / 500 / 429 as the provider itself writes it."""
    extra: tuple[tuple[str, str], ...] = (
        (("retry-after", str(retry_after)),) if retry_after is not None else ()
    )
    if provider == "apns":
        apns_id = req.header("apns-id") or str(uuid.uuid4())
        body = b'{"reason":"' + _APNS_REASON[status].encode() + b'"}'
        return Respond(
            status, (("content-type", "application/json"), ("apns-id", apns_id), *extra), body
        )
    if provider == "fcm":
        rpc_status, code, message = _FCM_ERROR[status]
        doc = {
            "error": {
                "code": status,
                "message": message,
                "status": rpc_status,
                "details": [
                    {
                        "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                        "errorCode": code,
                    }
                ],
            }
        }
        body = json.dumps(doc, separators=(",", ":")).encode()
        return Respond(status, (("content-type", "application/json; charset=UTF-8"), *extra), body)
    return Respond(
        status, (("content-type", "text/plain; charset=utf-8"), *extra), _WEBPUSH_TEXT[status]
    )


def stats_outcome(provider: str, status: int) -> str:
    if provider == "apns":
        return _APNS_REASON[status]
    if provider == "fcm":
        return _FCM_ERROR[status][1]
    return str(status)


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


class FaultGate:
    """A Handler that applies the fault plan in front of ``inner``."""

    def __init__(self, listener: str, inner: Handler, runtime: FaultRuntime) -> None:
        self.listener = listener
        self.provider = provider_of(listener)
        self.inner = inner
        self.rt = runtime

    def handle(self, request: Request) -> Action:
        rt = self.rt
        provider = self.provider
        ledger = rt.record.ledger
        if (
            not rt.plan.has_request_faults(provider)
            and not ledger.not_before
            and provider not in rt.refused_now
        ):
            action = self.inner.handle(request)
            if _retry_after_of(action) is not None:
                self._note_core_retry_after(request, action, None)
            return action
        return self._handle_slow(request)

    def _handle_slow(self, req: Request) -> Action:
        rt = self.rt
        provider = self.provider
        plan = rt.plan
        record = rt.record
        now = rt.now()
        if rt.auth_faults:
            rt.sync_auth(now)
        if provider in rt.refused_now:
            # A connection opened before the listener was refused: it goes down too.
            record.count(now, provider, rt.refusing_fault(provider), "outage", "refused")
            return CloseConnection(abort=True)
        if not is_send(provider, req.path):
            return self.inner.handle(req)
        ledger = record.ledger
        token: str | None = path_token(provider, req.path)
        if (
            token is None
            and provider == "fcm"
            and (ledger.has_device_scopes or plan.needs_token(provider, now))
        ):
            token = fcm_token(req.body)
        project = (
            request_project(provider, req)
            if (ledger.not_before or plan.needs_project(provider, now))
            else None
        )
        ledger.check(provider, token, project, now, req.conn.conn_id)
        decision = plan.decide(now, RequestFacts(provider, token, project))
        if decision.during_outage:
            record.sends_during_outage[provider] += 1
        for inj in decision.injections:
            record.count(now, provider, inj.fault_id, inj.kind, inj.outcome)
        action = self._act(req, decision, now, token, project)
        return action

    def _act(
        self, req: Request, d: Decision, now: float, token: str | None, project: str | None
    ) -> Action:
        provider = self.provider
        kind = d.action
        action: Action
        if kind == "pass":
            action = self.inner.handle(req)
            if _retry_after_of(action) is not None:
                self._note_core_retry_after(req, action, token)
        elif kind in _STATUS:
            status = _STATUS[kind]
            action = provider_error(provider, status, req, d.retry_after)
            self.rt.count_response(provider, stats_outcome(provider, status))
            if d.retry_after is not None and d.scope is not None:
                scope, key = d.scope
                self.rt.record.ledger.note(
                    provider, scope, key, now + d.retry_after, now, req.conn.conn_id
                )
        elif kind == "hang":
            return Hang()
        elif kind == "reset":
            return _later(d, ResetStream(_INTERNAL_RESET))
        elif kind in ("tcp_reset", "refused"):
            return _later(d, CloseConnection(abort=True))
        elif kind == "goaway":
            debug = b'{"reason":"ServiceUnavailable"}' if provider == "apns" else b""
            return _later(d, GoAway(error_code=0, debug_data=debug))
        else:  # pragma: no cover - exhaustive
            raise ValueError(f"unknown decision {kind!r}")
        if d.delay > 0:
            return Delay(d.delay, action)
        return action

    def _note_core_retry_after(self, req: Request, action: Action, token: str | None) -> None:
        """The provider core itself answered 429/503 with Retry-After: hold the token to it."""
        seconds = _retry_after_of(action)
        if seconds is None:
            return
        provider = self.provider
        if token is None:
            token = path_token(provider, req.path) if provider != "fcm" else fcm_token(req.body)
        if token:
            now = self.rt.now()
            self.rt.record.ledger.note(
                provider, "device", token, now + seconds, now, req.conn.conn_id
            )
