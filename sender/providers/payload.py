"""Pure payload building: one validated notification in, each provider's request body out.

``data`` reaches the device with every provider: APNs as top-level custom keys beside
``aps``, FCM as ``message.data``, Web Push inside the encrypted JSON body.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

APNS_LIMIT = 4096
APNS_VOIP_LIMIT = 5120
FCM_LIMIT = 4096
FCM_TOPIC_LIMIT = 2048
# aes128gcm with one record: 86-byte header, 16-byte tag, 1 padding delimiter.
WEBPUSH_BODY_LIMIT = 4096
WEBPUSH_PLAINTEXT_LIMIT = WEBPUSH_BODY_LIMIT - 86 - 16 - 1

APNS_PUSH_TYPES = frozenset(
    {
        "alert",
        "background",
        "location",
        "voip",
        "complication",
        "fileprovider",
        "mdm",
        "liveactivity",
        "pushtotalk",
        "widgets",
        "controls",
    }
)
_TOPIC_SUFFIX = {"voip": ".voip", "complication": ".complication", "pushtotalk": ".voip-ptt"}
FCM_RESERVED_DATA = ("from", "message_type")
_WEBPUSH_TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
FCM_MAX_TTL = 2_419_200


def compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True, slots=True)
class ApnsOptions:
    push_type: str | None = None
    topic: str | None = None
    priority: int | None = None
    expiration: int | None = None
    collapse_id: str | None = None


@dataclass(frozen=True, slots=True)
class WebPushOptions:
    """``declarative``: send a Declarative Web Push body (None: for Safari's push service
    only); ``navigate``: the URL a click opens (a declarative message needs one)."""

    declarative: bool | None = None
    navigate: str | None = None


@dataclass(frozen=True, slots=True)
class Message:
    """What to say, independent of who receives it."""

    title: str | None = None
    body: str | None = None
    data: dict[str, str] = field(default_factory=dict)
    priority: str = "high"  # high | normal
    ttl: int | None = None  # seconds
    collapse_key: str | None = None
    apns: ApnsOptions = field(default_factory=ApnsOptions)
    webpush: WebPushOptions = field(default_factory=WebPushOptions)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"priority": self.priority}
        if self.title is not None or self.body is not None:
            out["notification"] = {
                k: v for k, v in (("title", self.title), ("body", self.body)) if v is not None
            }
        if self.data:
            out["data"] = dict(self.data)
        if self.ttl is not None:
            out["ttl"] = self.ttl
        if self.collapse_key is not None:
            out["collapse_key"] = self.collapse_key
        a = {k: v for k, v in _apns_fields(self.apns).items() if v is not None}
        if a:
            out["apns"] = a
        w = {k: v for k, v in (("declarative", self.webpush.declarative),
                               ("navigate", self.webpush.navigate)) if v is not None}  # fmt: skip
        if w:
            out["webpush"] = w
        return out


def _apns_fields(o: ApnsOptions) -> dict[str, Any]:
    return {
        "push_type": o.push_type,
        "topic": o.topic,
        "priority": o.priority,
        "expiration": o.expiration,
        "collapse_id": o.collapse_id,
    }


def message_from_json(obj: dict[str, Any]) -> Message:
    """Rebuild a :class:`Message` from :meth:`Message.to_json` (already validated)."""
    n = obj.get("notification") or {}
    a = obj.get("apns") or {}
    return Message(
        title=n.get("title"),
        body=n.get("body"),
        data=dict(obj.get("data") or {}),
        priority=obj.get("priority", "high"),
        ttl=obj.get("ttl"),
        collapse_key=obj.get("collapse_key"),
        apns=ApnsOptions(**a),
        webpush=WebPushOptions(**(obj.get("webpush") or {})),
    )


# -- APNs -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApnsRequest:
    headers: tuple[tuple[bytes, bytes], ...]
    payload: bytes
    push_type: str


def apns_payload(msg: Message) -> bytes:
    push_type = msg.apns.push_type or ("alert" if msg.title or msg.body else "background")
    aps: dict[str, Any] = {}
    if msg.title is not None or msg.body is not None:
        aps["alert"] = {
            k: v for k, v in (("title", msg.title), ("body", msg.body)) if v is not None
        }
    if push_type == "background":
        aps["content-available"] = 1
    payload: dict[str, Any] = {"aps": aps}
    for k, v in msg.data.items():
        if k != "aps":
            payload[k] = v
    return compact(payload)


def apns_request(
    msg: Message, bundle_id: str, now: float, payload: bytes | None = None
) -> ApnsRequest:
    """Headers and body of an APNs request (``payload``: :func:`apns_payload`, if built)."""
    push_type = msg.apns.push_type or ("alert" if msg.title or msg.body else "background")
    topic = msg.apns.topic or bundle_id + _TOPIC_SUFFIX.get(push_type, "")
    if msg.apns.priority is not None:
        priority = msg.apns.priority
    elif push_type == "background":
        priority = 5
    else:
        priority = 10 if msg.priority == "high" else 5
    headers: list[tuple[bytes, bytes]] = [
        (b"apns-push-type", push_type.encode()),
        (b"apns-topic", topic.encode()),
        (b"apns-priority", str(priority).encode()),
    ]
    if msg.apns.expiration is not None:
        headers.append((b"apns-expiration", str(msg.apns.expiration).encode()))
    elif msg.ttl is not None:
        headers.append((b"apns-expiration", str(int(now) + msg.ttl if msg.ttl else 0).encode()))
    collapse = msg.apns.collapse_id or msg.collapse_key
    if collapse:
        headers.append((b"apns-collapse-id", collapse.encode()))
    return ApnsRequest(tuple(headers), apns_payload(msg) if payload is None else payload, push_type)


def apns_limit(msg: Message) -> int:
    return APNS_VOIP_LIMIT if msg.apns.push_type == "voip" else APNS_LIMIT


# -- FCM --------------------------------------------------------------------------


def fcm_message(
    msg: Message, *, token: str | None = None, topic: str | None = None, fid: str | None = None
) -> dict[str, Any]:
    m: dict[str, Any] = {}
    if token is not None:
        m["token"] = token
    if fid is not None:
        m["fid"] = fid  # a Firebase installation ID
    if topic is not None:
        m["topic"] = topic
    if msg.title is not None or msg.body is not None:
        m["notification"] = {
            k: v for k, v in (("title", msg.title), ("body", msg.body)) if v is not None
        }
    if msg.data:
        m["data"] = dict(msg.data)
    android: dict[str, Any] = {"priority": "HIGH" if msg.priority == "high" else "NORMAL"}
    if msg.ttl is not None:
        android["ttl"] = f"{min(msg.ttl, FCM_MAX_TTL)}s"
    if msg.collapse_key:
        android["collapse_key"] = msg.collapse_key
    m["android"] = android
    return m


def fcm_body(msg: Message, *, token: str | None = None, topic: str | None = None) -> bytes:
    return compact({"message": fcm_message(msg, token=token, topic=topic)})


def fcm_size(msg: Message) -> int:
    """The part of an FCM message that counts against the 4 KB limit."""
    m = fcm_message(msg)
    m.pop("android", None)
    return len(compact(m))


# -- Web Push ---------------------------------------------------------------------


SAFARI_PUSH_HOST = "web.push.apple.com"


def declarative_for(msg: Message, endpoint: str) -> bool:
    """Whether ``endpoint`` gets a Declarative Web Push body (RFC 8030 + Safari 18.4): when
    the message asks, or by default on Safari's push service, given a title and a URL."""
    wants = msg.webpush.declarative
    if wants is None:
        wants = endpoint.startswith(f"https://{SAFARI_PUSH_HOST}/")
    return bool(wants) and msg.title is not None and _navigate(msg) is not None


def _navigate(msg: Message) -> str | None:
    return msg.webpush.navigate or msg.data.get("url") or msg.data.get("navigate")


def declarative_body(msg: Message) -> dict[str, Any]:
    """``{"web_push": 8030, "notification": {title, body?, navigate, data?}}``."""
    note: dict[str, Any] = {"title": msg.title, "navigate": _navigate(msg)}
    if msg.body is not None:
        note["body"] = msg.body
    if msg.data:
        note["data"] = dict(msg.data)
    return {"web_push": 8030, "notification": note}


def webpush_plaintext(msg: Message, declarative: bool = False) -> bytes:
    if declarative:
        return compact(declarative_body(msg))
    body: dict[str, Any] = {}
    if msg.title is not None or msg.body is not None:
        body["notification"] = {
            k: v for k, v in (("title", msg.title), ("body", msg.body)) if v is not None
        }
    body["data"] = dict(msg.data)
    return compact(body)


def webpush_headers(msg: Message) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"ttl", str(msg.ttl if msg.ttl is not None else 2_419_200).encode()),
        (b"urgency", b"high" if msg.priority == "high" else b"normal"),
    ]
    if msg.collapse_key and _WEBPUSH_TOPIC.match(msg.collapse_key):
        headers.append((b"topic", msg.collapse_key.encode()))
    return headers
