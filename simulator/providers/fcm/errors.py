"""FCM HTTP v1 errors as google.rpc.Status bodies.

Every error carries the ``FcmError`` detail with its ``errorCode``; INVALID_ARGUMENT adds a
``google.rpc.BadRequest`` with ``fieldViolations``; QUOTA_EXCEEDED and UNAVAILABLE carry a
``Retry-After`` header. Authentication failures (no/expired/unknown access token) are
plain Google API errors: 401 UNAUTHENTICATED with a ``google.rpc.ErrorInfo`` detail.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from simulator.wire import Respond

FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"

# errorCode -> (HTTP status, google.rpc status)
ERROR_CODES: dict[str, tuple[int, str]] = {
    "INVALID_ARGUMENT": (400, "INVALID_ARGUMENT"),
    "THIRD_PARTY_AUTH_ERROR": (401, "UNAUTHENTICATED"),
    "SENDER_ID_MISMATCH": (403, "PERMISSION_DENIED"),
    "UNREGISTERED": (404, "NOT_FOUND"),
    "QUOTA_EXCEEDED": (429, "RESOURCE_EXHAUSTED"),
    "INTERNAL": (500, "INTERNAL"),
    "UNAVAILABLE": (503, "UNAVAILABLE"),
}

DEFAULT_MESSAGES = {
    "INVALID_ARGUMENT": "Request contains an invalid argument.",
    "THIRD_PARTY_AUTH_ERROR": "Auth error from APNS or Web Push Service",
    "SENDER_ID_MISMATCH": "SenderId mismatch",
    "UNREGISTERED": "Requested entity was not found.",
    "QUOTA_EXCEEDED": "Quota exceeded for quota metric 'Messages' and limit 'Messages per minute'.",
    "INTERNAL": "Internal error encountered.",
    "UNAVAILABLE": "The service is currently unavailable.",
}

_JSON = ("content-type", "application/json; charset=UTF-8")
_AUTH_MSG = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie "
    "or other valid authentication credential. "
    "See https://developers.google.com/identity/sign-in/web/devconsole-project."
)
_MISSING_AUTH_MSG = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, login "
    "cookie or other valid authentication credential. "
    "See https://developers.google.com/identity/sign-in/web/devconsole-project."
)


@dataclass(frozen=True, slots=True)
class Violation:
    field: str
    description: str


@dataclass(frozen=True, slots=True)
class FcmError:
    """One FCM error answer: its errorCode, message, and what makes it retryable."""

    code: str
    message: str = ""
    violations: tuple[Violation, ...] = ()
    retry_after: float | None = None

    @property
    def http_status(self) -> int:
        return ERROR_CODES[self.code][0]

    def respond(self) -> Respond:
        return fcm_error_response(self)


def invalid(message: str, field: str = "message") -> FcmError:
    return FcmError("INVALID_ARGUMENT", message, (Violation(field, message),))


def status_body(
    code: int, message: str, status: str, details: list[dict[str, Any]] | None = None
) -> bytes:
    err: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        err["details"] = details
    return json.dumps({"error": err}, separators=(",", ":")).encode()


def retry_after_value(seconds: float) -> str:
    return str(max(1, math.ceil(seconds - 1e-9)))


def fcm_error_response(err: FcmError) -> Respond:
    http, status = ERROR_CODES[err.code]
    details: list[dict[str, Any]] = [{"@type": FCM_ERROR_TYPE, "errorCode": err.code}]
    if err.code == "INVALID_ARGUMENT":
        violations = err.violations or (
            Violation("message", err.message or DEFAULT_MESSAGES[err.code]),
        )
        details.append(
            {
                "@type": BAD_REQUEST_TYPE,
                "fieldViolations": [
                    {"field": v.field, "description": v.description}
                    if v.field
                    else {"description": v.description}
                    for v in violations
                ],
            }
        )
    headers: tuple[tuple[str, str], ...] = (_JSON,)
    if err.retry_after is not None:
        headers = (_JSON, ("retry-after", retry_after_value(err.retry_after)))
    body = status_body(http, err.message or DEFAULT_MESSAGES[err.code], status, details)
    return Respond(http, headers, body)


def _auth_error(reason: str | None, message: str) -> Respond:
    details = None
    if reason is not None:
        details = [
            {
                "@type": ERROR_INFO_TYPE,
                "reason": reason,
                "domain": "googleapis.com",
                "metadata": {
                    "service": "fcm.googleapis.com",
                    "method": "google.firebase.fcm.v1.FcmService.SendMessage",
                },
            }
        ]
    headers = (
        _JSON,
        ("www-authenticate", 'Bearer realm="https://accounts.google.com/", error="invalid_token"'),
    )
    return Respond(401, headers, status_body(401, message, "UNAUTHENTICATED", details))


UNAUTHENTICATED_MISSING = _auth_error("CREDENTIALS_MISSING", _MISSING_AUTH_MSG)
UNAUTHENTICATED_EXPIRED = _auth_error("ACCESS_TOKEN_EXPIRED", _AUTH_MSG)
UNAUTHENTICATED_INVALID = _auth_error("ACCESS_TOKEN_TYPE_UNSUPPORTED", _AUTH_MSG)

SCOPE_INSUFFICIENT = Respond(
    403,
    (_JSON,),
    status_body(
        403,
        "Request had insufficient authentication scopes.",
        "PERMISSION_DENIED",
        [
            {
                "@type": ERROR_INFO_TYPE,
                "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
                "domain": "googleapis.com",
            }
        ],
    ),
)


def permission_denied(project: str) -> Respond:
    msg = (
        "Permission 'cloudmessaging.messages.create' denied on resource "
        f"'//cloudresourcemanager.googleapis.com/projects/{project}' (or it may not exist)."
    )
    details = [
        {
            "@type": ERROR_INFO_TYPE,
            "reason": "IAM_PERMISSION_DENIED",
            "domain": "cloudresourcemanager.googleapis.com",
        }
    ]
    return Respond(403, (_JSON,), status_body(403, msg, "PERMISSION_DENIED", details))


def not_found(message: str = "Requested entity was not found.") -> Respond:
    return Respond(404, (_JSON,), status_body(404, message, "NOT_FOUND"))


def bad_json(message: str) -> Respond:
    """A body that is not the JSON the API expects: a violation not tied to a field."""
    return fcm_error_response(FcmError("INVALID_ARGUMENT", message, (Violation("", message),)))
