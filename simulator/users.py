"""The simulated users' part of a simulator: control routes and counters.

- ``GET`` / ``PATCH /_sim/users`` ``{"open_probability"?, "notifications_off_share"?}``:
  what every device's user does unless told otherwise;
- ``GET`` / ``PATCH /_sim/devices/{id}/user`` ``{"notifications"?: "allowed"|"off",
  "open_probability"?}``: one device's user (``DELETE`` returns it to the defaults);
- ``GET /_sim/opens?since=SEQ``: notifications users opened, in order (``last_seq`` pages);
  the device side reports each as an ``opened`` receipt to the sender.

``/_sim/stats`` gains ``device_users``: delivered, shown, silent, not_shown_off, opened.
"""

from __future__ import annotations

import json

from aiohttp import web

from simulator.control import bad_request, read_json
from simulator.parts import Contribution
from simulator.state.device_user import SimulatedUsers
from simulator.state.devices import DeviceRegistry

USERS_KEY: web.AppKey[SimulatedUsers] = web.AppKey("simulated_users")
REGISTRY_KEY: web.AppKey[DeviceRegistry] = web.AppKey("users_registry")


def _device_id(request: web.Request) -> str:
    dev_id = request.match_info["device_id"]
    if request.app[REGISTRY_KEY].devices.get(dev_id) is None:
        raise web.HTTPNotFound(
            text=json.dumps({"error": f"no device {dev_id!r}"}), content_type="application/json"
        )
    return dev_id


async def get_defaults(request: web.Request) -> web.Response:
    return web.json_response(request.app[USERS_KEY].defaults.as_dict())


async def patch_defaults(request: web.Request) -> web.Response:
    users = request.app[USERS_KEY]
    body = await read_json(request)
    if not isinstance(body, dict):
        return bad_request("expected a JSON object")
    problem = users.update_defaults(body)
    if problem is not None:
        return bad_request(problem, problem.partition(":")[0])
    return web.json_response(users.defaults.as_dict())


async def get_user(request: web.Request) -> web.Response:
    dev_id = _device_id(request)
    return web.json_response({"device_id": dev_id, **request.app[USERS_KEY].settings(dev_id)})


async def patch_user(request: web.Request) -> web.Response:
    dev_id = _device_id(request)
    users = request.app[USERS_KEY]
    body = await read_json(request)
    if not isinstance(body, dict):
        return bad_request("expected a JSON object")
    problem = users.update_device(dev_id, body)
    if problem is not None:
        return bad_request(problem, problem.partition(":")[0])
    return web.json_response({"device_id": dev_id, **users.settings(dev_id)})


async def reset_user(request: web.Request) -> web.Response:
    dev_id = _device_id(request)
    users = request.app[USERS_KEY]
    users.reset_device(dev_id)
    return web.json_response({"device_id": dev_id, **users.settings(dev_id)})


async def opens(request: web.Request) -> web.Response:
    try:
        since = int(request.query.get("since", "0"))
    except ValueError:
        return bad_request("since: expected an integer", "since")
    items = request.app[USERS_KEY].opens_since(since)
    return web.json_response({"opens": items, "last_seq": items[-1]["seq"] if items else since})


def users_part(users: SimulatedUsers, registry: DeviceRegistry) -> Contribution:
    def register(app: web.Application) -> None:
        app[USERS_KEY] = users
        app[REGISTRY_KEY] = registry
        app.router.add_get("/_sim/users", get_defaults)
        app.router.add_patch("/_sim/users", patch_defaults)
        app.router.add_get("/_sim/devices/{device_id}/user", get_user)
        app.router.add_patch("/_sim/devices/{device_id}/user", patch_user)
        app.router.add_delete("/_sim/devices/{device_id}/user", reset_user)
        app.router.add_get("/_sim/opens", opens)

    return Contribution("users", control=register, stats=users.stats)
