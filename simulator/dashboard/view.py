"""What the dashboard needs of a simulator, and the tick's sample gathered from it.

:class:`SimulatorView` is the small part of :class:`simulator.app.Simulator` the dashboard
reads and acts on (named here so the dashboard never imports the composition root).
:func:`gather` reads one :class:`~simulator.dashboard.board.Sample` from it.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Any, Protocol

from pushsim.clock import Clock
from simulator.dashboard.board import Sample
from simulator.dashboard.meter import Meter
from simulator.dashboard.progress import RunProgress
from simulator.dashboard.rates import read
from simulator.faults.gate import provider_of
from simulator.faults.runtime import FaultRuntime
from simulator.server.listener import Listener
from simulator.state.credentials import Credentials
from simulator.state.devices import Device, DeviceRegistry

FEED_SHOWN = 50  # newest token events on the page
DEAD_SHOWN = 20  # dead tokens on the page, most recently sent to first


class SimulatorView(Protocol):
    host: str
    tls: bool
    clock: Clock
    listeners: dict[str, Listener]
    faults: FaultRuntime
    registry: DeviceRegistry
    creds: Credentials | None

    @property
    def webpush_base_url(self) -> str: ...

    def stats_snapshot(self) -> dict[str, Any]: ...

    def set_online(self, dev: Device, online: bool) -> None: ...


_VERSIONS = {"2": "h2", "1.1": "h11"}


def open_streams(driver: object) -> int:
    """Streams open on a connection: its h2 driver's streams (HTTP/1.1 has none to count)."""
    streams = getattr(driver, "streams", None)
    return len(streams) if isinstance(streams, dict) else 0


def connections(listeners: dict[str, Listener]) -> dict[str, dict[str, int]]:
    """Per provider: open connections (by HTTP version) and open streams."""
    out: dict[str, dict[str, int]] = {}
    for name, listener in listeners.items():
        entry = out.setdefault(
            provider_of(name), {"connections": 0, "h2": 0, "h11": 0, "streams": 0}
        )
        for proto in list(listener.connections):
            entry["connections"] += 1
            version = _VERSIONS.get(proto.info.http_version if proto.info else "")
            if version is not None:
                entry[version] += 1
            entry["streams"] += open_streams(proto.driver)
    return out


def dead_sends(registry: DeviceRegistry, shown: int = DEAD_SHOWN) -> dict[str, Any]:
    """Sends to dead tokens: how many tokens, how many sends, and the latest few."""
    records = registry.rejections.values()
    top = heapq.nlargest(shown, records, key=lambda r: r["last_rejected_at"])
    return {
        "tokens": len(registry.rejections),
        "sends": sum(r["count"] for r in records),
        "latest": [dict(r) for r in top],
    }


def gather(sim: SimulatorView, meter: Meter, progress: RunProgress) -> Sample:
    rt = sim.faults
    now = rt.now()
    stats = sim.stats_snapshot()
    return Sample(
        reading=read(meter, sim.clock.monotonic()),
        run_time=now,
        wall=sim.clock.time(),
        connections=connections(sim.listeners),
        faults=rt.describe(),
        windows=rt.record.timeline(now)["windows"],
        feed=[dict(e) for e in itertools.islice(reversed(sim.registry.feed), FEED_SHOWN)],
        dead=dead_sends(sim.registry),
        stats={"providers": stats.get("providers", {}), "devices": stats.get("devices", {})},
        progress=progress.doc,
    )
