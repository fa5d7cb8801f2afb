"""Control routes (JSON, under the control URL) for broadcast channels, Live Activities and
the iOS device side:

- ``GET`` / ``PATCH /_sim/apns/apps/{bundle_id}`` ``{"critical_alerts"?, "broadcast"?}``:
  the app's capabilities (:mod:`simulator.providers.apns.apps`);
- ``GET /_sim/apns/channels``: every channel, its policy and subscriber count;
- ``POST /_sim/apns/channels/subscribe`` ``{"channel_id", "device_ids": [...]}``: devices
  subscribe (each must be an APNs device of the channel's app and environment; the others
  come back as ``refused``); ``.../unsubscribe`` the same way (ids in the body: a channel
  id is base64, with ``/`` and ``+``);
- ``POST /_sim/apns/devices/{id}/push-to-start``: the device's push-to-start token
  (minted on first call); ``.../push-to-start/reissue``: iOS hands out a new one now;
- ``POST /_sim/apns/devices/{id}/activities`` ``{"attributes-type", "attributes",
  "content-state", "input-push-channel"?}``: the app starts an activity itself (its push
  token comes back and appears in the feed); ``GET`` lists the device's activities;
- ``GET /_sim/apns/live-activities/feed?since=SEQ``: new push-to-start tokens, activities
  started and ended;
- ``GET`` / ``PATCH /_sim/apns/live-activities/config`` ``{"reissue_probability"?,
  "background_per_hour"?, "background_burst"?}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from simulator.providers.apns.activities import start_problem
from simulator.providers.apns.control import error_response, read_object
from simulator.providers.apns.live import LivePush
from simulator.state.devices import Device

LIVE_KEY: web.AppKey[LivePush] = web.AppKey("apns_live")


def _device(request: web.Request) -> Device:
    live = request.app[LIVE_KEY]
    dev = live.registry.devices.get(request.match_info["device_id"])
    if dev is None or dev.provider != "apns":
        raise web.HTTPNotFound(
            text=json.dumps({"error": f"no APNs device {request.match_info['device_id']!r}"}),
            content_type="application/json",
        )
    return dev


def _now(request: web.Request) -> float:
    return request.app[LIVE_KEY].registry.clock.time()


async def get_app(request: web.Request) -> web.Response:
    return web.json_response(request.app[LIVE_KEY].caps.view(request.match_info["bundle_id"]))


async def patch_app(request: web.Request) -> web.Response:
    body = await read_object(request)
    if body is None:
        return error_response("expected a JSON object")
    caps = request.app[LIVE_KEY].caps
    bundle = request.match_info["bundle_id"]
    problem = caps.update(bundle, body)
    return error_response(problem) if problem else web.json_response(caps.view(bundle))


async def list_channels(request: web.Request) -> web.Response:
    book = request.app[LIVE_KEY].book
    return web.json_response({"channels": [ch.view() for ch in book.channels.values()]})


async def _subscription_body(request: web.Request) -> tuple[str, list[str]] | web.Response:
    body = await read_object(request)
    if body is None:
        return error_response("expected a JSON object")
    cid, ids = body.get("channel_id"), body.get("device_ids")
    if not isinstance(cid, str) or cid not in request.app[LIVE_KEY].book.channels:
        return error_response(f"channel_id: no channel {cid!r}", 404)
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        return error_response("device_ids: expected a non-empty list of device ids")
    return cid, ids


async def subscribe(request: web.Request) -> web.Response:
    parsed = await _subscription_body(request)
    if isinstance(parsed, web.Response):
        return parsed
    cid, ids = parsed
    refused = [i for i in ids if not request.app[LIVE_KEY].subscribe(i, cid)]
    return web.json_response(
        {"channel_id": cid, "subscribed": len(ids) - len(refused), "refused": refused}
    )


async def unsubscribe(request: web.Request) -> web.Response:
    parsed = await _subscription_body(request)
    if isinstance(parsed, web.Response):
        return parsed
    cid, ids = parsed
    book = request.app[LIVE_KEY].book
    ch = book.channels[cid]
    gone = [i for i in ids if book.unsubscribe(ch, i)]
    return web.json_response({"channel_id": cid, "unsubscribed": len(gone)})


async def push_to_start(request: web.Request) -> web.Response:
    dev = _device(request)
    live = request.app[LIVE_KEY]
    token = live.activities.push_to_start_token(dev.id, dev.generation, _now(request))
    return web.json_response({"device_id": dev.id, "push_to_start_token": token})


async def reissue(request: web.Request) -> web.Response:
    dev = _device(request)
    live = request.app[LIVE_KEY]
    live.activities.push_to_start_token(dev.id, dev.generation, _now(request))
    token = live.activities.reissue(dev.id, _now(request))
    return web.json_response({"device_id": dev.id, "push_to_start_token": token})


async def start_activity(request: web.Request) -> web.Response:
    dev = _device(request)
    body = await read_object(request)
    if body is None:
        return error_response("expected a JSON object")
    body.setdefault("timestamp", int(_now(request)))
    problem = start_problem(body)
    if problem:
        return error_response(problem)
    live = request.app[LIVE_KEY]
    act = live.activities.start(dev.id, dev.generation, body, _now(request))
    return web.json_response(act.view(_now(request)), status=201)


async def list_activities(request: web.Request) -> web.Response:
    dev = _device(request)
    now = _now(request)
    acts = request.app[LIVE_KEY].activities.of_device(dev.id)
    return web.json_response({"device_id": dev.id, "activities": [a.view(now) for a in acts]})


async def feed(request: web.Request) -> web.Response:
    try:
        since = int(request.query.get("since", "0"))
    except ValueError:
        return error_response("since: expected an integer")
    events = request.app[LIVE_KEY].activities.feed_since(since)
    return web.json_response({"events": events, "last_seq": events[-1]["seq"] if events else since})


def _share(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 1


def _non_negative(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and v >= 0


_CONFIG: dict[str, tuple[Callable[[Any], bool], str]] = {
    "reissue_probability": (_share, "expected a number from 0 to 1"),
    "background_per_hour": (_non_negative, "expected a non-negative number (0: no budget)"),
    "background_burst": (_non_negative, "expected a non-negative number"),
}


def _config_view(live: LivePush) -> dict[str, Any]:
    return {
        "reissue_probability": live.activities.reissue_probability,
        "background_per_hour": live.budget.per_hour,
        "background_burst": live.budget.burst,
    }


async def get_config(request: web.Request) -> web.Response:
    return web.json_response(_config_view(request.app[LIVE_KEY]))


async def patch_config(request: web.Request) -> web.Response:
    body = await read_object(request)
    if body is None:
        return error_response("expected a JSON object")
    for name, value in body.items():
        rule = _CONFIG.get(name)
        if rule is None:
            return error_response(f"{name}: unknown setting (expected one of {', '.join(_CONFIG)})")
        if not rule[0](value):
            return error_response(f"{name}: {rule[1]}")
    live = request.app[LIVE_KEY]
    if "reissue_probability" in body:
        live.activities.reissue_probability = float(body["reissue_probability"])
    per_hour = float(body.get("background_per_hour", live.budget.per_hour))
    live.budget.retune(per_hour, float(body.get("background_burst", live.budget.burst)))
    return web.json_response(_config_view(live))


def register_live_control(app: web.Application, live: LivePush) -> None:
    app[LIVE_KEY] = live
    r = app.router
    r.add_get("/_sim/apns/apps/{bundle_id}", get_app)
    r.add_patch("/_sim/apns/apps/{bundle_id}", patch_app)
    r.add_get("/_sim/apns/channels", list_channels)
    r.add_post("/_sim/apns/channels/subscribe", subscribe)
    r.add_post("/_sim/apns/channels/unsubscribe", unsubscribe)
    r.add_post("/_sim/apns/devices/{device_id}/push-to-start", push_to_start)
    r.add_post("/_sim/apns/devices/{device_id}/push-to-start/reissue", reissue)
    r.add_post("/_sim/apns/devices/{device_id}/activities", start_activity)
    r.add_get("/_sim/apns/devices/{device_id}/activities", list_activities)
    r.add_get("/_sim/apns/live-activities/feed", feed)
    r.add_get("/_sim/apns/live-activities/config", get_config)
    r.add_patch("/_sim/apns/live-activities/config", patch_config)
