"""Pure validation of API input: JSON in, typed requests out, or a 400 naming the field."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sender.config.settings import PROVIDERS
from sender.providers.payload import (
    APNS_PUSH_TYPES,
    FCM_RESERVED_DATA,
    ApnsOptions,
    Message,
    WebPushOptions,
)

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_FCM_TOPIC = re.compile(r"^[a-zA-Z0-9-_.~%]{1,900}$")
_B64URL = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")
_FID = re.compile(r"^[A-Za-z0-9_-]{22}$")
MAX_TOKENS = 1000
MAX_TTL = 30 * 24 * 3600


class ValidationError(Exception):
    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class DeviceRequest:
    user_id: str
    provider: str
    token: str
    device_id: str | None = None
    app: str | None = None
    environment: str | None = None
    subscription: dict[str, Any] | None = None


@dataclass(frozen=True)
class TokenTarget:
    provider: str
    token: str  # or the FCM installation ID (``kind`` "fid")
    subscription: dict[str, Any] | None = None
    environment: str | None = None
    kind: str = "token"  # "fid": an FCM target by Firebase installation ID (message.fid)


@dataclass(frozen=True)
class NotificationRequest:
    message: Message
    user: str | None = None
    tokens: tuple[TokenTarget, ...] = ()
    topic: str | None = None
    idempotency_key: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _obj(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValidationError(f"{name}: expected an object", name)
    return value


def unstorable(value: str) -> str | None:
    """Why a string cannot be stored as text (a NUL, a lone surrogate), or None."""
    if "\x00" in value:
        return "NUL characters are not allowed"
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            return "expected valid Unicode text (found a lone surrogate)"
    return None


def _str(
    obj: dict[str, Any], key: str, prefix: str, *, required: bool = True, max_len: int = 4096
) -> str | None:
    name = f"{prefix}{key}"
    value = obj.get(key)
    if value is None:
        if required:
            raise ValidationError(f"{name}: required", name)
        return None
    if not isinstance(value, str) or (required and not value):
        raise ValidationError(f"{name}: expected a non-empty string", name)
    if len(value) > max_len:
        raise ValidationError(f"{name}: longer than {max_len} characters", name)
    problem = unstorable(value)
    if problem:
        raise ValidationError(f"{name}: {problem}", name)
    return value


def subscription(value: Any, name: str) -> dict[str, Any]:
    sub = _obj(value, name)
    endpoint = _str(sub, "endpoint", name + ".")
    assert endpoint is not None
    if not endpoint.startswith(("https://", "http://")):
        raise ValidationError(f"{name}.endpoint: expected an http(s) URL", name + ".endpoint")
    keys = _obj(sub.get("keys"), name + ".keys")
    for k in ("p256dh", "auth"):
        v = _str(keys, k, name + ".keys.")
        assert v is not None
        if not _B64URL.match(v):
            raise ValidationError(f"{name}.keys.{k}: expected base64url", f"{name}.keys.{k}")
    return {"endpoint": endpoint, "keys": {"p256dh": keys["p256dh"], "auth": keys["auth"]}}


def _token(provider: str, value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{name}: expected a non-empty string", name)
    if provider == "apns" and not _HEX64.match(value):
        raise ValidationError(f"{name}: an APNs device token is 64 hex characters", name)
    if len(value) > 4096:
        raise ValidationError(f"{name}: too long", name)
    problem = unstorable(value)
    if problem:
        raise ValidationError(f"{name}: {problem}", name)
    return value.lower() if provider == "apns" else value


def device_request(body: Any) -> DeviceRequest:
    b = _obj(body, "body")
    user_id = _str(b, "user_id", "", max_len=256)
    provider = b.get("provider")
    if provider not in PROVIDERS:
        raise ValidationError("provider: expected one of apns, fcm, webpush", "provider")
    sub = None
    if provider == "webpush":
        sub = subscription(b.get("subscription"), "subscription")
        token = sub["endpoint"]
    else:
        token = _token(provider, b.get("token"), "token")
    env = _str(b, "environment", "", required=False)
    if env is not None and env not in ("production", "sandbox"):
        raise ValidationError("environment: expected production or sandbox", "environment")
    assert user_id is not None
    return DeviceRequest(
        user_id,
        provider,
        token,
        _str(b, "device_id", "", required=False, max_len=256),
        _str(b, "app", "", required=False, max_len=256),
        env,
        sub,
    )


def _message(b: dict[str, Any]) -> Message:
    title = body = None
    if "notification" in b and b["notification"] is not None:
        n = _obj(b["notification"], "notification")
        title = _str(n, "title", "notification.", required=False)
        body = _str(n, "body", "notification.", required=False)
    data: dict[str, str] = {}
    if b.get("data") is not None:
        d = _obj(b["data"], "data")
        for k, v in d.items():
            if not isinstance(v, str):
                raise ValidationError(f"data.{k}: values must be strings", f"data.{k}")
            if k in FCM_RESERVED_DATA or k.startswith(("google.", "gcm.")) or k == "aps":
                raise ValidationError(f"data.{k}: reserved key", f"data.{k}")
        data = dict(d)
    priority = b.get("priority", "high")
    if priority not in ("high", "normal"):
        raise ValidationError("priority: expected high or normal", "priority")
    ttl = b.get("ttl")
    if ttl is not None and (
        isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl <= MAX_TTL
    ):
        raise ValidationError(f"ttl: expected whole seconds 0-{MAX_TTL}", "ttl")
    collapse = _str(b, "collapse_key", "", required=False, max_len=64)
    apns = ApnsOptions()
    if b.get("apns") is not None:
        a = _obj(b["apns"], "apns")
        push_type = _str(a, "push_type", "apns.", required=False)
        if push_type is not None and push_type not in APNS_PUSH_TYPES:
            raise ValidationError("apns.push_type: unknown push type", "apns.push_type")
        prio = a.get("priority")
        if prio is not None and prio not in (1, 5, 10):
            raise ValidationError("apns.priority: expected 1, 5 or 10", "apns.priority")
        exp = a.get("expiration")
        if exp is not None and (isinstance(exp, bool) or not isinstance(exp, int) or exp < 0):
            raise ValidationError("apns.expiration: expected epoch seconds", "apns.expiration")
        cid = _str(a, "collapse_id", "apns.", required=False, max_len=64)
        if cid is not None and len(cid.encode()) > 64:
            raise ValidationError("apns.collapse_id: at most 64 bytes", "apns.collapse_id")
        apns = ApnsOptions(push_type, _str(a, "topic", "apns.", required=False), prio, exp, cid)
    if title is None and body is None and not data:
        raise ValidationError("notification: a title, body or data is required", "notification")
    return Message(title, body, data, priority, ttl, collapse, apns, _webpush(b.get("webpush")))


def _webpush(value: Any) -> WebPushOptions:
    """``webpush: {"declarative"?: bool, "navigate"?: "https://..."}``."""
    if value is None:
        return WebPushOptions()
    w = _obj(value, "webpush")
    declarative = w.get("declarative")
    if declarative is not None and not isinstance(declarative, bool):
        raise ValidationError("webpush.declarative: expected true or false", "webpush.declarative")
    navigate = _str(w, "navigate", "webpush.", required=False)
    if navigate is not None and not navigate.startswith(("https://", "http://")):
        raise ValidationError("webpush.navigate: expected an http(s) URL", "webpush.navigate")
    if declarative and navigate is None:
        raise ValidationError(
            "webpush.navigate: a declarative message needs one", "webpush.navigate"
        )
    return WebPushOptions(declarative, navigate)


def notification_request(body: Any) -> NotificationRequest:
    b = _obj(body, "body")
    to = _obj(b.get("to"), "to")
    keys = [k for k in ("user", "tokens", "topic") if k in to]
    if len(keys) != 1:
        raise ValidationError("to: exactly one of user, tokens, topic", "to")
    message = _message(b)
    idem = _str(b, "idempotency_key", "", required=False, max_len=256)
    if keys[0] == "user":
        user = _str(to, "user", "to.", max_len=256)
        return NotificationRequest(message, user=user, idempotency_key=idem)
    if keys[0] == "topic":
        topic = _str(to, "topic", "to.", max_len=900)
        assert topic is not None
        if topic.startswith("/topics/"):
            topic = topic[len("/topics/") :]
        if not _FCM_TOPIC.match(topic):
            raise ValidationError("to.topic: letters, digits and -_.~% only", "to.topic")
        return NotificationRequest(message, topic=topic, idempotency_key=idem)
    tokens = to["tokens"]
    if not isinstance(tokens, list) or not tokens:
        raise ValidationError("to.tokens: expected a non-empty list", "to.tokens")
    if len(tokens) > MAX_TOKENS:
        raise ValidationError(f"to.tokens: at most {MAX_TOKENS}", "to.tokens")
    out: list[TokenTarget] = []
    for i, t in enumerate(tokens):
        name = f"to.tokens[{i}]"
        t = _obj(t, name)
        provider = t.get("provider")
        if provider not in PROVIDERS:
            raise ValidationError(
                f"{name}.provider: expected one of apns, fcm, webpush", f"{name}.provider"
            )
        if provider == "webpush":
            sub = subscription(t.get("subscription"), f"{name}.subscription")
            out.append(TokenTarget("webpush", sub["endpoint"], sub))
        elif provider == "fcm" and "fid" in t:
            fid = t["fid"]
            if not isinstance(fid, str) or not _FID.match(fid):
                raise ValidationError(
                    f"{name}.fid: an FCM installation ID is 22 base64url characters", f"{name}.fid"
                )
            out.append(TokenTarget("fcm", fid, kind="fid"))
        else:
            env = t.get("environment")
            if env is not None and env not in ("production", "sandbox"):
                raise ValidationError(
                    f"{name}.environment: expected production or sandbox", f"{name}.environment"
                )
            out.append(
                TokenTarget(provider, _token(provider, t.get("token"), f"{name}.token"), None, env)
            )
    return NotificationRequest(message, tokens=tuple(out), idempotency_key=idem)


MAX_TOPIC_TOKENS = 10_000


@dataclass(frozen=True)
class TopicSubscription:
    topic: str
    tokens: tuple[str, ...]


def topic_subscription_request(topic: str, body: Any) -> TopicSubscription:
    """``POST /v1/topics/{topic}/subscribers {"tokens": [FCM registration tokens]}``."""
    if not _FCM_TOPIC.match(topic):
        raise ValidationError("topic: expected an FCM topic name ([a-zA-Z0-9-_.~%]+)", "topic")
    b = _obj(body, "body")
    tokens = b.get("tokens")
    if not isinstance(tokens, list) or not tokens:
        raise ValidationError("tokens: expected a non-empty list of FCM tokens", "tokens")
    if len(tokens) > MAX_TOPIC_TOKENS:
        raise ValidationError(f"tokens: at most {MAX_TOPIC_TOKENS} per request", "tokens")
    for i, t in enumerate(tokens):
        if not isinstance(t, str) or not t or len(t) > 4096 or unstorable(t):
            raise ValidationError(f"tokens[{i}]: expected a non-empty string", f"tokens[{i}]")
    return TopicSubscription(topic, tuple(dict.fromkeys(tokens)))


MAX_BATCH = 500


class BatchTooLarge(Exception):
    """A batch of more notifications than :data:`MAX_BATCH` (the API answers 413)."""

    def __init__(self, count: int) -> None:
        super().__init__(f"notifications: at most {MAX_BATCH} per batch, got {count}")
        self.count = count


def batch_request(body: Any) -> list[NotificationRequest | ValidationError]:
    """``POST /v1/notifications:batch {"notifications": [notification, ...]}``: each entry
    its request or its own error (fields prefixed ``notifications[i].``)."""
    b = _obj(body, "body")
    entries = b.get("notifications")
    if not isinstance(entries, list) or not entries:
        raise ValidationError("notifications: expected a non-empty list", "notifications")
    if len(entries) > MAX_BATCH:
        raise BatchTooLarge(len(entries))
    out: list[NotificationRequest | ValidationError] = []
    for i, entry in enumerate(entries):
        try:
            out.append(notification_request(entry))
        except ValidationError as exc:
            out.append(entry_error(i, exc))
    return out


def entry_error(i: int, exc: ValidationError) -> ValidationError:
    """A batch entry's error, its message and field prefixed with where the entry is."""
    where = f"notifications[{i}]"
    if exc.field == "body":
        return ValidationError(f"{where}: {exc.message.removeprefix('body:').strip()}", where)
    field = f"{where}.{exc.field}"
    if exc.message.startswith(exc.field):
        return ValidationError(f"{where}.{exc.message}", field)
    return ValidationError(f"{where}: {exc.message}", field)
