"""Pure response classification: a provider's answer in, an :class:`Outcome` out.

| kind         | meaning                                                     |
| ------------ | ----------------------------------------------------------- |
| DELIVERED    | the provider accepted the notification                      |
| RETRY        | try again later (``retry_after`` seconds when it said so)   |
| TOKEN_DEAD   | the token is gone: prune it, never send to it again         |
| PERMANENT    | this notification can never succeed as built                |
| REAUTH       | credentials rejected: refresh the provider/OAuth token, retry |
| RECONNECT    | the transport failed: retry on a fresh connection           |
"""

from __future__ import annotations

import email.utils
import enum
import json
from dataclasses import dataclass
from typing import Any


class Kind(enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    TOKEN_DEAD = "token_dead"
    PERMANENT = "permanent"
    REAUTH = "reauth"
    RECONNECT = "reconnect"


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: Kind
    reason: str = ""
    retry_after: float | None = None
    message_id: str | None = None

    @property
    def retryable(self) -> bool:
        return self.kind in (Kind.RETRY, Kind.REAUTH, Kind.RECONNECT)

    @property
    def counts_against_breaker(self) -> bool:
        """Failures that say the provider itself is unwell (not this message or token)."""
        return self.kind is Kind.RECONNECT or (
            self.kind is Kind.RETRY
            and self.reason not in ("TooManyRequests", "QUOTA_EXCEEDED", "429")
        )


DELIVERED = Outcome(Kind.DELIVERED)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Retry-After as delay-seconds or an HTTP-date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except (ValueError, RecursionError):
        return None


# -- APNs -------------------------------------------------------------------------

APNS_TOKEN_DEAD = frozenset(
    {"Unregistered", "BadDeviceToken", "ExpiredToken", "DeviceTokenNotForTopic"}
)
APNS_REAUTH = frozenset({"ExpiredProviderToken", "InvalidProviderToken", "MissingProviderToken"})
APNS_RETRY = frozenset(
    {
        "TooManyRequests",
        "InternalServerError",
        "ServiceUnavailable",
        "Shutdown",
        "IdleTimeout",
    }
)


def classify_apns(status: int, body: bytes, retry_after: str | None, now: float) -> Outcome:
    if status == 200:
        return DELIVERED
    parsed = _json(body)
    reason = parsed.get("reason", "") if isinstance(parsed, dict) else ""
    reason = reason if isinstance(reason, str) else ""
    after = parse_retry_after(retry_after, now)
    if status == 410 or reason in APNS_TOKEN_DEAD:
        return Outcome(Kind.TOKEN_DEAD, reason or str(status))
    if status == 403 and reason in APNS_REAUTH:
        return Outcome(Kind.REAUTH, reason)
    if reason == "TooManyProviderTokenUpdates":
        # The connection already carries another provider token: a fresh connection takes
        # the new one (and the request is retried there at once).
        return Outcome(Kind.REAUTH, reason)
    if reason in APNS_RETRY or status in (429, 500, 502, 503, 504):
        return Outcome(Kind.RETRY, reason or str(status), after)
    return Outcome(Kind.PERMANENT, reason or str(status))


# -- FCM --------------------------------------------------------------------------

FCM_TOKEN_DEAD = frozenset({"UNREGISTERED", "SENDER_ID_MISMATCH"})


def fcm_error_code(body: bytes) -> tuple[str, str]:
    """(errorCode from FcmError details, google.rpc status) of an FCM error body."""
    parsed = _json(body)
    err = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(err, dict):
        return "", ""
    status = err.get("status", "")
    code = ""
    for d in err.get("details") or []:
        if isinstance(d, dict) and isinstance(d.get("errorCode"), str):
            code = d["errorCode"]
    return code, status if isinstance(status, str) else ""


def classify_fcm(status: int, body: bytes, retry_after: str | None, now: float) -> Outcome:
    if status == 200:
        parsed = _json(body)
        name = parsed.get("name") if isinstance(parsed, dict) else None
        return Outcome(Kind.DELIVERED, message_id=name if isinstance(name, str) else None)
    code, rpc = fcm_error_code(body)
    reason = code or rpc or str(status)
    after = parse_retry_after(retry_after, now)
    if code in FCM_TOKEN_DEAD or (status == 404 and not code and rpc == "NOT_FOUND"):
        return Outcome(Kind.TOKEN_DEAD, reason)
    if status == 401 and code != "THIRD_PARTY_AUTH_ERROR":
        return Outcome(Kind.REAUTH, reason)
    if status in (429, 500, 502, 503, 504):
        return Outcome(Kind.RETRY, reason, after)
    return Outcome(Kind.PERMANENT, reason)


# -- Web Push ---------------------------------------------------------------------


def classify_webpush(status: int, body: bytes, retry_after: str | None, now: float) -> Outcome:
    if 200 <= status < 300:
        return DELIVERED
    after = parse_retry_after(retry_after, now)
    if status in (404, 410):
        return Outcome(Kind.TOKEN_DEAD, str(status))
    if status == 401 or status == 403:
        return Outcome(Kind.REAUTH, str(status))
    if status in (429, 500, 502, 503, 504):
        return Outcome(Kind.RETRY, str(status), after)
    return Outcome(Kind.PERMANENT, str(status))


def transport_failure(reason: str) -> Outcome:
    return Outcome(Kind.RECONNECT, reason)


CLASSIFIERS = {"apns": classify_apns, "fcm": classify_fcm, "webpush": classify_webpush}
