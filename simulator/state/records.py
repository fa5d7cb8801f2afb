"""What reached the devices and what happened to their tokens, in bounded, compact records.

- :class:`Inboxes`: each device's inbox (the provider's entries, as the control API shows
  them), at most :data:`INBOX_PER_DEVICE` entries a device and :data:`INBOX_TOTAL` in all;
  past that the inbox of the device that received least recently goes first.
- :class:`DeliveryLog`: every delivery as a tuple (time, device number, generation, message
  id, correlation id), the token only when it is not the device's own; read back as the
  dictionaries ``/_sim/deliveries`` serves.
- :class:`FeedLog`: every token event (uninstall, reinstall, expiry) as a tuple (sequence,
  time, event, cause, device number, old generation, new generation); tokens are computed
  when read.

The logs resolve a device number (and generation) to its id, provider and token through the
``resolve`` callable the registry gives them.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from typing import Any

from simulator.state.extras import DeviceList

INBOX_PER_DEVICE = 1000
INBOX_TOTAL = 200_000
DELIVERY_LOG = 1_000_000
FEED_LOG = 200_000

Resolve = Callable[[int, int], tuple[str, str, str]]  # (number, generation) -> id, provider, token


class Inboxes:
    """Every device's inbox, bounded per device and in all (least recently fed goes first)."""

    def __init__(self, per_device: int = INBOX_PER_DEVICE, total: int = INBOX_TOTAL) -> None:
        self.boxes: OrderedDict[int, DeviceList] = OrderedDict()
        self.per_device = per_device
        self.total = total
        self._entries = 0

    def of(self, number: int) -> DeviceList:
        found = self.boxes.get(number)
        return found if found is not None else DeviceList(self.boxes, number)

    def add(self, number: int, entry: dict[str, Any]) -> None:
        boxes = self.boxes
        box = boxes.get(number)
        if box is None:
            box = boxes[number] = DeviceList(boxes, number)
        else:
            boxes.move_to_end(number)
        list.append(box, entry)
        self._entries += 1
        if len(box) > self.per_device:
            del box[: len(box) - self.per_device]
            self._entries -= 1
        while self._entries > self.total and len(boxes) > 1:
            _, oldest = boxes.popitem(last=False)
            self._entries -= len(oldest)

    @property
    def entries(self) -> int:
        return self._entries


class DeliveryLog:
    """Deliveries in arrival order, numbered from 1; the last :data:`DELIVERY_LOG` kept."""

    def __init__(self, resolve: Resolve, maxlen: int = DELIVERY_LOG) -> None:
        self._resolve = resolve
        self._items: deque[tuple[float, int, int, str | None, Any, Any]] = deque(maxlen=maxlen)
        self.seq = 0

    def add(
        self, at: float, number: int, generation: int, token: str | None, msg: Any, corr: Any
    ) -> None:
        self.seq += 1
        self._items.append((at, number, generation, token, msg, corr))

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        n = len(self._items)
        pos = i + n if i < 0 else i
        if not 0 <= pos < n:
            raise IndexError("delivery log index out of range")
        return self._show(self.seq - n + 1 + pos, self._items[pos])

    def _show(self, seq: int, item: tuple[float, int, int, str | None, Any, Any]) -> dict[str, Any]:
        at, number, generation, token, msg, corr = item
        dev_id, provider, own = self._resolve(number, generation)
        return {
            "seq": seq,
            "at": at,
            "device_id": dev_id,
            "provider": provider,
            "token": own if token is None else token,
            "message_id": msg,
            "correlation_id": corr,
        }

    def since(self, seq: int, limit: int = 10_000) -> list[dict[str, Any]]:
        n = len(self._items)
        first = self.seq - n + 1
        start = max(0, seq - first + 1)
        stop = min(n, start + limit)
        return [self._show(first + i, self._items[i]) for i in range(start, stop)]


class FeedLog:
    """Token events in order, numbered from 1; the last :data:`FEED_LOG` kept."""

    def __init__(self, resolve: Resolve, maxlen: int = FEED_LOG) -> None:
        self._resolve = resolve
        self._items: deque[tuple[int, float, str, str, int, int, int]] = deque(maxlen=maxlen)
        self.seq = 0

    def add(self, at: float, event: str, cause: str, number: int, old: int, new: int) -> None:
        """``old``/``new``: the generations whose tokens died and were born (new -1: none)."""
        self.seq += 1
        self._items.append((self.seq, at, event, cause, number, old, new))

    def _show(self, item: tuple[int, float, str, str, int, int, int]) -> dict[str, Any]:
        seq, at, event, cause, number, old, new = item
        dev_id, provider, old_token = self._resolve(number, old)
        return {
            "seq": seq,
            "at": at,
            "event": event,
            "cause": cause,
            "device_id": dev_id,
            "provider": provider,
            "old_token": old_token,
            "new_token": self._resolve(number, new)[2] if new >= 0 else None,
        }

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self._show(self._items[i])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (self._show(item) for item in self._items)

    def __reversed__(self) -> Iterator[dict[str, Any]]:
        return (self._show(item) for item in reversed(self._items))

    def since(self, seq: int, limit: int = 1000) -> list[dict[str, Any]]:
        n = len(self._items)
        first = self.seq - n + 1
        start = max(0, seq - first + 1)
        return [self._show(self._items[i]) for i in range(start, min(n, start + limit))]
