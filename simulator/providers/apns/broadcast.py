"""APNs broadcast push (iOS 18): ``POST /4/broadcasts/apps/{bundle id}``, as a pure core.

Served on the provider API's own host (the ``apns`` / ``apns_sandbox`` listeners), on the
same connections and authentication as ``/3/device``. Headers:

- ``apns-channel-id`` (base64): missing -> MissingChannelId, malformed -> BadChannelId, not
  a channel of this app in this environment -> ChannelNotRegistered;
- ``apns-push-type``: required (MissingPushType), ``liveactivity`` only (InvalidPushType);
- ``apns-priority`` 1, 5 or 10 (BadPriority); ``apns-expiration`` epoch seconds
  (BadExpirationDate), and only 0 on a channel that stores no message;
- ``apns-request-id``, echoed (a new UUID when absent; BadMessageId when not a UUID).

The body is an ``aps`` payload of at most :data:`MAX_BROADCAST_PAYLOAD` bytes (PayloadEmpty,
PayloadTooLarge, BadRequestPayload when it is not JSON). An accepted broadcast answers 200
and reaches every subscribed device that is online; a channel with storage policy 1 keeps
the latest one (once, not per device) for subscribers that are offline, and delivers it
when each comes online unless it expired (policy 0 keeps nothing: offline devices miss it).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from simulator.providers.apns.apps import AppCapabilities
from simulator.providers.apns.channels import (
    Channel,
    ChannelBook,
    StoredBroadcast,
    app_problem,
    authenticate,
    parse_channel_id,
    reason_response,
    request_id,
)
from simulator.providers.apns.core import ApnsCore
from simulator.providers.apns.headers import MAX_STORE_SECONDS, PRIORITIES
from simulator.state.devices import Device, DeviceRegistry, find_correlation
from simulator.wire import Action, Request, Respond

BROADCAST_PREFIX = "/4/broadcasts/apps/"
MAX_BROADCAST_PAYLOAD = 5120


def _headers_problem(req: Request, ch_policy: int | None) -> str | tuple[int, int | None]:
    """(priority, expiration) from the broadcast's headers, or the reason they are refused."""
    push_type = req.header("apns-push-type")
    if push_type is None:
        return "MissingPushType"
    if push_type != "liveactivity":
        return "InvalidPushType"
    prio_text = req.header("apns-priority")
    priority = PRIORITIES.get(prio_text) if prio_text is not None else 10
    if priority is None:
        return "BadPriority"
    exp_text = req.header("apns-expiration")
    expiration: int | None = None
    if exp_text is not None:
        if not (exp_text.isascii() and exp_text.isdigit()) or len(exp_text) > 12:
            return "BadExpirationDate"
        expiration = int(exp_text)
        if ch_policy == 0 and expiration != 0:
            return "BadExpirationDate"
    return priority, expiration


def _payload_problem(body: bytes) -> tuple[int, str] | dict[str, Any]:
    if not body:
        return 400, "PayloadEmpty"
    if len(body) > MAX_BROADCAST_PAYLOAD:
        return 413, "PayloadTooLarge"
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return 400, "BadRequestPayload"
    if type(payload) is not dict:
        return 400, "BadRequestPayload"
    if type(payload.get("aps")) is not dict:
        return 400, "PayloadEmpty"
    return payload


class Broadcasts:
    """One environment's broadcast endpoint, and the fan-out to subscribed devices."""

    provider = "apns"

    def __init__(
        self, book: ChannelBook, core: ApnsCore, caps: AppCapabilities, registry: DeviceRegistry
    ) -> None:
        self.book = book
        self.core = core
        self.caps = caps
        self.registry = registry
        self.environment = core.config.environment
        self.fanout: Counter[str] = Counter()  # per subscriber: delivered, stored, missed ...

    def _fail(self, status: int, reason: str, rid: str) -> Respond:
        self.core.stats.count(self.provider, reason)
        return reason_response(status, reason, rid)

    def handle(self, req: Request) -> Action:
        rid, bad_id = request_id(req)
        if bad_id is not None:
            return self._fail(400, "BadMessageId", rid)
        bundle = req.path.partition("?")[0][len(BROADCAST_PREFIX) :]
        if not bundle or "/" in bundle:
            return self._fail(404, "BadPath", rid)
        if req.method != "POST":
            return self._fail(405, "MethodNotAllowed", rid)
        failed = authenticate(self.core, req, bundle, rid)  # counted by the core
        if failed is not None:
            return failed
        problem = app_problem(self.caps, bundle, rid)
        if problem is not None:
            self.core.stats.count(self.provider, json.loads(problem.body)["reason"])
            return problem
        ch = self._channel(req, bundle, rid)
        if isinstance(ch, Respond):
            return ch
        headers = _headers_problem(req, ch.storage_policy)
        if isinstance(headers, str):
            return self._fail(400, headers, rid)
        payload = _payload_problem(req.body)
        if isinstance(payload, tuple):
            return self._fail(payload[0], payload[1], rid)
        priority, expiration = headers
        now = self.core.clock.time()
        self.send(ch, self._entry(ch, rid, priority, expiration, payload, now), expiration, now)
        self.core.stats.count(self.provider, "accepted")
        return Respond(200, (("apns-request-id", rid),))

    def _channel(self, req: Request, bundle: str, rid: str) -> Channel | Respond:
        sent = req.header("apns-channel-id")
        if sent is None:
            return self._fail(400, "MissingChannelId", rid)
        cid = parse_channel_id(sent)
        if cid is None:
            return self._fail(400, "BadChannelId", rid)
        ch = self.book.get(self.environment, bundle, cid)
        if ch is None:
            return self._fail(400, "ChannelNotRegistered", rid)
        return ch

    @staticmethod
    def _entry(
        ch: Channel,
        rid: str,
        priority: int,
        expiration: int | None,
        payload: dict[str, Any],
        now: float,
    ) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "provider": "apns",
            "message_id": rid,
            "at": now,
            "push_type": "liveactivity",
            "priority": priority,
            "topic": ch.bundle_id,
            "broadcast": True,
            "channel_id": ch.id,
            "payload": payload,
        }
        if expiration is not None:
            entry["expiration"] = expiration
        corr = find_correlation(payload)
        if corr:
            entry["correlation_id"] = corr
        return entry

    # -- fan-out ---------------------------------------------------------------------------

    def send(self, ch: Channel, entry: dict[str, Any], exp: int | None, now: float) -> None:
        """Deliver to every online subscriber; keep it for the offline ones if the policy
        says so (once, on the channel)."""
        ch.broadcasts += 1
        seq = ch.broadcasts
        keep = ch.storage_policy == 1 and not (exp is not None and exp <= now)
        if keep:
            limit = now + MAX_STORE_SECONDS
            until = min(float(exp), limit) if exp is not None else limit
            ch.stored = StoredBroadcast(seq, entry, until)
        for dev_id, (generation, _) in list(ch.subscribers.items()):
            dev = self._subscriber(ch, dev_id, generation)
            if dev is None:
                continue
            if dev.online:
                self.registry.deliver(dev, dict(entry))
                ch.subscribers[dev_id] = (generation, seq)
                self.fanout["delivered"] += 1
            else:
                self.fanout["stored" if keep else "missed_offline"] += 1

    def _subscriber(self, ch: Channel, dev_id: str, generation: int) -> Device | None:
        """The subscribed device, or None (and the subscription dropped) if it is gone."""
        dev = self.registry.devices.get(dev_id)
        if dev is None or not dev.installed or dev.generation != generation:
            self.book.unsubscribe(ch, dev_id)
            return None
        return dev

    def on_online(self, dev: Device) -> int:
        """The device came online: each of its channels' stored broadcast, if it missed it."""
        now = self.core.clock.time()
        n = 0
        for ch in self.book.of_device(dev.id):
            if ch.environment != self.environment:
                continue
            sub, stored = ch.subscribers.get(dev.id), ch.stored
            if sub is None or stored is None or stored.seq <= sub[1] or sub[0] != dev.generation:
                continue
            ch.subscribers[dev.id] = (sub[0], stored.seq)
            if stored.expires_at < now:
                self.fanout["expired_offline"] += 1
                continue
            self.registry.deliver(dev, dict(stored.entry))
            self.fanout["delivered_stored"] += 1
            n += 1
        return n
