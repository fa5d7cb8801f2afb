"""The FCM HTTP v1 ``Message``, checked the way FCM checks it (pure, no I/O).

First the proto-JSON shape (:mod:`simulator.providers.fcm.schema`), then what the values
mean, with FCM's wording: exactly one target, reserved data keys, the ttl range, the
platform overrides' own rules, the size. Each failure is an INVALID_ARGUMENT with a
BadRequest field violation naming the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from simulator.providers.fcm.errors import invalid
from simulator.providers.fcm.schema import (
    MESSAGE_SPEC,
    MessageInvalid,
    camel_case,
    check_shape,
    parse_duration,
)
from simulator.providers.fcm.topics import ConditionError, parse_condition

__all__ = ["MessageInvalid", "Outbound", "parse_duration", "payload_size", "validate_message"]

MAX_PAYLOAD = 4096
MAX_TOPIC_PAYLOAD = 2048
MAX_TTL_SECONDS = 2_419_200  # 4 weeks
DEFAULT_TTL_SECONDS = 2_419_200

_TARGETS = ("token", "fid", "topic", "condition")
_TOPIC = re.compile(r"^[a-zA-Z0-9\-_.~%]{1,900}$")
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_RESERVED_DATA = ("from", "message_type")
_RESERVED_PREFIXES = ("google", "gcm")


@dataclass(slots=True)
class Outbound:
    """A validated message, reduced to what delivery needs."""

    message: dict[str, Any]
    target: str  # "token" | "fid" | "topic" | "condition"
    value: str  # the token, Firebase installation ID, topic name, or condition text
    ttl: float  # seconds the message may wait for an offline device
    collapse_key: str | None
    priority: str  # "high" | "normal"
    platforms: frozenset[str]  # overrides present: android, apns, webpush
    condition_topics: tuple[str, ...] = ()


def _get(d: dict[str, Any], name: str) -> Any:
    v = d.get(name)
    if v is None and "_" in name:
        v = d.get(camel_case(name))
    return v


def _check_data(path: str, data: dict[str, str]) -> None:
    for i, key in enumerate(data):
        low = key.lower()
        if low in _RESERVED_DATA or low.startswith(_RESERVED_PREFIXES):
            raise MessageInvalid(
                invalid(f"Invalid data payload key: {key!r} is reserved", f"{path}[{i}].key")
            )


def payload_size(message: dict[str, Any]) -> int:
    """Bytes of the message FCM counts against its size limit (all but the target)."""
    skip = ("token", "fid", "topic", "condition", "name")
    rest = {k: v for k, v in message.items() if k not in skip}
    return len(json.dumps(rest, separators=(",", ":"), ensure_ascii=False).encode())


def validate_message(message: object, raw_size: int = 0) -> Outbound:
    """Check a ``message`` object; raise :class:`MessageInvalid` with FCM's error."""
    check_shape("message", message, MESSAGE_SPEC)
    assert isinstance(message, dict)
    target = _target(message)
    data = message.get("data")
    priority = "normal" if data and not message.get("notification") else "high"
    out = Outbound(
        message, target, message[target], float(DEFAULT_TTL_SECONDS), None, priority, frozenset()
    )
    _TARGET_RULES[target](out)
    if data:
        _check_data("message.data", data)
    if message.get("notification") is not None:
        img = message["notification"].get("image")
        if img is not None and not img.startswith(("https://", "http://")):
            raise MessageInvalid(
                invalid("notification.image must be an HTTP(S) URL", "message.notification.image")
            )
    platforms: set[str] = set()
    for name, rule in _PLATFORM_RULES.items():
        override = message.get(name)
        if override is not None:
            platforms.add(name)
            rule(override, out)
    out.platforms = frozenset(platforms)
    _check_size(message, target, raw_size)
    return out


def _target(message: dict[str, Any]) -> str:
    """The one target the message names (token, fid, topic or condition)."""
    targets = [t for t in _TARGETS if message.get(t) is not None]
    if not targets:
        raise MessageInvalid(invalid("Recipient of the message is not set.", "message"))
    if len(targets) > 1:
        raise MessageInvalid(
            invalid(
                "Exactly one of token, fid, topic or condition must be set; "
                f"got {', '.join(targets)}.",
                "message",
            )
        )
    return targets[0]


def _check_size(message: dict[str, Any], target: str, raw_size: int) -> None:
    to_device = target == "token" or target == "fid"
    limit = MAX_PAYLOAD if to_device else MAX_TOPIC_PAYLOAD
    # The raw body bounds the payload: measure only when it might be over.
    if raw_size == 0 or raw_size > limit:
        size = payload_size(message)
        if size > limit:
            kind = "Message" if to_device else "Topic message"
            raise MessageInvalid(
                invalid(f"{kind} is too big: {size} bytes, limit {limit}", "message")
            )


# -- the target: each kind's rule ------------------------------------------------------


def _device_target(out: Outbound) -> None:
    if not out.value:
        raise MessageInvalid(
            invalid(
                f"The {out.target} is not a valid FCM registration token", f"message.{out.target}"
            )
        )


def _topic_target(out: Outbound) -> None:
    if out.value.startswith("/topics/"):
        out.value = out.value[len("/topics/") :]
    if not _TOPIC.match(out.value):
        raise MessageInvalid(invalid("Invalid topic name.", "message.topic"))


def _condition_target(out: Outbound) -> None:
    try:
        out.condition_topics = parse_condition(out.value).topics()
    except ConditionError as exc:
        raise MessageInvalid(
            invalid(f"Invalid condition expression provided: {exc}", "message.condition")
        ) from exc


_TARGET_RULES: dict[str, Callable[[Outbound], None]] = {
    "token": _device_target,
    "fid": _device_target,
    "topic": _topic_target,
    "condition": _condition_target,
}


# -- the platform overrides, in FCM's order (android's collapse key wins over apns') ----


def _android(android: dict[str, Any], out: Outbound) -> None:
    ttl_text = _get(android, "ttl")
    if ttl_text is not None:
        secs = parse_duration(ttl_text)
        assert secs is not None
        if not 0 <= secs <= MAX_TTL_SECONDS:
            raise MessageInvalid(
                invalid(
                    "Invalid value at 'message.android.ttl': "
                    f"TTL must be between 0s and {MAX_TTL_SECONDS}s",
                    "message.android.ttl",
                )
            )
        out.ttl = secs
    out.collapse_key = _get(android, "collapse_key")
    prio = android.get("priority")
    if prio is not None:
        out.priority = prio.lower()  # firebase-admin sends "high" / "normal"
    adata = android.get("data")
    if adata:
        _check_data("message.android.data", adata)
    note = android.get("notification")
    if note is not None:
        color = note.get("color")
        if color is not None and not _COLOR.match(color):
            raise MessageInvalid(
                invalid(
                    "Invalid color value: expected #rrggbb",
                    "message.android.notification.color",
                )
            )


def _apns(apns: dict[str, Any], out: Outbound) -> None:
    headers = apns.get("headers") or {}
    prio_h = headers.get("apns-priority")
    if prio_h is not None and prio_h not in ("1", "5", "10"):
        raise MessageInvalid(invalid("Invalid APNs priority", "message.apns.headers"))
    exp_h = headers.get("apns-expiration")
    if exp_h is not None and not exp_h.isdigit():
        raise MessageInvalid(invalid("Invalid APNs expiration", "message.apns.headers"))
    if out.collapse_key is None:
        out.collapse_key = headers.get("apns-collapse-id")


def _webpush(webpush: dict[str, Any], out: Outbound) -> None:
    link = _get(webpush.get("fcm_options") or webpush.get("fcmOptions") or {}, "link")
    if link is not None and not link.startswith("https://"):
        raise MessageInvalid(
            invalid("The link must be an HTTPS URL.", "message.webpush.fcm_options.link")
        )
    wh = webpush.get("headers") or {}
    wttl = wh.get("TTL", wh.get("ttl"))
    if wttl is not None and not wttl.isdigit():
        raise MessageInvalid(invalid("Invalid Webpush TTL header", "message.webpush.headers"))


_PLATFORM_RULES: dict[str, Callable[[dict[str, Any], Outbound], None]] = {
    "android": _android,
    "apns": _apns,
    "webpush": _webpush,
}
