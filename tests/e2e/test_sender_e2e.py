"""The sender over real sockets against a real simulator: the API, all three providers,
pruning, throttling, outages with the circuit breaker, GOAWAY, and SIGKILL recovery."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from sender.api.app import make_app
from sender.config.settings import ProviderLimits
from sender.config.simulator_dir import from_simulator_dir
from sender.service import Sender
from simulator.testing.handle import SimulatorHandle

pytestmark = pytest.mark.timeout(60)


class Api:
    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url = url
        self.session = session

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.session.request(method, self.url + path, json=body) as resp:
            text = await resp.text()
            try:
                return resp.status, json.loads(text)
            except ValueError:
                return resp.status, text


@asynccontextmanager
async def running_sender(
    sim: SimulatorHandle, db: Path, **overrides: Any
) -> AsyncIterator[tuple[Sender, Api]]:
    limits = overrides.pop("limits", None)
    config = from_simulator_dir(sim.state_dir, db, **overrides)
    if limits:
        config = replace(config, limits={**config.limits, **limits})
    sender = Sender(config)
    runner = web.AppRunner(make_app(sender), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with aiohttp.ClientSession() as session:
            yield sender, Api(url, session)
    finally:
        await runner.cleanup()


def register_body(dev: dict[str, Any], user: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"user_id": user, "provider": dev["provider"], **extra}
    if dev["provider"] == "webpush":
        body["subscription"] = dev["subscription"]
    else:
        body["token"] = dev["token"]
    return body


def inbox_correlations(sim: SimulatorHandle, device_id: str) -> list[str]:
    inbox = sim.control("GET", f"/_sim/devices/{device_id}/inbox")
    return [m.get("correlation_id") for m in inbox["messages"]]


def delivered_correlations(sim: SimulatorHandle) -> list[str]:
    out: list[str] = []
    since = 0
    for _ in range(100):
        page = sim.control("GET", f"/_sim/deliveries?since={since}")
        entries = page.get("deliveries") or page.get("entries") or []
        if not entries:
            break
        out += [e.get("correlation_id") for e in entries]
        since = page.get("last_seq", since + len(entries))
    return out


async def wait_for(pred: Any, limit: float = 20.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if pred():
            return True
        await asyncio.sleep(0.05)
    return bool(pred())


async def test_user_fan_out_reaches_every_provider(sim: SimulatorHandle, tmp_path: Path) -> None:
    devs = [sim.mint(p)[0] for p in ("apns", "fcm", "webpush")]
    async with running_sender(sim, tmp_path / "s.db") as (sender, api):
        for d in devs:
            status, reg = await api.call("POST", "/v1/devices", register_body(d, "alice"))
            assert status == 201 and reg["status"] == "active"
        status, acc = await api.call(
            "POST",
            "/v1/notifications",
            {
                "to": {"user": "alice"},
                "notification": {"title": "Hi", "body": "there"},
                "data": {"correlation_id": "corr-1"},
            },
        )
        assert status == 202 and acc["targets"] == 3 and acc["status"] == "accepted"
        assert await sender.dispatcher.drain(10)  # type: ignore[union-attr]
        status, doc = await api.call("GET", f"/v1/notifications/{acc['id']}")
        assert status == 200 and doc["status"] == "delivered"
        assert {d["provider"] for d in doc["deliveries"]} == {"apns", "fcm", "webpush"}
        for d in doc["deliveries"]:
            assert d["status"] == "delivered" and d["attempts"][0]["status_code"] in (200, 201)
        for d in devs:
            assert inbox_correlations(sim, d["id"]) == ["corr-1"]
        status, text = await api.call("GET", "/metrics")
        assert 'pushsim_sender_delivered_total{provider="webpush"} 1.0' in text
        assert "pushsim_sender_accepted_total 1.0" in text
        status, health = await api.call("GET", "/v1/health")
        assert health == {"status": "ok", "queue_depth": 0}


async def test_explicit_tokens_topic_receipts_and_idempotency(
    sim: SimulatorHandle, tmp_path: Path
) -> None:
    apns, fcm = sim.mint("apns")[0], sim.mint("fcm")[0]
    async with running_sender(sim, tmp_path / "s.db") as (sender, api):
        body = {
            "to": {
                "tokens": [
                    {"provider": "apns", "token": apns["token"]},
                    {"provider": "fcm", "token": fcm["token"]},
                ]
            },
            "data": {"correlation_id": "c-tok"},
            "idempotency_key": "k1",
        }
        s1, a1 = await api.call("POST", "/v1/notifications", body)
        s2, a2 = await api.call("POST", "/v1/notifications", body)
        assert s1 == s2 == 202 and a1["id"] == a2["id"] and a1["targets"] == 2
        s, topic = await api.call(
            "POST", "/v1/notifications", {"to": {"topic": "news"}, "notification": {"title": "t"}}
        )
        assert s == 202 and topic["targets"] == 1
        assert await sender.dispatcher.drain(10)  # type: ignore[union-attr]
        assert inbox_correlations(sim, apns["id"]) == ["c-tok"]  # once, despite the repeat
        s, _ = await api.call(
            "POST",
            "/v1/receipts",
            {"notification_id": a1["id"], "token": apns["token"], "event": "opened"},
        )
        assert s == 202
        s, _ = await api.call(
            "POST", "/v1/receipts", {"notification_id": a1["id"], "token": "x", "event": "opened"}
        )
        assert s == 404
        _, doc = await api.call("GET", f"/v1/notifications/{a1['id']}")
        rec = {d["token"]: d["receipts"] for d in doc["deliveries"]}
        assert "opened" in rec[apns["token"]]
        _, tdoc = await api.call("GET", f"/v1/notifications/{topic['id']}")
        assert tdoc["deliveries"][0]["status"] == "delivered"


async def test_bad_input_gets_400_naming_the_field(sim: SimulatorHandle, tmp_path: Path) -> None:
    async with running_sender(sim, tmp_path / "s.db") as (_sender, api):
        async with api.session.post(api.url + "/v1/notifications", data=b"{nope") as resp:
            assert resp.status == 400 and (await resp.json())["field"] == "body"
        s, err = await api.call("POST", "/v1/devices", {"user_id": "u", "provider": "apns"})
        assert s == 400 and err["field"] == "token"
        s, err = await api.call(
            "POST",
            "/v1/notifications",
            {
                "to": {"tokens": [{"provider": "apns", "token": "ab" * 32}]},
                "data": {"blob": "x" * 5000},
            },
        )
        assert s == 400 and err["field"] == "data" and "4096" in err["error"]
        s, err = await api.call(
            "POST", "/v1/notifications", {"to": {"topic": "t"}, "data": {"blob": "x" * 2100}}
        )
        assert s == 400 and "2048" in err["error"]
        s, _ = await api.call("GET", "/v1/notifications/nope")
        assert s == 404


async def test_dead_tokens_are_pruned_and_never_sent_to_again(
    sim: SimulatorHandle, tmp_path: Path
) -> None:
    devs = [sim.mint(p)[0] for p in ("apns", "fcm", "webpush")]
    async with running_sender(sim, tmp_path / "s.db") as (sender, api):
        for d in devs:
            await api.call("POST", "/v1/devices", register_body(d, "bob", device_id=d["id"]))
            sim.control("DELETE", f"/_sim/devices/{d['id']}")
        for i in range(3):
            s, _ = await api.call(
                "POST",
                "/v1/notifications",
                {"to": {"user": "bob"}, "data": {"correlation_id": f"dead-{i}"}},
            )
            assert s == 202
            assert await sender.dispatcher.drain(10)  # type: ignore[union-attr]
        _, listing = await api.call("GET", "/v1/devices?user_id=bob&status=dead")
        reasons = {d["provider"]: d["death_reason"] for d in listing["devices"]}
        assert reasons == {"apns": "Unregistered", "fcm": "UNREGISTERED", "webpush": "410"}
        assert all(d["died_at"] for d in listing["devices"])
        dead = sim.control("GET", "/_sim/dead_tokens")
        entries = dead.get("tokens") or dead.get("dead_tokens") or dead
        counts = [e["count"] for e in entries] if isinstance(entries, list) else []
        assert counts and all(c == 1 for c in counts)  # one wasted send each, then never again
        _, text = await api.call("GET", "/metrics")
        assert (
            'pushsim_sender_tokens_pruned_total{provider="apns",reason="Unregistered"} 1.0' in text
        )


async def test_reregistered_token_replaces_its_predecessor(
    sim: SimulatorHandle, tmp_path: Path
) -> None:
    dev = sim.mint("apns")[0]
    async with running_sender(sim, tmp_path / "s.db") as (sender, api):
        await api.call("POST", "/v1/devices", register_body(dev, "carol", device_id="phone"))
        new = sim.control("POST", f"/_sim/devices/{dev['id']}/rotate")
        new_token = new.get("token") or new["device"]["token"]
        s, _ = await api.call(
            "POST",
            "/v1/devices",
            {"user_id": "carol", "provider": "apns", "token": new_token, "device_id": "phone"},
        )
        assert s == 201
        _, active = await api.call("GET", "/v1/devices?user_id=carol&status=active")
        assert [d["token"] for d in active["devices"]] == [new_token]
        s, acc = await api.call(
            "POST", "/v1/notifications", {"to": {"user": "carol"}, "data": {"correlation_id": "r"}}
        )
        assert acc["targets"] == 1
        assert await sender.dispatcher.drain(10)  # type: ignore[union-attr]
        assert inbox_correlations(sim, dev["id"]) == ["r"]


async def test_throttled_sends_wait_at_least_retry_after(
    sim: SimulatorHandle, tmp_path: Path
) -> None:
    devs = sim.mint("fcm", 4)
    sim.control(
        "POST",
        "/_sim/faults",
        {"kind": "throttle", "provider": "fcm", "rate": 2, "burst": 1, "duration": "20s"},
    )
    async with running_sender(sim, tmp_path / "s.db", backoff_base=0.01) as (sender, api):
        _, acc = await api.call(
            "POST",
            "/v1/notifications",
            {
                "to": {"tokens": [{"provider": "fcm", "token": d["token"]} for d in devs]},
                "data": {"correlation_id": "thr"},
            },
        )
        assert await sender.dispatcher.drain(30)  # type: ignore[union-attr]
        _, doc = await api.call("GET", f"/v1/notifications/{acc['id']}")
        assert doc["status"] == "delivered"
        throttled = 0
        for d in doc["deliveries"]:
            atts = d["attempts"]
            for prev, nxt in itertools.pairwise(atts):
                if prev["status_code"] == 429:
                    throttled += 1
                    # Retry-After is whole seconds, at least 1: the retry came no sooner.
                    assert nxt["at"] - prev["at"] >= 1.0
        assert throttled >= 1


async def test_outage_rides_out_with_breaker_holding_sends(
    sim: SimulatorHandle, tmp_path: Path
) -> None:
    devs = sim.mint("apns", 20)
    fault = sim.control(
        "POST",
        "/_sim/faults",
        {"id": "down", "kind": "outage", "provider": "apns", "duration": "2s"},
    )
    assert fault["faults"][0]["id"] == "down"
    n = 100
    async with running_sender(
        sim,
        tmp_path / "s.db",
        breaker_threshold=10,
        breaker_open_for=0.25,
        backoff_base=0.05,
        backoff_cap=0.5,
        max_attempts=1000,
        limits={"apns": ProviderLimits(concurrency=4)},
    ) as (sender, api):
        for i in range(n):
            dev = devs[i % len(devs)]
            s, _ = await api.call(
                "POST",
                "/v1/notifications",
                {
                    "to": {"tokens": [{"provider": "apns", "token": dev["token"]}]},
                    "data": {"correlation_id": f"out-{i}"},
                },
            )
            assert s == 202
        assert await sender.dispatcher.drain(30)  # type: ignore[union-attr]
        lane = sender.dispatcher.lanes["apns"]  # type: ignore[union-attr]
        assert lane.sends_while_open == 0
        assert lane.breaker.transitions >= 2  # it opened and closed again
    got = [c for c in delivered_correlations(sim) if c and c.startswith("out-")]
    assert sorted(set(got)) == sorted(f"out-{i}" for i in range(n))  # nothing lost
    plan = sim.control("GET", "/_sim/faults")
    faults = plan["faults"] if isinstance(plan, dict) else plan
    injected = sum(next(f for f in faults if f["id"] == "down")["injected"].values())
    # 2 s of outage at full retry speed would be hundreds of 503s: the breaker held it to
    # the opening failures, what was in flight, and one probe per half-open.
    assert 10 <= injected <= 10 + 4 + 16, injected


async def test_goaway_moves_requests_to_a_fresh_connection(
    sim: SimulatorHandle, tmp_path: Path
) -> None:
    devs = sim.mint("apns", 10)
    async with running_sender(sim, tmp_path / "s.db", backoff_base=0.05) as (sender, api):
        # the window opens once the sender is up: a slow start on a loaded machine must not
        # let it close before the first send
        sim.control(
            "POST",
            "/_sim/faults",
            {"kind": "outage", "provider": "apns", "mode": "goaway", "duration": "1s"},
        )
        for i, d in enumerate(devs):
            await api.call(
                "POST",
                "/v1/notifications",
                {
                    "to": {"tokens": [{"provider": "apns", "token": d["token"]}]},
                    "data": {"correlation_id": f"ga-{i}"},
                },
            )
        assert await sender.dispatcher.drain(20)  # type: ignore[union-attr]
        client = sender.dispatcher.clients["apns"]  # type: ignore[union-attr]
        assert client.pool.opened >= 2  # type: ignore[attr-defined]
    got = {c for c in delivered_correlations(sim) if c and c.startswith("ga-")}
    assert got == {f"ga-{i}" for i in range(10)}


def _start_sender(state: Path, db: Path, ready: Path) -> subprocess.Popen[bytes]:
    ready.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pushsim",
            "sender",
            "--simulator",
            str(state),
            "--db",
            str(db),
            "--ready-file",
            str(ready),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while not ready.exists():
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
        assert time.monotonic() < deadline, "sender did not become ready"
        time.sleep(0.05)
    return proc


def test_sigkill_and_restart_lose_nothing_accepted(sim: SimulatorHandle, tmp_path: Path) -> None:
    devs = sim.mint("apns", 10) + sim.mint("fcm", 10)
    # Nothing can be delivered while the sender is up the first time.
    sim.control(
        "POST", "/_sim/faults", {"id": "hold", "kind": "outage", "provider": "any", "mode": "hang"}
    )
    db, ready = tmp_path / "sender.db", tmp_path / "ready.json"
    proc = _start_sender(sim.state_dir, db, ready)
    url = json.loads(ready.read_text())["url"]
    accepted: list[str] = []

    async def post_all() -> None:
        async with aiohttp.ClientSession() as s:
            for i in range(60):
                d = devs[i % len(devs)]
                body = {
                    "to": {"tokens": [{"provider": d["provider"], "token": d["token"]}]},
                    "data": {"correlation_id": f"kill-{i}"},
                }
                async with s.post(url + "/v1/notifications", json=body) as resp:
                    assert resp.status == 202
                    accepted.append(f"kill-{i}")

    try:
        asyncio.run(post_all())
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        sim.control("DELETE", "/_sim/faults")
        proc = _start_sender(sim.state_dir, db, ready)
        deadline = time.monotonic() + 30
        got: set[str] = set()
        while time.monotonic() < deadline:
            got = {c for c in delivered_correlations(sim) if c and c.startswith("kill-")}
            if got >= set(accepted):
                break
            time.sleep(0.2)
        assert got == set(accepted) and len(accepted) == 60
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


async def test_provider_wide_retry_after_pauses_every_delivery_then_recovers(
    sim: SimulatorHandle, tmp_path: Path
) -> None:
    """A 503 with Retry-After pauses all of APNs (not just the delivery that got it): the
    simulator's ledger sees no request before the Retry-After ran out, and throughput is
    back as soon as the outage ends."""
    devs = sim.mint("apns", 10)
    sim.control(
        "POST",
        "/_sim/faults",
        {
            "id": "down",
            "kind": "outage",
            "provider": "apns",
            "mode": "status",
            "retry_after": 1,
            "start": "0.3s",
            "duration": "2s",
        },
    )
    n = 120
    async with running_sender(sim, tmp_path / "s.db", backoff_base=0.01) as (sender, api):
        started = time.monotonic()
        for i in range(n):  # ~3 s of traffic spanning the outage
            dev = devs[i % len(devs)]
            s, _ = await api.call(
                "POST",
                "/v1/notifications",
                {
                    "to": {"tokens": [{"provider": "apns", "token": dev["token"]}]},
                    "data": {"correlation_id": f"hold-{i}"},
                },
            )
            assert s == 202
            await asyncio.sleep(0.025)
        assert await sender.dispatcher.drain(20)  # type: ignore[union-attr]
        finished = time.monotonic() - started
        lane = sender.dispatcher.lanes["apns"]  # type: ignore[union-attr]
        assert lane.gate.holds >= 1 and not lane.gate.probing
    stats = sim.control("GET", "/_sim/stats")
    assert stats["retry_after_violations"]["apns"] == 0
    assert stats["retry_after_honoured"]["apns"] >= 1
    got = [c for c in delivered_correlations(sim) if c and c.startswith("hold-")]
    assert sorted(set(got)) == sorted(f"hold-{i}" for i in range(n))
    # Nothing waits much past the outage (2.3 s) plus one Retry-After: no backoff pile-up.
    assert finished < 2.3 + 1.0 + 4.0, finished


async def test_short_lived_apns_provider_tokens_are_renewed_on_fresh_connections(
    sim: SimulatorHandle, tmp_path: Path
) -> None:
    """APNs provider tokens expire after 2 s here: the sender re-signs on
    ExpiredProviderToken, learns to refresh before that age, carries each new token on a
    fresh connection (never TooManyProviderTokenUpdates) and loses nothing."""
    devs = sim.mint("apns", 5)
    sim.control(
        "POST",
        "/_sim/faults",
        {"kind": "auth", "provider": "any", "mode": "enforced", "apns_token_max_age": "2s"},
    )
    n = 60
    async with running_sender(sim, tmp_path / "s.db") as (sender, api):
        for i in range(n):  # ~6 s: three token lifetimes
            dev = devs[i % len(devs)]
            s, _ = await api.call(
                "POST",
                "/v1/notifications",
                {
                    "to": {"tokens": [{"provider": "apns", "token": dev["token"]}]},
                    "data": {"correlation_id": f"jwt-{i}"},
                },
            )
            assert s == 202
            await asyncio.sleep(0.1)
        assert await sender.dispatcher.drain(20)  # type: ignore[union-attr]
        client = sender.dispatcher.clients["apns"]  # type: ignore[union-attr]
        token = client.token  # type: ignore[attr-defined]
        assert token.observed_max_age is not None and token.refresh_after < 2.0
        assert token.signed >= 3
        assert client.pool.retired >= 1  # type: ignore[attr-defined]
        failed = sender.metrics.failed
        assert failed.labels("apns", "TooManyProviderTokenUpdates")._value.get() == 0
        # once the age is known, expiries stop: at most the first burst saw one
        assert failed.labels("apns", "ExpiredProviderToken")._value.get() <= 10
    got = [c for c in delivered_correlations(sim) if c and c.startswith("jwt-")]
    assert sorted(set(got)) == sorted(f"jwt-{i}" for i in range(n))


async def test_topic_subscription_through_the_api_reaches_exactly_the_subscribers(
    sim: SimulatorHandle, tmp_path: Path
) -> None:
    a, b, c, gone = sim.mint("fcm", 4)
    sim.control("DELETE", f"/_sim/devices/{gone['id']}")
    async with running_sender(sim, tmp_path / "s.db") as (sender, api):
        s, doc = await api.call(
            "POST",
            "/v1/topics/sport-news/subscribers",
            {"tokens": [a["token"], b["token"], gone["token"]]},
        )
        assert s == 200, doc
        assert doc["subscribed"] == 2 and doc["failed"] == 1
        assert doc["results"][2] == {
            "token": gone["token"],
            "status": "failed",
            "error": "NOT_FOUND",
        }
        assert sender.store.is_dead("fcm", gone["token"])  # FCM said it is gone: pruned
        for body, field in (
            ({"tokens": []}, "tokens"),
            ({"tokens": ["ok", 5]}, "tokens[1]"),
            ([], "body"),
        ):
            s, err = await api.call("POST", "/v1/topics/sport-news/subscribers", body)
            assert s == 400 and err["field"] == field
        s, err = await api.call("POST", "/v1/topics/bad%20topic!/subscribers", {"tokens": ["x"]})
        assert s == 400 and err["field"] == "topic"
        s, _ = await api.call(
            "POST",
            "/v1/notifications",
            {"to": {"topic": "sport-news"}, "data": {"correlation_id": "topic-1"}},
        )
        assert s == 202
        assert await sender.dispatcher.drain(10)  # type: ignore[union-attr]
    assert await wait_for(lambda: inbox_correlations(sim, a["id"]) == ["topic-1"], 5)
    assert inbox_correlations(sim, b["id"]) == ["topic-1"]
    assert inbox_correlations(sim, c["id"]) == []
