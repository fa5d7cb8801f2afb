"""A device as callers see it: a small view of its compact state, made when asked for.

:class:`Device` holds only the store, its number and cohort; every attribute reads the
store (the population's arrays, the token codec, the per-device extras), and ``online``,
``pending`` and the containers write back there. Two views of one device are equal and see
the same state, so a view may be dropped and made again at any time; nothing is kept per
device for having been looked at. :class:`DeviceMap` and :class:`DeviceRun` give the
registry's ``devices`` mapping and its sequences (a mint's result, every device in order)
without making a view per device until one is read.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol, overload

from simulator.state.extras import DeviceDict, DeviceList, DeviceSet, Extras
from simulator.state.population import INSTALLED, Cohort, Population
from simulator.state.records import Inboxes
from simulator.state.subscriptions import SubscriptionKeys, WebPushKeys
from simulator.state.tokens import TokenCodec


class DeviceStore(Protocol):
    """What a device view reads and writes (the registry)."""

    population: Population
    codec: TokenCodec
    subscriptions: SubscriptionKeys
    extras: Extras
    inboxes: Inboxes


class Device:
    """One simulated device (a view: see the module docstring)."""

    __slots__ = ("_gen", "_store", "_token", "cohort", "number")

    def __init__(
        self,
        store: DeviceStore,
        number: int,
        cohort: Cohort,
        generation: int = -1,
        token: str = "",
    ) -> None:
        self._store = store
        self.number = number
        self.cohort = cohort
        self._gen = generation  # the generation ``_token`` is the token of (-1: none yet)
        self._token = token

    # -- what it was born with ----------------------------------------------------------

    @property
    def id(self) -> str:
        return f"{self.cohort.provider}-{self.number}"

    @property
    def provider(self) -> str:
        return self.cohort.provider

    @property
    def app(self) -> str:
        return self.cohort.app

    @property
    def environment(self) -> str:
        return self.cohort.environment

    @property
    def created_at(self) -> float:
        return self.cohort.created_at

    # -- what changes ---------------------------------------------------------------------

    @property
    def generation(self) -> int:
        return self._store.population.generations[self.number - 1]

    @property
    def token(self) -> str:
        gen = self._store.population.generations[self.number - 1]
        if gen != self._gen:
            self._token = self._store.codec.encode(self.cohort.provider, self.number, gen)
            self._gen = gen
        return self._token

    @property
    def installed(self) -> bool:
        return bool(self._store.population.flags[self.number - 1] & INSTALLED)

    @property
    def online(self) -> bool:
        return self._store.population.online(self.number)

    @online.setter
    def online(self, value: bool) -> None:
        self._store.population.set_online(self.number, value)

    @property
    def webpush(self) -> WebPushKeys | None:
        c = self.cohort
        if c.provider != "webpush":
            return None
        return self._store.subscriptions.keys(
            self.number, self.generation, c.application_server_key
        )

    @property
    def inbox(self) -> DeviceList:
        return self._store.inboxes.of(self.number)

    @property
    def pending(self) -> DeviceList:
        """The store-and-forward queue while offline (provider-specific entries)."""
        return self._store.extras.pending_of(self.number)

    @pending.setter
    def pending(self, items: list[dict[str, Any]]) -> None:
        self._store.extras.set_pending(self.number, items)

    @property
    def topics(self) -> DeviceSet:
        return self._store.extras.topics_of(self.number)

    @property
    def meta(self) -> DeviceDict:
        return self._store.extras.meta_of(self.number)

    # -- identity -------------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Device):
            return NotImplemented
        return self.number == other.number and self._store is other._store

    def __hash__(self) -> int:
        return hash(self.number)

    def __repr__(self) -> str:
        return f"<Device {self.id} generation {self.generation}>"


class DeviceRun(Sequence[Device]):
    """Devices ``first .. stop - 1`` by number, a view made only for the one read."""

    def __init__(self, store: DeviceStore, first: int, stop: int) -> None:
        self._store = store
        self._first = first
        self._stop = stop

    def __len__(self) -> int:
        return max(0, self._stop - self._first)

    @overload
    def __getitem__(self, i: int) -> Device: ...

    @overload
    def __getitem__(self, i: slice) -> DeviceRun: ...

    def __getitem__(self, i: int | slice) -> Device | DeviceRun:
        if isinstance(i, slice):
            start, stop, step = i.indices(len(self))
            if step != 1:
                raise ValueError("a run of devices slices with step 1 only")
            return DeviceRun(self._store, self._first + start, self._first + max(start, stop))
        n = len(self)
        pos = i + n if i < 0 else i
        if not 0 <= pos < n:
            raise IndexError("device index out of range")
        number = self._first + pos
        cohort = self._store.population.cohort(number)
        assert cohort is not None
        return Device(self._store, number, cohort)

    def __iter__(self) -> Iterator[Device]:
        store, first, stop = self._store, self._first, self._stop
        for cohort, numbers in store.population.numbers():
            for number in numbers[max(0, first - cohort.first) : max(0, stop - cohort.first)]:
                yield Device(store, number, cohort)


class DeviceMap:
    """Every device by id (``apns-17``): ``get``, ``[]``, ``in``, ``len`` and ``values``."""

    def __init__(self, store: DeviceStore) -> None:
        self._store = store

    def get(self, device_id: str, default: Device | None = None) -> Device | None:
        provider, _, digits = device_id.rpartition("-")
        if not digits.isdigit() or digits.startswith("0") or not digits.isascii():
            return default
        number = int(digits)
        cohort = self._store.population.cohort(number)
        if cohort is None or cohort.provider != provider:
            return default
        return Device(self._store, number, cohort)

    def __getitem__(self, device_id: str) -> Device:
        dev = self.get(device_id)
        if dev is None:
            raise KeyError(device_id)
        return dev

    def __contains__(self, device_id: object) -> bool:
        return isinstance(device_id, str) and self.get(device_id) is not None

    def __len__(self) -> int:
        return self._store.population.size

    def __iter__(self) -> Iterator[str]:
        return (d.id for d in self.values())

    def values(self) -> DeviceRun:
        return DeviceRun(self._store, 1, self._store.population.size + 1)
