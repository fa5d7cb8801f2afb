"""The Web Push part of a simulator: its listener (the core behind the receipts router of
:mod:`~simulator.providers.webpush.receipts`), device hooks and control routes.

Control routes (JSON over HTTP/1.1, beside the rest of ``/_sim/``):

- ``GET /_sim/webpush/config`` and ``PATCH /_sim/webpush/config`` with any of
  ``{"flavour": "mozilla"|"google"|"apple", "rate_per_second": float|null,
  "rate_burst": int, "subscription_lifetime": seconds|null, "max_payload": int,
  "max_pending": int, "ecdh_cache": bool, "unsubscribed_status": 404|410|null,
  "expired_status": 404|410|null}``;
- ``POST /_sim/webpush/subscriptions/{device_id}/expire``: the subscription expires now
  (sends then get the flavour's expired status, 410 or 404);
- ``GET /_sim/webpush/pending/{device_id}``: messages an offline browser still holds;
- ``GET /_sim/webpush/cache``: VAPID and ECDH cache counters.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from simulator.control import bad_request, read_json
from simulator.parts import Contribution, ListenerPart, PartHost
from simulator.providers.webpush.answers import WebPushFaultAnswers
from simulator.providers.webpush.core import PROVIDER, WebPushConfig, WebPushCore
from simulator.providers.webpush.flavours import FLAVOURS
from simulator.providers.webpush.receipts import ReceiptBook, WebPushRouter
from simulator.server.listener import ListenerOptions

CORE_KEY: web.AppKey[WebPushCore] = web.AppKey("webpush_core")


def build_webpush(host: PartHost, config: WebPushConfig) -> Contribution:
    """The ``webpush`` listener, its device-online hook and its control routes."""
    core = WebPushCore(host.registry, host.clock, host.stats, config, host.fork_rng())
    router = WebPushRouter(core, ReceiptBook(host.fork_rng()))  # RFC 8030 receipts

    def register(app: web.Application) -> None:
        app[CORE_KEY] = core
        app.router.add_get("/_sim/webpush/config", get_config)
        app.router.add_patch("/_sim/webpush/config", patch_config)
        app.router.add_put("/_sim/webpush/config", patch_config)
        app.router.add_post("/_sim/webpush/subscriptions/{device_id}/expire", expire)
        app.router.add_get("/_sim/webpush/pending/{device_id}", pending)
        app.router.add_get("/_sim/webpush/cache", cache)

    listener = ListenerPart(router, ListenerOptions(), WebPushFaultAnswers(host.stats))
    return Contribution(
        PROVIDER,
        {PROVIDER: listener},
        control=register,
        on_online=core.device_online,
        on_deliver=router.interpret,
    )


def _not_found(message: str) -> web.HTTPNotFound:
    return web.HTTPNotFound(text=json.dumps({"error": message}), content_type="application/json")


async def get_config(request: web.Request) -> web.Response:
    return web.json_response(request.app[CORE_KEY].config.as_dict())


def _flavour(value: Any) -> str | None:
    return None if value in FLAVOURS else f"expected one of {', '.join(FLAVOURS)}"


def _positive_or_null(value: Any) -> str | None:
    ok = value is None or (
        isinstance(value, int | float) and not isinstance(value, bool) and value > 0
    )
    return None if ok else "expected a positive number or null"


def _positive_int(value: Any) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
    return None if ok else "expected a positive integer"


def _flag(value: Any) -> str | None:
    return None if isinstance(value, bool) else "expected true or false"


def _dead_status(value: Any) -> str | None:
    return None if value in (None, 404, 410) else "expected 404, 410 or null"


# field -> what is wrong with a value for it (None: nothing)
VALIDATORS: dict[str, Callable[[Any], str | None]] = {
    "flavour": _flavour,
    "rate_per_second": _positive_or_null,
    "subscription_lifetime": _positive_or_null,
    "rate_burst": _positive_int,
    "max_payload": _positive_int,
    "max_pending": _positive_int,
    "ecdh_cache": _flag,
    "unsubscribed_status": _dead_status,
    "expired_status": _dead_status,
}


def apply_config(config: WebPushConfig, body: dict[str, Any]) -> tuple[str, str] | None:
    """Apply a partial update (all or nothing); returns (field, message) for the first bad
    field, else None."""
    for name, value in body.items():
        check = VALIDATORS.get(name)
        if check is None:
            return name, "unknown field"
        problem = check(value)
        if problem is not None:
            return name, f"{problem}, got {value!r}"
    for name, value in body.items():
        setattr(config, name, value)
    return None


async def patch_config(request: web.Request) -> web.Response:
    core = request.app[CORE_KEY]
    body = await read_json(request)
    if not isinstance(body, dict):
        return bad_request("expected a JSON object")
    problem = apply_config(core.config, body)
    if problem is not None:
        return bad_request(f"{problem[0]}: {problem[1]}", problem[0])
    return web.json_response(core.config.as_dict())


def _webpush_device(request: web.Request) -> Any:
    dev = request.app[CORE_KEY].registry.devices.get(request.match_info["device_id"])
    if dev is None or dev.provider != "webpush":
        raise _not_found(f"no Web Push subscription {request.match_info['device_id']!r}")
    return dev


async def expire(request: web.Request) -> web.Response:
    dev = _webpush_device(request)
    request.app[CORE_KEY].registry.uninstall(dev.id, cause="control", reason="expired")
    return web.json_response({"id": dev.id, "installed": dev.installed, "expired": True})


async def pending(request: web.Request) -> web.Response:
    dev = _webpush_device(request)
    return web.json_response({"device_id": dev.id, "online": dev.online, "messages": dev.pending})


async def cache(request: web.Request) -> web.Response:
    core = request.app[CORE_KEY]
    return web.json_response(
        {
            "vapid_verifications": core.vapid.verifications,
            "ecdh_cache_hits": core.ikm_cache.hits,
            "ecdh_cache_misses": core.ikm_cache.misses,
        }
    )
