"""Control routes for the FCM simulator (under ``/_sim/fcm``).

- ``GET /_sim/fcm``: current settings (quotas, OAuth, projects, forced errors, topics);
- ``POST /_sim/fcm/config``: change them, e.g.
  ``{"quota": {"device_per_minute": 2}, "oauth": {"token_lifetime": 5},
  "projects": {"pushsim-project": {"apns_credentials": false}}, "max_pending": 100}``;
  ``max_concurrent_streams`` (100, as FCM's HTTP/2 front end allows) and
  ``strict_before_ack`` (see :mod:`simulator.server.streamlimit`) apply to new connections;
- ``POST /_sim/fcm/errors``: answer the next sends with an error,
  ``{"errorCode": "UNAVAILABLE", "count": 5, "retry_after": 1, "token": optional}``;
  ``DELETE /_sim/fcm/errors`` clears them;
- ``POST /_sim/fcm/oauth/expire``: expire every access token issued so far;
- ``POST /_sim/fcm/devices/{id}``: ``{"platform": "android"|"ios"|"web"}`` for a device.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from simulator.providers.fcm.core import ForcedError, ProjectSettings
from simulator.providers.fcm.router import FcmRouter
from simulator.server.listener import ListenerOptions

ROUTER_KEY: web.AppKey[FcmRouter] = web.AppKey("fcm_router")
OPTIONS_KEY: web.AppKey[ListenerOptions] = web.AppKey("fcm_listener_options")
MAX_STREAMS = 2**31 - 1
PLATFORMS = ("android", "ios", "web")


def _bad(message: str, field: str) -> web.Response:
    return web.json_response({"error": message, "field": field}, status=400)


async def _body(request: web.Request) -> Any:
    raw = await request.read()
    try:
        return json.loads(raw) if raw else {}
    except (ValueError, RecursionError):
        return None


def _settings(app: web.Application) -> dict[str, Any]:
    router = app[ROUTER_KEY]
    core = router.core
    options = app[OPTIONS_KEY]
    return {
        "quota": dataclasses.asdict(core.quotas.config),
        "oauth": dataclasses.asdict(router.oauth.config)
        | {"tokens_issued": core.tokens.issued, "tokens_refused": router.oauth.refused},
        "max_pending": core.devices.max_pending,
        "max_concurrent_streams": options.max_concurrent_streams,
        "strict_before_ack": options.strict_before_ack,
        "projects": {p: dataclasses.asdict(s) for p, s in core.projects.items()},
        "errors": [dataclasses.asdict(f) for f in core.forced.queue],
        "topics": core.topics.topic_counts(),
    }


def _update(obj: Any, changes: Any, field: str) -> str | None:
    """Apply ``changes`` to a dataclass in place; an error message on bad input."""
    if not isinstance(changes, dict):
        return f"{field}: expected an object"
    kinds = {f.name: f.type for f in dataclasses.fields(obj)}
    for key, value in changes.items():
        if key not in kinds:
            return f"{field}.{key}: unknown setting (expected one of {', '.join(kinds)})"
        current = getattr(obj, key)
        if isinstance(current, bool):
            if not isinstance(value, bool):
                return f"{field}.{key}: expected true or false"
        elif isinstance(current, int | float):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                return f"{field}.{key}: expected a non-negative number"
            if isinstance(current, int) and not isinstance(value, int):
                return f"{field}.{key}: expected an integer"
    for key, value in changes.items():
        setattr(obj, key, value)
    return None


async def get_settings(request: web.Request) -> web.Response:
    return web.json_response(_settings(request.app))


def _apply_quota(app: web.Application, changes: Any) -> str | None:
    core = app[ROUTER_KEY].core
    quota = dataclasses.replace(core.quotas.config)
    err = _update(quota, changes, "quota")
    if err is None:
        core.quotas.reconfigure(quota)
    return err


def _apply_oauth(app: web.Application, changes: Any) -> str | None:
    router = app[ROUTER_KEY]
    oauth = dataclasses.replace(router.oauth.config)
    err = _update(oauth, changes, "oauth")
    if err is None:
        router.oauth.config = oauth
    return err


def _apply_projects(app: web.Application, projects: Any) -> str | None:
    core = app[ROUTER_KEY].core
    if not isinstance(projects, dict):
        return "projects: expected an object of project id -> settings"
    for project, changes in projects.items():
        settings = dataclasses.replace(core.projects.get(project) or ProjectSettings())
        err = _update(settings, changes, f"projects.{project}")
        if err:
            return err
        core.projects[project] = settings
    return None


def _apply_max_pending(app: web.Application, n: Any) -> str | None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        return "max_pending: expected a positive integer"
    app[ROUTER_KEY].core.devices.max_pending = n
    return None


def _apply_max_streams(app: web.Application, n: Any) -> str | None:
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_STREAMS:
        return f"max_concurrent_streams: expected 1 to {MAX_STREAMS}"
    app[OPTIONS_KEY].max_concurrent_streams = n
    return None


def _apply_strict(app: web.Application, flag: Any) -> str | None:
    if not isinstance(flag, bool):
        return "strict_before_ack: expected true or false"
    app[OPTIONS_KEY].strict_before_ack = flag
    return None


# setting -> how it is checked and applied (an error message, or None), in this order
_APPLY: dict[str, Callable[[web.Application, Any], str | None]] = {
    "quota": _apply_quota,
    "oauth": _apply_oauth,
    "projects": _apply_projects,
    "max_pending": _apply_max_pending,
    "max_concurrent_streams": _apply_max_streams,
    "strict_before_ack": _apply_strict,
}


async def post_config(request: web.Request) -> web.Response:
    body = await _body(request)
    if not isinstance(body, dict):
        return _bad("expected a JSON object", "body")
    for key in body:
        if key not in _APPLY:
            return _bad(f"unknown setting {key!r} (expected {', '.join(_APPLY)})", key)
    for key, apply in _APPLY.items():
        if key in body:
            err = apply(request.app, body[key])
            if err:
                return _bad(err, key)
    return web.json_response(_settings(request.app))


async def post_errors(request: web.Request) -> web.Response:
    router = request.app[ROUTER_KEY]
    body = await _body(request)
    if not isinstance(body, dict):
        return _bad("expected a JSON object", "body")
    code = body.get("errorCode")
    count = body.get("count", 1)
    retry_after = body.get("retry_after")
    token = body.get("token")
    message = body.get("message", "")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        return _bad("count: expected a positive integer", "count")
    if retry_after is not None and (
        isinstance(retry_after, bool) or not isinstance(retry_after, int | float) or retry_after < 0
    ):
        return _bad("retry_after: expected a non-negative number of seconds", "retry_after")
    if token is not None and not isinstance(token, str):
        return _bad("token: expected a registration token", "token")
    if not isinstance(message, str):
        return _bad("message: expected a string", "message")
    try:
        router.core.forced.add(ForcedError(str(code), count, retry_after, token, message))
    except ValueError as exc:
        return _bad(f"errorCode: {exc}", "errorCode")
    return web.json_response(_settings(request.app), status=201)


async def delete_errors(request: web.Request) -> web.Response:
    router = request.app[ROUTER_KEY]
    router.core.forced.queue.clear()
    return web.json_response(_settings(request.app))


async def expire_tokens(request: web.Request) -> web.Response:
    router = request.app[ROUTER_KEY]
    return web.json_response({"expired": router.core.tokens.expire_all()})


async def set_device(request: web.Request) -> web.Response:
    router = request.app[ROUTER_KEY]
    dev = router.core.registry.devices.get(request.match_info["device_id"])
    if dev is None or dev.provider != "fcm":
        return web.json_response(
            {"error": f"no FCM device {request.match_info['device_id']!r}"}, status=404
        )
    body = await _body(request)
    platform = body.get("platform") if isinstance(body, dict) else None
    if platform not in PLATFORMS:
        return _bad(f"platform: expected one of {', '.join(PLATFORMS)}", "platform")
    dev.meta["platform"] = platform
    return web.json_response(
        {
            "id": dev.id,
            "platform": platform,
            "topics": sorted(dev.topics),
            "pending": len(dev.pending),
        }
    )


def register_control(app: web.Application, router: FcmRouter, options: ListenerOptions) -> None:
    """``options``: the ``fcm`` listener's, whose stream limit the config changes."""
    app[ROUTER_KEY] = router
    app[OPTIONS_KEY] = options
    app.router.add_get("/_sim/fcm", get_settings)
    app.router.add_post("/_sim/fcm/config", post_config)
    app.router.add_post("/_sim/fcm/errors", post_errors)
    app.router.add_delete("/_sim/fcm/errors", delete_errors)
    app.router.add_post("/_sim/fcm/oauth/expire", expire_tokens)
    app.router.add_post("/_sim/fcm/devices/{device_id}", set_device)
