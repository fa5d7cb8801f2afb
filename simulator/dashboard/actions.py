"""What the page can do to the simulator, on the simulator's own operations.

Faults go through :func:`~simulator.faults.parse.parse_faults` and the fault runtime (as
``POST /_sim/faults`` does); devices through the registry and ``set_online`` (as the control
API's device routes do), and are shown with the control API's own
:func:`~simulator.state.devices.describe`. Each call returns a :class:`Reply`: a status and a
JSON-ready body, so the ASGI edge only encodes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simulator.dashboard.presets import PRESET_SECONDS, PRESETS, preset, vocabulary
from simulator.dashboard.view import SimulatorView
from simulator.faults.fields import parse_duration
from simulator.faults.parse import parse_faults
from simulator.faults.spec import PROVIDERS, FaultSpecError
from simulator.state.devices import Device, TokenState, describe

SOURCE = "dashboard"
INBOX_SHOWN = 50


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: Any


def error(status: int, message: str, field: str | None = None) -> Reply:
    body: dict[str, Any] = {"error": message}
    if field is not None:
        body["field"] = field
    return Reply(status, body)


class Actions:
    def __init__(self, sim: SimulatorView) -> None:
        self.sim = sim

    # -- faults -------------------------------------------------------------------------

    def vocabulary(self) -> Reply:
        return Reply(200, vocabulary())

    def _preset(self, body: dict[str, Any]) -> dict[str, Any] | Reply:
        name, provider = body.get("preset"), body.get("provider")
        if name not in PRESETS:
            return error(400, f"preset: expected one of {', '.join(PRESETS)}", "preset")
        if provider not in PROVIDERS:
            return error(400, f"provider: expected one of {', '.join(PROVIDERS)}", "provider")
        seconds = parse_duration(body.get("duration", PRESET_SECONDS))
        if not seconds:
            return error(400, "duration: expected a positive duration such as 10s", "duration")
        return preset(str(name), str(provider), seconds)

    def apply_fault(self, body: Any) -> Reply:
        """A preset (``{"preset", "provider", "duration"}``) or one fault in the vocabulary;
        its window counts from now."""
        if not isinstance(body, dict):
            return error(400, "expected a JSON object: a fault, or a preset and a provider")
        fault = self._preset(body) if "preset" in body else body
        if isinstance(fault, Reply):
            return fault
        try:
            specs = parse_faults([fault], SOURCE, prefix="fault", anchor="now")
            added = self.sim.faults.apply(specs)
        except FaultSpecError as exc:
            field = exc.field.removeprefix("fault[0].")
            return error(400, f"{field}: {exc.message}", field)
        except ValueError as exc:  # an id already in the plan
            return error(400, str(exc), "id")
        now = self.sim.faults.now()
        return Reply(201, {"now": round(now, 6), "faults": [f.describe(now) for f in added]})

    def remove_fault(self, fault_id: str) -> Reply:
        fault = self.sim.faults.remove(fault_id)
        if fault is None:
            return error(404, f"no fault {fault_id!r}")
        return Reply(200, {"removed": [fault.id]})

    def clear_faults(self) -> Reply:
        return Reply(200, {"removed": [f.id for f in self.sim.faults.clear()]})

    # -- devices ------------------------------------------------------------------------

    def _show(self, dev: Device, state: str | None = None) -> dict[str, Any]:
        out = describe(dev, self.sim.webpush_base_url)
        out["state"] = state or ("valid" if dev.installed else "dead")
        out["inbox"] = dev.inbox[-INBOX_SHOWN:][::-1]
        out["inbox_total"] = len(dev.inbox)
        out["pending"] = len(dev.pending)
        return out

    def find(self, query: str) -> Reply:
        """A device by its id, its token (live or dead), or a Web Push endpoint URL."""
        q = query.strip()
        if not q:
            return error(400, "token: expected a device token, subscription endpoint or id")
        registry = self.sim.registry
        dev = registry.devices.get(q)
        if dev is not None:
            return Reply(200, self._show(dev))
        token = q.rsplit("/wp/", 1)[-1] if "/wp/" in q else q
        for provider in PROVIDERS:
            found = registry.lookup(provider, token)
            if found.state is not TokenState.UNKNOWN and found.device is not None:
                state = found.state.value
                if found.state is TokenState.DEAD:
                    state = f"dead ({found.reason})"
                return Reply(200, self._show(found.device, state))
        return error(404, f"no device has the token {q!r}")

    def _device(self, device_id: str) -> Device | Reply:
        dev = self.sim.registry.devices.get(device_id)
        return dev if dev is not None else error(404, f"no device {device_id!r}")

    def device(self, device_id: str) -> Reply:
        dev = self._device(device_id)
        return dev if isinstance(dev, Reply) else Reply(200, self._show(dev))

    def set_online(self, device_id: str, body: Any) -> Reply:
        dev = self._device(device_id)
        if isinstance(dev, Reply):
            return dev
        online = body.get("online") if isinstance(body, dict) else None
        if not isinstance(online, bool):
            return error(400, "online: expected true or false", "online")
        self.sim.set_online(dev, online)
        return Reply(200, self._show(dev))

    def rotate(self, device_id: str) -> Reply:
        dev = self._device(device_id)
        if isinstance(dev, Reply):
            return dev
        self.sim.registry.rotate(dev.id)
        return Reply(200, self._show(dev))

    def uninstall(self, device_id: str) -> Reply:
        dev = self._device(device_id)
        if isinstance(dev, Reply):
            return dev
        self.sim.registry.uninstall(dev.id)
        return Reply(200, self._show(dev))
