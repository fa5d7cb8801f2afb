"""Fault control routes: apply, list and clear faults at run time; read the record.

- ``POST /_sim/faults``: one fault, a list, or ``{"faults": [...]}``; windows count from
  the moment of the POST unless a fault says ``"anchor": "run"``. 201 with the faults as
  planned; 400 ``{"error", "field"}`` if any is wrong (then nothing is applied).
- ``GET /_sim/faults``: the plan with each fault's state (pending/active/expired) and counts.
- ``DELETE /_sim/faults/{id}``, ``DELETE /_sim/faults``: remove one, or all.
- ``GET /_sim/timeline``: windows opened/closed, totals, per-second buckets, churn events.
- ``POST /_sim/timeline/start``: restart the run clock now (scenario windows count from here).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from simulator.control import bad_request
from simulator.faults.parse import parse_faults
from simulator.faults.runtime import FaultRuntime
from simulator.faults.spec import FaultSpecError
from simulator.parts import Contribution

SOURCE = "POST /_sim/faults"

RUNTIME_KEY: web.AppKey[FaultRuntime] = web.AppKey("fault_runtime")


def _rt(request: web.Request) -> FaultRuntime:
    return request.app[RUNTIME_KEY]


async def apply_faults(request: web.Request) -> web.Response:
    rt = _rt(request)
    raw = await request.read()
    try:
        body: Any = json.loads(raw) if raw else None
    except (ValueError, RecursionError) as exc:
        return bad_request(f"body is not valid JSON: {exc}")
    if body is None:
        return bad_request('expected a fault object, a list of faults, or {"faults": [...]}')
    single = isinstance(body, dict) and "kind" in body
    try:
        specs = parse_faults([body] if single else body, SOURCE, prefix="faults", anchor="now")
    except FaultSpecError as exc:
        field = exc.field.removeprefix("faults[0].") if single else exc.field
        return bad_request(f"{field}: {exc.message}", field)
    if not specs:
        return bad_request("expected at least one fault", "faults")
    try:
        added = rt.apply(specs)
    except ValueError as exc:
        return bad_request(str(exc), "id")
    now = rt.now()
    return web.json_response(
        {"now": round(now, 6), "faults": [f.describe(now) for f in added]}, status=201
    )


async def list_faults(request: web.Request) -> web.Response:
    rt = _rt(request)
    return web.json_response(
        {
            "now": round(rt.now(), 6),
            "seed": rt.seed,
            "auth": rt.auth.describe(),
            "faults": rt.describe(),
        }
    )


async def delete_fault(request: web.Request) -> web.Response:
    rt = _rt(request)
    fault_id = request.match_info["fault_id"]
    fault = rt.remove(fault_id)
    if fault is None:
        return web.json_response({"error": f"no fault {fault_id!r}"}, status=404)
    return web.json_response({"removed": [fault.id]})


async def clear_faults(request: web.Request) -> web.Response:
    gone = _rt(request).clear()
    return web.json_response({"removed": [f.id for f in gone]})


async def timeline(request: web.Request) -> web.Response:
    rt = _rt(request)
    return web.json_response(rt.record.timeline(rt.now()))


async def start_timeline(request: web.Request) -> web.Response:
    """Restart the run clock now: scenario windows count from this moment (the load's start)."""
    rt = _rt(request)
    delta = rt.rearm()
    return web.json_response({"started_at": rt.record.started_wall, "shifted_by": round(delta, 6)})


def faults_contribution(rt: FaultRuntime) -> Contribution:
    """The fault plan's part of a simulator: its control routes, stats and metrics."""

    def register(app: web.Application) -> None:
        register_routes(app, rt)

    return Contribution(
        "faults",
        control=register,
        stats=lambda: rt.record.stats(),
        prometheus=lambda: rt.record.prometheus(),
    )


def register_routes(app: web.Application, rt: FaultRuntime) -> None:
    app[RUNTIME_KEY] = rt
    app.router.add_post("/_sim/timeline/start", start_timeline)
    app.router.add_post("/_sim/faults", apply_faults)
    app.router.add_get("/_sim/faults", list_faults)
    app.router.add_delete("/_sim/faults", clear_faults)
    app.router.add_delete("/_sim/faults/{fault_id}", delete_fault)
    app.router.add_get("/_sim/timeline", timeline)
