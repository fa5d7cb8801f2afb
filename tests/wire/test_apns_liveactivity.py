"""Live Activities over real sockets: push-to-start tokens (re-issued at random), activity
push tokens, the lifecycle a device records, and broadcasts updating subscribed activities."""

from __future__ import annotations

import json
import time
import urllib.error
from collections.abc import Iterator
from typing import Any

import pytest
from h2clients import H2Client, make_token

from simulator.testing.handle import SimulatorHandle

BUNDLE = "com.example.pushsim"
TOPIC = BUNDLE + ".push-type.liveactivity"


class Activities:
    def __init__(self, sim: SimulatorHandle) -> None:
        self.sim = sim
        self.token = make_token(sim.state_dir)
        self.clients: list[H2Client] = []

    def client(self, listener: str = "apns", cert_file: str | None = None) -> H2Client:
        c = H2Client(self.sim.endpoints[listener], self.sim.endpoints["ca_file"], cert_file)
        self.clients.append(c)
        return c

    def push(
        self,
        token: str,
        aps: dict[str, Any],
        client: H2Client | None = None,
        auth: bool = True,
        **headers: str,
    ) -> tuple[int, dict[str, Any]]:
        c = client or (self.clients[0] if self.clients else self.client())
        hdrs = [("apns-push-type", "liveactivity"), ("apns-topic", TOPIC)]
        if auth:
            hdrs.append(("authorization", f"bearer {self.token}"))
        hdrs += [(k.replace("_", "-"), v) for k, v in headers.items()]
        status, _, raw = c.request(f"/3/device/{token}", hdrs, json.dumps({"aps": aps}).encode())
        return status, json.loads(raw) if raw else {}

    def start_token(self, dev_id: str) -> str:
        out = self.sim.control("POST", f"/_sim/apns/devices/{dev_id}/push-to-start")
        return str(out["push_to_start_token"])

    def inbox(self, dev_id: str) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = self.sim.control("GET", f"/_sim/devices/{dev_id}/inbox")[
            "messages"
        ]
        return got

    def feed(self, since: int = 0) -> list[dict[str, Any]]:
        body = self.sim.control("GET", f"/_sim/apns/live-activities/feed?since={since}")
        events: list[dict[str, Any]] = body["events"]
        return events


@pytest.fixture
def la(sim: SimulatorHandle) -> Iterator[Activities]:
    a = Activities(sim)
    yield a
    for c in a.clients:
        c.close()


def start_aps(ts: int, **extra: Any) -> dict[str, Any]:
    return {
        "event": "start",
        "timestamp": ts,
        "attributes-type": "MatchAttributes",
        "attributes": {"home": "A", "away": "B"},
        "content-state": {"score": "0-0"},
        "alert": {"title": "Kick-off"},
        **extra,
    }


def test_push_to_start_then_update_and_end(la: Activities) -> None:
    dev = la.sim.mint("apns")[0]
    pts = la.start_token(dev["id"])
    assert len(pts) == 160 and pts == la.start_token(dev["id"])  # one per device until re-issued
    now = int(time.time())
    assert la.push(pts, start_aps(now)) == (200, {})
    started = [e for e in la.feed() if e["event"] == "activity_started"]
    assert len(started) == 1 and started[0]["device_id"] == dev["id"]
    token = started[0]["token"]
    entry = la.inbox(dev["id"])[-1]
    assert entry["push_type"] == "liveactivity" and entry["activity"]["applied"] is True
    assert entry["display"]["visible"] is True  # the start's alert
    update = {"event": "update", "timestamp": now + 1, "content-state": {"score": "1-0"}}
    assert la.push(token, update, apns_priority="5")[0] == 200
    assert la.inbox(dev["id"])[-1]["activity"]["applied"] is True
    stale = {"event": "update", "timestamp": now - 10, "content-state": {"score": "9-9"}}
    assert la.push(token, stale)[0] == 200  # APNs accepts it; the device drops it
    assert "older" in la.inbox(dev["id"])[-1]["activity"]["ignored"]
    acts = la.sim.control("GET", f"/_sim/apns/devices/{dev['id']}/activities")["activities"]
    assert acts[0]["content_state"] == {"score": "1-0"} and acts[0]["state"] == "active"
    end = {"event": "end", "timestamp": now + 2, "dismissal-date": now - 1}
    assert la.push(token, end)[0] == 200
    assert la.inbox(dev["id"])[-1]["activity"]["state"] == "dismissed"
    # a dismissed activity's token is dead
    assert la.push(token, update) == (410, {"reason": "ExpiredToken"})


def test_the_device_ignores_what_does_not_fit(la: Activities) -> None:
    dev = la.sim.mint("apns")[0]
    pts = la.start_token(dev["id"])
    now = int(time.time())
    cases = [
        ({"event": "update", "timestamp": now, "content-state": {}}, "activity's push token"),
        ({"event": "start", "timestamp": now}, "attributes-type"),
        ({"event": "begin", "timestamp": now}, "aps.event"),
        (start_aps(now, **{"stale-date": "tomorrow"}), "stale-date"),
        ({k: v for k, v in start_aps(now).items() if k != "timestamp"}, "timestamp"),
    ]
    for aps, why in cases:
        assert la.push(pts, aps)[0] == 200
        assert why in la.inbox(dev["id"])[-1]["activity"]["ignored"], aps
    assert la.sim.control("GET", f"/_sim/apns/devices/{dev['id']}/activities")["activities"] == []


def test_push_to_start_tokens_are_reissued_at_random(la: Activities) -> None:
    la.sim.control("PATCH", "/_sim/apns/live-activities/config", {"reissue_probability": 1})
    dev = la.sim.mint("apns")[0]
    pts = la.start_token(dev["id"])
    assert la.push(pts, start_aps(int(time.time())))[0] == 200
    assert la.push(pts, start_aps(int(time.time()))) == (410, {"reason": "ExpiredToken"})
    fresh = [e for e in la.feed() if e["event"] == "push_to_start_token" and e.get("old") == pts]
    assert len(fresh) == 1 and fresh[0]["token"] == la.start_token(dev["id"]) != pts
    assert la.push(fresh[0]["token"], start_aps(int(time.time())))[0] == 200
    with pytest.raises(urllib.error.HTTPError) as bad:
        la.sim.control("PATCH", "/_sim/apns/live-activities/config", {"reissue_probability": 2})
    assert bad.value.code == 400


def test_token_rules(la: Activities, sim: SimulatorHandle) -> None:
    dev = sim.mint("apns")[0]
    pts = la.start_token(dev["id"])
    assert la.push("ab" * 80, start_aps(1)) == (400, {"reason": "BadDeviceToken"})
    assert la.push("zz" * 80, start_aps(1)) == (400, {"reason": "BadDeviceToken"})
    assert la.push(pts, start_aps(1), apns_priority="1") == (400, {"reason": "BadPriority"})
    assert la.push(pts, start_aps(1), auth=False) == (403, {"reason": "MissingProviderToken"})
    sandbox = la.client("apns_sandbox")
    assert la.push(pts, start_aps(1), client=sandbox) == (400, {"reason": "BadDeviceToken"})
    sim.control("POST", f"/_sim/devices/{dev['id']}/rotate")
    status, body = la.push(pts, start_aps(1))
    assert status == 410 and body["reason"] == "Unregistered" and "timestamp" in body


def test_token_auth_only(la: Activities, sim: SimulatorHandle) -> None:
    dev = sim.mint("apns")[0]
    pts = la.start_token(dev["id"])
    cert = sim.control(
        "POST", "/_sim/apns/certificates", {"bundle_id": BUNDLE, "environment": "production"}
    )
    client = la.client(cert_file=cert["pem_file"])
    assert la.push(pts, start_aps(1), client=client, auth=False) == (
        400,
        {"reason": "TopicDisallowed"},
    )


def test_start_on_a_channel_then_broadcast_updates_it(la: Activities, sim: SimulatorHandle) -> None:
    devs = sim.mint("apns", 2)
    la.client()  # the provider API's connection first: pushes go there
    channels = la.client("apns_channels")
    status, h, _ = channels.request(
        f"/1/apps/{BUNDLE}/channels",
        [("authorization", f"bearer {la.token}")],
        b'{"message-storage-policy": 1, "push-type": "LiveActivity"}',
    )
    assert status == 201
    cid = h["apns-channel-id"]
    now = int(time.time())
    for dev in devs:
        assert (
            la.push(la.start_token(dev["id"]), start_aps(now, **{"input-push-channel": cid}))[0]
            == 200
        )
    # the app can start one itself too (and it is not on the channel)
    own = sim.control(
        "POST",
        f"/_sim/apns/devices/{devs[0]['id']}/activities",
        {"attributes-type": "T", "attributes": {}, "content-state": {"n": 0}},
    )
    assert own["started_by"] == "app" and len(own["token"]) == 160
    body = {"aps": {"event": "update", "timestamp": now + 5, "content-state": {"score": "3-1"}}}
    status, _, _ = la.client().request(
        f"/4/broadcasts/apps/{BUNDLE}",
        [
            ("authorization", f"bearer {la.token}"),
            ("apns-channel-id", cid),
            ("apns-push-type", "liveactivity"),
        ],
        json.dumps(body).encode(),
    )
    assert status == 200
    for dev in devs:
        last = la.inbox(dev["id"])[-1]
        assert last["broadcast"] is True and last["activity"]["applied"] is True
        acts = sim.control("GET", f"/_sim/apns/devices/{dev['id']}/activities")["activities"]
        on_channel = [a for a in acts if a["channel_id"] == cid]
        assert [a["content_state"] for a in on_channel] == [{"score": "3-1"}]
    assert [
        a["content_state"]
        for a in sim.control("GET", f"/_sim/apns/devices/{devs[0]['id']}/activities")["activities"]
        if a["channel_id"] is None
    ] == [{"n": 0}]
