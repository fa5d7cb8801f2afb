"""The FCM HTTP v1 ``Message`` schema: the proto-JSON shape of every field (pure, no I/O).

Field names are accepted in proto-JSON's two spellings (``collapse_key`` and
``collapseKey``). Shape errors read like Google's proto-JSON parser ("Invalid JSON payload
received. Unknown name ..." / "Invalid value at 'message.android.ttl' ..."), each an
INVALID_ARGUMENT with a BadRequest field violation naming the field. What the values mean
(target, reserved data keys, ttl range, size) is :mod:`simulator.providers.fcm.message`.

A spec maps each field to its kind: a nested spec (a dict), an enum (a tuple of its proto
name and values), or a scalar kind's name, checked by the :data:`_SCALARS` table.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from simulator.providers.fcm.errors import FcmError, Violation

_DURATION = re.compile(r"^(-?)(\d+)(?:\.(\d{1,9}))?s$")

# A spec: field -> kind (a nested spec, an ("enum:Name", values) tuple, or a scalar name).
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


def camel_case(name: str) -> str:
    """``collapse_key`` -> ``collapseKey`` (proto-JSON's other spelling)."""
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def _aliases(spec: Spec) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, kind in spec.items():
        if k.startswith("__"):
            continue
        out[k] = k
        out[camel_case(k)] = k
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


def check_shape(path: str, obj: object, spec: Spec) -> None:
    """Check ``obj`` against ``spec`` (recursively); raise :class:`MessageInvalid` on a mismatch."""
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
            check_shape(sub, value, kind)
        elif isinstance(kind, tuple):
            if not isinstance(value, str) or value.upper() not in kind[1]:
                raise _bad_value(
                    sub, "type.googleapis.com/google.firebase.fcm.v1." + kind[0][5:], value
                )
        else:
            _SCALARS[kind](sub, value)


# -- scalar kinds: (field path, value) -> None, or raise ---------------------------------


def _str(sub: str, value: object) -> None:
    if not isinstance(value, str):
        raise _bad_value(sub, "str", value)


def _strmap(sub: str, value: object) -> None:
    if not isinstance(value, dict):
        raise _shape(sub, value, f"Invalid value at '{sub}', expected a map of strings")
    for i, v in enumerate(value.values()):
        if not isinstance(v, str):
            raise _bad_value(f"{sub}[{i}].value", "str", v)


def _bool(sub: str, value: object) -> None:
    if not isinstance(value, bool):
        raise _bad_value(sub, "bool", value)


def _int(sub: str, value: object) -> None:
    if isinstance(value, bool) or not (
        isinstance(value, int) or (isinstance(value, str) and value.lstrip("-").isdigit())
    ):
        raise _bad_value(sub, "int", value)


def _num(sub: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad_value(sub, "num", value)


def _duration(sub: str, value: object) -> None:
    if parse_duration(value) is None:
        raise _bad_value(sub, "duration", value)


def _strlist(sub: str, value: object) -> None:
    if not isinstance(value, list):
        raise _bad_value(sub, "strlist", value)
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise _bad_value(f"{sub}[{i}]", "str", item)


def _durationlist(sub: str, value: object) -> None:
    if not isinstance(value, list):
        raise _bad_value(sub, "durationlist", value)
    for i, item in enumerate(value):
        if parse_duration(item) is None:
            raise _bad_value(f"{sub}[{i}]", "duration", item)


def _struct(sub: str, value: object) -> None:
    if not isinstance(value, dict):
        raise _bad_value(sub, "struct", value)


_SCALARS: dict[str, Callable[[str, object], None]] = {
    "str": _str,
    "strmap": _strmap,
    "bool": _bool,
    "int": _int,
    "num": _num,
    "duration": _duration,
    "strlist": _strlist,
    "durationlist": _durationlist,
    "struct": _struct,
}
