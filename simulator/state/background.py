"""iOS's budget for background (silent) pushes, per device, as pure state.

iOS wakes an app for a few background pushes an hour and holds the rest: a held push waits
for the budget to refill, and a newer one replaces (coalesces) a held one, so an app that
relies on silent pushes sees fewer of them than were sent. Modelled as a token bucket per
device (``per_hour`` pushes an hour, ``burst`` at once); each background push is recorded on
its inbox entry under ``background``:

- ``{"woke_app": true}``: within budget, the app ran;
- ``{"held": true, "wakes_at": t}``: over budget, the app will run at ``t`` unless a newer
  push replaces it first;
- ``{"held": false, "woke_app": false, "coalesced_into": id}``: replaced by the newer push
  ``id`` before it could run.

Only devices that are below a full budget, or hold a push, have state here (a device whose
budget has refilled is dropped every :data:`PRUNE_EVERY` pushes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PRUNE_EVERY = 4096


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float
    held: dict[str, Any] | None = None  # the inbox entry waiting for the budget
    release_at: float = 0.0


class BackgroundBudget:
    def __init__(self, per_hour: float = 3.0, burst: float = 3.0) -> None:
        self.per_hour = per_hour
        self.burst = burst
        self._buckets: dict[str, _Bucket] = {}
        self.woke = 0
        self.held = 0
        self.coalesced = 0
        self._admitted = 0

    @property
    def _rate(self) -> float:
        return self.per_hour / 3600.0

    def _refill(self, b: _Bucket, until: float) -> None:
        if until > b.at:
            b.tokens = min(self.burst, b.tokens + (until - b.at) * self._rate)
            b.at = until

    def _settle(self, b: _Bucket, now: float) -> None:
        """A held push whose time came ran then (and spent a token then)."""
        if b.held is not None and b.release_at <= now:
            self._refill(b, b.release_at)
            b.tokens = max(0.0, b.tokens - 1.0)
            b.held = None
        self._refill(b, now)

    def admit(self, device_id: str, entry: dict[str, Any], now: float) -> dict[str, Any]:
        """Record what the device does with a background push (returned and set on
        ``entry["background"]``)."""
        if self.per_hour <= 0:
            out: dict[str, Any] = {"woke_app": True, "budget": "off"}
            entry["background"] = out
            return out
        b = self._buckets.get(device_id)
        if b is None:
            b = self._buckets[device_id] = _Bucket(self.burst, now)
        self._settle(b, now)
        if b.tokens >= 1.0 and b.held is None:
            b.tokens -= 1.0
            out = {"woke_app": True}
            self.woke += 1
        else:
            if b.held is not None:
                b.held["background"] = {
                    "held": False,
                    "woke_app": False,
                    "coalesced_into": entry.get("message_id"),
                }
                self.coalesced += 1
            else:
                b.release_at = now + (1.0 - b.tokens) / self._rate
            b.held = entry
            out = {"held": True, "wakes_at": b.release_at}
            self.held += 1
        entry["background"] = out
        self._admitted += 1
        if self._admitted % PRUNE_EVERY == 0:
            self.prune(now)
        return out

    def prune(self, now: float) -> int:
        """Forget the devices whose budget is full again (the default); returns how many."""
        rate, burst = self._rate, self.burst
        full = [
            d
            for d, b in self._buckets.items()
            if b.held is None and b.tokens + (now - b.at) * rate >= burst
        ]
        for d in full:
            del self._buckets[d]
        return len(full)

    def retune(self, per_hour: float, burst: float) -> None:
        self.per_hour, self.burst = per_hour, burst

    def counts(self) -> dict[str, int]:
        return {
            "woke_app": self.woke,
            "held": self.held,
            "coalesced": self.coalesced,
            "devices_tracked": len(self._buckets),
        }
