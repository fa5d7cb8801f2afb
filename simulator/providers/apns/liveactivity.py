"""Live Activity pushes to a token (``apns-push-type: liveactivity``), as a pure core.

``POST /3/device/<token>`` where the token is a push-to-start token or an activity's push
token (:mod:`simulator.providers.apns.activities`), not the device's own. APNs checks what
it checks for any notification -- the ``apns-*`` headers (topic ``<bundle
id>.push-type.liveactivity``, priority 5 or 10), provider-token authentication, payload
size and shape -- through the environment's own core (one home for each rule), and adds:

- token authentication only: a certificate connection gets 400 TopicDisallowed;
- the token: malformed or never issued -> 400 BadDeviceToken; re-issued or its activity
  dismissed -> 410 ExpiredToken; the app uninstalled or reinstalled since -> 410
  Unregistered (with ``timestamp``); another environment's -> BadDeviceToken; another
  app's -> DeviceTokenNotForTopic.

An accepted notification goes the way of every APNs notification (delivered now, or the
latest one stored while the device is offline); what it does to an activity is decided
when it reaches the device (:meth:`LiveActivities.apply_push`).
"""

from __future__ import annotations

from typing import Any

from simulator.providers.apns.activities import LiveActivities, TokenOwner
from simulator.providers.apns.auth import ConnectionAuth
from simulator.providers.apns.core import PATH_PREFIX, ApnsCore
from simulator.providers.apns.headers import (
    HeaderError,
    Notification,
    canonical_apns_id,
    parse_headers,
)
from simulator.state.devices import Device, DeviceRegistry, find_correlation
from simulator.wire import Action, Request, Respond

_HEX = frozenset("0123456789abcdefABCDEF")


def is_live_activity(req: Request) -> bool:
    return req.path.startswith(PATH_PREFIX) and req.header("apns-push-type") == "liveactivity"


def owner_of(entry: dict[str, Any]) -> TokenOwner | None:
    """The token owner an accepted Live Activity notification recorded."""
    la = entry.get("live_activity")
    if not isinstance(la, dict):
        return None
    return TokenOwner(la["token_kind"], la["device_id"], la["generation"], la.get("activity_id"))


class LiveActivityPushes:
    """One environment's Live Activity pushes to tokens."""

    def __init__(self, core: ApnsCore, activities: LiveActivities, registry: DeviceRegistry):
        self.core = core
        self.activities = activities
        self.registry = registry

    def handle(self, req: Request) -> Action:
        core = self.core
        parsed = parse_headers(req.headers)
        if isinstance(parsed, HeaderError):
            sent = req.header("apns-id")
            echo = canonical_apns_id(sent) if sent is not None else None
            return core.error(parsed.status, parsed.reason, echo or core._new_id())
        apns_id = parsed.apns_id or core._new_id()
        if req.method != "POST":
            return core.error(405, "MethodNotAllowed", apns_id)
        token = req.path[len(PATH_PREFIX) :].lower()
        if not token:
            return core.error(400, "MissingDeviceToken", apns_id)
        now = core.clock.time()
        failed = core._authenticate(req, parsed, now, apns_id)
        if failed is not None:
            return failed
        auth: ConnectionAuth = req.conn.state["apns"]
        if auth.cert is not None:  # Live Activities take token-based authentication only
            return core.error(400, "TopicDisallowed", apns_id)
        payload = core._payload(req.body, parsed, apns_id)
        if isinstance(payload, Respond):
            return payload
        found = self._recipient(token, parsed, apns_id, now)
        if isinstance(found, Respond):
            return found
        owner, dev = found
        core.route(dev, self._entry(owner, parsed, apns_id, payload, now), parsed.expiration, now)
        if core.config.environment == "sandbox":
            return Respond(200, (("apns-id", apns_id), ("apns-unique-id", core._new_id())))
        return Respond(200, (("apns-id", apns_id),))

    def _recipient(
        self, token: str, note: Notification, apns_id: str, now: float
    ) -> tuple[TokenOwner, Device] | Respond:
        core = self.core
        if len(token) < 64 or len(token) % 2 or not _HEX.issuperset(token):
            return core.error(400, "BadDeviceToken", apns_id)
        owner = self.activities.lookup(token, now)
        if owner is None:
            return core.error(400, "BadDeviceToken", apns_id)
        if isinstance(owner, str):
            return core.error(410, "ExpiredToken", apns_id)
        dev = self.registry.devices.get(owner.device_id)
        if dev is None or not dev.installed or dev.generation != owner.generation:
            return core.error(410, "Unregistered", apns_id, int(now * 1000))
        if (dev.environment == "sandbox") is not (core.config.environment == "sandbox"):
            return core.error(400, "BadDeviceToken", apns_id)
        if note.bundle_id is not None and dev.app != note.bundle_id:
            return core.error(400, "DeviceTokenNotForTopic", apns_id)
        return owner, dev

    @staticmethod
    def _entry(
        owner: TokenOwner, note: Notification, apns_id: str, payload: dict[str, Any], now: float
    ) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "provider": "apns",
            "message_id": apns_id,
            "at": now,
            "push_type": "liveactivity",
            "priority": note.priority,
            "topic": note.topic,
            "payload": payload,
            "live_activity": {
                "token_kind": owner.kind,
                "device_id": owner.device_id,
                "generation": owner.generation,
                "activity_id": owner.activity_id,
            },
        }
        if note.expiration is not None:
            entry["expiration"] = note.expiration
        corr = find_correlation(payload)
        if corr:
            entry["correlation_id"] = corr
        return entry
