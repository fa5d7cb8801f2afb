"""The device side of FCM: what an Android/iOS/web app instance sees (pure state).

An online device gets a message at once. An offline one keeps it pending, as FCM's
store-and-forward does: up to ``max_pending`` messages (past that, every stored message
is dropped and the device is told so on reconnection, Android's ``onDeletedMessages``);
a message with a collapse key replaces the pending one with the same key; a message
whose ttl runs out while waiting is discarded (ttl 0: now or never). :meth:`flush` runs
when the device comes back online.
"""

from __future__ import annotations

from typing import Any

from pushsim.clock import Clock
from simulator.state.devices import Device, DeviceRegistry
from simulator.state.stats import Stats

DEFAULT_MAX_PENDING = 100
_DELETED = "fcm_deleted_pending"


class DeviceSide:
    def __init__(
        self,
        registry: DeviceRegistry,
        clock: Clock,
        stats: Stats,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        self.registry = registry
        self.clock = clock
        self.stats = stats
        self.max_pending = max_pending

    def push(self, dev: Device, entry: dict[str, Any], ttl: float, collapse_key: str | None) -> str:
        """Hand a message to the device; returns "delivered", "stored" or "expired"."""
        if dev.online:
            self.registry.deliver(dev, entry)
            return "delivered"
        if ttl <= 0:
            self.stats.count("fcm", "expired")
            return "expired"
        pending = dev.pending
        if collapse_key is not None:
            for i, item in enumerate(pending):
                if item["collapse_key"] == collapse_key:
                    del pending[i]
                    self.stats.count("fcm", "collapsed")
                    break
        if len(pending) >= self.max_pending:
            dev.meta[_DELETED] = dev.meta.get(_DELETED, 0) + len(pending)
            self.stats.count("fcm", "pending_dropped", len(pending))
            pending.clear()
        pending.append(
            {"entry": entry, "expires_at": self.clock.time() + ttl, "collapse_key": collapse_key}
        )
        return "stored"

    def flush(self, dev: Device) -> None:
        """The device reconnected: tell it about deleted messages, then hand over what is left."""
        if dev.provider != "fcm" or not dev.online:
            return
        now = self.clock.time()
        dropped = dev.meta.pop(_DELETED, 0)
        if dropped:
            dev.inbox.append(
                {"provider": "fcm", "event": "deleted_messages", "at": now, "dropped": dropped}
            )
        pending, dev.pending = dev.pending, []
        for item in pending:
            if item["expires_at"] <= now:
                self.stats.count("fcm", "expired")
                continue
            self.registry.deliver(dev, item["entry"])
            self.stats.count("fcm", "flushed")
