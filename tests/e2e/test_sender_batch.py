"""The batch API on the embedded (SQLite) store, over real sockets against a real simulator:
``POST /v1/notifications:batch`` commits up to 500 notifications at once, answers each
entry in order, and refuses a batch over its count or body limit with a 413 naming it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from sender.api.app import MAX_BATCH_BODY, make_app
from sender.config.simulator_dir import from_simulator_dir
from sender.service import Sender
from simulator.testing.handle import SimulatorHandle

pytestmark = pytest.mark.timeout(60)


@asynccontextmanager
async def api(sim: SimulatorHandle, db: Path) -> AsyncIterator[tuple[Sender, str]]:
    sender = Sender(from_simulator_dir(sim.state_dir, db))
    runner = web.AppRunner(make_app(sender), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield sender, f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def post(url: str, body: Any = None, data: bytes | None = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s:
        kwargs: dict[str, Any] = {"data": data} if data is not None else {"json": body}
        async with s.post(url + "/v1/notifications:batch", **kwargs) as resp:
            return resp.status, json.loads(await resp.text())


def entry(dev: dict[str, Any], corr: str, **extra: Any) -> dict[str, Any]:
    target = {"provider": dev["provider"], "token": dev["token"]}
    return {"to": {"tokens": [target]}, "data": {"correlation_id": corr}, **extra}


async def test_a_batch_is_answered_entry_by_entry_and_delivered(
    sim: SimulatorHandle, tmp_path: Path
) -> None:
    devs = sim.mint("apns", 4) + sim.mint("fcm", 2)
    async with api(sim, tmp_path / "s.db") as (sender, url):
        body = {"notifications": [entry(d, f"b-{i}") for i, d in enumerate(devs)]}
        body["notifications"][1] = {"to": {"user": "x"}}  # no title, body or data
        body["notifications"].append(entry(devs[0], "b-dup", idempotency_key="k1"))
        body["notifications"].append(entry(devs[1], "b-dup2", idempotency_key="k1"))
        commits = sender.storage.outbox.commits  # type: ignore[attr-defined]
        status, doc = await post(url, body)
        assert status == 207 and doc["accepted"] == 7 and doc["refused"] == 1
        results = doc["results"]
        assert (
            results[1]["status"] == 400 and results[1]["field"] == "notifications[1].notification"
        )
        assert results[1]["error"].startswith("notifications[1].notification:")
        assert all(r["status"] == 202 and r["id"] for i, r in enumerate(results) if i != 1)
        assert results[7]["id"] == results[6]["id"] and results[7]["duplicate"] is True
        assert sender.storage.outbox.commits == commits + 1  # type: ignore[attr-defined]
        assert sender.dispatcher is not None and await sender.dispatcher.drain(20)
        status, doc = await post(url, {"notifications": [entry(devs[2], "b-all")]})
        assert status == 202 and doc["accepted"] == 1
        status, doc = await post(url, {"notifications": [{"to": {"user": "x"}}]})
        assert status == 400 and doc["refused"] == 1


async def test_a_batch_over_its_limits_is_refused_naming_them(
    sim: SimulatorHandle, tmp_path: Path
) -> None:
    dev = sim.mint("apns")[0]
    async with api(sim, tmp_path / "s.db") as (_, url):
        status, doc = await post(url, {"notifications": [entry(dev, "x")] * 501})
        assert status == 413 and doc["limit"] == 500 and "at most 500" in doc["error"]
        status, doc = await post(url, data=b'{"notifications": ["' + b"x" * MAX_BATCH_BODY + b'"]}')
        assert status == 413 and doc["limit"] == MAX_BATCH_BODY
        assert f"{MAX_BATCH_BODY}-byte limit" in doc["error"]
        nul = entry({"provider": "fcm", "token": "a\x00b"}, "nul")  # text no store can keep
        surrogate = entry({"provider": "fcm", "token": "a\ud800b"}, "lone")
        status, doc = await post(url, {"notifications": [nul, surrogate, entry(dev, "ok")]})
        assert status == 207 and [r["status"] for r in doc["results"]] == [400, 400, 202]
        assert "NUL" in doc["results"][0]["error"] and "surrogate" in doc["results"][1]["error"]
        for bad in ({"notifications": []}, {"notifications": "x"}, [1]):
            status, doc = await post(url, bad)
            assert status == 400 and doc["field"] in ("notifications", "body")
