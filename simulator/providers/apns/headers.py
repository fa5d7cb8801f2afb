"""APNs request headers: the rules Apple applies to each ``apns-*`` header, as pure functions.

:func:`parse_headers` turns a request's header list into a :class:`Notification` or the
``reason`` APNs answers with. It does not look at auth or the device token; the core
(:mod:`simulator.providers.apns.core`) combines this with the provider token, the topic
owner and the device registry.
"""

from __future__ import annotations

from dataclasses import dataclass

# push type -> topic suffix it requires (appended to the bundle id)
PUSH_TYPE_SUFFIX: dict[str, str] = {
    "alert": "",
    "background": "",
    "location": ".location-query",
    "voip": ".voip",
    "complication": ".complication",
    "fileprovider": ".pushkit.fileprovider",
    "mdm": "",
    "liveactivity": ".push-type.liveactivity",
    "pushtotalk": ".voip-ptt",
    "widgets": ".push-type.widgets",
    "controls": ".push-type.controls",
}
KNOWN_SUFFIXES = tuple(sorted({s for s in PUSH_TYPE_SUFFIX.values() if s}, key=len, reverse=True))
# push type -> priorities it accepts
PUSH_TYPE_PRIORITIES: dict[str, frozenset[int]] = {
    "background": frozenset({5, 1}),
    "liveactivity": frozenset({5, 10}),
}
# The priorities APNs accepts, by header text.
PRIORITIES: dict[str, int] = {"10": 10, "5": 5, "1": 1}
MAX_COLLAPSE_ID = 64
MAX_STORE_SECONDS = 30 * 24 * 3600
# The headers parse_headers reads, each with its slot among the values it collects. APNs
# rejects the repetition of any of them with DuplicateHeaders.
_SLOTS: dict[str, int] = {
    "apns-id": 0,
    "apns-push-type": 1,
    "apns-expiration": 2,
    "apns-priority": 3,
    "apns-topic": 4,
    "apns-collapse-id": 5,
    "authorization": 6,
}
SINGLE_HEADERS = frozenset(_SLOTS)
_HEX = frozenset("0123456789abcdef")
_BUNDLE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_")


@dataclass(slots=True)
class Notification:
    """A request's APNs headers, validated."""

    apns_id: str | None  # None: not sent (the core makes one up)
    push_type: str
    priority: int
    expiration: int | None  # epoch seconds; 0 = deliver now or never; None = not sent
    topic: str | None
    bundle_id: str | None  # topic without its push-type suffix
    collapse_id: str | None
    authorization: str | None


@dataclass(frozen=True, slots=True)
class HeaderError:
    status: int
    reason: str


def canonical_apns_id(value: str) -> str | None:
    """A canonical UUID (8-4-4-4-12 hex digits), lower-cased; ``None`` if it is not one."""
    if len(value) != 36:
        return None
    v = value.lower()
    if v[8] != "-" or v[13] != "-" or v[18] != "-" or v[23] != "-":
        return None
    if not _HEX.issuperset(v[:8] + v[9:13] + v[14:18] + v[19:23] + v[24:]):
        return None
    return v


def split_topic(topic: str) -> tuple[str, str]:
    """``com.acme.app.voip`` -> (``com.acme.app``, ``.voip``)."""
    for suffix in KNOWN_SUFFIXES:
        if topic.endswith(suffix) and len(topic) > len(suffix):
            return topic[: -len(suffix)], suffix
    return topic, ""


def valid_bundle_id(bundle: str) -> bool:
    return (
        0 < len(bundle) <= 155
        and _BUNDLE_CHARS.issuperset(bundle)
        and ".." not in bundle
        and bundle[0] != "."
    )


def parse_headers(headers: list[tuple[str, str]]) -> Notification | HeaderError:
    """Validate the ``apns-*`` headers (and collect ``authorization``), in APNs' order."""
    raw: list[str | None] = [None] * len(_SLOTS)
    for name, value in headers:
        slot = _SLOTS.get(name)
        if slot is not None:
            if raw[slot] is not None:
                return _DUPLICATE_HEADERS
            raw[slot] = value
    apns_id, push_type, expiration, priority, topic, collapse_id, authorization = raw

    canonical_id: str | None = None
    if apns_id is not None:
        canonical_id = canonical_apns_id(apns_id)
        if canonical_id is None:
            return _BAD_MESSAGE_ID
    ptype = _push_type(push_type)
    if isinstance(ptype, HeaderError):
        return ptype
    exp = _expiration(expiration)
    if isinstance(exp, HeaderError):
        return exp
    prio = _priority(priority, ptype)
    if isinstance(prio, HeaderError):
        return prio
    bundle = _bundle_id(topic, ptype)
    if isinstance(bundle, HeaderError):
        return bundle
    if collapse_id is not None and len(collapse_id.encode()) > MAX_COLLAPSE_ID:
        return _BAD_COLLAPSE_ID
    return Notification(canonical_id, ptype, prio, exp, topic, bundle, collapse_id, authorization)


# Each header's rule: its raw value (None: not sent) -> the parsed value, or APNs' error.

_DUPLICATE_HEADERS = HeaderError(400, "DuplicateHeaders")
_BAD_MESSAGE_ID = HeaderError(400, "BadMessageId")
_INVALID_PUSH_TYPE = HeaderError(400, "InvalidPushType")
_BAD_EXPIRATION = HeaderError(400, "BadExpirationDate")
_BAD_PRIORITY = HeaderError(400, "BadPriority")
_MISSING_TOPIC = HeaderError(400, "MissingTopic")
_BAD_TOPIC = HeaderError(400, "BadTopic")
_BAD_COLLAPSE_ID = HeaderError(400, "BadCollapseId")


def _push_type(value: str | None) -> str | HeaderError:
    if value is None:
        return "alert"  # APNs' default when the header is absent
    return value if value in PUSH_TYPE_SUFFIX else _INVALID_PUSH_TYPE


def _expiration(value: str | None) -> int | HeaderError | None:
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 12:  # not "①"
        return _BAD_EXPIRATION
    return int(value)


def _priority(value: str | None, push_type: str) -> int | HeaderError:
    if value is None:
        # the default 10 is not allowed for background
        return _BAD_PRIORITY if push_type == "background" else 10
    prio = PRIORITIES.get(value)
    if prio is None:
        return _BAD_PRIORITY
    allowed = PUSH_TYPE_PRIORITIES.get(push_type)
    if allowed is not None and prio not in allowed:
        return _BAD_PRIORITY
    return prio


def _bundle_id(topic: str | None, push_type: str) -> str | HeaderError | None:
    """The topic's bundle id, once its push-type suffix is checked and removed."""
    if topic is None:
        return None
    if not topic:
        return _MISSING_TOPIC
    bundle, suffix = (topic, "") if push_type == "mdm" else split_topic(topic)
    if not valid_bundle_id(bundle) or suffix != PUSH_TYPE_SUFFIX[push_type]:
        return _BAD_TOPIC
    return bundle
