"""The FCM HTTP v1 ``Message`` schema, checked the way FCM checks it (pure, no I/O).

Field names are accepted in proto-JSON's two spellings (``collapse_key`` and
``collapseKey``). Shape errors read like Google's proto-JSON parser ("Invalid JSON payload
received. Unknown name ..." / "Invalid value at 'message.android.ttl' ..."); semantic
errors (target, reserved data keys, ttl range, size) like FCM's. Each becomes an
INVALID_ARGUMENT with a BadRequest field violation naming the field.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from simulator.providers.fcm.errors import FcmError, Violation, invalid
from simulator.providers.fcm.topics import ConditionError, parse_condition

MAX_PAYLOAD = 4096
MAX_TOPIC_PAYLOAD = 2048
MAX_TTL_SECONDS = 2_419_200  # 4 weeks
DEFAULT_TTL_SECONDS = 2_419_200

_DURATION = re.compile(r"^(-?)(\d+)(?:\.(\d{1,9}))?s$")
_TOPIC = re.compile(r"^[a-zA-Z0-9\-_.~%]{1,900}$")
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_RESERVED_DATA = ("from", "message_type")
_RESERVED_PREFIXES = ("google", "gcm")

# Field kinds. A nested spec is a dict; "enum:" kinds carry their values.
Spec = dict[str, Any]

_ANALYTICS = {"analytics_label": "str"}
_COLOR_SPEC = {"red": "num", "green": "num", "blue": "num", "alpha": "num"}
_LIGHT = {"color": _COLOR_SPEC, "light_on_duration": "duration", "light_off_duration": "duration"}
_ANDROID_NOTIFICATION: Spec = {
    **{
        k: "str"
        for k in (
            "title",
            "body",
            "icon",
            "color",
            "sound",
            "tag",
            "click_action",
            "body_loc_key",
            "title_loc_key",
            "channel_id",
            "ticker",
            "image",
        )
    },
    "body_loc_args": "strlist",
    "title_loc_args": "strlist",
    **{
        k: "bool"
        for k in (
            "sticky",
            "local_only",
            "default_sound",
            "default_vibrate_timings",
            "default_light_settings",
            "bypass_proxy_notification",
        )
    },
    "event_time": "str",
    "notification_priority": (
        "enum:AndroidNotification.NotificationPriority",
        (
            "PRIORITY_UNSPECIFIED",
            "PRIORITY_MIN",
            "PRIORITY_LOW",
            "PRIORITY_DEFAULT",
            "PRIORITY_HIGH",
            "PRIORITY_MAX",
        ),
    ),
    "visibility": (
        "enum:AndroidNotification.Visibility",
        ("VISIBILITY_UNSPECIFIED", "PRIVATE", "PUBLIC", "SECRET"),
    ),
    "notification_count": "int",
    "vibrate_timings": "durationlist",
    "light_settings": _LIGHT,
    "proxy": (
        "enum:AndroidNotification.Proxy",
        ("PROXY_UNSPECIFIED", "ALLOW", "DENY", "IF_PRIORITY_LOWERED"),
    ),
}
_ANDROID: Spec = {
    "collapse_key": "str",
    "priority": ("enum:AndroidMessagePriority", ("NORMAL", "HIGH")),
    "ttl": "duration",
    "restricted_package_name": "str",
    "data": "strmap",
    "notification": _ANDROID_NOTIFICATION,
    "fcm_options": _ANALYTICS,
    "direct_boot_ok": "bool",
    "bandwidth_constrained_ok": "bool",
    "restricted_satellite_ok": "bool",
}
_WEBPUSH: Spec = {
    "headers": "strmap",
    "data": "strmap",
    "notification": "struct",
    "fcm_options": {"link": "str", "analytics_label": "str"},
}
_APNS: Spec = {
    "headers": "strmap",
    "payload": "struct",
    "fcm_options": {"analytics_label": "str", "image": "str"},
    "live_activity_token": "str",
}
MESSAGE_SPEC: Spec = {
    "name": "str",
    "data": "strmap",
    "notification": {"title": "str", "body": "str", "image": "str"},
    "android": _ANDROID,
    "webpush": _WEBPUSH,
    "apns": _APNS,
    "fcm_options": _ANALYTICS,
    "token": "str",
    "fid": "str",
    "topic": "str",
    "condition": "str",
}

_TYPE_NAMES = {
    "str": "TYPE_STRING",
    "bool": "TYPE_BOOL",
    "int": "TYPE_INT32",
    "num": "TYPE_FLOAT",
    "duration": "type.googleapis.com/google.protobuf.Duration",
    "struct": "type.googleapis.com/google.protobuf.Struct",
}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def _aliases(spec: Spec) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, kind in spec.items():
        if k.startswith("__"):
            continue
        out[k] = k
        out[_camel(k)] = k
        if isinstance(kind, dict):
            kind["__aliases__"] = _aliases(kind)
    return out


MESSAGE_SPEC["__aliases__"] = _aliases(MESSAGE_SPEC)


class MessageInvalid(Exception):
    def __init__(self, error: FcmError) -> None:
        super().__init__(error.message)
        self.error = error


def _shape(path: str, value: object, message: str) -> MessageInvalid:
    return MessageInvalid(FcmError("INVALID_ARGUMENT", message, (Violation(path, message),)))


def _bad_value(path: str, kind: str, value: object) -> MessageInvalid:
    tname = _TYPE_NAMES.get(kind, kind)
    return _shape(path, value, f"Invalid value at '{path}' ({tname}), {json.dumps(value)[:200]}")


def parse_duration(text: object) -> float | None:
    """A proto-JSON Duration ("3.5s") in seconds, or None when malformed."""
    if not isinstance(text, str):
        return None
    m = _DURATION.match(text)
    if m is None:
        return None
    sign, whole, frac = m.groups()
    secs = int(whole) + (int(frac.ljust(9, "0")) / 1e9 if frac else 0.0)
    return -secs if sign else secs


def _check(path: str, obj: object, spec: Spec) -> None:
    if not isinstance(obj, dict):
        raise _shape(path, obj, f"Invalid value at '{path}', expected a JSON object")
    aliases: dict[str, str] = spec["__aliases__"]
    for key, value in obj.items():
        canon = aliases.get(key)
        if canon is None:
            raise _shape(
                path,
                obj,
                f"Invalid JSON payload received. Unknown name \"{key}\" at '{path}': "
                "Cannot find field.",
            )
        if value is None:
            continue
        kind = spec[canon]
        sub = f"{path}.{canon}"
        if isinstance(kind, dict):
            _check(sub, value, kind)
        elif isinstance(kind, tuple):
            if not isinstance(value, str) or value.upper() not in kind[1]:
                raise _bad_value(
                    sub, "type.googleapis.com/google.firebase.fcm.v1." + kind[0][5:], value
                )
        elif kind == "str":
            if not isinstance(value, str):
                raise _bad_value(sub, kind, value)
        elif kind == "strmap":
            if not isinstance(value, dict):
                raise _shape(sub, value, f"Invalid value at '{sub}', expected a map of strings")
            for i, v in enumerate(value.values()):
                if not isinstance(v, str):
                    raise _bad_value(f"{sub}[{i}].value", "str", v)
        elif kind == "bool":
            if not isinstance(value, bool):
                raise _bad_value(sub, kind, value)
        elif kind == "int":
            if isinstance(value, bool) or not (
                isinstance(value, int) or (isinstance(value, str) and value.lstrip("-").isdigit())
            ):
                raise _bad_value(sub, kind, value)
        elif kind == "num":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _bad_value(sub, kind, value)
        elif kind == "duration":
            if parse_duration(value) is None:
                raise _bad_value(sub, kind, value)
        elif kind == "durationlist" or kind == "strlist":
            if not isinstance(value, list):
                raise _bad_value(sub, kind, value)
            for i, item in enumerate(value):
                if kind == "strlist" and not isinstance(item, str):
                    raise _bad_value(f"{sub}[{i}]", "str", item)
                if kind == "durationlist" and parse_duration(item) is None:
                    raise _bad_value(f"{sub}[{i}]", "duration", item)
        elif kind == "struct":
            if not isinstance(value, dict):
                raise _bad_value(sub, kind, value)


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
        v = d.get(_camel(name))
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
    _check("message", message, MESSAGE_SPEC)
    assert isinstance(message, dict)
    targets = [t for t in ("token", "fid", "topic", "condition") if message.get(t) is not None]
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
    target = targets[0]
    value: str = message[target]
    cond_topics: tuple[str, ...] = ()
    if target == "token" or target == "fid":
        if not value:
            raise MessageInvalid(
                invalid(f"The {target} is not a valid FCM registration token", f"message.{target}")
            )
    elif target == "topic":
        if value.startswith("/topics/"):
            value = value[len("/topics/") :]
        if not _TOPIC.match(value):
            raise MessageInvalid(invalid("Invalid topic name.", "message.topic"))
    else:
        try:
            cond_topics = parse_condition(value).topics()
        except ConditionError as exc:
            raise MessageInvalid(
                invalid(f"Invalid condition expression provided: {exc}", "message.condition")
            ) from exc

    data = message.get("data")
    if data:
        _check_data("message.data", data)
    if message.get("notification") is not None:
        img = message["notification"].get("image")
        if img is not None and not img.startswith(("https://", "http://")):
            raise MessageInvalid(
                invalid("notification.image must be an HTTP(S) URL", "message.notification.image")
            )

    ttl = float(DEFAULT_TTL_SECONDS)
    collapse_key: str | None = None
    priority = "normal" if data and not message.get("notification") else "high"
    platforms: set[str] = set()
    android = message.get("android")
    if android is not None:
        platforms.add("android")
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
            ttl = secs
        collapse_key = _get(android, "collapse_key")
        prio = android.get("priority")
        if prio is not None:
            priority = prio.lower()  # firebase-admin sends "high" / "normal"
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
    apns = message.get("apns")
    if apns is not None:
        platforms.add("apns")
        headers = apns.get("headers") or {}
        prio_h = headers.get("apns-priority")
        if prio_h is not None and prio_h not in ("1", "5", "10"):
            raise MessageInvalid(invalid("Invalid APNs priority", "message.apns.headers"))
        exp_h = headers.get("apns-expiration")
        if exp_h is not None and not exp_h.isdigit():
            raise MessageInvalid(invalid("Invalid APNs expiration", "message.apns.headers"))
        if collapse_key is None:
            collapse_key = headers.get("apns-collapse-id")
    webpush = message.get("webpush")
    if webpush is not None:
        platforms.add("webpush")
        link = _get(webpush.get("fcm_options") or webpush.get("fcmOptions") or {}, "link")
        if link is not None and not link.startswith("https://"):
            raise MessageInvalid(
                invalid("The link must be an HTTPS URL.", "message.webpush.fcm_options.link")
            )
        wh = webpush.get("headers") or {}
        wttl = wh.get("TTL", wh.get("ttl"))
        if wttl is not None and not wttl.isdigit():
            raise MessageInvalid(invalid("Invalid Webpush TTL header", "message.webpush.headers"))

    to_device = target == "token" or target == "fid"
    limit = MAX_PAYLOAD if to_device else MAX_TOPIC_PAYLOAD
    if (
        raw_size == 0 or raw_size > limit
    ):  # the raw body bounds the payload: measure only when it might be over
        size = payload_size(message)
        if size > limit:
            kind = "Message" if to_device else "Topic message"
            raise MessageInvalid(
                invalid(f"{kind} is too big: {size} bytes, limit {limit}", "message")
            )

    return Outbound(
        message, target, value, ttl, collapse_key, priority, frozenset(platforms), cond_topics
    )
