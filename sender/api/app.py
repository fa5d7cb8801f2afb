"""The sender's HTTP/1.1 JSON API (aiohttp): devices, notifications, receipts, health, metrics."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from sender.api.validate import (
    ValidationError,
    device_request,
    notification_request,
    topic_subscription_request,
)
from sender.providers.fcm import IidError, OAuthError
from sender.service import Sender
from sender.transport.streams import H2Error

SENDER_KEY = web.AppKey("sender", Sender)
MAX_BODY = 256 * 1024


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(data, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
    )


def _error(message: str, field: str | None = None, status: int = 400) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if field is not None:
        body["field"] = field
    return _json(body, status)


async def _body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw:
        raise ValidationError("body: expected a JSON object", "body")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ValidationError(f"body: invalid JSON ({exc.args[0]})", "body") from exc


async def post_device(request: web.Request) -> web.Response:
    sender = request.app[SENDER_KEY]
    try:
        d = device_request(await _body(request))
    except ValidationError as exc:
        return _error(exc.message, exc.field)
    reg = sender.store.register(
        d.user_id,
        d.provider,
        d.token,
        device_id=d.device_id,
        app=d.app,
        environment=d.environment,
        subscription=d.subscription,
    )
    return _json(reg.to_json(), 201)


async def delete_device(request: web.Request) -> web.Response:
    sender = request.app[SENDER_KEY]
    if not sender.store.delete(request.match_info["id"]):
        return _error("no such device registration", None, 404)
    return _json({"id": request.match_info["id"], "deleted": True})


async def list_devices(request: web.Request) -> web.Response:
    sender = request.app[SENDER_KEY]
    status = request.query.get("status")
    if status is not None and status not in ("active", "dead"):
        return _error("status: expected active or dead", "status")
    regs = sender.store.list_devices(request.query.get("user_id"), status)
    return _json({"devices": [r.to_json() for r in regs]})


async def post_notification(request: web.Request) -> web.Response:
    sender = request.app[SENDER_KEY]
    try:
        req = notification_request(await _body(request))
        nid, targets, duplicate = await sender.accept(req)
    except ValidationError as exc:
        return _error(exc.message, exc.field)
    body: dict[str, Any] = {"id": nid, "status": "accepted"}
    if duplicate:
        body["duplicate"] = True
        doc = sender.outbox.notification(nid)
        body["targets"] = doc["targets"] if doc else 0
    else:
        body["targets"] = targets
    return _json(body, 202)


async def get_notification(request: web.Request) -> web.Response:
    sender = request.app[SENDER_KEY]
    doc = sender.outbox.notification(request.match_info["id"])
    if doc is None:
        return _error("no such notification", None, 404)
    return _json(doc)


async def post_receipt(request: web.Request) -> web.Response:
    sender = request.app[SENDER_KEY]
    try:
        b = await _body(request)
        if not isinstance(b, dict):
            raise ValidationError("body: expected an object", "body")
        for key in ("notification_id", "token"):
            if not isinstance(b.get(key), str) or not b[key]:
                raise ValidationError(f"{key}: expected a non-empty string", key)
        if b.get("event") not in ("delivered", "opened"):
            raise ValidationError("event: expected delivered or opened", "event")
    except ValidationError as exc:
        return _error(exc.message, exc.field)
    if not sender.receipt(b["notification_id"], b["token"], b["event"]):
        return _error("no delivery of that notification to that token", None, 404)
    return _json({"status": "recorded"}, 202)


async def post_topic_subscribers(request: web.Request) -> web.Response:
    """``POST /v1/topics/{topic}/subscribers {"tokens": [...]}``: FCM topic subscription."""
    sender = request.app[SENDER_KEY]
    try:
        sub = topic_subscription_request(request.match_info["topic"], await _body(request))
    except ValidationError as exc:
        return _error(exc.message, exc.field)
    try:
        results = await sender.subscribe(sub.topic, sub.tokens)
    except LookupError as exc:
        return _error(str(exc), None, 501)
    except (IidError, OAuthError, H2Error, OSError, ValueError, KeyError) as exc:
        return _error(f"FCM topic subscription failed: {exc}"[:300], None, 502)
    ok = sum(1 for r in results if r["status"] == "subscribed")
    return _json(
        {"topic": sub.topic, "subscribed": ok, "failed": len(results) - ok, "results": results}
    )


async def health(request: web.Request) -> web.Response:
    sender = request.app[SENDER_KEY]
    return _json({"status": "ok", "queue_depth": sender.queue_depth})


async def metrics(request: web.Request) -> web.Response:
    sender = request.app[SENDER_KEY]
    return web.Response(body=sender.metrics.render(), content_type="text/plain", charset="utf-8")


def make_app(sender: Sender) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
    app[SENDER_KEY] = sender
    app.router.add_post("/v1/devices", post_device)
    app.router.add_get("/v1/devices", list_devices)
    app.router.add_delete("/v1/devices/{id}", delete_device)
    app.router.add_post("/v1/notifications", post_notification)
    app.router.add_get("/v1/notifications/{id}", get_notification)
    app.router.add_post("/v1/receipts", post_receipt)
    app.router.add_post("/v1/topics/{topic}/subscribers", post_topic_subscribers)
    app.router.add_get("/v1/health", health)
    app.router.add_get("/metrics", metrics)

    async def on_startup(app: web.Application) -> None:
        await sender.start()

    async def on_cleanup(app: web.Application) -> None:
        await sender.stop()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app
