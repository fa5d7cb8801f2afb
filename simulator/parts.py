"""What a part of the simulator hands the composition root, and what it may read back.

Each provider (and the fault plan) is built from a few values and returns a
:class:`Contribution`: its listeners (handler, listener options, fault answers), its
control routes, its device-online hook, how it follows the auth rules, what it adds to
``/_sim/stats`` and ``/metrics``. :mod:`simulator.app` (the composition root) owns the
wiring: it starts the listeners behind the fault gate, mounts the control routes, and
routes each hook; no part sees the :class:`~simulator.app.Simulator` itself.

What a part reads of the running simulator is :class:`PartHost` (providers with more
needs extend it beside themselves, e.g. ``ApnsHost``), the way hypercorn's ``typing.py``
Protocols are handed to its protocol classes.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from pushsim.clock import Clock
from simulator.faults.answers import FaultAnswers
from simulator.faults.auth import AuthPolicy
from simulator.server.listener import ListenerOptions
from simulator.state.devices import Device, DeviceRegistry
from simulator.state.stats import Stats
from simulator.wire import Handler

ControlRoutes = Callable[[web.Application], None]
"""Adds a part's routes (and the app keys its handlers read) to the control API."""


class PartHost(Protocol):
    """What every provider part reads of the simulator it joins."""

    @property
    def clock(self) -> Clock: ...

    @property
    def stats(self) -> Stats: ...

    @property
    def registry(self) -> DeviceRegistry: ...

    def fork_rng(self) -> random.Random:
        """A new RNG seeded from the simulator's own (a seeded run replays exactly)."""
        ...


@dataclass(frozen=True, slots=True)
class ListenerPart:
    """One listener a part serves: its handler, socket options and fault answers."""

    handler: Handler
    options: ListenerOptions
    answers: FaultAnswers


@dataclass(frozen=True, slots=True)
class Contribution:
    """Everything one part adds to a simulator (all optional but the name)."""

    name: str  # the provider (``apns``, ``fcm``, ``webpush``) or the part (``faults``)
    listeners: Mapping[str, ListenerPart] = field(default_factory=dict)
    control: ControlRoutes | None = None
    on_online: Callable[[Device], None] | None = None  # a device of this provider came online
    # a notification reached a device: what the device makes of it (annotates the entry)
    on_deliver: Callable[[Device, dict[str, Any]], None] | None = None
    follow_auth: Callable[[AuthPolicy], None] | None = None  # called now and on every change
    stats: Callable[[], Mapping[str, Any]] | None = None  # merged into ``/_sim/stats``
    prometheus: Callable[[], str] | None = None  # appended to ``/metrics``
