"""The scenario's fault plan during a run: armed at the start of load, its windows read back
from the simulator's timeline and put on the load's time axis, and (when posted) cleared.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from loadtests.run import HarnessError
from loadtests.run.client import Client
from loadtests.scenario.model import Scenario


async def arm(client: Client, sc: Scenario, *, post: bool) -> dict[str, Any]:
    """Start the fault timeline now, at the start of load; what to note in the run's info.

    A simulator we started read the plan from the scenario file: its run clock is re-armed.
    A simulator already running (``--simulator DIR``, ``post``) gets the plan through
    ``POST /_sim/faults`` (windows count from the POST).
    """
    if not sc.faults:
        return {}
    control = client.control
    try:
        if post:
            plan = sc.faults if isinstance(sc.faults, list) else [sc.faults]
            async with client.http.post(f"{control}/_sim/faults", json={"faults": plan}) as r:
                if r.status >= 300:
                    raise HarnessError(
                        f"the simulator refused the fault plan: {r.status} {(await r.text())[:300]}"
                    )
                return {"faults_posted": [f.get("id") for f in (await r.json()).get("faults", [])]}
        async with client.http.post(f"{control}/_sim/timeline/start", json={}) as r:
            return {"faults_armed": r.status < 300}
    except aiohttp.ClientError as exc:
        raise HarnessError(f"cannot arm the fault plan: {exc}") from exc


async def clear_posted(client: Client, ids: list[Any]) -> None:
    """Remove the faults :func:`arm` posted (best effort)."""
    for fid in ids:
        try:
            async with client.http.delete(f"{client.control}/_sim/faults/{fid}"):
                pass
        except aiohttp.ClientError:
            pass


async def timeline(client: Client) -> list[dict[str, Any]]:
    """The fault windows the simulator reports (none when it does not answer)."""
    return fault_windows(await client.try_json(client.control + "/_sim/timeline", 5))


def fault_windows(body: Any) -> list[dict[str, Any]]:
    """Fault windows from ``/_sim/timeline`` (tolerant of its exact shape)."""
    items: list[Any] = []
    if isinstance(body, list):
        items = body
    elif isinstance(body, dict):
        for key in ("windows", "faults", "timeline", "events"):
            if isinstance(body.get(key), list):
                items = body[key]
                break
    out: list[dict[str, Any]] = []
    for it in items:
        if isinstance(it, dict) and (window := _window(it)) is not None:
            out.append(window)
    return out


def _window(it: dict[str, Any]) -> dict[str, Any] | None:
    start = it.get("start_wall", it.get("start_at", it.get("start", it.get("at"))))
    end = it.get("end_wall", it.get("end_at", it.get("end")))
    if not isinstance(start, (int, float)):
        return None
    if end is None and isinstance(it.get("duration"), (int, float)):
        end = start + it["duration"]
    if not isinstance(end, (int, float)):
        end = start
    window: dict[str, Any] = {
        "kind": str(it.get("kind", it.get("type", "fault"))),
        "provider": str(it.get("provider", "")),
        "start": float(start),
        "end": float(end),
        "absolute": start > 1_000_000_000,
        "count": it.get("count", it.get("injected")),
    }
    # What sets it apart from another fault of its kind (churn action, outage mode,
    # throttle scope): two ``token_churn any`` windows otherwise read the same.
    if isinstance(it.get("variant"), str) and it["variant"]:
        window["variant"] = it["variant"]
    return window


def on_load_axis(faults: list[dict[str, Any]], load_started: float) -> list[dict[str, Any]]:
    """The windows that reach into the load, each with ``start_s``/``end_s``: seconds since
    the load started (a wall-clock window is shifted, a run-relative one kept)."""
    faults = [f for f in faults if not f["absolute"] or f["end"] >= load_started - 1]
    for f in faults:
        f["start_s"] = f["start"] - load_started if f.get("absolute") else f["start"]
        f["end_s"] = f["end"] - load_started if f.get("absolute") else f["end"]
    return faults
