"""The sender's Live Activity API: broadcast channels, broadcasts and pushes to Live Activity
tokens (APNs), validated as a device would read them, sent at once.

- ``POST /v1/live-activities`` ``{"token", "event": "start"|"update"|"end",
  "content_state", "attributes_type"?, "attributes"?, "input_push_channel"?, "timestamp"?,
  "stale_date"?, "dismissal_date"?, "alert"?, "relevance_score"?, "priority"?,
  "expiration"?, "environment"?, "data"?}``: to a push-to-start token (``start``, which
  needs ``attributes_type``, ``attributes`` and ``content_state``) or an activity's token;
- ``POST /v1/live-activities/broadcasts`` ``{"channel_id", "event": "update"|"end", ...}``:
  a broadcast to everyone subscribed to the channel;
- ``POST /v1/live-activities/channels`` ``{"message_storage_policy"?: 0|1,
  "environment"?}`` (201 ``{"channel_id"}``), ``GET /v1/live-activities/channels`` and
  ``POST /v1/live-activities/channels/delete`` ``{"channel_id"}``.

Answers: 200 ``{"status": "sent", "apns": {...}}``; 502 with APNs' answer when it refused
(``apns.reason``); 400 naming the field for bad input; 501 without APNs configured.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from sender.api.validate import ValidationError
from sender.providers.apns import ApnsClient
from sender.providers.liveactivity import Answer, LiveActivityClient, live_activity_payload
from sender.service import Sender
from sender.transport.pool import client_ssl_context

ENVIRONMENTS = ("production", "sandbox")
EVENTS = ("start", "update", "end")
_HEX = re.compile(r"^(?:[0-9a-fA-F]{2}){32,200}$")
_BASE64 = re.compile(r"^[A-Za-z0-9+/]{1,62}={0,2}$")
MAX_BODY = 64 * 1024


@dataclass(frozen=True, slots=True)
class LiveActivitySend:
    environment: str
    payload: bytes
    priority: int
    expiration: int | None
    target: str  # the token, or the broadcast channel id


def _obj(value: Any, name: str, required: bool = False) -> dict[str, Any] | None:
    if value is None and not required:
        return None
    if not isinstance(value, dict):
        raise ValidationError(f"{name}: expected an object", name)
    return value


def _int(body: dict[str, Any], name: str, default: int | None = None) -> int | None:
    value = body.get(name, default)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValidationError(f"{name}: expected whole seconds since the epoch", name)
    return value


def _choice(body: dict[str, Any], name: str, allowed: tuple[Any, ...], default: Any) -> Any:
    value = body.get(name, default)
    if value not in allowed:
        raise ValidationError(f"{name}: expected one of {', '.join(map(str, allowed))}", name)
    return value


def _target(body: dict[str, Any], broadcast: bool) -> str:
    name = "channel_id" if broadcast else "token"
    value = body.get(name)
    pattern, what = (_BASE64, "a base64 channel id") if broadcast else (_HEX, "a hex token")
    if not isinstance(value, str) or not pattern.match(value):
        raise ValidationError(f"{name}: expected {what}", name)
    return value


def _start_fields(body: dict[str, Any]) -> dict[str, Any]:
    kind = body.get("attributes_type")
    if not isinstance(kind, str) or not kind:
        raise ValidationError(
            "attributes_type: a start needs a non-empty string", "attributes_type"
        )
    attributes = _obj(body.get("attributes"), "attributes", required=True)
    channel = body.get("input_push_channel")
    if channel is not None and (not isinstance(channel, str) or not _BASE64.match(channel)):
        raise ValidationError("input_push_channel: expected a channel id", "input_push_channel")
    return {"attributes_type": kind, "attributes": attributes, "input_push_channel": channel}


def live_activity_send(body: Any, now: float, *, broadcast: bool) -> LiveActivitySend:
    """A validated Live Activity push (or broadcast), or :class:`ValidationError`."""
    b = _obj(body, "body", required=True)
    assert b is not None
    target = _target(b, broadcast)
    events = EVENTS[1:] if broadcast else EVENTS
    event = _choice(b, "event", events, None)
    state = _obj(b.get("content_state"), "content_state", required=event != "end")
    extra = _start_fields(b) if event == "start" else {}
    score = b.get("relevance_score")
    if score is not None and (
        isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1
    ):
        raise ValidationError("relevance_score: expected a number from 0 to 1", "relevance_score")
    timestamp = _int(b, "timestamp", int(now))
    assert timestamp is not None
    payload = live_activity_payload(
        event,
        timestamp,
        content_state=state,
        stale_date=_int(b, "stale_date"),
        dismissal_date=_int(b, "dismissal_date"),
        alert=_obj(b.get("alert"), "alert"),
        relevance_score=score,
        data=_obj(b.get("data"), "data"),
        **extra,
    )
    priorities = (1, 5, 10) if broadcast else (5, 10)
    return LiveActivitySend(
        _choice(b, "environment", ENVIRONMENTS, "production"),
        payload,
        _choice(b, "priority", priorities, 10),
        _int(b, "expiration"),
        target,
    )


# -- the routes -------------------------------------------------------------------------------

SENDER_KEY: web.AppKey[Sender] = web.AppKey("live_sender")
CLIENT_KEY: web.AppKey[dict[str, LiveActivityClient]] = web.AppKey("live_client")


def _client(request: web.Request) -> LiveActivityClient:
    held = request.app[CLIENT_KEY]
    if "apns" not in held:
        sender = request.app[SENDER_KEY]
        apns = sender.dispatcher.clients.get("apns") if sender.dispatcher is not None else None
        if not isinstance(apns, ApnsClient):
            raise web.HTTPNotImplemented(
                text=json.dumps({"error": "APNs is not configured"}),
                content_type="application/json",
            )
        cfg = sender.config
        urls = {"production": cfg.apns_channels_url, "sandbox": cfg.apns_channels_sandbox_url}
        held["apns"] = LiveActivityClient(apns, urls, client_ssl_context(cfg.ca_for("apns")))
    return held["apns"]


def _answer(answer: Answer, ok_status: int = 200, **extra: Any) -> web.Response:
    body: dict[str, Any] = {"apns": answer.to_json(), **extra}
    if answer.status is not None and 200 <= answer.status < 300:
        return web.json_response({"status": "sent", **body}, status=ok_status)
    return web.json_response({"status": "refused", "error": "APNs refused it", **body}, status=502)


async def _json_body(request: web.Request) -> Any:
    raw = await request.read()
    if len(raw) > MAX_BODY:
        raise ValidationError(f"body: larger than {MAX_BODY} bytes", "body")
    try:
        return json.loads(raw) if raw else {}
    except ValueError as exc:
        raise ValidationError(f"body: not valid JSON ({exc})", "body") from exc


def _bad(exc: ValidationError) -> web.Response:
    return web.json_response({"error": exc.message, "field": exc.field}, status=400)


Handler = Callable[[web.Request, Any], Awaitable[web.Response]]


def _route(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def run(request: web.Request) -> web.Response:
        try:
            return await handler(request, await _json_body(request))
        except ValidationError as exc:
            return _bad(exc)
        except LookupError as exc:
            return web.json_response({"error": str(exc)}, status=501)

    return run


async def push(request: web.Request, body: Any) -> web.Response:
    send = live_activity_send(body, request.app[SENDER_KEY].clock.time(), broadcast=False)
    client = _client(request)
    answer = await client.push(
        send.environment, send.target, send.payload, priority=send.priority,
        expiration=send.expiration,
    )  # fmt: skip
    return _answer(answer, apns_id=answer.headers.get("apns-id"))


async def broadcast(request: web.Request, body: Any) -> web.Response:
    send = live_activity_send(body, request.app[SENDER_KEY].clock.time(), broadcast=True)
    answer = await _client(request).broadcast(
        send.environment, send.target, send.payload, priority=send.priority,
        expiration=send.expiration,
    )  # fmt: skip
    return _answer(answer, apns_request_id=answer.headers.get("apns-request-id"))


async def create_channel(request: web.Request, body: Any) -> web.Response:
    b = _obj(body, "body", required=True)
    assert b is not None
    env = _choice(b, "environment", ENVIRONMENTS, "production")
    policy = _choice(b, "message_storage_policy", (0, 1), 1)
    answer = await _client(request).create_channel(env, policy)
    channel = answer.headers.get("apns-channel-id")
    return _answer(answer, 201, channel_id=channel, environment=env)


async def delete_channel(request: web.Request, body: Any) -> web.Response:
    b = _obj(body, "body", required=True)
    assert b is not None
    env = _choice(b, "environment", ENVIRONMENTS, "production")
    channel = _target(b, broadcast=True)
    return _answer(await _client(request).delete_channel(env, channel), channel_id=channel)


async def list_channels(request: web.Request) -> web.Response:
    env = request.query.get("environment", "production")
    if env not in ENVIRONMENTS:
        return _bad(ValidationError("environment: expected production or sandbox", "environment"))
    try:
        answer = await _client(request).list_channels(env)
    except LookupError as exc:
        return web.json_response({"error": str(exc)}, status=501)
    channels = answer.body.get("channels", []) if isinstance(answer.body, dict) else []
    return _answer(answer, channels=channels, environment=env)


def add_live_activity_routes(app: web.Application, sender: Sender) -> None:
    app[SENDER_KEY] = sender
    app[CLIENT_KEY] = {}
    app.router.add_post("/v1/live-activities", _route(push))
    app.router.add_post("/v1/live-activities/broadcasts", _route(broadcast))
    app.router.add_post("/v1/live-activities/channels", _route(create_channel))
    app.router.add_get("/v1/live-activities/channels", list_channels)
    app.router.add_post("/v1/live-activities/channels/delete", _route(delete_channel))

    async def close(app: web.Application) -> None:
        for client in app[CLIENT_KEY].values():
            client.close()

    app.on_cleanup.append(close)
