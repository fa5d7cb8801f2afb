"""How each browser vendor's push service words its answers.

All three speak RFC 8030, but they differ in the details a sender's error handling meets:

- ``mozilla`` (autopush, Firefox): JSON errors ``{"code", "errno", "error", "message",
  "more_info"}``; unsubscribed and expired subscriptions are both 410 (errno 106 / 103);
  an endpoint that never existed is 404 (errno 102).
- ``google`` (FCM's Web Push endpoint, Chrome): plain-text error bodies; an unsubscribed
  subscription is 410, an expired one 404.
- ``apple`` (web.push.apple.com, Safari): JSON ``{"reason": ...}`` in the style of APNs;
  VAPID is required for every subscription.

Status codes for VAPID (401 missing, 403 invalid) and for bad requests (400), 413 and 429
are the same everywhere; the flavour changes bodies and the 404/410 choice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

MORE_INFO = "http://autopush.readthedocs.io/en/latest/http.html#error-codes"

REASON_PHRASES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    410: "Gone",
    413: "Payload Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
}

# error kind -> autopush errno
_MOZILLA_ERRNO = {
    "bad_path": 102,
    "method": 999,
    "not_found": 102,
    "unsubscribed": 106,
    "expired": 103,
    "missing_ttl": 111,
    "bad_ttl": 112,
    "bad_urgency": 111,
    "bad_topic": 113,
    "too_large": 104,
    "missing_encoding": 101,
    "bad_encoding": 110,
    "decrypt": 110,
    "vapid_missing": 109,
    "vapid_invalid": 109,
    "vapid_expired": 109,
    "vapid_audience": 109,
    "vapid_key_mismatch": 109,
    "rate_limited": 201,
}

# error kind -> reason in Apple's JSON
_APPLE_REASON = {
    "bad_path": "BadPath",
    "method": "MethodNotAllowed",
    "not_found": "BadDeviceToken",
    "unsubscribed": "Unregistered",
    "expired": "Unregistered",
    "missing_ttl": "BadExpirationDate",
    "bad_ttl": "BadExpirationDate",
    "bad_urgency": "BadPriority",
    "bad_topic": "BadWebPushTopic",
    "too_large": "PayloadTooLarge",
    "missing_encoding": "BadPayload",
    "bad_encoding": "BadPayload",
    "decrypt": "BadPayload",
    "vapid_missing": "MissingProviderToken",
    "vapid_invalid": "BadJwtToken",
    "vapid_expired": "ExpiredJwtToken",
    "vapid_audience": "BadJwtToken",
    "vapid_key_mismatch": "BadJwtToken",
    "rate_limited": "TooManyRequests",
}


@dataclass(frozen=True, slots=True)
class Flavour:
    name: str
    unknown_status: int = 404  # never issued here
    unsubscribed_status: int = 410  # the browser unsubscribed (uninstall, rotation)
    expired_status: int = 410  # the subscription's expirationTime passed
    require_vapid: bool = False  # VAPID even for subscriptions not bound to a key
    max_ttl: int = 2_592_000  # longer TTLs are lowered and the response says so

    def error_body(self, status: int, kind: str, message: str) -> tuple[str, bytes]:
        """(content type, body) for an error of ``kind``."""
        if self.name == "mozilla":
            doc = {
                "code": status,
                "errno": _MOZILLA_ERRNO.get(kind, 999),
                "error": REASON_PHRASES.get(status, "Error"),
                "message": message,
                "more_info": MORE_INFO,
            }
            return "application/json", json.dumps(doc, separators=(",", ":")).encode()
        if self.name == "apple":
            doc = {"reason": _APPLE_REASON.get(kind, "BadRequest")}
            return "application/json", json.dumps(doc, separators=(",", ":")).encode()
        return "text/plain; charset=utf-8", (message + "\n").encode()


FLAVOURS: dict[str, Flavour] = {
    "mozilla": Flavour("mozilla"),
    "google": Flavour("google", expired_status=404, max_ttl=2_419_200),
    "apple": Flavour("apple", require_vapid=True),
}


def flavour(name: str) -> Flavour:
    try:
        return FLAVOURS[name]
    except KeyError:
        raise ValueError(
            f"webpush flavour: expected one of {', '.join(FLAVOURS)}, got {name!r}"
        ) from None
