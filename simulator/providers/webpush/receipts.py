"""RFC 8030 push message receipts, and the ``webpush`` listener's router in front of the core.

- ``POST /receipts`` (the receipt subscribe resource, link relation
  ``urn:ietf:params:push:receipt``): 201 with ``Location`` = a new receipt subscription;
- a push with ``Push-Receipt: <receipt subscription>`` (RFC 8030 5.1), or with ``Prefer:
  respond-async`` (a receipt subscription is then made for it), is answered 202 Accepted
  with ``Location`` (the push message) and ``Link: <receipt subscription>;
  rel="urn:ietf:params:push:receipt"``; a ``Push-Receipt`` naming no receipt subscription
  of this service is refused (400);
- when the message reaches the browser (now, or when it comes online within its TTL) a
  receipt joins its receipt subscription: ``GET`` on the subscription answers 200
  ``{"receipts": [{"message", "message_id", "status": 410, "delivered_at"}]}`` and hands
  each receipt out once. (RFC 8030 delivers receipts by HTTP/2 server push, which few
  clients accept; this is the same receipt, collected by the application server.)

Everything else goes to :class:`~simulator.providers.webpush.core.WebPushCore`.
"""

from __future__ import annotations

import json
import random
from collections import deque
from typing import Any
from urllib.parse import urlsplit

from pushsim.b64 import b64url
from simulator.providers.webpush.core import MESSAGE_PREFIX, PATH_PREFIX, WebPushCore
from simulator.providers.webpush.declarative import display
from simulator.state.devices import Device
from simulator.wire import Action, Request, Respond

RECEIPT_SUBSCRIBE = "/receipts"
RECEIPT_PREFIX = "/rs/"
RECEIPT_REL = "urn:ietf:params:push:receipt"
MAX_RECEIPTS = 10_000  # per receipt subscription, until collected
MAX_SUBSCRIPTIONS = 100_000
_JSON = ("content-type", "application/json")


class ReceiptBook:
    """Receipt subscriptions and the receipts waiting in each."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.subscriptions: dict[str, deque[dict[str, Any]]] = {}
        self.delivered = 0

    def subscribe(self) -> str:
        if len(self.subscriptions) >= MAX_SUBSCRIPTIONS:
            self.subscriptions.pop(next(iter(self.subscriptions)))
        rs_id = b64url(self.rng.randbytes(18))
        self.subscriptions[rs_id] = deque(maxlen=MAX_RECEIPTS)
        return rs_id

    def note(self, rs_id: str, receipt: dict[str, Any]) -> None:
        box = self.subscriptions.get(rs_id)
        if box is not None:
            box.append(receipt)
            self.delivered += 1

    def take(self, rs_id: str) -> list[dict[str, Any]] | None:
        box = self.subscriptions.get(rs_id)
        if box is None:
            return None
        out = list(box)
        box.clear()
        return out


def receipt_id(url: str | None) -> str | None:
    """The receipt subscription a ``Push-Receipt`` URL names (its path's last part)."""
    if not url:
        return None
    path = urlsplit(url.strip()).path
    return path[len(RECEIPT_PREFIX) :] if path.startswith(RECEIPT_PREFIX) else None


def _origin(req: Request, fallback: str) -> str:
    return f"{req.scheme}://{req.authority}" if req.authority else fallback


class WebPushRouter:
    """The ``webpush`` listener's handler: receipts here, every push to the core."""

    def __init__(self, core: WebPushCore, book: ReceiptBook) -> None:
        self.core = core
        self.book = book

    def handle(self, req: Request) -> Action:
        path = req.path.partition("?")[0]
        if path == RECEIPT_SUBSCRIBE:
            return self._subscribe(req)
        if path.startswith(RECEIPT_PREFIX):
            return self._collect(req, path[len(RECEIPT_PREFIX) :])
        if path.startswith(PATH_PREFIX) and req.method == "POST":
            return self._push(req)
        return self.core.handle(req)

    def _subscribe(self, req: Request) -> Respond:
        if req.method != "POST":
            return self.core.error(405, "method", f"{req.method} is not allowed; POST to subscribe")
        base = _origin(req, self.core.registry.webpush_base_url)
        location = f"{base}{RECEIPT_PREFIX}{self.book.subscribe()}"
        return Respond(201, (("location", location),))

    def _collect(self, req: Request, rs_id: str) -> Respond:
        if req.method != "GET":
            return self.core.error(405, "method", f"{req.method} is not allowed on receipts")
        receipts = self.book.take(rs_id)
        if receipts is None:
            return self.core.error(404, "bad_path", "no receipt subscription at this URL")
        return Respond(200, (_JSON,), json.dumps({"receipts": receipts}).encode())

    def _push(self, req: Request) -> Action:
        sent = req.header("push-receipt")
        prefer = (req.header("prefer") or "").lower()
        if sent is None and "respond-async" not in prefer:
            return self.core.handle(req)
        rs_id = receipt_id(sent)
        if sent is not None and rs_id not in self.book.subscriptions:
            return self.core.error(
                400, "bad_receipt", "Push-Receipt names no receipt subscription of this service"
            )
        if rs_id is None:  # Prefer: respond-async alone: a receipt subscription for it
            rs_id = self.book.subscribe()
            base = _origin(req, self.core.registry.webpush_base_url)
            req.headers.append(("push-receipt", f"{base}{RECEIPT_PREFIX}{rs_id}"))
        link = dict(req.headers)["push-receipt"]
        answer = self.core.handle(req)
        if not isinstance(answer, Respond) or answer.status != 201:
            return answer
        return Respond(202, (*answer.headers, ("link", f'<{link}>; rel="{RECEIPT_REL}"')))

    # -- the browser side ------------------------------------------------------------------

    def interpret(self, dev: Device, entry: dict[str, Any]) -> None:
        """A push message reached a browser: what it shows, and the receipt it earns."""
        if dev.provider != self.core.provider:
            return
        entry["display"] = display(entry.get("payload"))
        rs_id = receipt_id(entry.get("headers", {}).get("push-receipt"))
        if rs_id is not None:
            msg = entry.get("message_id")
            self.book.note(
                rs_id,
                {
                    "message": f"{self.core.registry.webpush_base_url}{MESSAGE_PREFIX}{msg}",
                    "message_id": msg,
                    "status": 410,
                    "delivered_at": self.core.clock.time(),
                },
            )
