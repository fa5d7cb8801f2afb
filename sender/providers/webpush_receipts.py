"""RFC 8030 delivery receipts for the sender's Web Push deliveries.

Per push service (origin) the collector makes one receipt subscription (``POST
{origin}/receipts``; a service that answers anything but 201 is remembered as one without
receipts and asked nothing more), every push to that service carries ``Push-Receipt`` and
``Prefer: respond-async``, and a push answered 202 waits for its receipt. While any wait,
the receipt subscriptions are collected every :data:`POLL_S` seconds, and each receipt is
recorded as a ``delivered`` receipt of that (notification, endpoint) -- the same record
``POST /v1/receipts`` makes. A push not receipted within :data:`WAIT_S` is forgotten.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from pushsim.clock import Clock

POLL_S = 0.5
WAIT_S = 3600.0
MAX_WAITING = 200_000

# (origin, method, path) -> (status, headers, body)
Request = Callable[[str, str, str], Awaitable[tuple[int, dict[str, str], bytes]]]
# (notification id, token) -> recorded
Record = Callable[[str, str], Awaitable[bool]]


class ReceiptCollector:
    def __init__(self, request: Request, record: Record, clock: Clock) -> None:
        self.request = request
        self.record = record
        self.clock = clock
        self.subscriptions: dict[str, str | None] = {}  # origin -> receipt subscription URL
        self._lock = asyncio.Lock()
        self._waiting: OrderedDict[str, tuple[str, str, float]] = OrderedDict()
        self._task: asyncio.Task[None] | None = None
        self.recorded = 0

    async def headers(self, origin: str) -> list[tuple[bytes, bytes]]:
        """The headers asking ``origin`` for a receipt (none if it keeps no receipts)."""
        url = self.subscriptions.get(origin, "")
        if url == "":
            async with self._lock:
                url = self.subscriptions.get(origin, "")
                if url == "":
                    url = self.subscriptions[origin] = await self._subscribe(origin)
        if not url:
            return []
        return [(b"push-receipt", url.encode()), (b"prefer", b"respond-async")]

    async def _subscribe(self, origin: str) -> str | None:
        try:
            status, headers, _ = await self.request(origin, "POST", "/receipts")
        except (OSError, TimeoutError, ValueError, RuntimeError):
            return None
        location = headers.get("location")
        return location if status == 201 and location else None

    def sent(self, status: int, location: str | None, notification_id: str, token: str) -> None:
        """A push was answered: a 202 with ``location`` now waits for its receipt."""
        if status != 202 or not location:
            return
        self._waiting[location] = (notification_id, token, self.clock.time())
        while len(self._waiting) > MAX_WAITING:
            self._waiting.popitem(last=False)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while self._waiting:
            await asyncio.sleep(POLL_S)
            await self.collect()

    async def collect(self) -> int:
        """Collect every receipt subscription once; returns the receipts recorded."""
        n = 0
        for url in [u for u in self.subscriptions.values() if u]:
            parts = urlsplit(url)
            origin = f"{parts.scheme}://{parts.netloc}"
            try:
                status, _, body = await self.request(origin, "GET", parts.path)
                receipts = json.loads(body).get("receipts", []) if status == 200 else []
            except (OSError, TimeoutError, ValueError, RuntimeError, AttributeError):
                continue
            for receipt in receipts if isinstance(receipts, list) else []:
                message = receipt.get("message") if isinstance(receipt, dict) else None
                waiting = self._waiting.pop(message, None) if isinstance(message, str) else None
                if waiting is not None and await self.record(waiting[0], waiting[1]):
                    n += 1
        cutoff = self.clock.time() - WAIT_S
        while self._waiting and next(iter(self._waiting.values()))[2] < cutoff:
            self._waiting.popitem(last=False)
        self.recorded += n
        return n

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(RuntimeError):
                self._task = None
