"""The simulated user behind each device: is the notification shown, and is it opened.

A delivered notification first goes through each provider part's interpreters (what the
device makes of it: ``display``, ``activity``, ``background`` on the inbox entry), then
through the user:

- notifications **allowed** or turned **off** in settings: with them off the token stays
  valid and the provider still answers success, but nothing is shown (production's silent
  failure); a ``notifications_off_share`` of devices, picked by a seeded hash of the device
  id, has them off, and a device's own setting overrides that;
- an **open probability**: a shown notification is opened with that chance (a seeded draw),
  recorded as ``opened`` on the entry and in the opens feed (``GET /_sim/opens?since=SEQ``),
  from which the device side reports ``opened`` receipts to the sender.

The inbox entry gets ``shown`` (and ``not_shown`` saying why not) and ``opened``; the counts
(delivered, shown, opened, ...) are ground truth for the sender's delivered -> shown ->
opened funnel. Only devices whose settings differ from the defaults have state here.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pushsim.clock import Clock
from simulator.state.devices import Device

Interpreter = Callable[[Device, dict[str, Any]], None]
"""What one provider part's device side makes of a delivered entry (it annotates it)."""

SETTINGS = ("notifications", "open_probability")


@dataclass
class UserDefaults:
    open_probability: float = 0.0  # chance a shown notification is opened
    notifications_off_share: float = 0.0  # share of devices with notifications turned off

    def as_dict(self) -> dict[str, float]:
        return {
            "open_probability": self.open_probability,
            "notifications_off_share": self.notifications_off_share,
        }


def _share(value: Any) -> str | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1
    return None if ok else "expected a number from 0 to 1"


def _notifications(value: Any) -> str | None:
    return None if value in ("allowed", "off") else "expected 'allowed' or 'off'"


DEFAULT_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "open_probability": _share,
    "notifications_off_share": _share,
}
DEVICE_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "notifications": _notifications,
    "open_probability": _share,
}


def check(body: dict[str, Any], checks: dict[str, Callable[[Any], str | None]]) -> str | None:
    """The first bad field of a settings update, as ``"field: what was expected"``."""
    for name, value in body.items():
        rule = checks.get(name)
        if rule is None:
            return f"{name}: unknown setting (expected one of {', '.join(checks)})"
        problem = rule(value)
        if problem is not None:
            return f"{name}: {problem}, got {value!r}"
    return None


class SimulatedUsers:
    """Every device's user: settings (deviations only), decisions, the opens feed, counts."""

    def __init__(self, clock: Clock, rng: random.Random) -> None:
        self.clock = clock
        self.rng = rng
        self._hash_key = rng.randbytes(16)
        self.defaults = UserDefaults()
        self._devices: dict[str, dict[str, Any]] = {}
        self.interpreters: list[Interpreter] = []
        self.counts: Counter[str] = Counter()
        self.opens: deque[dict[str, Any]] = deque(maxlen=200_000)
        self._open_seq = 0

    # -- settings ---------------------------------------------------------------------------

    def _off_by_share(self, device_id: str) -> bool:
        share = self.defaults.notifications_off_share
        if share <= 0:
            return False
        digest = hashlib.blake2b(device_id.encode(), key=self._hash_key, digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64 < share

    def settings(self, device_id: str) -> dict[str, Any]:
        own = self._devices.get(device_id, {})
        allowed = own.get("notifications")
        if allowed is None:
            allowed = "off" if self._off_by_share(device_id) else "allowed"
        return {
            "notifications": allowed,
            "open_probability": own.get("open_probability", self.defaults.open_probability),
            "own": sorted(own),
        }

    def update_device(self, device_id: str, body: dict[str, Any]) -> str | None:
        problem = check(body, DEVICE_CHECKS)
        if problem is not None:
            return problem
        own = self._devices.setdefault(device_id, {})
        for name, value in body.items():
            own[name] = float(value) if name == "open_probability" else value
        return None

    def reset_device(self, device_id: str) -> None:
        self._devices.pop(device_id, None)

    def update_defaults(self, body: dict[str, Any]) -> str | None:
        problem = check(body, DEFAULT_CHECKS)
        if problem is not None:
            return problem
        for name, value in body.items():
            setattr(self.defaults, name, float(value))
        return None

    # -- a delivery -------------------------------------------------------------------------

    def observe(self, dev: Device, entry: dict[str, Any]) -> None:
        """A notification reached ``dev``: the parts interpret it, then the user decides."""
        for interpret in self.interpreters:
            interpret(dev, entry)
        counts = self.counts
        counts["delivered"] += 1
        display = entry.get("display")
        if not isinstance(display, dict) or not display.get("visible"):
            entry["shown"] = False
            entry["not_shown"] = "nothing to show (a silent or data-only notification)"
            counts["silent"] += 1
            return
        own = self._devices.get(dev.id)  # the hot path: no settings of its own
        allowed = own.get("notifications") if own is not None else None
        if allowed == "off" or (allowed is None and self._off_by_share(dev.id)):
            entry["shown"] = False
            entry["not_shown"] = "notifications are turned off in settings"
            counts["not_shown_off"] += 1
            return
        entry["shown"] = True
        counts["shown"] += 1
        p = own.get("open_probability") if own is not None else None
        p = self.defaults.open_probability if p is None else p
        if p > 0 and display.get("openable", True) and self.rng.random() < p:
            self._open(dev, entry)

    def _open(self, dev: Device, entry: dict[str, Any]) -> None:
        now = self.clock.time()
        entry["opened"] = True
        entry["opened_at"] = now
        self.counts["opened"] += 1
        self._open_seq += 1
        self.opens.append(
            {
                "seq": self._open_seq,
                "at": now,
                "device_id": dev.id,
                "provider": dev.provider,
                "token": entry.get("token", dev.token),
                "message_id": entry.get("message_id"),
                "correlation_id": entry.get("correlation_id"),
            }
        )

    def opens_since(self, seq: int, limit: int = 1000) -> list[dict[str, Any]]:
        if not self.opens or seq >= self._open_seq:
            return []
        first = self.opens[0]["seq"]
        start = max(0, seq - first + 1)
        return [self.opens[i] for i in range(start, min(len(self.opens), start + limit))]

    def stats(self) -> dict[str, Any]:
        return {"device_users": {"defaults": self.defaults.as_dict(), **self.counts}}
