"""Every simulated device's state in a few bytes: cohorts, two arrays and the deviations.

A device is a *number* (1, 2, ... across all providers, as in the id ``apns-17``). What a
device is born with is shared by its whole mint (a :class:`Cohort`: provider, app,
environment, Web Push application-server key, creation time), found by bisecting the
cohorts' first numbers. What changes lives in two arrays indexed by ``number - 1``:

- ``flags`` (``bytearray``): bit 0 installed, bit 1 online; a new device is both (3);
- ``generations`` (``array('I')``): how many times the app was reinstalled (0 at first).

A token is ``(number, generation)`` under the token key (:mod:`simulator.state.tokens`),
so these five bytes are all a device needs: a token of an older generation, or of the
current one after an uninstall, is dead. When and why each dead generation died (the 410's
timestamp) is kept only for devices that died (``deaths``). Everything a provider keeps per
device beyond that (inbox, pending messages, topics, quota counters) lives in the
registry's dictionaries, only for the devices that have any.

Sharing with worker processes
-----------------------------
A worker builds its own ``Population`` (empty) and its own token codec from the same key,
then applies what the main process sends it: ``changes_since(mark)`` returns a
:class:`PopulationDelta` (new cohorts, and for each device changed since ``mark`` its
flags, generation and deaths: a few dozen bytes per changed device, nothing per unchanged
one), picklable as is; ``apply(delta)`` on the worker's copy brings it level. With the
cohorts and the key a worker verifies any token of a ten-million-device population without
ever having seen it, and a kill is one changed device in the next delta.

Limits
------
:meth:`Population.add` refuses a mint that free memory cannot hold
(:class:`PopulationFull`, its message naming the limit): the arrays take
:data:`BYTES_PER_DEVICE`, and at most half of the memory available now is offered.
"""

from __future__ import annotations

import bisect
import os
from array import array
from collections.abc import Iterator
from dataclasses import dataclass

INSTALLED = 1
ONLINE = 2
NEW_DEVICE = INSTALLED | ONLINE
BYTES_PER_DEVICE = 16  # 5 in the arrays, the rest headroom for their growth
REASONS = ("uninstalled", "rotated", "expired")  # why a generation died, coded 0, 1, 2


class PopulationFull(ValueError):
    """More devices were asked for than free memory can hold."""


@dataclass(frozen=True, slots=True)
class Cohort:
    """Devices minted together: numbers ``first .. first + count - 1``, alike at birth."""

    first: int
    count: int
    provider: str
    app: str
    environment: str = "production"
    application_server_key: str | None = None
    created_at: float = 0.0

    @property
    def end(self) -> int:
        return self.first + self.count


@dataclass(frozen=True, slots=True)
class DeviceChange:
    number: int
    flags: int
    generation: int
    deaths: tuple[int, ...]  # per dead generation: died_at_ms * 4 + reason code


@dataclass(frozen=True, slots=True)
class PopulationDelta:
    cohorts: tuple[Cohort, ...]
    devices: tuple[DeviceChange, ...]


SyncMark = tuple[int, int]  # (cohorts seen, journal entries seen)


def available_memory() -> int:
    """Bytes of memory available to new allocations now (MemAvailable on Linux)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


class Population:
    """The compact state of every device (see the module docstring)."""

    def __init__(self) -> None:
        self.cohorts: list[Cohort] = []
        self._firsts: list[int] = []
        self.flags = bytearray()
        self.generations = array("I")
        self.deaths: dict[int, list[int]] = {}
        self.total: dict[str, int] = {}
        self.live: dict[str, int] = {}
        self._journal = array("Q")  # device numbers, in the order they changed

    # -- minting --------------------------------------------------------------------------

    @property
    def size(self) -> int:
        return len(self.flags)

    def capacity(self) -> int:
        """How many more devices fit in half the memory available now."""
        return max(0, available_memory() // 2 // BYTES_PER_DEVICE)

    def add(
        self,
        provider: str,
        count: int,
        app: str,
        environment: str = "production",
        application_server_key: str | None = None,
        created_at: float = 0.0,
    ) -> Cohort:
        room = self.capacity()
        if count > room:
            raise PopulationFull(
                f"count: at most {room} more devices fit in this machine's free memory "
                f"({available_memory() // 2**20} MiB available, {BYTES_PER_DEVICE} bytes a "
                f"device, half of it offered); asked for {count}"
            )
        cohort = Cohort(
            self.size + 1, count, provider, app, environment, application_server_key, created_at
        )
        self._append(cohort)
        return cohort

    def _append(self, cohort: Cohort) -> None:
        self.cohorts.append(cohort)
        self._firsts.append(cohort.first)
        self.flags.extend(bytes([NEW_DEVICE]) * cohort.count)
        self.generations.frombytes(bytes(cohort.count * self.generations.itemsize))
        self.total[cohort.provider] = self.total.get(cohort.provider, 0) + cohort.count
        self.live[cohort.provider] = self.live.get(cohort.provider, 0) + cohort.count

    def cohort(self, number: int) -> Cohort | None:
        """The cohort of device ``number``, or None when there is no such device."""
        if not 1 <= number <= len(self.flags):
            return None
        return self.cohorts[bisect.bisect_right(self._firsts, number) - 1]

    def numbers(self, provider: str | None = None) -> Iterator[tuple[Cohort, range]]:
        """Each cohort (of ``provider``) with its device numbers, in minting order."""
        for c in self.cohorts:
            if provider is None or c.provider == provider:
                yield c, range(c.first, c.end)

    # -- one device ---------------------------------------------------------------------

    def installed(self, number: int) -> bool:
        return bool(self.flags[number - 1] & INSTALLED)

    def online(self, number: int) -> bool:
        return bool(self.flags[number - 1] & ONLINE)

    def set_online(self, number: int, online: bool) -> None:
        f = self.flags[number - 1]
        self.flags[number - 1] = f | ONLINE if online else f & ~ONLINE
        self._journal.append(number)

    def generation(self, number: int) -> int:
        return self.generations[number - 1]

    def kill(self, number: int, provider: str, at_ms: int, reason: str) -> None:
        """The current generation's token dies (uninstall, expiry or a reinstall's old token)."""
        i = number - 1
        if not self.flags[i] & INSTALLED:
            return
        self.flags[i] &= ~INSTALLED
        self.deaths.setdefault(number, []).append(at_ms * 4 + REASONS.index(reason))
        self.live[provider] -= 1
        self._journal.append(number)

    def reinstall(self, number: int, provider: str, at_ms: int) -> None:
        """The app is reinstalled: the old token dies (if alive) and the next generation lives."""
        self.kill(number, provider, at_ms, "rotated")
        i = number - 1
        self.generations[i] += 1
        self.flags[i] |= INSTALLED
        self.live[provider] += 1
        self._journal.append(number)

    def death(self, number: int, generation: int) -> tuple[int, str] | None:
        """When generation ``generation`` of device ``number`` died (ms) and why, if it did."""
        died = self.deaths.get(number)
        if died is None or generation >= len(died):
            return None
        code = died[generation]
        return code >> 2, REASONS[code & 3]

    # -- sharing with workers -------------------------------------------------------------

    def mark(self) -> SyncMark:
        return len(self.cohorts), len(self._journal)

    def changes_since(self, mark: SyncMark) -> tuple[SyncMark, PopulationDelta]:
        """What changed since ``mark``, and the mark to ask from next time."""
        seen_cohorts, seen_journal = mark
        changed = dict.fromkeys(self._journal[seen_journal:])
        devices = tuple(
            DeviceChange(
                n, self.flags[n - 1], self.generations[n - 1], tuple(self.deaths.get(n, ()))
            )
            for n in changed
        )
        return self.mark(), PopulationDelta(tuple(self.cohorts[seen_cohorts:]), devices)

    def apply(self, delta: PopulationDelta) -> None:
        """Bring a copy (a worker's) level with the population ``delta`` was taken from."""
        for cohort in delta.cohorts:
            self._append(cohort)
        for ch in delta.devices:
            i = ch.number - 1
            provider = self.cohorts[bisect.bisect_right(self._firsts, ch.number) - 1].provider
            was, now = self.flags[i] & INSTALLED, ch.flags & INSTALLED
            self.live[provider] += (now - was) // INSTALLED
            self.flags[i] = ch.flags
            self.generations[i] = ch.generation
            if ch.deaths:
                self.deaths[ch.number] = list(ch.deaths)
