"""FCM quotas as sliding windows and token buckets (pure; time comes from the caller).

- per project: messages per minute over a sliding (not clock-aligned) window, kept as
  one-second buckets so 600,000 a minute costs 60 counters, not 600,000 timestamps;
- per device: messages per minute and per hour, exact, from the device's recent send times;
- per device, collapsible messages: a token bucket (:class:`pushsim.bucket.TokenBucket`)
  of the burst size, refilled one message every N seconds.

Each check answers None (allowed, and counted) or the seconds until the send would be
allowed: the honest ``Retry-After``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from pushsim.bucket import TokenBucket


@dataclass
class QuotaConfig:
    enabled: bool = True
    project_per_minute: int = 600_000
    device_per_minute: int = 240
    device_per_hour: int = 5_000
    collapsible_burst: int = 20
    collapsible_refill_seconds: float = 180.0


class SlidingWindow:
    """Events in the last ``window`` seconds, in ``buckets`` slots (sliding, not aligned)."""

    def __init__(self, limit: int, window: float = 60.0, buckets: int = 60) -> None:
        self.limit = limit
        self.window = window
        self.width = window / buckets
        self.counts = [0] * buckets
        self.slots = [-1] * buckets  # which absolute slot each bucket currently holds
        self.total = 0
        self._last = -1

    def _advance(self, slot: int) -> None:
        if slot == self._last:
            return
        n = len(self.counts)
        for s in range(max(self._last + 1, slot - n + 1), slot + 1):
            i = s % n
            if self.slots[i] != s:
                self.total -= self.counts[i]
                self.counts[i] = 0
                self.slots[i] = s
        self._last = max(self._last, slot)

    def try_add(self, now: float) -> float | None:
        slot = int(now // self.width)
        self._advance(slot)
        if self.total >= self.limit:
            return self._retry_after(now, slot)
        i = slot % len(self.counts)
        self.counts[i] += 1
        self.total += 1
        return None

    def _retry_after(self, now: float, slot: int) -> float:
        # Walk from the oldest bucket until enough events have left the window.
        n = len(self.counts)
        excess = self.total - self.limit + 1
        for s in range(slot - n + 1, slot + 1):
            i = s % n
            if self.slots[i] == s:
                excess -= self.counts[i]
            if excess <= 0:
                return max(0.001, (s + n) * self.width - now)
        return self.window


class DeviceRates:
    """One device's recent send times: minute and hour windows, and the collapsible bucket."""

    __slots__ = ("bucket", "times")

    def __init__(self, keep: int, burst: int, refill_seconds: float, now: float) -> None:
        self.times: deque[float] = deque(maxlen=keep)
        # One message back every refill_seconds; none when refill_seconds <= 0.
        refills = refill_seconds > 0
        self.bucket = TokenBucket(
            1.0 if refills else 0.0,
            float(burst),
            float(burst),
            now,
            refill_seconds if refills else 1.0,
        )


class Quotas:
    """Every FCM quota of one simulator run."""

    def __init__(self, config: QuotaConfig | None = None) -> None:
        self.config = config or QuotaConfig()
        self._projects: dict[str, SlidingWindow] = {}
        self._devices: dict[str, DeviceRates] = {}

    def reconfigure(self, config: QuotaConfig) -> None:
        self.config = config
        self._projects.clear()
        self._devices.clear()

    def check(
        self, project: str, device_id: str | None, collapsible: bool, now: float
    ) -> tuple[str, float] | None:
        """None when the send is within every quota (and counts it); else (which, retry_after)."""
        cfg = self.config
        if not cfg.enabled:
            return None
        rates: DeviceRates | None = None
        if device_id is not None:
            rates = self._devices.get(device_id)
            if rates is None:
                keep = max(cfg.device_per_hour, cfg.device_per_minute, 1)
                rates = self._devices[device_id] = DeviceRates(
                    keep, cfg.collapsible_burst, cfg.collapsible_refill_seconds, now
                )
            times = rates.times
            n = len(times)
            m = cfg.device_per_minute
            if n >= m > 0 and now - times[-m] < 60.0:
                return "device_per_minute", times[-m] + 60.0 - now
            h = cfg.device_per_hour
            if n >= h > 0 and now - times[-h] < 3600.0:
                return "device_per_hour", times[-h] + 3600.0 - now
            if collapsible:
                burst_wait = rates.bucket.wait(now)
                if burst_wait > 0.0:
                    return "collapsible_burst", burst_wait
        window = self._projects.get(project)
        if window is None or window.limit != cfg.project_per_minute:
            window = self._projects[project] = SlidingWindow(cfg.project_per_minute)
        wait = window.try_add(now)
        if wait is not None:
            return "project_per_minute", wait
        if rates is not None:
            rates.times.append(now)
            if collapsible:
                rates.bucket.spend()
        return None

    def forget_device(self, device_id: str) -> None:
        self._devices.pop(device_id, None)
