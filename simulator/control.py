"""The control API (JSON over HTTP/1.1 under ``/_sim/``), on aiohttp.

This is how tests, the harness and people at a terminal mint devices, uninstall and
reinstall apps, read inboxes and read the simulator's ground truth.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from aiohttp import web

from simulator import control_guard as guard
from simulator.parts import ControlRoutes
from simulator.state.devices import PROVIDERS, Device, DeviceRegistry, PopulationFull, describe
from simulator.state.export import PAGE, csv_chunks, docs_json, select

SLICE = 500  # devices written between two turns of the event loop


class ControlHost(Protocol):
    """What the control API reads and does of the running simulator."""

    @property
    def registry(self) -> DeviceRegistry: ...

    @property
    def endpoints(self) -> Mapping[str, str]: ...

    @property
    def webpush_base_url(self) -> str: ...

    def set_online(self, dev: Device, online: bool) -> None: ...

    def stats_snapshot(self) -> dict[str, Any]: ...

    def prometheus(self) -> str: ...


SIM_KEY: web.AppKey[ControlHost] = web.AppKey("simulator")


def bad_request(message: str, field: str | None = None) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if field is not None:
        body["field"] = field
    return web.json_response(body, status=400)


async def read_json(request: web.Request) -> Any:
    try:
        raw = await request.read()
        return json.loads(raw) if raw else {}
    except (ValueError, RecursionError) as exc:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": f"body is not valid JSON: {exc}"}),
            content_type="application/json",
        ) from exc


def _sim(request: web.Request) -> ControlHost:
    return request.app[SIM_KEY]


def _device_or_404(request: web.Request) -> Any:
    sim = _sim(request)
    dev = sim.registry.devices.get(request.match_info["device_id"])
    if dev is None:
        raise web.HTTPNotFound(
            text=json.dumps({"error": f"no device {request.match_info['device_id']!r}"}),
            content_type="application/json",
        )
    return dev


async def mint_devices(request: web.Request) -> web.StreamResponse:
    sim = _sim(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        return bad_request("expected a JSON object")
    provider = body.get("provider")
    if provider not in PROVIDERS:
        return bad_request(
            f"provider: expected one of {', '.join(PROVIDERS)}, got {provider!r}", "provider"
        )
    count = body.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        return bad_request(f"count: expected a positive integer, got {count!r}", "count")
    app = body.get("app", body.get("bundle_id", body.get("project_id")))
    if app is not None and (not isinstance(app, str) or not app):
        return bad_request("app: expected a non-empty string", "app")
    environment = body.get("environment", "production")
    if environment not in ("production", "sandbox"):
        return bad_request("environment: expected 'production' or 'sandbox'", "environment")
    ask = body.get("application_server_key")
    if ask is not None and not isinstance(ask, str):
        return bad_request(
            "application_server_key: expected a base64url string", "application_server_key"
        )
    try:
        minted = sim.registry.mint(
            provider, count, app=app, environment=environment, application_server_key=ask
        )
    except PopulationFull as exc:
        return bad_request(str(exc), "count")
    first, last = minted[0].number, minted[-1].number
    # past a page: the count, and the rest from GET "next" (pages of PAGE devices)
    extra = f'"count":{count},' if count > PAGE else ""
    return await _page(request, provider, first - 1, last, PAGE, extra, status=201)


async def _page(
    request: web.Request,
    provider: str | None,
    after: int,
    until: int,
    limit: int,
    extra: str = "",
    status: int = 200,
) -> web.StreamResponse:
    """``{"devices": [...], "next": URL or null}``: a page of devices, its JSON streamed a
    slice of :data:`SLICE` devices at a time (a page of 100,000 never exists whole, as
    dictionaries or as text), with a turn of the event loop between slices so that the
    provider listeners keep answering while a large page is written (Web Push derives every
    subscription's keys: 100,000 of them take seconds)."""
    sim = _sim(request)
    chosen, more = select(sim.registry, provider, after, until, limit)
    next_url = None
    if more is not None:
        kind = f"provider={provider}&" if provider else ""
        next_url = f"/_sim/devices?{kind}after={more}&until={until}&limit={limit}"
    resp = web.StreamResponse(status=status, headers={"content-type": "application/json"})
    await resp.prepare(request)
    sep = b'{"devices":['
    for c, numbers in chosen:
        for i in range(0, len(numbers), SLICE):
            text = docs_json(sim.registry, c, numbers[i : i + SLICE], sim.webpush_base_url)
            await resp.write(sep + text.encode())
            sep = b","
            await asyncio.sleep(0)
    if sep != b",":
        await resp.write(sep)
    await resp.write(f'],{extra}"next":{json.dumps(next_url)}}}'.encode())
    await resp.write_eof()
    return resp


def _query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise web.HTTPBadRequest(
            text=json.dumps(
                {"error": f"{name}: expected an integer from {low} to {high}", "field": name}
            ),
            content_type="application/json",
        )
    return int(text)


async def list_devices(request: web.Request) -> web.StreamResponse:
    """Every device (of ``provider``) in pages of at most ``limit`` (default and most: PAGE),
    numbered after ``after`` up to ``until``; ``next`` is the next page's URL, or null."""
    sim = _sim(request)
    provider = request.query.get("provider")
    size = sim.registry.population.size
    after = _query_int(request, "after", 0, 0, size)
    until = _query_int(request, "until", size, 0, size)
    limit = _query_int(request, "limit", PAGE, 1, PAGE)
    return await _page(request, provider, after, until, limit)


async def declare_population(request: web.Request) -> web.Response:
    """``{"apns": 5000000, ...}``: that many more devices, not returned (read them from
    ``GET /_sim/population/{provider}.csv`` or in pages from ``GET /_sim/devices``)."""
    sim = _sim(request)
    body = await read_json(request)
    if not isinstance(body, dict) or not body:
        return bad_request('expected a JSON object of counts, e.g. {"apns": 1000000}')
    for provider, count in body.items():
        if provider not in PROVIDERS:
            return bad_request(f"expected counts for {', '.join(PROVIDERS)}", str(provider))
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            return bad_request(f"{provider}: expected a count (0 or more), got {count!r}", provider)
    room = sim.registry.population.capacity()
    if sum(body.values()) > room:
        field = max(body, key=lambda p: body[p])
        return bad_request(
            f"{field}: at most {room} more devices fit in this machine's free memory; "
            f"asked for {sum(body.values())} in all",
            field,
        )
    declared = {}
    for provider, count in body.items():
        if count:
            run = sim.registry.mint(provider, count)
            declared[provider] = {"count": count, "first": run[0].id, "last": run[-1].id}
    return web.json_response({"declared": declared, **_population(sim)}, status=201)


def _population(sim: ControlHost) -> dict[str, Any]:
    return {
        "devices": sim.registry.counts(),
        "capacity": sim.registry.population.capacity(),
        "csv": {p: f"/_sim/population/{p}.csv" for p in PROVIDERS},
    }


async def population(request: web.Request) -> web.Response:
    return web.json_response(_population(_sim(request)))


async def population_csv(request: web.Request) -> web.StreamResponse:
    """The provider's installed devices, one CSV row each, streamed as they are computed."""
    sim = _sim(request)
    provider = request.match_info["provider"]
    if provider not in PROVIDERS:
        raise web.HTTPNotFound(
            text=json.dumps({"error": f"no provider {provider!r}"}),
            content_type="application/json",
        )
    resp = web.StreamResponse(headers={"content-type": "text/csv; charset=utf-8"})
    await resp.prepare(request)
    for chunk in csv_chunks(sim.registry, provider, sim.webpush_base_url):
        await resp.write(chunk.encode())
    await resp.write_eof()
    return resp


async def get_device(request: web.Request) -> web.Response:
    dev = _device_or_404(request)
    return web.json_response(describe(dev, _sim(request).webpush_base_url))


async def device_inbox(request: web.Request) -> web.Response:
    dev = _device_or_404(request)
    return web.json_response({"device_id": dev.id, "token": dev.token, "messages": dev.inbox})


async def uninstall_device(request: web.Request) -> web.Response:
    dev = _device_or_404(request)
    sim = _sim(request)
    sim.registry.uninstall(dev.id)
    return web.json_response(describe(dev, sim.webpush_base_url))


async def rotate_device(request: web.Request) -> web.Response:
    dev = _device_or_404(request)
    sim = _sim(request)
    sim.registry.rotate(dev.id)
    return web.json_response(describe(dev, sim.webpush_base_url))


async def set_online(request: web.Request) -> web.Response:
    dev = _device_or_404(request)
    sim = _sim(request)
    body = await read_json(request)
    online = body.get("online") if isinstance(body, dict) else None
    if not isinstance(online, bool):
        return bad_request("online: expected true or false", "online")
    sim.set_online(dev, online)
    return web.json_response(describe(dev, sim.webpush_base_url))


def _since(request: web.Request) -> int:
    try:
        return int(request.query.get("since", "0"))
    except ValueError as exc:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "since: expected an integer"}),
            content_type="application/json",
        ) from exc


async def token_feed(request: web.Request) -> web.Response:
    sim = _sim(request)
    events = sim.registry.feed_since(_since(request))
    return web.json_response(
        {"events": events, "last_seq": events[-1]["seq"] if events else _since(request)}
    )


async def deliveries(request: web.Request) -> web.Response:
    sim = _sim(request)
    items = sim.registry.deliveries_since(_since(request))
    last = items[-1]["seq"] if items else _since(request)
    return web.json_response({"deliveries": items, "last_seq": last})


async def dead_token_sends(request: web.Request) -> web.Response:
    """Every dead token a sender kept sending to: when it died, first/last rejection, count."""
    sim = _sim(request)
    return web.json_response({"tokens": list(sim.registry.rejections.values())})


async def stats(request: web.Request) -> web.Response:
    return web.json_response(_sim(request).stats_snapshot())


async def endpoints(request: web.Request) -> web.Response:
    return web.json_response(_sim(request).endpoints)


async def metrics(request: web.Request) -> web.Response:
    return web.Response(text=_sim(request).prometheus(), content_type="text/plain", charset="utf-8")


@web.middleware
async def json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except web.HTTPException as exc:
        if exc.content_type != "application/json":
            return web.json_response({"error": exc.reason}, status=exc.status)
        raise


def make_control_app(sim: ControlHost, parts: Iterable[ControlRoutes] = ()) -> web.Application:
    """The control API of ``sim``, with each part's routes (``parts``) added after its own."""
    app = web.Application(
        middlewares=[guard.middleware(lambda: sim.endpoints), json_errors],
        client_max_size=16 * 1024 * 1024,
    )
    app[SIM_KEY] = sim
    app.router.add_post("/_sim/devices", mint_devices)
    app.router.add_get("/_sim/devices", list_devices)
    app.router.add_post("/_sim/population", declare_population)
    app.router.add_get("/_sim/population", population)
    app.router.add_get("/_sim/population/{provider}.csv", population_csv)
    app.router.add_get("/_sim/devices/{device_id}", get_device)
    app.router.add_delete("/_sim/devices/{device_id}", uninstall_device)
    app.router.add_get("/_sim/devices/{device_id}/inbox", device_inbox)
    app.router.add_post("/_sim/devices/{device_id}/rotate", rotate_device)
    app.router.add_post("/_sim/devices/{device_id}/online", set_online)
    app.router.add_get("/_sim/feed", token_feed)
    app.router.add_get("/_sim/deliveries", deliveries)
    app.router.add_get("/_sim/stats", stats)
    app.router.add_get("/_sim/dead_tokens", dead_token_sends)
    app.router.add_get("/_sim/endpoints", endpoints)
    app.router.add_get("/metrics", metrics)
    for register in parts:
        register(app)
    return app
