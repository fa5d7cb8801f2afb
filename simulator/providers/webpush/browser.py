"""The browser side of the Web Push service: what reaches a subscription, and what waits.

An online browser receives at once; an offline one holds messages until their TTL passes
(TTL 0 is delivered only to an online browser, else dropped), a Topic replaces an
undelivered message with the same topic, and coming online flushes what is still alive.
Each delivery goes to the registry's inbox as an entry carrying the decrypted payload.
``DELETE`` on a message's ``Location`` (RFC 8030 section 7.3) cancels it while it waits.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from pushsim.b64 import b64url
from simulator.providers.webpush.vapid import VapidCheck
from simulator.state.devices import Device, DeviceRegistry, find_correlation
from simulator.state.stats import Stats
from simulator.wire import Request

# The request headers an inbox entry keeps.
ENTRY_HEADERS = frozenset(
    (
        "ttl",
        "urgency",
        "topic",
        "content-encoding",
        "content-type",
        "encryption",
        "crypto-key",
        "push-receipt",  # RFC 8030 receipts: the receipt is earned on delivery
    )
)
MAX_HELD = 1_000_000  # entries of uninstalled devices linger; bound them


@dataclass(slots=True)
class _Held:
    """A message waiting for an offline browser."""

    entry: dict[str, Any]
    expires_at: float
    topic: str | None
    device: Device = field(repr=False)


def inbox_entry(
    provider: str,
    req: Request,
    headers: dict[str, str],
    msg_id: str,
    now: float,
    ttl: int,
    urgency: str,
    topic: str | None,
    encoding: str | None,
    plaintext: bytes | None,
    vapid: VapidCheck | None,
) -> dict[str, Any]:
    """The record of one accepted message, as the device's inbox shows it."""
    entry: dict[str, Any] = {
        "provider": provider,
        "message_id": msg_id,
        "at": now,
        "ttl": ttl,
        "urgency": urgency,
        "topic": topic,
        "content_encoding": encoding,
        "size": len(req.body),
        "http_version": req.conn.http_version,
        "headers": {k: v for k, v in headers.items() if k in ENTRY_HEADERS},
        "payload_text": None,
        "payload": None,
    }
    if vapid is not None:
        entry["vapid"] = {"k": vapid.key_text, "sub": vapid.sub, "exp": int(vapid.exp)}
    if plaintext is not None:
        _add_payload(entry, plaintext)
    return entry


def _add_payload(entry: dict[str, Any], plaintext: bytes) -> None:
    try:
        text = plaintext.decode("utf-8")
    except UnicodeDecodeError:
        entry["payload_base64"] = b64url(plaintext)
        return
    entry["payload_text"] = text
    if text[:1] in ("{", "["):
        try:
            entry["payload"] = json.loads(text)
        except (ValueError, RecursionError):
            pass
    corr = find_correlation(entry["payload"])
    if corr:
        entry["correlation_id"] = corr


class Browsers:
    """Delivery to the subscriptions' browsers, and the messages held while they are offline."""

    def __init__(self, provider: str, registry: DeviceRegistry, stats: Stats) -> None:
        self.provider = provider
        self.registry = registry
        self.stats = stats
        self._held: dict[str, _Held] = {}  # message id -> held message (for DELETE)

    def dispatch(
        self,
        dev: Device,
        entry: dict[str, Any],
        now: float,
        ttl: int,
        topic: str | None,
        max_pending: int,
    ) -> None:
        count = self.stats.count
        if dev.online:
            self.registry.deliver(dev, entry)
            count(self.provider, "delivered")
            return
        if ttl == 0:
            count(self.provider, "dropped_ttl0_offline")
            return
        self._expire(dev, now)
        if topic is not None:
            for held in list(dev.pending):
                if held.get("topic") == topic:
                    dev.pending.remove(held)
                    self._held.pop(held["message_id"], None)
                    count(self.provider, "replaced_by_topic")
        if len(dev.pending) >= max_pending:
            oldest = dev.pending.pop(0)
            self._held.pop(oldest["message_id"], None)
            count(self.provider, "dropped_overflow")
        entry["expires_at"] = now + ttl
        dev.pending.append(entry)
        if len(self._held) >= MAX_HELD:
            self._held.clear()
        self._held[entry["message_id"]] = _Held(entry, now + ttl, topic, dev)
        count(self.provider, "queued")

    def _expire(self, dev: Device, now: float) -> None:
        alive = []
        for held in dev.pending:
            if held.get("expires_at", math.inf) <= now:
                self._held.pop(held["message_id"], None)
                self.stats.count(self.provider, "expired_undelivered")
            else:
                alive.append(held)
        dev.pending[:] = alive

    def online(self, dev: Device, now: float) -> None:
        """The browser came online: deliver what is still within its TTL, in order."""
        self._expire(dev, now)
        pending, dev.pending = list(dev.pending), []
        for entry in pending:
            self._held.pop(entry["message_id"], None)
            self.registry.deliver(dev, entry)
            self.stats.count(self.provider, "delivered")

    def forget(self, dev: Device) -> None:
        """The subscription is gone: drop what it held."""
        for entry in dev.pending:
            self._held.pop(entry["message_id"], None)
        dev.pending.clear()

    def cancel(self, msg_id: str) -> bool:
        """Cancel an undelivered message; False if there is none with that id."""
        held = self._held.pop(msg_id, None)
        if held is None or held.entry not in held.device.pending:
            return False
        held.device.pending.remove(held.entry)
        self.stats.count(self.provider, "cancelled")
        return True
