"""The reference sender's newer sends over real sockets against a real simulator: FCM by
installation ID, Live Activities and broadcasts, Declarative Web Push, RFC 8030 receipts."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from test_sender_e2e import register_body, running_sender

from simulator.testing.handle import SimulatorHandle

pytestmark = pytest.mark.timeout(60)


def inbox(sim: SimulatorHandle, device_id: str) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = sim.control("GET", f"/_sim/devices/{device_id}/inbox")["messages"]
    return got


async def until(check: Any, within: float = 10.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.05)


async def test_fcm_by_installation_id(sim: SimulatorHandle, tmp_path: Path) -> None:
    dev = sim.mint("fcm")[0]
    fid = dev["token"].partition(":")[0]
    async with running_sender(sim, tmp_path / "s.db") as (_, api):
        status, body = await api.call(
            "POST",
            "/v1/notifications",
            {"to": {"tokens": [{"provider": "fcm", "fid": fid}]}, "data": {"correlation_id": "f1"}},
        )
        assert status == 202, body
        got = await until(lambda: inbox(sim, dev["id"]))
        assert got[0]["correlation_id"] == "f1" and got[0]["message"]["fid"] == fid
        bad = {"to": {"tokens": [{"provider": "fcm", "fid": "short"}]}, "data": {"k": "v"}}
        status, body = await api.call("POST", "/v1/notifications", bad)
        assert status == 400 and body["field"] == "to.tokens[0].fid"


async def test_live_activities_and_broadcasts(sim: SimulatorHandle, tmp_path: Path) -> None:
    devs = sim.mint("apns", 2)
    async with running_sender(sim, tmp_path / "s.db") as (_, api):
        status, made = await api.call("POST", "/v1/live-activities/channels", {})
        assert status == 201 and made["channel_id"], made
        cid = made["channel_id"]
        status, listed = await api.call("GET", "/v1/live-activities/channels")
        assert status == 200 and listed["channels"] == [cid]
        now = int(time.time())
        for dev in devs:
            pts = sim.control("POST", f"/_sim/apns/devices/{dev['id']}/push-to-start")
            start = {
                "token": pts["push_to_start_token"],
                "event": "start",
                "timestamp": now,
                "attributes_type": "MatchAttributes",
                "attributes": {"home": "A"},
                "content_state": {"score": "0-0"},
                "input_push_channel": cid,
                "alert": {"title": "Kick-off"},
                "data": {"correlation_id": f"start-{dev['id']}"},
            }
            status, sent = await api.call("POST", "/v1/live-activities", start)
            assert status == 200 and sent["status"] == "sent", sent
        feed = sim.control("GET", "/_sim/apns/live-activities/feed?since=0")["events"]
        tokens = {e["device_id"]: e["token"] for e in feed if e["event"] == "activity_started"}
        update = {
            "token": tokens[devs[0]["id"]],
            "event": "update",
            "timestamp": now + 1,
            "content_state": {"score": "1-0"},
            "priority": 5,
        }
        status, sent = await api.call("POST", "/v1/live-activities", update)
        assert status == 200, sent
        cast = {"channel_id": cid, "event": "update", "timestamp": now + 2,
                "content_state": {"score": "2-0"}, "data": {"correlation_id": "b-1"}}  # fmt: skip
        status, sent = await api.call("POST", "/v1/live-activities/broadcasts", cast)
        assert status == 200 and sent["apns_request_id"], sent
        for dev in devs:
            last = inbox(sim, dev["id"])[-1]
            assert last["correlation_id"] == "b-1" and last["activity"]["applied"] is True
            acts = sim.control("GET", f"/_sim/apns/devices/{dev['id']}/activities")["activities"]
            assert acts[0]["content_state"] == {"score": "2-0"}
        # what a device would ignore is refused up front, and APNs' refusals come back
        status, body = await api.call("POST", "/v1/live-activities", {**update, "event": "start"})
        assert status == 400 and body["field"] == "attributes_type"
        status, body = await api.call("POST", "/v1/live-activities", {**update, "token": "ab" * 40})
        assert status == 502 and body["apns"]["reason"] == "BadDeviceToken"
        gone = {"channel_id": "AAAAAAAAAAAAAAAAAAAAAA==", "event": "end"}
        status, body = await api.call("POST", "/v1/live-activities/broadcasts", gone)
        assert status == 502 and body["apns"]["reason"] == "ChannelNotRegistered"
        status, _ = await api.call(
            "POST", "/v1/live-activities/channels/delete", {"channel_id": cid}
        )
        assert status == 200
        assert (await api.call("GET", "/v1/live-activities/channels"))[1]["channels"] == []


async def test_declarative_web_push_and_receipts(sim: SimulatorHandle, tmp_path: Path) -> None:
    dev = sim.mint("webpush")[0]
    async with running_sender(sim, tmp_path / "s.db", webpush_receipts=True) as (_, api):
        assert (await api.call("POST", "/v1/devices", register_body(dev, "u1")))[0] in (200, 201)
        note = {
            "to": {"user": "u1"},
            "notification": {"title": "Goal", "body": "2-1"},
            "data": {"correlation_id": "w-1"},
            "webpush": {"declarative": True, "navigate": "https://app.example.com/m/1"},
        }
        status, accepted = await api.call("POST", "/v1/notifications", note)
        assert status == 202
        got = await until(lambda: inbox(sim, dev["id"]))
        assert got[0]["display"]["kind"] == "declarative"
        assert got[0]["display"]["navigate"] == "https://app.example.com/m/1"
        assert got[0]["correlation_id"] == "w-1"
        assert got[0]["headers"]["push-receipt"].startswith(sim.endpoints["webpush"] + "/rs/")

        async def receipts() -> dict[str, Any]:
            doc: dict[str, Any] = (await api.call("GET", f"/v1/notifications/{accepted['id']}"))[1]
            return doc

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            doc = await receipts()
            if any(d.get("receipts", {}).get("delivered") for d in doc.get("deliveries", [])):
                break
            await asyncio.sleep(0.1)
        delivered = [d for d in doc["deliveries"] if d.get("receipts", {}).get("delivered")]
        assert len(delivered) == 1, doc
        status, bad = await api.call(
            "POST", "/v1/notifications", {**note, "webpush": {"declarative": True}}
        )
        assert status == 400 and bad["field"] == "webpush.navigate"
