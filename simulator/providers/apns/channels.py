"""APNs broadcast channels (iOS 18): the channel book, and the channel-management API as a
pure core.

Apple serves channel management on a host of its own (``api-manage-broadcast[.sandbox]
.push.apple.com``, sandbox port 2195, production 2196), one listener per environment here
(``apns_channels_sandbox``, ``apns_channels``), authenticated as the provider API is (a
provider token or a push certificate, on the same rules):

- ``POST /1/apps/{bundle}/channels`` ``{"message-storage-policy": 0|1, "push-type":
  "LiveActivity"}``: 201, the new id in ``apns-channel-id``;
- ``GET /1/apps/{bundle}/channels`` with ``apns-channel-id``: 200
  ``{"message-storage-policy", "push-type"}``; ``DELETE`` the same: 204;
- ``GET /1/apps/{bundle}/all-channels``: 200 ``{"channels": [ids]}``.

Every answer carries ``apns-request-id`` (the request's, else a new UUID); errors are
``{"reason": ...}``: BadPath / MethodNotAllowed, TopicDisallowed (a push-type suffix on the
bundle id), FeatureNotEnabled, MissingChannelId / BadChannelId / ChannelNotRegistered,
BadRequestPayload (unparseable), BadRequestParams (an unknown attribute),
MissingChannelQueueSize (no or a bad storage policy), MissingPushType / InvalidPushType,
CannotCreateChannelConfig (10,000 channels per app per environment), and the provider
API's 403s, with TopicMismatch for a bundle id the token's team does not own.

Devices subscribe through the control API (:mod:`~simulator.providers.apns.broadcast_control`);
a broadcast (:mod:`~simulator.providers.apns.broadcast`) reaches every subscriber.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

from simulator.providers.apns.apps import AppCapabilities
from simulator.providers.apns.core import ApnsCore
from simulator.providers.apns.headers import (
    Notification,
    canonical_apns_id,
    split_topic,
    valid_bundle_id,
)
from simulator.state.stats import Stats
from simulator.wire import Action, Request, Respond

MAX_CHANNELS_PER_APP = 10_000
MAX_CHANNEL_ID = 64  # characters of base64
APPS_PREFIX = "/1/apps/"
CHANNEL_ATTRIBUTES = frozenset({"message-storage-policy", "push-type"})
_JSON = ("content-type", "application/json")


@dataclass(slots=True)
class StoredBroadcast:
    """The one broadcast a channel keeps for offline subscribers (storage policy 1)."""

    seq: int
    entry: dict[str, Any]
    expires_at: float


@dataclass(slots=True)
class Channel:
    id: str
    bundle_id: str
    environment: str
    storage_policy: int  # 0: no message stored; 1: the most recent one stored
    created_at: float
    # device id -> (its generation when it subscribed, the last broadcast it received; 0: none)
    subscribers: dict[str, tuple[int, int]] = field(default_factory=dict)
    stored: StoredBroadcast | None = None
    broadcasts: int = 0

    def view(self) -> dict[str, Any]:
        return {
            "channel_id": self.id,
            "bundle_id": self.bundle_id,
            "environment": self.environment,
            "message_storage_policy": self.storage_policy,
            "created_at": self.created_at,
            "subscribers": len(self.subscribers),
            "broadcasts": self.broadcasts,
        }


class ChannelBook:
    """Every channel of both environments, and which devices subscribe to which."""

    def __init__(self, rng: random.Random, max_per_app: int = MAX_CHANNELS_PER_APP) -> None:
        self.rng = rng
        self.max_per_app = max_per_app
        self.channels: dict[str, Channel] = {}
        self._per_app: dict[tuple[str, str], dict[str, Channel]] = {}
        self._of_device: dict[str, set[str]] = {}  # only devices that subscribe to something

    def new_id(self) -> str:
        while True:
            cid = base64.b64encode(self.rng.randbytes(16)).decode()
            if cid not in self.channels:
                return cid

    def create(self, environment: str, bundle_id: str, policy: int, now: float) -> Channel | None:
        """A new channel, or None when the app has its environment's maximum already."""
        app = self._per_app.setdefault((environment, bundle_id), {})
        if len(app) >= self.max_per_app:
            return None
        ch = Channel(self.new_id(), bundle_id, environment, policy, now)
        app[ch.id] = ch
        self.channels[ch.id] = ch
        return ch

    def get(self, environment: str, bundle_id: str, channel_id: str) -> Channel | None:
        return self._per_app.get((environment, bundle_id), {}).get(channel_id)

    def delete(self, ch: Channel) -> None:
        self._per_app.get((ch.environment, ch.bundle_id), {}).pop(ch.id, None)
        self.channels.pop(ch.id, None)
        for dev_id in ch.subscribers:
            self._forget(dev_id, ch.id)

    def ids(self, environment: str, bundle_id: str) -> list[str]:
        return list(self._per_app.get((environment, bundle_id), {}))

    def subscribe(self, ch: Channel, device_id: str, generation: int) -> None:
        """Subscribe a device (a reinstall, a new ``generation``, loses its subscriptions)."""
        old = ch.subscribers.get(device_id)
        if old is None or old[0] != generation:
            ch.subscribers[device_id] = (generation, 0)
        self._of_device.setdefault(device_id, set()).add(ch.id)

    def unsubscribe(self, ch: Channel, device_id: str) -> bool:
        if ch.subscribers.pop(device_id, None) is None:
            return False
        self._forget(device_id, ch.id)
        return True

    def _forget(self, device_id: str, channel_id: str) -> None:
        subs = self._of_device.get(device_id)
        if subs is not None:
            subs.discard(channel_id)
            if not subs:
                del self._of_device[device_id]

    def of_device(self, device_id: str) -> list[Channel]:
        return [self.channels[c] for c in sorted(self._of_device.get(device_id, ()))]


def parse_channel_id(text: str | None) -> str | None:
    """The channel id if ``text`` is base64 of at most :data:`MAX_CHANNEL_ID` characters."""
    if not text or len(text) > MAX_CHANNEL_ID:
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return text if raw else None


# -- answers shared by channel management and broadcasts --------------------------------------


def request_id(req: Request) -> tuple[str, Respond | None]:
    """The request's ``apns-request-id`` (canonical), a new one, or BadMessageId."""
    sent = req.header("apns-request-id")
    if sent is None:
        return str(uuid.uuid4()), None
    canonical = canonical_apns_id(sent)
    if canonical is None:
        new = str(uuid.uuid4())
        return new, reason_response(400, "BadMessageId", new)
    return canonical, None


def reason_response(status: int, reason: str, rid: str) -> Respond:
    body = json.dumps({"reason": reason}, separators=(",", ":")).encode()
    return Respond(status, (_JSON, ("apns-request-id", rid)), body)


# the provider API's reasons that read differently on the broadcast hosts
_BROADCAST_REASONS = {"TopicDisallowed": (403, "TopicMismatch")}


def authenticate(core: ApnsCore, req: Request, bundle_id: str, rid: str) -> Respond | None:
    """The provider API's own authentication (one home: the environment's core), its
    answer re-worded for the broadcast hosts (``apns-request-id``, TopicMismatch)."""
    note = Notification(
        None, "liveactivity", 10, None, bundle_id, bundle_id, None, req.header("authorization")
    )
    failed = core._authenticate(req, note, core.clock.time(), rid)
    if failed is None:
        return None
    try:
        reason = str(json.loads(failed.body).get("reason", ""))
    except (ValueError, AttributeError):
        reason = "Forbidden"
    status, reason = _BROADCAST_REASONS.get(reason, (failed.status, reason))
    return reason_response(status, reason, rid)


def app_problem(caps: AppCapabilities, bundle_id: str, rid: str) -> Respond | None:
    """A bundle id with a push-type suffix, or an app without the broadcast capability."""
    if split_topic(bundle_id)[1]:
        return reason_response(400, "TopicDisallowed", rid)
    if not valid_bundle_id(bundle_id):
        return reason_response(404, "BadPath", rid)
    if not caps.broadcast(bundle_id):
        return reason_response(400, "FeatureNotEnabled", rid)
    return None


# -- channel management ---------------------------------------------------------------------


def _create_problem(body: bytes) -> str | int:
    """The storage policy a create request asks for, or the reason it cannot be read."""
    try:
        doc = json.loads(body) if body else None
    except (ValueError, RecursionError):
        return "BadRequestPayload"
    if type(doc) is not dict:
        return "BadRequestPayload"
    if set(doc) - CHANNEL_ATTRIBUTES:
        return "BadRequestParams"
    policy = doc.get("message-storage-policy")
    if type(policy) is not int or policy not in (0, 1):
        return "MissingChannelQueueSize"
    if "push-type" not in doc:
        return "MissingPushType"
    if doc["push-type"] != "LiveActivity":
        return "InvalidPushType"
    return policy


class ChannelApi:
    """One environment's channel-management listener."""

    provider = "apns"

    def __init__(
        self, book: ChannelBook, core: ApnsCore, caps: AppCapabilities, stats: Stats
    ) -> None:
        self.book = book
        self.core = core
        self.caps = caps
        self.stats = stats
        self.environment = core.config.environment

    def _fail(self, status: int, reason: str, rid: str) -> Respond:
        self.stats.count(self.provider, reason)
        return reason_response(status, reason, rid)

    def handle(self, req: Request) -> Action:
        rid, bad_id = request_id(req)
        if bad_id is not None:
            return self._counted(bad_id)
        path = req.path.partition("?")[0]
        bundle, _, rest = path.removeprefix(APPS_PREFIX).partition("/")
        if not path.startswith(APPS_PREFIX) or rest not in ("channels", "all-channels"):
            return self._fail(404, "BadPath", rid)
        allowed = ("GET",) if rest == "all-channels" else ("POST", "GET", "DELETE")
        if req.method not in allowed:
            return self._fail(405, "MethodNotAllowed", rid)
        failed = authenticate(self.core, req, bundle, rid)  # counted by the core
        if failed is not None:
            return failed
        problem = app_problem(self.caps, bundle, rid)
        if problem is not None:
            return self._counted(problem)
        if rest == "all-channels":
            ids = self.book.ids(self.environment, bundle)
            return self._ok(200, rid, json.dumps({"channels": ids}).encode())
        if req.method == "POST":
            return self._create(req, bundle, rid)
        return self._read_or_delete(req, bundle, rid)

    def _counted(self, resp: Respond) -> Respond:
        try:
            self.stats.count(self.provider, str(json.loads(resp.body)["reason"]))
        except (ValueError, KeyError, TypeError):
            pass
        return resp

    def _ok(self, status: int, rid: str, body: bytes = b"", *extra: tuple[str, str]) -> Respond:
        self.stats.count(self.provider, "ok")
        headers = ((_JSON,) if body else ()) + (("apns-request-id", rid), *extra)
        return Respond(status, headers, body)

    def _create(self, req: Request, bundle: str, rid: str) -> Respond:
        policy = _create_problem(req.body)
        if isinstance(policy, str):
            return self._fail(400, policy, rid)
        ch = self.book.create(self.environment, bundle, policy, self.core.clock.time())
        if ch is None:
            return self._fail(400, "CannotCreateChannelConfig", rid)
        return self._ok(201, rid, b"", ("apns-channel-id", ch.id))

    def _read_or_delete(self, req: Request, bundle: str, rid: str) -> Respond:
        sent = req.header("apns-channel-id")
        if sent is None:
            return self._fail(400, "MissingChannelId", rid)
        cid = parse_channel_id(sent)
        if cid is None:
            return self._fail(400, "BadChannelId", rid)
        ch = self.book.get(self.environment, bundle, cid)
        if ch is None:
            return self._fail(400, "ChannelNotRegistered", rid)
        if req.method == "DELETE":
            self.book.delete(ch)
            return self._ok(204, rid)
        body = {"message-storage-policy": ch.storage_policy, "push-type": "LiveActivity"}
        return self._ok(200, rid, json.dumps(body).encode())
