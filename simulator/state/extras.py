"""What a few devices hold beyond their compact state: pending messages, topics, notes.

Each lives in a dictionary keyed by device number, only for the devices that have some. A
device handed out by the registry reads its container from there; a device that has none
gets an empty container that joins the dictionary on its first write (``append``, ``add``,
``[k] = v``...), so reading ``dev.pending`` or ``dev.topics`` on a million devices stores
nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any, SupportsIndex

Home = MutableMapping[int, Any]


class DeviceList(list[dict[str, Any]]):
    """A device's list (pending messages, inbox) that joins ``home`` when first written."""

    __slots__ = ("_home", "_number")

    def __init__(self, home: Home, number: int, items: Iterable[dict[str, Any]] = ()) -> None:
        super().__init__(items)
        self._home = home
        self._number = number

    def _join(self) -> None:
        if self._home.get(self._number) is not self:
            self._home[self._number] = self

    def append(self, item: dict[str, Any]) -> None:
        super().append(item)
        self._join()

    def extend(self, items: Iterable[dict[str, Any]]) -> None:
        super().extend(items)
        self._join()

    def insert(self, index: SupportsIndex, item: dict[str, Any]) -> None:
        super().insert(index, item)
        self._join()

    def __setitem__(self, index: Any, value: Any) -> None:
        super().__setitem__(index, value)
        self._join()

    def __iadd__(self, items: Iterable[dict[str, Any]]) -> DeviceList:  # type: ignore[override,misc]
        super().__iadd__(items)
        self._join()
        return self


class DeviceSet(set[str]):
    """A device's topics, joining ``home`` when the first one is added."""

    __slots__ = ("_home", "_number")

    def __init__(self, home: Home, number: int, items: Iterable[str] = ()) -> None:
        super().__init__(items)
        self._home = home
        self._number = number

    def add(self, item: str) -> None:
        super().add(item)
        if self._home.get(self._number) is not self:
            self._home[self._number] = self

    def update(self, *others: Iterable[str]) -> None:
        for items in others:
            for item in items:
                self.add(item)


class DeviceDict(dict[str, Any]):
    """A device's notes (e.g. FCM's platform), joining ``home`` when first written."""

    __slots__ = ("_home", "_number")

    def __init__(self, home: Home, number: int) -> None:
        super().__init__()
        self._home = home
        self._number = number

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        if self._home.get(self._number) is not self:
            self._home[self._number] = self

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]


class Extras:
    """The per-device containers, each only for the devices that have something in it."""

    def __init__(self) -> None:
        self.pending: dict[int, DeviceList] = {}
        self.topics: dict[int, DeviceSet] = {}
        self.meta: dict[int, DeviceDict] = {}

    def pending_of(self, number: int) -> DeviceList:
        found = self.pending.get(number)
        return found if found is not None else DeviceList(self.pending, number)

    def set_pending(self, number: int, items: list[dict[str, Any]]) -> None:
        if items:
            self.pending[number] = DeviceList(self.pending, number, items)
        else:
            self.pending.pop(number, None)

    def topics_of(self, number: int) -> DeviceSet:
        found = self.topics.get(number)
        return found if found is not None else DeviceSet(self.topics, number)

    def meta_of(self, number: int) -> DeviceDict:
        found = self.meta.get(number)
        return found if found is not None else DeviceDict(self.meta, number)

    def forget(self, number: int, *, topics: bool) -> None:
        """The token died or was replaced: drop what was pending (and the topics)."""
        held = self.pending.pop(number, None)
        if held is not None:
            held.clear()  # a caller still holding the list sees it empty, as before
        if topics:
            subscribed = self.topics.pop(number, None)
            if subscribed is not None:
                subscribed.clear()
