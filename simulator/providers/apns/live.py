"""APNs' newer surface and its device side, beside the provider API of :mod:`.core`:
broadcast channels and broadcasts (iOS 18), Live Activities, and what an iOS device makes of
every delivered notification (``aps`` semantics, the background-push budget).

:class:`LivePush` holds the shared state (channels, app capabilities, activities, the
budget) and one set of cores per environment. The composition root gets from it:

- :meth:`router`: the handler of an ``apns`` / ``apns_sandbox`` listener
  (:class:`ApnsRouter`: broadcasts and Live Activity pushes here, the rest to the core);
- :meth:`channel_listeners`: the channel-management listeners (``apns_channels``,
  ``apns_channels_sandbox``), Apple's own hosts and ports;
- :meth:`on_online` and :meth:`interpret` (device online; a notification delivered).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from simulator.providers.apns.activities import LiveActivities
from simulator.providers.apns.apps import AppCapabilities
from simulator.providers.apns.aps import display, is_background
from simulator.providers.apns.broadcast import BROADCAST_PREFIX, Broadcasts
from simulator.providers.apns.channels import ChannelApi, ChannelBook
from simulator.providers.apns.core import ApnsCore
from simulator.providers.apns.liveactivity import LiveActivityPushes, is_live_activity, owner_of
from simulator.server.listener import ListenerOptions
from simulator.state.background import BackgroundBudget
from simulator.state.devices import Device, DeviceRegistry
from simulator.wire import Action, Request

# channel-management listener -> the environment it manages
CHANNEL_LISTENERS = {"apns_channels": "production", "apns_channels_sandbox": "sandbox"}


class ApnsRouter:
    """An APNs listener's handler: ``/4/broadcasts`` and Live Activity pushes to their cores,
    every other request to the provider API's."""

    def __init__(self, core: ApnsCore, broadcasts: Broadcasts, pushes: LiveActivityPushes):
        self.core = core
        self.broadcasts = broadcasts
        self.pushes = pushes

    def handle(self, req: Request) -> Action:
        if req.path.startswith(BROADCAST_PREFIX):
            return self.broadcasts.handle(req)
        if is_live_activity(req):
            return self.pushes.handle(req)
        return self.core.handle(req)


class LivePush:
    def __init__(
        self, cores: Mapping[str, ApnsCore], registry: DeviceRegistry, rng: random.Random
    ) -> None:
        self.cores = cores
        self.registry = registry
        self.caps = AppCapabilities()
        self.book = ChannelBook(random.Random(rng.random()))
        self.activities = LiveActivities(random.Random(rng.random()), subscribe=self.subscribe)
        self.budget = BackgroundBudget()
        self.broadcasts = {
            env: Broadcasts(self.book, core, self.caps, registry) for env, core in cores.items()
        }
        self.pushes = {
            env: LiveActivityPushes(core, self.activities, registry) for env, core in cores.items()
        }
        self.channel_apis = {
            env: ChannelApi(self.book, core, self.caps, core.stats) for env, core in cores.items()
        }

    def router(self, environment: str) -> ApnsRouter:
        core = self.cores[environment]
        return ApnsRouter(core, self.broadcasts[environment], self.pushes[environment])

    def channel_listeners(
        self, options: Mapping[str, ListenerOptions]
    ) -> dict[str, tuple[ChannelApi, ListenerOptions]]:
        """Listener name -> (channel API, a copy of its environment's listener options)."""
        out = {}
        for name, env in CHANNEL_LISTENERS.items():
            base = options[env]
            copy = ListenerOptions(**{k: getattr(base, k) for k in base.__dataclass_fields__})
            out[name] = (self.channel_apis[env], copy)
        return out

    # -- devices ------------------------------------------------------------------------------

    def subscribe(self, device_id: str, channel_id: str) -> bool:
        """Subscribe a device to a channel of its app and environment; False if there is none."""
        dev = self.registry.devices.get(device_id)
        ch = self.book.channels.get(channel_id)
        if dev is None or ch is None or dev.provider != "apns":
            return False
        if ch.bundle_id != dev.app or ch.environment != dev.environment:
            return False
        self.book.subscribe(ch, device_id, dev.generation)
        return True

    def on_online(self, dev: Device) -> None:
        self.broadcasts["sandbox" if dev.environment == "sandbox" else "production"].on_online(dev)

    def interpret(self, dev: Device, entry: dict[str, Any]) -> None:
        """A notification reached an iOS device: what the device makes of it."""
        if dev.provider != "apns":
            return
        payload = entry.get("payload")
        aps = payload.get("aps") if isinstance(payload, dict) else None
        push_type = str(entry.get("push_type") or "alert")
        entry["display"] = display(aps, push_type, self.caps.critical_alerts(dev.app))
        now = self.registry.clock.time()
        if push_type == "liveactivity":
            # shown on the activity (its alert lights the screen up), not opened as a notification
            entry["display"].update(kind="live_activity", openable=False)
        if entry.get("broadcast"):
            channel = str(entry.get("channel_id"))
            entry["activity"] = self.activities.apply_broadcast(dev.id, channel, aps, now)
        elif push_type == "liveactivity":
            owner = owner_of(entry)
            if owner is not None:
                entry["activity"] = self.activities.apply_push(owner, aps, now)
        elif is_background(entry):
            self.budget.admit(dev.id, entry, now)

    def stats(self) -> dict[str, Any]:
        fanout: dict[str, int] = {}
        for b in self.broadcasts.values():
            for k, v in b.fanout.items():
                fanout[k] = fanout.get(k, 0) + v
        return {
            "apns_live": {
                "channels": len(self.book.channels),
                "broadcast_fanout": fanout,
                "activities": len(self.activities.activities),
                "background": self.budget.counts(),
            }
        }
