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
ALL_PRIORITIES = frozenset({1, 5, 10})
MAX_COLLAPSE_ID = 64
MAX_STORE_SECONDS = 30 * 24 * 3600
# Headers whose repetition APNs rejects with DuplicateHeaders.
SINGLE_HEADERS = frozenset(
    {
        "authorization",
        "apns-id",
        "apns-push-type",
        "apns-expiration",
        "apns-priority",
        "apns-topic",
        "apns-collapse-id",
    }
)
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
    apns_id = push_type = expiration = priority = topic = collapse_id = authorization = None
    for name, value in headers:
        if name[:5] == "apns-":
            if name == "apns-id":
                if apns_id is not None:
                    return HeaderError(400, "DuplicateHeaders")
                apns_id = value
            elif name == "apns-topic":
                if topic is not None:
                    return HeaderError(400, "DuplicateHeaders")
                topic = value
            elif name == "apns-push-type":
                if push_type is not None:
                    return HeaderError(400, "DuplicateHeaders")
                push_type = value
            elif name == "apns-expiration":
                if expiration is not None:
                    return HeaderError(400, "DuplicateHeaders")
                expiration = value
            elif name == "apns-priority":
                if priority is not None:
                    return HeaderError(400, "DuplicateHeaders")
                priority = value
            elif name == "apns-collapse-id":
                if collapse_id is not None:
                    return HeaderError(400, "DuplicateHeaders")
                collapse_id = value
        elif name == "authorization":
            if authorization is not None:
                return HeaderError(400, "DuplicateHeaders")
            authorization = value

    canonical_id: str | None = None
    if apns_id is not None:
        canonical_id = canonical_apns_id(apns_id)
        if canonical_id is None:
            return HeaderError(400, "BadMessageId")

    if push_type is None:
        ptype = "alert"  # APNs' default when the header is absent
    elif push_type in PUSH_TYPE_SUFFIX:
        ptype = push_type
    else:
        return HeaderError(400, "InvalidPushType")

    exp: int | None = None
    if expiration is not None:
        if not expiration.isdigit() or len(expiration) > 12:
            return HeaderError(400, "BadExpirationDate")
        exp = int(expiration)

    prio = 10
    if priority is not None:
        if priority not in ("10", "5", "1"):
            return HeaderError(400, "BadPriority")
        prio = int(priority)
        allowed = PUSH_TYPE_PRIORITIES.get(ptype)
        if allowed is not None and prio not in allowed:
            return HeaderError(400, "BadPriority")
    elif ptype == "background":
        return HeaderError(400, "BadPriority")  # the default 10 is not allowed for background

    bundle: str | None = None
    if topic is not None:
        if not topic:
            return HeaderError(400, "MissingTopic")
        bundle, suffix = split_topic(topic)
        if ptype == "mdm":
            bundle, suffix = topic, ""
        if not valid_bundle_id(bundle) or suffix != PUSH_TYPE_SUFFIX[ptype]:
            return HeaderError(400, "BadTopic")

    if collapse_id is not None and len(collapse_id.encode()) > MAX_COLLAPSE_ID:
        return HeaderError(400, "BadCollapseId")

    return Notification(canonical_id, ptype, prio, exp, topic, bundle, collapse_id, authorization)
