"""The APNs part of a simulator: both environments' listeners, control routes and hooks."""

from __future__ import annotations

from aiohttp import web

from simulator.parts import Contribution, ListenerPart
from simulator.providers.apns.answers import ApnsFaultAnswers
from simulator.providers.apns.broadcast_control import register_live_control
from simulator.providers.apns.control import register_control
from simulator.providers.apns.live import LivePush
from simulator.providers.apns.service import LISTENERS, ApnsService
from simulator.state.devices import Device


def apns_parts(service: ApnsService, live: LivePush) -> Contribution:
    """What ``service`` adds to a simulator: the ``apns`` and ``apns_sandbox`` listeners
    (each routing broadcasts and Live Activity pushes to ``live``, the rest to its core, with
    the core's fault answers), the channel-management listeners ``apns_channels`` and
    ``apns_channels_sandbox``, the ``/_sim/apns`` routes, stored-notification (and stored
    broadcast) delivery when a device comes online, what an iOS device makes of each
    notification, and provider-token expiry per the auth rules."""
    listeners = {
        name: ListenerPart(live.router(LISTENERS[name]), options, ApnsFaultAnswers(core))
        for name, (core, options) in service.listeners().items()
    }
    for name, (api, options) in live.channel_listeners(service.options).items():
        listeners[name] = ListenerPart(api, options, ApnsFaultAnswers(api.core))

    def register(app: web.Application) -> None:
        register_control(app, service)
        register_live_control(app, live)

    def on_online(dev: Device) -> None:
        service.on_online(dev)
        live.on_online(dev)

    return Contribution(
        "apns",
        listeners,
        control=register,
        on_online=on_online,
        follow_auth=service.follow_auth,
        on_deliver=live.interpret,
        stats=live.stats,
    )
