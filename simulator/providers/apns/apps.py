"""What an app is entitled to, per bundle id: only the deviations from the defaults are kept.

- ``critical_alerts``: the Critical Alerts entitlement (off by default, as Apple grants it on
  request). Without it a device shows an ``interruption-level: critical`` notification, and
  a critical ``sound``, as an ordinary active one.
- ``broadcast``: the Broadcast Capability of the app id (on by default here, so channels
  work out of the box). Without it channel management and broadcasts answer 400
  ``FeatureNotEnabled``.

``GET`` / ``PATCH /_sim/apns/apps/{bundle_id}`` reads and changes them
(:mod:`simulator.providers.apns.broadcast_control`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

DEFAULTS: dict[str, bool] = {"critical_alerts": False, "broadcast": True}


class AppCapabilities:
    """Per-app capability flags; a bundle id with none set has :data:`DEFAULTS`."""

    def __init__(self) -> None:
        self._changed: dict[str, dict[str, bool]] = {}  # bundle id -> flags that differ

    def flag(self, bundle_id: str, name: str) -> bool:
        return self._changed.get(bundle_id, {}).get(name, DEFAULTS[name])

    def critical_alerts(self, bundle_id: str) -> bool:
        return self.flag(bundle_id, "critical_alerts")

    def broadcast(self, bundle_id: str) -> bool:
        return self.flag(bundle_id, "broadcast")

    def view(self, bundle_id: str) -> dict[str, Any]:
        return {"bundle_id": bundle_id, **{k: self.flag(bundle_id, k) for k in DEFAULTS}}

    def update(self, bundle_id: str, body: dict[str, Any]) -> str | None:
        """Apply ``{"critical_alerts"?: bool, "broadcast"?: bool}`` (all or nothing); returns
        the first problem as ``"field: what was expected"``, or None."""
        for name, value in body.items():
            check = _CHECKS.get(name)
            if check is None:
                return f"{name}: unknown flag (expected one of {', '.join(DEFAULTS)})"
            if not check(value):
                return f"{name}: expected true or false"
        flags = self._changed.setdefault(bundle_id, {})
        for name, value in body.items():
            if value == DEFAULTS[name]:
                flags.pop(name, None)
            else:
                flags[name] = value
        if not flags:
            del self._changed[bundle_id]
        return None


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


_CHECKS: dict[str, Callable[[Any], bool]] = {name: _is_bool for name in DEFAULTS}
