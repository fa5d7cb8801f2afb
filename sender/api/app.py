"""The sender's HTTP/1.1 JSON API (aiohttp): devices, notifications (one, or a batch of up
to 500 in one commit), receipts, health, metrics.

A body over its limit is a 413 naming the limit (256 KiB; a batch 4 MiB); a store that
cannot be reached is a 503 with Retry-After, and nothing of that request was accepted.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from sender.api.endpoints import check_device
from sender.api.liveactivity import add_live_activity_routes
from sender.api.validate import (
    MAX_BATCH,
    BatchTooLarge,
    ValidationError,
    batch_request,
    device_request,
    entry_error,
    notification_request,
    topic_subscription_request,
    unstorable,
)
from sender.providers.fcm import IidError, OAuthError
from sender.service import Sender
from sender.storage.backend import StoreUnavailable
from sender.transport.streams import H2Error

SENDER_KEY = web.AppKey("sender", Sender)
MAX_BODY = 256 * 1024
MAX_BATCH_BODY = 4 * 1024 * 1024
RETRY_AFTER = 1  # seconds, with a 503 while the store is unreachable
BATCH_PARTIAL = 207  # a batch some of whose entries were refused


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"body: over the {limit}-byte limit")
        self.limit = limit


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


async def _body(request: web.Request, limit: int = MAX_BODY) -> Any:
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise BodyTooLarge(MAX_BATCH_BODY) from None
    if len(raw) > limit:
        raise BodyTooLarge(limit)
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
        check_device(d, sender.endpoints)
    except ValidationError as exc:
        return _error(exc.message, exc.field)
    reg = await sender.storage.register(
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
    rid = request.match_info["id"]
    if unstorable(rid) or not await sender.storage.delete_device(rid):
        return _error("no such device registration", None, 404)
    return _json({"id": request.match_info["id"], "deleted": True})


async def list_devices(request: web.Request) -> web.Response:
    sender = request.app[SENDER_KEY]
    status = request.query.get("status")
    if status is not None and status not in ("active", "dead"):
        return _error("status: expected active or dead", "status")
    user = request.query.get("user_id")
    if user is not None and unstorable(user):
        return _json({"devices": []})
    regs = await sender.storage.list_devices(user, status)
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
        doc = await sender.storage.notification(nid)
        body["targets"] = doc["targets"] if doc else 0
    else:
        body["targets"] = targets
    return _json(body, 202)


async def post_batch(request: web.Request) -> web.Response:
    """``POST /v1/notifications:batch``: up to 500 notifications, committed together; each
    entry answered in order (202 with its id, or 400 with its own error). 202 when all
    were accepted, 207 when some were, 400 when none was."""
    sender = request.app[SENDER_KEY]
    try:
        entries = batch_request(await _body(request, MAX_BATCH_BODY))
    except ValidationError as exc:
        return _error(exc.message, exc.field)
    except BatchTooLarge as exc:
        return _json({"error": str(exc), "limit": MAX_BATCH, "field": "notifications"}, 413)
    valid = [(i, e) for i, e in enumerate(entries) if not isinstance(e, ValidationError)]
    answers = await sender.accept_many([e for _, e in valid])
    results: list[dict[str, Any]] = [{} for _ in entries]
    for i, e in enumerate(entries):
        if isinstance(e, ValidationError):
            results[i] = {"status": 400, "error": e.message, "field": e.field}
    for (i, _), answer in zip(valid, answers, strict=True):
        if isinstance(answer, ValidationError):
            err = entry_error(i, answer)
            results[i] = {"status": 400, "error": err.message, "field": err.field}
            continue
        nid, targets, duplicate = answer
        results[i] = {"id": nid, "status": 202, "targets": targets}
        if duplicate:
            doc = await sender.storage.notification(nid)
            results[i].update(duplicate=True, targets=doc["targets"] if doc else 0)
    accepted = sum(1 for r in results if r["status"] == 202)
    status = 202 if accepted == len(results) else BATCH_PARTIAL if accepted else 400
    return _json(
        {"accepted": accepted, "refused": len(results) - accepted, "results": results}, status
    )


async def get_notification(request: web.Request) -> web.Response:
    sender = request.app[SENDER_KEY]
    nid = request.match_info["id"]
    doc = None if unstorable(nid) else await sender.storage.notification(nid)
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
            if not isinstance(b.get(key), str) or not b[key] or unstorable(b[key]):
                raise ValidationError(f"{key}: expected a non-empty string", key)
        if b.get("event") not in ("delivered", "opened"):
            raise ValidationError("event: expected delivered or opened", "event")
    except ValidationError as exc:
        return _error(exc.message, exc.field)
    if not await sender.receipt(b["notification_id"], b["token"], b["event"]):
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
    body: dict[str, Any] = {"status": "ok", "queue_depth": sender.queue_depth}
    if sender.dispatcher is not None and sender.dispatcher.paused:
        body.update(status="degraded", database="unreachable")
    return _json(body, 200 if body["status"] == "ok" else 503)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def store_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A body over its limit: 413 naming it; the store unreachable: 503 with Retry-After
    (nothing of the request was committed)."""
    try:
        return await handler(request)
    except BodyTooLarge as exc:
        return _json({"error": str(exc), "limit": exc.limit, "field": "body"}, 413)
    except StoreUnavailable as exc:
        resp = _json({"error": f"the sender's database is unavailable: {exc}"[:300]}, 503)
        resp.headers["Retry-After"] = str(RETRY_AFTER)
        return resp


async def metrics(request: web.Request) -> web.Response:
    sender = request.app[SENDER_KEY]
    return web.Response(body=sender.metrics.render(), content_type="text/plain", charset="utf-8")


def make_app(sender: Sender) -> web.Application:
    app = web.Application(client_max_size=MAX_BATCH_BODY, middlewares=[store_errors])
    app[SENDER_KEY] = sender
    app.router.add_post("/v1/devices", post_device)
    app.router.add_get("/v1/devices", list_devices)
    app.router.add_delete("/v1/devices/{id}", delete_device)
    app.router.add_post("/v1/notifications", post_notification)
    app.router.add_post("/v1/notifications:batch", post_batch)
    app.router.add_get("/v1/notifications/{id}", get_notification)
    app.router.add_post("/v1/receipts", post_receipt)
    app.router.add_post("/v1/topics/{topic}/subscribers", post_topic_subscribers)
    app.router.add_get("/v1/health", health)
    app.router.add_get("/metrics", metrics)
    add_live_activity_routes(app, sender)

    async def on_startup(app: web.Application) -> None:
        await sender.start()

    async def on_cleanup(app: web.Application) -> None:
        await sender.stop()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app
