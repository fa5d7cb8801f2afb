"""The APNs part of a simulator: both environments' listeners, control routes and hooks."""

from __future__ import annotations

from aiohttp import web

from simulator.parts import Contribution, ListenerPart
from simulator.providers.apns.answers import ApnsFaultAnswers
from simulator.providers.apns.control import register_control
from simulator.providers.apns.service import ApnsService


def apns_parts(service: ApnsService) -> Contribution:
    """What ``service`` adds to a simulator: the ``apns`` and ``apns_sandbox`` listeners
    (each with its core's fault answers), the ``/_sim/apns`` routes, stored-notification
    delivery when a device comes online, and provider-token expiry per the auth rules."""
    listeners = {
        name: ListenerPart(core, options, ApnsFaultAnswers(core))
        for name, (core, options) in service.listeners().items()
    }

    def register(app: web.Application) -> None:
        register_control(app, service)

    return Contribution(
        "apns",
        listeners,
        control=register,
        on_online=service.on_online,
        follow_auth=service.follow_auth,
    )
