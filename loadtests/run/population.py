"""The run's population: devices minted by the simulator, spread over the app's users and
registered with the sender (and, for FCM, subscribed to the scenario's topics).

A user is ``{"user_id", "devices": [...]}``; a device is ``{"device_id", "provider",
"token", "subscription", "installed"}`` -- the records the Locust users start from.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from loadtests.run import HarnessError
from loadtests.run.client import Client
from loadtests.scenario.model import Scenario
from loadtests.scenario.template import registration_values, render

REGISTRATIONS_IN_FLIGHT = 16


def vapid_public_key(simulator_dir: Path) -> str | None:
    """The application-server key the simulator minted for the sender, if it did."""
    vapid = simulator_dir / "webpush" / "vapid.json"
    if not vapid.exists():
        return None
    try:
        return str(json.loads(vapid.read_text())["public_key"])
    except (ValueError, KeyError):
        return None


async def declare(client: Client, sc: Scenario) -> dict[str, int]:
    """Declare the scenario's ``population.declared`` devices in the simulator (a large
    population senders could load from its CSV token tables); what was declared."""
    counts = {p: n for p, n in sc.population.declared.items() if n > 0}
    if not counts:
        return {}
    async with client.http.post(f"{client.control}/_sim/population", json=counts) as r:
        if r.status != 201:
            raise HarnessError(f"declaring {counts}: {r.status} {(await r.text())[:300]}")
    return counts


async def mint(
    client: Client, sc: Scenario, webpush_key: str | None = None
) -> list[dict[str, Any]]:
    """Mint the scenario's devices (Web Push subscriptions for ``webpush_key``, the sender's
    VAPID public key, when given); the users that got at least one."""
    minted: list[dict[str, Any]] = []
    for provider, count in sc.population.devices.items():
        if count <= 0:
            continue
        body: dict[str, Any] = {"provider": provider, "count": count}
        if provider == "webpush" and webpush_key is not None:
            body["application_server_key"] = webpush_key
        async with client.http.post(f"{client.control}/_sim/devices", json=body) as r:
            if r.status != 201:
                raise HarnessError(
                    f"minting {count} {provider} devices: {r.status} {(await r.text())[:200]}"
                )
            minted.extend((await r.json())["devices"])
    # Interleave providers, then spread round-robin over the app's users.
    minted.sort(key=lambda d: int(str(d["id"]).rsplit("-", 1)[-1]))
    users: list[dict[str, Any]] = [
        {"user_id": f"{sc.name}-u{i + 1}", "devices": []} for i in range(sc.population.users)
    ]
    for i, d in enumerate(minted):
        users[i % len(users)]["devices"].append(
            {
                "device_id": d["id"],
                "provider": d["provider"],
                "token": d.get("token"),
                "subscription": d.get("subscription"),
                "installed": True,
            }
        )
    return [u for u in users if u["devices"]]


def device_ids(users: list[dict[str, Any]]) -> set[str]:
    return {d["device_id"] for u in users for d in u["devices"]}


async def register(client: Client, sc: Scenario, users: list[dict[str, Any]]) -> None:
    """Register every device with the sender through the scenario's register template."""
    reg = sc.target.register
    sem = asyncio.Semaphore(REGISTRATIONS_IN_FLIGHT)
    failures: list[str] = []

    async def one(user_id: str, dev: dict[str, Any]) -> None:
        body = render(reg.body, registration_values(user_id, dev))
        async with sem:
            try:
                async with client.http.request(
                    reg.method, client.sender + reg.path, json=body
                ) as r:
                    if r.status >= 300:
                        failures.append(f"{dev['device_id']}: {r.status} {(await r.text())[:200]}")
            except aiohttp.ClientError as exc:
                failures.append(f"{dev['device_id']}: {exc}")

    await asyncio.gather(*(one(u["user_id"], d) for u in users for d in u["devices"]))
    if failures:
        raise HarnessError(
            f"the sender refused {len(failures)} device registrations, e.g. {failures[0]}"
        )


async def subscribe_topics(
    client: Client, sc: Scenario, users: list[dict[str, Any]], say: Callable[[str], None]
) -> dict[str, list[str]]:
    """Subscribe half the FCM population to the scenario's topics (round-robin) through
    ``POST /v1/topics/{topic}/subscribers``; topic id -> subscribed device ids. A sender
    without that call gets {} (topic sends are then accepted but not judged)."""
    if sc.traffic.to.get("topic", 0.0) <= 0 or not sc.traffic.topics:
        return {}
    fcm = [d for u in users for d in u["devices"] if d["provider"] == "fcm"]
    topics = list(sc.traffic.topics)
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for k, dev in enumerate(fcm[::2]):
        by_topic.setdefault(topics[k % len(topics)], []).append(dev)
    out: dict[str, list[str]] = {}
    for topic, devs in by_topic.items():
        url = f"{client.sender}/v1/topics/{quote(topic, safe='')}/subscribers"
        status: int | str
        try:
            async with client.http.post(url, json={"tokens": [d["token"] for d in devs]}) as r:
                doc = await r.json(content_type=None) if r.status == 200 else None
                status = r.status
        except (aiohttp.ClientError, ValueError) as exc:
            doc, status = None, str(exc)
        if not isinstance(doc, dict):
            say(
                f"pushsim run {sc.name}: the sender did not take topic subscriptions "
                f"({status}): topic sends are accepted but not judged"
            )
            return {}
        ok = {
            res.get("token")
            for res in doc.get("results", [])
            if isinstance(res, dict) and res.get("status") == "subscribed"
        }
        out[topic] = [d["device_id"] for d in devs if d["token"] in ok]
        for d in devs:
            if d["token"] in ok:
                d["topics"] = [topic]  # the device re-subscribes a rotated token
    return out
